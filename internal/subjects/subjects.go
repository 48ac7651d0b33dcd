// Package subjects keeps the one row per identity that consent events and
// privacy requests refer to. The identity is never stored in the clear: it
// is found by a keyed hash under any key generation of the keyring (so
// rotation does not split a person in two) and kept sealed with AES-GCM.
package subjects

import (
	"bytes"
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
	// Active-key hash first: were one identity ever stored twice (before
	// and after a rotation), the row under the active key is the one used.
	err := tx.QueryRow(ctx, `SELECT id, lookup_hash, gpc_at IS NOT NULL, forgotten_at IS NOT NULL FROM subjects WHERE lookup_hash = ANY($1)
		ORDER BY lookup_hash = $2 DESC LIMIT 1`, hashes, hashes[0]).
		Scan(&r.ID, &r.Hash, &r.GPCSeen, &forgotten)
	if err == nil && !bytes.Equal(r.Hash, hashes[0]) {
		// Found under an older key: the identity is in hand, so move the
		// row to the active key's hash now. For an erased subject this is
		// the only way its hash can ever move (rekey has nothing to hash
		// again), and what lets a lookup-only key finally be removed.
		moved, err := Rehash(ctx, tx, r.ID, r.Hash, hashes[0], kr.ActiveKID())
		if err != nil {
			return r, err
		}
		if moved {
			r.Hash = hashes[0]
		}
	}
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

// Rehash moves subject id from its lookup hash old to nw, made under the
// active key kid, and carries the processing restrictions recorded under old
// with it (they are stored under the hash alone), inside tx. It reports
// whether the row moved: not when another transaction moved it first, nor
// when a row already holds nw (the unique index would refuse; the row under
// the active key is the one lookups prefer).
func Rehash(ctx context.Context, tx pgx.Tx, id int64, old, nw []byte, kid string) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE subjects SET lookup_hash = $3, hash_kid = $4 WHERE id = $1 AND lookup_hash = $2
		AND NOT EXISTS (SELECT 1 FROM subjects WHERE lookup_hash = $3)`, id, old, nw, kid)
	if err != nil {
		return false, fmt.Errorf("rehash subject: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	if err := MoveRestrictions(ctx, tx, old, nw); err != nil {
		return false, err
	}
	return true, nil
}

// MoveRestrictions carries processing restrictions (stored under a lookup
// hash only, with no identity to hash again) from an identity's old hash to
// its new one, in the transaction that re-hashes the identity. A restriction
// whose identity is gone from subjects and requests alike cannot be moved;
// it stays under the old hash.
func MoveRestrictions(ctx context.Context, tx pgx.Tx, old, nw []byte) error {
	// An active restriction already recorded under the new hash for the
	// same dataset (restricted again after the rotation) would collide
	// with the one-active-row index; the older row then stays as it is,
	// the newer covers it.
	_, err := tx.Exec(ctx, `UPDATE processing_restrictions p SET lookup_hash = $2 WHERE p.lookup_hash = $1
		AND NOT (p.lifted_at IS NULL AND EXISTS (SELECT 1 FROM processing_restrictions q
			WHERE q.system = p.system AND q.dataset = p.dataset AND q.lookup_hash = $2 AND q.lifted_at IS NULL))`, old, nw)
	if err != nil {
		return fmt.Errorf("move restrictions: %w", err)
	}
	return nil
}
