package apikey

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/audit"
)

// AuditTo records key changes in the audit log, made by the actor given to
// Create or Revoke (staff:<uuid> in the console, system:cli from the CLI):
// the key's id, name, role and expiry, never its secret.
func AuditTo(l *audit.Log) AuditFunc {
	return func(ctx context.Context, tx pgx.Tx, actor, action string, k Key) error {
		d := map[string]any{"name": k.Name, "role": k.Role}
		if k.ExpiresAt != nil && action == "key.created" {
			d["expires_at"] = k.ExpiresAt.UTC().Format(time.RFC3339)
		}
		return l.Append(ctx, tx, audit.Record{Actor: actor, Action: action, TargetType: "api_key", TargetID: k.ID, Details: d})
	}
}
