package dsar

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/identity"
)

// openDuplicate finds an open request of the same type for the same person
// under another of their identities: one the consent ledger links to this
// subject (the bot's backend says tg:… is email:…), or one an open request
// already reached (given, added by staff, or resolved by a connector). Two
// erasures of one person, one by email and one by Telegram, would otherwise
// both run, and the person would be answered twice. The same subject is the
// unique index's job (Create's ON CONFLICT).
func (s *Service) openDuplicate(ctx context.Context, tx pgx.Tx, typ string, subj identity.Subject, subjectID int64, now time.Time) (Request, bool, error) {
	var id string
	err := tx.QueryRow(ctx, `
		SELECT r.id::text FROM privacy_requests r
		WHERE r.type = $1 AND r.status NOT IN ('completed', 'denied', 'canceled') AND r.subject_id <> $2
		  AND (r.subject_id IN (SELECT linked_id FROM subject_links WHERE subject_id = $2
		                        UNION SELECT subject_id FROM subject_links WHERE linked_id = $2)
		       OR EXISTS (SELECT 1 FROM privacy_request_identities i WHERE i.request_id = r.id AND i.lookup_hash = ANY($3)))
		ORDER BY r.received_at, r.id LIMIT 1`, typ, subjectID, s.Keys.Hashes(subj)).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Request{}, false, nil
	}
	if err != nil {
		return Request{}, false, fmt.Errorf("dsar: look for an open request under another identity: %w", err)
	}
	r, err := scanRequest(tx.QueryRow(ctx, `SELECT `+requestColumns+` FROM privacy_requests WHERE id = $1`, id), now)
	if err != nil {
		return Request{}, false, fmt.Errorf("dsar: load the open request: %w", err)
	}
	return r, true, nil
}
