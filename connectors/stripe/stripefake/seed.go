package stripefake

import (
	"encoding/json"
	"fmt"
)

// The seed types describe objects to create. Zero fields take Stripe-like
// defaults (currency usd, a succeeded payment, an active subscription);
// Extra fields are merged into the object's JSON last, for anything else a
// test needs.

// Address is a postal address.
type Address struct {
	Line1, Line2, City, State, PostalCode, Country string
}

// Shipping is a shipping name, phone and address.
type Shipping struct {
	Name, Phone string
	Address     Address
}

// TaxID is a customer tax id.
type TaxID struct {
	Type, Value string
}

// Customer seeds a customer.
type Customer struct {
	Email, Name, Phone, Description string
	Address                         *Address
	Shipping                        *Shipping
	Metadata                        map[string]string
	TaxIDs                          []TaxID
	Extra                           map[string]any
}

// BillingDetails are a payment method's or charge's billing details.
type BillingDetails struct {
	Name, Email, Phone string
	Address            *Address
}

// Card is a card's non-sensitive details.
type Card struct {
	Brand, Last4, Country string
	ExpMonth, ExpYear     int
}

// PaymentMethod seeds a payment method, attached to Customer when set.
type PaymentMethod struct {
	Customer       string
	Type           string // default card
	Card           Card
	BillingDetails BillingDetails
	Extra          map[string]any
}

// PaymentIntent seeds a payment intent.
type PaymentIntent struct {
	Customer, PaymentMethod        string
	Amount                         int64
	Currency, Status, ReceiptEmail string
	Shipping                       *Shipping
	Extra                          map[string]any
}

// Charge seeds a charge.
type Charge struct {
	Customer, PaymentIntent, PaymentMethod string
	Amount                                 int64
	Currency, Status, ReceiptEmail         string
	BillingDetails                         BillingDetails
	Card                                   Card
	Extra                                  map[string]any
}

// Refund seeds a refund of Charge.
type Refund struct {
	Charge                   string
	Amount                   int64
	Currency, Reason, Status string
	Extra                    map[string]any
}

// Dispute seeds a dispute of Charge.
type Dispute struct {
	Charge                   string
	Amount                   int64
	Currency, Reason, Status string
	Evidence                 map[string]string
	Extra                    map[string]any
}

// Invoice seeds an invoice.
type Invoice struct {
	Customer, CustomerEmail, CustomerName string
	CustomerAddress                       *Address
	CustomerTaxIDs                        []TaxID
	AmountPaid                            int64
	Currency, Status, Subscription        string
	Extra                                 map[string]any
}

// Subscription seeds a subscription with one item per price.
type Subscription struct {
	Customer, Status, DefaultPaymentMethod string
	Prices                                 []string
	Extra                                  map[string]any
}

// CustomerDetails are a checkout session's customer details.
type CustomerDetails struct {
	Email, Name, Phone string
	Address            *Address
}

// CheckoutSession seeds a checkout session.
type CheckoutSession struct {
	Customer, ClientReferenceID                         string
	CustomerDetails                                     *CustomerDetails
	AmountTotal                                         int64
	Currency, Status, Mode, PaymentIntent, Subscription string
	Extra                                               map[string]any
}

// AddCustomer creates a customer (and its tax ids) and returns its id.
func (s *Server) AddCustomer(c Customer) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	md := map[string]any{}
	for k, v := range c.Metadata {
		md[k] = v
	}
	id := s.add("cus", "customer", map[string]any{
		"address": addr(c.Address), "balance": 0, "currency": nil, "default_source": nil, "delinquent": false,
		"description": str(c.Description), "email": str(c.Email), "invoice_prefix": "FAKE" + fmt.Sprint(s.seq),
		"invoice_settings": map[string]any{"custom_fields": nil, "default_payment_method": nil, "footer": nil, "rendering_options": nil},
		"livemode":         false, "metadata": md, "name": str(c.Name), "next_invoice_sequence": 1, "phone": str(c.Phone),
		"preferred_locales": []any{}, "shipping": shipping(c.Shipping), "tax_exempt": "none", "test_clock": nil,
	}, c.Extra)
	for _, t := range c.TaxIDs {
		s.add("txi", "tax_id", map[string]any{
			"country": nil, "customer": id, "livemode": false, "type": t.Type, "value": t.Value,
			"owner":        map[string]any{"type": "customer", "customer": id},
			"verification": map[string]any{"status": "unavailable", "verified_address": nil, "verified_name": nil},
		}, nil)
	}
	return id
}

// AddTaxID adds a tax id to customer and returns its id.
func (s *Server) AddTaxID(customer string, t TaxID) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add("txi", "tax_id", map[string]any{
		"country": nil, "customer": customer, "livemode": false, "type": t.Type, "value": t.Value,
		"owner":        map[string]any{"type": "customer", "customer": customer},
		"verification": map[string]any{"status": "unavailable", "verified_address": nil, "verified_name": nil},
	}, nil)
}

// AddPaymentMethod creates a payment method and returns its id.
func (s *Server) AddPaymentMethod(p PaymentMethod) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	typ := or(p.Type, "card")
	o := map[string]any{
		"allow_redisplay": "unspecified", "billing_details": billing(p.BillingDetails), "customer": str(p.Customer),
		"livemode": false, "metadata": map[string]any{}, "type": typ,
	}
	if typ == "card" {
		o["card"] = card(p.Card)
	}
	return s.add("pm", "payment_method", o, p.Extra)
}

// AddPaymentIntent creates a payment intent and returns its id.
func (s *Server) AddPaymentIntent(p PaymentIntent) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add("pi", "payment_intent", map[string]any{
		"amount": p.Amount, "amount_received": p.Amount, "currency": or(p.Currency, "usd"), "customer": str(p.Customer),
		"description": nil, "livemode": false, "metadata": map[string]any{}, "payment_method": str(p.PaymentMethod),
		"receipt_email": str(p.ReceiptEmail), "shipping": shipping(p.Shipping), "status": or(p.Status, "succeeded"),
	}, p.Extra)
}

// AddCharge creates a charge and returns its id.
func (s *Server) AddCharge(c Charge) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.add("ch", "charge", map[string]any{
		"amount": c.Amount, "amount_captured": c.Amount, "amount_refunded": 0, "billing_details": billing(c.BillingDetails),
		"captured": true, "currency": or(c.Currency, "usd"), "customer": str(c.Customer), "disputed": false,
		"livemode": false, "metadata": map[string]any{}, "paid": true, "payment_intent": str(c.PaymentIntent),
		"payment_method":         str(c.PaymentMethod),
		"payment_method_details": map[string]any{"type": "card", "card": card(c.Card)},
		"receipt_email":          str(c.ReceiptEmail), "refunded": false, "status": or(c.Status, "succeeded"),
	}, c.Extra)
}

// AddRefund creates a refund and returns its id.
func (s *Server) AddRefund(r Refund) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.objs[r.Charge]; ch != nil {
		n, _ := ch.data["amount_refunded"].(float64)
		ch.data["amount_refunded"] = n + float64(r.Amount)
		ch.data["refunded"] = n+float64(r.Amount) >= ch.data["amount"].(float64)
	}
	return s.add("re", "refund", map[string]any{
		"amount": r.Amount, "charge": str(r.Charge), "currency": or(r.Currency, "usd"), "metadata": map[string]any{},
		"reason": str(r.Reason), "status": or(r.Status, "succeeded"),
	}, r.Extra)
}

// AddDispute creates a dispute and returns its id.
func (s *Server) AddDispute(d Dispute) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.objs[d.Charge]; ch != nil {
		ch.data["disputed"] = true
	}
	ev := map[string]any{}
	for k, v := range d.Evidence {
		ev[k] = v
	}
	return s.add("dp", "dispute", map[string]any{
		"amount": d.Amount, "charge": str(d.Charge), "currency": or(d.Currency, "usd"), "evidence": ev,
		"livemode": false, "metadata": map[string]any{}, "reason": or(d.Reason, "fraudulent"),
		"status": or(d.Status, "needs_response"),
	}, d.Extra)
}

// AddInvoice creates an invoice and returns its id.
func (s *Server) AddInvoice(in Invoice) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	tax := []any{}
	for _, t := range in.CustomerTaxIDs {
		tax = append(tax, map[string]any{"type": t.Type, "value": t.Value})
	}
	return s.add("in", "invoice", map[string]any{
		"amount_due": in.AmountPaid, "amount_paid": in.AmountPaid, "currency": or(in.Currency, "usd"),
		"customer": str(in.Customer), "customer_address": addr(in.CustomerAddress), "customer_email": str(in.CustomerEmail),
		"customer_name": str(in.CustomerName), "customer_tax_ids": tax, "hosted_invoice_url": "https://invoice.stripe.com/i/fake",
		"livemode": false, "metadata": map[string]any{}, "status": or(in.Status, "paid"),
	}, in.Extra)
}

// AddSubscription creates a subscription and returns its id.
func (s *Server) AddSubscription(sub Subscription) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := fmt.Sprintf("sub_F%013d", s.seq+1)
	items := []any{}
	for i, p := range sub.Prices {
		items = append(items, map[string]any{
			"id": fmt.Sprintf("si_F%011d%02d", s.seq+1, i), "object": "subscription_item", "quantity": 1,
			"price":                map[string]any{"id": p, "object": "price", "currency": "usd", "unit_amount": 1000},
			"current_period_start": s.now(), "current_period_end": s.now() + 30*86400, "subscription": id,
		})
	}
	return s.add("sub", "subscription", map[string]any{
		"canceled_at": nil, "currency": "usd", "customer": str(sub.Customer),
		"default_payment_method": str(sub.DefaultPaymentMethod), "ended_at": nil,
		"items":    map[string]any{"object": "list", "data": items, "has_more": false, "url": "/v1/subscription_items?subscription=" + id},
		"livemode": false, "metadata": map[string]any{}, "status": or(sub.Status, "active"),
	}, sub.Extra)
}

// AddCheckoutSession creates a checkout session and returns its id.
func (s *Server) AddCheckoutSession(cs CheckoutSession) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var details any
	if d := cs.CustomerDetails; d != nil {
		details = map[string]any{"address": addr(d.Address), "email": str(d.Email), "name": str(d.Name),
			"phone": str(d.Phone), "tax_exempt": "none", "tax_ids": []any{}}
	}
	return s.add("cs_test", "checkout.session", map[string]any{
		"amount_total": cs.AmountTotal, "client_reference_id": str(cs.ClientReferenceID), "currency": or(cs.Currency, "usd"),
		"customer": str(cs.Customer), "customer_details": details, "livemode": false, "metadata": map[string]any{},
		"mode": or(cs.Mode, "payment"), "payment_intent": str(cs.PaymentIntent), "payment_status": "paid",
		"status": or(cs.Status, "complete"), "subscription": str(cs.Subscription),
	}, cs.Extra)
}

// add stores a new object; s.mu is held.
func (s *Server) add(prefix, typ string, o map[string]any, extra map[string]any) string {
	s.seq++
	id := fmt.Sprintf("%s_F%013d", prefix, s.seq)
	o["id"], o["object"], o["created"] = id, typ, s.now()
	for k, v := range extra {
		o[k] = normalize(v)
	}
	s.objs[id] = &entry{seq: s.seq, typ: typ, data: normalize(o).(map[string]any)}
	return id
}

// normalize turns a seeded value into what its JSON decodes to, so stored
// objects compare and copy like decoded JSON.
func normalize(v any) any {
	var out any
	if err := jsonRoundTrip(v, &out); err != nil {
		panic(fmt.Sprintf("stripefake: seed value %T is not JSON: %v", v, err))
	}
	return out
}

func str(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func addr(a *Address) any {
	if a == nil {
		return nil
	}
	return map[string]any{"line1": str(a.Line1), "line2": str(a.Line2), "city": str(a.City), "state": str(a.State),
		"postal_code": str(a.PostalCode), "country": str(a.Country)}
}

func shipping(sh *Shipping) any {
	if sh == nil {
		return nil
	}
	return map[string]any{"name": str(sh.Name), "phone": str(sh.Phone), "address": addr(&sh.Address)}
}

func billing(b BillingDetails) any {
	a := addr(b.Address)
	if a == nil {
		a = emptyAddress()
	}
	return map[string]any{"name": str(b.Name), "email": str(b.Email), "phone": str(b.Phone), "address": a}
}

func card(c Card) any {
	return map[string]any{"brand": or(c.Brand, "visa"), "last4": or(c.Last4, "4242"), "country": or(c.Country, "US"),
		"exp_month": max(c.ExpMonth, 1), "exp_year": max(c.ExpYear, 2030), "funding": "credit"}
}

func jsonRoundTrip(v any, out *any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
