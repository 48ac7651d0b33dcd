package stripe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v84"

	"github.com/steward-privacy/steward/connectors"
)

// Access discloses the subject's objects of the target dataset, each with
// exactly the plan's fields, streaming them to the sink page by page as
// Stripe lists them.
func (c *Connector) Access(ctx context.Context, p connectors.AccessParams, sink connectors.Sink) (connectors.AccessResult, error) {
	var res connectors.AccessResult
	m, err := c.enter(ctx, opAccess)
	if err != nil {
		return res, err
	}
	ds, err := m.dataset(opAccess, p.Target, p.Fields)
	if err != nil {
		return res, err
	}
	custs, err := c.customers(ctx, m, p.Identities)
	if err != nil {
		return res, c.wrap(opAccess, c.classify(err))
	}
	var sinkErr error
	err = c.each(ctx, ds, custs, needsTaxIDs(p.Fields), func(obj map[string]any) error {
		if err := sink.Record(ctx, record(ds, obj, p.Fields)); err != nil {
			sinkErr = fmt.Errorf("stripe %s: access %s: sink: %w", c.cfg.System, ds.id, err)
			return sinkErr
		}
		res.Records++
		return nil
	})
	if sinkErr != nil {
		return res, sinkErr
	}
	if err != nil {
		return res, c.wrap(opAccess+" "+ds.id, c.classify(err))
	}
	return res, nil
}

// record is obj as disclosed: the plan's fields, masked where the plan
// says so.
func record(ds *dataset, obj map[string]any, fields []connectors.FieldPlan) connectors.Record {
	id, _ := obj["id"].(string)
	rec := connectors.Record{Dataset: ds.id, Key: id, Fields: make([]connectors.FieldValue, 0, len(fields))}
	for _, f := range fields {
		v, _ := lookup(obj, f.Field)
		v = disclosed(v)
		if f.Action == connectors.ActionMask {
			v = accessMask(f, v)
		}
		rec.Fields = append(rec.Fields, connectors.FieldValue{Field: f.Field, Category: f.Category, Value: v})
	}
	return rec
}

// accessMask is a disclosed value under a mask the plan asks for (a value
// withheld from the person). Without a hashing key of its own the
// connector withholds a value to be hashed altogether.
func accessMask(f connectors.FieldPlan, v any) any {
	if v == nil {
		return nil
	}
	switch f.Strategy {
	case connectors.StrategyFixed:
		return f.Value
	case connectors.StrategyTruncateDate:
		switch v := v.(type) {
		case json.Number: // Stripe's timestamps are Unix seconds
			if n, err := v.Int64(); err == nil {
				return time.Unix(n, 0).UTC().Format(time.DateOnly)
			}
		case string:
			if d, ok := connectors.TruncateDate(v); ok {
				return d
			}
		}
	}
	return nil
}

func needsTaxIDs(fields []connectors.FieldPlan) bool {
	for _, f := range fields {
		if f.Field == "tax_ids" || strings.HasPrefix(f.Field, "tax_ids.") {
			return true
		}
	}
	return false
}

// each calls fn with every object of ds that belongs to custs, decoded
// from the JSON Stripe sent, page by page as listed (nothing is collected
// first). An object reached twice is passed once.
func (c *Connector) each(ctx context.Context, ds *dataset, custs []customer, taxIDs bool, fn func(map[string]any) error) error {
	seen := map[string]bool{}
	emit := func(r *stripego.APIResponse) error {
		if r == nil {
			return errors.New("stripe-go returned an object without its response")
		}
		obj, err := decodeObject(r.RawJSON)
		if err != nil {
			return err
		}
		id, _ := obj["id"].(string)
		if id == "" || seen[id] {
			return nil
		}
		seen[id] = true
		return fn(obj)
	}
	for _, cu := range custs {
		if err := ctx.Err(); err != nil {
			return err
		}
		id := stripego.String(cu.id)
		var err error
		switch ds.object {
		case objCustomer:
			obj := cu.obj
			if taxIDs {
				if obj, err = c.withTaxIDs(ctx, obj); err != nil {
					return err
				}
			}
			if !seen[cu.id] {
				seen[cu.id] = true
				err = fn(obj)
			}
		case objTaxID:
			err = iterate(c.api.V1TaxIDs.List(ctx, &stripego.TaxIDListParams{ListParams: listParams(), Customer: id}),
				func(x *stripego.TaxID) *stripego.APIResponse { return x.LastResponse }, emit)
		case objPaymentMethod:
			err = iterate(c.api.V1PaymentMethods.List(ctx, &stripego.PaymentMethodListParams{ListParams: listParams(), Customer: id}),
				func(x *stripego.PaymentMethod) *stripego.APIResponse { return x.LastResponse }, emit)
		case objPaymentIntent:
			err = iterate(c.api.V1PaymentIntents.List(ctx, &stripego.PaymentIntentListParams{ListParams: listParams(), Customer: id}),
				func(x *stripego.PaymentIntent) *stripego.APIResponse { return x.LastResponse }, emit)
		case objCharge:
			err = iterate(c.charges(ctx, cu.id), func(x *stripego.Charge) *stripego.APIResponse { return x.LastResponse }, emit)
		case objInvoice:
			err = iterate(c.api.V1Invoices.List(ctx, &stripego.InvoiceListParams{ListParams: listParams(), Customer: id}),
				func(x *stripego.Invoice) *stripego.APIResponse { return x.LastResponse }, emit)
		case objSubscription:
			// Every status: a cancelled subscription is still a record of
			// what the person was billed for.
			err = iterate(c.api.V1Subscriptions.List(ctx, &stripego.SubscriptionListParams{ListParams: listParams(), Customer: id, Status: stripego.String("all")}),
				func(x *stripego.Subscription) *stripego.APIResponse { return x.LastResponse }, emit)
		case objCheckoutSession:
			err = iterate(c.api.V1CheckoutSessions.List(ctx, &stripego.CheckoutSessionListParams{ListParams: listParams(), Customer: id}),
				func(x *stripego.CheckoutSession) *stripego.APIResponse { return x.LastResponse }, emit)
		case objRefund, objDispute:
			// Refunds and disputes belong to charges, not customers: every
			// charge of the customer is asked.
			for ch, err := range c.charges(ctx, cu.id) {
				if err != nil {
					return err
				}
				chID := stripego.String(ch.ID)
				if ds.object == objRefund {
					err = iterate(c.api.V1Refunds.List(ctx, &stripego.RefundListParams{ListParams: listParams(), Charge: chID}),
						func(x *stripego.Refund) *stripego.APIResponse { return x.LastResponse }, emit)
				} else {
					err = iterate(c.api.V1Disputes.List(ctx, &stripego.DisputeListParams{ListParams: listParams(), Charge: chID}),
						func(x *stripego.Dispute) *stripego.APIResponse { return x.LastResponse }, emit)
				}
				if err != nil {
					return err
				}
			}
		default:
			err = fmt.Errorf("object %q not handled", ds.object)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (c *Connector) charges(ctx context.Context, customer string) stripego.Seq2[*stripego.Charge, error] {
	return c.api.V1Charges.List(ctx, &stripego.ChargeListParams{ListParams: listParams(), Customer: stripego.String(customer)})
}

// iterate walks a stripe-go list, handing each item's response (its own
// JSON) to fn.
func iterate[T any](seq stripego.Seq2[T, error], resp func(T) *stripego.APIResponse, fn func(*stripego.APIResponse) error) error {
	for x, err := range seq {
		if err != nil {
			return err
		}
		if err := fn(resp(x)); err != nil {
			return err
		}
	}
	return nil
}

// withTaxIDs returns a copy of the customer obj with its tax ids, all of
// them, under "tax_ids" (Stripe includes them only when expanded, and then
// only the first page).
func (c *Connector) withTaxIDs(ctx context.Context, obj map[string]any) (map[string]any, error) {
	id, _ := obj["id"].(string)
	ids, err := c.taxIDs(ctx, id)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(obj)+1)
	for k, v := range obj {
		out[k] = v
	}
	// No tax ids read as null, as an unset field does.
	var list []any
	for _, t := range ids {
		list = append(list, t)
	}
	if list == nil {
		out["tax_ids"] = nil
	} else {
		out["tax_ids"] = list
	}
	return out, nil
}

// taxIDs returns the customer's tax ids; a customer has a handful at most.
func (c *Connector) taxIDs(ctx context.Context, customer string) ([]map[string]any, error) {
	var out []map[string]any
	err := iterate(c.api.V1TaxIDs.List(ctx, &stripego.TaxIDListParams{ListParams: listParams(), Customer: stripego.String(customer)}),
		func(x *stripego.TaxID) *stripego.APIResponse { return x.LastResponse },
		func(r *stripego.APIResponse) error {
			obj, err := decodeObject(r.RawJSON)
			if err == nil {
				out = append(out, obj)
			}
			return err
		})
	return out, err
}
