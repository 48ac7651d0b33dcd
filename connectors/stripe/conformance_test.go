package stripe_test

import (
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/stripe"
	"github.com/steward-privacy/steward/connectors/stripe/stripefake"
)

// TestConformance runs the connector suite against the stateful fake, each
// subject three customers with every kind of object among other people
// whose data must stay as it is. The customers are redacted under one plan
// (the records stay, the personal fields the plan does not keep go) and
// deleted under the other.
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name      string
		customers []connectors.FieldPlan
	}{
		{"redact", []connectors.FieldPlan{retain("id"), retain("created"), retain("address"), retain("tax_ids"),
			mask("name", connectors.StrategyFixed, "[redacted]"), mask("email", connectors.StrategyNull, ""),
			del("phone"), del("shipping"), mask("metadata.user_id", connectors.StrategyNull, "")}},
		{"delete", deleteAll(customerFields()...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := stripefake.New()
			t.Cleanup(f.Close)
			c, _ := newConnector(t, f.URL(), nil)
			var faults connectortest.Injector
			stripe.SetInject(c, faults.Next)
			connectortest.Run(t, connectortest.Fixture{
				Connector: c,
				Inject:    faults.Inject,
				Seed: func(t testing.TB) connectortest.Subject {
					p := seedPerson(f)
					s := connectortest.Subject{
						Identities: p.identities(),
						Linked:     p.linked(),
						Others:     func(t testing.TB) int { return p.othersDigest(t, f) },
					}
					// Children first, as the engine orders them: the payment
					// methods (detached: gone from the customer, as a
					// deletion), the transaction records (kept), then the
					// customers.
					s.Datasets = append(s.Datasets, connectortest.Dataset{System: "stripe", Dataset: "payment_methods", Records: 2,
						Fields: deleteAll(mapFields(t, "payment_methods")...)})
					for _, d := range p.transactionDatasets(t) {
						s.Datasets = append(s.Datasets, connectortest.Dataset{System: "stripe", Dataset: d.name, Records: d.records,
							Fields: retainAll(mapFields(t, d.name)...)})
					}
					s.Datasets = append(s.Datasets, connectortest.Dataset{System: "stripe", Dataset: "customers", Records: 3, Fields: tc.customers})
					return s
				},
			})
		})
	}
}
