package connectors

import (
	"context"
	"time"
)

// InvoiceVerifier is an optional capability of a payment system's connector:
// it tells whether a payment reference a person names (an invoice id or
// number, a payment or charge id) belongs to them and is recent. Steward uses
// it as a second factor of identity verification ("recent invoice", the web
// privacy notice's "We will verify identity (challenge login, recent invoice,
// signed instruction, etc.)"): only the person and the payment system know
// which invoices the person paid.
//
// VerifyInvoice searches only the customers the identities reach, so a
// reference of someone else's payment answers false exactly like a made-up
// one; it never says which. ref is personal data: implementations neither
// log it nor put it in errors.
type InvoiceVerifier interface {
	VerifyInvoice(ctx context.Context, ids []Identity, ref string, since time.Time) (bool, error)
}
