// Package recordstore is a connector whose "system" is a few tables of its
// own (recordstore_*) in a PostgreSQL database. It exists so the
// privacy-request engine can be tested and benchmarked end to end against a
// real connector, with real transactions, concurrency and failure modes
// (lost connections, cancelled contexts, crashes between an effect and its
// acknowledgement), before the connectors for the product's own Postgres,
// object storage and payment processor exist. It is also the reference
// implementation of the conformance suite in package connectortest.
//
// Records are schemaless: a record is a JSON object of fields, found through
// the identities it was stored under. Identities are linked in a table of
// their own, and ResolveIdentities follows the links transitively.
//
// Every Erase, Rectify and Restrict is recorded in recordstore_effects in the
// same transaction as its changes, keyed by the target's idempotency key: a
// task retried after its worker died (effect committed, acknowledgement
// lost) finds the key and returns the stored result without applying
// anything twice. A new task run (a new key) compares before and after, so
// it reports zero when there is nothing left to do.
//
// Tests can make the next calls of an operation fail (FailNext) or run code
// just before an operation's effect (SetHook), to simulate outages and
// workers dying mid-task.
//
// It is not meant to hold production data: identity values are stored in
// the clear so that tests can seed and inspect them.
package recordstore

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors"
)

// Operation names, for FailNext and the hook.
const (
	OpResolve  = "resolve"
	OpAccess   = "access"
	OpErase    = "erase"
	OpRectify  = "rectify"
	OpRestrict = "restrict"
)

// Options configure a Store.
type Options struct {
	// HashKey keys the keyed_hash and pseudonym mask strategies. Without it
	// those strategies fail permanently: an unkeyed hash of an email is
	// reversible by guessing.
	HashKey []byte
	// Capabilities the store declares; the zero value declares all of them
	// (a connector that can do nothing is never wanted). Operations not
	// declared return connectors.ErrUnsupported, so a test can stand in for
	// a system that, say, cannot rectify.
	Capabilities connectors.Capabilities
}

// Hook runs before each operation's effect, after its parameters are
// checked; for resolve, t carries only the known identities. An error it
// returns is the operation's error.
type Hook func(ctx context.Context, op string, t connectors.Target) error

// Store is a connector keeping records in recordstore_* tables. It is safe
// for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	hashKey []byte
	caps    connectors.Capabilities

	mu    sync.Mutex
	fails map[string][]error
	hook  Hook
}

var _ connectors.Connector = (*Store)(nil)

// New returns a Store on pool. Call Migrate before using it.
func New(pool *pgxpool.Pool, opts Options) *Store {
	caps := opts.Capabilities
	if caps == (connectors.Capabilities{}) {
		caps = connectors.Capabilities{ResolveIdentities: true, Access: true, Erase: true, Rectify: true, Restrict: true}
	}
	return &Store{pool: pool, hashKey: append([]byte(nil), opts.HashKey...), caps: caps, fails: map[string][]error{}}
}

// migrateLock serialises Migrate across parallel tests: concurrent CREATE
// TABLE IF NOT EXISTS of the same table can fail on the catalog's unique
// index instead of finding the table there. (internal/db uses ...001-002.)
const migrateLock = 7_403_112_010

const schema = `
CREATE TABLE IF NOT EXISTS recordstore_records (
	system          text    NOT NULL,
	dataset         text    NOT NULL,
	record_key      text    NOT NULL,
	fields          jsonb   NOT NULL DEFAULT '{}',
	-- field -> strategy of masks applied, so a keyed hash is not hashed again
	masked          jsonb   NOT NULL DEFAULT '{}',
	restricted      boolean NOT NULL DEFAULT false,
	restrict_reason text,
	PRIMARY KEY (system, dataset, record_key)
);
CREATE TABLE IF NOT EXISTS recordstore_record_identities (
	system      text NOT NULL,
	dataset     text NOT NULL,
	record_key  text NOT NULL,
	id_type     text NOT NULL,
	id_provider text NOT NULL DEFAULT '',
	id_value    text NOT NULL,
	-- Identity first: see subjectRecords.
	PRIMARY KEY (id_type, id_provider, id_value, system, dataset, record_key),
	FOREIGN KEY (system, dataset, record_key) REFERENCES recordstore_records ON DELETE CASCADE
);
-- For the cascade; led by record_key so that no lookup of a subject's
-- records can use it in place of the primary key.
CREATE INDEX IF NOT EXISTS recordstore_record_identities_record
	ON recordstore_record_identities (record_key, system, dataset);
-- Links are stored in both directions, so resolution follows one join.
CREATE TABLE IF NOT EXISTS recordstore_links (
	a_type text NOT NULL, a_provider text NOT NULL DEFAULT '', a_value text NOT NULL,
	b_type text NOT NULL, b_provider text NOT NULL DEFAULT '', b_value text NOT NULL,
	PRIMARY KEY (a_type, a_provider, a_value, b_type, b_provider, b_value)
);
CREATE TABLE IF NOT EXISTS recordstore_effects (
	idempotency_key text        NOT NULL,
	op              text        NOT NULL,
	system          text        NOT NULL,
	dataset         text        NOT NULL,
	at              timestamptz NOT NULL DEFAULT now(),
	result          jsonb       NOT NULL,
	PRIMARY KEY (idempotency_key, op, system, dataset)
);
`

// Migrate creates the store's tables if they do not exist. Concurrent calls
// are safe.
func (s *Store) Migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("recordstore: migrate: %w", classify(ctx, err))
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrateLock); err != nil {
		return fmt.Errorf("recordstore: migrate: lock: %w", classify(ctx, err))
	}
	if _, err := tx.Exec(ctx, schema); err != nil {
		return fmt.Errorf("recordstore: migrate: %w", classify(ctx, err))
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("recordstore: migrate: commit: %w", classify(ctx, err))
	}
	return nil
}

// Capabilities is what Options declared.
func (s *Store) Capabilities() connectors.Capabilities { return s.caps }

// FailNext makes the next n calls of op (one of the Op constants) return err
// before doing anything. Calls queue: FailNext(op, 1, a) then FailNext(op,
// 1, b) fails with a, then b. n <= 0 forgets op's pending failures.
func (s *Store) FailNext(op string, n int, err error) {
	switch op {
	case OpResolve, OpAccess, OpErase, OpRectify, OpRestrict:
	default:
		panic("recordstore: FailNext: unknown operation " + op)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n <= 0 {
		delete(s.fails, op)
		return
	}
	for range n {
		s.fails[op] = append(s.fails[op], err)
	}
}

// SetHook sets the hook run before each operation's effect; nil removes it.
func (s *Store) SetHook(h Hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
}

// enter starts op: it refuses an undeclared operation, honours a cancelled
// context and hands out an injected failure, in that order.
func (s *Store) enter(ctx context.Context, op string, declared bool) error {
	if !declared {
		return fmt.Errorf("recordstore: %s: %w", op, connectors.ErrUnsupported)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("recordstore: %s: %w", op, err)
	}
	s.mu.Lock()
	var injected error
	if q := s.fails[op]; len(q) > 0 {
		injected = q[0]
		if len(q) == 1 {
			delete(s.fails, op)
		} else {
			s.fails[op] = q[1:]
		}
	}
	s.mu.Unlock()
	if injected != nil {
		return fmt.Errorf("recordstore: %s: %w", op, injected)
	}
	return nil
}

// runHook runs the hook, then checks the context once more: the hook is
// where a test holds a task until it is cancelled.
func (s *Store) runHook(ctx context.Context, op string, t connectors.Target) error {
	s.mu.Lock()
	h := s.hook
	s.mu.Unlock()
	if h != nil {
		if err := h(ctx, op, t); err != nil {
			return fmt.Errorf("recordstore: %s: %w", op, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("recordstore: %s: %w", op, err)
	}
	return nil
}

// classify marks a database error for the engine. A cancelled context wins
// whatever pgx reported (it may surface as a closed connection), because the
// caller decided to stop. Errors the server raised are permanent unless
// their SQLSTATE class says the server or the transaction was the problem;
// anything else is the connection, and worth retrying.
func classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		if errors.Is(err, cerr) {
			return err
		}
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	if ce := (*connectors.Error)(nil); errors.As(err, &ce) {
		return err
	}
	if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "40"),  // serialization failure, deadlock
			strings.HasPrefix(pgErr.Code, "53"),  // insufficient resources, too many connections
			strings.HasPrefix(pgErr.Code, "57P"), // server shutting down or starting
			pgErr.Code == "57014",                // statement timeout
			pgErr.Code == "55P03":                // lock not available
			return connectors.Retryable(err, 0)
		}
		// A missing table (Migrate not run), a constraint: the same next time.
		return connectors.Permanent(err)
	}
	return connectors.Retryable(err, 0)
}

// fail wraps err from op on t with context (never identity values).
func fail(ctx context.Context, op string, t connectors.Target, err error) error {
	return fmt.Errorf("recordstore: %s %s/%s: %w", op, t.System, t.Dataset, classify(ctx, err))
}

func permanent(op, format string, args ...any) error {
	return connectors.Permanent(fmt.Errorf("recordstore: "+op+": "+format, args...))
}

func checkIdentities(op string, ids []connectors.Identity) error {
	if len(ids) == 0 {
		return permanent(op, "no identities given")
	}
	for i, id := range ids {
		if id.Type == "" || id.Value == "" {
			return permanent(op, "identity %d has no type or no value", i)
		}
	}
	return nil
}

func checkTarget(op string, t connectors.Target, effect bool) error {
	if t.System == "" || t.Dataset == "" {
		return permanent(op, "target has no system or no dataset")
	}
	if effect && t.IdempotencyKey == "" {
		// Without it a retried task could apply its effect twice.
		return permanent(op, "target %s/%s has no idempotency key", t.System, t.Dataset)
	}
	return checkIdentities(op, t.Identities)
}

// checkPlan validates a field plan; ops that change data say so with erase.
func (s *Store) checkPlan(op string, t connectors.Target, fields []connectors.FieldPlan) error {
	seen := map[string]bool{}
	for _, f := range fields {
		if f.Field == "" {
			return permanent(op, "a field plan has no field name")
		}
		if seen[f.Field] {
			return permanent(op, "field %q is planned twice", f.Field)
		}
		seen[f.Field] = true
		switch f.Action {
		case connectors.ActionInclude, connectors.ActionDelete, connectors.ActionRetain, connectors.ActionRectify:
		case connectors.ActionMask:
			switch f.Strategy {
			case connectors.StrategyNull, connectors.StrategyFixed, connectors.StrategyTruncateDate:
			case connectors.StrategyKeyedHash, connectors.StrategyPseudonym:
				if len(s.hashKey) == 0 {
					return permanent(op, "field %q: strategy %s needs Options.HashKey", f.Field, f.Strategy)
				}
				if f.Strategy == connectors.StrategyPseudonym && t.RequestID == "" {
					return permanent(op, "field %q: strategy pseudonym needs the target's request id", f.Field)
				}
			default:
				return permanent(op, "field %q: unknown mask strategy %q", f.Field, f.Strategy)
			}
		default:
			return permanent(op, "field %q: unknown action %q", f.Field, f.Action)
		}
	}
	return nil
}

// idArrays splits identities into parallel arrays for unnest.
func idArrays(ids []connectors.Identity) (types, providers, values []string) {
	for _, id := range ids {
		types = append(types, id.Type)
		providers = append(providers, id.Provider)
		values = append(values, id.Value)
	}
	return types, providers, values
}

// subjectRecords matches the target's records: $1 system, $2 dataset, $3-$5
// the identities. Its plan must not depend on table statistics: freshly
// seeded tables have none, and a semi-join planned without them rescanned
// the dataset's identities for every record (seconds over a few thousand).
// The keys are found once, by probing the identities' primary key (the only
// index usable here) with each of the few identities; the records are then
// read at worst by one pass over the dataset's primary-key range.
const subjectRecords = `r.system = $1 AND r.dataset = $2 AND r.record_key = ANY (ARRAY (
	SELECT i.record_key FROM unnest($3::text[], $4::text[], $5::text[]) AS k(t, p, v)
	CROSS JOIN LATERAL (
		SELECT i.record_key FROM recordstore_record_identities i
		WHERE i.id_type = k.t AND i.id_provider = k.p AND i.id_value = k.v
			AND i.system = $1 AND i.dataset = $2) AS i))`

func targetArgs(t connectors.Target) []any {
	types, providers, values := idArrays(t.Identities)
	return []any{t.System, t.Dataset, types, providers, values}
}

// decodeFields decodes a fields object keeping numbers exact: a disclosed
// account number must not come back as a rounded float.
func decodeFields(b []byte) (map[string]any, error) {
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	m := map[string]any{}
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// sameJSON says whether two decoded values are the same JSON value.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// ResolveIdentities follows links from known, transitively, and returns
// the identities reached other than known themselves.
func (s *Store) ResolveIdentities(ctx context.Context, known []connectors.Identity) ([]connectors.Identity, error) {
	if err := s.enter(ctx, OpResolve, s.caps.ResolveIdentities); err != nil {
		return nil, err
	}
	if err := checkIdentities(OpResolve, known); err != nil {
		return nil, err
	}
	if err := s.runHook(ctx, OpResolve, connectors.Target{Identities: known}); err != nil {
		return nil, err
	}
	types, providers, values := idArrays(known)
	// UNION (not UNION ALL) drops rows already reached, so cycles end.
	rows, err := s.pool.Query(ctx, `
		WITH RECURSIVE known(t, p, v) AS (
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
		), reach(t, p, v) AS (
			SELECT t, p, v FROM known
			UNION
			SELECT l.b_type, l.b_provider, l.b_value
			FROM recordstore_links l JOIN reach r ON l.a_type = r.t AND l.a_provider = r.p AND l.a_value = r.v
		)
		SELECT t, p, v FROM reach EXCEPT SELECT t, p, v FROM known
		ORDER BY 1, 2, 3`, types, providers, values)
	if err != nil {
		return nil, fmt.Errorf("recordstore: resolve: %w", classify(ctx, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (connectors.Identity, error) {
		var id connectors.Identity
		err := row.Scan(&id.Type, &id.Provider, &id.Value)
		return id, err
	})
	if err != nil {
		return nil, fmt.Errorf("recordstore: resolve: %w", classify(ctx, err))
	}
	return out, nil
}

// Access streams the subject's records to sink, one row at a time, reading
// only the planned fields. A masked field (a withheld credential) is
// disclosed as its strategy's output and a deleted one not at all.
// Restricted records are disclosed: restriction limits processing, not the
// person's access.
func (s *Store) Access(ctx context.Context, p connectors.AccessParams, sink connectors.Sink) (connectors.AccessResult, error) {
	var res connectors.AccessResult
	if err := s.enter(ctx, OpAccess, s.caps.Access); err != nil {
		return res, err
	}
	if err := checkTarget(OpAccess, p.Target, false); err != nil {
		return res, err
	}
	if err := s.checkPlan(OpAccess, p.Target, p.Fields); err != nil {
		return res, err
	}
	if err := s.runHook(ctx, OpAccess, p.Target); err != nil {
		return res, err
	}
	var read []string
	for _, f := range p.Fields {
		if f.Action != connectors.ActionDelete {
			read = append(read, f.Field)
		}
	}
	args := append(targetArgs(p.Target), read)
	rows, err := s.pool.Query(ctx, `
		SELECT r.record_key, r.masked,
			(SELECT coalesce(jsonb_object_agg(f, r.fields -> f), '{}') FROM unnest($6::text[]) AS f WHERE r.fields ? f)
		FROM recordstore_records r WHERE `+subjectRecords+`
		ORDER BY r.record_key`, args...)
	if err != nil {
		return res, fail(ctx, OpAccess, p.Target, err)
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var maskedJSON, fieldsJSON []byte
		if err := rows.Scan(&key, &maskedJSON, &fieldsJSON); err != nil {
			return res, fail(ctx, OpAccess, p.Target, err)
		}
		fields, err := decodeFields(fieldsJSON)
		if err != nil {
			return res, permanent(OpAccess, "%s/%s: decode fields: %v", p.System, p.Dataset, err)
		}
		var masked map[string]string
		if err := json.Unmarshal(maskedJSON, &masked); err != nil {
			return res, permanent(OpAccess, "%s/%s: decode masks: %v", p.System, p.Dataset, err)
		}
		rec := connectors.Record{Dataset: p.Dataset, Key: key}
		for _, f := range p.Fields {
			v, ok := fields[f.Field]
			if !ok {
				continue
			}
			if f.Action == connectors.ActionMask {
				if v, err = s.mask(f, v, masked[f.Field], p.RequestID); err != nil {
					return res, fmt.Errorf("recordstore: access %s/%s: %w", p.System, p.Dataset, err)
				}
			}
			rec.Fields = append(rec.Fields, connectors.FieldValue{Field: f.Field, Category: f.Category, Value: v})
		}
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("recordstore: access %s/%s: %w", p.System, p.Dataset, err)
		}
		if err := sink.Record(ctx, rec); err != nil {
			return res, fmt.Errorf("recordstore: access %s/%s: sink: %w", p.System, p.Dataset, err)
		}
		res.Records++
	}
	if err := rows.Err(); err != nil {
		return res, fail(ctx, OpAccess, p.Target, err)
	}
	return res, nil
}

// mask returns v masked by f's strategy. applied is the strategy already
// applied to this value, if any. A null value stays null: there is nothing
// to hide.
func (s *Store) mask(f connectors.FieldPlan, v any, applied, requestID string) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch f.Strategy {
	case connectors.StrategyNull:
		return nil, nil
	case connectors.StrategyFixed:
		return f.Value, nil
	case connectors.StrategyKeyedHash:
		if applied == connectors.StrategyKeyedHash {
			return v, nil // hashing the hash would change it every run
		}
		str, ok := v.(string)
		if !ok {
			b, err := json.Marshal(v)
			if err != nil {
				return nil, permanent("mask", "field %q: %v", f.Field, err)
			}
			str = string(b)
		}
		return s.hmacHex(str), nil
	case connectors.StrategyPseudonym:
		// The same request gives the same pseudonym in every record, so
		// the kept records still relate to each other, but not to the person.
		return "pseudonym-" + s.hmacHex(requestID)[:12], nil
	case connectors.StrategyTruncateDate:
		str, _ := v.(string)
		if d, ok := connectors.TruncateDate(str); ok {
			return d, nil
		}
		return nil, permanent("mask", "field %q: truncate_date needs an RFC 3339 timestamp or a date", f.Field)
	}
	return nil, permanent("mask", "field %q: unknown mask strategy %q", f.Field, f.Strategy)
}

func (s *Store) hmacHex(msg string) string {
	m := hmac.New(sha256.New, s.hashKey)
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// effect runs apply in a transaction that also records the effect under the
// target's idempotency key. When the key was recorded before, apply is
// skipped and the stored result is decoded into res. Inserting the key first
// also serialises concurrent runs with the same key: the second waits on
// the first's row and then finds it.
func (s *Store) effect(ctx context.Context, op string, t connectors.Target, res any, apply func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fail(ctx, op, t, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	tag, err := tx.Exec(ctx, `
		INSERT INTO recordstore_effects (idempotency_key, op, system, dataset, result)
		VALUES ($1, $2, $3, $4, '{}') ON CONFLICT DO NOTHING`, t.IdempotencyKey, op, t.System, t.Dataset)
	if err != nil {
		return fail(ctx, op, t, err)
	}
	if tag.RowsAffected() == 0 {
		var stored []byte
		if err := tx.QueryRow(ctx, `
			SELECT result FROM recordstore_effects
			WHERE idempotency_key = $1 AND op = $2 AND system = $3 AND dataset = $4`,
			t.IdempotencyKey, op, t.System, t.Dataset).Scan(&stored); err != nil {
			return fail(ctx, op, t, err)
		}
		if err := json.Unmarshal(stored, res); err != nil {
			return permanent(op, "%s/%s: decode stored result: %v", t.System, t.Dataset, err)
		}
		return nil
	}
	if err := apply(tx); err != nil {
		return fail(ctx, op, t, err)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return permanent(op, "%s/%s: encode result: %v", t.System, t.Dataset, err)
	}
	if _, err := tx.Exec(ctx, `
		UPDATE recordstore_effects SET result = $5
		WHERE idempotency_key = $1 AND op = $2 AND system = $3 AND dataset = $4`,
		t.IdempotencyKey, op, t.System, t.Dataset, b); err != nil {
		return fail(ctx, op, t, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fail(ctx, op, t, err)
	}
	return nil
}

// stored is one of the subject's records, locked for change.
type stored struct {
	key    string
	fields map[string]any
	masked map[string]string
}

// lockRecords reads the subject's records FOR UPDATE. They are few (one
// person's), so holding them in memory is fine.
func lockRecords(ctx context.Context, tx pgx.Tx, t connectors.Target) ([]stored, error) {
	rows, err := tx.Query(ctx, `
		SELECT r.record_key, r.fields, r.masked FROM recordstore_records r
		WHERE `+subjectRecords+` ORDER BY r.record_key FOR UPDATE`, targetArgs(t)...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (stored, error) {
		var rec stored
		var fieldsJSON, maskedJSON []byte
		if err := row.Scan(&rec.key, &fieldsJSON, &maskedJSON); err != nil {
			return rec, err
		}
		var err error
		if rec.fields, err = decodeFields(fieldsJSON); err != nil {
			return rec, connectors.Permanent(fmt.Errorf("decode fields: %w", err))
		}
		if err := json.Unmarshal(maskedJSON, &rec.masked); err != nil {
			return rec, connectors.Permanent(fmt.Errorf("decode masks: %w", err))
		}
		if rec.masked == nil {
			rec.masked = map[string]string{}
		}
		return rec, nil
	})
}

// saveRecords writes changed records back in one round trip.
func saveRecords(ctx context.Context, tx pgx.Tx, t connectors.Target, recs []stored) error {
	if len(recs) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, rec := range recs {
		fields, err := json.Marshal(rec.fields)
		if err != nil {
			return connectors.Permanent(fmt.Errorf("encode fields: %w", err))
		}
		masked, err := json.Marshal(rec.masked)
		if err != nil {
			return connectors.Permanent(fmt.Errorf("encode masks: %w", err))
		}
		b.Queue(`UPDATE recordstore_records SET fields = $4, masked = $5
			WHERE system = $1 AND dataset = $2 AND record_key = $3`, t.System, t.Dataset, rec.key, fields, masked)
	}
	return tx.SendBatch(ctx, b).Close()
}

// Erase applies the plan to each of the subject's records. A record whose
// every field is planned for deletion is deleted; fields the plan does not
// name are never touched, so a record holding one stays. Otherwise deleted
// fields become null, masked ones their strategy's output and retained ones
// stay. Deleted counts records deleted, Masked records kept but changed.
func (s *Store) Erase(ctx context.Context, p connectors.EraseParams) (connectors.EraseResult, error) {
	var res connectors.EraseResult
	if err := s.enter(ctx, OpErase, s.caps.Erase); err != nil {
		return res, err
	}
	if err := checkTarget(OpErase, p.Target, true); err != nil {
		return res, err
	}
	if err := s.checkPlan(OpErase, p.Target, p.Fields); err != nil {
		return res, err
	}
	if err := s.runHook(ctx, OpErase, p.Target); err != nil {
		return res, err
	}
	plans := map[string]connectors.FieldPlan{}
	for _, f := range p.Fields {
		plans[f.Field] = f
	}
	err := s.effect(ctx, OpErase, p.Target, &res, func(tx pgx.Tx) error {
		recs, err := lockRecords(ctx, tx, p.Target)
		if err != nil {
			return err
		}
		var deleted []string
		var changed []stored
		retained := map[string]int{}
		deletesAll := true
		for _, f := range p.Fields {
			deletesAll = deletesAll && f.Action == connectors.ActionDelete
		}
		for _, rec := range recs {
			// An empty record goes only when the plan deletes everything.
			all := len(rec.fields) > 0 || deletesAll
			for f := range rec.fields {
				all = all && plans[f].Action == connectors.ActionDelete
			}
			if all {
				deleted = append(deleted, rec.key)
				continue
			}
			dirty := false
			for f, v := range rec.fields {
				plan, ok := plans[f]
				if !ok {
					continue
				}
				switch plan.Action {
				case connectors.ActionDelete:
					if v != nil {
						rec.fields[f], dirty = nil, true
					}
				case connectors.ActionMask:
					m, err := s.mask(plan, v, rec.masked[f], p.RequestID)
					if err != nil {
						return err
					}
					if !sameJSON(m, v) {
						rec.fields[f], rec.masked[f], dirty = m, plan.Strategy, true
					}
				case connectors.ActionRetain:
					retained[f]++
				}
			}
			if dirty {
				changed = append(changed, rec)
			}
		}
		if len(deleted) > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM recordstore_records
				WHERE system = $1 AND dataset = $2 AND record_key = ANY($3)`, p.System, p.Dataset, deleted); err != nil {
				return err
			}
		}
		if err := saveRecords(ctx, tx, p.Target, changed); err != nil {
			return err
		}
		res.Deleted, res.Masked = len(deleted), len(changed)
		for _, f := range p.Fields {
			if n := retained[f.Field]; n > 0 {
				res.Retained = append(res.Retained, connectors.Retained{Field: f.Field, Basis: f.Basis, Until: f.Until, Records: n})
			}
		}
		return nil
	})
	if err != nil {
		return connectors.EraseResult{}, err
	}
	return res, nil
}

// Rectify sets the changed fields in every record of the subject that has
// them. A field none of the subject's records has is a permanent error: the
// data map and the store disagree, and staff must look.
func (s *Store) Rectify(ctx context.Context, p connectors.RectifyParams) (connectors.RectifyResult, error) {
	var res connectors.RectifyResult
	if err := s.enter(ctx, OpRectify, s.caps.Rectify); err != nil {
		return res, err
	}
	if err := checkTarget(OpRectify, p.Target, true); err != nil {
		return res, err
	}
	if len(p.Changes) == 0 {
		return res, permanent(OpRectify, "%s/%s: no changes given", p.System, p.Dataset)
	}
	for f := range p.Changes {
		if f == "" {
			return res, permanent(OpRectify, "%s/%s: a change has no field name", p.System, p.Dataset)
		}
	}
	if err := s.runHook(ctx, OpRectify, p.Target); err != nil {
		return res, err
	}
	err := s.effect(ctx, OpRectify, p.Target, &res, func(tx pgx.Tx) error {
		recs, err := lockRecords(ctx, tx, p.Target)
		if err != nil {
			return err
		}
		known := map[string]bool{}
		var changed []stored
		for _, rec := range recs {
			dirty := false
			for f, v := range p.Changes {
				old, ok := rec.fields[f]
				if !ok {
					continue
				}
				known[f] = true
				if !sameJSON(old, v) {
					rec.fields[f], dirty = v, true
					delete(rec.masked, f) // the person's value replaces any mask
				}
			}
			if dirty {
				changed = append(changed, rec)
			}
		}
		if len(recs) > 0 {
			for f := range p.Changes {
				if !known[f] {
					return permanent(OpRectify, "%s/%s: unknown field %q", p.System, p.Dataset, f)
				}
			}
		}
		res.Updated = len(changed)
		return saveRecords(ctx, tx, p.Target, changed)
	})
	if err != nil {
		return connectors.RectifyResult{}, err
	}
	return res, nil
}

// Restrict marks (or unmarks) the subject's records restricted; Restricted
// counts the records whose mark changed.
func (s *Store) Restrict(ctx context.Context, p connectors.RestrictParams) (connectors.RestrictResult, error) {
	var res connectors.RestrictResult
	if err := s.enter(ctx, OpRestrict, s.caps.Restrict); err != nil {
		return res, err
	}
	if err := checkTarget(OpRestrict, p.Target, true); err != nil {
		return res, err
	}
	if err := s.runHook(ctx, OpRestrict, p.Target); err != nil {
		return res, err
	}
	var reason *string
	if p.Restricted {
		reason = &p.Reason
	}
	err := s.effect(ctx, OpRestrict, p.Target, &res, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE recordstore_records r SET restricted = $6, restrict_reason = $7
			WHERE `+subjectRecords+` AND r.restricted <> $6`, append(targetArgs(p.Target), p.Restricted, reason)...)
		res.Restricted = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return connectors.RestrictResult{}, err
	}
	return res, nil
}

// Put stores a record (replacing one with the same key, masks and
// restriction included) under the given identities. It is for seeding.
func (s *Store) Put(ctx context.Context, system, dataset, key string, ids []connectors.Identity, fields map[string]any) error {
	if fields == nil {
		fields = map[string]any{}
	}
	fj, err := json.Marshal(fields)
	if err != nil {
		return fmt.Errorf("recordstore: put %s/%s: encode fields: %w", system, dataset, err)
	}
	types, providers, values := idArrays(ids)
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("recordstore: put %s/%s: %w", system, dataset, classify(ctx, err))
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO recordstore_records (system, dataset, record_key, fields) VALUES ($1, $2, $3, $4)
		ON CONFLICT (system, dataset, record_key) DO UPDATE
		SET fields = EXCLUDED.fields, masked = '{}', restricted = false, restrict_reason = NULL`, system, dataset, key, fj)
	b.Queue(`DELETE FROM recordstore_record_identities WHERE system = $1 AND dataset = $2 AND record_key = $3`, system, dataset, key)
	b.Queue(`INSERT INTO recordstore_record_identities (system, dataset, record_key, id_type, id_provider, id_value)
		SELECT $1, $2, $3, t, p, v FROM unnest($4::text[], $5::text[], $6::text[]) AS k(t, p, v)
		ON CONFLICT DO NOTHING`, system, dataset, key, types, providers, values)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("recordstore: put %s/%s: %w", system, dataset, classify(ctx, err))
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("recordstore: put %s/%s: commit: %w", system, dataset, classify(ctx, err))
	}
	return nil
}

// Link records that a and b are the same subject's, for ResolveIdentities.
func (s *Store) Link(ctx context.Context, a, b connectors.Identity) error {
	if err := checkIdentities("link", []connectors.Identity{a, b}); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, `
		INSERT INTO recordstore_links (a_type, a_provider, a_value, b_type, b_provider, b_value)
		VALUES ($1, $2, $3, $4, $5, $6), ($4, $5, $6, $1, $2, $3) ON CONFLICT DO NOTHING`,
		a.Type, a.Provider, a.Value, b.Type, b.Provider, b.Value); err != nil {
		return fmt.Errorf("recordstore: link: %w", classify(ctx, err))
	}
	return nil
}

// Effects counts the effects (Erase, Rectify, Restrict on one dataset)
// applied under idempotencyKey.
func (s *Store) Effects(ctx context.Context, idempotencyKey string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM recordstore_effects WHERE idempotency_key = $1`,
		idempotencyKey).Scan(&n); err != nil {
		return 0, fmt.Errorf("recordstore: effects: %w", classify(ctx, err))
	}
	return n, nil
}

// Count counts the records of a dataset, every subject's.
func (s *Store) Count(ctx context.Context, system, dataset string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM recordstore_records WHERE system = $1 AND dataset = $2`,
		system, dataset).Scan(&n); err != nil {
		return 0, fmt.Errorf("recordstore: count %s/%s: %w", system, dataset, classify(ctx, err))
	}
	return n, nil
}
