package creem_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/creem"
	"github.com/steward-privacy/steward/connectors/creem/creemfake"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/policies"
)

const apiKey = "creem_test_0123456789abcdef"

var (
	dmOnce sync.Once
	dm     *datamap.Map
	dmErr  error
)

// dataMap is the project's data map, whose system "creem" the connector
// serves.
func dataMap(t testing.TB) *datamap.Map {
	t.Helper()
	dmOnce.Do(func() {
		e, err := policy.Load(context.Background(), policies.FS)
		if err != nil {
			dmErr = err
			return
		}
		dm = e.DataMap
	})
	if dmErr != nil {
		t.Fatalf("load policies: %v", dmErr)
	}
	return dm
}

func staticMap(m *datamap.Map) func() *datamap.Map { return func() *datamap.Map { return m } }

// sleeps records the connector's waits between retries instead of
// spending them.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return nil
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.d)
}

// logBuffer collects the connector's logs at every level, to check they
// carry no personal data.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type env struct {
	fake   *creemfake.Server
	c      *creem.Connector
	sleeps *sleeps
	logs   *logBuffer
}

// newEnv starts a fake and a connector on it, with recorded sleeps and
// logs. mod adjusts the configuration.
func newEnv(t testing.TB, mod func(*creem.Config)) *env {
	t.Helper()
	fake := creemfake.New(apiKey)
	t.Cleanup(fake.Close)
	e := &env{fake: fake, sleeps: &sleeps{}, logs: &logBuffer{}}
	cfg := creem.Config{
		System:  "creem",
		APIKey:  apiKey,
		BaseURL: fake.URL(),
		Store:   "Acme Studio",
		DataMap: staticMap(dataMap(t)),
		Log:     slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := creem.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("creem.New: %v", err)
	}
	t.Cleanup(c.Close)
	creem.SetSleep(c, e.sleeps.sleep)
	e.c = c
	return e
}

func id(typ, v string) connectors.Identity { return connectors.Identity{Type: typ, Value: v} }

// plan is a plan of action for every field of the data map's dataset,
// with the map's categories.
func plan(t testing.TB, dataset, action string) []connectors.FieldPlan {
	t.Helper()
	ds, ok := dataMap(t).Systems["creem"].Datasets[dataset]
	if !ok {
		t.Fatalf("data map has no creem dataset %q", dataset)
	}
	var out []connectors.FieldPlan
	for f, def := range ds.Fields {
		fp := connectors.FieldPlan{Field: f, Category: def.Category, Action: action}
		if action == connectors.ActionRetain {
			fp.Basis, fp.Until = "legal_obligation", "10 years"
		}
		out = append(out, fp)
	}
	slices.SortFunc(out, func(a, b connectors.FieldPlan) int {
		if a.Field < b.Field {
			return -1
		}
		return 1
	})
	return out
}

func target(dataset string, ids ...connectors.Identity) connectors.Target {
	return connectors.Target{System: "creem", Dataset: dataset, Identities: ids, RequestID: "req-1", IdempotencyKey: "req-1/1"}
}

// person is a seeded customer and what they have.
type person struct {
	email, name, customer string
	subs, txns            []string
}

// seedPerson adds a customer with subs subscriptions and txns
// transactions.
func seedPerson(f *creemfake.Server, email, name string, subs, txns int) person {
	p := person{email: email, name: name}
	p.customer = f.AddCustomer(creemfake.Customer{Email: email, Name: name, Country: "DE"})
	for range subs {
		p.subs = append(p.subs, f.AddSubscription(creemfake.Subscription{Customer: p.customer}))
	}
	for i := range txns {
		p.txns = append(p.txns, f.AddTransaction(creemfake.Transaction{Customer: p.customer, Amount: int64(1000 + i), TaxAmount: 190, TaxCountry: "DE"}))
	}
	return p
}

func (p person) ids() []string {
	return append(append([]string{p.customer}, p.subs...), p.txns...)
}
