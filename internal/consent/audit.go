package consent

import (
	"context"
	"encoding/hex"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/audit"
)

// AuditGPC records the first Global Privacy Control signal of a subject in
// the audit log; the subject is named only by its keyed hash.
func AuditGPC(l *audit.Log) GPCHook {
	return func(ctx context.Context, tx pgx.Tx, subjectHash []byte, eventIDs []string) error {
		h := hex.EncodeToString(subjectHash)
		return l.Append(ctx, tx, audit.Record{Actor: "subject:" + h, Action: "consent.gpc_recorded", TargetType: "subject", TargetID: h,
			Details: map[string]any{"consent_events": eventIDs}})
	}
}
