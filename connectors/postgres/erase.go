package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/steward-privacy/steward/connectors"
)

// maxPasses bounds the erase loop. Each pass deletes and masks what it
// finds; the last finds nothing left to do and is the verification. A
// second pass does work only when a row became deletable during the first
// (its last child went in a later batch) or the application wrote the
// subject's rows meanwhile.
const maxPasses = 4

// eraser erases one dataset for one set of subjects.
type eraser struct {
	c         *Connector
	m         *model
	ds        *dataset
	plans     []connectors.FieldPlan
	allDelete bool
	ids       []connectors.Identity
	// bulk deletes a batch of subjects' rows in one statement rather
	// than BatchSize rows at a time.
	bulk bool
	// blocking are the incoming foreign keys that can keep a row.
	blocking []*ForeignKey
	// rewritten are the planned fields the erasure does not write again,
	// with the reason: their value did not stay in its erased form after
	// an UPDATE (a trigger re-stamps them, see noteWrites), so writing
	// them again would only fire the trigger again. passWrites counts, per
	// field, the passes that wrote it.
	rewritten  map[string]string
	passWrites map[string]int
	// keptRows is what the erasure kept in each row it erased, across
	// passes, by the row's current location. A pass sees only the rows
	// its predicate still finds: a row whose identity column the first
	// pass masked (Customer.Email) is not found by the verifying pass, yet
	// the values kept in it (its referenced key CustomerId) are still
	// there. So the result's Retained and tombstones come from here, not
	// from the last pass's stats alone. An UPDATE moves the entry to the
	// row's new location (its RETURNING); rows gone by the end (deleted
	// in a later pass) are dropped (see keptAtEnd).
	keptRows map[rowLoc]*keptRow
}

// keptRow is what the erasure left in one row: per field the plan deletes
// or masks, why the value stays ("kept: " + why in Retained); the fields
// the plan retains that hold a value; whether the row is a tombstone; and
// the fields that fail the verification.
type keptRow struct {
	kept      map[string]string
	retained  []string
	tombstone bool
	// identityKept are the row's identity columns whose value a constraint
	// kept although the plan erases it.
	identityKept map[string]bool
	// identityLeft are the planned fields (deleted or masked) that, after
	// the erasure, hold a value of one of the person's identities (a
	// trigger put it back, or a constraint kept it in a column that is not
	// an identity column).
	identityLeft map[string]bool
}

// stats are one pass's counts. What the erasure kept, and the identities
// it left, are not counted here but in eraser.keptRows, across passes.
type stats struct {
	deleted, masked int
	// written counts, per field, the rows whose UPDATE set it.
	written map[string]int
}

func newStats() *stats { return &stats{written: map[string]int{}} }

// Erase erases the subject's rows in the target dataset as planned: rows
// whose every field is to be deleted are deleted, children first (the
// engine orders datasets; within a table, self-references go in one
// statement); other rows have their deleted and masked fields overwritten.
// A row still referenced by a row that is kept is kept as a tombstone with
// its personal fields erased. It repeats until a pass finds nothing to do,
// which is the verification the result reports.
func (c *Connector) Erase(ctx context.Context, p connectors.EraseParams) (connectors.EraseResult, error) {
	var res connectors.EraseResult
	m, err := c.enter(ctx, opErase, c.Capabilities().Erase)
	if err != nil {
		return res, err
	}
	ds, err := m.dataset(opErase, p.Target)
	if err != nil {
		return res, err
	}
	if err := ds.planFields(opErase, p.Fields); err != nil {
		return res, err
	}
	e := newEraser(c, m, ds, p.Fields, p.Identities)
	before, err := e.copyCounts(ctx)
	if err != nil {
		return res, c.fail(ctx, opErase, err)
	}
	// Rows reached that are not the person's alone are left alone: say
	// so, for staff (see reach.review).
	review, err := newReach(m, c.pool, p.Identities, c.cfg.EmailCaseSensitive).review(ctx, ds)
	if err != nil {
		return res, c.fail(ctx, opErase, err)
	}
	res, err = e.run(ctx)
	if err != nil {
		return res, c.fail(ctx, opErase, err)
	}
	res.Review, res.Note = review, withReview(res.Note, review)
	after, err := e.copyCounts(ctx)
	if err != nil {
		return res, c.fail(ctx, opErase, err)
	}
	if notes := e.copyNotes(before, after); len(notes) > 0 {
		res.Note = strings.Join(slices.DeleteFunc(append([]string{res.Note}, notes...), func(s string) bool { return s == "" }), "; ")
	}
	return res, nil
}

func newEraser(c *Connector, m *model, ds *dataset, plans []connectors.FieldPlan, ids []connectors.Identity) *eraser {
	allDelete := true
	for _, f := range plans {
		allDelete = allDelete && f.Action == connectors.ActionDelete
	}
	e := &eraser{c: c, m: m, ds: ds, plans: plans, allDelete: allDelete, ids: ids, blocking: blockingKeys(m, ds),
		rewritten: map[string]string{}, passWrites: map[string]int{}, keptRows: map[rowLoc]*keptRow{}}
	for _, f := range plans {
		if f.Action != connectors.ActionDelete && f.Action != connectors.ActionMask && !allDelete {
			continue
		}
		if tg := ds.table.stamps(f.Field); tg != nil {
			e.rewritten[f.Field] = fmt.Sprintf("re-stamped with the time of every UPDATE by trigger %s of table %s; the erasure does not write it (its write would be replaced)", tg.Name, ds.table.Name)
		}
	}
	return e
}

func (e *eraser) run(ctx context.Context) (connectors.EraseResult, error) {
	var res connectors.EraseResult
	for pass := 1; pass <= maxPasses; pass++ {
		st, err := e.pass(ctx)
		if err != nil {
			return res, err
		}
		e.noteWrites(st)
		res.Deleted += st.deleted
		res.Masked += st.masked
		if st.deleted+st.masked == 0 {
			// What is kept is what every pass kept in rows still there,
			// found by this pass or not (see keptRows).
			kept, err := e.keptAtEnd(ctx)
			if err != nil {
				return res, err
			}
			res.Retained = e.retained(kept)
			tombstones := 0
			identityKept, identityLeft := map[string]int{}, map[string]int{}
			for _, k := range kept {
				if k.tombstone {
					tombstones++
				}
				for f := range k.identityKept {
					identityKept[f]++
				}
				for f := range k.identityLeft {
					identityLeft[f]++
				}
			}
			// Verified: a fresh look finds nothing left to do, and no
			// identity the plan erases is still there to find the person
			// by, in any row an earlier pass erased either: once a pass
			// masked the identity a row was found by, the next pass does
			// not find the row, yet a value of the person's it kept in
			// another column is still there. Values kept with a stated
			// reason are reported as retained; a kept identity also fails
			// the verification.
			res.Verified = len(identityKept) == 0 && len(identityLeft) == 0
			var notes []string
			if tombstones > 0 {
				notes = append(notes, fmt.Sprintf("%d record(s) of %s kept without their personal data: rows the plan keeps still reference them", tombstones, e.ds.id))
			}
			for _, field := range slices.Sorted(maps.Keys(identityKept)) {
				notes = append(notes, fmt.Sprintf("the identity column %s.%s still holds the person's value in %d record(s): the column's constraints admit no erased value (see retained)",
					e.ds.id, field, identityKept[field]))
			}
			for _, field := range slices.Sorted(maps.Keys(identityLeft)) {
				if identityKept[field] > 0 {
					continue
				}
				notes = append(notes, fmt.Sprintf("%s.%s still holds a value of the person's identities in %d record(s) the plan erases (see retained)",
					e.ds.id, field, identityLeft[field]))
			}
			res.Note = strings.Join(notes, "; ")
			return res, nil
		}
	}
	if tgs := e.ds.table.updateTriggers(); len(tgs) > 0 {
		// Triggers fire on every UPDATE: a retry would loop the same way.
		return res, connectors.Permanent(fmt.Errorf("erase %s: still finding rows to erase after %d passes: table %s has UPDATE triggers (%s) that may rewrite the fields the erasure writes, or the application is writing them",
			e.ds.id, maxPasses, e.ds.table.Name, triggerNames(tgs)))
	}
	return res, connectors.Retryable(fmt.Errorf("erase %s: still finding rows to erase after %d passes (is the application writing them?)", e.ds.id, maxPasses), 0)
}

// noteWrites ends a pass that wrote: a field written in two passes
// already, in a table whose UPDATE triggers could be writing it (an AFTER
// trigger that updates the row again, which no RETURNING shows), is not
// written again.
func (e *eraser) noteWrites(st *stats) {
	for field, n := range st.written {
		if n == 0 {
			continue
		}
		e.passWrites[field]++
		tgs := e.ds.table.updateTriggers()
		if _, done := e.rewritten[field]; !done && e.passWrites[field] >= 2 && len(tgs) > 0 {
			e.rewritten[field] = fmt.Sprintf("rewritten after every UPDATE, probably by trigger(s) %s of table %s; not written again", triggerNames(tgs), e.ds.table.Name)
		}
	}
}

// rewrite records that field, written with the erasure plan fp, read back
// as v after the UPDATE: a value not in its erased form (the erasure would
// write again) did not stay, and the field is not written again by this
// erasure. It returns why the row keeps v ("" when v is in its erased
// form).
func (e *eraser) rewrite(fp connectors.FieldPlan, v any) (string, error) {
	er, err := e.c.eraseValue(fp, e.ds.table, e.ds.table.Columns[fp.Field], v, e.ids)
	if err != nil || !er.changed {
		return "", err
	}
	if why, done := e.rewritten[fp.Field]; done {
		return why, nil
	}
	why := fmt.Sprintf("the value written does not stay: the column read back %s", describeValue(v))
	if tgs := e.ds.table.rowUpdateTriggers(); len(tgs) > 0 {
		why = fmt.Sprintf("rewritten on every UPDATE by trigger(s) %s of table %s (it read back %s); not written again", triggerNames(tgs), e.ds.table.Name, describeValue(v))
	}
	e.rewritten[fp.Field] = why
	return why, nil
}

// describeValue names a value read back without quoting a person's data:
// its type only.
func describeValue(v any) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("another %T", v)
}

// holdsIdentity reports whether v, a planned field's value, is one of the
// person's identity values (an email compared case-insensitively).
func (e *eraser) holdsIdentity(v any) bool {
	var s string
	switch x := v.(type) {
	case nil:
		return false
	case string:
		s = x
	case int16, int32, int64, [16]byte:
		s = fmt.Sprint(normalize(x, 0))
	default:
		return false
	}
	for _, id := range e.ids {
		if id.Value == s || (id.Type == "email" && strings.EqualFold(id.Value, s)) {
			return true
		}
	}
	return false
}

// keptAtEnd is keptRows without the rows no longer there (deleted by a
// later pass, or changed by the application meanwhile: a changed row the
// predicate still finds was re-recorded by the last pass).
func (e *eraser) keptAtEnd(ctx context.Context) ([]*keptRow, error) {
	locs := slices.Collect(maps.Keys(e.keptRows))
	var out []*keptRow
	for batch := range slices.Chunk(locs, max(e.c.cfg.BatchSize, 1)) {
		oids, tids := locArrays(batch)
		rows, err := e.c.pool.Query(ctx, fmt.Sprintf("SELECT t.tableoid, t.ctid FROM %s AS t WHERE %s", e.ds.ident.Sanitize(), locIn("t", "$1", "$2")), oids, tids)
		if err != nil {
			return nil, err
		}
		there, err := pgx.CollectRows(rows, pgx.RowToStructByPos[rowLoc])
		if err != nil {
			return nil, err
		}
		for _, l := range there {
			out = append(out, e.keptRows[l])
		}
	}
	return out, nil
}

// retained reports the plan's retained fields and the values kept because
// their column could not take the planned change, counted over the rows
// kept (see keptAtEnd).
func (e *eraser) retained(rows []*keptRow) []connectors.Retained {
	retained := map[string]int{}
	kept := map[string]map[string]int{}
	for _, r := range rows {
		for _, f := range r.retained {
			retained[f]++
		}
		for f, why := range r.kept {
			if kept[f] == nil {
				kept[f] = map[string]int{}
			}
			kept[f][why]++
		}
	}
	var out []connectors.Retained
	for _, f := range e.plans {
		if f.Action == connectors.ActionRetain && retained[f.Field] > 0 {
			out = append(out, connectors.Retained{Field: f.Field, Basis: f.Basis, Until: f.Until, Records: retained[f.Field]})
		}
	}
	for _, field := range slices.Sorted(maps.Keys(kept)) {
		for _, why := range slices.Sorted(maps.Keys(kept[field])) {
			out = append(out, connectors.Retained{Field: field, Basis: "kept: " + why, Records: kept[field][why]})
		}
	}
	return out
}

// pass walks the subject's rows once, batch by batch.
func (e *eraser) pass(ctx context.Context) (*stats, error) {
	st := newStats()
	var a args
	pred, err := newReach(e.m, e.c.pool, e.ids, e.c.cfg.EmailCaseSensitive).predicate(ctx, e.ds, "t", &a)
	if err != nil || pred == "" {
		return st, err
	}
	if e.allDelete {
		if err := e.deleteUnreferenced(ctx, pred, a, st); err != nil {
			return nil, triggerError(e.m.schema, e.ds.table, "DELETE", err)
		}
		if len(e.blocking) == 0 {
			// Nothing can block a delete here, so every row of the subject
			// was deleted: listing them again would find none (when this
			// pass deleted nothing, that is the verification).
			return st, nil
		}
	}
	// The rows left are listed first (by the predicate's index) and then
	// handled BatchSize at a time by their table and ctid (rowLoc): a
	// keyset walk in ctid order would let the planner scan the whole table
	// for one person.
	locs, err := e.list(ctx, pred, a)
	if err != nil {
		return nil, err
	}
	for batch := range slices.Chunk(locs, e.c.cfg.BatchSize) {
		if err := e.batch(ctx, pred, a, batch, st); err != nil {
			return nil, err
		}
	}
	return st, nil
}

func (e *eraser) list(ctx context.Context, pred string, a args) ([]rowLoc, error) {
	rows, err := e.c.pool.Query(ctx, fmt.Sprintf("SELECT t.tableoid, t.ctid FROM %s AS t WHERE %s", e.ds.ident.Sanitize(), pred), a...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[rowLoc])
}

// blockers are the conditions under which a row must not be deleted: a row
// outside the deletion references it through a foreign key that would
// refuse the delete (RESTRICT, NO ACTION) or cascade into a mapped dataset's
// rows, which the plan keeps (they would be gone otherwise, children being
// erased first). Cascades into unmapped tables and SET NULL / SET DEFAULT
// are the application's own semantics and are left to the database.
//
// With no batch (""), the conditions do not depend on the set being
// deleted, and a NO ACTION self-reference is left out (rows of one set may
// reference each other: the check waits for the end of the statement).
// With a batch (the placeholders of its oid and ctid arrays, see
// locArrays), that self-reference is added, ignoring rows of the batch.
// RESTRICT checks row by row, so such rows go leaves first, one layer a
// statement.
func (e *eraser) blockers(oids, tids string) []string {
	var out []string
	for _, fk := range e.blocking {
		var on []string
		for i, col := range fk.Columns {
			on = append(on, colRef("c", col)+" = "+colRef("t", fk.RefColumns[i]))
		}
		if isSelfNoAction(fk) {
			if tids == "" {
				continue
			}
			on = append(on, locNotIn("c", oids, tids))
		}
		out = append(out, fmt.Sprintf("NOT EXISTS (SELECT 1 FROM %s AS c WHERE %s)",
			pgx.Identifier{e.m.schema, fk.Table}.Sanitize(), strings.Join(on, " AND ")))
	}
	return out
}

// blockingKeys are the incoming foreign keys that can keep a row from
// being deleted (see blockers).
func blockingKeys(m *model, ds *dataset) []*ForeignKey {
	mapped := map[string]bool{}
	for _, d := range m.datasets {
		mapped[d.table.Name] = true
	}
	var out []*ForeignKey
	for _, fk := range ds.table.Incoming {
		switch {
		case fk.OnDelete == OnDeleteSetNull, fk.OnDelete == OnDeleteSetDefault:
		case fk.OnDelete == OnDeleteCascade && !mapped[fk.Table]:
		default:
			out = append(out, fk)
		}
	}
	return out
}

// isSelfNoAction reports whether fk is a NO ACTION self-reference, whose
// check waits for the end of the statement.
func isSelfNoAction(fk *ForeignKey) bool {
	return fk.Table == fk.RefTable && fk.OnDelete == OnDeleteNoAction
}

// selfNoAction reports whether the table references itself with a NO
// ACTION foreign key.
func (e *eraser) selfNoAction() bool { return slices.ContainsFunc(e.blocking, isSelfNoAction) }

// deleteUnreferenced is the set-based path: delete, BatchSize rows per
// transaction, every row of the subject no kept row references. What it
// leaves is handled row by row.
func (e *eraser) deleteUnreferenced(ctx context.Context, pred string, a args, st *stats) error {
	for {
		var n int64
		done := false
		err := e.c.writeTx(ctx, func(tx pgx.Tx) error {
			b := append(slices.Clone(a), e.c.cfg.BatchSize)
			inner := append([]string{pred}, e.blockers("", "")...)
			choose := fmt.Sprintf("SELECT t.tableoid AS loc_oid, t.ctid AS loc_tid FROM %s AS t WHERE %s LIMIT $%d", e.ds.ident.Sanitize(), strings.Join(inner, " AND "), len(b))
			if e.bulk && !e.selfNoAction() {
				// The bulk path: one set-based statement per batch of
				// subjects, like a hand-written DELETE … = ANY($1).
				conds := append([]string{pred}, e.blockers("", "")...)
				tag, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s AS t WHERE %s", e.ds.ident.Sanitize(), strings.Join(conds, " AND ")), a...)
				n = tag.RowsAffected()
				done = true
				return err
			}
			if !e.selfNoAction() {
				// One statement: the chosen rows are deleted by table and
				// ctid (a TID scan per chosen row). A row changed meanwhile
				// has a new ctid and is left for the next pass.
				tag, err := tx.Exec(ctx, fmt.Sprintf("WITH chosen AS MATERIALIZED (%s) DELETE FROM %s AS t USING chosen WHERE t.ctid = chosen.loc_tid AND t.tableoid = chosen.loc_oid",
					choose, e.ds.ident.Sanitize()), b...)
				n = tag.RowsAffected()
				return err
			}
			// Rows of the set may reference each other (NO ACTION): choose
			// and lock them first, then delete them in one statement that
			// ignores references from inside the set.
			rows, err := tx.Query(ctx, choose+" FOR UPDATE", b...)
			if err != nil {
				return err
			}
			locs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[rowLoc])
			if err != nil || len(locs) == 0 {
				return err
			}
			oids, tids := locArrays(locs)
			conds := append([]string{locIn("t", "$1", "$2")}, e.blockers("$1", "$2")...)
			tag, err := tx.Exec(ctx, fmt.Sprintf("DELETE FROM %s AS t WHERE %s", e.ds.ident.Sanitize(), strings.Join(conds, " AND ")), oids, tids)
			n = tag.RowsAffected()
			return err
		})
		if err != nil {
			return err
		}
		st.deleted += int(n)
		if n == 0 || done {
			return nil
		}
	}
}

// batch handles the rows at locs in one transaction, re-checking they
// are still the subject's: rows the plan deletes that nothing references
// are deleted, the others have their fields erased.
func (e *eraser) batch(ctx context.Context, pred string, a args, locs []rowLoc, st *stats) error {
	return e.c.writeTx(ctx, func(tx pgx.Tx) error {
		oids, tids := locArrays(locs)
		b := append(slices.Clone(a), oids, tids)
		cols := []string{"t.tableoid", "t.ctid"}
		for _, f := range e.plans {
			cols = append(cols, colRef("t", f.Field))
		}
		rows, err := tx.Query(ctx, fmt.Sprintf("SELECT %s FROM %s AS t WHERE %s AND %s FOR UPDATE",
			strings.Join(cols, ", "), e.ds.ident.Sanitize(), locIn("t", fmt.Sprintf("$%d", len(b)-1), fmt.Sprintf("$%d", len(b))), pred), b...)
		if err != nil {
			return err
		}
		type row struct {
			loc  rowLoc
			vals []any
		}
		var got []row
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				rows.Close()
				return err
			}
			got = append(got, row{loc: rowLoc{Table: vals[0].(uint32), TID: vals[1].(pgtype.TID)}, vals: vals[2:]})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		var deletable []rowLoc
		if e.allDelete {
			for _, r := range got {
				deletable = append(deletable, r.loc)
			}
		}
		deleted, err := e.deleteRows(ctx, tx, deletable)
		if err != nil {
			return triggerError(e.m.schema, e.ds.table, "DELETE", err)
		}
		st.deleted += len(deleted)
		batch := &pgx.Batch{}
		for _, r := range got {
			if deleted[r.loc] {
				continue
			}
			if err := e.eraseRow(batch, r.loc, r.vals, st, e.allDelete); err != nil {
				return err
			}
		}
		if batch.Len() > 0 {
			return triggerError(e.m.schema, e.ds.table, "UPDATE", tx.SendBatch(ctx, batch).Close())
		}
		return nil
	})
}

// deleteRows deletes the rows (locked by the caller) that nothing kept
// references, and returns them.
func (e *eraser) deleteRows(ctx context.Context, tx pgx.Tx, locs []rowLoc) (map[rowLoc]bool, error) {
	out := map[rowLoc]bool{}
	if len(locs) == 0 {
		return out, nil
	}
	conds := append([]string{locIn("t", "$1", "$2")}, e.blockers("$1", "$2")...)
	sql := fmt.Sprintf("DELETE FROM %s AS t WHERE %s RETURNING t.tableoid, t.ctid", e.ds.ident.Sanitize(), strings.Join(conds, " AND "))
	for len(locs) > 0 {
		oids, tids := locArrays(locs)
		rows, err := tx.Query(ctx, sql, oids, tids)
		if err != nil {
			return nil, err
		}
		gone, err := pgx.CollectRows(rows, pgx.RowToStructByPos[rowLoc])
		if err != nil || len(gone) == 0 {
			return out, err
		}
		for _, l := range gone {
			out[l] = true
		}
		locs = slices.DeleteFunc(locs, func(l rowLoc) bool { return out[l] })
	}
	return out, nil
}

// eraseRow queues the update of one kept row: deleted and masked fields
// get their erased value, retained ones are counted. A row whose planned
// fields are all in their erased form (or kept) gets no UPDATE, so its
// triggers do not fire again. The UPDATE returns what it wrote: a field
// that does not read back in its erased form (a trigger re-stamped it) is
// not written again (see rewrite) but reported as kept, with the trigger
// named. Whatever is kept is checked against the person's identities: a
// value of theirs left in a field the plan erases fails the verification.
//
// What the row keeps is recorded in keptRows under loc (replacing what an
// earlier pass recorded there), and moved to the row's new location when
// the UPDATE returns it.
func (e *eraser) eraseRow(b *pgx.Batch, loc rowLoc, vals []any, st *stats, tombstone bool) error {
	rec := &keptRow{kept: map[string]string{}, tombstone: tombstone, identityKept: map[string]bool{}, identityLeft: map[string]bool{}}
	e.keptRows[loc] = rec
	var sets []string
	var written []connectors.FieldPlan
	var a args
	for i, f := range e.plans {
		v := vals[i]
		action := f.Action
		if e.allDelete {
			action = connectors.ActionDelete // a tombstone: nothing personal stays
		}
		switch action {
		case connectors.ActionRetain:
			if v != nil {
				rec.retained = append(rec.retained, f.Field)
			}
			continue
		case connectors.ActionDelete, connectors.ActionMask:
		default:
			continue // include, rectify: not part of an erasure
		}
		fp := f
		fp.Action = action
		er, err := e.c.eraseValue(fp, e.ds.table, e.ds.table.Columns[f.Field], v, e.ids)
		if err != nil {
			return err
		}
		if why, ok := e.rewritten[f.Field]; ok && er.changed {
			rec.kept[f.Field] = why
			if e.holdsIdentity(v) {
				rec.identityLeft[f.Field] = true
			}
			continue
		}
		if er.kept != "" {
			rec.kept[f.Field] = er.kept
			switch {
			case er.link:
			case e.ds.isIdentity(f.Field):
				rec.identityKept[f.Field] = true
			case e.holdsIdentity(v):
				rec.identityLeft[f.Field] = true
			}
		}
		if er.changed {
			sets = append(sets, er.set(f.Field, &a))
			written = append(written, fp)
		}
	}
	if len(sets) == 0 {
		return nil
	}
	st.masked++
	var ret []string
	for _, fp := range written {
		st.written[fp.Field]++
		ret = append(ret, quote(fp.Field))
	}
	// The row's new location, last: where keptRows finds it from now on.
	ret = append(ret, "tableoid", "ctid")
	b.Queue(fmt.Sprintf("UPDATE %s SET %s WHERE tableoid = %s AND ctid = %s RETURNING %s", e.ds.ident.Sanitize(), strings.Join(sets, ", "),
		a.add(loc.Table), a.add(loc.TID), strings.Join(ret, ", ")), a...).QueryRow(func(row pgx.Row) error {
		got := make([]any, len(written))
		ptrs := make([]any, len(written), len(written)+2)
		for i := range got {
			ptrs[i] = &got[i]
		}
		var moved rowLoc
		ptrs = append(ptrs, &moved.Table, &moved.TID)
		if err := row.Scan(ptrs...); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				// The row changed meanwhile: the next pass sees it (and
				// records what it keeps) if it is still the subject's.
				delete(e.keptRows, loc)
				return nil
			}
			return err
		}
		delete(e.keptRows, loc)
		e.keptRows[moved] = rec
		for i, fp := range written {
			// A value that did not stay (a trigger put the old one back)
			// is kept in this row, whether or not a later pass finds the
			// row again.
			why, err := e.rewrite(fp, got[i])
			if err != nil {
				return err
			}
			if why != "" {
				rec.kept[fp.Field] = why
				if e.holdsIdentity(got[i]) {
					rec.identityLeft[fp.Field] = true
				}
			}
		}
		return nil
	})
	return nil
}
