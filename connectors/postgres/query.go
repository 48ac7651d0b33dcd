package postgres

import (
	"context"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/identity"
)

// args collects bound parameters; add returns the placeholder.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

func quote(name string) string { return pgx.Identifier{name}.Sanitize() }

func colRef(alias, name string) string { return alias + "." + quote(name) }

// subject is the identities a request knows, by type.
type subject struct {
	byType map[string][]string
	oauth  []connectors.Identity
}

func newSubject(ids []connectors.Identity) subject {
	s := subject{byType: map[string][]string{}}
	// A set, not slices.Contains: the bulk path passes thousands of
	// identities, and a quadratic dedup cost milliseconds per batch.
	seen := make(map[connectors.Identity]bool, len(ids))
	for _, id := range ids {
		if id.Type != "oauth" {
			id.Provider = "" // only an oauth id is qualified by it
		}
		if id.Value == "" || seen[id] {
			continue
		}
		seen[id] = true
		if id.Type == "oauth" {
			s.oauth = append(s.oauth, id)
			continue
		}
		s.byType[id.Type] = append(s.byType[id.Type], id.Value)
	}
	return s
}

// reach finds a subject's rows: a dataset's rows are those whose identity
// columns hold one of the subject's identities, or whose reference columns
// hold a key of a row of the subject in the referenced dataset. Referenced
// keys are read first (materialised), so every query is an index-friendly
// "column = ANY(array)" and a dataset reached several ways is one OR of
// such terms rather than a join the planner may turn into a scan.
type reach struct {
	m           *model
	sub         subject
	q           Querier
	exactEmails bool                // Config.EmailCaseSensitive
	memo        map[string][]string // "dataset.column" -> keys
	visiting    map[string]bool     // datasets on the current path, to stop at cycles
	aliases     int                 // subquery aliases handed out (h1, h2, ...)
}

// newReach starts a reach; exactEmails is Config.EmailCaseSensitive.
func newReach(m *model, q Querier, ids []connectors.Identity, exactEmails bool) *reach {
	return &reach{m: m, sub: newSubject(ids), q: q, exactEmails: exactEmails, memo: map[string][]string{}, visiting: map[string]bool{}}
}

// citextVisible reports whether col's citext type, and with it the
// extension's = operator, is on the session's search_path: format_type
// qualifies a type that is not (ext.citext), and an operator that is not
// visible is not found, so citext = citext would silently become text =
// text. A domain's name says nothing about its base type's schema; it is
// taken as visible.
func citextVisible(col *Column) bool {
	return col.Type != "" && !strings.Contains(col.Type, ".")
}

// comparison is how an identity column is compared with the subject's
// values.
type comparison int

const (
	// compareExact: column = value, served by a plain index on the column.
	compareExact comparison = iota
	// compareCitext: column = value::citext; the column's type ignores
	// case, and its plain index serves the comparison.
	compareCitext
	// compareLower: lower(column) = lower(value), served only by an index on
	// lower(column).
	compareLower
)

// identityComparison decides how col, holding identities of type typ, is
// compared: a column that is not text by its type's own equality (an
// integer or uuid has no case); a citext column case-insensitively, as its
// type says, whatever match says (with lower() when the extension is not
// on the connector's search_path, see citextVisible); any other text
// column as the data map's match says (datamap.MatchExact,
// datamap.MatchCaseInsensitive), and without one an email
// case-insensitively unless exactEmails (Config.EmailCaseSensitive),
// every other type exactly.
//
// Emails because the subject's address is normalised lower-case (package
// identity) while applications store them as typed: an exact comparison
// with "Ann@Example.com" finds nothing, and the request reports no data.
func identityComparison(col *Column, typ, match string, exactEmails bool) comparison {
	switch {
	case !col.textLike():
		return compareExact
	case col.Base == "citext" && citextVisible(col):
		return compareCitext
	case col.Base == "citext":
		return compareLower
	case match == datamap.MatchExact:
		return compareExact
	case match == datamap.MatchCaseInsensitive:
		return compareLower
	case typ == string(identity.Email) && !exactEmails:
		return compareLower
	}
	return compareExact
}

// arrayCast is the array type a column's values are compared as: keyCast,
// except that a citext column is compared as its own type (citext[], or its
// domain), so the comparison ignores case and its index serves it; cast to
// text[] it would compare as text, exactly. col.Type is format_type's name
// for the type, qualified when the session's search_path does not reach
// it.
func arrayCast(col *Column) string {
	if col.Base == "citext" && citextVisible(col) {
		return col.Type + "[]"
	}
	cast, _ := col.keyCast()
	return cast
}

// predicate is the SQL condition over alias for ds's rows of the subject;
// "" when the subject cannot have any.
//
// A row is the subject's when an identity column holds one of their
// identities, or when it is reached along an ownership reference (see
// datamap.Reference.Ownership) from a row of theirs, and then only:
//   - through a reference to their row (orders.customer_id): when every
//     other ownership reference of the row that is set, to another
//     dataset, leads to a row of theirs too (a payment of another
//     customer's rental is not theirs);
//   - through a reference from their row (customers.address_id): when no
//     row but theirs references it (see exclusive).
//
// Shared and relationship references are not followed.
func (r *reach) predicate(ctx context.Context, ds *dataset, alias string, a *args) (string, error) {
	r.visiting[ds.id] = true
	defer delete(r.visiting, ds.id)
	var ors []string
	for _, ic := range ds.identities {
		if term := r.identityTerm(ic, alias, a); term != "" {
			ors = append(ors, term)
		}
	}
	for i, rc := range ds.refs {
		if !rc.owns() || r.visiting[rc.parent] {
			continue
		}
		keys, err := r.keys(ctx, r.m.datasets[rc.parent], rc.parentCol)
		if err != nil {
			return "", err
		}
		if len(keys) == 0 {
			continue
		}
		ands := []string{inKeys(alias, rc.col, keys, a)}
		if rc.up {
			excl, err := r.exclusive(ctx, ds, rc, alias, a)
			if err != nil {
				return "", err
			}
			ands = append(ands, excl...)
		} else {
			for j, o := range ds.refs {
				// Not checked: a reference to the same dataset (a referral's
				// referrer and referee: the map says the row is both
				// people's), and, in a cycle, the other owner.
				if j == i || !o.owns() || o.up || o.parent == rc.parent || r.visiting[o.parent] {
					continue
				}
				okeys, err := r.keys(ctx, r.m.datasets[o.parent], o.parentCol)
				if err != nil {
					return "", err
				}
				c := colRef(alias, o.col.Name)
				if len(okeys) == 0 {
					ands = append(ands, c+" IS NULL")
				} else {
					ands = append(ands, "("+c+" IS NULL OR "+inKeys(alias, o.col, okeys, a)+")")
				}
			}
		}
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	if len(ors) == 0 {
		return "", nil
	}
	return "(" + strings.Join(ors, " OR ") + ")", nil
}

// inKeys is the condition that alias's col holds one of keys.
func inKeys(alias string, col *Column, keys []string, a *args) string {
	return fmt.Sprintf("%s = ANY(%s::text[]::%s)", colRef(alias, col.Name), a.add(keys), arrayCast(col))
}

// holder is a way rows of another table reference ds's rows: table's cols
// hold ds's refCols.
type holder struct {
	table         string
	cols, refCols []string
}

// holders are the ways other rows reference ds's rows: the live foreign
// keys into its table and the data map's references to it.
func (m *model) holders(ds *dataset) []holder {
	var out []holder
	seen := map[string]bool{}
	add := func(h holder) {
		k := h.table + "\x00" + strings.Join(h.cols, ",") + "\x00" + strings.Join(h.refCols, ",")
		if !seen[k] {
			seen[k] = true
			out = append(out, h)
		}
	}
	for _, fk := range ds.table.Incoming {
		add(holder{table: fk.Table, cols: fk.Columns, refCols: fk.RefColumns})
	}
	for _, did := range slices.Sorted(maps.Keys(m.datasets)) {
		x := m.datasets[did]
		for _, rc := range x.refs {
			if rc.parent == ds.id && !rc.up {
				add(holder{table: x.table.Name, cols: []string{rc.col.Name}, refCols: []string{rc.parentCol.Name}})
			}
		}
	}
	for _, rc := range ds.refs {
		if rc.up {
			add(holder{table: m.datasets[rc.parent].table.Name, cols: []string{rc.parentCol.Name}, refCols: []string{rc.col.Name}})
		}
	}
	return out
}

// exclusive is the conditions that alias's row of ds, reached along rc
// from the subject's rows of rc.parent, is referenced by no other row: none
// of another table, none of rc.parent's table but the subject's.
func (r *reach) exclusive(ctx context.Context, ds *dataset, rc refCol, alias string, a *args) ([]string, error) {
	parent := r.m.datasets[rc.parent]
	var out []string
	for _, h := range r.m.holders(ds) {
		r.aliases++
		ha := fmt.Sprintf("h%d", r.aliases)
		var on []string
		for i, c := range h.cols {
			on = append(on, colRef(ha, c)+" = "+colRef(alias, h.refCols[i]))
		}
		if h.table == parent.table.Name {
			theirs, err := r.predicate(ctx, parent, ha, a)
			if err != nil {
				return nil, err
			}
			if theirs != "" {
				on = append(on, "NOT coalesce("+theirs+", false)")
			}
		}
		out = append(out, fmt.Sprintf("NOT EXISTS (SELECT 1 FROM %s AS %s WHERE %s)",
			pgx.Identifier{r.m.schema, h.table}.Sanitize(), ha, strings.Join(on, " AND ")))
	}
	return out, nil
}

func (r *reach) identityTerm(ic identityCol, alias string, a *args) string {
	cmp := identityComparison(ic.col, ic.typ, ic.match, r.exactEmails)
	cast := arrayCast(ic.col)
	col := colRef(alias, ic.col.Name)
	value := func(v string) string {
		if cmp == compareLower {
			// The subject's email is lower-case already; other types
			// (match: case_insensitive) may not be.
			return strings.ToLower(v)
		}
		return v
	}
	if cmp == compareLower {
		col, cast = "lower("+col+")", "text[]"
	}
	if ic.provider != nil {
		var ids, provs []string
		for _, id := range r.sub.oauth {
			if fits(ic.col, id.Value) {
				ids, provs = append(ids, value(id.Value)), append(provs, id.Provider)
			}
		}
		if len(ids) == 0 {
			return ""
		}
		scalar := strings.TrimSuffix(cast, "[]")
		return fmt.Sprintf("(%s, %s) IN (SELECT u.v::%s, u.p FROM unnest(%s::text[], %s::text[]) AS u(v, p))",
			col, colRef(alias, ic.provider.Name), scalar, a.add(ids), a.add(provs))
	}
	var vals []string
	for _, v := range r.sub.byType[ic.typ] {
		if fits(ic.col, v) {
			vals = append(vals, value(v))
		}
	}
	if len(vals) == 0 {
		return ""
	}
	return fmt.Sprintf("%s = ANY(%s::text[]::%s)", col, a.add(vals), cast)
}

// fits reports whether v can be a value of col: a Telegram id is compared
// with a bigint column, an email never is.
func fits(col *Column, v string) bool {
	switch col.Base {
	case "int2", "int4", "int8":
		_, err := strconv.ParseInt(v, 10, 64)
		return err == nil
	case "uuid":
		_, err := uuid.Parse(v)
		return err == nil
	case "numeric":
		_, ok := new(big.Float).SetString(v)
		return ok
	}
	return true
}

// keys returns the values of col in ds's rows of the subject.
func (r *reach) keys(ctx context.Context, ds *dataset, col *Column) ([]string, error) {
	k := ds.id + "." + col.Name
	if v, ok := r.memo[k]; ok {
		return v, nil
	}
	var a args
	pred, err := r.predicate(ctx, ds, "p", &a)
	if err != nil || pred == "" {
		return nil, err
	}
	c := colRef("p", col.Name)
	rows, err := r.q.Query(ctx, fmt.Sprintf("SELECT DISTINCT %s::text FROM %s AS p WHERE %s AND %s IS NOT NULL",
		c, ds.ident.Sanitize(), pred, c), a...)
	if err != nil {
		return nil, fmt.Errorf("keys of %s: %w", k, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("keys of %s: %w", k, err)
	}
	r.memo[k] = keys
	return keys, nil
}

// keyExpr is the SQL for a row's record key: its primary key as text (the
// parts joined by '/'), or, for a table without one, a digest of the row.
func keyExpr(t *Table, alias string) string {
	if len(t.PrimaryKey) == 0 {
		return "'row:' || md5(" + alias + "::text)"
	}
	parts := make([]string, len(t.PrimaryKey))
	for i, c := range t.PrimaryKey {
		parts[i] = colRef(alias, c) + "::text"
	}
	return strings.Join(parts, " || '/' || ")
}

// orderExpr orders rows by primary key (stable keys for the export).
func orderExpr(t *Table, alias string) string {
	if len(t.PrimaryKey) == 0 {
		return alias + ".ctid"
	}
	parts := make([]string, len(t.PrimaryKey))
	for i, c := range t.PrimaryKey {
		parts[i] = colRef(alias, c)
	}
	return strings.Join(parts, ", ")
}

// rowLoc locates one row of a dataset's table for the statements that
// lock, update or delete rows found earlier. A ctid alone does not: a query
// on a partitioned table or an inheritance parent reads several tables, and
// the same ctid names a row in each of them (another person's, as often as
// not). The table's oid beside it does.
type rowLoc struct {
	Table uint32
	TID   pgtype.TID
}

// locArrays splits locs into the two arrays locIn takes.
func locArrays(locs []rowLoc) ([]uint32, []pgtype.TID) {
	oids := make([]uint32, len(locs))
	tids := make([]pgtype.TID, len(locs))
	for i, l := range locs {
		oids[i], tids[i] = l.Table, l.TID
	}
	return oids, tids
}

// locIn is the condition that alias's row is one of the rows whose oids and
// ctids are the arrays at the placeholders oids and tids (see locArrays):
// ctid = ANY(...) lets each table be read by a TID scan, the pair then keeps
// only the rows of the right table.
func locIn(alias, oids, tids string) string {
	return fmt.Sprintf("%[1]s.ctid = ANY(%[3]s::tid[]) AND (%[1]s.tableoid, %[1]s.ctid) IN (SELECT * FROM unnest(%[2]s::oid[], %[3]s::tid[]))", alias, oids, tids)
}

// locNotIn is the condition that alias's row is none of them.
func locNotIn(alias, oids, tids string) string {
	return fmt.Sprintf("(%[1]s.tableoid, %[1]s.ctid) NOT IN (SELECT * FROM unnest(%[2]s::oid[], %[3]s::tid[]))", alias, oids, tids)
}

// review counts ds's rows reached along a reference from the subject's rows
// that are not theirs (see predicate): the records staff review. It reads
// counts only.
func (r *reach) review(ctx context.Context, ds *dataset) ([]connectors.Review, error) {
	var out []connectors.Review
	for _, rc := range ds.refs {
		parent := r.m.datasets[rc.parent]
		keys, err := r.keys(ctx, parent, rc.parentCol)
		if err != nil || len(keys) == 0 {
			if err != nil {
				return nil, err
			}
			continue
		}
		var a args
		conds := []string{inKeys("t", rc.col, keys, &a)}
		theirs, err := r.predicate(ctx, ds, "t", &a)
		if err != nil {
			return nil, err
		}
		if theirs != "" {
			conds = append(conds, "NOT coalesce("+theirs+", false)")
		}
		rv := connectors.Review{Dataset: ds.id}
		var holders []string
		switch {
		case rc.up:
			rv.Reference = fmt.Sprintf("%s.%s -> %s.%s", parent.id, rc.parentCol.Name, ds.id, rc.col.Name)
			rv.Reason = connectors.ReviewHeldByOthers
			// Other rows holding them: every holder's rows but the
			// subject's own rows of parent.
			for _, h := range r.m.holders(ds) {
				r.aliases++
				ha := fmt.Sprintf("h%d", r.aliases)
				var on []string
				for i, c := range h.cols {
					on = append(on, colRef(ha, c)+" = "+colRef("t", h.refCols[i]))
				}
				q := fmt.Sprintf("(SELECT count(*) FROM %s AS %s WHERE %s", pgx.Identifier{r.m.schema, h.table}.Sanitize(), ha, strings.Join(on, " AND "))
				if h.table == parent.table.Name {
					p, err := r.predicate(ctx, parent, ha, &a)
					if err != nil {
						return nil, err
					}
					if p != "" {
						q += " AND NOT coalesce(" + p + ", false)"
					}
				}
				holders = append(holders, q+")")
			}
		default:
			rv.Reference = fmt.Sprintf("%s.%s -> %s.%s", ds.id, rc.col.Name, parent.id, rc.parentCol.Name)
			rv.Reason = connectors.ReviewOtherOwner
			// Each record is held by whoever its other references lead to:
			// count them as one holder a record.
			holders = append(holders, "1")
		}
		switch rc.ownership {
		case datamap.OwnershipShared:
			rv.Reason = connectors.ReviewShared
		case datamap.OwnershipRelationship:
			rv.Reason = connectors.ReviewRelationship
		}
		if len(holders) == 0 {
			holders = []string{"0"}
		}
		rows, err := r.q.Query(ctx, fmt.Sprintf("SELECT count(*)::int, coalesce(sum(%s), 0)::int FROM %s AS t WHERE %s",
			strings.Join(holders, " + "), ds.ident.Sanitize(), strings.Join(conds, " AND ")), a...)
		if err == nil {
			_, err = pgx.ForEachRow(rows, []any{&rv.Records, &rv.Holders}, func() error { return nil })
		}
		if err != nil {
			return nil, fmt.Errorf("review of %s: %w", ds.id, err)
		}
		if rv.Records > 0 {
			out = append(out, rv)
		}
	}
	return out, nil
}

// withReview adds the review items to an erasure's note.
func withReview(note string, review []connectors.Review) string {
	notes := []string{}
	if note != "" {
		notes = append(notes, note)
	}
	for _, rv := range review {
		notes = append(notes, rv.String())
	}
	return strings.Join(notes, "; ")
}
