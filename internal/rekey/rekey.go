// Package rekey retires identity keys: it re-seals every value stored under
// a key that is no longer the keyring's active one, and recomputes the keyed
// lookup hashes stored with them, so the old key can be removed from
// STEWARD_IDENTITY_KEYS. It also says, per key, whether it can be removed,
// demoted to lookup-only (only hash-only rows such as erased subjects still
// use it) or is still needed for sealed data, and refuses a keyring that
// lacks a key rows still need or has demoted one sealed rows still need.
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
	"github.com/steward-privacy/steward/internal/subjects"
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
	// Stuck rows cannot be re-keyed by the job: erased subjects (until
	// the person comes back) and pending outbox messages (until sent).
	Stuck bool `json:"stuck,omitempty"`
	// HashOnly rows need the key for lookup hashes only, nothing sealed
	// under it: a lookup-only entry of the key is enough for them.
	HashOnly bool `json:"hash_only,omitempty"`
}

// Verdict is what an operator can do with one configured key.
type Verdict string

// The verdicts of KeyState.
const (
	// VerdictActive: the key new values are sealed and hashed with.
	VerdictActive Verdict = "active"
	// VerdictRemove: no row uses the key; remove it.
	VerdictRemove Verdict = "remove"
	// VerdictLookupOnly: only hash-only rows use it; keep it as
	// "kid:base64:lookup" (or demote it to that) until they are gone.
	VerdictLookupOnly Verdict = "lookup-only"
	// VerdictNeeded: sealed rows still use it; keep it in full and let
	// re-encryption move them.
	VerdictNeeded Verdict = "needed"
	// VerdictMissing: rows use a key the keyring lacks (start-up refuses).
	VerdictMissing Verdict = "missing"
	// VerdictDemotedTooEarly: a lookup-only key that sealed rows still use
	// (start-up refuses).
	VerdictDemotedTooEarly Verdict = "demoted-too-early"
)

// KeyState is one key's standing: the rows that use it and what may be done.
type KeyState struct {
	KID string `json:"kid"`
	// Configured is "full", "lookup-only" or "" (not in the keyring).
	Configured string `json:"configured"`
	// SealedRows need the key to open something (or, for pending outbox
	// messages, will need it).
	SealedRows int64 `json:"sealed_rows"`
	// HashOnlyRows need the key's lookup hash only.
	HashOnlyRows int64 `json:"hash_only_rows"`
	// ErasedRows, among HashOnlyRows, are erased subjects: only the
	// person's return (a consent check or record for the same identity)
	// moves them, so they may hold a lookup-only key for a long time.
	ErasedRows int64   `json:"erased_rows"`
	Verdict    Verdict `json:"verdict"`
}

// Status is where the stored identities stand against the keyring.
type Status struct {
	Active     string   `json:"active"`
	Configured []string `json:"configured"`
	// LookupOnly are the configured keys marked lookup-only.
	LookupOnly []string `json:"lookup_only,omitempty"`
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

// Keys is every key that is configured or used by a row, active first, then
// configured order, then unconfigured keys by id, with its verdict.
func (s Status) Keys() []KeyState {
	by := map[string]*KeyState{}
	var order []string
	get := func(kid string) *KeyState {
		if k, ok := by[kid]; ok {
			return k
		}
		k := &KeyState{KID: kid}
		by[kid] = k
		order = append(order, kid)
		return k
	}
	for _, kid := range s.Configured {
		k := get(kid)
		k.Configured = "full"
		if slices.Contains(s.LookupOnly, kid) {
			k.Configured = "lookup-only"
		}
	}
	for _, c := range s.Rows {
		k := get(c.KID)
		if c.HashOnly {
			k.HashOnlyRows += c.Rows
			if c.Stuck {
				k.ErasedRows += c.Rows
			}
		} else {
			k.SealedRows += c.Rows
		}
	}
	out := make([]KeyState, 0, len(order))
	for _, kid := range order {
		k := by[kid]
		switch {
		case kid == s.Active:
			k.Verdict = VerdictActive
		case k.Configured == "" && k.SealedRows+k.HashOnlyRows > 0:
			k.Verdict = VerdictMissing
		case k.SealedRows > 0 && k.Configured == "lookup-only":
			k.Verdict = VerdictDemotedTooEarly
		case k.SealedRows > 0:
			k.Verdict = VerdictNeeded
		case k.HashOnlyRows > 0:
			k.Verdict = VerdictLookupOnly
		default:
			k.Verdict = VerdictRemove
		}
		out = append(out, *k)
	}
	// Configured keys keep their order (active first); the unconfigured
	// ones follow, sorted, so the output is stable.
	n := len(s.Configured)
	if n > len(out) {
		n = len(out)
	}
	sort.Slice(out[n:], func(i, j int) bool { return out[n+i].KID < out[n+j].KID })
	return out
}

// withVerdict lists the key ids with verdict v.
func (s Status) withVerdict(v Verdict) []string {
	var out []string
	for _, k := range s.Keys() {
		if k.Verdict == v {
			out = append(out, k.KID)
		}
	}
	return out
}

// Demotable are configured keys kept in full that only hash-only rows use:
// they can be demoted to "kid:base64:lookup".
func (s Status) Demotable() []string {
	var out []string
	for _, k := range s.Keys() {
		if k.Verdict == VerdictLookupOnly && k.Configured == "full" {
			out = append(out, k.KID)
		}
	}
	return out
}

// NeededForSealed are configured keys sealed rows still use.
func (s Status) NeededForSealed() []string { return s.withVerdict(VerdictNeeded) }

// DemotedTooEarly are lookup-only keys sealed rows still use.
func (s Status) DemotedTooEarly() []string { return s.withVerdict(VerdictDemotedTooEarly) }

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

// ErrMissingKey is wrapped by Check's refusal of a keyring that lacks a key
// rows still use.
var ErrMissingKey = errors.New("identity keys: a key that stored rows still use is not configured")

// ErrDemotedTooEarly is wrapped by Check's refusal of a lookup-only key that
// sealed rows still use.
var ErrDemotedTooEarly = errors.New("identity keys: a lookup-only key still has sealed rows")

// Check refuses a keyring that lacks a key rows still use, or has demoted
// to lookup-only a key sealed rows still use, naming the key and the row
// counts, so removing or demoting a key too early stops Steward at
// start-up instead of failing on the first read of such a row, or, for an
// erased person's opt-out, silently no longer finding it. It logs which
// configured keys can be removed and which can be demoted.
func (s *Service) Check(ctx context.Context) (Status, error) {
	st, err := s.Status(ctx)
	if err != nil {
		return st, err
	}
	where := func(kid string) string {
		var w []string
		for _, c := range st.Rows {
			if c.KID == kid {
				w = append(w, fmt.Sprintf("%s: %d", c.Group, c.Rows))
			}
		}
		return strings.Join(w, ", ")
	}
	var missing, early []string
	for _, k := range st.Keys() {
		switch k.Verdict {
		case VerdictMissing:
			if k.SealedRows == 0 {
				// Only lookup hashes: the key is needed for lookups only,
				// and only as lookup-only (nothing left to open).
				missing = append(missing, fmt.Sprintf("%d rows under key %q (%s) need it for lookups only: put it back as lookup-only (%q, after the active key); without it the opt-outs of erased people are no longer found",
					k.HashOnlyRows, k.KID, where(k.KID), k.KID+":BASE64:"+keyring.LookupOnlySuffix))
				continue
			}
			missing = append(missing, fmt.Sprintf("%d rows under key %q (%s): put the key back in STEWARD_IDENTITY_KEYS (after the active key), run `steward keys reencrypt`, and remove or demote it once `steward keys status` says so",
				k.SealedRows+k.HashOnlyRows, k.KID, where(k.KID)))
		case VerdictDemotedTooEarly:
			early = append(early, fmt.Sprintf("key %q is lookup-only but %d sealed rows still use it (%s): configure it in full (drop %q), run `steward keys reencrypt`, and demote it once `steward keys status` says so",
				k.KID, k.SealedRows, where(k.KID), ":"+keyring.LookupOnlySuffix))
		}
	}
	if len(missing) > 0 {
		return st, fmt.Errorf("%w: %s", ErrMissingKey, strings.Join(missing, "; "))
	}
	if len(early) > 0 {
		return st, fmt.Errorf("%w: %s", ErrDemotedTooEarly, strings.Join(early, "; "))
	}
	if s.Log != nil {
		if r := st.Retirable(); len(r) > 0 {
			s.Log.Info("identity keys no longer used by any row; they can be removed from STEWARD_IDENTITY_KEYS", "kids", r, "active", st.Active)
		}
		if d := st.Demotable(); len(d) > 0 {
			s.Log.Info("identity keys used only for erased people's lookup hashes; they can be demoted to lookup-only (kid:base64:lookup)", "kids", d, "active", st.Active)
		}
		for _, k := range st.Keys() {
			if k.Verdict == VerdictLookupOnly && k.Configured == "lookup-only" {
				s.Log.Info("lookup-only identity key still needed for lookup hashes; it can go once the people come back or the rows are gone", "kid", k.KID, "rows", k.HashOnlyRows, "erased_rows", k.ErasedRows)
			}
		}
		if n := st.Remaining(); n > 0 {
			s.Log.Info("identity rows still under a non-active key", "rows", n, "by_kid", st.ByKID(), "active", st.Active)
		}
	}
	return st, nil
}

// Status counts, per group and key, the rows not under the active key.
func (s *Service) Status(ctx context.Context) (Status, error) {
	st := Status{Active: s.Keys.ActiveKID(), Configured: s.Keys.KIDs(), LookupOnly: s.Keys.LookupOnly(), Rows: []Count{}}
	add := func(group, q string, stuck, hashOnly bool) error {
		rows, err := s.Pool.Query(ctx, q, st.Active)
		if err != nil {
			return fmt.Errorf("rekey: status %s: %w", group, err)
		}
		counts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Count, error) {
			c := Count{Group: group, Stuck: stuck, HashOnly: hashOnly}
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
		if err := add(t.name, q, false, false); err != nil {
			return st, err
		}
		if t.hash != nil && t.hash.kid != "" {
			// A hash re-keyed with its ciphertext (above) is counted
			// there; what is left is the hashes alone: a subject whose
			// identity was erased (consent.Forget) keeps its hash as
			// proof of an opt-out, and with no identity to hash again
			// the job cannot move it (the person's return does,
			// subjects.Upsert and the consent check). Both need the old
			// key for its lookup hash only: lookup-only is enough.
			q := `SELECT ` + t.hash.kid + `, count(*) FROM ` + t.table + ` WHERE ` + t.hash.kid + ` <> $1 AND ` + t.kid + ` = '' GROUP BY 1 ORDER BY 1`
			if err := add(t.name+"."+t.hash.col+" (erased)", q, true, true); err != nil {
				return st, err
			}
			q = `SELECT ` + t.hash.kid + `, count(*) FROM ` + t.table + ` WHERE ` + t.hash.kid + ` <> $1 AND ` + t.kid + ` = $1 GROUP BY 1 ORDER BY 1`
			if err := add(t.name+"."+t.hash.col, q, false, true); err != nil {
				return st, err
			}
		}
	}
	// Undelivered outbox messages carry a sealed address until delivered
	// or failed; the job leaves them to drain (internal/notify owns their
	// associated data), but a key they need cannot go yet.
	q := `SELECT coalesce(payload->>'kid', payload->>'email_kid'), count(*) FROM outbox
		WHERE status = 'pending' AND coalesce(payload->>'kid', payload->>'email_kid', '') NOT IN ('', $1) GROUP BY 1 ORDER BY 1`
	if err := add("outbox (pending delivery)", q, true, false); err != nil {
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
	if err := s.audit(ctx, "identity_keys.reencrypt_done", map[string]any{"active_kid": active, "rows": total, "remaining": after.Remaining(),
		"retirable_kids": after.Retirable(), "demotable_kids": after.Demotable()}); err != nil {
		return total, err
	}
	if s.Log != nil {
		s.Log.Info("identity re-encryption done", "rows", total, "remaining", after.Remaining(), "retirable_kids", after.Retirable(), "demotable_kids", after.Demotable())
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
					if err := subjects.MoveRestrictions(ctx, tx, r.oldHash, h); err != nil {
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
