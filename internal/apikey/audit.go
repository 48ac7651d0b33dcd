package apikey

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/audit"
)

// AuditTo records key changes in the audit log, made by actor (the API's
// caller is "system:api", the CLI "system:cli"): the key's id, name and
// role, never its secret.
func AuditTo(l *audit.Log, actor string) AuditFunc {
	return func(ctx context.Context, tx pgx.Tx, action string, k Key) error {
		return l.Append(ctx, tx, audit.Record{Actor: actor, Action: action, TargetType: "api_key", TargetID: k.ID,
			Details: map[string]any{"name": k.Name, "role": k.Role}})
	}
}
