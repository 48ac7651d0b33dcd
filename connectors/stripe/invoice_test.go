package stripe_test

import (
	"context"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/stripe/stripefake"
)

// The web privacy notice: "We will verify identity (challenge login, recent
// invoice, signed instruction, etc.)". A person names a recent invoice of
// theirs; Steward asks Stripe whether it is theirs and recent (Cal. Code
// Regs. tit. 11 §7062(c): matching information only the person holds).
func TestVerifyInvoice(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	c, _ := newConnector(t, f.URL(), nil)
	p := seedPerson(f)
	recent := time.Now().Add(-24 * time.Hour).Unix()
	fresh := f.AddInvoice(stripefake.Invoice{Customer: p.a, CustomerEmail: p.email, AmountPaid: 900,
		Extra: map[string]any{"number": "NB-0042", "created": recent}})
	other := f.AddCustomer(stripefake.Customer{Email: "bob@example.org"})
	othersInvoice := f.AddInvoice(stripefake.Invoice{Customer: other, CustomerEmail: "bob@example.org", AmountPaid: 100,
		Extra: map[string]any{"created": recent}})
	ann := []connectors.Identity{id("email", p.email)}
	since := time.Now().Add(-90 * 24 * time.Hour)
	for _, tc := range []struct {
		name string
		ids  []connectors.Identity
		ref  string
		want bool
	}{
		{"own recent invoice by id", ann, fresh, true},
		{"own recent invoice by number, any case", ann, "nb-0042", true},
		{"own invoice older than the window", ann, p.invoice, false},
		{"another person's invoice", ann, othersInvoice, false},
		{"made up", ann, "in_nothing", false},
		{"empty", ann, "", false},
		{"no customer", []connectors.Identity{id("email", "nobody@example.org")}, fresh, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.VerifyInvoice(context.Background(), tc.ids, tc.ref, since)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("VerifyInvoice(%q) = %v, want %v", tc.ref, got, tc.want)
			}
		})
	}
}
