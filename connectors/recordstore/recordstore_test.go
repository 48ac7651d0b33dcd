package recordstore_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/recordstore"
	"github.com/steward-privacy/steward/internal/db/dbtest"
)

var hashKey = []byte("recordstore test key, not a secret")

func newStore(t *testing.T, opts recordstore.Options) (*recordstore.Store, *pgxpool.Pool) {
	t.Helper()
	_, pool := dbtest.New(t)
	st := recordstore.New(pool, opts)
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return st, pool
}

func ident(typ, v string) connectors.Identity { return connectors.Identity{Type: typ, Value: v} }

func hmacHex(msg string) string {
	m := hmac.New(sha256.New, hashKey)
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// person is one seeded subject.
type person struct {
	id                  string
	email, user, stripe connectors.Identity
	oauth               connectors.Identity
}

func newPerson() person {
	id := strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	return person{
		id:     id,
		email:  ident("email", "ann-"+id+"@example.com"),
		user:   ident("user", "u-"+id),
		stripe: ident("stripe", "cus_"+id),
		oauth:  connectors.Identity{Type: "oauth", Provider: "google", Value: "g-" + id},
	}
}

// Plans for the seeded datasets.
var (
	usersPlan = []connectors.FieldPlan{
		{Field: "email", Category: "user.contact.email", Action: connectors.ActionDelete},
		{Field: "name", Category: "user.name", Action: connectors.ActionMask, Strategy: connectors.StrategyKeyedHash},
		{Field: "created_at", Category: "system.operations", Action: connectors.ActionMask, Strategy: connectors.StrategyTruncateDate},
		{Field: "plan", Category: "user.account", Action: connectors.ActionMask, Strategy: connectors.StrategyFixed, Value: "[removed]"},
		{Field: "country", Category: "user.contact.address.country", Action: connectors.ActionRetain, Basis: "accounting", Until: "2031-12-31"},
	}
	ordersPlan = []connectors.FieldPlan{
		{Field: "item", Category: "user.behavior.purchase", Action: connectors.ActionDelete},
		{Field: "amount", Category: "user.financial", Action: connectors.ActionDelete},
	}
	customersPlan = []connectors.FieldPlan{
		{Field: "customer_name", Category: "user.name", Action: connectors.ActionMask, Strategy: connectors.StrategyPseudonym},
		{Field: "phone", Category: "user.contact.phone_number", Action: connectors.ActionMask, Strategy: connectors.StrategyNull},
		{Field: "invoice_total", Category: "user.financial", Action: connectors.ActionRetain, Basis: "tax law"},
	}
)

// seedPerson stores p's records: one user, three orders (under the user id
// only, so they are found only after resolution) and a customer (under the
// Stripe id), and links the identities email - user - stripe, user - oauth.
func seedPerson(ctx context.Context, st *recordstore.Store, p person) error {
	for _, l := range [][2]connectors.Identity{{p.email, p.user}, {p.user, p.stripe}, {p.user, p.oauth}} {
		if err := st.Link(ctx, l[0], l[1]); err != nil {
			return err
		}
	}
	if err := st.Put(ctx, "app", "users", "user-"+p.id, []connectors.Identity{p.email, p.user}, map[string]any{
		"email": p.email.Value, "name": "Ann " + p.id, "created_at": "2024-03-05T23:20:30+02:00",
		"plan": 42, "country": "DE",
	}); err != nil {
		return err
	}
	for i := range 3 {
		if err := st.Put(ctx, "app", "orders", fmt.Sprintf("order-%s-%d", p.id, i), []connectors.Identity{p.user},
			map[string]any{"item": "book", "amount": 12.5 + float64(i)}); err != nil {
			return err
		}
	}
	return st.Put(ctx, "billing", "customers", "cust-"+p.id, []connectors.Identity{p.stripe}, map[string]any{
		"customer_name": "Ann " + p.id, "phone": "+49 30 1234567", "invoice_total": 99,
	})
}

// countOf counts the records stored under any of p's identities.
func countOf(t testing.TB, pool *pgxpool.Pool, p person) int {
	t.Helper()
	var n int
	err := pool.QueryRow(context.Background(), `
		SELECT count(DISTINCT (system, dataset, record_key)) FROM recordstore_record_identities
		WHERE id_value = ANY($1)`, []string{p.email.Value, p.user.Value, p.stripe.Value}).Scan(&n)
	if err != nil {
		t.Fatalf("count records: %v", err)
	}
	return n
}

// fixture seeds, per subtest, a subject and another person sharing the
// datasets.
func fixture(st *recordstore.Store, pool *pgxpool.Pool) connectortest.Fixture {
	return connectortest.Fixture{
		Connector: st,
		Inject:    func(op string, err error) { st.FailNext(op, 1, err) },
		Seed: func(t testing.TB) connectortest.Subject {
			ctx := context.Background()
			p, other := newPerson(), newPerson()
			for _, q := range []person{p, other} {
				if err := seedPerson(ctx, st, q); err != nil {
					t.Fatalf("seed: %v", err)
				}
			}
			return connectortest.Subject{
				Identities: []connectors.Identity{p.email},
				Linked:     []connectors.Identity{p.user, p.stripe, p.oauth},
				Datasets: []connectortest.Dataset{
					{System: "app", Dataset: "users", Fields: usersPlan, Records: 1, Rectify: map[string]string{"name": "Ann Corrected"}},
					{System: "app", Dataset: "orders", Fields: ordersPlan, Records: 3},
					{System: "billing", Dataset: "customers", Fields: customersPlan, Records: 1},
				},
				Others: func(t testing.TB) int { return countOf(t, pool, other) },
			}
		},
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t, recordstore.Options{HashKey: hashKey})
	connectortest.Run(t, fixture(st, pool))
}

// A store lacking Rectify and Restrict, as a connector to a system that
// cannot do them: the suite checks those return ErrUnsupported.
func TestConformancePartialCapabilities(t *testing.T) {
	t.Parallel()
	_, pool := newStore(t, recordstore.Options{})
	st := recordstore.New(pool, recordstore.Options{HashKey: hashKey, Capabilities: connectors.Capabilities{
		ResolveIdentities: true, Access: true, Erase: true,
	}})
	connectortest.Run(t, fixture(st, pool))

	_, err := st.Rectify(context.Background(), connectors.RectifyParams{})
	if !errors.Is(err, connectors.ErrUnsupported) {
		t.Errorf("Rectify on a store without it: want ErrUnsupported, got %v", err)
	}
}

func target(system, dataset string, ids ...connectors.Identity) connectors.Target {
	return connectors.Target{System: system, Dataset: dataset, Identities: ids,
		RequestID: uuid.NewString(), IdempotencyKey: uuid.NewString()}
}

func access(t *testing.T, st *recordstore.Store, tg connectors.Target, plan []connectors.FieldPlan) []connectors.Record {
	t.Helper()
	sink := &connectortest.MemorySink{}
	if _, err := st.Access(context.Background(), connectors.AccessParams{Target: tg, Fields: plan}, sink); err != nil {
		t.Fatalf("Access: %v", err)
	}
	return sink.Records()
}

func fieldValues(r connectors.Record) map[string]any {
	m := map[string]any{}
	for _, f := range r.Fields {
		m[f.Field] = f.Value
	}
	return m
}

// fingerprint hashes every record (fields, masks, restriction, identities)
// whose key does not contain except (all when it is empty), to show an
// operation touched nothing else.
func fingerprint(t *testing.T, pool *pgxpool.Pool, except string) string {
	t.Helper()
	var h string
	err := pool.QueryRow(context.Background(), `
		SELECT md5(coalesce(string_agg(concat_ws('|', r.system, r.dataset, r.record_key, r.fields::text,
			r.masked::text, r.restricted::text, r.restrict_reason,
			(SELECT string_agg(concat_ws(':', i.id_type, i.id_provider, i.id_value), ',' ORDER BY i.id_type, i.id_provider, i.id_value)
			 FROM recordstore_record_identities i
			 WHERE i.system = r.system AND i.dataset = r.dataset AND i.record_key = r.record_key)),
			';' ORDER BY r.system, r.dataset, r.record_key), ''))
		FROM recordstore_records r WHERE $1 = '' OR strpos(r.record_key, $1) = 0`, except).Scan(&h)
	if err != nil {
		t.Fatalf("fingerprint: %v", err)
	}
	return h
}

func TestEraseOneAmongThousand(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t, recordstore.Options{HashKey: hashKey})
	ctx := context.Background()
	people := make([]person, 1000)
	for i := range people {
		people[i] = newPerson()
	}
	// Seed in parallel: the pool has 20 connections.
	var wg sync.WaitGroup
	errs := make(chan error, len(people))
	next := make(chan person)
	for range 16 {
		wg.Go(func() {
			for p := range next {
				if err := seedPerson(ctx, st, p); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, p := range people {
		next <- p
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("seed: %v", err)
	}

	p := people[500]
	before := fingerprint(t, pool, p.id)
	users, _ := st.Count(ctx, "app", "users")
	orders, _ := st.Count(ctx, "app", "orders")
	if users != 1000 || orders != 3000 {
		t.Fatalf("seeded %d users, %d orders", users, orders)
	}
	found, err := st.ResolveIdentities(ctx, []connectors.Identity{p.email})
	if err != nil || len(found) != 3 {
		t.Fatalf("ResolveIdentities among 1,000: %d identities, %v", len(found), err)
	}
	ids := append(found, p.email)
	for _, ds := range []struct {
		name string
		plan []connectors.FieldPlan
	}{{"users", usersPlan}, {"orders", ordersPlan}} {
		if _, err := st.Erase(ctx, connectors.EraseParams{Target: target("app", ds.name, ids...), Fields: ds.plan}); err != nil {
			t.Fatalf("Erase %s: %v", ds.name, err)
		}
	}
	if after := fingerprint(t, pool, p.id); after != before {
		t.Errorf("erasing one subject changed other subjects' records")
	}
	if n, _ := st.Count(ctx, "app", "orders"); n != 2997 {
		t.Errorf("orders after erasure: %d, want 2997", n)
	}
	if n, _ := st.Count(ctx, "app", "users"); n != 1000 {
		t.Errorf("users after erasure: %d, want 1000 (the record is kept for its retained field)", n)
	}
	recs := access(t, st, target("app", "users", ids...), usersPlan)
	if len(recs) != 1 {
		t.Fatalf("erased subject's users: %d records", len(recs))
	}
	got := fieldValues(recs[0])
	if got["email"] != nil || got["country"] != "DE" || got["plan"] != "[removed]" || got["created_at"] != "2024-03-05" ||
		got["name"] != hmacHex("Ann "+p.id) {
		t.Errorf("erased user reads %v", got)
	}
}

func TestEffectsAppliedOnce(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t, recordstore.Options{HashKey: hashKey})
	ctx := context.Background()
	p := newPerson()
	if err := seedPerson(ctx, st, p); err != nil {
		t.Fatal(err)
	}
	tg := target("app", "users", p.email, p.user)
	params := connectors.EraseParams{Target: tg, Fields: usersPlan}
	first, err := st.Erase(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if first.Masked != 1 || first.Deleted != 0 || len(first.Retained) != 1 || first.Retained[0].Records != 1 {
		t.Fatalf("first Erase: %+v", first)
	}
	state := fingerprint(t, pool, "")

	// Concurrent retries with the same key, as after a worker died: each
	// returns the stored result and nothing is applied again.
	var wg sync.WaitGroup
	results := make([]connectors.EraseResult, 8)
	errs := make([]error, 8)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = st.Erase(ctx, params) })
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("replay %d: %v", i, errs[i])
		}
		if fmt.Sprint(results[i]) != fmt.Sprint(first) {
			t.Errorf("replay %d returned %+v, want the stored %+v", i, results[i], first)
		}
	}
	if n, err := st.Effects(ctx, tg.IdempotencyKey); err != nil || n != 1 {
		t.Errorf("Effects(key) = %d, %v; want 1", n, err)
	}
	if fingerprint(t, pool, "") != state {
		t.Errorf("replaying the same key changed the data (the keyed hash was hashed again?)")
	}

	// A new run with its own key finds nothing to do, and is recorded.
	again := params
	again.IdempotencyKey = uuid.NewString()
	res, err := st.Erase(ctx, again)
	if err != nil || res.Deleted != 0 || res.Masked != 0 {
		t.Errorf("second run: %+v, %v; want nothing to do", res, err)
	}
	if n, _ := st.Effects(ctx, again.IdempotencyKey); n != 1 {
		t.Errorf("Effects(second key) = %d, want 1", n)
	}
	if fingerprint(t, pool, "") != state {
		t.Errorf("second run changed the data")
	}
}

func TestConcurrentFirstRunsApplyOnce(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t, recordstore.Options{HashKey: hashKey})
	ctx := context.Background()
	p := newPerson()
	if err := seedPerson(ctx, st, p); err != nil {
		t.Fatal(err)
	}
	params := connectors.EraseParams{Target: target("app", "orders", p.user), Fields: ordersPlan}
	var wg sync.WaitGroup
	var mu sync.Mutex
	deleted := 0
	for range 8 {
		wg.Go(func() {
			res, err := st.Erase(ctx, params)
			if err != nil {
				t.Errorf("Erase: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if deleted == 0 {
				deleted = res.Deleted
			} else if res.Deleted != deleted {
				t.Errorf("concurrent runs of one key disagree: %d and %d deleted", deleted, res.Deleted)
			}
		})
	}
	wg.Wait()
	if deleted != 3 {
		t.Errorf("deleted %d orders, want 3", deleted)
	}
	if n, _ := st.Effects(ctx, params.IdempotencyKey); n != 1 {
		t.Errorf("Effects = %d, want 1", n)
	}
}

func TestMaskStrategies(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t, recordstore.Options{HashKey: hashKey})
	ctx := context.Background()
	p := newPerson()
	if err := seedPerson(ctx, st, p); err != nil {
		t.Fatal(err)
	}
	tg := target("billing", "customers", p.stripe)
	res, err := st.Erase(ctx, connectors.EraseParams{Target: tg, Fields: customersPlan})
	if err != nil {
		t.Fatal(err)
	}
	if res.Masked != 1 || len(res.Retained) != 1 || res.Retained[0] != (connectors.Retained{Field: "invoice_total", Basis: "tax law", Records: 1}) {
		t.Errorf("Erase: %+v", res)
	}
	got := fieldValues(access(t, st, tg, customersPlan)[0])
	if want := "pseudonym-" + hmacHex(tg.RequestID)[:12]; got["customer_name"] != want {
		t.Errorf("pseudonym: %v, want %s", got["customer_name"], want)
	}
	if got["phone"] != nil {
		t.Errorf("null mask: %v", got["phone"])
	}
	if fmt.Sprint(got["invoice_total"]) != "99" {
		t.Errorf("retained number reads %v", got["invoice_total"])
	}

	// The same plan in another request gives that request's pseudonym.
	tg2 := target("billing", "customers", p.stripe)
	res, err = st.Erase(ctx, connectors.EraseParams{Target: tg2, Fields: customersPlan})
	if err != nil || res.Masked != 1 {
		t.Errorf("Erase in another request: %+v, %v", res, err)
	}
}

func TestAccessDisclosesMaskedAndSkipsDeleted(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t, recordstore.Options{HashKey: hashKey})
	ctx := context.Background()
	p := newPerson()
	if err := seedPerson(ctx, st, p); err != nil {
		t.Fatal(err)
	}
	plan := []connectors.FieldPlan{
		{Field: "email", Category: "user.contact.email", Action: connectors.ActionInclude},
		{Field: "name", Category: "user.name", Action: connectors.ActionMask, Strategy: connectors.StrategyFixed, Value: "[withheld]"},
		{Field: "plan", Category: "user.account", Action: connectors.ActionDelete},
	}
	recs := access(t, st, target("app", "users", p.email), plan)
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	got := fieldValues(recs[0])
	if len(got) != 2 || got["email"] != p.email.Value || got["name"] != "[withheld]" {
		t.Errorf("Access disclosed %v", got)
	}
	if _, ok := recs[0].Fields[0].Value.(string); !ok || recs[0].Fields[0].Category != "user.contact.email" {
		t.Errorf("first field %+v", recs[0].Fields[0])
	}
}

func TestRestrictMarksRecords(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t, recordstore.Options{})
	ctx := context.Background()
	p := newPerson()
	if err := seedPerson(ctx, st, p); err != nil {
		t.Fatal(err)
	}
	res, err := st.Restrict(ctx, connectors.RestrictParams{Target: target("app", "orders", p.user), Restricted: true, Reason: "contested"})
	if err != nil || res.Restricted != 3 {
		t.Fatalf("Restrict: %+v, %v", res, err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM recordstore_records WHERE restricted AND restrict_reason = 'contested'`).Scan(&n); err != nil || n != 3 {
		t.Errorf("restricted rows: %d, %v", n, err)
	}
	res, err = st.Restrict(ctx, connectors.RestrictParams{Target: target("app", "orders", p.user)})
	if err != nil || res.Restricted != 3 {
		t.Fatalf("lifting: %+v, %v", res, err)
	}
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM recordstore_records WHERE restricted OR restrict_reason IS NOT NULL`).Scan(&n); err != nil || n != 0 {
		t.Errorf("restricted rows after lifting: %d, %v", n, err)
	}
}

func TestResolveFollowsLinksTransitively(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t, recordstore.Options{})
	ctx := context.Background()
	a, b, c, d := ident("email", "a@example.com"), ident("user", "1"), ident("tg", "2"), ident("stripe", "cus_3")
	gh := connectors.Identity{Type: "oauth", Provider: "github", Value: "7"}
	gg := connectors.Identity{Type: "oauth", Provider: "google", Value: "7"}
	for _, l := range [][2]connectors.Identity{{a, b}, {b, c}, {c, d}, {d, a}, {c, gh}} {
		if err := st.Link(ctx, l[0], l[1]); err != nil {
			t.Fatal(err)
		}
	}
	got, err := st.ResolveIdentities(ctx, []connectors.Identity{d})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint([]connectors.Identity{a, gh, c, b}) {
		t.Errorf("from d: %v", got)
	}
	// An oauth id is unique only per provider.
	if got, err := st.ResolveIdentities(ctx, []connectors.Identity{gg}); err != nil || len(got) != 0 {
		t.Errorf("google 7 resolved to %v, %v; only github 7 is linked", got, err)
	}
}

func TestFailNext(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t, recordstore.Options{})
	ctx := context.Background()
	p := newPerson()
	if err := seedPerson(ctx, st, p); err != nil {
		t.Fatal(err)
	}
	down := errors.New("system down")
	st.FailNext(recordstore.OpAccess, 2, connectors.Retryable(down, 3*time.Second))
	st.FailNext(recordstore.OpAccess, 1, connectors.Permanent(down))
	tg := target("app", "orders", p.user)
	call := func() error {
		_, err := st.Access(ctx, connectors.AccessParams{Target: tg, Fields: ordersPlan}, &connectortest.MemorySink{})
		return err
	}
	for i := range 2 {
		err := call()
		if retry, after := connectors.Classify(err); !errors.Is(err, down) || !retry || after != 3*time.Second {
			t.Errorf("call %d: %v classified retry=%v after=%v", i, err, retry, after)
		}
	}
	if err := call(); !errors.Is(err, down) {
		t.Errorf("third call: %v", err)
	} else if retry, _ := connectors.Classify(err); retry {
		t.Errorf("injected permanent error classified retryable")
	}
	if err := call(); err != nil {
		t.Errorf("after the injected failures: %v", err)
	}

	// A failure is injected before anything happens.
	st.FailNext(recordstore.OpErase, 1, connectors.Retryable(down, 0))
	params := connectors.EraseParams{Target: tg, Fields: ordersPlan}
	if _, err := st.Erase(ctx, params); !errors.Is(err, down) {
		t.Fatalf("Erase: %v", err)
	}
	if n, _ := st.Effects(ctx, tg.IdempotencyKey); n != 0 {
		t.Errorf("failed Erase recorded %d effects", n)
	}
	if n, _ := st.Count(ctx, "app", "orders"); n != 3 {
		t.Errorf("failed Erase left %d orders", n)
	}

	st.FailNext(recordstore.OpResolve, 1, down)
	st.FailNext(recordstore.OpResolve, 0, nil)
	if _, err := st.ResolveIdentities(ctx, []connectors.Identity{p.email}); err != nil {
		t.Errorf("FailNext(op, 0, nil) did not clear: %v", err)
	}
}

func TestHookCancellationChangesNothing(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t, recordstore.Options{HashKey: hashKey})
	p := newPerson()
	if err := seedPerson(context.Background(), st, p); err != nil {
		t.Fatal(err)
	}
	before := fingerprint(t, pool, "")
	entered := make(chan connectors.Target, 1)
	st.SetHook(func(ctx context.Context, op string, tg connectors.Target) error {
		if op != recordstore.OpErase {
			return nil
		}
		entered <- tg
		<-ctx.Done() // the worker is stuck until its lease is lost
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	params := connectors.EraseParams{Target: target("app", "users", p.email, p.user), Fields: usersPlan}
	done := make(chan error, 1)
	go func() {
		_, err := st.Erase(ctx, params)
		done <- err
	}()
	select {
	case tg := <-entered:
		if tg.IdempotencyKey != params.IdempotencyKey {
			t.Errorf("hook got target %+v", tg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("hook not called")
	}
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Erase did not return after cancellation")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Erase: want context.Canceled, got %v", err)
	}
	if retry, _ := connectors.Classify(err); retry {
		t.Errorf("cancellation classified retryable")
	}
	if fingerprint(t, pool, "") != before {
		t.Errorf("cancelled Erase changed data")
	}
	if n, _ := st.Effects(context.Background(), params.IdempotencyKey); n != 0 {
		t.Errorf("cancelled Erase recorded %d effects", n)
	}

	// The retry of the same task applies the effect, once.
	st.SetHook(nil)
	res, err := st.Erase(context.Background(), params)
	if err != nil || res.Masked != 1 {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	if n, _ := st.Effects(context.Background(), params.IdempotencyKey); n != 1 {
		t.Errorf("Effects after retry: %d", n)
	}
}

func TestInvalidParamsArePermanent(t *testing.T) {
	t.Parallel()
	st, pool := newStore(t, recordstore.Options{HashKey: hashKey})
	unkeyed := recordstore.New(pool, recordstore.Options{})
	ctx := context.Background()
	p := newPerson()
	if err := seedPerson(ctx, st, p); err != nil {
		t.Fatal(err)
	}
	before := fingerprint(t, pool, "")
	users := target("app", "users", p.email)
	noKey := users
	noKey.IdempotencyKey = ""
	cases := map[string]func() error{
		"no identities": func() error {
			_, err := st.Erase(ctx, connectors.EraseParams{Target: target("app", "users"), Fields: usersPlan})
			return err
		},
		"identity without value": func() error {
			_, err := st.ResolveIdentities(ctx, []connectors.Identity{{Type: "email"}})
			return err
		},
		"unknown field in changes": func() error {
			_, err := st.Rectify(ctx, connectors.RectifyParams{Target: users, Changes: map[string]string{"name": p.email.Value, "nickname": "x"}})
			return err
		},
		"no changes": func() error {
			_, err := st.Rectify(ctx, connectors.RectifyParams{Target: users})
			return err
		},
		"unknown strategy": func() error {
			_, err := st.Erase(ctx, connectors.EraseParams{Target: users, Fields: []connectors.FieldPlan{{Field: "name", Action: "mask", Strategy: "rot13"}}})
			return err
		},
		"unknown action": func() error {
			_, err := st.Access(ctx, connectors.AccessParams{Target: users, Fields: []connectors.FieldPlan{{Field: "name", Action: "shout"}}}, &connectortest.MemorySink{})
			return err
		},
		"keyed hash without a key": func() error {
			_, err := unkeyed.Erase(ctx, connectors.EraseParams{Target: users, Fields: usersPlan})
			return err
		},
		"no idempotency key": func() error {
			_, err := st.Restrict(ctx, connectors.RestrictParams{Target: noKey, Restricted: true})
			return err
		},
		"not a timestamp": func() error {
			plan := []connectors.FieldPlan{{Field: "country", Action: "mask", Strategy: connectors.StrategyTruncateDate}}
			_, err := st.Erase(ctx, connectors.EraseParams{Target: target("app", "users", p.email), Fields: plan})
			return err
		},
	}
	for name, call := range cases {
		err := call()
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if retry, _ := connectors.Classify(err); retry {
			t.Errorf("%s: classified retryable: %v", name, err)
		}
		for _, v := range []string{p.email.Value, p.user.Value, p.id} {
			if strings.Contains(err.Error(), v) {
				t.Errorf("%s: error names an identity value: %v", name, err)
			}
		}
	}
	if fingerprint(t, pool, "") != before {
		t.Errorf("invalid calls changed data (a rejected Rectify must roll back)")
	}
	var effects int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM recordstore_effects`).Scan(&effects); err != nil || effects != 0 {
		t.Errorf("invalid calls recorded %d effects, %v", effects, err)
	}
}

func TestConnectionErrorsAreRetryable(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: every call fails to connect.
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	st := recordstore.New(pool, recordstore.Options{HashKey: hashKey})
	p := newPerson()
	tg := target("app", "users", p.email)
	checks := map[string]error{}
	_, checks["resolve"] = st.ResolveIdentities(context.Background(), []connectors.Identity{p.email})
	_, checks["access"] = st.Access(context.Background(), connectors.AccessParams{Target: tg, Fields: usersPlan}, &connectortest.MemorySink{})
	_, checks["erase"] = st.Erase(context.Background(), connectors.EraseParams{Target: tg, Fields: usersPlan})
	for op, err := range checks {
		var ce *connectors.Error
		if !errors.As(err, &ce) || !ce.Retryable {
			t.Errorf("%s with the database unreachable: want a classified retryable error, got %v", op, err)
		}
		if err != nil && strings.Contains(err.Error(), p.id) {
			t.Errorf("%s: error names an identity value: %v", op, err)
		}
	}
}

func TestConcurrentMigrate(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if err := recordstore.New(pool, recordstore.Options{}).Migrate(context.Background()); err != nil {
				t.Errorf("Migrate: %v", err)
			}
		})
	}
	wg.Wait()
	if n, err := recordstore.New(pool, recordstore.Options{}).Count(context.Background(), "app", "users"); err != nil || n != 0 {
		t.Errorf("Count after Migrate: %d, %v", n, err)
	}
}
