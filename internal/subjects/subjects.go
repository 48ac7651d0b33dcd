// Package subjects keeps the one row per identity that consent events and
// privacy requests refer to. The identity is never stored in the clear: it
// is found by a keyed hash under any key generation of the keyring (so
// rotation does not split a person in two) and kept sealed with AES-GCM.
package subjects

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/keyring"
)

// Row is a stored subject.
type Row struct {
	ID      int64
	Hash    []byte // the lookup hash the row is stored under
	GPCSeen bool   // a Global Privacy Control signal was recorded for it
}

// Upsert finds the subject under any key generation or creates it under the
// active one, inside tx. Two transactions creating the same subject at once
// both succeed and get the same row.
func Upsert(ctx context.Context, tx pgx.Tx, kr *keyring.Keyring, subj identity.Subject, now time.Time) (Row, error) {
	hashes := kr.Hashes(subj)
	var r Row
	var forgotten bool
	err := tx.QueryRow(ctx, `SELECT id, lookup_hash, gpc_at IS NOT NULL, forgotten_at IS NOT NULL FROM subjects WHERE lookup_hash = ANY($1) LIMIT 1`, hashes).
		Scan(&r.ID, &r.Hash, &r.GPCSeen, &forgotten)
	if err == nil && forgotten {
		// Erased before (consent.Forget shredded the sealed value and kept
		// the keyed hash): the person is back, so seal the identity again.
		kid, ct, err := kr.Seal([]byte(subj.String()), []byte(subj.Kind()))
		if err != nil {
			return r, err
		}
		if _, err := tx.Exec(ctx, `UPDATE subjects SET ciphertext = $2, enc_kid = $3, forgotten_at = NULL WHERE id = $1`, r.ID, ct, kid); err != nil {
			return r, fmt.Errorf("reseal subject: %w", err)
		}
		return r, nil
	}
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("find subject: %w", err)
	}
	kid, ct, err := kr.Seal([]byte(subj.String()), []byte(subj.Kind()))
	if err != nil {
		return r, err
	}
	r.Hash = hashes[0]
	err = tx.QueryRow(ctx, `
		INSERT INTO subjects (kind, lookup_hash, hash_kid, ciphertext, enc_kid, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (lookup_hash) DO UPDATE SET lookup_hash = EXCLUDED.lookup_hash
		RETURNING id, gpc_at IS NOT NULL`,
		subj.Kind(), r.Hash, kr.ActiveKID(), ct, kid, now).Scan(&r.ID, &r.GPCSeen)
	if err != nil {
		return r, fmt.Errorf("create subject: %w", err)
	}
	return r, nil
}
