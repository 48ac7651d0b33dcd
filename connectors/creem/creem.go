// Package creem is the connector for Creem (creem.io), the payment platform
// that sells the product's subscriptions as merchant of record.
//
// Why it looks the way it does:
//
//   - Creem is the merchant of record: the customer buys from Creem, not
//     from us, so Creem is a controller of the payment data in its own
//     right. It keeps transactions, invoices and tax records under its own
//     legal obligations (VAT, accounting), whatever we ask.
//   - Creem's API (https://docs.creem.io/api-reference) reads customers,
//     subscriptions and transactions, but has no endpoint that deletes or
//     anonymises a customer. Erasure therefore cannot be automated: Erase
//     lists what the subject has in the dataset and returns
//     connectors.EraseResult.Manual, exact instructions for staff to send to
//     Creem's support, naming records by id only (ids are enough for Creem to
//     act, and the instructions are stored and shown to staff, so they carry
//     no email or name). It changes nothing, and says the same again until
//     Creem has deleted the records; then it finds nothing and reports
//     Verified.
//   - Access and identity resolution are automated: the API's customer
//     lookup by id or email, the customer's subscriptions and the
//     transaction search, each paginated and streamed to the sink.
//   - Everything read is filtered again here by customer id, so a filter the
//     API ignored or a page that shifted never discloses another person's
//     records.
//   - Webhooks (webhook.go) are verified with the HMAC-SHA256 signature
//     Creem sends in the creem-signature header, and parsed strictly, so
//     that Steward can link a creem: id to a subject from a verified event.
//
// Rectify and Restrict are not declared: the API cannot change a customer's
// email or name, nor flag one restricted; those become manual tasks.
package creem

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/datamap"
)

// Base URLs, as Creem documents them: test-mode API keys work only against
// the test API and live keys only against the live one.
const (
	LiveBaseURL = "https://api.creem.io"
	TestBaseURL = "https://test-api.creem.io"
)

// DefaultSupportContact is where staff send deletion requests unless
// Config.SupportContact says otherwise: the contact address Creem's OpenAPI
// document gives (info.contact.email, "Creem Support").
const DefaultSupportContact = "support@creem.io"

// Config configures one connector: one data-map system, one Creem store
// (the store an API key belongs to).
type Config struct {
	// System is the data-map system id (e.g. "creem").
	System string
	// APIKey is the store's API key, sent in the x-api-key header. It only
	// needs to read; the connector never writes to Creem.
	APIKey string
	// BaseURL is the API's root; default LiveBaseURL. Use TestBaseURL with
	// a test-mode key. It must be https (plain http is accepted only for a
	// loopback host, i.e. a local fake), so the key never crosses the
	// network in clear.
	BaseURL string
	// Store names the Creem store (its name or id) in the staff
	// instructions, so Creem's support knows which merchant asks. Optional.
	Store string
	// SupportContact is where staff send the deletion request; default
	// DefaultSupportContact.
	SupportContact string
	// DataMap returns the current data map; each operation reads the
	// system's datasets from it (their Creem object and references).
	DataMap func() *datamap.Map
	// Clock tells the time, for Retry-After dates and rate-limit resets;
	// default the wall clock.
	Clock connectors.Clock
	Log   *slog.Logger
	// HTTPClient makes the requests; default one with a 30 s timeout. The
	// connector uses a copy that refuses redirects: the API key is a
	// custom header, which Go would forward to any host a redirect names.
	HTTPClient *http.Client
	// MaxRetries bounds the retries of one request that failed retryably
	// (429, 5xx, network, timeout) before the error is handed to the
	// engine's durable retry; default 3, negative for none.
	MaxRetries int
	// PageSize is the page_size asked of paginated endpoints; default 50.
	// Creem documents a default of 10 and no maximum.
	PageSize int
}

// Connector reaches one Creem store. It holds no state between calls and is
// safe for concurrent use.
type Connector struct {
	cfg    Config
	base   *url.URL
	client *http.Client
	owned  bool // client is ours to close
	clock  connectors.Clock
	log    *slog.Logger

	// sleep waits between retries; tests replace it to observe the waits
	// without spending them.
	sleep func(ctx context.Context, d time.Duration) error
	// inject, set only by tests (export_test.go), fails the next call of
	// an operation before it does anything.
	inject func(op string) error
}

var _ connectors.Connector = (*Connector)(nil)

// New checks the configuration and the data map's entry for the system. It
// does not call Creem: a connector may be built while Creem is unreachable,
// and the first operation reports that as a retryable error.
func New(ctx context.Context, cfg Config) (*Connector, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("creem %s: %w", cfg.System, err)
	}
	c := &Connector{cfg: cfg, base: base, clock: cfg.Clock, log: cfg.Log, sleep: connectors.Sleep}
	if cfg.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		c.client = &http.Client{Transport: tr, Timeout: 30 * time.Second}
		c.owned = true
	} else {
		cl := *cfg.HTTPClient
		c.client = &cl
	}
	c.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if _, err := c.model(); err != nil {
		return nil, err
	}
	return c, nil
}

func (cfg *Config) defaults() error {
	if cfg.System == "" {
		return errors.New("creem: Config.System is required")
	}
	if cfg.APIKey == "" {
		return fmt.Errorf("creem %s: Config.APIKey is required", cfg.System)
	}
	if cfg.DataMap == nil {
		return fmt.Errorf("creem %s: Config.DataMap is required", cfg.System)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = LiveBaseURL
	}
	if cfg.SupportContact == "" {
		cfg.SupportContact = DefaultSupportContact
	}
	if cfg.Clock == nil {
		cfg.Clock = connectors.WallClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 3
	} else if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 50
	}
	return nil
}

// checkBaseURL accepts an absolute https URL, or http to a loopback host.
func checkBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("BaseURL %q is not an absolute URL without credentials, query or fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		host := u.Hostname()
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return nil, fmt.Errorf("BaseURL %q: plain http is allowed only to a loopback host", raw)
		}
	default:
		return nil, fmt.Errorf("BaseURL %q: scheme must be https", raw)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// Close releases the connector's idle connections (those of its own
// client; a client passed in Config is the caller's).
func (c *Connector) Close() {
	if c.owned {
		c.client.CloseIdleConnections()
	}
}

// Capabilities: identity resolution, access, and erasure by staff (Erase
// answers with Manual). Creem's API cannot rectify or restrict.
func (c *Connector) Capabilities() connectors.Capabilities {
	return connectors.Capabilities{ResolveIdentities: true, Access: true, Erase: true}
}

// Rectify is not supported: Creem's API cannot change a customer's details.
func (c *Connector) Rectify(context.Context, connectors.RectifyParams) (connectors.RectifyResult, error) {
	return connectors.RectifyResult{}, connectors.ErrUnsupported
}

// Restrict is not supported: Creem's API has no restriction flag.
func (c *Connector) Restrict(context.Context, connectors.RestrictParams) (connectors.RestrictResult, error) {
	return connectors.RestrictResult{}, connectors.ErrUnsupported
}

// Operation names, for errors and the test hook.
const (
	opResolve = "resolve"
	opAccess  = "access"
	opErase   = "erase"
)

// Creem API object types, as the data map's datasets name them.
const (
	objCustomer     = "customer"
	objSubscription = "subscription"
	objTransaction  = "transaction"
)

// dataset is one data-map dataset of the system, as this connector reads
// it.
type dataset struct {
	id     string
	object string
	fields map[string]datamap.Field
	// refs are fields that reference another dataset (subscription.customer
	// → customers.id). Creem expands some of them into whole objects; the
	// connector discloses the referenced id, as the map's category for the
	// field (an id) says.
	refs map[string]bool
}

// model is the system's datasets, from the current data map.
type model struct {
	system   string
	datasets map[string]*dataset
}

// model reads the system's entry from the current data map. A map without
// the system, or a dataset of an object this connector cannot read, is a
// permanent error naming the entry: a map that silently misses a dataset
// misses a person's data.
func (c *Connector) model() (*model, error) {
	dm := c.cfg.DataMap()
	if dm == nil {
		return nil, connectors.Permanent(fmt.Errorf("creem %s: no data map loaded", c.cfg.System))
	}
	sys, ok := dm.Systems[c.cfg.System]
	if !ok {
		return nil, connectors.Permanent(fmt.Errorf("creem %s: the data map has no system %q", c.cfg.System, c.cfg.System))
	}
	m := &model{system: c.cfg.System, datasets: map[string]*dataset{}}
	for id, ds := range sys.Datasets {
		switch ds.Object {
		case objCustomer, objSubscription, objTransaction:
		default:
			return nil, connectors.Permanent(fmt.Errorf("creem %s: dataset %q has object %q; this connector reads customer, subscription and transaction",
				c.cfg.System, id, ds.Object))
		}
		d := &dataset{id: id, object: ds.Object, fields: ds.Fields, refs: map[string]bool{}}
		for _, r := range ds.References {
			d.refs[r.Field] = true
		}
		m.datasets[id] = d
	}
	return m, nil
}

// enter starts an operation: the context must be live; a test may inject a
// failure; the data map must hold the system.
func (c *Connector) enter(ctx context.Context, op string) (*model, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("creem %s: %s: %w", c.cfg.System, op, err)
	}
	if c.inject != nil {
		if err := c.inject(op); err != nil {
			return nil, err
		}
	}
	return c.model()
}

// dataset returns the target's dataset, or a permanent error: the plan
// names something this connector does not hold.
func (m *model) dataset(op string, t connectors.Target) (*dataset, error) {
	if t.System != m.system {
		return nil, connectors.Permanent(fmt.Errorf("creem %s: %s: target system %q is not this connector's", m.system, op, t.System))
	}
	ds := m.datasets[t.Dataset]
	if ds == nil {
		return nil, connectors.Permanent(fmt.Errorf("creem %s: %s: no dataset %q in the data map", m.system, op, t.Dataset))
	}
	return ds, nil
}

// checkPlan checks every planned field is a field of the dataset in the
// data map: the connector discloses nothing the map does not declare.
func (ds *dataset) checkPlan(system, op string, fields []connectors.FieldPlan) error {
	if len(fields) == 0 {
		return connectors.Permanent(fmt.Errorf("creem %s: %s %s: the plan has no fields", system, op, ds.id))
	}
	for _, f := range fields {
		if _, ok := ds.fields[f.Field]; !ok {
			return connectors.Permanent(fmt.Errorf("creem %s: %s %s: field %q is not in the data map's dataset", system, op, ds.id, f.Field))
		}
	}
	return nil
}
