package stripe

import (
	"context"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v84"

	"github.com/steward-privacy/steward/connectors"
)

var _ connectors.InvoiceVerifier = (*Connector)(nil)

// maxRef bounds the reference a person types: Stripe ids and invoice
// numbers are far shorter, and nothing longer is sent to Stripe.
const maxRef = 100

// VerifyInvoice reports whether ref names an invoice (by id, in_…, or by the
// number printed on it), a payment intent (pi_…) or a charge (ch_…) of one of
// the customers ids reach, created at or after since. Only those customers'
// lists are read (newest first, stopping at the first older than since), so another person's invoice is never fetched and answers
// false like a made-up reference (connectors.InvoiceVerifier).
func (c *Connector) VerifyInvoice(ctx context.Context, ids []connectors.Identity, ref string, since time.Time) (bool, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" || len(ref) > maxRef {
		return false, nil
	}
	m, err := c.current()
	if err != nil {
		return false, err
	}
	custs, err := c.customers(ctx, m, ids)
	if err != nil {
		return false, c.classify(err)
	}
	after := since.Unix()
	for _, cu := range custs {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		id := stripego.String(cu.id)
		switch {
		case strings.HasPrefix(ref, "pi_"):
			for x, err := range c.api.V1PaymentIntents.List(ctx, &stripego.PaymentIntentListParams{ListParams: listParams(), Customer: id}) {
				if err != nil {
					return false, c.classify(err)
				}
				if x.Created < after {
					break // lists are newest first: the rest are older still
				}
				if x.ID == ref {
					return true, nil
				}
			}
		case strings.HasPrefix(ref, "ch_"):
			for x, err := range c.api.V1Charges.List(ctx, &stripego.ChargeListParams{ListParams: listParams(), Customer: id}) {
				if err != nil {
					return false, c.classify(err)
				}
				if x.Created < after {
					break // lists are newest first: the rest are older still
				}
				if x.ID == ref {
					return true, nil
				}
			}
		default:
			for x, err := range c.api.V1Invoices.List(ctx, &stripego.InvoiceListParams{ListParams: listParams(), Customer: id}) {
				if err != nil {
					return false, c.classify(err)
				}
				if x.Created < after {
					break // lists are newest first: the rest are older still
				}
				if x.ID == ref || x.Number != "" && strings.EqualFold(x.Number, ref) {
					return true, nil
				}
			}
		}
	}
	return false, nil
}
