// Package webhooks holds Steward's webhooks both ways. Inbound: the
// webhooks of the providers Steward reaches, each verified against its
// secret over the raw body and recorded in the audit log without personal
// data (the HTTP handler in internal/api only hands the body and
// signature on). Outbound (endpoints.go): the endpoints staff register to
// follow consent changes, privacy requests and restrictions, their
// secrets, delivery log and replay; the outbox (internal/notify) signs
// and sends.
package webhooks

import (
	"context"
	"encoding/hex"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors/creem"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/keyring"
)

// Creem receives Creem's webhooks.
type Creem struct {
	Secret []byte // the webhook secret of the Creem store
	Keys   *keyring.Keyring
	Pool   *pgxpool.Pool
	Audit  *audit.Log
}

// Receive verifies a Creem webhook's signature and records the event in
// the audit log: its id and type, and the customer only as a keyed hash (a
// Creem customer id is linkable to a person). Errors are apperr errors:
// unauthenticated for a bad signature, invalid for a malformed event.
func (c *Creem) Receive(ctx context.Context, body []byte, signature string) error {
	if len(body) > creem.MaxWebhookSize {
		return apperr.New(apperr.TooLarge, "webhook body larger than %d bytes", creem.MaxWebhookSize)
	}
	if err := creem.VerifyWebhook(c.Secret, body, signature); err != nil {
		return apperr.New(apperr.Unauthenticated, "the creem-signature header does not match the body")
	}
	ev, err := creem.ParseWebhook(body)
	if err != nil {
		// The parser's messages name fields, never their values.
		return apperr.New(apperr.Invalid, "%s", err.Error())
	}
	details := map[string]any{"event_id": ev.ID, "event_type": ev.Type, "object_type": ev.ObjectType}
	target := ""
	if ev.CustomerID != "" {
		target = hex.EncodeToString(c.Keys.HashValue("creem:" + ev.CustomerID))
	}
	return c.Audit.Record(ctx, c.Pool, audit.Record{Actor: "system:creem", Action: "creem.webhook_received",
		TargetType: "creem_customer", TargetID: target, Details: details})
}
