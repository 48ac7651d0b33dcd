package stripe_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/stripe"
	"github.com/steward-privacy/steward/connectors/stripe/stripefake"
	"github.com/steward-privacy/steward/datamap"
)

func erase(t *testing.T, c connectors.Connector, dataset, key string, ids []connectors.Identity, plan []connectors.FieldPlan) connectors.EraseResult {
	t.Helper()
	res, err := c.Erase(context.Background(), connectors.EraseParams{Target: target(dataset, key, ids...), Fields: plan})
	if err != nil {
		t.Fatalf("Erase %s: %v", dataset, err)
	}
	return res
}

func retainedOf(res connectors.EraseResult, field string) []connectors.Retained {
	var out []connectors.Retained
	for _, r := range res.Retained {
		if r.Field == field {
			out = append(out, r)
		}
	}
	return out
}

func checkNote(t *testing.T, res connectors.EraseResult) {
	t.Helper()
	if !strings.Contains(res.Note, "Stripe support") || !strings.Contains(res.Note, "https://stripe.com/privacy") {
		t.Errorf("note does not say what Stripe keeps and how to have it deleted: %q", res.Note)
	}
}

// The policies' own plan for customers keeps name, address, shipping and
// tax ids for the accounting obligation and masks the rest: the customers
// are redacted, their subscriptions cancelled and cards detached.
func TestEraseCustomersPolicyPlan(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	c, _ := newConnector(t, f.URL(), nil)
	p := seedPerson(f)
	others := p.othersDigest(t, f)
	plan := policyPlan(t, "erasure", "customers")
	f.ResetRequests()

	res := erase(t, c, "customers", "job-1", p.reach(), plan)
	if res.Deleted != 0 || res.Masked != 3 || !res.Verified {
		t.Errorf("result %+v; want 3 customers masked, none deleted, verified", res)
	}
	checkNote(t, res)
	if !strings.Contains(res.Note, "1 subscription(s) cancelled and 2 saved payment method(s) detached") {
		t.Errorf("note does not report the cancelled subscription and detached cards: %q", res.Note)
	}
	a, _ := f.Customer(p.a)
	md, _ := a["metadata"].(map[string]any)
	if a["email"] != nil || a["phone"] != nil || md["user_id"] != nil {
		t.Errorf("customer a still has email %v, phone %v, user_id %v", a["email"], a["phone"], md["user_id"])
	}
	if a["name"] != "Ann O'Neil" || a["address"] == nil || a["shipping"] == nil || md["plan"] != "pro" || f.Deleted(p.taxID) {
		t.Errorf("customer a lost what the plan keeps: %v", a)
	}
	if sub, _ := f.Subscription(p.subs[0]); sub["status"] != "canceled" {
		t.Errorf("subscription %v", sub["status"])
	}
	for _, pm := range p.pms {
		if o, _ := f.PaymentMethod(pm); o["customer"] != nil {
			t.Errorf("payment method %s still attached to %v", pm, o["customer"])
		}
	}
	// Only the fields to clear were sent, each write with a key.
	var updates []string
	for _, r := range f.Writes() {
		if r.IdempotencyKey == "" {
			t.Errorf("%s %s without an idempotency key", r.Method, r.Path)
		}
		if r.Method == http.MethodPost && r.Path == "/v1/customers/"+p.a {
			updates = append(updates, r.Form.Encode())
		}
	}
	if !slices.Equal(updates, []string{"email=&metadata%5Buser_id%5D=&phone="}) {
		t.Errorf("updates of customer a: %q", updates)
	}
	// Retained: the plan's retained fields for the 3 customers, and the id
	// (to be masked, but Stripe's ids cannot change) as kept by Stripe.
	for _, f := range []string{"name", "address", "shipping", "tax_ids", "created"} {
		if r := retainedOf(res, f); len(r) != 1 || r[0].Records != 3 || r[0].Until != "5 years from the record date" || r[0].Basis == "" {
			t.Errorf("retained %s: %+v", f, r)
		}
	}
	if r := retainedOf(res, "id"); len(r) != 1 || r[0].Records != 3 || !strings.HasPrefix(r[0].Basis, "kept by Stripe") {
		t.Errorf("retained id: %+v", r)
	}
	if r := retainedOf(res, "email"); len(r) != 0 {
		t.Errorf("email reported retained: %+v", r)
	}
	if got := p.othersDigest(t, f); got != others {
		t.Error("other people's objects changed")
	}

	again := erase(t, c, "customers", "job-2", p.reach(), plan)
	if again.Masked != 0 || again.Deleted != 0 || !again.Verified {
		t.Errorf("second run %+v; want nothing left to do", again)
	}
}

func TestEraseCustomersKeepingSubscriptions(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	keep := false
	c, _ := newConnector(t, f.URL(), func(cfg *stripe.Config) { cfg.CancelSubscriptions = &keep })
	p := seedPerson(f)
	res := erase(t, c, "customers", "job", p.reach(), policyPlan(t, "erasure", "customers"))
	if res.Masked != 3 || strings.Contains(res.Note, "cancelled") {
		t.Errorf("result %+v", res)
	}
	if sub, _ := f.Subscription(p.subs[0]); sub["status"] != "active" {
		t.Errorf("subscription %v; want active", sub["status"])
	}
	if pm, _ := f.PaymentMethod(p.pms[0]); pm["customer"] != p.a {
		t.Errorf("payment method detached")
	}
}

// A plan deleting every field deletes the customers; Stripe cancels their
// subscriptions and removes their cards itself.
func TestEraseCustomersDelete(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	c, _ := newConnector(t, f.URL(), nil)
	p := seedPerson(f)
	others := p.othersDigest(t, f)
	f.ResetRequests()
	res := erase(t, c, "customers", "job", p.reach(), deleteAll(customerFields()...))
	if res.Deleted != 3 || res.Masked != 0 || !res.Verified || len(res.Retained) != 0 {
		t.Errorf("result %+v", res)
	}
	checkNote(t, res)
	var deletes []string
	for _, r := range f.Writes() {
		if r.Method != http.MethodDelete || !strings.HasPrefix(r.IdempotencyKey, "steward-customer.delete-") {
			t.Errorf("write %s %s key %q", r.Method, r.Path, r.IdempotencyKey)
		}
		deletes = append(deletes, strings.TrimPrefix(r.Path, "/v1/customers/"))
	}
	if slices.Sort(deletes); !slices.Equal(deletes, sorted(p.a, p.b, p.c)) {
		t.Errorf("deleted %v", deletes)
	}
	for _, id := range []string{p.a, p.b, p.c} {
		if cu, _ := f.Customer(id); cu["deleted"] != true {
			t.Errorf("customer %s: %v", id, cu)
		}
	}
	if sub, _ := f.Subscription(p.subs[0]); sub["status"] != "canceled" {
		t.Errorf("subscription %v", sub["status"])
	}
	if got := p.othersDigest(t, f); got != others {
		t.Error("other people's objects changed")
	}
	if again := erase(t, c, "customers", "job-2", p.reach(), deleteAll(customerFields()...)); again.Deleted != 0 {
		t.Errorf("second run deleted %d", again.Deleted)
	}
}

// The policies' plan for payment methods masks the card and the billing
// email: the email is cleared, then the method detached; Stripe keeps the
// detached card, which the result says.
func TestErasePaymentMethodsPolicyPlan(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	c, _ := newConnector(t, f.URL(), nil)
	p := seedPerson(f)
	res := erase(t, c, "payment_methods", "job", p.reach(), policyPlan(t, "erasure", "payment_methods"))
	if res.Deleted != 2 || !res.Verified {
		t.Errorf("result %+v", res)
	}
	checkNote(t, res)
	pm, _ := f.PaymentMethod(p.pms[0])
	bd, _ := pm["billing_details"].(map[string]any)
	if pm["customer"] != nil || bd["email"] != nil || bd["name"] != "Ann O'Neil" {
		t.Errorf("payment method: customer %v, billing %v", pm["customer"], bd)
	}
	if r := retainedOf(res, "card"); len(r) != 1 || r[0].Records != 2 || !strings.HasPrefix(r[0].Basis, "kept by Stripe") {
		t.Errorf("card: %+v", r)
	}
	if r := retainedOf(res, "billing_details.name"); len(r) != 1 || r[0].Records != 2 || strings.HasPrefix(r[0].Basis, "kept by Stripe") {
		t.Errorf("billing_details.name: %+v", r)
	}
	if r := retainedOf(res, "billing_details.email"); len(r) != 0 {
		t.Errorf("billing_details.email reported retained: %+v", r)
	}
	if again := erase(t, c, "payment_methods", "job-2", p.reach(), policyPlan(t, "erasure", "payment_methods")); again.Deleted != 0 {
		t.Errorf("second run %+v", again)
	}
}

// Transaction records change not at all; the result reports what the plan
// retains and, as kept by Stripe, what it wanted gone.
func TestEraseTransactionsPolicyPlan(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	c, _ := newConnector(t, f.URL(), nil)
	p := seedPerson(f)
	before := digest(t, f, func(map[string]any) bool { return true })
	for _, tc := range []struct {
		dataset string
		records int
		kept    []string // fields the plan masks that hold a value
	}{
		{"charges", 2, []string{"billing_details.email", "customer", "payment_method_details.card", "receipt_email"}},
		{"payment_intents", 1, []string{"customer", "receipt_email"}},
		{"invoices", 1, []string{"customer", "customer_email"}},
		{"checkout_sessions", 1, []string{"client_reference_id", "customer", "customer_details.email"}},
		{"subscriptions", 1, []string{"customer"}},
		{"refunds", 1, nil},
		{"disputes", 1, []string{"evidence"}},
	} {
		t.Run(tc.dataset, func(t *testing.T) {
			f.ResetRequests()
			plan := policyPlan(t, "erasure", tc.dataset)
			res := erase(t, c, tc.dataset, "job", p.reach(), plan)
			if res.Deleted != 0 || res.Masked != 0 || !res.Verified || res.Manual != "" {
				t.Errorf("result %+v", res)
			}
			checkNote(t, res)
			if len(f.Writes()) != 0 {
				t.Errorf("writes: %v", f.Writes())
			}
			var kept []string
			for _, r := range res.Retained {
				if strings.HasPrefix(r.Basis, "kept by Stripe") {
					kept = append(kept, r.Field)
					// Charge b has no billing email and no receipt email.
					if want := tc.records; r.Records > want || r.Records < 1 {
						t.Errorf("kept %s: %d records", r.Field, r.Records)
					}
				}
			}
			if !slices.Equal(kept, tc.kept) {
				t.Errorf("kept by Stripe %v, want %v", kept, tc.kept)
			}
			for _, f := range plan {
				if f.Action != connectors.ActionRetain {
					continue
				}
				if r := retainedOf(res, f.Field); len(r) != 1 || r[0].Records != tc.records || r[0].Basis != f.Basis || r[0].Until != f.Until {
					t.Errorf("retained %s: %+v", f.Field, r)
				}
			}
		})
	}
	if after := digest(t, f, func(map[string]any) bool { return true }); after != before {
		t.Error("erasing transaction records changed them")
	}
}

// withDataset is the real data map with one more stripe dataset.
func withDataset(t *testing.T, name string, ds datamap.Dataset) *datamap.Map {
	dm := *realMap(t)
	dm.Systems = maps.Clone(dm.Systems)
	sys := dm.Systems["stripe"]
	sys.Datasets = maps.Clone(sys.Datasets)
	sys.Datasets[name] = ds
	dm.Systems["stripe"] = sys
	return &dm
}

// Tax ids, as a dataset of their own (the data map may add one) or as the
// customer's tax_ids field, are deleted when the plan erases them.
func TestEraseTaxIDs(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	dm := withDataset(t, "tax_ids", datamap.Dataset{Object: "tax_id", Purpose: "payments", Retention: "payments",
		References: []datamap.Reference{{Field: "customer", To: "stripe.customers.id"}},
		Fields: map[string]datamap.Field{"id": {Category: "user.unique_id"}, "type": {Category: "user.financial.tax_id"},
			"value": {Category: "user.financial.tax_id"}, "customer": {Category: "user.unique_id"}}})
	c, _ := newConnector(t, f.URL(), func(cfg *stripe.Config) { cfg.DataMap = staticMap(dm) })
	p := seedPerson(f)
	second := f.AddTaxID(p.c, stripefake.TaxID{Type: "us_ein", Value: "12-3456789"})

	sink := map[string]bool{}
	for _, k := range keysOfAccess(t, c, "tax_ids", p.reach(), deleteAll("id", "type", "value", "customer")) {
		sink[k] = true
	}
	if len(sink) != 2 || !sink[p.taxID] || !sink[second] {
		t.Errorf("tax ids disclosed %v", sink)
	}
	res := erase(t, c, "tax_ids", "job", p.reach(), deleteAll("id", "type", "value", "customer"))
	if res.Deleted != 2 || !res.Verified || !f.Deleted(p.taxID) || !f.Deleted(second) {
		t.Errorf("result %+v; deleted %v %v", res, f.Deleted(p.taxID), f.Deleted(second))
	}
	if again := erase(t, c, "tax_ids", "job-2", p.reach(), deleteAll("id", "type", "value", "customer")); again.Deleted != 0 {
		t.Errorf("second run %+v", again)
	}

	// The customer's tax_ids field under a redacting plan.
	q := seedPerson(f)
	plan := []connectors.FieldPlan{retain("id"), retain("name"), del("tax_ids")}
	res = erase(t, c, "customers", "job-3", q.reach(), plan)
	if res.Masked != 1 || !f.Deleted(q.taxID) {
		t.Errorf("result %+v; tax id deleted %v", res, f.Deleted(q.taxID))
	}
	if a := accessAll(t, c, "customers", []connectors.Identity{id("stripe", q.a)})[q.a]; a["tax_ids"] != nil {
		t.Errorf("tax_ids after erasure: %v", a["tax_ids"])
	}
}

func keysOfAccess(t *testing.T, c connectors.Connector, dataset string, ids []connectors.Identity, plan []connectors.FieldPlan) []string {
	t.Helper()
	sink := &connectortest.MemorySink{}
	if _, err := c.Access(context.Background(), connectors.AccessParams{Target: target(dataset, "k", ids...), Fields: plan}, sink); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range sink.Records() {
		out = append(out, r.Key)
	}
	return out
}

// An update Stripe accepts but that does not stick (another writer, the
// product itself, setting the email again) fails the verification: the
// task is retried rather than reported erased.
func TestEraseVerifies(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	p := seedPerson(f)
	fake, _ := url.Parse(f.URL())
	proxy := httputil.NewSingleHostReverseProxy(fake)
	lossy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/customers/") {
			// Answer as if applied, without applying.
			cu, _ := f.Customer(strings.TrimPrefix(r.URL.Path, "/v1/customers/"))
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(cu)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(lossy.Close)
	c, _ := newConnector(t, lossy.URL, nil)
	res, err := c.Erase(context.Background(), connectors.EraseParams{Target: target("customers", "job", id("stripe", p.a)),
		Fields: []connectors.FieldPlan{retain("id"), del("email")}})
	if retry, _ := connectors.Classify(err); err == nil || !retry || !strings.Contains(err.Error(), "verification") {
		t.Errorf("erase of a change that did not stick: %+v, %v; want a retryable verification error", res, err)
	}
	if res.Verified {
		t.Error("reported verified")
	}
}
