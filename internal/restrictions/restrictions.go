// Package restrictions is Steward's ledger of restricted processing (GDPR
// Art. 18): a connector whose system has no place to mark it records there
// that a person's data in a dataset may only be stored, not used; a privacy
// request may record a restriction of the whole person; and the consent
// check answers "restricted" for every purpose but the essential one while
// any of it is in force. A restriction is lifted, never deleted — by the
// person's request or by staff with a reason, audited — so the ledger shows
// what was restricted when. Identities are kept only as keyed hashes under
// every key generation, like the subjects table, so the ledger holds no
// personal data in the clear.
package restrictions

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/keyring"
)

// ConsentChannel is the consent cache's NOTIFY channel (consent.NotifyChannel,
// checked equal by a test there): every change here invalidates the
// changed identities' cached consent state on every replica, so the check
// sees a restriction, or its lifting, at once.
const ConsentChannel = "steward_consent"

// SubjectWide is the system and dataset of a restriction of the whole
// person (RestrictSubjects), as opposed to one connector's dataset.
const SubjectWide = "*"

// MaxReason bounds a lift's reason.
const MaxReason = 2000

// Ledger stores restrictions in Steward's database.
type Ledger struct {
	Pool *pgxpool.Pool
	Keys *keyring.Keyring
	Now  func() time.Time
	// Audit records lifts; nil: not audited (connector conformance tests).
	Audit *audit.Log
	// Changed, when set, is told the keyed hashes whose restriction
	// changed, after commit: this replica's consent cache forgets them at
	// once (the NOTIFY reaches the others, and this one when it listens).
	Changed func(hashes [][]byte)
	// Webhooks queues restriction.changed for subscribed endpoints in the
	// transaction that changes it (*notify.Outbox); nil: none.
	Webhooks WebhookQueue
}

func (l *Ledger) changed(hashes [][]byte) {
	if l.Changed != nil && len(hashes) > 0 {
		l.Changed(hashes)
	}
}

// Restriction is one restriction: the rows one request (or one connector
// call without a request) wrote, across datasets and identities.
type Restriction struct {
	ID           string     `json:"id"`
	RequestID    string     `json:"request_id,omitempty"`
	Entries      []string   `json:"entries"`    // "system.dataset"; "*.*" is the whole person
	Identities   int        `json:"identities"` // keyed hashes it is recorded under
	RestrictedAt time.Time  `json:"restricted_at"`
	Active       bool       `json:"active"`
	LiftedAt     *time.Time `json:"lifted_at,omitempty"`
	LiftedBy     string     `json:"lifted_by,omitempty"`
	LiftReason   string     `json:"lift_reason,omitempty"`
}

// ErrNotFound is returned for an unknown restriction id.
var ErrNotFound = apperr.New(apperr.NotFound, "no such restriction")

// groupID is the restriction id of a request's rows: the same for every
// dataset and identity the request restricts, so they are lifted together.
func groupID(requestID string) uuid.UUID {
	if requestID == "" {
		return uuid.Must(uuid.NewV7())
	}
	return uuid.NewSHA1(uuid.NameSpaceOID, []byte("steward/restriction/"+requestID))
}

func (l *Ledger) now() time.Time { return l.Now().UTC().Truncate(time.Microsecond) }

// Restrict records (or lifts) the restriction of a person, known by ids, in
// one dataset of one system, for the privacy request requestID (may be
// empty). It reports whether anything changed, so a repeated call is a
// no-op the caller can see. Lifting here is the connector's own undo: staff
// and the person's request lift with Lift and LiftSubjects.
func (l *Ledger) Restrict(ctx context.Context, system, dataset string, ids []connectors.Identity, restricted bool, requestID, reason string) (bool, error) {
	if len(ids) == 0 {
		return false, nil
	}
	var active, all [][]byte
	for _, id := range ids {
		s := identity.Subject{Type: identity.Type(id.Type), Provider: id.Provider, Value: id.Value}
		active = append(active, l.Keys.Hash(s))
		all = append(all, l.Keys.Hashes(s)...)
	}
	changed := false
	err := pgx.BeginFunc(ctx, l.Pool, func(tx pgx.Tx) error {
		var err error
		if restricted {
			changed, err = l.insert(ctx, tx, system, dataset, active, all, requestID)
		} else {
			changed, err = l.lift(ctx, tx, `system = $2 AND dataset = $3 AND lookup_hash = ANY($1)`, []any{all, system, dataset},
				liftBy(requestID), reason)
		}
		if err != nil || !changed {
			return err
		}
		if err := l.emit(ctx, tx, requestID, system, dataset, restricted); err != nil {
			return err
		}
		return invalidate(ctx, tx, active)
	})
	if err != nil {
		return false, fmt.Errorf("restrictions: %w", err)
	}
	if changed {
		l.changed(all)
	}
	return changed, nil
}

func liftBy(requestID string) string {
	if requestID == "" {
		return "system:connector"
	}
	return "request:" + requestID
}

// insert records an active restriction unless one is in force under any
// identity and key generation already.
func (l *Ledger) insert(ctx context.Context, tx pgx.Tx, system, dataset string, active, all [][]byte, requestID string) (bool, error) {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM processing_restrictions
		WHERE system = $1 AND dataset = $2 AND lookup_hash = ANY($3) AND lifted_at IS NULL`, system, dataset, all).Scan(&n); err != nil {
		return false, fmt.Errorf("look up: %w", err)
	}
	if n > 0 {
		return false, nil
	}
	tag, err := tx.Exec(ctx, `INSERT INTO processing_restrictions (system, dataset, lookup_hash, restricted_at, restriction_id, request_id)
		SELECT $1, $2, h, $4, $5, NULLIF($6, '') FROM unnest($3::bytea[]) AS h ON CONFLICT DO NOTHING`,
		system, dataset, active, l.now(), groupID(requestID), requestID)
	if err != nil {
		return false, fmt.Errorf("record: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// lift marks the active rows matching where lifted and reports whether any
// were.
func (l *Ledger) lift(ctx context.Context, tx pgx.Tx, where string, args []any, actor, reason string) (bool, error) {
	n := len(args)
	args = append(args, l.now(), actor, reason)
	tag, err := tx.Exec(ctx, fmt.Sprintf(`UPDATE processing_restrictions SET lifted_at = $%d, lifted_by = $%d, lift_reason = NULLIF($%d, '')
		WHERE lifted_at IS NULL AND %s`, n+1, n+2, n+3, where), args...)
	if err != nil {
		return false, fmt.Errorf("lift: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}

// invalidate tells every replica's consent cache that these identities'
// state changed.
func invalidate(ctx context.Context, tx pgx.Tx, hashes [][]byte) error {
	for _, h := range hashes {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ConsentChannel, hex.EncodeToString(h)); err != nil {
			return fmt.Errorf("notify: %w", err)
		}
	}
	return nil
}

// RestrictSubjects records a restriction of the whole person, known by
// subjects, for the privacy request requestID (required): the consent check
// answers "restricted" until it is lifted, whatever the connectors could
// mark. It is idempotent.
func (l *Ledger) RestrictSubjects(ctx context.Context, requestID string, subjects []identity.Subject) (bool, error) {
	if requestID == "" {
		return false, errors.New("restrictions: a whole-person restriction needs the request that asks for it")
	}
	ids := make([]connectors.Identity, 0, len(subjects))
	for _, s := range subjects {
		ids = append(ids, connectors.Identity{Type: string(s.Type), Provider: s.Provider, Value: s.Value})
	}
	return l.Restrict(ctx, SubjectWide, SubjectWide, ids, true, requestID, "")
}

// Lift lifts restriction id (every dataset and identity it covers) for
// actor (an audit actor: "key:<id>", "staff:<uuid>", "subject:<hash>" or
// "system:<component>") with a reason, and
// records it in the audit log in the same transaction. Lifting a lifted
// restriction is a conflict.
func (l *Ledger) Lift(ctx context.Context, id, actor, reason string) (Restriction, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Restriction{}, ErrNotFound
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || utf8.RuneCountInString(reason) > MaxReason || !utf8.ValidString(reason) {
		return Restriction{}, apperr.Field("reason", "say why the restriction ends (1 to %d characters)", MaxReason)
	}
	var r Restriction
	var hs [][]byte
	err := pgx.BeginFunc(ctx, l.Pool, func(tx pgx.Tx) error {
		var err error
		if r, err = l.get(ctx, tx, id, true); err != nil {
			return err
		}
		if !r.Active {
			return apperr.New(apperr.Conflict, "the restriction was already lifted")
		}
		if _, err := l.lift(ctx, tx, `restriction_id = $1`, []any{id}, actor, reason); err != nil {
			return err
		}
		hs = l.hashesOf(ctx, tx, id)
		if err := invalidate(ctx, tx, hs); err != nil {
			return err
		}
		if r, err = l.get(ctx, tx, id, false); err != nil {
			return err
		}
		if err := l.emitLifted(ctx, tx, r); err != nil {
			return err
		}
		return l.audit(ctx, tx, actor, r, reason)
	})
	if err != nil {
		return Restriction{}, fmt.Errorf("restrictions: lift %s: %w", id, err)
	}
	l.changed(hs)
	return r, nil
}

// LiftSubjects lifts every restriction in force for any of the subjects'
// identities — the person's own request to lift it — audited like Lift. It
// returns the restrictions it lifted (none is not an error).
func (l *Ledger) LiftSubjects(ctx context.Context, subjects []identity.Subject, actor, reason string) ([]Restriction, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || utf8.RuneCountInString(reason) > MaxReason {
		return nil, apperr.Field("reason", "say why the restriction ends (1 to %d characters)", MaxReason)
	}
	var out []Restriction
	var all [][]byte
	err := pgx.BeginFunc(ctx, l.Pool, func(tx pgx.Tx) error {
		ids, err := l.groupsOf(ctx, tx, l.hashes(subjects), true)
		if err != nil {
			return err
		}
		for _, id := range ids {
			hs := l.hashesOf(ctx, tx, id)
			all = append(all, hs...)
			if _, err := l.lift(ctx, tx, `restriction_id = $1`, []any{id}, actor, reason); err != nil {
				return err
			}
			if err := invalidate(ctx, tx, hs); err != nil {
				return err
			}
			r, err := l.get(ctx, tx, id, false)
			if err != nil {
				return err
			}
			if err := l.emitLifted(ctx, tx, r); err != nil {
				return err
			}
			if err := l.audit(ctx, tx, actor, r, reason); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restrictions: lift: %w", err)
	}
	l.changed(all)
	return out, nil
}

func (l *Ledger) audit(ctx context.Context, tx pgx.Tx, actor string, r Restriction, reason string) error {
	if l.Audit == nil {
		return nil
	}
	return l.Audit.Append(ctx, tx, audit.Record{Actor: actor, Action: "restriction.lifted", TargetType: "restriction", TargetID: r.ID,
		Details: map[string]any{"request_id": r.RequestID, "entries": r.Entries, "reason_sha256": audit.TextHash(reason)}})
}

func (l *Ledger) hashes(subjects []identity.Subject) [][]byte {
	var out [][]byte
	for _, s := range subjects {
		out = append(out, l.Keys.Hashes(s)...)
	}
	return out
}

func (l *Ledger) hashesOf(ctx context.Context, tx pgx.Tx, id string) [][]byte {
	var out [][]byte
	rows, err := tx.Query(ctx, `SELECT DISTINCT lookup_hash FROM processing_restrictions WHERE restriction_id = $1`, id)
	if err != nil {
		return nil
	}
	defer rows.Close()
	for rows.Next() {
		var h []byte
		if rows.Scan(&h) == nil {
			out = append(out, h)
		}
	}
	return out
}

// groupsOf lists the restriction ids recorded under hashes, newest first.
func (l *Ledger) groupsOf(ctx context.Context, tx pgx.Tx, hashes [][]byte, activeOnly bool) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT restriction_id::text FROM processing_restrictions
		WHERE lookup_hash = ANY($1) AND ($2 = false OR lifted_at IS NULL)
		GROUP BY restriction_id ORDER BY max(restricted_at) DESC, restriction_id`, hashes, activeOnly)
	if err != nil {
		return nil, fmt.Errorf("look up: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// get reads one restriction; lock holds its rows for a lift.
func (l *Ledger) get(ctx context.Context, tx pgx.Tx, id string, lock bool) (Restriction, error) {
	if lock {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM processing_restrictions WHERE restriction_id = $1 FOR UPDATE`, id); err != nil {
			return Restriction{}, fmt.Errorf("lock: %w", err)
		}
	}
	var r Restriction
	var liftedBy, reason *string
	err := tx.QueryRow(ctx, `SELECT restriction_id::text, coalesce(max(request_id), ''),
			array_agg(DISTINCT system || '.' || dataset ORDER BY system || '.' || dataset), count(DISTINCT lookup_hash),
			min(restricted_at), bool_or(lifted_at IS NULL), max(lifted_at), max(lifted_by), max(lift_reason)
		FROM processing_restrictions WHERE restriction_id = $1 GROUP BY restriction_id`, id).
		Scan(&r.ID, &r.RequestID, &r.Entries, &r.Identities, &r.RestrictedAt, &r.Active, &r.LiftedAt, &liftedBy, &reason)
	if errors.Is(err, pgx.ErrNoRows) {
		return Restriction{}, ErrNotFound
	}
	if err != nil {
		return Restriction{}, fmt.Errorf("read: %w", err)
	}
	r.RestrictedAt = r.RestrictedAt.UTC()
	if r.Active {
		r.LiftedAt = nil
	} else {
		if r.LiftedAt != nil {
			t := r.LiftedAt.UTC()
			r.LiftedAt = &t
		}
		if liftedBy != nil {
			r.LiftedBy = *liftedBy
		}
		if reason != nil {
			r.LiftReason = *reason
		}
	}
	return r, nil
}

// Get returns one restriction.
func (l *Ledger) Get(ctx context.Context, id string) (Restriction, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Restriction{}, ErrNotFound
	}
	var r Restriction
	err := pgx.BeginFunc(ctx, l.Pool, func(tx pgx.Tx) error {
		var err error
		r, err = l.get(ctx, tx, id, false)
		return err
	})
	return r, err
}

// List returns the restrictions recorded for any of the subject's
// identities (under every key generation), newest first; active only when
// activeOnly.
func (l *Ledger) List(ctx context.Context, s identity.Subject, activeOnly bool) ([]Restriction, error) {
	out := []Restriction{}
	err := pgx.BeginFunc(ctx, l.Pool, func(tx pgx.Tx) error {
		ids, err := l.groupsOf(ctx, tx, l.Keys.Hashes(s), activeOnly)
		if err != nil {
			return err
		}
		for _, id := range ids {
			r, err := l.get(ctx, tx, id, false)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("restrictions: list: %w", err)
	}
	return out, nil
}

// Restricted returns the "system.dataset" entries in which the identity's
// processing is restricted now.
func (l *Ledger) Restricted(ctx context.Context, s identity.Subject) ([]string, error) {
	rows, err := l.Pool.Query(ctx, `SELECT DISTINCT system || '.' || dataset FROM processing_restrictions
		WHERE lookup_hash = ANY($1) AND lifted_at IS NULL ORDER BY 1`, l.Keys.Hashes(s))
	if err != nil {
		return nil, fmt.Errorf("restrictions: look up: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("restrictions: look up: %w", err)
	}
	return out, nil
}

// Active is a restriction in force, as the consent check names it.
type Active struct {
	RestrictionID string
	RequestID     string
}

// Querier is a pool or a transaction.
type Querier = db.Querier

// ActiveByHash returns, per lookup hash among hashes, the newest
// restriction in force recorded under it.
func ActiveByHash(ctx context.Context, q Querier, hashes [][]byte) (map[string]Active, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT ON (lookup_hash) lookup_hash, restriction_id::text, coalesce(request_id, '')
		FROM processing_restrictions WHERE lookup_hash = ANY($1) AND lifted_at IS NULL
		ORDER BY lookup_hash, restricted_at DESC`, hashes)
	if err != nil {
		return nil, fmt.Errorf("restrictions: look up: %w", err)
	}
	defer rows.Close()
	out := map[string]Active{}
	for rows.Next() {
		var h []byte
		var a Active
		if err := rows.Scan(&h, &a.RestrictionID, &a.RequestID); err != nil {
			return nil, fmt.Errorf("restrictions: look up: %w", err)
		}
		out[string(h)] = a
	}
	return out, rows.Err()
}
