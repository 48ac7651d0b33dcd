package consent

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/notify"
)

// WebhookQueue queues an outbound webhook inside the caller's transaction
// (*notify.Outbox).
type WebhookQueue interface {
	EnqueueWebhook(ctx context.Context, tx pgx.Tx, ev notify.WebhookEvent) (int, error)
}

// emitChanged tells subscribed systems of a consent event, in the
// transaction that records it: a withdrawal must stop the processing
// wherever it happens (GDPR Art. 7(3); Art. 21(3) for direct marketing;
// the bot notice's promise that "you can opt out of broadcasts at any
// time" holds only if the bot's own opt-out table hears of it). The
// subject's identity goes only to endpoints registered to receive
// identities; the others get its keyed hash (notify.WebhookEvent).
func (s *Service) emitChanged(ctx context.Context, tx pgx.Tx, subj identity.Subject, ev Event) error {
	if s.webhooks == nil {
		return nil
	}
	_, err := s.webhooks.EnqueueWebhook(ctx, tx, notify.WebhookEvent{
		Type: notify.EventConsentChanged,
		At:   ev.RecordedAt,
		Data: map[string]any{
			"event_id": ev.ID, "purpose": ev.Purpose, "state": string(ev.State), "product": ev.Product,
			"subject_kind": ev.SubjectKind, "source": ev.Source, "notice_version": ev.NoticeVersion,
			"jurisdiction": ev.Jurisdiction, "recorded_at": ev.RecordedAt,
		},
		Identity:    subj.String(),
		SubjectHash: ev.SubjectHash,
	})
	if err != nil {
		return fmt.Errorf("queue consent webhook: %w", err)
	}
	return nil
}
