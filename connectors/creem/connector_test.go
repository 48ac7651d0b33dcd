package creem_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/creem"
	"github.com/steward-privacy/steward/connectors/creem/creemfake"
	"github.com/steward-privacy/steward/datamap"
)

func sortedIDs(ids []connectors.Identity) []string {
	out := make([]string, len(ids))
	for i, x := range ids {
		out[i] = x.String()
	}
	slices.Sort(out)
	return out
}

func TestResolveIdentities(t *testing.T) {
	e := newEnv(t, nil)
	ann := seedPerson(e.fake, "ann@example.com", "Ann Example", 1, 1)
	bob := seedPerson(e.fake, "bob@example.com", "Bob Example", 1, 1)
	// Ann paid a second time under another address: a second customer,
	// known to the application by its id.
	ann2 := e.fake.AddCustomer(creemfake.Customer{Email: "Ann.Work@Example.com", Name: "Ann Example"})
	ctx := context.Background()

	got, err := e.c.ResolveIdentities(ctx, []connectors.Identity{id("email", ann.email)})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"creem:" + ann.customer}; !slices.Equal(sortedIDs(got), want) {
		t.Errorf("by email: got %v, want %v", sortedIDs(got), want)
	}

	// By creem id: the customer's email, normalized as Steward keeps
	// emails; the known id is not returned.
	got, err = e.c.ResolveIdentities(ctx, []connectors.Identity{id("creem", ann2)})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"email:ann.work@example.com"}; !slices.Equal(sortedIDs(got), want) {
		t.Errorf("by creem id: got %v, want %v", sortedIDs(got), want)
	}

	// Both at once, with an identity type Creem does not know.
	got, err = e.c.ResolveIdentities(ctx, []connectors.Identity{id("email", ann.email), id("creem", ann2), id("tg", "12345")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"creem:" + ann.customer, "email:ann.work@example.com"}
	slices.Sort(want)
	if !slices.Equal(sortedIDs(got), want) {
		t.Errorf("both: got %v, want %v", sortedIDs(got), want)
	}
	for _, g := range got {
		if strings.Contains(g.Value, bob.customer) || strings.Contains(g.Value, "bob@") {
			t.Errorf("another person's identity returned: %v", g)
		}
	}

	for _, unknown := range []connectors.Identity{
		id("email", "nobody@example.com"),
		id("creem", "cust_doesNotExist000000000"),
		id("creem", "../v1/customers"), // not an id: never reaches a URL
	} {
		got, err := e.c.ResolveIdentities(ctx, []connectors.Identity{unknown})
		if err != nil || len(got) != 0 {
			t.Errorf("unknown %v: got %v, %v; want nothing, no error", unknown, got, err)
		}
	}
	for _, r := range e.fake.Requests() {
		if strings.Contains(r.Path, "..") {
			t.Errorf("a path with '..' reached Creem: %s", r.Path)
		}
	}
}

// TestResolveExactEmail: if Creem matched emails ignoring case, a lookup
// could return a different person whose address differs only in case; the
// connector takes only a customer stored under exactly the address asked.
func TestResolveExactEmail(t *testing.T) {
	e := newEnv(t, nil)
	e.fake.SetQuirks(creemfake.Quirks{CaseInsensitiveEmail: true})
	other := seedPerson(e.fake, "Sam.Lee@Example.com", "Sam Lee", 1, 2)
	ctx := context.Background()

	got, err := e.c.ResolveIdentities(ctx, []connectors.Identity{id("email", "sam.lee@example.com")})
	if err != nil || len(got) != 0 {
		t.Fatalf("lookup by a differently-cased email: got %v, %v; want nothing", got, err)
	}
	// The fake did answer with the customer: the connector refused it.
	var answered bool
	for _, r := range e.fake.Requests() {
		answered = answered || r.Path == "/v1/customers" && r.Status == 200
	}
	if !answered {
		t.Fatal("the fake did not return the customer; the test proves nothing")
	}
	sink := &connectortest.MemorySink{}
	res, err := e.c.Access(ctx, connectors.AccessParams{Target: target("transactions", id("email", "sam.lee@example.com")),
		Fields: plan(t, "transactions", connectors.ActionInclude)}, sink)
	if err != nil || res.Records != 0 || len(sink.Records()) != 0 {
		t.Errorf("access by a differently-cased email disclosed %d records (%v)", len(sink.Records()), err)
	}
	if strings.Contains(e.logs.String(), "example.com") || strings.Contains(e.logs.String(), other.customer) {
		t.Errorf("logs carry personal data:\n%s", e.logs)
	}

	got, err = e.c.ResolveIdentities(ctx, []connectors.Identity{id("email", other.email)})
	if err != nil || len(got) != 1 || got[0].Value != other.customer {
		t.Errorf("lookup by the exact email: got %v, %v", got, err)
	}
}

// TestAccessPaginates reads every dataset of a subject with more records
// than a page, among other customers, and checks records, keys, fields and
// values, and that the pages were walked.
func TestAccessPaginates(t *testing.T) {
	e := newEnv(t, func(c *creem.Config) { c.PageSize = 3 })
	var others []person
	for i := range 5 {
		others = append(others, seedPerson(e.fake, fmt.Sprintf("o%d@example.com", i), "Other", 2, 4))
	}
	p := seedPerson(e.fake, "pat@example.com", "Pat Subject", 7, 10)
	ctx := context.Background()
	ids := []connectors.Identity{id("email", p.email), id("creem", p.customer)}

	cases := []struct {
		dataset string
		want    []string
	}{
		{"customers", []string{p.customer}},
		{"subscriptions", p.subs},
		{"transactions", p.txns},
	}
	for _, tc := range cases {
		e.fake.ResetRequests()
		fields := plan(t, tc.dataset, connectors.ActionInclude)
		sink := &connectortest.MemorySink{}
		res, err := e.c.Access(ctx, connectors.AccessParams{Target: target(tc.dataset, ids...), Fields: fields}, sink)
		if err != nil {
			t.Fatalf("Access %s: %v", tc.dataset, err)
		}
		recs := sink.Records()
		if res.Records != len(recs) || len(recs) != len(tc.want) {
			t.Fatalf("Access %s: %d records (result says %d), want %d", tc.dataset, len(recs), res.Records, len(tc.want))
		}
		var keys []string
		for _, r := range recs {
			keys = append(keys, r.Key)
			if r.Dataset != tc.dataset || len(r.Fields) != len(fields) {
				t.Errorf("%s record %s: dataset %q, %d fields; want %d", tc.dataset, r.Key, r.Dataset, len(r.Fields), len(fields))
			}
			vals := map[string]any{}
			for i, fv := range r.Fields {
				if fv.Field != fields[i].Field || fv.Category != fields[i].Category {
					t.Errorf("%s record %s field %d: %s/%s, want %s/%s", tc.dataset, r.Key, i, fv.Field, fv.Category, fields[i].Field, fields[i].Category)
				}
				vals[fv.Field] = fv.Value
			}
			if vals["id"] != r.Key {
				t.Errorf("%s record %s: id field %v", tc.dataset, r.Key, vals["id"])
			}
			switch tc.dataset {
			case "customers":
				if vals["email"] != p.email || vals["name"] != p.name || vals["country"] != "DE" {
					t.Errorf("customer fields: %v", vals)
				}
			case "subscriptions":
				// Creem expands the customer; the map declares it a
				// reference, so it reads as the id.
				if vals["customer"] != p.customer || vals["status"] != "active" || vals["current_period_end_date"] == nil {
					t.Errorf("subscription fields: %v", vals)
				}
			case "transactions":
				if vals["customer"] != p.customer || vals["tax_country"] != "DE" || jsonOf(vals["tax_amount"]) != "190" {
					t.Errorf("transaction fields: %v", vals)
				}
			}
		}
		slices.Sort(keys)
		want := slices.Clone(tc.want)
		slices.Sort(want)
		if !slices.Equal(keys, want) {
			t.Errorf("Access %s: keys %v, want %v", tc.dataset, keys, want)
		}
		var pages []string
		for _, r := range e.fake.Requests() {
			if r.Path != "/v1/customers" {
				pages = append(pages, r.Query.Get("page_number")+"/"+r.Query.Get("page_size"))
			}
		}
		wantPages := map[string][]string{
			"customers":     nil,
			"subscriptions": {"1/3", "2/3", "3/3"},
			"transactions":  {"1/3", "2/3", "3/3", "4/3"},
		}[tc.dataset]
		if !slices.Equal(pages, wantPages) {
			t.Errorf("Access %s: pages %v, want %v", tc.dataset, pages, wantPages)
		}
	}
	_ = others
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestAccessDefences: a transaction search that ignores its customer filter
// (listing the whole store) must still disclose only the subject's.
func TestAccessDefences(t *testing.T) {
	e := newEnv(t, func(c *creem.Config) { c.PageSize = 4 })
	others := []person{
		seedPerson(e.fake, "x@example.com", "X", 0, 3),
		seedPerson(e.fake, "y@example.com", "Y", 0, 5),
	}
	p := seedPerson(e.fake, "pat@example.com", "Pat", 0, 2)
	e.fake.SetQuirks(creemfake.Quirks{IgnoreCustomerFilter: true})
	sink := &connectortest.MemorySink{}
	_, err := e.c.Access(context.Background(), connectors.AccessParams{Target: target("transactions", id("email", p.email)),
		Fields: plan(t, "transactions", connectors.ActionInclude)}, sink)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range sink.Records() {
		keys = append(keys, r.Key)
	}
	slices.Sort(keys)
	want := slices.Sorted(slices.Values(p.txns))
	if !slices.Equal(keys, want) {
		t.Errorf("keys %v, want only the subject's %v", keys, want)
	}
	for _, o := range others {
		for _, x := range o.txns {
			if slices.Contains(keys, x) {
				t.Errorf("another customer's transaction %s disclosed", x)
			}
		}
	}
	if !strings.Contains(e.logs.String(), "skipped=8") {
		t.Errorf("the skipped foreign records were not logged as a count:\n%s", e.logs)
	}
}

// TestAccessDottedPaths reads nested fields by dotted path, with a data map
// that declares them, and refuses a field the map does not declare.
func TestAccessDottedPaths(t *testing.T) {
	m := &datamap.Map{Systems: map[string]datamap.System{"creem": {Kind: "creem", Connector: "creem", Datasets: map[string]datamap.Dataset{
		"subscriptions": {Object: "subscription", References: []datamap.Reference{{Field: "customer", To: "creem.customers.id"}},
			Fields: map[string]datamap.Field{
				"id": {Category: "user.financial.payment"}, "product.name": {Category: "user.financial.payment"},
				"customer.email": {Category: "user.contact.email"}, "customer": {Category: "user.unique_id"},
				"missing.deep.path": {Category: "system.operations"},
			}},
	}}}}
	e := newEnv(t, func(c *creem.Config) { c.DataMap = staticMap(m) })
	p := seedPerson(e.fake, "pat@example.com", "Pat", 1, 0)
	fields := []connectors.FieldPlan{
		{Field: "product.name", Category: "user.financial.payment", Action: connectors.ActionInclude},
		{Field: "customer.email", Category: "user.contact.email", Action: connectors.ActionInclude},
		{Field: "customer", Category: "user.unique_id", Action: connectors.ActionInclude},
		{Field: "missing.deep.path", Category: "system.operations", Action: connectors.ActionInclude},
	}
	sink := &connectortest.MemorySink{}
	if _, err := e.c.Access(context.Background(), connectors.AccessParams{Target: target("subscriptions", id("email", p.email)), Fields: fields}, sink); err != nil {
		t.Fatal(err)
	}
	recs := sink.Records()
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	got := map[string]any{}
	for _, fv := range recs[0].Fields {
		got[fv.Field] = fv.Value
	}
	if got["product.name"] != "Pro monthly" || got["customer.email"] != p.email || got["customer"] != p.customer || got["missing.deep.path"] != nil {
		t.Errorf("values: %v", got)
	}

	fields = append(fields, connectors.FieldPlan{Field: "secret_field", Action: connectors.ActionInclude})
	_, err := e.c.Access(context.Background(), connectors.AccessParams{Target: target("subscriptions", id("email", p.email)), Fields: fields}, &connectortest.MemorySink{})
	if retry, _ := connectors.Classify(err); err == nil || retry || !strings.Contains(err.Error(), "secret_field") {
		t.Errorf("a field outside the data map: want a permanent error naming it, got %v", err)
	}
	_, err = e.c.Access(context.Background(), connectors.AccessParams{Target: target("invoices", id("email", p.email)), Fields: fields[:1]}, &connectortest.MemorySink{})
	if retry, _ := connectors.Classify(err); err == nil || retry {
		t.Errorf("an unknown dataset: want a permanent error, got %v", err)
	}
}

// TestEraseManual checks the staff instructions: every id of the subject's
// records in the dataset, none of anyone else's, no email or name, the
// same text when repeated, nothing changed; and once Creem has deleted the
// records, nothing left to do.
func TestEraseManual(t *testing.T) {
	e := newEnv(t, func(c *creem.Config) { c.PageSize = 2 })
	var others []person
	for i := range 4 {
		others = append(others, seedPerson(e.fake, fmt.Sprintf("other%d@example.com", i), fmt.Sprintf("Other Person%d", i), 2, 3))
	}
	p := seedPerson(e.fake, "pat@example.com", "Pat Subject", 3, 4)
	// A second customer of the same person, reached by its id.
	p2 := e.fake.AddCustomer(creemfake.Customer{Email: "pat.work@example.com", Name: "Pat Subject"})
	p2sub := e.fake.AddSubscription(creemfake.Subscription{Customer: p2})
	ids := []connectors.Identity{id("email", p.email), id("creem", p2)}
	ctx := context.Background()
	digest := e.fake.Digest(p.customer, p2)
	mine := map[string][]string{
		"customers":     {p.customer, p2},
		"subscriptions": append(slices.Clone(p.subs), p2sub),
		"transactions":  p.txns,
	}

	for _, dataset := range []string{"customers", "subscriptions", "transactions"} {
		fields := plan(t, dataset, connectors.ActionDelete)
		tg := target(dataset, ids...)
		first, err := e.c.Erase(ctx, connectors.EraseParams{Target: tg, Fields: fields})
		if err != nil {
			t.Fatalf("Erase %s: %v", dataset, err)
		}
		if first.Manual == "" || first.Deleted != 0 || first.Masked != 0 || first.Verified || first.Note == "" {
			t.Fatalf("Erase %s: %+v; want Manual, nothing done, not verified, a note", dataset, first)
		}
		for _, x := range mine[dataset] {
			if !strings.Contains(first.Manual, x) {
				t.Errorf("Erase %s: instructions do not name %s:\n%s", dataset, x, first.Manual)
			}
		}
		for _, o := range others {
			for _, x := range o.ids() {
				if strings.Contains(first.Manual, x) {
					t.Errorf("Erase %s: instructions name another person's %s", dataset, x)
				}
			}
		}
		for _, pii := range []string{"pat@example.com", "pat.work@example.com", "Pat Subject", "@"} {
			if strings.Contains(strings.ReplaceAll(first.Manual, "support@creem.io", ""), pii) {
				t.Errorf("Erase %s: instructions contain %q:\n%s", dataset, pii, first.Manual)
			}
		}
		for _, must := range []string{"Ask Creem (support@creem.io), for store \"Acme Studio\", to delete ", "Mark this task done when Creem confirms."} {
			if !strings.Contains(first.Manual, must) {
				t.Errorf("Erase %s: instructions lack %q:\n%s", dataset, must, first.Manual)
			}
		}
		if dataset == "transactions" && !strings.Contains(first.Manual, "merchant of record") {
			t.Errorf("transactions instructions do not say Creem may keep them:\n%s", first.Manual)
		}
		// A new run and a retry return the same instructions, even when
		// Creem lists in another order.
		for i, key := range []string{"req-1/2", tg.IdempotencyKey} {
			e.fake.SetQuirks(creemfake.Quirks{NewestFirst: i == 0})
			tg2 := tg
			tg2.IdempotencyKey = key
			again, err := e.c.Erase(ctx, connectors.EraseParams{Target: tg2, Fields: fields})
			if err != nil {
				t.Fatal(err)
			}
			if again.Manual != first.Manual {
				t.Errorf("Erase %s repeated: instructions differ:\n%s\n---\n%s", dataset, first.Manual, again.Manual)
			}
		}
		t.Logf("%s:\n%s", dataset, first.Manual)
	}
	if got := e.fake.Digest(p.customer, p2); got != digest {
		t.Error("other customers' data changed")
	}

	// Creem deletes as asked: the same Erase now finds nothing.
	for _, x := range append(mine["customers"], mine["subscriptions"]...) {
		if !e.fake.Delete(x) {
			t.Fatalf("fake had no %s", x)
		}
	}
	for _, dataset := range []string{"customers", "subscriptions"} {
		res, err := e.c.Erase(ctx, connectors.EraseParams{Target: target(dataset, ids...), Fields: plan(t, dataset, connectors.ActionDelete)})
		if err != nil {
			t.Fatal(err)
		}
		if res.Manual != "" || !res.Verified || res.Deleted != 0 {
			t.Errorf("Erase %s after Creem deleted: %+v; want nothing to do, verified", dataset, res)
		}
	}
}

// TestErasePartialPlan: a plan that masks and keeps some fields asks for
// exactly that and reports what is kept.
func TestErasePartialPlan(t *testing.T) {
	e := newEnv(t, func(c *creem.Config) { c.Store = ""; c.SupportContact = "privacy@creem.example" })
	p := seedPerson(e.fake, "pat@example.com", "Pat", 0, 0)
	fields := []connectors.FieldPlan{
		{Field: "id", Category: "user.unique_id", Action: connectors.ActionRetain, Basis: "legal_obligation", Until: "10 years"},
		{Field: "created_at", Category: "system.operations", Action: connectors.ActionRetain, Basis: "legal_obligation"},
		{Field: "email", Category: "user.contact.email", Action: connectors.ActionMask, Strategy: connectors.StrategyKeyedHash},
		{Field: "name", Category: "user.name", Action: connectors.ActionDelete},
		{Field: "country", Category: "user.contact.address", Action: connectors.ActionMask, Strategy: connectors.StrategyNull},
	}
	res, err := e.c.Erase(context.Background(), connectors.EraseParams{Target: target("customers", id("email", p.email)), Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	want := "Ask Creem (privacy@creem.example) to erase personal data of customer " + p.customer + ".\n" +
		"Delete the fields: name.\n" +
		"Anonymise the fields (Creem cannot apply Steward's masks; deleting them is also acceptable): country, email.\n" +
		"Keep the fields: created_at (retained: legal_obligation), id (retained: legal_obligation, until 10 years).\n" +
		"Mark this task done when Creem confirms."
	if res.Manual != want {
		t.Errorf("instructions:\n%s\nwant:\n%s", res.Manual, want)
	}
	wantRetained := []connectors.Retained{
		{Field: "id", Basis: "legal_obligation", Until: "10 years", Records: 1},
		{Field: "created_at", Basis: "legal_obligation", Records: 1},
	}
	if !slices.Equal(res.Retained, wantRetained) {
		t.Errorf("Retained %+v, want %+v", res.Retained, wantRetained)
	}
}

// TestEraseRetainOnly: a plan that keeps every field asks Creem for nothing
// and reports the retained fields with their record counts.
func TestEraseRetainOnly(t *testing.T) {
	e := newEnv(t, func(c *creem.Config) { c.PageSize = 2 })
	seedPerson(e.fake, "other@example.com", "Other", 0, 3)
	p := seedPerson(e.fake, "pat@example.com", "Pat", 0, 5)
	fields := plan(t, "transactions", connectors.ActionRetain)
	res, err := e.c.Erase(context.Background(), connectors.EraseParams{Target: target("transactions", id("email", p.email)), Fields: fields})
	if err != nil {
		t.Fatal(err)
	}
	if res.Manual != "" || !res.Verified || res.Deleted != 0 || res.Masked != 0 || res.Note == "" {
		t.Errorf("result %+v; want no manual task, verified, a note", res)
	}
	if len(res.Retained) != len(fields) {
		t.Fatalf("Retained %+v; want every field", res.Retained)
	}
	for i, r := range res.Retained {
		if r.Field != fields[i].Field || r.Basis != "legal_obligation" || r.Until != "10 years" || r.Records != 5 {
			t.Errorf("Retained[%d] = %+v", i, r)
		}
	}

	// An unknown subject: nothing at all.
	res, err = e.c.Erase(context.Background(), connectors.EraseParams{Target: target("transactions", id("email", "nobody@example.com")), Fields: fields})
	if err != nil || res.Manual != "" || !res.Verified || len(res.Retained) != 0 || res.Note != "" {
		t.Errorf("unknown subject: %+v, %v", res, err)
	}
}

func TestUnsupported(t *testing.T) {
	e := newEnv(t, nil)
	if _, err := e.c.Rectify(context.Background(), connectors.RectifyParams{}); !errors.Is(err, connectors.ErrUnsupported) {
		t.Errorf("Rectify: %v", err)
	}
	if _, err := e.c.Restrict(context.Background(), connectors.RestrictParams{}); !errors.Is(err, connectors.ErrUnsupported) {
		t.Errorf("Restrict: %v", err)
	}
	caps := e.c.Capabilities()
	if !caps.ResolveIdentities || !caps.Access || !caps.Erase || caps.Rectify || caps.Restrict {
		t.Errorf("capabilities %+v", caps)
	}
}

// rewrite sends every request to the fake, whatever host the connector
// addresses: it lets a connector configured for Creem's real test API talk
// to the fake.
type rewrite struct{ to *url.URL }

func (rw rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host = rw.to.Scheme, rw.to.Host
	return http.DefaultTransport.RoundTrip(r)
}

// TestTestModeInstructions: with Creem's test API the instructions say the
// records are test-mode ones, so that support looks in the right place.
func TestTestModeInstructions(t *testing.T) {
	fake := creemfake.New(apiKey)
	defer fake.Close()
	u, _ := url.Parse(fake.URL())
	c, err := creem.New(context.Background(), creem.Config{System: "creem", APIKey: apiKey, BaseURL: creem.TestBaseURL,
		DataMap: staticMap(dataMap(t)), HTTPClient: &http.Client{Transport: rewrite{u}}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := seedPerson(fake, "pat@example.com", "Pat", 0, 0)
	res, err := c.Erase(context.Background(), connectors.EraseParams{Target: target("customers", id("email", p.email)),
		Fields: plan(t, "customers", connectors.ActionDelete)})
	if err != nil {
		t.Fatal(err)
	}
	if want := "Ask Creem (support@creem.io), in test mode, to delete customer " + p.customer + ".\n"; !strings.HasPrefix(res.Manual, want) {
		t.Errorf("instructions:\n%s\nwant the prefix:\n%s", res.Manual, want)
	}
}

// TestCustomerGoneTransactionsKept: Creem deleted the customer at our
// request but, as merchant of record, kept its transactions. They are still
// found by the subject's creem: id (and still named to staff if the plan
// asks for them), while the customer and its subscriptions are gone.
func TestCustomerGoneTransactionsKept(t *testing.T) {
	e := newEnv(t, nil)
	seedPerson(e.fake, "other@example.com", "Other", 1, 2)
	p := seedPerson(e.fake, "pat@example.com", "Pat", 2, 3)
	for _, x := range append([]string{p.customer}, p.subs...) {
		e.fake.Delete(x)
	}
	ctx := context.Background()
	ids := []connectors.Identity{id("email", p.email), id("creem", p.customer)}

	got, err := e.c.ResolveIdentities(ctx, ids[:1])
	if err != nil || len(got) != 0 {
		t.Errorf("resolve: %v, %v; want nothing", got, err)
	}
	for dataset, want := range map[string]int{"customers": 0, "subscriptions": 0, "transactions": 3} {
		sink := &connectortest.MemorySink{}
		if _, err := e.c.Access(ctx, connectors.AccessParams{Target: target(dataset, ids...), Fields: plan(t, dataset, connectors.ActionInclude)}, sink); err != nil {
			t.Fatalf("Access %s: %v", dataset, err)
		}
		if n := len(sink.Records()); n != want {
			t.Errorf("Access %s: %d records, want %d", dataset, n, want)
		}
		res, err := e.c.Erase(ctx, connectors.EraseParams{Target: target(dataset, ids...), Fields: plan(t, dataset, connectors.ActionDelete)})
		if err != nil {
			t.Fatalf("Erase %s: %v", dataset, err)
		}
		if (res.Manual != "") != (want > 0) || res.Verified == (want > 0) {
			t.Errorf("Erase %s: %+v", dataset, res)
		}
		for _, x := range p.txns {
			if dataset == "transactions" && !strings.Contains(res.Manual, x) {
				t.Errorf("Erase transactions does not name %s", x)
			}
		}
	}
}
