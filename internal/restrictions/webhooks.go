package restrictions

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/notify"
)

// WebhookQueue queues an outbound webhook inside the caller's transaction
// (*notify.Outbox).
type WebhookQueue interface {
	EnqueueWebhook(ctx context.Context, tx pgx.Tx, ev notify.WebhookEvent) (int, error)
}

// emit tells subscribed recipients that processing was restricted or a
// restriction lifted (GDPR Art. 19: each recipient to whom the data were
// disclosed is told of a restriction under Art. 18(1)). It names the
// restriction and its request, never the person.
func (l *Ledger) emit(ctx context.Context, tx pgx.Tx, requestID, system, dataset string, active bool) error {
	if l.Webhooks == nil {
		return nil
	}
	data := map[string]any{"active": active, "entries": []string{system + "." + dataset}}
	if requestID != "" {
		// A request's restriction has a stable id; a connector's own
		// (without a request) is known by its entries alone.
		data["restriction_id"] = groupID(requestID).String()
		data["request_id"] = requestID
	}
	if _, err := l.Webhooks.EnqueueWebhook(ctx, tx, notify.WebhookEvent{Type: notify.EventRestrictionChanged, At: l.now(), Data: data}); err != nil {
		return fmt.Errorf("queue webhook: %w", err)
	}
	return nil
}

// emitLifted is emit for a lifted restriction.
func (l *Ledger) emitLifted(ctx context.Context, tx pgx.Tx, r Restriction) error {
	if l.Webhooks == nil {
		return nil
	}
	data := map[string]any{"restriction_id": r.ID, "active": false, "entries": r.Entries}
	if r.RequestID != "" {
		data["request_id"] = r.RequestID
	}
	if _, err := l.Webhooks.EnqueueWebhook(ctx, tx, notify.WebhookEvent{Type: notify.EventRestrictionChanged, At: l.now(), Data: data}); err != nil {
		return fmt.Errorf("queue webhook: %w", err)
	}
	return nil
}
