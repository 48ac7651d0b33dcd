package postgres

import (
	"context"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/connectors"
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
	m        *model
	sub      subject
	q        Querier
	ci       bool                // emails compared case-insensitively
	memo     map[string][]string // "dataset.column" -> keys
	visiting map[string]bool     // datasets on the current path, to stop at cycles
}

func newReach(m *model, q Querier, ids []connectors.Identity, ci bool) *reach {
	return &reach{m: m, sub: newSubject(ids), q: q, ci: ci, memo: map[string][]string{}, visiting: map[string]bool{}}
}

// predicate is the SQL condition over alias for ds's rows of the subject;
// "" when the subject cannot have any.
func (r *reach) predicate(ctx context.Context, ds *dataset, alias string, a *args) (string, error) {
	r.visiting[ds.id] = true
	defer delete(r.visiting, ds.id)
	var ors []string
	for _, ic := range ds.identities {
		if term := r.identityTerm(ic, alias, a); term != "" {
			ors = append(ors, term)
		}
	}
	for _, rc := range ds.refs {
		if r.visiting[rc.parent] {
			continue
		}
		keys, err := r.keys(ctx, r.m.datasets[rc.parent], rc.parentCol)
		if err != nil {
			return "", err
		}
		if len(keys) == 0 {
			continue
		}
		cast, _ := rc.col.keyCast()
		ors = append(ors, fmt.Sprintf("%s = ANY(%s::text[]::%s)", colRef(alias, rc.col.Name), a.add(keys), cast))
	}
	if len(ors) == 0 {
		return "", nil
	}
	return "(" + strings.Join(ors, " OR ") + ")", nil
}

func (r *reach) identityTerm(ic identityCol, alias string, a *args) string {
	cast, _ := ic.col.keyCast()
	if ic.provider != nil {
		var ids, provs []string
		for _, id := range r.sub.oauth {
			if fits(ic.col, id.Value) {
				ids, provs = append(ids, id.Value), append(provs, id.Provider)
			}
		}
		if len(ids) == 0 {
			return ""
		}
		scalar := strings.TrimSuffix(cast, "[]")
		return fmt.Sprintf("(%s, %s) IN (SELECT u.v::%s, u.p FROM unnest(%s::text[], %s::text[]) AS u(v, p))",
			colRef(alias, ic.col.Name), colRef(alias, ic.provider.Name), scalar, a.add(ids), a.add(provs))
	}
	var vals []string
	for _, v := range r.sub.byType[ic.typ] {
		if fits(ic.col, v) {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return ""
	}
	col := colRef(alias, ic.col.Name)
	if r.ci && ic.typ == "email" && ic.col.textLike() {
		col = "lower(" + col + ")"
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
