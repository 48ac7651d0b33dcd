// Package restrictions is Steward's ledger of restricted processing for
// systems whose schema has no place to mark it: a connector records there
// that a person's data in a dataset may only be stored, not used, and the
// application asks before processing. Identities are kept only as keyed
// hashes under every key generation, like the subjects table, so the ledger
// holds no personal data in the clear.
package restrictions

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/keyring"
)

// Ledger stores restrictions in Steward's database.
type Ledger struct {
	Pool *pgxpool.Pool
	Keys *keyring.Keyring
	Now  func() time.Time
}

// Restrict records (or lifts) the restriction of a person, known by ids, in
// one dataset of one system. It reports whether anything changed, so a
// repeated call is a no-op the caller can see.
func (l *Ledger) Restrict(ctx context.Context, system, dataset string, ids []connectors.Identity, restricted bool, _ string) (bool, error) {
	if len(ids) == 0 {
		return false, nil
	}
	var active, all [][]byte
	for _, id := range ids {
		s := identity.Subject{Type: identity.Type(id.Type), Provider: id.Provider, Value: id.Value}
		active = append(active, l.Keys.Hash(s))
		all = append(all, l.Keys.Hashes(s)...)
	}
	if restricted {
		// Already restricted under any identity and key generation: nothing
		// to do. Otherwise record every identity, so a later lookup by any
		// of them finds it.
		var n int
		if err := l.Pool.QueryRow(ctx, `SELECT count(*) FROM processing_restrictions
			WHERE system = $1 AND dataset = $2 AND lookup_hash = ANY($3)`, system, dataset, all).Scan(&n); err != nil {
			return false, fmt.Errorf("restrictions: look up: %w", err)
		}
		if n > 0 {
			return false, nil
		}
		tag, err := l.Pool.Exec(ctx, `INSERT INTO processing_restrictions (system, dataset, lookup_hash, restricted_at)
			SELECT $1, $2, h, $4 FROM unnest($3::bytea[]) AS h ON CONFLICT DO NOTHING`, system, dataset, active, l.Now())
		if err != nil {
			return false, fmt.Errorf("restrictions: record: %w", err)
		}
		return tag.RowsAffected() > 0, nil
	}
	tag, err := l.Pool.Exec(ctx, `DELETE FROM processing_restrictions
		WHERE system = $1 AND dataset = $2 AND lookup_hash = ANY($3)`, system, dataset, all)
	if err != nil {
		return false, fmt.Errorf("restrictions: lift: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// Restricted returns the "system.dataset" entries in which the identity's
// processing is restricted.
func (l *Ledger) Restricted(ctx context.Context, s identity.Subject) ([]string, error) {
	rows, err := l.Pool.Query(ctx, `SELECT DISTINCT system || '.' || dataset FROM processing_restrictions
		WHERE lookup_hash = ANY($1) ORDER BY 1`, l.Keys.Hashes(s))
	if err != nil {
		return nil, fmt.Errorf("restrictions: look up: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, fmt.Errorf("restrictions: look up: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
