package notify

import (
	"context"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/audit"
)

// AuditFailures records in the audit log each message the outbox gave up
// on: its kind, attempts and last error, never its (sealed) content.
func AuditFailures(l *audit.Log) FinalFailure {
	return func(ctx context.Context, tx pgx.Tx, m Message) error {
		return l.Append(ctx, tx, audit.Record{Actor: "system:outbox", Action: "outbox.delivery_failed", TargetType: "outbox_message",
			TargetID: strconv.FormatInt(m.ID, 10), Details: map[string]any{"kind": m.Kind, "attempts": m.Attempts, "last_error": m.LastError}})
	}
}
