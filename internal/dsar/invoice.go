package dsar

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/apperr"
)

// invoiceVerifiers are the connectors of product's systems that can check
// an invoice (connectors.InvoiceVerifier), by system id in name order. A
// system the data map gives no products is every product's.
func (s *Service) invoiceVerifiers(product string) []connectors.InvoiceVerifier {
	dm := s.Policies.Current().DataMap
	ids := make([]string, 0, len(s.Connectors))
	for id := range s.Connectors {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []connectors.InvoiceVerifier
	for _, id := range ids {
		v, ok := s.Connectors[id].(connectors.InvoiceVerifier)
		if !ok {
			continue
		}
		if dm != nil && product != "" {
			if sys, ok := dm.Systems[id]; ok && len(sys.Products) > 0 && !slices.Contains(sys.Products, product) {
				continue
			}
		}
		out = append(out, v)
	}
	return out
}

// cleanReference is the reference a person typed, or "" if it cannot be
// one: invoice numbers and payment ids are short runs of letters, digits
// and a little punctuation.
func cleanReference(ref string) string {
	ref = strings.TrimSpace(ref)
	if ref == "" || len(ref) > 100 {
		return ""
	}
	for _, r := range ref {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_/#.", r)) {
			return ""
		}
	}
	return ref
}

// VerifyInvoice is the "recent invoice" second factor: the person, holding
// the status token the email code gave them, names an invoice or payment of
// theirs from the last InvoiceMaxAge; Steward asks the product's payment
// connectors whether it belongs to the request's identities. Together with
// the code it reaches high (Cal. Code Regs. tit. 11 §7062(c): matching
// information only the person holds). An attempt is counted before the
// connector is asked, so InvoiceAttempts wrong references (then the method
// is void for the request) hold however many arrive at once. Failures are
// audited with the reference's keyed hash, never the reference.
func (s *Service) VerifyInvoice(ctx context.Context, id, statusToken, ref string) (Request, error) {
	if !ValidID(id) {
		return Request{}, errNotFound
	}
	clean := cleanReference(ref)
	if clean == "" {
		return Request{}, apperr.Field("reference", "the number of a recent invoice or payment, as printed on it")
	}
	var r Request
	var attempts int
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = s.lock(ctx, tx, id); err != nil {
			return err
		}
		if err := s.checkToken(ctx, tx, id, statusToken); err != nil {
			return err
		}
		if !r.AwaitingSecondFactor {
			return apperr.New(apperr.Conflict, "this request is not waiting for a second step of verification")
		}
		if !hasMethod(r.VerificationMethods, MethodEmailCode) {
			return apperr.New(apperr.Conflict, "a recent invoice completes the email code: confirm the code first")
		}
		if len(s.invoiceVerifiers(r.Product)) == 0 {
			return apperr.New(apperr.Conflict, "invoices cannot be checked for this product")
		}
		if err := tx.QueryRow(ctx, `UPDATE privacy_requests SET invoice_attempts = invoice_attempts + 1 WHERE id = $1 RETURNING invoice_attempts`, id).Scan(&attempts); err != nil {
			return fmt.Errorf("dsar: count invoice attempt: %w", err)
		}
		if attempts > s.cfg.InvoiceAttempts {
			return errInvoiceVoid
		}
		return nil
	})
	if err != nil {
		return Request{}, err
	}
	ids, err := s.connectorIdentities(ctx, id)
	if err != nil {
		return Request{}, err
	}
	since := s.Clock.Now().Add(-s.cfg.InvoiceMaxAge)
	found := false
	for _, v := range s.invoiceVerifiers(r.Product) {
		ok, err := v.VerifyInvoice(ctx, ids, clean, since)
		if err != nil {
			// The attempt stays counted: an outage must not become an
			// oracle. The person tries again later.
			s.Log.WarnContext(ctx, "invoice check failed", "request_id", id, "err", err)
			return Request{}, apperr.New(apperr.Unavailable, "the payment system could not be asked just now; try again in a few minutes")
		}
		if ok {
			found = true
			break
		}
	}
	var failure error
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = s.lock(ctx, tx, id); err != nil {
			return err
		}
		if !r.AwaitingSecondFactor {
			return apperr.New(apperr.Conflict, "this request is not waiting for a second step of verification")
		}
		if !found {
			left := max(s.cfg.InvoiceAttempts-attempts, 0)
			det := map[string]any{"method": MethodRecentInvoice, "attempts": attempts, "max_attempts": s.cfg.InvoiceAttempts,
				"reference_hash": fmt.Sprintf("%x", s.Keys.HashValue("dsar-invoice\x00" + id + "\x00" + strings.ToLower(clean))[:8])}
			if left == 0 {
				det["method_voided"] = true
				failure = errInvoiceVoid
			} else {
				failure = apperr.Field("reference", "no recent invoice or payment of yours has that number (last %d days); check it on the invoice (%d of %d attempts left)",
					int(s.cfg.InvoiceMaxAge.Hours()/24), left, s.cfg.InvoiceAttempts)
			}
			return s.event(ctx, tx, id, "verification_failed", "", "", actorSystem, "", det)
		}
		_, err = s.addVerification(ctx, tx, &r, VerificationStep{Method: MethodRecentInvoice, Level: LevelHigh, Actor: actorSystem})
		return err
	})
	if err != nil {
		return Request{}, err
	}
	if failure != nil {
		return Request{}, failure
	}
	return r, nil
}

var errInvoiceVoid = apperr.New(apperr.RateLimited, "too many invoice numbers did not match: this method no longer works for this request; sign in to your account or write to us")

// connectorIdentities are the request's identities as connectors take them.
func (s *Service) connectorIdentities(ctx context.Context, id string) ([]connectors.Identity, error) {
	var out []connectors.Identity
	err := s.tx(ctx, func(tx pgx.Tx) error {
		ids, err := s.identities(ctx, tx, id)
		if err != nil {
			return err
		}
		for _, x := range ids {
			out = append(out, connectors.IdentityOf(x.subj))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("dsar: request has no identities")
	}
	return out, nil
}
