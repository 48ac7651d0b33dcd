package stripe

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/testpeer"
	"github.com/steward-privacy/steward/policies"
)

// TestWireStripeMock makes every request the connector makes against
// stripe-mock, which checks each against Stripe's OpenAPI specification
// (an unknown parameter, a wrong type or a missing one is a 400, as at
// Stripe) and answers with canned objects. It proves the parameters are
// valid Stripe API; the stateful behaviour is tested against stripefake.
func TestWireStripeMock(t *testing.T) {
	sm := testpeer.StripeMock(t)
	ctx := context.Background()
	e, err := policy.Load(ctx, policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(ctx, Config{System: "stripe", APIKey: "sk_test_123", BaseURL: sm.URL(), Clock: clock.Real{},
		DataMap: func() *datamap.Map { return e.DataMap }, MaxRetries: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	m, err := c.current()
	if err != nil {
		t.Fatal(err)
	}
	const cus = "cus_WireTest1"

	t.Run("find customers", func(t *testing.T) {
		// By id, by email (list and search, with a quote to escape) and by
		// the user id in metadata.
		if _, err := c.customers(ctx, m, []connectors.Identity{{Type: "stripe", Value: cus},
			{Type: "email", Value: "o'neil@example.com"}, {Type: "user", Value: "user-1"}}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("list every dataset", func(t *testing.T) {
		custs := []customer{{id: cus, obj: map[string]any{"id": cus, "object": "customer"}}}
		for id, ds := range m.datasets {
			n := 0
			err := c.each(ctx, ds, custs, ds.object == objCustomer, func(map[string]any) error { n++; return nil })
			if err != nil {
				t.Errorf("list %s: %v", id, err)
			} else if n == 0 {
				t.Errorf("list %s: stripe-mock answered no object", id)
			}
		}
	})

	t.Run("writes", func(t *testing.T) {
		tg := connectors.Target{System: "stripe", Dataset: "customers", IdempotencyKey: "wire-1"}
		var plan []connectors.FieldPlan
		for _, f := range []string{"email", "phone", "address", "shipping", "metadata", "description", "metadata.user_id", "tax_ids"} {
			plan = append(plan, connectors.FieldPlan{Field: f, Action: connectors.ActionDelete})
		}
		plan = append(plan, connectors.FieldPlan{Field: "name", Action: connectors.ActionMask, Strategy: connectors.StrategyFixed, Value: "[redacted]"})
		er := newEraser(c, tg, m.datasets["customers"], plan)
		full := map[string]any{"id": cus, "email": "a@example.com", "phone": "+1", "name": "Ann", "description": "d",
			"address": map[string]any{"city": "Tallinn"}, "shipping": map[string]any{"name": "Ann"},
			"metadata": map[string]any{"user_id": "user-1"}, "tax_ids": []any{map[string]any{"id": "txi_WireTest1"}}}
		ed := er.planCustomer(full)
		for _, p := range []string{"email", "phone", "address", "shipping", "metadata", "description", "metadata[user_id]", "name"} {
			if !ed.params.Has(p) {
				t.Errorf("the redaction plan does not send %s: %v", p, ed.params)
			}
		}
		if _, err := er.updateCustomer(ctx, cus, ed.params); err != nil {
			t.Errorf("update customer %v: %v", ed.params, err)
		}
		if _, err := er.deleteTaxID(ctx, cus, "txi_WireTest1"); err != nil {
			t.Errorf("delete tax id: %v", err)
		}
		if _, err := er.deleteCustomer(ctx, cus); err != nil {
			t.Errorf("delete customer: %v", err)
		}
		if _, err := er.cancelSubscriptions(ctx, cus); err != nil {
			t.Errorf("cancel subscriptions: %v", err)
		}
		if _, err := er.detach(ctx, "pm_WireTest1"); err != nil {
			t.Errorf("detach: %v", err)
		}

		pmPlan := []connectors.FieldPlan{{Field: "billing_details.name", Action: connectors.ActionMask, Strategy: connectors.StrategyFixed, Value: "[redacted]"}}
		for _, f := range []string{"billing_details.email", "billing_details.address", "customer", "card"} {
			pmPlan = append(pmPlan, connectors.FieldPlan{Field: f, Action: connectors.ActionDelete})
		}
		pe := newEraser(c, tg, m.datasets["payment_methods"], pmPlan)
		change := pe.planPaymentMethod(map[string]any{"id": "pm_WireTest1", "billing_details": map[string]any{
			"name": "Ann", "email": "a@example.com", "address": map[string]any{"city": "Tallinn"}}})
		if len(change) != 3 {
			t.Errorf("payment method update %v; want name, email and address", change)
		}
		if err := pe.paymentMethods(ctx, []customer{{id: cus}}); err != nil {
			// stripe-mock's canned method is not what was listed, so the
			// verification may complain; the requests must not.
			if retry, _ := connectors.Classify(err); !retry || !strings.Contains(err.Error(), "verification") {
				t.Errorf("payment methods: %v", err)
			}
		}
	})

	t.Run("stripe-mock validates", func(t *testing.T) {
		// The check above means something: a parameter Stripe does not
		// know is refused, permanently.
		er := newEraser(c, connectors.Target{IdempotencyKey: "wire-2"}, m.datasets["customers"], nil)
		_, err := er.updateCustomer(ctx, cus, url.Values{"no_such_field": {""}})
		if retry, _ := connectors.Classify(c.classify(err)); err == nil || retry || !strings.Contains(err.Error(), "validat") {
			t.Errorf("unknown parameter: %v", err)
		}
	})

	for _, want := range []string{
		"Request: GET /v1/customers/" + cus, "Request: GET /v1/customers\n", "Request: GET /v1/customers/search",
		"Request: GET /v1/payment_methods", "Request: GET /v1/charges", "Request: GET /v1/payment_intents",
		"Request: GET /v1/invoices", "Request: GET /v1/subscriptions", "Request: GET /v1/checkout/sessions",
		"Request: GET /v1/refunds", "Request: GET /v1/disputes", "Request: GET /v1/customers/" + cus + "/tax_ids",
		"Request: POST /v1/customers/" + cus, "Request: DELETE /v1/customers/" + cus + "/tax_ids/txi_WireTest1",
		"Request: DELETE /v1/customers/" + cus + "\n", "Request: DELETE /v1/subscriptions/", "Request: POST /v1/payment_methods/pm_WireTest1/detach",
		"Request: POST /v1/payment_methods/",
	} {
		if !strings.Contains(sm.Output()+"\n", want) {
			t.Errorf("stripe-mock did not see %q", strings.TrimSpace(want))
		}
	}
	if t.Failed() {
		t.Logf("stripe-mock log:\n%s", sm.Output())
	}
}
