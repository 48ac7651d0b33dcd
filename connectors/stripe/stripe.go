// Package stripe is the connector for Stripe, where a product keeps its
// customers, their saved cards and every payment they made.
//
// Stripe is a processor with obligations of its own: it keeps transaction
// records (charges, refunds, disputes, invoices, payment intents, checkout
// sessions, subscriptions) under financial regulation whatever its users
// ask, and its API does not let anyone delete or rewrite them. So an erasure
// here does what the API allows and says plainly what it could not:
//   - a customer whose every field the plan deletes is deleted (Stripe then
//     cancels its subscriptions and removes its saved payment methods);
//   - otherwise the customer is redacted: each field the plan deletes or
//     masks is cleared (name, email, phone, address, shipping, description,
//     metadata keys, tax ids), the rest kept for the accounting obligation,
//     and, unless configured otherwise, its subscriptions are cancelled and
//     its payment methods detached, so the person is not billed again and
//     no card stays stored against them;
//   - transaction records are reported as retained: the plan's retained
//     fields with its basis, and the fields the plan wanted gone as "kept by
//     Stripe", with a note for the person's report that Stripe keeps them
//     under its own obligations and that deleting them needs a request to
//     Stripe support.
//
// A subject's customers are found from the identities the engine knows:
// Stripe customer ids (cus_…, stored by the product), email addresses
// (exact matches through the list endpoint and the search API) and product
// user ids (search on the metadata key the data map's reference names).
// Matches are exact: Stripe's search is case-insensitive and fuzzy about
// some fields, and a near match would be someone else's data.
//
// Every write carries an idempotency key derived from the task's key, the
// operation, the object and the change, so a job that runs again after a
// crash is a no-op at Stripe. Requests that Stripe rate-limits (429) or
// fails (5xx, lock timeouts, network errors) are retried a few times with
// backoff honouring Retry-After; what still fails comes out classified for
// the engine's own retries.
package stripe

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	stripego "github.com/stripe/stripe-go/v84"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/datamap"
)

// Config configures the connector for one data-map system.
type Config struct {
	// System is the data-map system id (e.g. "stripe").
	System string
	// APIKey is a secret or restricted key. A restricted key needs read
	// access to customers, payment methods, charges, payment intents,
	// invoices, subscriptions, checkout sessions, refunds, disputes and tax
	// ids, and write access to customers, payment methods, subscriptions and
	// tax ids.
	APIKey string
	// BaseURL is the API's base URL; default Stripe's. Tests point it at
	// stripe-mock or stripefake.
	BaseURL string
	// DataMap returns the current data map; the connector re-reads its
	// system when the map changes (a policy reload).
	DataMap func() *datamap.Map
	// Clock tells the time (for Retry-After dates); default the wall clock.
	Clock connectors.Clock
	// Log gets debug lines (retries, erasure counts) that carry no personal
	// data and no customer ids; default discards.
	Log *slog.Logger
	// MaxRetries bounds the retries of one request that Stripe rate-limited
	// or failed; 0 means 3, negative means none. A Retry-After longer than
	// a minute is not waited for: the error goes back to the engine with the
	// hint instead of holding a worker.
	MaxRetries int
	// CancelSubscriptions, when a customer is redacted rather than deleted,
	// cancels its subscriptions and detaches its payment methods, so an
	// erased person is not billed again. Default true; nil means true.
	CancelSubscriptions *bool
	// HTTPClient makes the requests; default a client with a 60 s timeout.
	HTTPClient *http.Client
}

// Connector reaches one Stripe account.
type Connector struct {
	cfg     Config
	api     *stripego.Client
	log     *slog.Logger
	clock   connectors.Clock
	retries int
	cancel  bool
	http    *http.Client
	ownHTTP bool

	mu    sync.Mutex
	model *model

	// sleep waits between retries; tests replace it (export_test.go) to
	// record the waits instead of sleeping.
	sleep func(ctx context.Context, d time.Duration) error
	// inject, set only by tests, fails the next call of an operation
	// before it does anything.
	inject func(op string) error
}

// Operation names, for errors and the test hook.
const (
	opResolve  = "resolve"
	opAccess   = "access"
	opErase    = "erase"
	opRectify  = "rectify"
	opRestrict = "restrict"
)

// Stripe object types the connector handles, as the data map names them.
const (
	objCustomer        = "customer"
	objPaymentMethod   = "payment_method"
	objPaymentIntent   = "payment_intent"
	objCharge          = "charge"
	objRefund          = "refund"
	objDispute         = "dispute"
	objInvoice         = "invoice"
	objSubscription    = "subscription"
	objCheckoutSession = "checkout.session"
	objTaxID           = "tax_id"
)

var supportedObjects = []string{objCustomer, objPaymentMethod, objPaymentIntent, objCharge, objRefund,
	objDispute, objInvoice, objSubscription, objCheckoutSession, objTaxID}

// New checks the configuration and the system's datasets and makes the API
// client. It makes no request: Stripe is reached when a task runs.
func New(ctx context.Context, cfg Config) (*Connector, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if cfg.System == "" {
		return nil, errors.New("stripe: Config.System is required")
	}
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("stripe %s: Config.APIKey is required", cfg.System)
	}
	if cfg.DataMap == nil {
		return nil, fmt.Errorf("stripe %s: Config.DataMap is required", cfg.System)
	}
	c := &Connector{cfg: cfg, log: cfg.Log, clock: cfg.Clock, retries: cfg.MaxRetries, cancel: true, sleep: connectors.Sleep}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.clock == nil {
		c.clock = connectors.WallClock{}
	}
	switch {
	case c.retries == 0:
		c.retries = 3
	case c.retries < 0:
		c.retries = 0
	}
	if cfg.CancelSubscriptions != nil {
		c.cancel = *cfg.CancelSubscriptions
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc, c.ownHTTP = &http.Client{Timeout: 60 * time.Second}, true
	}
	base := strings.TrimSuffix(cfg.BaseURL, "/")
	if base == "" {
		base = stripego.APIURL
	}
	c.http = hc
	c.api = newClient(c, cfg.APIKey, base, hc)
	if _, err := c.current(); err != nil {
		return nil, err
	}
	return c, nil
}

// Close releases idle connections of the connector's own HTTP client.
func (c *Connector) Close() {
	if c.ownHTTP {
		c.http.CloseIdleConnections()
	}
}

// Capabilities: identity resolution, access and erasure. Rectification and
// restriction stay manual: a correction of billing details is a support
// conversation, and Stripe has no notion of restricted processing.
func (c *Connector) Capabilities() connectors.Capabilities {
	return connectors.Capabilities{ResolveIdentities: true, Access: true, Erase: true}
}

// Rectify is not supported.
func (c *Connector) Rectify(ctx context.Context, _ connectors.RectifyParams) (connectors.RectifyResult, error) {
	if err := ctx.Err(); err != nil {
		return connectors.RectifyResult{}, c.wrap(opRectify, err)
	}
	return connectors.RectifyResult{}, connectors.ErrUnsupported
}

// Restrict is not supported.
func (c *Connector) Restrict(ctx context.Context, _ connectors.RestrictParams) (connectors.RestrictResult, error) {
	if err := ctx.Err(); err != nil {
		return connectors.RestrictResult{}, c.wrap(opRestrict, err)
	}
	return connectors.RestrictResult{}, connectors.ErrUnsupported
}

// model is what the connector needs from the data map for its system.
type model struct {
	dm       *datamap.Map
	system   string
	datasets map[string]*dataset
	// How identities reach customers: identity types whose value is a
	// customer id, types matched against the customer's email, and types
	// matched against a metadata key (user → user_id, from the reference
	// metadata.user_id → app_db.users.id).
	idTypes    []string
	emailTypes []string
	metaTypes  map[string]string
}

type dataset struct {
	id     string
	object string
	fields map[string]datamap.Field
}

// metadataKey is what the connector puts between quotes in a search query
// and between brackets in a form key; anything else in a data map is
// refused rather than escaped.
var metadataKey = regexp.MustCompile(`^[A-Za-z0-9_\-]{1,40}$`)

// current returns the model of the current data map, compiling it when the
// map changed.
func (c *Connector) current() (*model, error) {
	dm := c.cfg.DataMap()
	if dm == nil {
		return nil, connectors.Permanent(fmt.Errorf("stripe %s: no data map loaded", c.cfg.System))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.model != nil && c.model.dm == dm {
		return c.model, nil
	}
	m, err := compile(dm, c.cfg.System)
	if err != nil {
		return nil, connectors.Permanent(err)
	}
	c.model = m
	return m, nil
}

func compile(dm *datamap.Map, system string) (*model, error) {
	sys, ok := dm.Systems[system]
	if !ok {
		return nil, fmt.Errorf("stripe %s: no such system in the data map", system)
	}
	if sys.Kind != datamap.KindStripe {
		return nil, fmt.Errorf("stripe %s: the data map says kind %q, not %q", system, sys.Kind, datamap.KindStripe)
	}
	m := &model{dm: dm, system: system, datasets: map[string]*dataset{}, metaTypes: map[string]string{}}
	var problems []string
	var customers []string
	for id, ds := range sys.Datasets {
		if !slices.Contains(supportedObjects, ds.Object) {
			problems = append(problems, fmt.Sprintf("dataset %s: object %q is not one the connector handles (%s)",
				id, ds.Object, strings.Join(supportedObjects, ", ")))
			continue
		}
		m.datasets[id] = &dataset{id: id, object: ds.Object, fields: ds.Fields}
		if ds.Object != objCustomer {
			continue
		}
		customers = append(customers, id)
		for _, ident := range ds.Identities {
			switch key, isMeta := strings.CutPrefix(ident.Field, "metadata."); {
			case ident.Field == "id":
				m.idTypes = append(m.idTypes, ident.Type)
			case ident.Field == "email":
				m.emailTypes = append(m.emailTypes, ident.Type)
			case isMeta && metadataKey.MatchString(key):
				m.metaTypes[ident.Type] = key
			default:
				problems = append(problems, fmt.Sprintf("dataset %s: identity field %q cannot be searched (id, email or metadata.<key>)", id, ident.Field))
			}
		}
		// A reference metadata.K → system.dataset.field whose field is an
		// identity there means customers carry that identity in metadata K.
		for _, ref := range ds.References {
			key, ok := strings.CutPrefix(ref.Field, "metadata.")
			if !ok {
				continue
			}
			if !metadataKey.MatchString(key) {
				problems = append(problems, fmt.Sprintf("dataset %s: metadata key %q cannot be searched", id, key))
				continue
			}
			for _, t := range identityTypesAt(dm, ref.To) {
				m.metaTypes[t] = key
			}
		}
	}
	switch len(customers) {
	case 0:
		problems = append(problems, "no dataset of object customer: the connector reaches every record through the subject's customers")
	case 1:
	default:
		slices.Sort(customers)
		problems = append(problems, "more than one dataset of object customer: "+strings.Join(customers, ", "))
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, fmt.Errorf("stripe %s: data map: %s", system, strings.Join(problems, "; "))
	}
	return m, nil
}

// identityTypesAt returns the identity types the field named by to
// ("system.dataset.field") holds.
func identityTypesAt(dm *datamap.Map, to string) []string {
	parts := strings.SplitN(to, ".", 3)
	if len(parts) != 3 {
		return nil
	}
	ds, ok := dm.Systems[parts[0]].Datasets[parts[1]]
	if !ok {
		return nil
	}
	var out []string
	for _, ident := range ds.Identities {
		if ident.Field == parts[2] {
			out = append(out, ident.Type)
		}
	}
	return out
}

// enter starts an operation: the context must be live, the data map
// compiled; a test may inject a failure.
func (c *Connector) enter(ctx context.Context, op string) (*model, error) {
	if err := ctx.Err(); err != nil {
		return nil, c.wrap(op, err)
	}
	if c.inject != nil {
		if err := c.inject(op); err != nil {
			return nil, err
		}
	}
	return c.current()
}

// dataset returns the target's dataset, checking the plan names only its
// mapped fields: a plan for anything else is a mistake upstream.
func (m *model) dataset(op string, t connectors.Target, fields []connectors.FieldPlan) (*dataset, error) {
	if t.System != m.system {
		return nil, connectors.Permanent(fmt.Errorf("stripe %s: %s: target system %q is not this connector's", m.system, op, t.System))
	}
	ds := m.datasets[t.Dataset]
	if ds == nil {
		return nil, connectors.Permanent(fmt.Errorf("stripe %s: %s: no dataset %q in the data map", m.system, op, t.Dataset))
	}
	if len(fields) == 0 {
		return nil, connectors.Permanent(fmt.Errorf("stripe %s: %s %s: the plan has no fields", m.system, op, ds.id))
	}
	for _, f := range fields {
		if _, ok := ds.fields[f.Field]; !ok {
			return nil, connectors.Permanent(fmt.Errorf("stripe %s: %s %s: field %q is not in the data map's dataset", m.system, op, ds.id, f.Field))
		}
	}
	return ds, nil
}

// wrap names the operation in an error, keeping its classification.
func (c *Connector) wrap(op string, err error) error {
	return fmt.Errorf("stripe %s: %s: %w", c.cfg.System, op, err)
}

var _ connectors.Connector = (*Connector)(nil)
