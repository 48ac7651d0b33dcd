package stripe_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/stripe/stripefake"
)

func sortedIDs(ids []connectors.Identity) []string {
	out := make([]string, len(ids))
	for i, x := range ids {
		out[i] = x.Type + ":" + x.Value
	}
	slices.Sort(out)
	return out
}

func want(ids ...connectors.Identity) []string { return sortedIDs(ids) }

func TestResolveIdentities(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	c, _ := newConnector(t, f.URL(), nil)
	p := seedPerson(f)
	ctx := context.Background()

	for _, tc := range []struct {
		name  string
		known []connectors.Identity
		want  []string
	}{
		// Both of the address's customers, once each, though list and
		// search both find them; not the customer whose address differs
		// in case only, which search also returns.
		{"email", []connectors.Identity{id("email", p.email)}, want(id("stripe", p.a), id("stripe", p.b))},
		// The customer's email reaches the person's data elsewhere.
		{"stripe id", []connectors.Identity{id("stripe", p.c)}, want(id("email", p.email2))},
		{"user id", []connectors.Identity{id("user", p.user)}, want(id("stripe", p.a), id("stripe", p.c), id("email", p.email), id("email", p.email2))},
		{"everything", p.identities(), sortedIDs(p.linked())},
		{"known are not repeated", p.reach(), nil},
		{"other identity types", []connectors.Identity{id("tg", "12345"), id("visitor", p.a)}, nil},
		{"not a customer id", []connectors.Identity{id("stripe", p.pms[0])}, nil},
		{"case variant", []connectors.Identity{id("email", strings.ToUpper(p.email))}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.ResolveIdentities(ctx, tc.known)
			if err != nil {
				t.Fatal(err)
			}
			if g := sortedIDs(got); !slices.Equal(g, tc.want) {
				t.Errorf("got %v, want %v", g, tc.want)
			}
		})
	}

	t.Run("queries", func(t *testing.T) {
		f.ResetRequests()
		if _, err := c.ResolveIdentities(ctx, p.identities()); err != nil {
			t.Fatal(err)
		}
		var list, search []string
		for _, r := range f.Requests() {
			switch r.Path {
			case "/v1/customers":
				list = append(list, r.Form.Get("email"))
			case "/v1/customers/search":
				search = append(search, r.Form.Get("query"))
			}
		}
		if !slices.Equal(list, []string{p.email}) {
			t.Errorf("list filters %q, want the email once", list)
		}
		wantQ := []string{`email:'` + strings.ReplaceAll(p.email, "'", `\'`) + `'`, `metadata['user_id']:'` + p.user + `'`}
		if !slices.Equal(search, wantQ) {
			t.Errorf("search queries %q, want %q", search, wantQ)
		}
	})

	t.Run("deleted customer", func(t *testing.T) {
		q := seedPerson(f)
		if _, err := c.Erase(ctx, connectors.EraseParams{Target: target("customers", "del-"+q.c, id("stripe", q.c)),
			Fields: deleteAll(customerFields()...)}); err != nil {
			t.Fatal(err)
		}
		if !f.Deleted(q.c) {
			t.Fatal("customer not deleted")
		}
		got, err := c.ResolveIdentities(ctx, []connectors.Identity{id("stripe", q.c), id("email", q.email2)})
		if err != nil || len(got) != 0 {
			t.Errorf("a deleted customer resolved to %v, %v", got, err)
		}
	})

	t.Run("pages", func(t *testing.T) {
		g := stripefake.New()
		t.Cleanup(g.Close)
		g.SetMaxLimit(1)
		c, _ := newConnector(t, g.URL(), nil)
		email := "pages@example.com"
		var ids []connectors.Identity
		for range 5 {
			ids = append(ids, id("stripe", g.AddCustomer(stripefake.Customer{Email: email})))
			g.AddCustomer(stripefake.Customer{Email: "Pages@example.com"})
		}
		got, err := c.ResolveIdentities(ctx, []connectors.Identity{id("email", email)})
		if err != nil {
			t.Fatal(err)
		}
		if g, w := sortedIDs(got), sortedIDs(ids); !slices.Equal(g, w) {
			t.Errorf("got %v, want %v", g, w)
		}
	})
}

// accessAll runs Access of dataset with the policy's access plan and
// returns the records' values by key and field.
func accessAll(t *testing.T, c connectors.Connector, dataset string, ids []connectors.Identity) map[string]map[string]any {
	t.Helper()
	sink := &connectortest.MemorySink{}
	res, err := c.Access(context.Background(), connectors.AccessParams{Target: target(dataset, "acc-"+dataset, ids...),
		Fields: policyPlan(t, "access", dataset)}, sink)
	if err != nil {
		t.Fatalf("Access %s: %v", dataset, err)
	}
	out := map[string]map[string]any{}
	for _, r := range sink.Records() {
		if r.Dataset != dataset {
			t.Errorf("record %s of %s says dataset %s", r.Key, dataset, r.Dataset)
		}
		vals := map[string]any{}
		for _, fv := range r.Fields {
			vals[fv.Field] = fv.Value
		}
		out[r.Key] = vals
	}
	if res.Records != len(out) {
		t.Errorf("Access %s: result %d records, sink %d distinct", dataset, res.Records, len(out))
	}
	return out
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sorted(ids ...string) []string { s := slices.Clone(ids); slices.Sort(s); return s }

func TestAccessEveryDataset(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	c, _ := newConnector(t, f.URL(), nil)
	p := seedPerson(f)
	ids := p.reach()

	js := func(v any) string { return fmt.Sprintf("%v", v) }
	for _, tc := range []struct {
		dataset string
		keys    []string
		check   func(t *testing.T, recs map[string]map[string]any)
	}{
		{"customers", sorted(p.a, p.b, p.c), func(t *testing.T, r map[string]map[string]any) {
			a := r[p.a]
			if a["email"] != p.email || a["metadata.user_id"] != p.user || a["name"] != "Ann O'Neil" || a["phone"] != "+3725550101" {
				t.Errorf("customer a: %v", a)
			}
			if addr, _ := a["address"].(map[string]any); addr["city"] != "Tallinn" {
				t.Errorf("address: %v", a["address"])
			}
			if tax := js(a["tax_ids"]); !strings.Contains(tax, "EE101010101") {
				t.Errorf("tax_ids: %s", tax)
			}
			if r[p.b]["tax_ids"] != nil || r[p.b]["metadata.user_id"] != nil {
				t.Errorf("customer b: %v", r[p.b])
			}
			if js(a["created"]) == "" || a["id"] != p.a {
				t.Errorf("id/created: %v", a)
			}
		}},
		{"payment_methods", sorted(p.pms...), func(t *testing.T, r map[string]map[string]any) {
			pm := r[p.pms[0]]
			if pm["billing_details.name"] != "Ann O'Neil" || pm["billing_details.email"] != p.email || pm["customer"] != p.a {
				t.Errorf("payment method: %v", pm)
			}
			if card := js(pm["card"]); !strings.Contains(card, "4242") {
				t.Errorf("card: %s", card)
			}
		}},
		{"charges", sorted(p.charges...), func(t *testing.T, r map[string]map[string]any) {
			ch := r[p.charges[0]]
			if ch["receipt_email"] != p.email || ch["billing_details.name"] != "Ann O'Neil" || !strings.Contains(js(ch["payment_method_details.card"]), "4242") {
				t.Errorf("charge: %v", ch)
			}
		}},
		{"refunds", []string{p.refund}, func(t *testing.T, r map[string]map[string]any) {
			if re := r[p.refund]; re["charge"] != p.charges[0] || js(re["amount"]) != "400" || re["reason"] != "requested_by_customer" {
				t.Errorf("refund: %v", re)
			}
		}},
		{"disputes", []string{p.dispute}, func(t *testing.T, r map[string]map[string]any) {
			if ev := js(r[p.dispute]["evidence"]); !strings.Contains(ev, p.email) {
				t.Errorf("dispute evidence: %s", ev)
			}
		}},
		{"payment_intents", []string{p.pi}, func(t *testing.T, r map[string]map[string]any) {
			if pi := r[p.pi]; pi["receipt_email"] != p.email || js(pi["amount"]) != "1900" || !strings.Contains(js(pi["shipping"]), "Tallinn") {
				t.Errorf("payment intent: %v", pi)
			}
		}},
		{"invoices", []string{p.invoice}, func(t *testing.T, r map[string]map[string]any) {
			if in := r[p.invoice]; in["customer_email"] != p.email || !strings.Contains(js(in["customer_tax_ids"]), "EE101010101") {
				t.Errorf("invoice: %v", in)
			}
		}},
		{"checkout_sessions", []string{p.session}, func(t *testing.T, r map[string]map[string]any) {
			if cs := r[p.session]; cs["customer_details.email"] != p.email || cs["client_reference_id"] != p.user {
				t.Errorf("checkout session: %v", cs)
			}
		}},
		{"subscriptions", p.subs, func(t *testing.T, r map[string]map[string]any) {
			sub := r[p.subs[0]]
			items, _ := sub["items"].([]any)
			if sub["status"] != "active" || len(items) != 1 || !strings.Contains(js(items), "price_pro") {
				t.Errorf("subscription: %v", sub)
			}
		}},
	} {
		t.Run(tc.dataset, func(t *testing.T) {
			recs := accessAll(t, c, tc.dataset, ids)
			if got := keys(recs); !slices.Equal(got, tc.keys) {
				t.Fatalf("records %v, want %v", got, tc.keys)
			}
			tc.check(t, recs)
		})
	}

	t.Run("cancelled subscriptions too", func(t *testing.T) {
		q := seedPerson(f)
		old := f.AddSubscription(stripefake.Subscription{Customer: q.a, Status: "canceled", Prices: []string{"price_old"}})
		recs := accessAll(t, c, "subscriptions", []connectors.Identity{id("stripe", q.a)})
		if got, w := keys(recs), sorted(q.subs[0], old); !slices.Equal(got, w) {
			t.Errorf("subscriptions %v, want %v (status=all)", got, w)
		}
	})

	t.Run("masked in the disclosure", func(t *testing.T) {
		sink := &connectortest.MemorySink{}
		_, err := c.Access(context.Background(), connectors.AccessParams{Target: target("customers", "acc-mask", id("stripe", p.a)),
			Fields: []connectors.FieldPlan{{Field: "email", Category: "user.contact.email", Action: connectors.ActionInclude},
				{Field: "phone", Category: "user.contact", Action: connectors.ActionMask, Strategy: connectors.StrategyFixed, Value: "[withheld]"},
				{Field: "created", Category: "system.operations", Action: connectors.ActionMask, Strategy: connectors.StrategyTruncateDate}}}, sink)
		if err != nil {
			t.Fatal(err)
		}
		recs := sink.Records()
		if len(recs) != 1 || len(recs[0].Fields) != 3 {
			t.Fatalf("records %v", recs)
		}
		fv := recs[0].Fields
		if fv[0].Value != p.email || fv[1].Value != "[withheld]" || fv[2].Value != "2026-01-01" {
			t.Errorf("fields %v; want the email, [withheld], the creation date", fv)
		}
	})
}

// streamingSink notes how many list pages the connector had fetched when
// the first record arrived.
type streamingSink struct {
	connectortest.MemorySink
	f          *stripefake.Server
	pagesFirst int
}

func (s *streamingSink) Record(ctx context.Context, r connectors.Record) error {
	if len(s.Records()) == 0 {
		for _, req := range s.f.Requests() {
			if req.Path == "/v1/charges" {
				s.pagesFirst++
			}
		}
	}
	return s.MemorySink.Record(ctx, r)
}

// Records go to the sink as their page arrives, not after the whole list
// was read.
func TestAccessStreamsPages(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	f.SetMaxLimit(2)
	c, _ := newConnector(t, f.URL(), nil)
	cus := f.AddCustomer(stripefake.Customer{Email: "stream@example.com"})
	for i := range 7 {
		f.AddCharge(stripefake.Charge{Customer: cus, Amount: int64(100 + i)})
	}
	sink := &streamingSink{f: f}
	res, err := c.Access(context.Background(), connectors.AccessParams{Target: target("charges", "k", id("stripe", cus)),
		Fields: policyPlan(t, "access", "charges")}, sink)
	if err != nil {
		t.Fatal(err)
	}
	pages := 0
	for _, r := range f.Requests() {
		if r.Path == "/v1/charges" {
			pages++
			if r.Form.Get("customer") != cus || r.Form.Get("limit") != "100" {
				t.Errorf("charges listed with %v", r.Form)
			}
		}
	}
	if res.Records != 7 || pages != 4 {
		t.Errorf("%d records in %d pages; want 7 in 4", res.Records, pages)
	}
	if sink.pagesFirst != 1 {
		t.Errorf("first record arrived after %d pages; want after the first", sink.pagesFirst)
	}
}
