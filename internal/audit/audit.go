// Package audit is Steward's tamper-evident audit log. Every capability
// appends entries in the same transaction as the change they record; a
// sealer chains them into audit_log with gapless sequence numbers and
// SHA-256 hashes over each entry and its predecessor; signed checkpoints
// (Ed25519) pin the chain, optionally also outside the database; and Verify
// recomputes everything and names the first broken entry. The database
// itself refuses UPDATE, DELETE and TRUNCATE on the record (see
// migrations/00003_audit.sql for why entries are sealed in batches).
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/steward-privacy/steward/internal/clock"
)

// Record is what a caller appends.
type Record struct {
	Actor      string // "key:<id>", "staff:<account uuid>", "subject:<hex keyed hash>" or "system:<component>"
	Action     string // stable dotted name, e.g. "key.revoked"
	TargetType string
	TargetID   string
	Details    any // marshalled to a JSON object; never raw personal data
}

// Entry is one sealed entry of the chain.
type Entry struct {
	Seq            int64           `json:"seq"`
	At             time.Time       `json:"at"`
	Actor          string          `json:"actor"`
	Action         string          `json:"action"`
	TargetType     string          `json:"target_type"`
	TargetID       string          `json:"target_id"`
	Details        json.RawMessage `json:"details"`
	PolicyRevision string          `json:"policy_revision"`
	PrevHash       HexBytes        `json:"prev_hash"`
	Hash           HexBytes        `json:"hash"`
}

// HexBytes marshals as lower-case hex.
type HexBytes []byte

// MarshalJSON encodes b as a hex string.
func (b HexBytes) MarshalJSON() ([]byte, error) {
	return []byte(`"` + fmt.Sprintf("%x", []byte(b)) + `"`), nil
}

// String is the hex form.
func (b HexBytes) String() string { return fmt.Sprintf("%x", []byte(b)) }

var (
	actionRe = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)
	// A staff member is named by their account's uuid in its lower-case
	// canonical form only, so one person is one actor string a filter can
	// match exactly (internal/staff).
	actorRe = regexp.MustCompile(`^(key:[A-Za-z0-9_]{1,64}|staff:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|subject:[0-9a-f]{64}|system:[a-z][a-z0-9_.-]{0,63})$`)
)

// Log appends entries.
type Log struct {
	clock    clock.Clock
	revision atomic.Pointer[string]
}

// New returns a log stamping entries with the given policy revision.
func New(clk clock.Clock, policyRevision string) *Log {
	l := &Log{clock: clk}
	l.SetPolicyRevision(policyRevision)
	return l
}

// SetPolicyRevision changes the revision stamped on later entries.
func (l *Log) SetPolicyRevision(rev string) { l.revision.Store(&rev) }

// Execer is a pgx.Tx or a pool.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Append writes r inside tx, the transaction that makes the change r
// records: it commits or rolls back with it.
func (l *Log) Append(ctx context.Context, tx pgx.Tx, r Record) error { return l.insert(ctx, tx, r) }

// Record writes an entry that stands alone (no other change to commit with
// it, e.g. "policy.loaded") as one autocommit statement.
func (l *Log) Record(ctx context.Context, db Execer, r Record) error { return l.insert(ctx, db, r) }

func (l *Log) insert(ctx context.Context, db Execer, r Record) error {
	if !actionRe.MatchString(r.Action) {
		return fmt.Errorf("audit: action %q is not a dotted name like dsar.approved", r.Action)
	}
	if !actorRe.MatchString(r.Actor) {
		return fmt.Errorf("audit: actor %q must be key:<id>, staff:<uuid>, subject:<hash> or system:<component>", r.Actor)
	}
	if r.TargetType == "" || r.TargetID == "" {
		return errors.New("audit: target type and id are required")
	}
	details := []byte("{}")
	if r.Details != nil {
		b, err := json.Marshal(r.Details)
		if err != nil {
			return fmt.Errorf("audit: details: %w", err)
		}
		if len(b) == 0 || b[0] != '{' {
			return errors.New("audit: details must be a JSON object")
		}
		details = b
	}
	at := l.clock.Now().UTC().Truncate(time.Microsecond)
	if _, err := db.Exec(ctx, `
		INSERT INTO audit_pending (at, actor, action, target_type, target_id, details, policy_revision)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		at, r.Actor, r.Action, r.TargetType, r.TargetID, string(details), *l.revision.Load()); err != nil {
		return fmt.Errorf("audit: append %s: %w", r.Action, err)
	}
	return nil
}

// GenesisHash is the prev_hash of the first entry.
var GenesisHash = make([]byte, sha256.Size)

// ComputeHash is the entry hash: SHA-256 over a length-prefixed encoding of
// every field and the previous hash. Length prefixes make the encoding
// unambiguous (no field can bleed into the next). details is PostgreSQL's
// jsonb text form, which is canonical (keys sorted, whitespace fixed).
func ComputeHash(seq int64, at time.Time, actor, action, targetType, targetID string, details []byte, policyRevision string, prev []byte) []byte {
	h := sha256.New()
	var lb [binary.MaxVarintLen64]byte
	put := func(b []byte) {
		n := binary.PutUvarint(lb[:], uint64(len(b)))
		h.Write(lb[:n])
		h.Write(b)
	}
	var buf [64]byte
	put([]byte("steward.audit.v1"))
	put(strconv.AppendInt(buf[:0], seq, 10))
	put(at.UTC().AppendFormat(buf[:0], time.RFC3339Nano))
	put([]byte(actor))
	put([]byte(action))
	put([]byte(targetType))
	put([]byte(targetID))
	put(details)
	put([]byte(policyRevision))
	put(prev)
	return h.Sum(nil)
}

// TextHash is the hex SHA-256 of free text (a note, a reason) for an
// entry's details: the chain vouches for the text, which is kept where it
// was written, without holding it (free text may name a person).
func TextHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
