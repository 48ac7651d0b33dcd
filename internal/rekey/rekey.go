// Package rekey retires identity keys: it re-seals every value stored under
// a key that is no longer the keyring's active one, and recomputes the keyed
// lookup hashes stored with them, so the old key can be removed from
// STEWARD_IDENTITY_KEYS. It also says which keys that is, and refuses a
// keyring that lacks a key rows still need.
//
// The job keeps no cursor: each batch selects rows whose key id is not the
// active one (FOR UPDATE SKIP LOCKED, one short transaction per batch), so a
// crash or a second replica simply resumes where the rows say it stands.
package rekey

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/keyring"
)

// Actor is the audit actor of re-encryption runs.
const Actor = "system:rekey"

// DefaultBatch is how many rows one transaction re-seals.
const DefaultBatch = 500

// Service re-keys stored identities; RunOnce is the whole job.
type Service struct {
	Pool  *pgxpool.Pool
	Keys  *keyring.Keyring
	Audit *audit.Log // nil: not audited (tests of the mechanics)
	Log   *slog.Logger
	// Batch is how many rows one transaction re-seals; DefaultBatch when 0.
	Batch int
	// Gauge, if set, is steward_identity_rows_on_retired_keys, kept current
	// by Status and RunOnce.
	Gauge prometheus.Gauge

	// afterBatch, for tests, runs after each committed batch.
	afterBatch func(group string, n int)
}

// NewGauge registers steward_identity_rows_on_retired_keys on reg.
func NewGauge(reg prometheus.Registerer) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "steward_identity_rows_on_retired_keys",
		Help: "Stored identity values (sealed or lookup-hashed) still under a key other than the active identity key; 0 means every non-active key can be removed.",
	})
	reg.MustRegister(g)
	return g
}

// Count is how many rows of one group are under one key.
type Count struct {
	Group string `json:"group"`
	KID   string `json:"kid"`
	Rows  int64  `json:"rows"`
	// Stuck rows cannot be re-keyed by the job (see Status.Stuck).
	Stuck bool `json:"stuck,omitempty"`
}

// Status is where the stored identities stand against the keyring.
type Status struct {
	Active     string   `json:"active"`
	Configured []string `json:"configured"`
	// Rows counts rows under any key but the active one, by group and key.
	Rows []Count `json:"rows"`
}

// Remaining is the number of rows not under the active key.
func (s Status) Remaining() int64 {
	var n int64
	for _, c := range s.Rows {
		n += c.Rows
	}
	return n
}

// ByKID sums Rows per key id.
func (s Status) ByKID() map[string]int64 {
	out := map[string]int64{}
	for _, c := range s.Rows {
		out[c.KID] += c.Rows
	}
	return out
}

// Retirable are the configured keys, other than the active one, that no
// row uses: they can be removed from STEWARD_IDENTITY_KEYS.
func (s Status) Retirable() []string {
	used := s.ByKID()
	var out []string
	for _, k := range s.Configured {
		if k != s.Active && used[k] == 0 {
			out = append(out, k)
		}
	}
	return out
}

// Missing are key ids rows still use that the keyring lacks, with counts.
func (s Status) Missing() map[string]int64 {
	out := map[string]int64{}
	for k, n := range s.ByKID() {
		if !slices.Contains(s.Configured, k) {
			out[k] = n
		}
	}
	return out
}

// ErrMissingKey is wrapped by Check's refusal.
var ErrMissingKey = errors.New("identity keys: a key that stored rows still use is not configured")

// Check refuses a keyring that lacks a key rows still use, naming the key
// and the row counts, so removing a key too early stops Steward at start-up
// instead of failing on the first read of such a row. It logs which
// configured keys are no longer used and can be removed.
func (s *Service) Check(ctx context.Context) (Status, error) {
	st, err := s.Status(ctx)
	if err != nil {
		return st, err
	}
	if missing := st.Missing(); len(missing) > 0 {
		kids := make([]string, 0, len(missing))
		for k := range missing {
			kids = append(kids, k)
		}
		sort.Strings(kids)
		var parts []string
		for _, k := range kids {
			var where []string
			for _, c := range st.Rows {
				if c.KID == k {
					where = append(where, fmt.Sprintf("%s: %d", c.Group, c.Rows))
				}
			}
			parts = append(parts, fmt.Sprintf("%d rows under key %q (%s)", missing[k], k, strings.Join(where, ", ")))
		}
		return st, fmt.Errorf("%w: %s; put the key back in STEWARD_IDENTITY_KEYS (after the active key), run `steward keys reencrypt`, and remove it once `steward keys status` says it can go",
			ErrMissingKey, strings.Join(parts, "; "))
	}
	if s.Log != nil {
		if r := st.Retirable(); len(r) > 0 {
			s.Log.Info("identity keys no longer used by any row; they can be removed from STEWARD_IDENTITY_KEYS", "kids", r, "active", st.Active)
		}
		if n := st.Remaining(); n > 0 {
			s.Log.Info("identity rows still under a non-active key; re-encryption moves them", "rows", n, "by_kid", st.ByKID(), "active", st.Active)
		}
	}
	return st, nil
}

// Status counts, per group and key, the rows not under the active key.
func (s *Service) Status(ctx context.Context) (Status, error) {
	st := Status{Active: s.Keys.ActiveKID(), Configured: s.Keys.KIDs(), Rows: []Count{}}
	add := func(group, q string, stuck bool) error {
		rows, err := s.Pool.Query(ctx, q, st.Active)
		if err != nil {
			return fmt.Errorf("rekey: status %s: %w", group, err)
		}
		counts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Count, error) {
			c := Count{Group: group, Stuck: stuck}
			return c, r.Scan(&c.KID, &c.Rows)
		})
		if err != nil {
			return fmt.Errorf("rekey: status %s: %w", group, err)
		}
		st.Rows = append(st.Rows, counts...)
		return nil
	}
	for _, t := range tables {
		q := `SELECT ` + t.kid + `, count(*) FROM ` + t.table + ` WHERE ` + t.kid + ` IS NOT NULL AND ` + t.kid + ` <> '' AND ` + t.kid + ` <> $1 GROUP BY 1 ORDER BY 1`
		if err := add(t.name, q, false); err != nil {
			return st, err
		}
		if t.hash != nil && t.hash.kid != "" {
			// A hash re-keyed with its ciphertext (below) is counted
			// there; what is left is the hashes alone: a subject whose
			// identity was erased (consent.Forget) keeps its hash as
			// proof of an opt-out, and with no identity to hash again
			// the job cannot move it.
			q := `SELECT ` + t.hash.kid + `, count(*) FROM ` + t.table + ` WHERE ` + t.hash.kid + ` <> $1 AND ` + t.kid + ` = '' GROUP BY 1 ORDER BY 1`
			if err := add(t.name+"."+t.hash.col+" (erased)", q, true); err != nil {
				return st, err
			}
			q = `SELECT ` + t.hash.kid + `, count(*) FROM ` + t.table + ` WHERE ` + t.hash.kid + ` <> $1 AND ` + t.kid + ` = $1 GROUP BY 1 ORDER BY 1`
			if err := add(t.name+"."+t.hash.col, q, false); err != nil {
				return st, err
			}
		}
	}
	// Undelivered outbox messages carry a sealed address until delivered
	// or failed; the job leaves them to drain (internal/notify owns their
	// associated data), but a key they need cannot go yet.
	q := `SELECT coalesce(payload->>'kid', payload->>'email_kid'), count(*) FROM outbox
		WHERE status = 'pending' AND coalesce(payload->>'kid', payload->>'email_kid', '') NOT IN ('', $1) GROUP BY 1 ORDER BY 1`
	if err := add("outbox (pending delivery)", q, true); err != nil {
		return st, err
	}
	if s.Gauge != nil {
		s.Gauge.Set(float64(st.Remaining()))
	}
	return st, nil
}

// RunOnce re-keys every row not under the active key, batch by batch, and
// returns how many rows it moved. It is safe to run on several replicas at
// once and to interrupt at any point: a batch commits whole or not at all.
// With only one key configured there is nothing to do (Check has made sure
// no row needs another).
func (s *Service) RunOnce(ctx context.Context) (int, error) {
	if len(s.Keys.KIDs()) < 2 {
		return 0, nil
	}
	st, err := s.Status(ctx)
	if err != nil {
		return 0, err
	}
	movable := int64(0)
	for _, c := range st.Rows {
		if !c.Stuck {
			movable += c.Rows
		}
	}
	if movable == 0 {
		return 0, nil
	}
	active := s.Keys.ActiveKID()
	if err := s.audit(ctx, "identity_keys.reencrypt_started", map[string]any{"active_kid": active, "rows": movable, "by_kid": st.ByKID()}); err != nil {
		return 0, err
	}
	total := 0
	for _, t := range tables {
		n, batches, err := s.runGroup(ctx, t)
		total += n
		if n > 0 {
			// One entry per group, not per batch: the chain records what
			// moved without a row per transaction.
			if aerr := s.audit(ctx, "identity_keys.reencrypt_batches", map[string]any{"group": t.name, "rows": n, "batches": batches, "active_kid": active}); aerr != nil && err == nil {
				err = aerr
			}
		}
		if err != nil {
			return total, err
		}
	}
	after, err := s.Status(ctx)
	if err != nil {
		return total, err
	}
	if err := s.audit(ctx, "identity_keys.reencrypt_done", map[string]any{"active_kid": active, "rows": total, "remaining": after.Remaining(), "retirable_kids": after.Retirable()}); err != nil {
		return total, err
	}
	if s.Log != nil {
		s.Log.Info("identity re-encryption done", "rows", total, "remaining", after.Remaining(), "retirable_kids", after.Retirable())
	}
	return total, nil
}

func (s *Service) audit(ctx context.Context, action string, details map[string]any) error {
	if s.Audit == nil {
		return nil
	}
	if err := s.Audit.Record(ctx, s.Pool, audit.Record{Actor: Actor, Action: action, TargetType: "identity_keyring", TargetID: s.Keys.ActiveKID(), Details: details}); err != nil {
		return fmt.Errorf("rekey: audit: %w", err)
	}
	return nil
}

func (s *Service) runGroup(ctx context.Context, t sealed) (rows, batches int, err error) {
	for {
		n, err := s.batch(ctx, t)
		if err != nil {
			return rows, batches, err
		}
		if n == 0 {
			return rows, batches, nil
		}
		rows += n
		batches++
		if s.afterBatch != nil {
			s.afterBatch(t.name, n)
		}
		if err := ctx.Err(); err != nil {
			return rows, batches, fmt.Errorf("rekey: %s: %w", t.name, err)
		}
	}
}

// batch re-keys up to Batch rows of t in one transaction.
func (s *Service) batch(ctx context.Context, t sealed) (int, error) {
	size := s.Batch
	if size <= 0 {
		size = DefaultBatch
	}
	active := s.Keys.ActiveKID()
	sel := []string{"ctid", t.kid}
	sel = append(sel, t.keys...)
	for _, c := range t.cols {
		sel = append(sel, c.col)
	}
	due := t.kid + ` IS NOT NULL AND ` + t.kid + ` <> '' AND ` + t.kid + ` <> $1`
	if t.hash != nil {
		sel = append(sel, t.hash.col)
		if t.hash.kid != "" {
			due = t.kid + ` IS NOT NULL AND ` + t.kid + ` <> '' AND (` + t.kid + ` <> $1 OR ` + t.hash.kid + ` <> $1)`
		}
	}
	if t.extra != "" {
		due += ` AND ` + t.extra
	}
	q := `SELECT ` + strings.Join(sel, ", ") + ` FROM ` + t.table + ` WHERE ` + due + ` LIMIT $2 FOR UPDATE SKIP LOCKED`
	n := 0
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, q, active, size)
		if err != nil {
			return err
		}
		type row struct {
			tid     pgtype.TID
			kid     string
			keys    []string
			cts     [][]byte
			oldHash []byte
		}
		var batch []row
		for rows.Next() {
			r := row{keys: make([]string, len(t.keys)), cts: make([][]byte, len(t.cols))}
			dst := []any{&r.tid, &r.kid}
			for i := range r.keys {
				dst = append(dst, &r.keys[i])
			}
			for i := range r.cts {
				dst = append(dst, &r.cts[i])
			}
			if t.hash != nil {
				dst = append(dst, &r.oldHash)
			}
			if err := rows.Scan(dst...); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, r)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, r := range batch {
			args := []any{r.tid, active}
			set := []string{t.kid + ` = $2`}
			var subjectPlain []byte
			for i, c := range t.cols {
				aad := c.aad(r.keys)
				plain, err := s.Keys.Open(r.kid, r.cts[i], aad)
				if err != nil {
					// No value (not even a kid) in the error: the row is
					// named by group only.
					return fmt.Errorf("open %s under key %q: %w", c.col, r.kid, err)
				}
				kid, ct, err := s.Keys.Seal(plain, aad)
				if err != nil {
					return err
				}
				if kid != active {
					return errors.New("keyring changed during a batch")
				}
				if i == 0 {
					subjectPlain = plain
				}
				args = append(args, ct)
				set = append(set, fmt.Sprintf("%s = $%d", c.col, len(args)))
			}
			if t.hash != nil {
				subj, err := t.hash.subject(subjectPlain)
				if err != nil {
					return errors.New("sealed identity does not parse")
				}
				h := s.Keys.Hash(subj)
				if !bytes.Equal(h, r.oldHash) {
					if t.hash.dup != "" {
						var dup bool
						if err := tx.QueryRow(ctx, t.hash.dup, r.keys[0], h).Scan(&dup); err != nil {
							return err
						}
						if dup {
							if _, err := tx.Exec(ctx, `DELETE FROM `+t.table+` WHERE ctid = $1`, r.tid); err != nil {
								return err
							}
							n++
							continue
						}
					}
					if err := moveRestrictions(ctx, tx, r.oldHash, h); err != nil {
						return err
					}
				}
				args = append(args, h)
				set = append(set, fmt.Sprintf("%s = $%d", t.hash.col, len(args)))
				if t.hash.kid != "" {
					set = append(set, t.hash.kid+` = $2`)
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE `+t.table+` SET `+strings.Join(set, ", ")+` WHERE ctid = $1`, args...); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("rekey: %s: %w", t.name, err)
	}
	return n, nil
}

// moveRestrictions carries processing restrictions (stored under a lookup
// hash only, with no identity to hash again) from an identity's old hash to
// its new one, in the transaction that re-hashes the identity. A restriction
// whose identity is gone from subjects and requests alike cannot be moved;
// it stays under the old hash.
func moveRestrictions(ctx context.Context, tx pgx.Tx, old, nw []byte) error {
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
