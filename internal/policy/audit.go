package policy

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/internal/audit"
)

// AuditTo records the bundle in force now as policy.loaded, then every
// reload: a loaded revision (which also becomes the revision l stamps on
// later entries) or a rejected bundle, whose error names files and rules,
// never personal data.
func (h *Holder) AuditTo(ctx context.Context, pool *pgxpool.Pool, l *audit.Log) error {
	loaded := func(ctx context.Context, e *Engine, source string) error {
		return l.Record(ctx, pool, audit.Record{Actor: "system:serve", Action: "policy.loaded", TargetType: "policy", TargetID: e.Revision(),
			Details: map[string]any{"source": source, "purposes": len(e.Purposes)}})
	}
	if err := loaded(ctx, h.Current(), h.Source()); err != nil {
		return err
	}
	h.OnLoaded = func(ctx context.Context, e *Engine, source string) error {
		l.SetPolicyRevision(e.Revision())
		return loaded(ctx, e, source)
	}
	h.OnRejected = func(ctx context.Context, source string, cause error) error {
		msg := cause.Error()
		if len(msg) > 2000 {
			msg = msg[:2000] + "…"
		}
		return l.Record(ctx, pool, audit.Record{Actor: "system:serve", Action: "policy.rejected", TargetType: "policy_source", TargetID: source,
			Details: map[string]any{"error": msg}})
	}
	return nil
}
