package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// What the catalog knows beyond tables and columns: partitions and
// inheritance (loadRelations), the relations that are not tables (views,
// materialized views, foreign tables), and indexes (loadIndexes).
//
// Partitioned tables. A partitioned table is one table of the catalog; its
// partitions are not (a query on the partitioned table reads them all, and
// a data map maps the partitioned table). A foreign key declared on the
// partitioned table is its own, as any table's. A foreign key declared
// instead on every leaf partition (same columns, same referenced table and
// columns) constrains every row just the same, so it is attributed to the
// partitioned table too, marked OnPartitions. One missing on some partition
// is not (rows of that partition are unconstrained), but it is still listed
// in the referenced table's Incoming: rows it references cannot be deleted,
// and an erasure must keep them.
//
// Inheritance. An inheritance child is a table of its own (it has its own
// columns, keys and constraints: PostgreSQL inherits none of the parent's
// foreign keys to it), listed in the parent's Children and with Parents of
// its own. A query on the parent reads the children's rows too, so a
// dataset mapped on the parent covers them. As for partitions, a foreign key
// declared on every descendant of a parent that lacks it is attributed to
// the parent (OnPartitions); the parent's own rows, if it has any, are not
// checked by it.

// Index is one valid index of a table, described by its leading key: the
// one that decides whether an equality on a column (or on lower(column))
// can use it.
type Index struct {
	Name string
	// Column is the leading key's column, "" when it is an expression.
	Column string
	// Lower is the column c when the leading key is lower(c).
	Lower string
	// Method is the access method: btree, hash, gin, ...
	Method  string
	Unique  bool
	Partial bool // a partial index serves only queries that imply its predicate
}

// serves reports whether the index can answer an equality on its leading
// key for any row: a btree or hash index without a predicate.
func (ix *Index) serves() bool {
	return !ix.Partial && (ix.Method == "btree" || ix.Method == "hash")
}

// LowerIndex returns the index serving lower(col) = ..., nil if none.
func (t *Table) LowerIndex(col string) *Index {
	for _, ix := range t.Indexes {
		if ix.Lower == col && ix.serves() {
			return ix
		}
	}
	return nil
}

// CreateLowerIndex is the statement that creates the index lower(col) needs.
// CONCURRENTLY does not block the application's writes (it cannot run in a
// transaction block); a partitioned table cannot take it, so its statement
// goes without.
func CreateLowerIndex(schema string, t *Table, col string) string {
	conc := " CONCURRENTLY"
	if t.Partitioned {
		conc = ""
	}
	return fmt.Sprintf("CREATE INDEX%s ON %s (lower(%s));", conc, pgx.Identifier{schema, t.Name}.Sanitize(), quote(col))
}

// partitionsSQL lists the schema's partitioned tables, each with its
// partitions (none: one row with an empty name).
const partitionsSQL = `
SELECT r.relname, coalesce(pc.relname, ''), coalesce(pn.nspname, '')
FROM pg_class r
JOIN pg_namespace n ON n.oid = r.relnamespace
LEFT JOIN LATERAL pg_partition_tree(r.oid) t ON t.relid <> r.oid
LEFT JOIN pg_class pc ON pc.oid = t.relid
LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
WHERE n.nspname = $1 AND r.relkind = 'p' AND NOT r.relispartition
ORDER BY r.relname, pn.nspname, pc.relname`

// descendantFKsSQL lists the members of the schema's partitioned tables
// (their leaf partitions) and inheritance parents (all their descendants),
// each with every foreign key declared on (or cloned onto) it, or once with
// none. Columns are named, not numbered: a partition's attribute numbers
// may differ from its parent's.
const descendantFKsSQL = `
WITH RECURSIVE inh(root, child) AS (
    SELECT i.inhparent, i.inhrelid FROM pg_inherits i
    JOIN pg_class p ON p.oid = i.inhparent
    JOIN pg_namespace n ON n.oid = p.relnamespace
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE n.nspname = $1 AND p.relkind = 'r' AND c.relkind = 'r' AND NOT c.relispartition
    UNION
    SELECT inh.root, i.inhrelid FROM inh JOIN pg_inherits i ON i.inhparent = inh.child
), members(root, member) AS (
    SELECT r.oid, t.relid FROM pg_class r
    JOIN pg_namespace n ON n.oid = r.relnamespace
    CROSS JOIN LATERAL pg_partition_tree(r.oid) t
    WHERE n.nspname = $1 AND r.relkind = 'p' AND NOT r.relispartition AND t.isleaf AND t.relid <> r.oid
    UNION ALL
    SELECT root, child FROM inh
)
SELECT rc.relname, mc.oid::bigint, coalesce(con.conname, ''),
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i)::text[],
       coalesce(fc.relname, ''), coalesce(fn.nspname, ''),
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i)::text[],
       coalesce(con.confdeltype::text, '')
FROM members m
JOIN pg_class rc ON rc.oid = m.root
JOIN pg_class mc ON mc.oid = m.member
LEFT JOIN pg_constraint con ON con.conrelid = m.member AND con.contype = 'f'
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
ORDER BY rc.relname, mc.relname, con.conname`

const inheritsSQL = `
SELECT p.relname, c.relname
FROM pg_inherits i
JOIN pg_class p ON p.oid = i.inhparent
JOIN pg_namespace pn ON pn.oid = p.relnamespace
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_namespace cn ON cn.oid = c.relnamespace
WHERE pn.nspname = $1 AND cn.nspname = $1 AND p.relkind = 'r' AND c.relkind = 'r' AND NOT c.relispartition
ORDER BY p.relname, c.relname`

const otherRelationsSQL = `
SELECT c.relname, c.relkind::text
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relkind IN ('v', 'm', 'f')
ORDER BY c.relname`

var relationKinds = map[string]string{"v": "view", "m": "materialized view", "f": "foreign table"}

// loadRelations reads partitions, inheritance, the foreign keys declared
// on every partition or descendant, and the relations that are not tables.
func (c *Catalog) loadRelations(ctx context.Context, q Querier) error {
	fail := func(err error) error {
		return fmt.Errorf("postgres: read partitions and inheritance of schema %q: %w", c.Schema, err)
	}
	if err := forRows(ctx, q, partitionsSQL, c.Schema, func(rows pgx.Rows) error {
		var root, part, schema string
		if err := rows.Scan(&root, &part, &schema); err != nil {
			return err
		}
		t := c.Tables[root]
		if t == nil {
			return nil
		}
		t.Partitioned = true
		if part == "" {
			return nil
		}
		if schema != c.Schema {
			part = schema + "." + part
		}
		t.Partitions = append(t.Partitions, part)
		return nil
	}); err != nil {
		return fail(err)
	}
	if err := forRows(ctx, q, inheritsSQL, c.Schema, func(rows pgx.Rows) error {
		var parent, child string
		if err := rows.Scan(&parent, &child); err != nil {
			return err
		}
		if p, ch := c.Tables[parent], c.Tables[child]; p != nil && ch != nil {
			p.Children = append(p.Children, child)
			ch.Parents = append(ch.Parents, parent)
		}
		return nil
	}); err != nil {
		return fail(err)
	}
	// Foreign keys of the members (leaf partitions, inheritance
	// descendants), grouped by what they constrain.
	type fkKey struct{ root, cols, ref, refCols string }
	type seen struct {
		fk      *ForeignKey
		members map[int64]bool
		dels    []string
	}
	members := map[string]map[int64]bool{}
	found := map[fkKey]*seen{}
	var order []fkKey
	if err := forRows(ctx, q, descendantFKsSQL, c.Schema, func(rows pgx.Rows) error {
		var root, name, refTable, refSchema, del string
		var member int64
		var cols, refCols []string
		if err := rows.Scan(&root, &member, &name, &cols, &refTable, &refSchema, &refCols, &del); err != nil {
			return err
		}
		if members[root] == nil {
			members[root] = map[int64]bool{}
		}
		members[root][member] = true
		if name == "" {
			return nil // a member without foreign keys
		}
		if refSchema != c.Schema || c.Tables[refTable] == nil || c.Tables[root] == nil {
			return nil // into another schema, or into a partition: not a table of the catalog
		}
		k := fkKey{root, strings.Join(cols, "\x00"), refTable, strings.Join(refCols, "\x00")}
		s := found[k]
		if s == nil {
			s = &seen{fk: &ForeignKey{Name: name, Table: root, Columns: cols, RefTable: refTable, RefColumns: refCols, OnPartitions: true}, members: map[int64]bool{}}
			found[k] = s
			order = append(order, k)
		}
		s.members[member] = true
		s.dels = append(s.dels, onDelete[del])
		return nil
	}); err != nil {
		return fail(err)
	}
	for _, k := range order {
		s, t := found[k], c.Tables[k.root]
		if hasFK(t, s.fk) {
			continue
		}
		s.fk.OnDelete = strictestOnDelete(s.dels)
		if len(s.members) == len(members[k.root]) {
			t.ForeignKeys = append(t.ForeignKeys, s.fk)
		}
		// Declared on some members only, the key is not the table's, but
		// it still keeps referenced rows: an erasure must not delete them.
		rt := c.Tables[s.fk.RefTable]
		rt.Incoming = append(rt.Incoming, s.fk)
	}
	return forRows(ctx, q, otherRelationsSQL, c.Schema, func(rows pgx.Rows) error {
		var name, kind string
		if err := rows.Scan(&name, &kind); err != nil {
			return err
		}
		if c.Skipped == nil {
			c.Skipped = map[string]string{}
		}
		c.Skipped[name] = relationKinds[kind]
		return nil
	})
}

// hasFK reports whether t already has a foreign key like fk (the one
// declared on the partitioned table, whose clones every partition has).
func hasFK(t *Table, fk *ForeignKey) bool {
	return slices.ContainsFunc(t.ForeignKeys, func(o *ForeignKey) bool {
		return o.RefTable == fk.RefTable && slices.Equal(o.Columns, fk.Columns) && slices.Equal(o.RefColumns, fk.RefColumns)
	})
}

// strictestOnDelete is the action an erasure must assume when partitions
// disagree: the one most likely to keep a referenced row (RESTRICT, then
// NO ACTION, then CASCADE, which may reach mapped rows).
func strictestOnDelete(dels []string) string {
	for _, d := range []string{OnDeleteRestrict, OnDeleteNoAction, OnDeleteCascade, OnDeleteSetDefault, OnDeleteSetNull} {
		if slices.Contains(dels, d) {
			return d
		}
	}
	return OnDeleteNoAction
}

// indexesSQL lists the valid indexes of the schema's tables by their
// leading key: a column, or lower(column) as pg_get_indexdef prints it
// (lower(email), or lower((email)::text) for a varchar column).
const indexesSQL = `
SELECT c.relname, i.relname, am.amname, x.indisunique, x.indpred IS NOT NULL,
       coalesce(a.attname, ''),
       coalesce((SELECT la.attname FROM pg_attribute la
                 WHERE x.indkey[0] = 0 AND la.attrelid = c.oid AND la.attnum > 0 AND NOT la.attisdropped
                   AND pg_get_indexdef(x.indexrelid, 1, false) IN
                       (format('lower(%s)', quote_ident(la.attname)), format('lower((%s)::text)', quote_ident(la.attname)))
                 LIMIT 1), '')
FROM pg_index x
JOIN pg_class c ON c.oid = x.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_am am ON am.oid = i.relam
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.indkey[0] AND x.indkey[0] <> 0
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND x.indisvalid
ORDER BY c.relname, i.relname`

// loadIndexes reads the tables' valid indexes.
func (c *Catalog) loadIndexes(ctx context.Context, q Querier) error {
	err := forRows(ctx, q, indexesSQL, c.Schema, func(rows pgx.Rows) error {
		var table string
		ix := &Index{}
		if err := rows.Scan(&table, &ix.Name, &ix.Method, &ix.Unique, &ix.Partial, &ix.Column, &ix.Lower); err != nil {
			return err
		}
		if t := c.Tables[table]; t != nil {
			t.Indexes = append(t.Indexes, ix)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: read indexes of schema %q: %w", c.Schema, err)
	}
	return nil
}

// forRows runs sql with schema and calls fn for each row.
func forRows(ctx context.Context, q Querier, sql, schema string, fn func(pgx.Rows) error) error {
	rows, err := q.Query(ctx, sql, schema)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
