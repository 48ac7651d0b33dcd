package dsar

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/notify"
)

// emitStatusChanged tells subscribed systems that a request moved, inside
// the transaction that moves it, so a follower never sees a move that did
// not commit nor misses one that did. It carries no identity, only what a
// downstream system needs to follow the request (and, for restriction and
// erasure, to know its duty under GDPR Art. 19 is coming).
func (s *Service) emitStatusChanged(ctx context.Context, tx pgx.Tx, r *Request, ev Event, from Status) error {
	if s.Outbox == nil {
		return nil
	}
	_, err := s.Outbox.EnqueueWebhook(ctx, tx, notify.WebhookEvent{
		Type: notify.EventRequestStatusChanged,
		At:   s.Clock.Now(),
		Data: map[string]any{
			"request_id": r.ID, "type": r.Type, "status": string(r.Status), "previous_status": string(from),
			"event": string(ev), "channel": r.Channel, "product": r.Product, "regime": r.Regime, "due_at": r.DueAt,
		},
	})
	if err != nil {
		return fmt.Errorf("dsar: queue webhook: %w", err)
	}
	return nil
}
