package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Result is the outcome of a verification.
type Result struct {
	OK          bool     `json:"ok"`
	Entries     int64    `json:"entries"` // entries checked
	HeadSeq     int64    `json:"head_seq"`
	HeadHash    HexBytes `json:"head_hash"`
	Checkpoints int      `json:"checkpoints"` // signatures checked
	Pending     int64    `json:"pending"`     // appended but not yet sealed
	BrokenSeq   int64    `json:"broken_seq,omitempty"`
	Reason      string   `json:"reason,omitempty"`
}

// String is the one-line verdict `steward audit verify` prints.
func (r Result) String() string {
	if r.OK {
		return fmt.Sprintf("OK %d entries, head %d %x", r.Entries, r.HeadSeq, []byte(r.HeadHash))
	}
	return fmt.Sprintf("FAIL at seq %d: %s", r.BrokenSeq, r.Reason)
}

// Keys are the checkpoint verification keys by key id.
type Keys map[string]ed25519.PublicKey

// Verify recomputes the chain from the start, or from a trusted checkpoint
// (whose signature is checked first), checks every stored checkpoint's
// signature and its agreement with the chain, and checks the head. It reports
// the first broken seq and why.
func Verify(ctx context.Context, pool *pgxpool.Pool, keys Keys, from *Checkpoint) (Result, error) {
	res := Result{}
	fail := func(seq int64, format string, args ...any) (Result, error) {
		res.OK, res.BrokenSeq, res.Reason = false, seq, fmt.Sprintf(format, args...)
		return res, nil
	}
	checkSig := func(c Checkpoint) string {
		pub, ok := keys[c.KeyID]
		if !ok {
			return fmt.Sprintf("checkpoint signed by unknown key %q", c.KeyID)
		}
		if !ed25519.Verify(pub, c.SigningInput(), c.Signature) {
			return "checkpoint signature invalid"
		}
		return ""
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return res, fmt.Errorf("audit verify: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only

	// Every checkpoint, by seq; checked as the walk reaches it.
	cps := map[int64]Checkpoint{}
	rows, err := tx.Query(ctx, `SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq`)
	if err != nil {
		return res, fmt.Errorf("audit verify: checkpoints: %w", err)
	}
	var maxCP int64
	for rows.Next() {
		var c Checkpoint
		var h []byte
		if err := rows.Scan(&c.Seq, &h, &c.At, &c.KeyID, &c.Signature); err != nil {
			rows.Close()
			return res, fmt.Errorf("audit verify: checkpoints: %w", err)
		}
		c.Hash = h
		cps[c.Seq] = c
		maxCP = max(maxCP, c.Seq)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("audit verify: checkpoints: %w", err)
	}

	var headSeq int64
	var headHash []byte
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit_head`).Scan(&headSeq, &headHash); err != nil {
		return res, fmt.Errorf("audit verify: head: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM audit_pending`).Scan(&res.Pending); err != nil {
		return res, fmt.Errorf("audit verify: pending: %w", err)
	}

	expect, prev := int64(1), GenesisHash
	if from != nil {
		if why := checkSig(*from); why != "" {
			return fail(from.Seq, "trusted %s", why)
		}
		var h []byte
		err := tx.QueryRow(ctx, `SELECT hash FROM audit_log WHERE seq = $1`, from.Seq).Scan(&h)
		if err == pgx.ErrNoRows {
			return fail(from.Seq, "entry pinned by the trusted checkpoint is missing")
		}
		if err != nil {
			return res, fmt.Errorf("audit verify: %w", err)
		}
		if !bytes.Equal(h, from.Hash) {
			return fail(from.Seq, "hash differs from the trusted checkpoint")
		}
		expect, prev = from.Seq+1, from.Hash
	}

	// Checkpoints before a trusted starting point are not on the walk; their
	// signatures are still checked.
	for _, c := range sortedCheckpoints(cps) {
		if c.Seq >= expect {
			break
		}
		if why := checkSig(c); why != "" {
			return fail(c.Seq, "%s", why)
		}
		res.Checkpoints++
	}

	rows, err = tx.Query(ctx, `
		SELECT seq, at, actor, action, target_type, target_id, details::text, policy_revision, prev_hash, hash
		FROM audit_log WHERE seq >= $1 ORDER BY seq`, expect)
	if err != nil {
		return res, fmt.Errorf("audit verify: read: %w", err)
	}
	defer rows.Close()
	var (
		seq                              int64
		at                               time.Time
		actor, action, tt, tid, det, rev string
		prevHash, hash                   []byte
	)
	for rows.Next() {
		if err := rows.Scan(&seq, &at, &actor, &action, &tt, &tid, &det, &rev, &prevHash, &hash); err != nil {
			return res, fmt.Errorf("audit verify: read: %w", err)
		}
		if seq != expect {
			return fail(expect, "gap: entry %d is missing (next present is %d)", expect, seq)
		}
		if !bytes.Equal(prevHash, prev) {
			return fail(seq, "prev_hash does not match the hash of entry %d (entries removed, reordered or altered)", seq-1)
		}
		if !bytes.Equal(ComputeHash(seq, at, actor, action, tt, tid, []byte(det), rev, prevHash), hash) {
			return fail(seq, "hash mismatch: the entry was altered")
		}
		if c, ok := cps[seq]; ok {
			if why := checkSig(c); why != "" {
				return fail(seq, "%s", why)
			}
			if !bytes.Equal(c.Hash, hash) {
				return fail(seq, "checkpoint hash differs from the chain")
			}
			res.Checkpoints++
		}
		res.Entries++
		res.HeadSeq, res.HeadHash = seq, append(res.HeadHash[:0], hash...)
		expect, prev = seq+1, hash
	}
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("audit verify: read: %w", err)
	}
	last := expect - 1
	if from != nil && res.Entries == 0 {
		res.HeadSeq, res.HeadHash = from.Seq, from.Hash
	}
	// Removing the newest entries leaves a consistent chain; the head row
	// and any later checkpoint still remember them.
	if headSeq > last {
		return fail(last+1, "entries %d..%d are missing (the chain head is at %d)", last+1, headSeq, headSeq)
	}
	if maxCP > last {
		return fail(last+1, "entries from %d on are missing (a checkpoint pins entry %d)", last+1, maxCP)
	}
	if headSeq != last || (last > 0 && !bytes.Equal(headHash, prev)) {
		return fail(last, "chain head (%d) does not match the last entry", headSeq)
	}
	res.OK = true
	return res, nil
}

func sortedCheckpoints(m map[int64]Checkpoint) []Checkpoint {
	out := make([]Checkpoint, 0, len(m))
	for _, c := range m {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}
