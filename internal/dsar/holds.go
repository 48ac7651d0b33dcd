package dsar

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/identity"
)

// HeldFunc says whether a legal hold keeps one field of a dataset from an
// erasure, and on what basis until when; nil holds nothing.
type HeldFunc func(system, dataset, category string) (basis, until string, held bool)

// heldBasis is why held data survives an erasure request: the right to
// erasure does not reach data needed for legal claims.
const heldBasis = "Kept under a legal hold: needed for the establishment, exercise or defence of legal claims (GDPR Art. 17(3)(e))"

// legalHold is one hold in force that can touch a request.
type legalHold struct {
	id, scope, system, dataset, category string
	expires                              *time.Time
}

// legalHolds are the holds in force that touch the subject's data: holds
// on any of their identities (hashed under every key of the ring), and
// every dataset and category hold. Holds are placed by the retention
// service (internal/retention); an erasure honours them as a sweep does.
func (s *Service) legalHolds(ctx context.Context, tx pgx.Tx, subjects []identity.Subject) ([]legalHold, error) {
	hashes := [][]byte{}
	for _, subj := range subjects {
		hashes = append(hashes, s.Keys.Hashes(subj)...)
	}
	rows, err := tx.Query(ctx, `SELECT id::text, scope, COALESCE(system, ''), COALESCE(dataset, ''), COALESCE(category, ''), expires_at
		FROM legal_holds WHERE lifted_at IS NULL AND (expires_at IS NULL OR expires_at > $1)
		  AND (scope <> 'subject' OR subject_hash = ANY($2)) ORDER BY created_at, id`, s.Clock.Now(), hashes)
	if err != nil {
		return nil, fmt.Errorf("dsar: read legal holds: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (legalHold, error) {
		var h legalHold
		err := r.Scan(&h.id, &h.scope, &h.system, &h.dataset, &h.category, &h.expires)
		return h, err
	})
}

// heldFunc answers for BuildPlan from the holds, and collects the ids of
// those that kept something into used.
func heldFunc(holds []legalHold, used map[string]bool) HeldFunc {
	if len(holds) == 0 {
		return nil
	}
	return func(system, dataset, category string) (string, string, bool) {
		for _, h := range holds {
			switch h.scope {
			case "dataset":
				if h.system != system || h.dataset != dataset {
					continue
				}
			case "category":
				if category != h.category && !strings.HasPrefix(category, h.category+".") {
					continue
				}
			}
			used[h.id] = true
			until := "the hold is lifted"
			if h.expires != nil {
				until = "the hold is lifted, at the latest " + h.expires.UTC().Format("2006-01-02")
			}
			return heldBasis, until, true
		}
		return "", "", false
	}
}
