package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Catalog is what the live database says about one schema: its tables,
// their columns, primary keys and foreign keys. The connector checks the data
// map against it at start and takes every identifier it puts into SQL from
// it; `steward datamap scan` drafts a data map from it.
type Catalog struct {
	Schema string
	Tables map[string]*Table
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
	return c, nil
}

const columnsSQL = `
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
       coalesce(bt.typname, t.typname), coalesce(bt.typcategory, t.typcategory)::text,
       a.attnotnull, a.atthasdef, a.attgenerated <> '',
       CASE WHEN coalesce(bt.typname, t.typname) IN ('varchar', 'bpchar') AND a.atttypmod > 4
            THEN a.atttypmod - 4 ELSE 0 END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
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
		col := &Column{}
		if err := rows.Scan(&table, &col.Name, &col.Type, &col.Base, &col.Category, &col.NotNull, &col.Default, &col.Generated, &col.MaxLen); err != nil {
			return fmt.Errorf("postgres: read columns of schema %q: %w", c.Schema, err)
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
