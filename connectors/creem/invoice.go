package creem

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/steward-privacy/steward/connectors"
)

var _ connectors.InvoiceVerifier = (*Connector)(nil)

// VerifyInvoice reports whether ref names a transaction (tran_…) or its
// order (ord_…) of one of the Creem customers ids reach, created at or
// after since (connectors.InvoiceVerifier). Only those customers'
// transactions are listed, and each is checked to be the customer's (the
// search's customer filter is not trusted), so another person's payment
// answers false like a made-up one.
func (c *Connector) VerifyInvoice(ctx context.Context, ids []connectors.Identity, ref string, since time.Time) (bool, error) {
	ref = strings.TrimSpace(ref)
	if ref == "" || len(ref) > 100 {
		return false, nil
	}
	if _, err := c.enter(ctx, "verify_invoice"); err != nil {
		return false, err
	}
	custs, err := c.subjectCustomers(ctx, ids)
	if err != nil {
		return false, fmt.Errorf("creem %s: verify invoice: %w", c.cfg.System, err)
	}
	after := since.UnixMilli()
	for _, cu := range custs {
		if cu.gone {
			continue
		}
		found := false
		q := url.Values{"customer_id": {cu.id}}
		err := c.list(ctx, "transactions.search", "/v1/transactions/search", q, func(it map[string]any) error {
			if found || refID(it["customer"]) != cu.id {
				return nil
			}
			if createdMillis(it["created_at"]) < after {
				return nil
			}
			if id, _ := it["id"].(string); id == ref {
				found = true
			}
			if ord := refID(it["order"]); ord != "" && ord == ref {
				found = true
			}
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("creem %s: verify invoice: %w", c.cfg.System, err)
		}
		if found {
			return true, nil
		}
	}
	return false, nil
}

// createdMillis reads Creem's created_at (milliseconds; a json.Number as
// the client decodes it); anything else is the epoch, older than any since.
func createdMillis(v any) int64 {
	switch v := v.(type) {
	case json.Number:
		n, _ := v.Int64()
		return n
	case float64:
		return int64(v)
	}
	return 0
}
