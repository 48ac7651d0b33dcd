package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Catalog is what the live database says about one schema: its tables,
// their columns, primary keys and foreign keys. The connector checks the data
// map against it at start and takes every identifier it puts into SQL from
// it; `steward datamap scan` drafts a data map from it.
type Catalog struct {
	Schema string
	Tables map[string]*Table
	// Skipped are the schema's relations that are not tables, by name:
	// "view", "materialized view" or "foreign table" (see relations.go).
	Skipped map[string]string
}

// Table is one table (or partitioned table) of the schema.
type Table struct {
	Name    string
	Columns map[string]*Column
	// Order is the column names in table order.
	Order []string
	// PrimaryKey is the primary key's columns in key order; nil when the
	// table has none.
	PrimaryKey []string
	// Unique lists the table's unique constraints (primary key excluded).
	Unique [][]string
	// ForeignKeys are this table's references to other tables; Incoming are
	// the other tables' (and its own) references to it.
	ForeignKeys []*ForeignKey
	Incoming    []*ForeignKey
	// Partitioned says the table is partitioned; Partitions are its
	// partitions, which are not tables of the catalog. Children are its
	// inheritance children and Parents the tables it inherits from (see
	// relations.go). Indexes are its valid indexes.
	Partitioned bool
	Partitions  []string
	Children    []string
	Parents     []string
	Indexes     []*Index
	// Triggers are its user-defined triggers, in name order (see
	// triggers.go).
	Triggers []*Trigger
}

// Column is one column of a table.
type Column struct {
	Name string
	// Type is the declared type as format_type prints it, e.g.
	// "character varying(255)"; Base is the underlying pg_type name (a
	// domain's base type), e.g. "varchar", "_text" for text[].
	Type string
	Base string
	// Category is pg_type.typcategory: S string, N numeric, D date/time,
	// B boolean, U user-defined (uuid, json are U), A array.
	Category  string
	NotNull   bool
	Default   bool
	Generated bool // a generated column cannot be written
	// MaxLen is the declared length of a varchar or char column, 0 if none.
	MaxLen int

	// What else constrains the values the column takes; an erasure writes
	// only values known to satisfy all of it (see eraseValue).

	// DefaultExpr is the column's DEFAULT expression as pg_get_expr prints
	// it ("'en'::text", "now()"), "" when it has none; DefaultConst says it
	// is a plain constant (see constantDefault), which evaluates to the same
	// value on every row.
	DefaultExpr  string
	DefaultConst bool
	// Enum is the labels of the column's enum type (or of its domain's
	// base type), in their order; IsEnum says the type is an enum.
	Enum   []string
	IsEnum bool
	// Domain is the column's type when it is a domain, "" otherwise;
	// DomainNotNull is the domain's NOT NULL and DomainChecks its CHECK
	// constraints (and those of the domain it is based on).
	Domain        string
	DomainNotNull bool
	DomainChecks  []*Check
	// Checks are the table's CHECK constraints whose expression references
	// the column.
	Checks []*Check
	// Unique says a unique constraint or unique index (the primary key's
	// included) covers the column, alone or with others, in its key or its
	// expressions; NullsNotDistinct that one of them treats nulls as equal.
	Unique           bool
	NullsNotDistinct bool

	// admits is what PostgreSQL said, when the catalog was read, about the
	// neutral values an erasure may write (see Catalog.evaluate).
	admits admits
}

// Check is one CHECK constraint of a table or a domain.
type Check struct {
	Name string
	// Def is the constraint as pg_get_constraintdef prints it, for messages;
	// Expr is its expression alone (pg_get_expr), which PostgreSQL can
	// evaluate.
	Def  string
	Expr string
	// Columns are the table columns the expression references (none for a
	// domain's constraint, which references VALUE).
	Columns []string
}

// admits is what evaluating the column's neutral values in PostgreSQL
// showed: whether null and the constant default pass the column's type
// (its domain's NOT NULL and CHECKs) and the CHECK constraints that
// reference the column alone, and the default's value as the driver reads
// it. A CHECK over several columns cannot be evaluated without the row and
// is judged separately (see nullTolerant).
type admits struct {
	evaluated bool // false: the catalog was read by a querier that cannot evaluate
	null      bool
	dflt      bool
	dfltValue any
	// hash and emailHash: a keyed hash of the column's length, and one
	// shaped like an email address (kh.<hex>@erased.invalid), pass the
	// column's single-column CHECKs and domain. A CHECK that tells hex
	// digits apart is implausible, so a sample value stands for them all.
	hash, emailHash bool
}

// ForeignKey is one foreign-key constraint.
type ForeignKey struct {
	Name       string
	Table      string
	Columns    []string
	RefTable   string
	RefColumns []string
	// OnDelete is the action when the referenced row is deleted.
	OnDelete string
	// OnPartitions: declared on every partition (or inheritance
	// descendant) of Table rather than on Table itself (see relations.go).
	OnPartitions bool
}

// ON DELETE actions, as pg_constraint.confdeltype names them.
const (
	OnDeleteNoAction   = "NO ACTION"
	OnDeleteRestrict   = "RESTRICT"
	OnDeleteCascade    = "CASCADE"
	OnDeleteSetNull    = "SET NULL"
	OnDeleteSetDefault = "SET DEFAULT"
)

var onDelete = map[string]string{"a": OnDeleteNoAction, "r": OnDeleteRestrict, "c": OnDeleteCascade, "n": OnDeleteSetNull, "d": OnDeleteSetDefault}

// Querier is what LoadCatalog needs: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readCatalogConnectTimeout bounds connecting to the database when its DSN
// sets no connect_timeout: an unreachable host should fail in seconds.
const readCatalogConnectTimeout = 5 * time.Second

// ReadCatalog connects to the database at dsn (one connection) and reads
// schema's catalog in one read-only snapshot: what `steward datamap scan`
// drafts a data map from. Errors never show the DSN's password.
func ReadCatalog(ctx context.Context, dsn, schema string) (*Catalog, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx masks the password in its parse errors.
		return nil, fmt.Errorf("--postgres: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = readCatalogConnectTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the database to scan: %w", err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // read-only; nothing to keep
	return LoadCatalog(ctx, tx, schema)
}

// LoadCatalog reads schema's tables, columns and constraints from
// pg_catalog. Foreign keys into other schemas are left out: the connector
// only follows references inside the schema it was given.
func LoadCatalog(ctx context.Context, q Querier, schema string) (*Catalog, error) {
	c := &Catalog{Schema: schema, Tables: map[string]*Table{}}
	if err := c.loadColumns(ctx, q); err != nil {
		return nil, err
	}
	if err := c.loadConstraints(ctx, q); err != nil {
		return nil, err
	}
	if err := c.loadRelations(ctx, q); err != nil {
		return nil, err
	}
	if err := c.loadIndexes(ctx, q); err != nil {
		return nil, err
	}
	if err := c.loadChecks(ctx, q); err != nil {
		return nil, err
	}
	if err := c.loadUnique(ctx, q); err != nil {
		return nil, err
	}
	if err := c.loadTriggers(ctx, q); err != nil {
		return nil, err
	}
	if err := c.evaluate(ctx, q); err != nil {
		return nil, err
	}
	return c, nil
}

// columnsSQL reads every column with its type (a domain's base type
// beside it), nullability, default, length, enum labels and domain
// constraints. A generated column's expression is not a default.
const columnsSQL = `
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       coalesce(bt.typname, t.typname), coalesce(bt.typcategory, t.typcategory)::text,
       a.attnotnull, a.atthasdef, a.attgenerated <> '',
       CASE WHEN coalesce(bt.typname, t.typname) IN ('varchar', 'bpchar') AND a.atttypmod > 4
            THEN a.atttypmod - 4 ELSE 0 END,
       CASE WHEN a.attgenerated = '' THEN coalesce(pg_get_expr(ad.adbin, ad.adrelid), '') ELSE '' END,
       t.typtype = 'e' OR coalesce(bt.typtype = 'e', false),
       ARRAY(SELECT e.enumlabel FROM pg_enum e WHERE e.enumtypid = coalesce(bt.oid, t.oid) ORDER BY e.enumsortorder)::text[],
       CASE WHEN t.typtype = 'd' THEN format_type(t.oid, NULL) ELSE '' END,
       t.typtype = 'd' AND (t.typnotnull OR coalesce(bt.typnotnull, false)),
       ARRAY(SELECT dc.conname FROM pg_constraint dc WHERE t.typtype = 'd' AND dc.contype = 'c' AND dc.contypid IN (t.oid, bt.oid) ORDER BY dc.conname)::text[],
       ARRAY(SELECT pg_get_constraintdef(dc.oid) FROM pg_constraint dc WHERE t.typtype = 'd' AND dc.contype = 'c' AND dc.contypid IN (t.oid, bt.oid) ORDER BY dc.conname)::text[]
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum`

func (c *Catalog) loadColumns(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, columnsSQL, c.Schema)
	if err != nil {
		return fmt.Errorf("postgres: read columns of schema %q: %w", c.Schema, err)
	}
	defer rows.Close()
	for rows.Next() {
		var table string
		var domainCheckNames, domainCheckDefs []string
		col := &Column{}
		if err := rows.Scan(&table, &col.Name, &col.Type, &col.Base, &col.Category, &col.NotNull, &col.Default, &col.Generated, &col.MaxLen,
			&col.DefaultExpr, &col.IsEnum, &col.Enum, &col.Domain, &col.DomainNotNull, &domainCheckNames, &domainCheckDefs); err != nil {
			return fmt.Errorf("postgres: read columns of schema %q: %w", c.Schema, err)
		}
		col.DefaultConst = constantDefault(col.DefaultExpr)
		if !col.IsEnum {
			col.Enum = nil
		}
		for i, name := range domainCheckNames {
			col.DomainChecks = append(col.DomainChecks, &Check{Name: name, Def: domainCheckDefs[i]})
		}
		t := c.Tables[table]
		if t == nil {
			t = &Table{Name: table, Columns: map[string]*Column{}}
			c.Tables[table] = t
		}
		t.Columns[col.Name] = col
		t.Order = append(t.Order, col.Name)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: read columns of schema %q: %w", c.Schema, err)
	}
	return nil
}

// constraintsSQL lists primary keys, unique constraints and foreign keys
// with their columns in key order (unnest WITH ORDINALITY keeps conkey's
// order, which is the key's, not the table's).
const constraintsSQL = `
SELECT con.conname, con.contype::text, c.relname,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i)::text[],
       coalesce(fc.relname, ''),
       coalesce(fn.nspname, ''),
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i)::text[],
       con.confdeltype::text
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE n.nspname = $1 AND con.contype IN ('p', 'u', 'f') AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname, con.conname`

func (c *Catalog) loadConstraints(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, constraintsSQL, c.Schema)
	if err != nil {
		return fmt.Errorf("postgres: read constraints of schema %q: %w", c.Schema, err)
	}
	defer rows.Close()
	for rows.Next() {
		var name, typ, table, refTable, refSchema, del string
		var cols, refCols []string
		if err := rows.Scan(&name, &typ, &table, &cols, &refTable, &refSchema, &refCols, &del); err != nil {
			return fmt.Errorf("postgres: read constraints of schema %q: %w", c.Schema, err)
		}
		t := c.Tables[table]
		if t == nil {
			continue
		}
		switch typ {
		case "p":
			t.PrimaryKey = cols
		case "u":
			t.Unique = append(t.Unique, cols)
		case "f":
			rt := c.Tables[refTable]
			if refSchema != c.Schema || rt == nil {
				continue
			}
			fk := &ForeignKey{Name: name, Table: table, Columns: cols, RefTable: refTable, RefColumns: refCols, OnDelete: onDelete[del]}
			t.ForeignKeys = append(t.ForeignKeys, fk)
			rt.Incoming = append(rt.Incoming, fk)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: read constraints of schema %q: %w", c.Schema, err)
	}
	return nil
}

// checksSQL lists the tables' CHECK constraints with the columns their
// expressions reference.
const checksSQL = `
SELECT c.relname, con.conname, pg_get_constraintdef(con.oid), pg_get_expr(con.conbin, con.conrelid),
       ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = con.conrelid AND a.attnum = ANY(con.conkey) ORDER BY a.attnum)::text[]
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND con.contype = 'c' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname, con.conname`

func (c *Catalog) loadChecks(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, checksSQL, c.Schema)
	if err != nil {
		return fmt.Errorf("postgres: read check constraints of schema %q: %w", c.Schema, err)
	}
	defer rows.Close()
	for rows.Next() {
		var table string
		ck := &Check{}
		if err := rows.Scan(&table, &ck.Name, &ck.Def, &ck.Expr, &ck.Columns); err != nil {
			return fmt.Errorf("postgres: read check constraints of schema %q: %w", c.Schema, err)
		}
		t := c.Tables[table]
		if t == nil {
			continue
		}
		for _, name := range ck.Columns {
			if col := t.Columns[name]; col != nil {
				col.Checks = append(col.Checks, ck)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: read check constraints of schema %q: %w", c.Schema, err)
	}
	return nil
}

// uniqueSQL lists the columns a unique index covers: its key columns
// (INCLUDE columns do not count) and the columns its expressions and
// predicate use (pg_depend). Unique constraints and primary keys have such
// an index. indnullsnotdistinct (PostgreSQL 15) is read through to_jsonb so
// the query also runs on older servers.
const uniqueSQL = `
WITH u AS (
  SELECT i.indrelid, k.attnum, coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false) AS nnd
  FROM pg_index i, unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
  WHERE i.indisunique AND k.attnum > 0 AND k.ord <= i.indnkeyatts
  UNION ALL
  SELECT i.indrelid, d.refobjsubid::int2, coalesce((to_jsonb(i) ->> 'indnullsnotdistinct')::boolean, false)
  FROM pg_index i
  JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid
                  AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid AND d.refobjsubid > 0
  WHERE i.indisunique
)
SELECT c.relname, a.attname, bool_or(u.nnd)
FROM u
JOIN pg_class c ON c.oid = u.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = u.indrelid AND a.attnum = u.attnum
WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
GROUP BY c.relname, a.attname`

func (c *Catalog) loadUnique(ctx context.Context, q Querier) error {
	rows, err := q.Query(ctx, uniqueSQL, c.Schema)
	if err != nil {
		return fmt.Errorf("postgres: read unique indexes of schema %q: %w", c.Schema, err)
	}
	defer rows.Close()
	for rows.Next() {
		var table, name string
		var nnd bool
		if err := rows.Scan(&table, &name, &nnd); err != nil {
			return fmt.Errorf("postgres: read unique indexes of schema %q: %w", c.Schema, err)
		}
		if t := c.Tables[table]; t != nil && t.Columns[name] != nil {
			t.Columns[name].Unique = true
			t.Columns[name].NullsNotDistinct = nnd
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: read unique indexes of schema %q: %w", c.Schema, err)
	}
	return nil
}

// beginner is a querier that can open a (sub)transaction: a pool, a
// connection, or a transaction (a savepoint).
type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// evalChunk bounds the expressions one evaluation query selects (a select
// list holds at most 1,664).
const evalChunk = 500

// probe is one value evaluate asks PostgreSQL about.
type probe struct {
	col  *Column
	kind probeKind
	// sql selects the value cast to the column's type (which applies the
	// domain's constraints: an unused subquery output is never computed,
	// so the cast must be selected itself) and whether it passes the
	// column's CHECKs.
	sql [2]string
}

// evaluate asks PostgreSQL, once per catalog read, whether the neutral
// values an erasure may write into a column pass what constrains it: null
// (for a nullable column) and the constant default. Each is cast to the
// column's type, which applies its domain's NOT NULL and CHECKs, and put
// through every CHECK constraint that references the column alone (the
// constraint's own expression, over a one-row subquery naming the column).
// This decides exactly, from the schema, what a guess from the constraint's
// text could only approximate ("language IN ('uz', 'ru', 'en')" admits the
// default 'en' and null). Only constants recognised by constantDefault are
// evaluated, so nothing here has side effects. A value that fails raises an
// error or yields false: it is not admitted. All probes go in one query;
// when it fails, each probe goes alone, in its own savepoint, so one bad
// value cannot hide the others or abort the caller's transaction.
func (c *Catalog) evaluate(ctx context.Context, q Querier) error {
	b, ok := q.(beginner)
	if !ok {
		return nil // nothing evaluated: neither null under a CHECK nor a default is admitted
	}
	var probes []probe
	for _, tn := range c.TableNames() {
		t := c.Tables[tn]
		for _, name := range t.Order {
			col := t.Columns[name]
			col.admits.evaluated = true
			checks := col.singleChecks()
			if !col.NotNull {
				if len(checks) == 0 && col.Domain == "" {
					col.admits.null = true
				} else {
					probes = append(probes, probe{col: col, kind: probeNull, sql: [2]string{"(NULL)::" + col.Type, passes(col, "NULL", checks)}})
				}
			}
			if col.DefaultConst {
				v := "(" + col.DefaultExpr + ")::" + col.Type
				probes = append(probes, probe{col: col, kind: probeDefault, sql: [2]string{v, passes(col, col.DefaultExpr, checks)}})
			}
			// A text column whose CHECKs (or domain) a keyed hash is not
			// known to pass: try one of the column's length, and one
			// shaped like an email address (CHECK (email LIKE '%@%')).
			if col.textLike() && !col.IsEnum && (len(checks) > 0 || col.Domain != "") {
				for kind, sample := range map[probeKind]string{probeHash: sampleHash(col.MaxLen), probeEmailHash: sampleEmailHash(col.MaxLen)} {
					lit := "'" + sample + "'"
					probes = append(probes, probe{col: col, kind: kind, sql: [2]string{"(" + lit + ")::" + col.Type, passes(col, lit, checks)}})
				}
			}
		}
	}
	for chunk := range slices.Chunk(probes, evalChunk) {
		err := c.runProbes(ctx, b, chunk)
		if err == nil {
			continue
		}
		if !probeRefused(ctx, err) {
			return fmt.Errorf("postgres: evaluate column defaults of schema %q: %w", c.Schema, err)
		}
		for _, p := range chunk {
			if err := c.runProbes(ctx, b, []probe{p}); err != nil && !probeRefused(ctx, err) {
				return fmt.Errorf("postgres: evaluate column defaults of schema %q: %w", c.Schema, err)
			}
		}
	}
	return nil
}

// probeKind is the value a probe evaluates.
type probeKind int

const (
	probeNull probeKind = iota
	probeDefault
	probeHash      // a sample keyed hash
	probeEmailHash // a sample email-shaped keyed hash
)

// passes is the SQL for "value v, cast to col's type, passes checks".
func passes(col *Column, v string, checks []*Check) string {
	conds := []string{"true"}
	for _, ck := range checks {
		conds = append(conds, "("+ck.Expr+") IS NOT FALSE")
	}
	return fmt.Sprintf("(SELECT %s FROM (SELECT (%s)::%s AS %s) AS steward_probe)",
		strings.Join(conds, " AND "), v, col.Type, pgx.Identifier{col.Name}.Sanitize())
}

// runProbes evaluates probes in one query inside a (sub)transaction that
// is rolled back, and records what passed.
func (c *Catalog) runProbes(ctx context.Context, b beginner, probes []probe) error {
	tx, err := b.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only; a failed probe's savepoint goes too
	var sel []string
	for _, p := range probes {
		sel = append(sel, p.sql[:]...)
	}
	rows, err := tx.Query(ctx, "SELECT "+strings.Join(sel, ", "))
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return errors.New("no row")
	}
	vals, err := rows.Values()
	if err != nil {
		return err
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for i, p := range probes {
		v, ok := vals[2*i], vals[2*i+1] == true
		switch p.kind {
		case probeDefault:
			p.col.admits.dflt, p.col.admits.dfltValue = ok && v != nil, v
		case probeNull:
			p.col.admits.null = ok
		case probeHash:
			p.col.admits.hash = ok && v != nil
		case probeEmailHash:
			p.col.admits.emailHash = ok && v != nil
		}
	}
	return nil
}

// probeRefused reports whether a probe failed because PostgreSQL refused
// the value (a domain's constraint, a cast), not because the database or
// the context failed.
func probeRefused(ctx context.Context, err error) bool {
	var pe *pgconn.PgError
	return ctx.Err() == nil && errors.As(err, &pe) && !strings.HasPrefix(pe.Code, "08") && !strings.HasPrefix(pe.Code, "57")
}

// singleChecks are the CHECK constraints that reference only col: those
// PostgreSQL can evaluate for a value of col alone.
func (col *Column) singleChecks() []*Check {
	var out []*Check
	for _, ck := range col.Checks {
		if len(ck.Columns) == 1 {
			out = append(out, ck)
		}
	}
	return out
}

// multiChecks are the CHECK constraints that reference col and other
// columns: whether a value passes depends on the row.
func (col *Column) multiChecks() []*Check {
	var out []*Check
	for _, ck := range col.Checks {
		if len(ck.Columns) > 1 {
			out = append(out, ck)
		}
	}
	return out
}

// constantDefault reports whether expr, a DEFAULT expression as pg_get_expr
// prints it, is a plain constant: one literal, optionally cast once to a
// type name:
//
//	'en'::text   'user'::character varying   0   1.5   '-1'::integer
//	false   '{}'::jsonb   '{}'::text[]   'ok'::mood   '2020-01-01'::date
//
// Anything else is not: function calls (now(), nextval('s'::regclass),
// gen_random_uuid()), SQL value functions (CURRENT_TIMESTAMP, CURRENT_USER),
// operators and parentheses ((1 + 2), ('now'::text)::date), array
// constructors, NULL, COLLATE, escape strings (E'...'). It is deliberately
// conservative: a constant it refuses only loses the default as a neutral
// value. A quoted literal cast once is folded by PostgreSQL when the
// default is stored, so it evaluates the same on every row, with one
// exception it refuses: the date/time words now, today, tomorrow and
// yesterday, which a stored default can only hold unfolded as text, but
// which would name a different moment on every row if cast.
func constantDefault(expr string) bool {
	rest, ok := cutLiteral(expr)
	if !ok {
		return false
	}
	if rest == "" {
		return true
	}
	typ, ok := strings.CutPrefix(rest, "::")
	return ok && typeName(typ)
}

// relativeTime matches the date/time input words whose value depends on
// when they are read.
var relativeTime = regexp.MustCompile(`(?i)\b(now|today|tomorrow|yesterday)\b`)

// numberRe is an SQL numeric constant as pg_get_expr prints it (negative
// numbers are printed quoted and cast, but a sign is harmless).
var numberRe = regexp.MustCompile(`^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?`)

// cutLiteral cuts the literal expr starts with and returns the rest: a
// single-quoted string (a quote doubled inside it), a number, true or false.
func cutLiteral(expr string) (string, bool) {
	switch {
	case strings.HasPrefix(expr, "'"):
		var b strings.Builder
		for i := 1; i < len(expr); i++ {
			if expr[i] != '\'' {
				b.WriteByte(expr[i])
				continue
			}
			if i+1 < len(expr) && expr[i+1] == '\'' {
				b.WriteByte('\'')
				i++
				continue
			}
			if relativeTime.MatchString(b.String()) {
				return "", false
			}
			return expr[i+1:], true
		}
		return "", false // unterminated
	}
	m := numberRe.FindString(expr)
	for _, b := range []string{"true", "false"} {
		if strings.HasPrefix(expr, b) {
			m = b
		}
	}
	if m == "" {
		return "", false
	}
	rest := expr[len(m):]
	return rest, rest == "" || strings.HasPrefix(rest, "::")
}

// multiWordTypes are the SQL type names with spaces format_type prints.
var multiWordTypes = []string{
	"bit varying", "character varying", "double precision",
	"time with time zone", "time without time zone",
	"timestamp with time zone", "timestamp without time zone",
}

var (
	// typeWordRe is one part of a type name: an identifier, or a quoted one.
	typeWordRe = regexp.MustCompile(`^([a-z_][a-z0-9_$]*|"([^"]|"")+")`)
	// typeModRe is a type modifier, "(10)" or "(10,2)", then array brackets.
	typeSuffixRe = regexp.MustCompile(`^(\([0-9]+(,[0-9]+)?\))?(\[\])*$`)
)

// typeName reports whether s is a type name as format_type prints it: a
// possibly schema-qualified name or one of the multi-word names, with an
// optional modifier and array brackets, and nothing after them.
func typeName(s string) bool {
	rest := ""
	matched := false
	for _, m := range multiWordTypes {
		if r, ok := strings.CutPrefix(s, m); ok {
			rest, matched = r, true
			break
		}
	}
	if !matched {
		for part := 0; ; part++ {
			w := typeWordRe.FindString(s)
			if w == "" || part > 1 {
				return false
			}
			s = s[len(w):]
			if !strings.HasPrefix(s, ".") {
				break
			}
			s = s[1:]
		}
		rest = s
	}
	return typeSuffixRe.MatchString(rest)
}

// nullTolerant reports whether a CHECK constraint over several columns is
// known to admit null in any of them, in a row that satisfies it now. Its
// truth is then built only of operators that yield null on a null operand
// and of AND, OR, NOT; by three-valued logic, replacing a value with null
// can turn true into null but never into false, and a CHECK passes on
// null. The constraint's text is refused (not known to admit null) when,
// outside its string literals, it contains anything that treats null
// specially or whose strictness cannot be known from the text: IS (NULL,
// DISTINCT FROM, TRUE...), NULL itself (NULLIF, num_nulls, ISNULL), CASE,
// COALESCE, GREATEST, LEAST, array constructors and row values, or a call
// of any function but a few strict built-ins.
func nullTolerant(def string) bool {
	text := stripLiterals(def)
	if text == "" {
		return false
	}
	upper := strings.ToUpper(text)
	for _, w := range []string{" IS ", "NULL", "CASE", "COALESCE", "GREATEST", "LEAST", "ARRAY", "ROW(", `"(`} {
		if strings.Contains(upper, w) {
			return false
		}
	}
	for _, m := range callRe.FindAllStringSubmatch(text, -1) {
		if !strictFuncs[strings.ToLower(m[1])] {
			return false
		}
	}
	return true
}

// callRe finds function calls as pg_get_constraintdef prints them: a name
// followed directly by "(" (keywords such as ANY and IN are followed by a
// space).
var callRe = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_$]*)"?\(`)

// strictFuncs are built-in functions that return null for a null argument.
var strictFuncs = map[string]bool{
	"length": true, "char_length": true, "character_length": true, "octet_length": true,
	"lower": true, "upper": true, "btrim": true, "ltrim": true, "rtrim": true, "abs": true,
}

// stripLiterals removes the single-quoted string literals (a doubled quote
// inside one is a quote) from an expression; "" when a literal is unterminated.
func stripLiterals(s string) string {
	var b strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case !in && ch == '\'':
			in = true
			b.WriteString("''")
		case in && ch == '\'' && i+1 < len(s) && s[i+1] == '\'':
			i++
		case in && ch == '\'':
			in = false
		case !in:
			b.WriteByte(ch)
		}
	}
	if in {
		return ""
	}
	return b.String()
}

// TableNames returns the tables in name order.
func (c *Catalog) TableNames() []string {
	names := make([]string, 0, len(c.Tables))
	for n := range c.Tables {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// textLike reports whether the column holds text, so masks that write a
// string (fixed, keyed hash, pseudonym) can be stored in it.
func (col *Column) textLike() bool {
	switch col.Base {
	case "text", "varchar", "bpchar", "citext", "name":
		return true
	}
	return false
}

// keyCast is the array type identity and key values are compared as: the
// column's own type, so the comparison can use the column's index. Only
// the types listed can hold identities and keys; the data map check
// refuses others.
func (col *Column) keyCast() (string, bool) {
	switch col.Base {
	case "text", "varchar", "bpchar", "name", "citext":
		return "text[]", true
	case "int2", "int4", "int8":
		return "bigint[]", true
	case "uuid":
		return "uuid[]", true
	case "numeric":
		return "numeric[]", true
	}
	return "", false
}

// ScalarCast is the SQL type a text value is cast to when a rectification
// writes it, for the column types a person's correction can target.
func (col *Column) scalarCast() (string, bool) {
	switch col.Base {
	case "text", "varchar", "bpchar", "name", "citext":
		return "text", true
	case "int2", "int4", "int8":
		return "bigint", true
	case "numeric", "float4", "float8":
		return "numeric", true
	case "bool":
		return "boolean", true
	case "date":
		return "date", true
	case "timestamptz":
		return "timestamptz", true
	case "timestamp":
		return "timestamp", true
	case "uuid":
		return "uuid", true
	}
	return "", false
}

func (t *Table) has(col string) bool { _, ok := t.Columns[col]; return ok }

// inFK reports whether col is one of the columns of an outgoing foreign key:
// such a column can only hold a key of the referenced table or null.
func (t *Table) inFK(col string) *ForeignKey {
	for _, fk := range t.ForeignKeys {
		if slices.Contains(fk.Columns, col) {
			return fk
		}
	}
	return nil
}

// referencedByOthers reports whether col is a referenced column of an
// incoming foreign key.
func (t *Table) referencedByOthers(col string) bool {
	for _, fk := range t.Incoming {
		if slices.Contains(fk.RefColumns, col) {
			return true
		}
	}
	return false
}

// referenced reports whether col is a referenced column of an incoming
// foreign key or part of the primary key: changing it would orphan or
// re-point references.
func (t *Table) referenced(col string) bool {
	if slices.Contains(t.PrimaryKey, col) {
		return true
	}
	for _, fk := range t.Incoming {
		if slices.Contains(fk.RefColumns, col) {
			return true
		}
	}
	return false
}
