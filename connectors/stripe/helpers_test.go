package stripe_test

import (
	"context"
	"encoding/json"
	"hash/crc32"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/stripe"
	"github.com/steward-privacy/steward/connectors/stripe/stripefake"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/policies"
)

var now = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

var (
	engineOnce sync.Once
	engine     *policy.Engine
	engineErr  error
)

// policyEngine is the real policies (data map, retention schedule, DSAR
// rules), loaded once.
func policyEngine(t testing.TB) *policy.Engine {
	t.Helper()
	engineOnce.Do(func() { engine, engineErr = policy.Load(context.Background(), policies.FS) })
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engine
}

func realMap(t testing.TB) *datamap.Map { return policyEngine(t).DataMap }

func staticMap(dm *datamap.Map) func() *datamap.Map { return func() *datamap.Map { return dm } }

// sleeps records the waits between retries instead of sleeping.
type sleeps struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.waits)
}

// newConnector makes a connector for the real data map's stripe system
// against baseURL, recording retry waits in the returned sleeps.
func newConnector(t testing.TB, baseURL string, mod func(*stripe.Config)) (*stripe.Connector, *sleeps) {
	t.Helper()
	cfg := stripe.Config{System: "stripe", APIKey: "sk_test_steward", BaseURL: baseURL,
		DataMap: staticMap(realMap(t)), Clock: clock.NewFake(now)}
	if mod != nil {
		mod(&cfg)
	}
	c, err := stripe.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	sl := &sleeps{}
	stripe.SetSleep(c, sl.sleep)
	return c, sl
}

func id(typ, v string) connectors.Identity { return connectors.Identity{Type: typ, Value: v} }

func retain(f string) connectors.FieldPlan {
	return connectors.FieldPlan{Field: f, Category: "user.financial.payment", Action: connectors.ActionRetain,
		Basis: "Payment and invoice records must be kept to meet accounting and tax obligations", Until: "5 years from the record date"}
}

func del(f string) connectors.FieldPlan {
	return connectors.FieldPlan{Field: f, Category: "user", Action: connectors.ActionDelete}
}

func mask(f, strategy, value string) connectors.FieldPlan {
	return connectors.FieldPlan{Field: f, Category: "user", Action: connectors.ActionMask, Strategy: strategy, Value: value}
}

func retainAll(fields ...string) []connectors.FieldPlan {
	out := make([]connectors.FieldPlan, len(fields))
	for i, f := range fields {
		out[i] = retain(f)
	}
	return out
}

func deleteAll(fields ...string) []connectors.FieldPlan {
	out := make([]connectors.FieldPlan, len(fields))
	for i, f := range fields {
		out[i] = del(f)
	}
	return out
}

// mapFields are the mapped fields of a stripe dataset, sorted.
func mapFields(t testing.TB, dataset string) []string {
	t.Helper()
	ds, ok := realMap(t).Systems["stripe"].Datasets[dataset]
	if !ok {
		t.Fatalf("no dataset stripe.%s in the data map", dataset)
	}
	return slices.Sorted(maps.Keys(ds.Fields))
}

// policyPlan is the plan the real policies make for an erasure (GDPR) or
// an access of every field of a stripe dataset.
func policyPlan(t testing.TB, requestType, dataset string) []connectors.FieldPlan {
	t.Helper()
	e := policyEngine(t)
	ds := e.DataMap.Systems["stripe"].Datasets[dataset]
	var out []connectors.FieldPlan
	for _, f := range mapFields(t, dataset) {
		d, err := e.DecideDSAR(context.Background(), policy.DSARInput{RequestType: requestType, Regime: "gdpr",
			Field: policy.DSARField{System: "stripe", Dataset: dataset, Field: f, Category: ds.Fields[f].Category,
				Retention: ds.Retention, Purpose: ds.Purpose, Identity: "email"}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, connectors.FieldPlan{Field: f, Category: ds.Fields[f].Category, Action: d.Action,
			Strategy: d.Strategy, Value: d.Value, Basis: d.Basis, Until: d.Until})
	}
	return out
}

func target(dataset, key string, ids ...connectors.Identity) connectors.Target {
	return connectors.Target{System: "stripe", Dataset: dataset, Identities: ids, RequestID: "req-" + key, IdempotencyKey: key}
}

// digest is a checksum of the fake's objects that keep passes.
func digest(t testing.TB, f *stripefake.Server, keep func(map[string]any) bool) int {
	t.Helper()
	var sel []map[string]any
	for _, o := range f.Objects() {
		if keep(o) {
			sel = append(sel, o)
		}
	}
	b, err := json.Marshal(sel)
	if err != nil {
		t.Fatal(err)
	}
	return int(crc32.ChecksumIEEE(b))
}

func str(v any) string { s, _ := v.(string); return s }
