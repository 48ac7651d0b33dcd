package stripe_test

import (
	"context"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/stripe/stripefake"
)

// BenchmarkAccessCharges discloses a customer's 1,000 charges (ten pages)
// from the fake: the connector's cost per record (decoding Stripe's JSON,
// picking the plan's fields) on top of the HTTP round trips.
func BenchmarkAccessCharges(b *testing.B) {
	f := stripefake.New()
	b.Cleanup(f.Close)
	c, _ := newConnector(b, f.URL(), nil)
	cus := f.AddCustomer(stripefake.Customer{Email: "bench@example.com"})
	for i := range 1000 {
		f.AddCharge(stripefake.Charge{Customer: cus, Amount: int64(i), ReceiptEmail: "bench@example.com",
			BillingDetails: stripefake.BillingDetails{Name: "Bench", Address: &stripefake.Address{City: "Tallinn"}}})
	}
	p := connectors.AccessParams{Target: target("charges", "bench", id("stripe", cus)), Fields: policyPlan(b, "access", "charges")}
	b.ResetTimer()
	for b.Loop() {
		sink := &connectortest.MemorySink{}
		res, err := c.Access(context.Background(), p, sink)
		if err != nil || res.Records != 1000 {
			b.Fatalf("%+v, %v", res, err)
		}
	}
}
