package creem_test

import (
	"context"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/creem/creemfake"
)

// The web privacy notice: "We will verify identity (challenge login, recent
// invoice, signed instruction, etc.)" — a person names a recent Creem
// payment of theirs; only their own customers' transactions count.
func TestVerifyInvoice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	now := time.Now()
	ann := e.fake.AddCustomer(creemfake.Customer{Email: "ann@example.com"})
	bob := e.fake.AddCustomer(creemfake.Customer{Email: "bob@example.com"})
	recent := e.fake.AddTransaction(creemfake.Transaction{Customer: ann, Amount: 900, CreatedAt: now.Add(-48 * time.Hour)})
	old := e.fake.AddTransaction(creemfake.Transaction{Customer: ann, Amount: 900, CreatedAt: now.Add(-200 * 24 * time.Hour)})
	bobs := e.fake.AddTransaction(creemfake.Transaction{Customer: bob, Amount: 100, CreatedAt: now.Add(-time.Hour)})
	since := now.Add(-90 * 24 * time.Hour)
	ids := []connectors.Identity{id("email", "ann@example.com")}
	for _, tc := range []struct {
		name string
		ref  string
		want bool
	}{
		{"own recent payment", recent, true},
		{"its order", "ord_" + recent[len("tran_"):], true},
		{"own payment older than the window", old, false},
		{"another person's payment", bobs, false},
		{"made up", "tran_nothing", false},
		{"empty", "", false},
	} {
		got, err := e.c.VerifyInvoice(context.Background(), ids, tc.ref, since)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: VerifyInvoice(%q) = %v, want %v", tc.name, tc.ref, got, tc.want)
		}
	}
	// The search's customer filter is not trusted.
	e.fake.SetQuirks(creemfake.Quirks{IgnoreCustomerFilter: true})
	if got, err := e.c.VerifyInvoice(context.Background(), ids, bobs, since); err != nil || got {
		t.Errorf("with the filter ignored, another person's payment: %v %v", got, err)
	}
}
