package stripe_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/stripe/stripefake"
)

// person is one seeded subject: three customers reached three ways, and
// every kind of object on them.
type person struct {
	email  string // the address they give (with a quote, to test escaping)
	email2 string // the address of their third customer
	user   string // their product user id
	// a: email and user id in metadata; b: a duplicate of a by email (a
	// second checkout); c: another email, found by the user id.
	a, b, c string
	pms     []string
	subs    []string
	charges []string
	refund  string
	dispute string
	pi      string
	invoice string
	session string
	taxID   string
	all     map[string]bool // every object id of the person
	others  []string        // other people's customers, seeded alongside
}

var seq atomic.Int64

// seedPerson creates a new person and, around them, people whose data
// must not be touched: one whose email differs only in case, one whose
// user id extends theirs, one whose email extends theirs, one whose user id
// differs only in case.
func seedPerson(f *stripefake.Server) *person {
	n := seq.Add(1)
	p := &person{
		email:  fmt.Sprintf("ann.o'neil+%d@example.com", n),
		email2: fmt.Sprintf("ann.work+%d@example.com", n),
		user:   fmt.Sprintf("user-%d-u", n),
		all:    map[string]bool{},
	}
	addr := &stripefake.Address{Line1: "1 Main St", City: "Tallinn", PostalCode: "10111", Country: "EE"}
	track := func(id string) string { p.all[id] = true; return id }

	p.a = track(f.AddCustomer(stripefake.Customer{Email: p.email, Name: "Ann O'Neil", Phone: "+3725550101",
		Address: addr, Shipping: &stripefake.Shipping{Name: "Ann O'Neil", Address: *addr},
		Metadata: map[string]string{"user_id": p.user, "plan": "pro"}, Description: "Ann from the web shop"}))
	p.b = track(f.AddCustomer(stripefake.Customer{Email: p.email, Name: "Ann O.", Metadata: map[string]string{"source": "checkout"}}))
	p.c = track(f.AddCustomer(stripefake.Customer{Email: p.email2, Name: "Ann O'Neil (work)",
		Metadata: map[string]string{"user_id": p.user}}))
	p.taxID = track(f.AddTaxID(p.a, stripefake.TaxID{Type: "eu_vat", Value: "EE101010101"}))

	bd := stripefake.BillingDetails{Name: "Ann O'Neil", Email: p.email, Address: addr}
	p.pms = append(p.pms, track(f.AddPaymentMethod(stripefake.PaymentMethod{Customer: p.a, BillingDetails: bd,
		Card: stripefake.Card{Brand: "visa", Last4: "4242", ExpMonth: 4, ExpYear: 2031}})))
	p.pms = append(p.pms, track(f.AddPaymentMethod(stripefake.PaymentMethod{Customer: p.b,
		Card: stripefake.Card{Brand: "mastercard", Last4: "4444"}})))
	p.subs = append(p.subs, track(f.AddSubscription(stripefake.Subscription{Customer: p.a, Prices: []string{"price_pro"}, DefaultPaymentMethod: p.pms[0]})))
	p.pi = track(f.AddPaymentIntent(stripefake.PaymentIntent{Customer: p.a, Amount: 1900, ReceiptEmail: p.email, PaymentMethod: p.pms[0],
		Shipping: &stripefake.Shipping{Name: "Ann O'Neil", Address: *addr}}))
	p.charges = append(p.charges, track(f.AddCharge(stripefake.Charge{Customer: p.a, PaymentIntent: p.pi, Amount: 1900,
		ReceiptEmail: p.email, BillingDetails: bd, Card: stripefake.Card{Brand: "visa", Last4: "4242", ExpMonth: 4, ExpYear: 2031}})))
	p.charges = append(p.charges, track(f.AddCharge(stripefake.Charge{Customer: p.b, Amount: 500, Card: stripefake.Card{Last4: "4444"}})))
	p.refund = track(f.AddRefund(stripefake.Refund{Charge: p.charges[0], Amount: 400, Reason: "requested_by_customer"}))
	p.dispute = track(f.AddDispute(stripefake.Dispute{Charge: p.charges[0], Amount: 1500,
		Evidence: map[string]string{"customer_name": "Ann O'Neil", "customer_email_address": p.email}}))
	p.invoice = track(f.AddInvoice(stripefake.Invoice{Customer: p.a, CustomerEmail: p.email, CustomerName: "Ann O'Neil",
		CustomerAddress: addr, CustomerTaxIDs: []stripefake.TaxID{{Type: "eu_vat", Value: "EE101010101"}}, AmountPaid: 1900, Subscription: p.subs[0]}))
	p.session = track(f.AddCheckoutSession(stripefake.CheckoutSession{Customer: p.a, ClientReferenceID: p.user, AmountTotal: 1900,
		PaymentIntent: p.pi, CustomerDetails: &stripefake.CustomerDetails{Email: p.email, Name: "Ann O'Neil", Address: addr}}))

	// Other people.
	upper := strings.ToUpper(p.email[:1]) + p.email[1:]
	for _, c := range []stripefake.Customer{
		{Email: upper, Name: "Another Ann", Metadata: map[string]string{"user_id": p.user + "0"}},
		{Email: "x" + p.email, Name: "Xann", Metadata: map[string]string{"user_id": p.user + "-other"}},
		{Email: p.email + ".evil.test", Name: "Evil Ann"},
		{Email: "other+" + p.email2, Name: "Upper Ann", Metadata: map[string]string{"user_id": strings.ToUpper(p.user)}},
	} {
		o := f.AddCustomer(c)
		p.others = append(p.others, o)
		f.AddTaxID(o, stripefake.TaxID{Type: "eu_vat", Value: "EE999"})
		pm := f.AddPaymentMethod(stripefake.PaymentMethod{Customer: o, BillingDetails: stripefake.BillingDetails{Name: c.Name, Email: c.Email}})
		f.AddSubscription(stripefake.Subscription{Customer: o, Prices: []string{"price_basic"}, DefaultPaymentMethod: pm})
		ch := f.AddCharge(stripefake.Charge{Customer: o, Amount: 700, ReceiptEmail: c.Email})
		f.AddRefund(stripefake.Refund{Charge: ch, Amount: 100})
		f.AddDispute(stripefake.Dispute{Charge: ch, Amount: 600})
		f.AddPaymentIntent(stripefake.PaymentIntent{Customer: o, Amount: 700})
		f.AddInvoice(stripefake.Invoice{Customer: o, CustomerEmail: c.Email, AmountPaid: 700})
		f.AddCheckoutSession(stripefake.CheckoutSession{Customer: o, AmountTotal: 700,
			CustomerDetails: &stripefake.CustomerDetails{Email: c.Email}})
	}
	return p
}

// othersDigest is a checksum of every object that is not the person's.
func (p *person) othersDigest(t testing.TB, f *stripefake.Server) int {
	return digest(t, f, func(o map[string]any) bool { return !p.all[str(o["id"])] })
}

// linked is what ResolveIdentities must find from the email and user id.
func (p *person) linked() []connectors.Identity {
	return []connectors.Identity{id("stripe", p.a), id("stripe", p.b), id("stripe", p.c), id("email", p.email2)}
}

func (p *person) identities() []connectors.Identity {
	return []connectors.Identity{id("email", p.email), id("user", p.user)}
}

// reach is every identity the engine passes after resolution.
func (p *person) reach() []connectors.Identity { return append(p.identities(), p.linked()...) }

func customerFields() []string {
	return []string{"id", "email", "name", "address", "phone", "shipping", "tax_ids", "metadata.user_id", "created"}
}

// transactionDatasets are the datasets Stripe keeps, with the person's
// record counts: their plans retain everything, as the real plans mostly
// do (a field the plan masks is reported kept, tested elsewhere).
func (p *person) transactionDatasets(t testing.TB) []datasetCase {
	return []datasetCase{
		{"refunds", 1}, {"disputes", 1}, {"charges", 2}, {"payment_intents", 1},
		{"invoices", 1}, {"checkout_sessions", 1}, {"subscriptions", 1},
	}
}

type datasetCase struct {
	name    string
	records int
}
