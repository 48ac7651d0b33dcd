package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/steward-privacy/steward/connectors"
)

// Triggers. An erasure's UPDATE and DELETE fire the application's
// triggers, and what a trigger writes cannot be known from the schema (a
// plpgsql function may write any column of the row, or other tables). The
// connector reads them (loadTriggers) to explain what it sees, not to
// predict it:
//   - a BEFORE UPDATE trigger that re-stamps a planned field (last_update =
//     now(), a counter) is seen when the value an UPDATE returns is not in
//     its erased form: the field is then reported as kept, with the
//     triggers named, and never written again in that erasure, so the
//     erasure is not looped on it (see eraser.rewritten);
//   - a trigger that copies the row into another mapped table (an audit
//     history) makes that table's dataset wait for this one (EraseAfter),
//     and the copies an erasure made are reported (see eraser.copies);
//   - a trigger that refuses the erasure's write fails it permanently,
//     naming the table and the trigger (triggerError);
//   - the scan draft lists each table's UPDATE and DELETE triggers for a
//     person to review, and the connector logs them at start.

// Trigger is one user-defined (not internal) trigger of a table.
type Trigger struct {
	Name string
	// Timing is BEFORE, AFTER or INSTEAD OF; Events the events it fires
	// on (INSERT, UPDATE, DELETE, TRUNCATE), in that order; Row says FOR
	// EACH ROW (else FOR EACH STATEMENT).
	Timing string
	Events []string
	Row    bool
	// Columns are the columns of UPDATE OF, none when it fires on any
	// update.
	Columns []string
	// Function is the trigger function, schema-qualified; Source its body
	// (pg_proc.prosrc), "" for a C function.
	Function string
	Source   string
}

// On reports whether the trigger fires on event.
func (tg *Trigger) On(event string) bool { return slices.Contains(tg.Events, event) }

// Describe is the trigger in words: "stamp (BEFORE UPDATE, FOR EACH ROW,
// function app.stamp())".
func (tg *Trigger) Describe() string {
	each := "FOR EACH STATEMENT"
	if tg.Row {
		each = "FOR EACH ROW"
	}
	ev := strings.Join(tg.Events, " OR ")
	if len(tg.Columns) > 0 {
		ev = strings.Replace(ev, "UPDATE", "UPDATE OF "+strings.Join(tg.Columns, ", "), 1)
	}
	return fmt.Sprintf("%s (%s %s, %s, function %s())", tg.Name, tg.Timing, ev, each, tg.Function)
}

// Mentions returns the names among names the trigger function's source
// mentions as a word (case-insensitively): what it might read or write.
// Only a hint: the source is not parsed, and a dynamic statement may name
// anything.
func (tg *Trigger) Mentions(names []string) []string {
	var out []string
	src := strings.ToLower(tg.Source)
	for _, n := range names {
		re, err := regexp.Compile(`(^|[^a-z0-9_$])"?` + regexp.QuoteMeta(strings.ToLower(n)) + `"?($|[^a-z0-9_$])`)
		if err == nil && re.MatchString(src) {
			out = append(out, n)
		}
	}
	return out
}

// triggersSQL lists the user-defined triggers of the schema's tables
// (partitions excluded: a trigger on a partitioned table is cloned onto its
// partitions), disabled ones left out. tgtype's bits: 1 row, 2 before, 4
// insert, 8 delete, 16 update, 32 truncate, 64 instead.
const triggersSQL = `
SELECT c.relname, tg.tgname, tg.tgtype::int,
       ARRAY(SELECT a.attname FROM unnest(tg.tgattr::int2[]) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = tg.tgrelid AND a.attnum = k.n ORDER BY k.i)::text[],
       pn.nspname || '.' || p.proname, coalesce(CASE WHEN l.lanname = 'c' THEN '' ELSE p.prosrc END, '')
FROM pg_trigger tg
JOIN pg_class c ON c.oid = tg.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc p ON p.oid = tg.tgfoid
JOIN pg_namespace pn ON pn.oid = p.pronamespace
JOIN pg_language l ON l.oid = p.prolang
WHERE n.nspname = $1 AND NOT tg.tgisinternal AND tg.tgenabled <> 'D'
  AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname, tg.tgname`

func (c *Catalog) loadTriggers(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, triggersSQL, c.Schema)
	if err != nil {
		return fmt.Errorf("postgres: read triggers of schema %q: %w", c.Schema, err)
	}
	defer rows.Close()
	for rows.Next() {
		var table string
		var typ int
		tg := &Trigger{}
		if err := rows.Scan(&table, &tg.Name, &typ, &tg.Columns, &tg.Function, &tg.Source); err != nil {
			return fmt.Errorf("postgres: read triggers of schema %q: %w", c.Schema, err)
		}
		tg.Row = typ&1 != 0
		switch {
		case typ&64 != 0:
			tg.Timing = "INSTEAD OF"
		case typ&2 != 0:
			tg.Timing = "BEFORE"
		default:
			tg.Timing = "AFTER"
		}
		for _, ev := range []struct {
			bit  int
			name string
		}{{4, "INSERT"}, {16, "UPDATE"}, {8, "DELETE"}, {32, "TRUNCATE"}} {
			if typ&ev.bit != 0 {
				tg.Events = append(tg.Events, ev.name)
			}
		}
		if t := c.Tables[table]; t != nil {
			t.Triggers = append(t.Triggers, tg)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: read triggers of schema %q: %w", c.Schema, err)
	}
	return nil
}

// writeTriggers are the table's triggers an erasure fires: those on UPDATE
// or DELETE.
func (t *Table) writeTriggers() []*Trigger {
	var out []*Trigger
	for _, tg := range t.Triggers {
		if tg.On("UPDATE") || tg.On("DELETE") {
			out = append(out, tg)
		}
	}
	return out
}

// rowUpdateTriggers are the triggers that can change the row an UPDATE
// writes: BEFORE UPDATE FOR EACH ROW (an AFTER trigger can only change it
// with another UPDATE, which the erasure sees in its next pass).
func (t *Table) rowUpdateTriggers() []*Trigger {
	var out []*Trigger
	for _, tg := range t.Triggers {
		if tg.On("UPDATE") && tg.Row && tg.Timing == "BEFORE" {
			out = append(out, tg)
		}
	}
	return out
}

// updateTriggers are the table's triggers on UPDATE, any timing.
func (t *Table) updateTriggers() []*Trigger {
	var out []*Trigger
	for _, tg := range t.Triggers {
		if tg.On("UPDATE") {
			out = append(out, tg)
		}
	}
	return out
}

func triggerNames(tgs []*Trigger) string {
	var out []string
	for _, tg := range tgs {
		out = append(out, tg.Name)
	}
	return strings.Join(out, ", ")
}

// triggerTargets are the other mapped datasets the triggers an erasure of
// ds fires may write into, by dataset id, each with the triggers whose
// source names the dataset's table (a hint: see Trigger.Mentions).
func (m *model) triggerTargets(ds *dataset) map[string][]*Trigger {
	out := map[string][]*Trigger{}
	for _, tg := range ds.table.writeTriggers() {
		for _, did := range slices.Sorted(maps.Keys(m.datasets)) {
			other := m.datasets[did]
			if other == ds || other.table == ds.table {
				continue
			}
			if len(tg.Mentions([]string{other.table.Name})) > 0 {
				out[did] = append(out[did], tg)
			}
		}
	}
	return out
}

// triggerAfter are the datasets whose erasure must come before dataset's
// because their triggers may copy rows into dataset's table (an audit
// history): erased before them, the table would receive the copies the
// erasure itself makes.
func (m *model) triggerAfter(dataset string) []string {
	var out []string
	for _, did := range slices.Sorted(maps.Keys(m.datasets)) {
		if did == dataset {
			continue
		}
		if _, ok := m.triggerTargets(m.datasets[did])[dataset]; ok {
			out = append(out, did)
		}
	}
	return out
}

// triggerReport is one mapped table with triggers an erasure fires, for
// the start-up log.
type triggerReport struct {
	dataset, table string
	triggers       []string
	mentions       []string // the mapped fields their sources mention
}

// writeTriggerReports lists the mapped tables with UPDATE or DELETE
// triggers, in dataset order.
func (m *model) writeTriggerReports() []triggerReport {
	var out []triggerReport
	for _, did := range slices.Sorted(maps.Keys(m.datasets)) {
		ds := m.datasets[did]
		tgs := ds.table.writeTriggers()
		if len(tgs) == 0 {
			continue
		}
		r := triggerReport{dataset: did, table: ds.table.Name}
		fields := slices.Sorted(maps.Keys(ds.fields))
		seen := map[string]bool{}
		for _, tg := range tgs {
			r.triggers = append(r.triggers, tg.Describe())
			for _, f := range tg.Mentions(fields) {
				if !seen[f] {
					seen[f] = true
					r.mentions = append(r.mentions, f)
				}
			}
		}
		slices.Sort(r.mentions)
		out = append(out, r)
	}
	return out
}

// whereFunctionRe finds the function a PL/pgSQL error came from in the
// error's context ("PL/pgSQL function app.refuse() line 3 at RAISE").
var whereFunctionRe = regexp.MustCompile(`PL/pgSQL function ([^\s(]+)\(`)

// triggerError turns an error a trigger raised while the erasure wrote
// table t (op: UPDATE or DELETE) into a permanent error naming the table
// and the trigger: the same write would be refused on every retry. Other
// errors, and the retryable ones (a lock wait, a serialization failure),
// are returned as they are.
func triggerError(schema string, t *Table, op string, err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	fm := whereFunctionRe.FindAllStringSubmatch(pe.Where, -1)
	if len(fm) == 0 || retryableCode(pe.Code) {
		return err
	}
	// The outermost function is the last in the context: the trigger the
	// erasure's statement fired (the error may come from a function it
	// called, or a trigger on another table it wrote).
	fn := strings.ReplaceAll(fm[len(fm)-1][1], `"`, "")
	var tgs []*Trigger
	for _, tg := range t.Triggers {
		if tg.Function == fn || strings.TrimPrefix(tg.Function, schema+".") == fn {
			tgs = append(tgs, tg)
		}
	}
	who := fmt.Sprintf("a trigger function %s() fired by it", fn)
	if len(tgs) > 0 {
		var ds []string
		for _, tg := range tgs {
			ds = append(ds, "trigger "+tg.Describe())
		}
		who = strings.Join(ds, " or ")
	}
	return connectors.Permanent(fmt.Errorf("the erasure's %s of table %s.%s was refused by %s: %w; retrying cannot succeed: change the trigger to let the erasure through, or the plan for the fields it guards",
		op, schema, t.Name, who, err))
}

// retryableCode: the SQLSTATEs classify retries.
func retryableCode(code string) bool {
	return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "53") || strings.HasPrefix(code, "57") ||
		code == "40001" || code == "40P01" || code == "55P03" || code == "55006"
}

// copyCounts counts the person's rows in each mapped dataset the triggers
// an erasure of e's table fires may write into (see triggerTargets); nil
// when there is none.
func (e *eraser) copyCounts(ctx context.Context) (map[string]int, error) {
	targets := e.m.triggerTargets(e.ds)
	if len(targets) == 0 {
		return nil, nil
	}
	out := map[string]int{}
	r := newReach(e.m, e.c.pool, e.ids, e.c.cfg.EmailCaseSensitive)
	for _, did := range slices.Sorted(maps.Keys(targets)) {
		ds := e.m.datasets[did]
		var a args
		pred, err := r.predicate(ctx, ds, "t", &a)
		if err != nil {
			return nil, err
		}
		if pred == "" {
			continue
		}
		var n int
		if err := e.c.pool.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s AS t WHERE %s", ds.ident.Sanitize(), pred), a...).Scan(&n); err != nil {
			return nil, err
		}
		out[did] = n
	}
	return out, nil
}

// copyNotes says which mapped datasets gained rows of the person while the
// erasure wrote, and by which triggers: copies of what was erased (an
// audit history). Their own erasure task waits for this one (EraseAfter
// lists it), and erases them.
func (e *eraser) copyNotes(before, after map[string]int) []string {
	var notes []string
	targets := e.m.triggerTargets(e.ds)
	for _, did := range slices.Sorted(maps.Keys(after)) {
		if n := after[did] - before[did]; n > 0 {
			notes = append(notes, fmt.Sprintf("trigger(s) %s of table %s copied %d record(s) of the person into table %s (dataset %s) while the erasure wrote: that dataset's own erasure, which waits for this one, erases them",
				triggerNames(targets[did]), e.ds.table.Name, n, e.m.datasets[did].table.Name, did))
		}
	}
	return notes
}

// stampRe matches, in a trigger function's source (lower-cased), an
// assignment of the current time to NEW.<column>: %s is the column.
const stampRe = `(^|[^a-z0-9_$])new\.("?)%s("?)\s*:?=\s*(now\(\)|current_timestamp|clock_timestamp\(\)|statement_timestamp\(\)|transaction_timestamp\(\)|localtimestamp|current_date)\s*;`

// stamps returns the BEFORE UPDATE row trigger that sets date/time column
// col to the current time on every UPDATE (NEW.col := now()), nil if none:
// whatever an erasure writes there is replaced by the time of its own
// UPDATE, so the erasure leaves it to the trigger instead of writing it
// (and firing the trigger) again. Only a plain assignment of the time
// counts: a trigger that derives the value from the row's (NEW.name :=
// trim(NEW.name)) could keep personal data, and is left to the check of
// what an UPDATE reads back (eraser.rewrite).
func (t *Table) stamps(col string) *Trigger {
	c := t.Columns[col]
	if c == nil || c.Category != "D" {
		return nil
	}
	re, err := regexp.Compile(fmt.Sprintf(stampRe, regexp.QuoteMeta(strings.ToLower(col))))
	if err != nil {
		return nil
	}
	for _, tg := range t.rowUpdateTriggers() {
		if len(tg.Columns) == 0 && re.MatchString(strings.ToLower(tg.Source)) {
			return tg
		}
	}
	return nil
}
