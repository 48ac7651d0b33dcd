package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/steward-privacy/steward/connectors"
)

// opSweep names the retention sweep in errors and for the test hook.
const opSweep = "retention sweep"

// maxSweepWalks bounds the walks over a table whose rows reference each
// other. One walk deletes every due row nothing references; a parent whose
// due child lies in a later block range is only deletable on the next walk,
// so a chain of due rows needs a walk per layer that spans batches. What is
// left after the last walk is reported as kept and goes in the next sweep.
const maxSweepWalks = 8

var _ connectors.Sweeper = (*Connector)(nil)

// sweep is one retention sweep of one dataset.
type sweep struct {
	c  *Connector
	m  *model
	ds *dataset
	p  connectors.SweepParams
	// allDelete: due rows are deleted; otherwise the fields of plans are
	// overwritten (anonymize).
	allDelete bool
	plans     []connectors.FieldPlan
	// blocking are the incoming foreign keys that can keep a row (see
	// eraser.blockers); selfRef says one of them is the table's own, so
	// rows of one batch may keep each other.
	blocking []*ForeignKey
	selfRef  bool
	// a holds the bound parameters every statement starts with: $1 is the
	// cutoff, then the held subjects' identities and keys. due and notHeld
	// are SQL conditions over alias t using them.
	a       args
	due     string
	notHeld string
	heldSQL string // "" when no held subject can have rows here
	// insteadNote says why an anonymize rule deletes (see newSweep).
	insteadNote string
}

// Sweep deletes (or anonymizes) every row of the dataset whose timestamp is
// before the cutoff, except the rows of subjects under a legal hold and rows
// that a row the sweep keeps still references. It walks the table in
// physical block ranges (TID range scans), one transaction per range, up to
// the table's size when the sweep started: rows added later are new. The
// cursor it reports after each committed range is the next block to start
// from, so a retry resumes without repeating work; a repeated range finds
// nothing left to do, so nothing is counted twice.
func (c *Connector) Sweep(ctx context.Context, p connectors.SweepParams) (connectors.SweepResult, error) {
	var res connectors.SweepResult
	started := time.Now()
	// A dry run only reads: a read-only deployment can still say what a
	// sweep would do.
	m, err := c.enter(ctx, opSweep, c.Capabilities().Erase || p.DryRun)
	if err != nil {
		return res, err
	}
	s, err := newSweep(c, m, p)
	if err != nil {
		return res, err
	}
	batches := 0
	res, err = s.run(ctx, &batches)
	if s.insteadNote != "" {
		res.Note = strings.TrimSpace(s.insteadNote + ". " + res.Note)
	}
	attrs := []any{"system", m.system, "dataset", s.ds.id, "cutoff", p.Cutoff.UTC(), "dry_run", p.DryRun,
		"resumed", p.Resume != "", "matched", res.Matched, "deleted", res.Deleted, "anonymized", res.Anonymized,
		"held", res.Held, "kept", res.Kept, "batches", batches, "duration", time.Since(started).Round(time.Millisecond)}
	if err != nil {
		var pe *progressError
		if errors.As(err, &pe) {
			err = pe.err
		} else {
			err = c.fail(ctx, opSweep, err)
		}
		// The error itself goes back to the caller. The line says only how
		// far the sweep got and what kind of failure stopped it: a
		// database's message can quote a row's values (a trigger's text, a
		// check), and values here are personal data.
		retryable, _ := connectors.Classify(err)
		attrs = append(attrs, "retryable", retryable)
		var pg *pgconn.PgError
		if errors.As(err, &pg) {
			attrs = append(attrs, "sqlstate", pg.Code)
		}
		c.log.Warn("postgres connector: retention sweep failed", attrs...)
		return res, err
	}
	c.log.Info("postgres connector: retention sweep", attrs...)
	return res, nil
}

// progressError is the caller's Progress refusing a batch: returned as it
// is, not classified as the database's.
type progressError struct{ err error }

func (e *progressError) Error() string { return e.err.Error() }

// newSweep checks the parameters against the data map and the schema. Every
// problem is permanent: retrying the same sweep cannot fix it.
func newSweep(c *Connector, m *model, p connectors.SweepParams) (*sweep, error) {
	bad := func(format string, a ...any) error {
		return connectors.Permanent(fmt.Errorf("postgres %s: %s %s: %s", m.system, opSweep, p.Dataset, fmt.Sprintf(format, a...)))
	}
	ds, err := m.dataset(opSweep, connectors.Target{System: p.System, Dataset: p.Dataset})
	if err != nil {
		return nil, err
	}
	col := ds.table.Columns[p.Timestamp]
	switch {
	case p.Timestamp == "":
		return nil, bad("no timestamp field to read the records' age from")
	case col == nil:
		return nil, bad("timestamp field %s.%s.%s is not a column of table %s", m.system, ds.id, p.Timestamp, ds.table.Name)
	case col.Base != "date" && col.Base != "timestamp" && col.Base != "timestamptz":
		return nil, bad("timestamp field %s.%s.%s is %s; a sweep needs a date, timestamp or timestamptz column", m.system, ds.id, p.Timestamp, col.Type)
	case p.Cutoff.IsZero():
		return nil, bad("no cutoff: every record would be due")
	}
	s := &sweep{c: c, m: m, ds: ds, p: p, allDelete: true, blocking: blockingKeys(m, ds)}
	if len(p.Fields) > 0 {
		if err := ds.planFields(opSweep, p.Fields); err != nil {
			return nil, err
		}
	}
	for _, f := range p.Fields {
		s.allDelete = s.allDelete && f.Action == connectors.ActionDelete
	}
	if !s.allDelete {
		for _, f := range p.Fields {
			switch f.Action {
			case connectors.ActionMask:
				switch f.Strategy {
				case connectors.StrategyNull, connectors.StrategyFixed, connectors.StrategyKeyedHash, connectors.StrategyTruncateDate:
				case connectors.StrategyPseudonym:
					// A pseudonym is one subject's, and a sweep has no
					// subject: a keyed hash of the value is the nearest
					// thing that still names no one.
					f.Strategy = connectors.StrategyKeyedHash
				default:
					return nil, bad("field %q: unknown mask strategy %q", f.Field, f.Strategy)
				}
			case connectors.ActionDelete:
				// A record that is kept loses the fields whose retention
				// ended with it, as in an erasure.
			default:
				continue // include, retain, rectify: kept as they are
			}
			s.plans = append(s.plans, f)
		}
	}
	// A record to anonymize whose identifying field is a NOT NULL
	// reference (sessions.user_id -> users) cannot be separated from the
	// person while it exists. The rule's promise is that past the period
	// the record no longer identifies anyone: such records are deleted
	// instead, and the result says so.
	for _, f := range s.plans {
		if f.Action != connectors.ActionMask {
			continue
		}
		if er, err := c.eraseValue(f, ds.table, ds.table.Columns[f.Field], "probe", nil); err == nil && er.unlinkable {
			s.allDelete, s.plans = true, nil
			s.insteadNote = fmt.Sprintf("anonymizing %s is impossible (%s: %s), so due records are deleted instead", ds.id, f.Field, er.kept)
			break
		}
	}
	if p.Resume != "" {
		if _, err := strconv.ParseUint(p.Resume, 10, 32); err != nil {
			return nil, bad("resume cursor %q is not a block number", p.Resume)
		}
	}
	for _, fk := range s.blocking {
		s.selfRef = s.selfRef || fk.Table == ds.table.Name
	}
	s.a = args{p.Cutoff}
	s.due = colRef("t", p.Timestamp) + " < $1::timestamptz"
	return s, nil
}

func (s *sweep) run(ctx context.Context, batches *int) (res connectors.SweepResult, err error) {
	// Matched and Held are counted in a snapshot taken before the first
	// batch, on a connection of their own, while the walk goes on: the
	// count reads the whole table once, and waiting for it first would add
	// its time to the sweep's.
	var end uint32
	var perBlock float64
	var counts connectors.SweepResult
	ready, counted := make(chan error, 1), make(chan error, 1)
	go func() {
		set := false
		err := s.c.readTx(ctx, func(tx pgx.Tx) error {
			// The transaction's first statement (its timeouts) took the
			// snapshot: the count below sees the table as it was before
			// any batch.
			if err := s.holdPredicate(ctx, tx); err != nil {
				return err
			}
			var err error
			if end, perBlock, err = s.geometry(ctx, tx); err != nil {
				return err
			}
			set = true
			ready <- nil
			return s.count(ctx, tx, &counts)
		})
		if !set {
			ready <- err
		}
		counted <- err
	}()
	var countErr error
	var once sync.Once
	wait := func() error {
		once.Do(func() {
			countErr = <-counted
			res.Matched, res.Held = counts.Matched, counts.Held
		})
		return countErr
	}
	defer func() {
		// Every return waits for the count, so it never outlives the call.
		if cerr := wait(); err == nil {
			err = cerr
		}
	}()
	if err := <-ready; err != nil {
		return res, err
	}
	if s.p.DryRun {
		if err := wait(); err != nil {
			return res, err
		}
		return res, s.dryRun(ctx, &res)
	}
	from := uint32(0)
	if s.p.Resume != "" {
		n, _ := strconv.ParseUint(s.p.Resume, 10, 32) // checked in newSweep
		from = uint32(n)
	}
	if !s.allDelete {
		if len(s.plans) == 0 {
			return res, nil // nothing to overwrite: every field is kept
		}
		// Rows are rewritten one statement each, so a batch holds
		// BatchSize rows, as in an erasure.
		if _, err := s.walk(ctx, from, end, s.c.cfg.BatchSize, perBlock, s.anonymizeRange, &res, batches); err != nil {
			return res, err
		}
		return res, s.c.readTx(ctx, func(tx pgx.Tx) error { return s.kept(ctx, tx, &res) })
	}
	for walk := 1; ; walk++ {
		n, err := s.walk(ctx, from, end, s.c.cfg.SweepBatch, perBlock, s.deleteRange, &res, batches)
		if err != nil {
			return res, err
		}
		// A self-reference can make a row deletable only after a later
		// range went: walk again until a whole walk finds nothing.
		if !s.selfRef || (n == 0 && from == 0) || walk == maxSweepWalks {
			break
		}
		from = 0
	}
	if len(s.blocking) > 0 {
		return res, s.c.readTx(ctx, func(tx pgx.Tx) error { return s.kept(ctx, tx, &res) })
	}
	return res, nil
}

// holdPredicate builds the condition excluding the held subjects' rows:
// one predicate over all their identities (the rows of any of them), so a
// batch tests each row once however many subjects are held.
func (s *sweep) holdPredicate(ctx context.Context, q Querier) error {
	var ids []connectors.Identity
	for _, h := range s.p.Held {
		ids = append(ids, h...)
	}
	if len(ids) == 0 {
		return nil
	}
	pred, err := newReach(s.m, q, ids, s.c.cfg.EmailCaseSensitive).predicate(ctx, s.ds, "t", &s.a)
	if err != nil || pred == "" {
		return err
	}
	s.heldSQL = pred
	s.notHeld = "NOT COALESCE(" + pred + ", false)"
	return nil
}

// geometry is the table's size in blocks now (the walk's end: rows added
// later are new) and its rows per block as last analysed. A partitioned
// table is walked in every partition at once, up to the largest.
func (s *sweep) geometry(ctx context.Context, tx pgx.Tx) (end uint32, perBlock float64, err error) {
	var blocks int64
	var tuples float64
	var pages int64
	var blockSize int
	err = tx.QueryRow(ctx, `
		WITH leaves AS (SELECT relid FROM pg_partition_tree($1::text::regclass) WHERE isleaf UNION SELECT $1::text::regclass)
		SELECT coalesce(max(pg_relation_size(c.oid)) / current_setting('block_size')::bigint, 0),
		       coalesce(sum(c.reltuples) FILTER (WHERE c.reltuples >= 0 AND c.relpages > 0), 0)::float8,
		       coalesce(sum(c.relpages) FILTER (WHERE c.reltuples >= 0 AND c.relpages > 0), 0)::bigint,
		       current_setting('block_size')::int
		FROM leaves l JOIN pg_class c ON c.oid = l.relid WHERE c.relkind IN ('r', 'm')`, s.ds.ident.Sanitize()).
		Scan(&blocks, &tuples, &pages, &blockSize)
	if err != nil {
		return 0, 0, fmt.Errorf("size of %s: %w", s.ds.id, err)
	}
	if pages > 0 && tuples > 0 {
		perBlock = tuples / float64(pages)
	} else {
		// Never analysed: assume pages full of the smallest rows, so a
		// batch is never larger than asked (a heap tuple takes at least 28
		// bytes with its line pointer).
		perBlock = float64(blockSize) / 28
	}
	return uint32(min(blocks, math.MaxUint32)), perBlock, nil
}

// blocksFor is how many blocks hold about rows rows.
func blocksFor(rows int, perBlock float64) uint32 {
	return uint32(max(1, min(float64(rows)/max(perBlock, 1), math.MaxUint32/4)))
}

// maxStretch bounds how far a batch's range grows past the one holding
// target rows: where few rows are due, a batch scans more of the table (up
// to this many times target rows) so that it still changes about target.
const maxStretch = 4

// nextStep sizes the next range from what the last one changed: about
// target rows changed a transaction, whatever the share of due rows, so
// that sparse stretches of the table do not cost a commit per few rows.
// It never goes below base (target rows scanned), so a dense stretch is
// back to batches of target rows at once.
func nextStep(step, base uint32, target int, changed int64) uint32 {
	grown := float64(step) * 2
	if changed > 0 {
		grown = float64(step) * float64(target) / float64(changed)
	}
	return uint32(max(float64(base), min(grown, float64(base)*maxStretch)))
}

// countTimeouts is how many statement timeouts a count over the whole
// table may take. A batch is short by construction; a count reads every
// due row, and a large table must not make every sweep of it time out (and
// be retried forever). It holds only the lock any read takes.
const countTimeouts = 10

// longRead lets the rest of tx run countTimeouts statement timeouts.
func (s *sweep) longRead(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "SELECT set_config('statement_timeout', $1, true)",
		fmt.Sprintf("%dms", countTimeouts*s.c.cfg.StatementTimeout.Milliseconds()))
	return err
}

// count fills Matched and Held: the due rows now, and those of held
// subjects among them.
func (s *sweep) count(ctx context.Context, tx pgx.Tx, res *connectors.SweepResult) error {
	if err := s.longRead(ctx, tx); err != nil {
		return err
	}
	held := "0::bigint"
	if s.heldSQL != "" {
		held = "count(*) FILTER (WHERE COALESCE(" + s.heldSQL + ", false))"
	}
	err := tx.QueryRow(ctx, fmt.Sprintf("SELECT count(*), %s FROM %s AS t WHERE %s", held, s.ds.ident.Sanitize(), s.due), s.a...).
		Scan(&res.Matched, &res.Held)
	if err != nil {
		return fmt.Errorf("count due rows of %s: %w", s.ds.id, err)
	}
	return nil
}

// kept fills Kept and Note with the due rows of subjects not held that
// the sweep leaves as they are: on the delete path, rows a foreign key
// still keeps; on the anonymize path, rows with a value their column cannot
// give up (see keptValues). Both are states of the table, not changes, so a
// repeated sweep reports them again.
func (s *sweep) kept(ctx context.Context, tx pgx.Tx, res *connectors.SweepResult) error {
	var which, why string
	if s.allDelete {
		if len(s.blocking) == 0 {
			return nil
		}
		which = "NOT (" + strings.Join(s.blockers(true), " AND ") + ")"
		var names []string
		for _, fk := range s.blocking {
			names = append(names, fk.Table+"."+fk.Name)
		}
		why = fmt.Sprintf("other records still reference them (foreign keys %s); a later sweep deletes them once those are gone",
			strings.Join(slices.Compact(slices.Sorted(slices.Values(names))), ", "))
	} else {
		kv := s.keptValues()
		if len(kv) == 0 {
			return nil
		}
		var nonNull, reasons []string
		for _, f := range slices.Sorted(maps.Keys(kv)) {
			nonNull = append(nonNull, colRef("t", f)+" IS NOT NULL")
			reasons = append(reasons, f+": "+kv[f])
		}
		which = "(" + strings.Join(nonNull, " OR ") + ")"
		why = "they keep values their columns cannot give up (" + strings.Join(reasons, "; ") + ")"
	}
	if err := s.longRead(ctx, tx); err != nil {
		return err
	}
	err := tx.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s AS t WHERE %s", s.ds.ident.Sanitize(), strings.Join(s.conds(which), " AND ")), s.a...).
		Scan(&res.Kept)
	if err != nil {
		return fmt.Errorf("count kept rows of %s: %w", s.ds.id, err)
	}
	if res.Kept > 0 {
		res.Note = fmt.Sprintf("%d due record(s) of %s kept: %s", res.Kept, s.ds.id, why)
	}
	return nil
}

// keptValues maps the planned fields an anonymization cannot overwrite (a
// key other rows reference, a NOT NULL column with no neutral value) to
// why. eraseValue decides that from the column alone, before looking at
// the value, so any non-null probe gets the answer every row would.
func (s *sweep) keptValues() map[string]string {
	out := map[string]string{}
	for _, f := range s.plans {
		er, err := s.c.eraseValue(f, s.ds.table, s.ds.table.Columns[f.Field], "probe", nil)
		if err == nil && er.kept != "" {
			out[f.Field] = er.kept
		}
	}
	return out
}

// dryRun adds what the sweep would keep and do, changing nothing. Deleted
// and Anonymized stay zero: they count changes, and there are none.
func (s *sweep) dryRun(ctx context.Context, res *connectors.SweepResult) error {
	if err := s.c.readTx(ctx, func(tx pgx.Tx) error { return s.kept(ctx, tx, res) }); err != nil {
		return err
	}
	note := fmt.Sprintf("dry run: %d due record(s) of %s would be deleted", res.Matched-res.Held-res.Kept, s.ds.id)
	if !s.allDelete {
		note = fmt.Sprintf("dry run: up to %d due record(s) of %s would be anonymized (those not anonymized already)", res.Matched-res.Held, s.ds.id)
	}
	if res.Note != "" {
		note += "; " + res.Note
	}
	res.Note = note
	return nil
}

// conds are the conditions every statement puts on the rows it touches:
// due, not held, and extra.
func (s *sweep) conds(extra ...string) []string {
	out := []string{s.due}
	if s.notHeld != "" {
		out = append(out, s.notHeld)
	}
	return append(out, extra...)
}

// blockers are the eraser's conditions under which a row must stay (see
// eraser.blockers), except that a reference from the table to itself
// counts whoever it comes from (but the row itself): rows then go leaves
// first, one layer a statement, whatever the key's ON DELETE and
// deferral, and a row is never deleted while a row that stays points at
// it. With self false, self-references are left out.
func (s *sweep) blockers(self bool) []string {
	var out []string
	for _, fk := range s.blocking {
		isSelf := fk.Table == s.ds.table.Name
		if isSelf && !self {
			continue
		}
		var on []string
		for i, col := range fk.Columns {
			on = append(on, colRef("c", col)+" = "+colRef("t", fk.RefColumns[i]))
		}
		if isSelf {
			on = append(on, "(c.tableoid, c.ctid) <> (t.tableoid, t.ctid)")
		}
		out = append(out, fmt.Sprintf("NOT EXISTS (SELECT 1 FROM %s AS c WHERE %s)",
			pgx.Identifier{s.m.schema, fk.Table}.Sanitize(), strings.Join(on, " AND ")))
	}
	return out
}

// batchCounts are what one range's transaction changed.
type batchCounts struct{ deleted, anonymized int64 }

// rangeFunc handles the rows in blocks [from, to) in tx.
type rangeFunc func(ctx context.Context, tx pgx.Tx, from, to uint32) (batchCounts, error)

// walk runs fn over blocks [from, end), a range a transaction, and reports
// each committed range. A range starts as the blocks holding target rows
// (perBlock rows each) and adapts to the share of rows that change (see
// nextStep). It returns the rows it changed.
func (s *sweep) walk(ctx context.Context, from, end uint32, target int, perBlock float64, fn rangeFunc, res *connectors.SweepResult, batches *int) (int64, error) {
	var total int64
	base := blocksFor(target, perBlock)
	step := base
	for b := from; b < end; {
		next := uint32(min(uint64(end), uint64(b)+uint64(step)))
		var got batchCounts
		err := s.c.writeTx(ctx, func(tx pgx.Tx) error {
			var err error
			got, err = fn(ctx, tx, b, next)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("%s blocks %d-%d: %w", s.ds.id, b, next, err)
		}
		*batches++
		changed := got.deleted + got.anonymized
		total += changed
		res.Deleted += got.deleted
		res.Anonymized += got.anonymized
		if s.p.Progress != nil {
			err := s.p.Progress(ctx, connectors.SweepBatch{Deleted: got.deleted, Anonymized: got.anonymized, Cursor: strconv.FormatUint(uint64(next), 10)})
			if err != nil {
				return total, &progressError{fmt.Errorf("postgres %s: %s %s: progress: %w", s.m.system, opSweep, s.ds.id, err)}
			}
		}
		step = nextStep(step, base, target, changed)
		b = next
	}
	return total, nil
}

// blockRange is the condition "t lies in blocks [from, to)", a TID range
// scan; it appends its two parameters to a.
func blockRange(a *args, from, to uint32) string {
	return fmt.Sprintf("t.ctid >= %s::tid AND t.ctid < %s::tid",
		a.add(pgtype.TID{BlockNumber: from, Valid: true}), a.add(pgtype.TID{BlockNumber: to, Valid: true}))
}

// deleteRange deletes the due rows of blocks [from, to) that no kept row
// references.
func (s *sweep) deleteRange(ctx context.Context, tx pgx.Tx, from, to uint32) (batchCounts, error) {
	a := slices.Clone(s.a)
	in := blockRange(&a, from, to)
	if !s.selfRef {
		// One set-based statement, as a hand-written DELETE would be: the
		// range is a TID range scan, and the rows are filtered as read.
		conds := append([]string{in}, s.conds(s.blockers(true)...)...)
		tag, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s AS t WHERE %s", s.ds.ident.Sanitize(), strings.Join(conds, " AND ")), a...)
		return batchCounts{deleted: tag.RowsAffected()}, err
	}
	// Rows of the range may reference each other: lock the candidates, then
	// delete those nothing else references, leaves first, until a statement
	// deletes nothing. The due and held conditions are repeated so a TID of
	// another partition can never match a row that is not due.
	var ids []pgtype.TID
	choose := append([]string{in}, s.conds(s.blockers(false)...)...)
	err := tx.QueryRow(ctx, fmt.Sprintf("SELECT ARRAY(SELECT t.ctid FROM %s AS t WHERE %s FOR UPDATE)",
		s.ds.ident.Sanitize(), strings.Join(choose, " AND ")), a...).Scan(&ids)
	if err != nil || len(ids) == 0 {
		return batchCounts{}, err
	}
	b := slices.Clone(s.a)
	conds := append([]string{"t.ctid = ANY(" + b.add(nil) + "::tid[])"}, s.conds(s.blockers(true)...)...)
	sql := fmt.Sprintf("DELETE FROM %s AS t WHERE %s RETURNING t.ctid", s.ds.ident.Sanitize(), strings.Join(conds, " AND "))
	var n int64
	for len(ids) > 0 {
		b[len(b)-1] = ids
		rows, err := tx.Query(ctx, sql, b...)
		if err != nil {
			return batchCounts{}, err
		}
		gone, err := pgx.CollectRows(rows, pgx.RowTo[pgtype.TID])
		if err != nil || len(gone) == 0 {
			return batchCounts{deleted: n}, err
		}
		n += int64(len(gone))
		deleted := make(map[pgtype.TID]bool, len(gone))
		for _, t := range gone {
			deleted[t] = true
		}
		ids = slices.DeleteFunc(ids, func(t pgtype.TID) bool { return deleted[t] })
	}
	return batchCounts{deleted: n}, nil
}

// anonymizeRange overwrites the planned fields of the due rows of blocks
// [from, to). A row counts only when a value changed, so a second sweep of
// anonymized rows counts none.
func (s *sweep) anonymizeRange(ctx context.Context, tx pgx.Tx, from, to uint32) (batchCounts, error) {
	a := slices.Clone(s.a)
	cols := []string{"t.tableoid", "t.ctid"}
	for _, f := range s.plans {
		cols = append(cols, colRef("t", f.Field))
	}
	conds := append([]string{blockRange(&a, from, to)}, s.conds()...)
	rows, err := tx.Query(ctx, fmt.Sprintf("SELECT %s FROM %s AS t WHERE %s FOR UPDATE",
		strings.Join(cols, ", "), s.ds.ident.Sanitize(), strings.Join(conds, " AND ")), a...)
	if err != nil {
		return batchCounts{}, err
	}
	batch := &pgx.Batch{}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return batchCounts{}, err
		}
		if err := s.anonymizeRow(batch, vals[0], vals[1], vals[2:]); err != nil {
			rows.Close()
			return batchCounts{}, err
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return batchCounts{}, err
	}
	if batch.Len() == 0 {
		return batchCounts{}, nil
	}
	br := tx.SendBatch(ctx, batch)
	var n int64
	for range batch.Len() {
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return batchCounts{}, err
		}
		n += tag.RowsAffected()
	}
	return batchCounts{anonymized: n}, br.Close()
}

// anonymizeRow queues the update of one due row, if any planned value
// changes. The row is named by its table (a partition) and TID: a TID alone
// is unique only within one partition.
func (s *sweep) anonymizeRow(b *pgx.Batch, tableoid, ctid any, vals []any) error {
	var sets []string
	var a args
	for i, f := range s.plans {
		er, err := s.c.eraseValue(f, s.ds.table, s.ds.table.Columns[f.Field], vals[i], nil)
		if err != nil {
			return err
		}
		if er.changed {
			sets = append(sets, er.set(f.Field, &a))
		}
	}
	if len(sets) == 0 {
		return nil
	}
	b.Queue(fmt.Sprintf("UPDATE %s SET %s WHERE tableoid = %s AND ctid = %s",
		s.ds.ident.Sanitize(), strings.Join(sets, ", "), a.add(tableoid), a.add(ctid)), a...)
	return nil
}
