package stripe

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	stripego "github.com/stripe/stripe-go/v84"

	"github.com/steward-privacy/steward/connectors"
)

// stripePrivacy is where Stripe says what it keeps and why.
const stripePrivacy = "https://stripe.com/privacy"

// fullDeletion ends every note: what is beyond the API is still reachable.
const fullDeletion = "A full deletion at Stripe needs a request to Stripe support."

// Erase erases the subject's objects of the target dataset as the plan
// says, as far as Stripe's API allows, and reports the rest (see the
// package comment). It re-reads what it changed before reporting Verified.
func (c *Connector) Erase(ctx context.Context, p connectors.EraseParams) (connectors.EraseResult, error) {
	m, err := c.enter(ctx, opErase)
	if err != nil {
		return connectors.EraseResult{}, err
	}
	ds, err := m.dataset(opErase, p.Target, p.Fields)
	if err != nil {
		return connectors.EraseResult{}, err
	}
	custs, err := c.customers(ctx, m, p.Identities)
	if err != nil {
		return connectors.EraseResult{}, c.wrap(opErase, c.classify(err))
	}
	e := newEraser(c, p.Target, ds, p.Fields)
	switch ds.object {
	case objCustomer:
		err = e.customers(ctx, custs)
	case objPaymentMethod:
		err = e.paymentMethods(ctx, custs)
	case objTaxID:
		err = e.taxIDs(ctx, custs)
	default:
		err = e.transactions(ctx, custs)
	}
	if err != nil {
		return e.res, c.wrap(opErase+" "+ds.id, c.classify(err))
	}
	e.res.Retained = e.retained()
	c.log.Debug("stripe connector: erased", "system", c.cfg.System, "dataset", ds.id,
		"deleted", e.res.Deleted, "masked", e.res.Masked, "verified", e.res.Verified)
	return e.res, nil
}

// eraser erases one dataset for one subject.
type eraser struct {
	c         *Connector
	t         connectors.Target
	ds        *dataset
	plan      []connectors.FieldPlan
	allDelete bool // every field deleted: the object goes
	work      bool // some field deleted or masked
	res       connectors.EraseResult

	retainedN map[string]int            // plan-retained field -> objects
	kept      map[string]map[string]int // field the plan wanted gone -> why kept -> objects
}

func newEraser(c *Connector, t connectors.Target, ds *dataset, plan []connectors.FieldPlan) *eraser {
	e := &eraser{c: c, t: t, ds: ds, plan: plan, allDelete: true,
		retainedN: map[string]int{}, kept: map[string]map[string]int{}}
	for _, f := range plan {
		e.allDelete = e.allDelete && f.Action == connectors.ActionDelete
		e.work = e.work || erases(f)
	}
	return e
}

func erases(f connectors.FieldPlan) bool {
	return f.Action == connectors.ActionDelete || f.Action == connectors.ActionMask
}

// fixedOr is the value a text field takes: the plan's fixed mask, or def
// (cleared) for deletion and every other mask. Stripe cannot hold a keyed
// hash or pseudonym the connector could compute, and clearing keeps less.
func fixedOr(f connectors.FieldPlan, def string) string {
	if f.Action == connectors.ActionMask && f.Strategy == connectors.StrategyFixed {
		return f.Value
	}
	return def
}

// tally counts obj in the report: the plan's retained fields, and the
// fields it wanted gone that stay (kept: field -> why), when they hold
// something.
func (e *eraser) tally(obj map[string]any, kept map[string]string) {
	for _, f := range e.plan {
		if f.Action == connectors.ActionRetain {
			e.retainedN[f.Field]++
		}
	}
	for field, why := range kept {
		if e.kept[field] == nil {
			e.kept[field] = map[string]int{}
		}
		e.kept[field][why]++
	}
}

// keptFields are the fields of obj the plan wanted gone that the connector
// leaves as they are (changeable says which it changes), with why.
func (e *eraser) keptFields(obj map[string]any, changeable func(field string) bool, why func(field string) string) map[string]string {
	out := map[string]string{}
	for _, f := range e.plan {
		if !erases(f) || changeable(f.Field) {
			continue
		}
		if v, _ := lookup(obj, f.Field); !empty(v) {
			out[f.Field] = why(f.Field)
		}
	}
	return out
}

func (e *eraser) retained() []connectors.Retained {
	var out []connectors.Retained
	for _, f := range e.plan {
		if f.Action == connectors.ActionRetain && e.retainedN[f.Field] > 0 {
			out = append(out, connectors.Retained{Field: f.Field, Basis: f.Basis, Until: f.Until, Records: e.retainedN[f.Field]})
		}
	}
	for _, field := range slices.Sorted(maps.Keys(e.kept)) {
		for _, why := range slices.Sorted(maps.Keys(e.kept[field])) {
			out = append(out, connectors.Retained{Field: field, Basis: why, Records: e.kept[field][why]})
		}
	}
	return out
}

// key is the idempotency key of one write of this task.
func (e *eraser) key(op, id string, change url.Values) *string {
	return idempotencyKey(e.t, op, id, change)
}

// ---- customers

const (
	whyCustomerFixed  = "kept by Stripe: a customer's id and creation time cannot be changed"
	whyCustomerOther  = "kept by Stripe: the connector cannot clear this customer field through Stripe's API"
	whyPaymentMethod  = "kept by Stripe: a detached payment method stays in Stripe's records, unusable"
	whyTaxID          = "kept by Stripe: a tax id's value cannot be changed, only the tax id deleted"
	whyTransactionFmt = "kept by Stripe: Stripe does not let its users change or delete %s; it keeps them under its own legal obligations"
)

// customerEdit is what redacting one customer changes.
type customerEdit struct {
	params url.Values        // the update's form parameters ("" unsets)
	taxIDs []string          // tax ids to delete
	kept   map[string]string // fields left as they are -> why
}

// customerFields are the customer fields an update can clear with an
// empty string.
var customerFields = []string{"email", "phone", "address", "shipping", "metadata"}

// customerText are the text fields that can also take a fixed mask.
var customerText = []string{"name", "description"}

func customerChangeable(field string) bool {
	key, isMeta := strings.CutPrefix(field, "metadata.")
	return slices.Contains(customerFields, field) || slices.Contains(customerText, field) ||
		field == "tax_ids" || isMeta && metadataKey.MatchString(key)
}

// planCustomer says what redacting obj changes; nothing when it already
// reads as the plan wants. obj carries "tax_ids" when the plan erases
// them.
func (e *eraser) planCustomer(obj map[string]any) customerEdit {
	ed := customerEdit{params: url.Values{}}
	for _, f := range e.plan {
		if !erases(f) {
			continue
		}
		cur, _ := lookup(obj, f.Field)
		key, isMeta := strings.CutPrefix(f.Field, "metadata.")
		switch {
		case slices.Contains(customerFields, f.Field):
			// An email, phone or address has no neutral value to mask
			// with (Stripe checks email addresses): it is cleared.
			if !empty(cur) {
				ed.params.Set(f.Field, "")
			}
		case slices.Contains(customerText, f.Field):
			// A field with nothing in it stays empty, even under a fixed
			// mask: masking adds nothing.
			if s, _ := cur.(string); !empty(cur) && s != fixedOr(f, "") {
				ed.params.Set(f.Field, fixedOr(f, ""))
			}
		case isMeta && metadataKey.MatchString(key):
			// metadata.user_id links the customer to the product's account.
			// A keyed hash or pseudonym would need the deployment's hashing
			// key, which the connector does not hold, and nothing needs the
			// link once the person is erased: the key is removed (a fixed
			// mask is written as such).
			if s, _ := cur.(string); !empty(cur) && s != fixedOr(f, "") {
				ed.params.Set("metadata["+key+"]", fixedOr(f, ""))
			}
		case f.Field == "tax_ids":
			list, _ := cur.([]any)
			for _, t := range list {
				if t, ok := t.(map[string]any); ok {
					if id, _ := t["id"].(string); id != "" {
						ed.taxIDs = append(ed.taxIDs, id)
					}
				}
			}
		}
	}
	ed.kept = e.keptFields(obj, customerChangeable, func(field string) string {
		if field == "id" || field == "created" {
			return whyCustomerFixed
		}
		return whyCustomerOther
	})
	return ed
}

func (e *eraser) erasesTaxIDs() bool {
	return slices.ContainsFunc(e.plan, func(f connectors.FieldPlan) bool { return f.Field == "tax_ids" && erases(f) })
}

// customers deletes the subject's customers (a plan deleting every field)
// or redacts them.
func (e *eraser) customers(ctx context.Context, custs []customer) error {
	var cancelled, detached int
	for _, cu := range custs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if e.allDelete {
			deleted, err := e.deleteCustomer(ctx, cu.id)
			if err != nil {
				return err
			}
			if deleted {
				e.res.Deleted++
			}
			continue
		}
		obj := cu.obj
		if !e.work {
			e.tally(obj, e.planCustomer(obj).kept)
			continue
		}
		if e.c.cancel {
			n, err := e.cancelSubscriptions(ctx, cu.id)
			if err != nil {
				return err
			}
			cancelled += n
			if n, err = e.detachAll(ctx, cu.id); err != nil {
				return err
			}
			detached += n
		}
		if e.erasesTaxIDs() {
			var err error
			if obj, err = e.c.withTaxIDs(ctx, obj); err != nil {
				return err
			}
		}
		ed := e.planCustomer(obj)
		changed := false
		if len(ed.params) > 0 {
			done, err := e.updateCustomer(ctx, cu.id, ed.params)
			if err != nil {
				return err
			}
			changed = done
		}
		for _, tid := range ed.taxIDs {
			done, err := e.deleteTaxID(ctx, cu.id, tid)
			if err != nil {
				return err
			}
			changed = changed || done
		}
		if changed {
			e.res.Masked++
		}
		e.tally(obj, ed.kept)
	}
	if err := e.verifyCustomers(ctx, custs); err != nil {
		return err
	}
	e.res.Verified = true
	e.res.Note = e.customerNote(len(custs), cancelled, detached)
	return nil
}

// verifyCustomers re-reads the customers: deleted ones must be gone,
// redacted ones must need no change, and (when configured) have nothing
// left to bill.
func (e *eraser) verifyCustomers(ctx context.Context, custs []customer) error {
	var left []string
	for _, cu := range custs {
		obj, err := e.c.getCustomer(ctx, cu.id)
		if err != nil {
			return err
		}
		switch {
		case obj == nil:
			continue
		case e.allDelete:
			left = append(left, "a customer still exists")
			continue
		case !e.work:
			continue
		}
		if e.erasesTaxIDs() {
			if obj, err = e.c.withTaxIDs(ctx, obj); err != nil {
				return err
			}
		}
		if ed := e.planCustomer(obj); len(ed.params) > 0 || len(ed.taxIDs) > 0 {
			left = append(left, fmt.Sprintf("a customer still needs %d field(s) and %d tax id(s) erased", len(ed.params), len(ed.taxIDs)))
		}
		if e.c.cancel {
			subs, err := e.billable(ctx, cu.id)
			if err != nil {
				return err
			}
			pms, err := e.attached(ctx, cu.id)
			if err != nil {
				return err
			}
			if len(subs) > 0 || len(pms) > 0 {
				left = append(left, fmt.Sprintf("a customer still has %d live subscription(s) and %d payment method(s)", len(subs), len(pms)))
			}
		}
	}
	if len(left) > 0 {
		// Stripe accepted every change; reading back something else means
		// another writer (the product itself) is at work. Trying again
		// later converges.
		return connectors.Retryable(fmt.Errorf("verification after erasing: %s", strings.Join(left, "; ")), 0)
	}
	return nil
}

func (e *eraser) customerNote(n, cancelled, detached int) string {
	keeps := "Stripe also keeps its own records of the person's payments (charges, payment intents, invoices, refunds, disputes, checkout sessions) under its own legal obligations as a payment processor (see " + stripePrivacy + ")."
	switch {
	case n == 0:
		return "No Stripe customer of the person was found. " + keeps + " " + fullDeletion
	case e.allDelete:
		return fmt.Sprintf("%d Stripe customer(s) deleted: Stripe cancels their subscriptions and removes their saved payment methods, and keeps only a record that the customer existed. %s %s", n, keeps, fullDeletion)
	case !e.work:
		return fmt.Sprintf("%d Stripe customer(s) kept as they are, as the plan says. %s %s", n, keeps, fullDeletion)
	}
	s := fmt.Sprintf("%d Stripe customer(s) kept for the accounting obligation, with the personal fields the plan does not keep cleared", n)
	if e.c.cancel {
		s += fmt.Sprintf("; %d subscription(s) cancelled and %d saved payment method(s) detached now, so the person is not billed again", cancelled, detached)
	}
	return s + ". " + keeps + " " + fullDeletion
}

func (e *eraser) updateCustomer(ctx context.Context, id string, change url.Values) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p := &stripego.CustomerUpdateParams{}
	p.IdempotencyKey = e.key("customer.update", id, change)
	for _, k := range slices.Sorted(maps.Keys(change)) {
		p.AddExtra(k, change.Get(k))
	}
	_, err := e.c.api.V1Customers.Update(ctx, id, p)
	if missing(err) {
		return false, nil // deleted meanwhile: nothing left to redact
	}
	return err == nil, err
}

func (e *eraser) deleteCustomer(ctx context.Context, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p := &stripego.CustomerDeleteParams{}
	p.IdempotencyKey = e.key("customer.delete", id, nil)
	_, err := e.c.api.V1Customers.Delete(ctx, id, p)
	if missing(err) {
		return false, nil
	}
	return err == nil, err
}

func (e *eraser) deleteTaxID(ctx context.Context, customer, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p := &stripego.TaxIDDeleteParams{Customer: stripego.String(customer)}
	p.IdempotencyKey = e.key("tax_id.delete", id, nil)
	_, err := e.c.api.V1TaxIDs.Delete(ctx, id, p)
	if missing(err) {
		return false, nil
	}
	return err == nil, err
}

// billable returns the customer's subscriptions that can still bill:
// every status but canceled and incomplete_expired.
func (e *eraser) billable(ctx context.Context, customer string) ([]string, error) {
	var out []string
	lp := &stripego.SubscriptionListParams{ListParams: listParams(), Customer: stripego.String(customer), Status: stripego.String("all")}
	for sub, err := range e.c.api.V1Subscriptions.List(ctx, lp) {
		if err != nil {
			return nil, err
		}
		if sub.Status != stripego.SubscriptionStatusCanceled && sub.Status != stripego.SubscriptionStatusIncompleteExpired {
			out = append(out, sub.ID)
		}
	}
	return out, nil
}

// cancelSubscriptions cancels the customer's live subscriptions at once
// (no final invoice, no proration) and returns how many it cancelled.
func (e *eraser) cancelSubscriptions(ctx context.Context, customer string) (int, error) {
	subs, err := e.billable(ctx, customer)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range subs {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		p := &stripego.SubscriptionCancelParams{}
		p.IdempotencyKey = e.key("subscription.cancel", id, nil)
		_, err := e.c.api.V1Subscriptions.Cancel(ctx, id, p)
		switch {
		case err == nil:
			n++
		case missing(err):
		case refused(err):
			// Stripe refuses to cancel a subscription that is already
			// cancelled (by the product, a moment ago): check.
			sub, gerr := e.c.api.V1Subscriptions.Retrieve(ctx, id, nil)
			if gerr != nil || sub.Status != stripego.SubscriptionStatusCanceled {
				return n, err
			}
		default:
			return n, err
		}
	}
	return n, nil
}

// attached returns the customer's payment methods, as Stripe lists them.
// A customer has a few; they are collected because detaching them while
// paging through the list would move the page boundary.
func (e *eraser) attached(ctx context.Context, customer string) ([]map[string]any, error) {
	var out []map[string]any
	lp := &stripego.PaymentMethodListParams{ListParams: listParams(), Customer: stripego.String(customer)}
	err := iterate(e.c.api.V1PaymentMethods.List(ctx, lp),
		func(x *stripego.PaymentMethod) *stripego.APIResponse { return x.LastResponse },
		func(r *stripego.APIResponse) error {
			obj, err := decodeObject(r.RawJSON)
			if err == nil {
				out = append(out, obj)
			}
			return err
		})
	return out, err
}

func (e *eraser) detachAll(ctx context.Context, customer string) (int, error) {
	pms, err := e.attached(ctx, customer)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, pm := range pms {
		id, _ := pm["id"].(string)
		done, err := e.detach(ctx, id)
		if err != nil {
			return n, err
		}
		if done {
			n++
		}
	}
	return n, nil
}

// detach detaches a payment method from its customer: it can no longer be
// charged or attached again.
func (e *eraser) detach(ctx context.Context, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	p := &stripego.PaymentMethodDetachParams{}
	p.IdempotencyKey = e.key("payment_method.detach", id, nil)
	_, err := e.c.api.V1PaymentMethods.Detach(ctx, id, p)
	switch {
	case err == nil:
		return true, nil
	case missing(err):
		return false, nil
	case refused(err):
		// Stripe refuses to detach what is not attached (detached a
		// moment ago): check.
		pm, gerr := e.c.api.V1PaymentMethods.Retrieve(ctx, id, nil)
		if gerr == nil && pm.Customer == nil {
			return false, nil
		}
	}
	return false, err
}

// ---- payment methods

// billingFields maps the payment-method fields an update can clear to
// their form parameters.
var billingFields = map[string][]string{
	"billing_details":         {"billing_details[name]", "billing_details[email]", "billing_details[phone]", "billing_details[address]"},
	"billing_details.name":    {"billing_details[name]"},
	"billing_details.email":   {"billing_details[email]"},
	"billing_details.phone":   {"billing_details[phone]"},
	"billing_details.address": {"billing_details[address]"},
}

// pmChangeable: billing details are cleared before the payment method is
// detached, and detaching clears its customer.
func pmChangeable(field string) bool {
	_, billing := billingFields[field]
	key, isMeta := strings.CutPrefix(field, "metadata.")
	return billing || field == "customer" || isMeta && metadataKey.MatchString(key)
}

// planPaymentMethod returns the update clearing pm's billing details and
// metadata keys the plan erases (a fixed mask for the name is written).
func (e *eraser) planPaymentMethod(pm map[string]any) url.Values {
	change := url.Values{}
	for _, f := range e.plan {
		if !erases(f) {
			continue
		}
		if key, ok := strings.CutPrefix(f.Field, "metadata."); ok && metadataKey.MatchString(key) {
			if v, _ := lookup(pm, f.Field); v != nil && v != any(fixedOr(f, "")) {
				change.Set("metadata["+key+"]", fixedOr(f, ""))
			}
			continue
		}
		for _, param := range billingFields[f.Field] {
			part := strings.TrimSuffix(strings.TrimPrefix(param, "billing_details["), "]")
			cur, _ := lookup(pm, "billing_details."+part)
			target := ""
			if part == "name" {
				target = fixedOr(f, "")
			}
			if part == "address" {
				if !empty(cur) {
					change.Set(param, "")
				}
			} else if s, _ := cur.(string); !empty(cur) && s != target {
				change.Set(param, target)
			}
		}
	}
	return change
}

// paymentMethods detaches the subject's payment methods when the plan
// erases any of their fields, clearing the billing details it erases
// first (a detached payment method cannot be updated).
func (e *eraser) paymentMethods(ctx context.Context, custs []customer) error {
	for _, cu := range custs {
		pms, err := e.attached(ctx, cu.id)
		if err != nil {
			return err
		}
		for _, pm := range pms {
			id, _ := pm["id"].(string)
			e.tally(pm, e.keptFields(pm, pmChangeable, func(string) string { return whyPaymentMethod }))
			if !e.work {
				continue
			}
			if change := e.planPaymentMethod(pm); len(change) > 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
				p := &stripego.PaymentMethodUpdateParams{}
				p.IdempotencyKey = e.key("payment_method.update", id, change)
				for _, k := range slices.Sorted(maps.Keys(change)) {
					p.AddExtra(k, change.Get(k))
				}
				if _, err := e.c.api.V1PaymentMethods.Update(ctx, id, p); err != nil && !missing(err) {
					return err
				}
			}
			done, err := e.detach(ctx, id)
			if err != nil {
				return err
			}
			if done {
				e.res.Deleted++
			}
		}
	}
	if e.work {
		for _, cu := range custs {
			pms, err := e.attached(ctx, cu.id)
			if err != nil {
				return err
			}
			if len(pms) > 0 {
				return connectors.Retryable(fmt.Errorf("verification after erasing: %d payment method(s) still attached", len(pms)), 0)
			}
		}
	}
	e.res.Verified = true
	e.res.Note = "Detached payment methods can no longer be charged or attached again, but Stripe keeps them (card brand, last four digits, expiry and the billing details the plan keeps) in its records under its own obligations as a payment processor (see " + stripePrivacy + "). " + fullDeletion
	return nil
}

// ---- tax ids

func (e *eraser) taxIDs(ctx context.Context, custs []customer) error {
	for _, cu := range custs {
		ids, err := e.c.taxIDs(ctx, cu.id)
		if err != nil {
			return err
		}
		for _, t := range ids {
			e.tally(t, e.keptFields(t, func(string) bool { return e.work }, func(string) string { return whyTaxID }))
			if !e.work {
				continue
			}
			id, _ := t["id"].(string)
			done, err := e.deleteTaxID(ctx, cu.id, id)
			if err != nil {
				return err
			}
			if done {
				e.res.Deleted++
			}
		}
	}
	if e.work {
		for _, cu := range custs {
			ids, err := e.c.taxIDs(ctx, cu.id)
			if err != nil {
				return err
			}
			if len(ids) > 0 {
				return connectors.Retryable(fmt.Errorf("verification after erasing: %d tax id(s) still there", len(ids)), 0)
			}
		}
	}
	e.res.Verified = true
	e.res.Note = "Tax ids already printed on finalized invoices stay on those invoices, which Stripe keeps under its own legal obligations (see " + stripePrivacy + "). " + fullDeletion
	return nil
}

// ---- transaction records

var plural = map[string]string{
	objCharge: "charges", objRefund: "refunds", objDispute: "disputes", objInvoice: "invoices",
	objPaymentIntent: "payment intents", objCheckoutSession: "checkout sessions", objSubscription: "subscriptions",
}

// transactions changes nothing: Stripe's transaction records cannot be
// edited or deleted through its API. It reads them to report what stays,
// which is also the verification.
func (e *eraser) transactions(ctx context.Context, custs []customer) error {
	why := fmt.Sprintf(whyTransactionFmt, plural[e.ds.object])
	n := 0
	err := e.c.each(ctx, e.ds, custs, false, func(obj map[string]any) error {
		n++
		e.tally(obj, e.keptFields(obj, func(string) bool { return false }, func(string) string { return why }))
		return nil
	})
	if err != nil {
		return err
	}
	e.res.Verified = true
	e.res.Note = fmt.Sprintf("Stripe keeps its own records of the person's %s (%d found) under its own legal obligations as a payment processor (see %s); its API does not let them be changed or deleted. %s",
		plural[e.ds.object], n, stripePrivacy, fullDeletion)
	if e.ds.object == objSubscription && e.work && e.c.cancel {
		e.res.Note += " Live subscriptions are cancelled when the customer is erased."
	}
	return nil
}
