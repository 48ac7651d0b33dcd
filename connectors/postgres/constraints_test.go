package postgres

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/db/dbtest"
)

// shapesDDL is what the decision table's tables share: an enum, domains
// and a table to reference.
const shapesDDL = `
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN code AS text CHECK (VALUE ~ '^[A-Z]{2}$');
CREATE DOMAIN nncode AS text NOT NULL CHECK (VALUE ~ '^[A-Z]{2}$');
CREATE DOMAIN label AS text;
CREATE TABLE parent (id bigint PRIMARY KEY);
INSERT INTO parent VALUES (1), (2);`

// shapeCase is one column shape: table t_<name> has one row, and the
// erasure plans field c of it.
type shapeCase struct {
	name string
	cols string // the table's columns and constraints
	// extra runs after the table is created (t is its name).
	extra string
	// insert is "columns) VALUES (values" for the row; c's value alone
	// when it has no ")".
	insert string
	plan   connectors.FieldPlan
	// want is c::text after the erasure: "NULL" for null, "kh:N" for a
	// keyed hash of N characters. Empty when the value is kept: kept is
	// then the reason, exactly.
	want       string
	kept       string
	unlinkable bool
	// naive: the plan's own mask, written as is, is refused by PostgreSQL
	// (what the erasure avoids).
	naive bool
}

func planMask(strategy, value string) connectors.FieldPlan {
	return connectors.FieldPlan{Field: "c", Category: "user", Action: connectors.ActionMask, Strategy: strategy, Value: value}
}

var planDelete = connectors.FieldPlan{Field: "c", Category: "user", Action: connectors.ActionDelete}

var shapeCases = []shapeCase{
	// CHECK constraints: the mask is not known to pass; the constant
	// default, then null, then keep.
	{name: "check_default", cols: "c text NOT NULL DEFAULT 'en' CHECK (c IN ('uz', 'ru', 'en'))", insert: "'ru'",
		plan: planMask(connectors.StrategyKeyedHash, ""), want: "en", naive: true},
	{name: "check_default_delete", cols: "c text NOT NULL DEFAULT 'en' CHECK (c IN ('uz', 'ru', 'en'))", insert: "'ru'",
		plan: planDelete, want: "en"},
	{name: "check_nullable", cols: "c text CHECK (c IN ('a', 'b'))", insert: "'a'",
		plan: planMask(connectors.StrategyKeyedHash, ""), want: "NULL", naive: true},
	{name: "check_fixed", cols: "c text CHECK (c IN ('a', 'b'))", insert: "'a'",
		plan: planMask(connectors.StrategyFixed, "[redacted]"), want: "NULL", naive: true},
	{name: "check_delete", cols: "c text CHECK (c IN ('a', 'b'))", insert: "'a'", plan: planDelete, want: "NULL"},
	{name: "check_no_default", cols: "c text NOT NULL CHECK (c IN ('a', 'b'))", insert: "'a'",
		plan: planMask(connectors.StrategyKeyedHash, ""), naive: true,
		kept: "CHECK constraint t_check_no_default_c_check admits no masked value; the column has no default; NOT NULL column of type text"},
	{name: "check_nonconstant_default", cols: "c text NOT NULL DEFAULT current_user CHECK (length(c) < 64)", insert: "'x'",
		plan: planMask(connectors.StrategyPseudonym, ""),
		kept: "CHECK constraint t_check_nonconstant_default_c_check admits no masked value; the column's default CURRENT_USER is not a constant; NOT NULL column of type text"},
	{name: "check_default_refused", cols: "c text NOT NULL DEFAULT 'zz' CHECK (c IN ('a', 'b'))", insert: "'a'",
		plan: planMask(connectors.StrategyKeyedHash, ""), naive: true,
		kept: "CHECK constraint t_check_default_refused_c_check admits no masked value; the default 'zz'::text does not pass the column's constraints; NOT NULL column of type text"},
	// PostgreSQL says a keyed hash passes this CHECK (it only refuses
	// null and ''): the mask is written.
	{name: "check_refuses_null", cols: "c text CHECK (c IS NOT NULL AND c <> '')", insert: "'x'",
		plan: planMask(connectors.StrategyKeyedHash, ""), want: "kh:67"},
	{name: "check_refuses_null_and_hash", cols: "c text CHECK (c IS NOT NULL AND c <> '' AND c NOT LIKE 'kh%')", insert: "'x'",
		plan: planMask(connectors.StrategyKeyedHash, ""),
		kept: "CHECK constraint t_check_refuses_null_and_hash_c_check admits no masked value; the column has no default; CHECK constraint t_check_refuses_null_and_hash_c_check (or the type text) refuses null"},
	// An email column whose CHECK wants an address: a keyed hash shaped
	// like one (kh.<hex>@erased.invalid), which PostgreSQL said passes.
	{name: "check_email_shape", cols: "c text NOT NULL UNIQUE CHECK (c LIKE '%_@_%')", insert: "'ann@example.com'",
		plan: planDelete, want: "kh.@", naive: true},
	{name: "check_email_shape_varchar", cols: "c varchar(40) NOT NULL CHECK (position('@' in c) > 1)", insert: "'ann@example.com'",
		plan: planMask(connectors.StrategyKeyedHash, ""), want: "kh.@40"},

	// Enums: text is no label, but a label is, and so is the default.
	{name: "enum_default", cols: "c mood NOT NULL DEFAULT 'ok'", insert: "'sad'",
		plan: planMask(connectors.StrategyKeyedHash, ""), want: "ok", naive: true},
	{name: "enum_nullable", cols: "c mood", insert: "'sad'", plan: planMask(connectors.StrategyKeyedHash, ""), want: "NULL", naive: true},
	{name: "enum_label", cols: "c mood NOT NULL", insert: "'sad'", plan: planMask(connectors.StrategyFixed, "ok"), want: "ok"},
	{name: "enum_no_default", cols: "c mood NOT NULL", insert: "'sad'", plan: planMask(connectors.StrategyKeyedHash, ""), naive: true,
		kept: "NOT NULL column of type shapes.mood; the column has no default"},

	// Domains: their CHECKs and NOT NULL are the column's.
	{name: "domain_default", cols: "c code NOT NULL DEFAULT 'XX'", insert: "'UZ'",
		plan: planMask(connectors.StrategyKeyedHash, ""), want: "XX", naive: true},
	{name: "domain_nullable", cols: "c code", insert: "'UZ'", plan: planMask(connectors.StrategyKeyedHash, ""), want: "NULL", naive: true},
	{name: "domain_not_null", cols: "c nncode", insert: "'UZ'", plan: planMask(connectors.StrategyKeyedHash, ""), naive: true,
		kept: "CHECK constraint nncode_check of domain shapes.nncode admits no masked value; the column has no default; the domain shapes.nncode is NOT NULL"},
	{name: "domain_plain", cols: "c label NOT NULL", insert: "'ann'", plan: planMask(connectors.StrategyKeyedHash, ""), want: "kh:67"},

	// Length limits.
	{name: "varchar_hash", cols: "c varchar(40) NOT NULL", insert: "'ann@example.com'", plan: planMask(connectors.StrategyKeyedHash, ""), want: "kh:40"},
	{name: "varchar_short", cols: "c varchar(5)", insert: "'ann'", plan: planMask(connectors.StrategyKeyedHash, ""), want: "NULL", naive: true},
	{name: "varchar_short_default", cols: "c varchar(5) NOT NULL DEFAULT 'x'", insert: "'ann'",
		plan: planMask(connectors.StrategyKeyedHash, ""), want: "x", naive: true},
	{name: "varchar_fixed_too_long", cols: "c varchar(8)", insert: "'ann'", plan: planMask(connectors.StrategyFixed, "[redacted]"), want: "NULL", naive: true},
	{name: "varchar_fixed_fits", cols: "c varchar(20) NOT NULL", insert: "'ann'", plan: planMask(connectors.StrategyFixed, "[redacted]"), want: "[redacted]"},
	{name: "varchar_pseudonym", cols: "c varchar(10)", insert: "'ann'", plan: planMask(connectors.StrategyPseudonym, ""), want: "NULL", naive: true},
	{name: "varchar_short_not_null", cols: "c varchar(5) NOT NULL", insert: "'ann'", plan: planDelete,
		kept: "NOT NULL column of type character varying(5); the column has no default; a masked value of 11 characters exceeds the column's limit of 5"},

	// NOT NULL: a constant default is a neutral value.
	{name: "notnull_int_default", cols: "c integer NOT NULL DEFAULT 0", insert: "42", plan: planDelete, want: "0"},
	{name: "notnull_int", cols: "c integer NOT NULL", insert: "42", plan: planDelete,
		kept: "NOT NULL column of type integer; the column has no default"},
	{name: "notnull_now", cols: "c timestamptz NOT NULL DEFAULT now()", insert: "'2024-05-01 10:00+00'", plan: planDelete,
		kept: "NOT NULL column of type timestamp with time zone; the column's default now() is not a constant"},
	{name: "notnull_bool", cols: "c boolean NOT NULL DEFAULT false", insert: "true", plan: planDelete, want: "false"},
	{name: "notnull_jsonb", cols: "c jsonb NOT NULL DEFAULT '{}'", insert: `'{"a": 1}'`, plan: planDelete, want: "{}"},
	{name: "notnull_array", cols: "c text[] NOT NULL DEFAULT '{}'", insert: "'{a,b}'", plan: planDelete, want: "{}"},
	{name: "notnull_text_default", cols: "c text NOT NULL DEFAULT 'user'", insert: "'admin'", plan: planDelete, want: "user"},
	{name: "notnull_text", cols: "c text NOT NULL", insert: "'Ann'", plan: planDelete, want: "kh:67"},
	{name: "notnull_negative_default", cols: "c smallint NOT NULL DEFAULT -1", insert: "5", plan: planDelete, want: "-1"},
	{name: "notnull_numeric_scale", cols: "c numeric(10,2) NOT NULL DEFAULT 0", insert: "12.5", plan: planDelete, want: "0.00"},
	{name: "notnull_char_padded", cols: "c char(3) NOT NULL DEFAULT 'a' CHECK (c <> 'zzz')", insert: "'bc'",
		plan: planMask(connectors.StrategyFixed, "x"), want: "a"}, // char(n)::text drops the padding

	// Unique: neither a default nor a fixed value (nor one person's
	// pseudonym) may repeat; a keyed hash is per value.
	{name: "unique_fixed", cols: "c text NOT NULL DEFAULT 'x' UNIQUE", insert: "'ann'", plan: planMask(connectors.StrategyFixed, "[redacted]"), want: "kh:67"},
	{name: "unique_delete", cols: "c text NOT NULL DEFAULT 'x' UNIQUE", insert: "'ann'", plan: planDelete, want: "kh:67"},
	{name: "unique_int", cols: "c integer NOT NULL DEFAULT 0 UNIQUE", insert: "7", plan: planDelete,
		kept: "NOT NULL column of type integer; the default 0 would repeat in the unique column"},
	{name: "unique_pseudonym", cols: "c text UNIQUE", insert: "'ann'", plan: planMask(connectors.StrategyPseudonym, ""), want: "kh:67"},
	{name: "unique_nulls_not_distinct", cols: "c text UNIQUE NULLS NOT DISTINCT", insert: "'ann'", plan: planDelete, want: "kh:67"},
	{name: "unique_index", cols: "c text NOT NULL DEFAULT 'x'", extra: "CREATE UNIQUE INDEX ON t (lower(c))", insert: "'ann'",
		plan: planMask(connectors.StrategyFixed, "[redacted]"), want: "kh:67"},
	{name: "unique_truncate", cols: "c date UNIQUE", insert: "'2024-05-01'", plan: planMask(connectors.StrategyTruncateDate, ""), want: "NULL"},

	// Keys, references and generated columns.
	{name: "primary_key", cols: "c text PRIMARY KEY", insert: "'ann'", plan: planDelete, kept: "primary key of the record"},
	{name: "generated", cols: "src text, c text GENERATED ALWAYS AS (upper(src)) STORED", insert: "src) VALUES ('ann'",
		plan: planMask(connectors.StrategyKeyedHash, ""), kept: "generated column"},
	{name: "fk_nullable", cols: "c bigint REFERENCES parent (id)", insert: "1", plan: planDelete, want: "NULL"},
	{name: "fk_not_null", cols: "c bigint NOT NULL REFERENCES parent (id)", insert: "1", plan: planDelete, unlinkable: true,
		kept: "NOT NULL reference to parent (foreign key t_fk_not_null_c_fkey), which cannot be emptied"},
	{name: "fk_mask", cols: "c bigint REFERENCES parent (id)", insert: "1", plan: planMask(connectors.StrategyKeyedHash, ""),
		kept: "reference to parent (foreign key t_fk_mask_c_fkey); the referenced record keeps no personal data"},
	{name: "fk_check", cols: "c bigint REFERENCES parent (id), d bigint REFERENCES parent (id), CONSTRAINT owner CHECK (c IS NOT NULL OR d IS NOT NULL)",
		insert: "1", plan: planDelete, unlinkable: true, naive: true,
		kept: "reference to parent (foreign key t_fk_check_c_fkey), which cannot be emptied: CHECK constraint owner may refuse null (CHECK (((c IS NOT NULL) OR (d IS NOT NULL))))"},

	// CHECKs over several columns depend on the row: null passes one
	// built of strict operators; a default is not known to pass.
	{name: "multi_null", cols: "starts timestamptz NOT NULL, c timestamptz, CHECK (c > starts)",
		insert: "starts, c) VALUES ('2024-01-01', '2024-02-01'", plan: planDelete, want: "NULL"},
	{name: "multi_default", cols: "a integer NOT NULL DEFAULT 0, c integer NOT NULL DEFAULT 0, CONSTRAINT differ CHECK (c <> a)",
		insert: "a, c) VALUES (0, 5", plan: planDelete,
		kept: "NOT NULL column of type integer; CHECK constraint differ over several columns may refuse the default 0"},

	// Truncating a date.
	{name: "truncate", cols: "c timestamptz NOT NULL", insert: "'2024-05-01 10:11:12+00'", plan: planMask(connectors.StrategyTruncateDate, ""),
		want: "2024-05-01 00:00:00+00"},
	{name: "truncate_check", cols: "c timestamptz NOT NULL DEFAULT now() CHECK (c > '2024-05-01 06:00+00')", insert: "'2024-05-01 10:00+00'",
		plan: planMask(connectors.StrategyTruncateDate, ""), naive: true,
		kept: "CHECK constraint t_truncate_check_c_check admits no truncated date; the column's default now() is not a constant; NOT NULL column of type timestamp with time zone"},
	{name: "truncate_check_nullable", cols: "c date CHECK (c > '2000-01-01')", insert: "'2024-05-01'",
		plan: planMask(connectors.StrategyTruncateDate, ""), want: "NULL"},

	// Nothing constrains the mask.
	{name: "fixed", cols: "c text", insert: "'ann'", plan: planMask(connectors.StrategyFixed, "[redacted]"), want: "[redacted]"},
	{name: "pseudonym", cols: "c text NOT NULL", insert: "'ann'", plan: planMask(connectors.StrategyPseudonym, ""), want: "psn:"},
}

// newShapes creates every case's table, one row each, in schema shapes.
func newShapes(t *testing.T) (*pgxpool.Pool, *Catalog) {
	t.Helper()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	ddl := []string{"BEGIN", "CREATE SCHEMA shapes", "SET LOCAL search_path TO shapes", shapesDDL}
	for _, tc := range shapeCases {
		table := "t_" + tc.name
		ddl = append(ddl, "CREATE TABLE "+table+" ("+tc.cols+")")
		if tc.extra != "" {
			ddl = append(ddl, strings.ReplaceAll(tc.extra, " t ", " "+table+" "))
		}
		ins := tc.insert
		if !strings.Contains(ins, ")") {
			ins = "c) VALUES (" + ins
		}
		ddl = append(ddl, "INSERT INTO "+table+" ("+ins+")")
	}
	ddl = append(ddl, "COMMIT")
	if _, err := pool.Exec(ctx, strings.Join(ddl, ";\n")); err != nil {
		t.Fatalf("create the shapes: %v", err)
	}
	cat, err := LoadCatalog(ctx, pool, "shapes")
	if err != nil {
		t.Fatal(err)
	}
	return pool, cat
}

// cValue reads c of table's row as the erasure reads it, and as text.
func cValue(t *testing.T, pool *pgxpool.Pool, table string) (any, string) {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT c, coalesce(c::text, 'NULL') FROM shapes."+table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("%s has no row (%v)", table, rows.Err())
	}
	vals, err := rows.Values()
	if err != nil {
		t.Fatal(err)
	}
	return vals[0], vals[1].(string)
}

// TestEraseValueShapes: for each column shape, the value the erasure
// decides on, or the reason it keeps the value; the decided UPDATE then
// succeeds against the real table, and a second erasure changes nothing.
// Where the plan's own mask would be refused (naive), PostgreSQL is shown
// to refuse it.
func TestEraseValueShapes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, cat := newShapes(t)
	c := &Connector{cfg: Config{HashKey: []byte("0123456789abcdef0123456789abcdef")}}
	ids := []connectors.Identity{{Type: "user", Value: "1"}}
	for _, tc := range shapeCases {
		t.Run(tc.name, func(t *testing.T) {
			table := "t_" + tc.name
			tbl := cat.Tables[table]
			col := tbl.Columns["c"]
			v, before := cValue(t, pool, table)
			er, err := c.eraseValue(tc.plan, tbl, col, v, ids)
			if err != nil {
				t.Fatal(err)
			}
			// The decision is the column's, not the value's (a sweep
			// probes it with a stand-in, which truncate_date refuses).
			if probe, err := c.eraseValue(tc.plan, tbl, col, "probe", ids); err == nil && (probe.kept != er.kept || probe.unlinkable != er.unlinkable) {
				t.Errorf("a stand-in value gets kept %q unlinkable %v, the row's kept %q unlinkable %v", probe.kept, probe.unlinkable, er.kept, er.unlinkable)
			}
			if tc.naive {
				naive, _, err := c.maskValue(tc.plan, col, v, ids)
				if tc.plan.Action == connectors.ActionDelete || err != nil {
					naive = nil
				}
				if err := tryUpdate(ctx, pool, table, "c = $1", naive); err == nil {
					t.Errorf("the plan's own mask %v was accepted; the case shows nothing", naive)
				}
			}
			if tc.kept != "" {
				if er.kept != tc.kept || er.changed {
					t.Fatalf("kept %q, changed %v (value %v); want kept %q", er.kept, er.changed, er.value, tc.kept)
				}
				if er.unlinkable != tc.unlinkable {
					t.Errorf("unlinkable %v, want %v", er.unlinkable, tc.unlinkable)
				}
				return
			}
			if er.kept != "" || !er.changed {
				t.Fatalf("kept %q, changed %v; want %s written", er.kept, er.changed, tc.want)
			}
			var a args
			set := er.set("c", &a)
			if _, err := pool.Exec(ctx, "UPDATE shapes."+table+" SET "+set, a...); err != nil {
				t.Fatalf("UPDATE SET %s (%v): %v", set, er.value, err)
			}
			v2, after := cValue(t, pool, table)
			switch {
			case strings.HasPrefix(tc.want, "kh:"):
				n, _ := strconv.Atoi(strings.TrimPrefix(tc.want, "kh:"))
				if after != c.keyedHash(before, col.MaxLen) || len(after) != n {
					t.Errorf("wrote %q, want the keyed hash of %q in %d characters", after, before, n)
				}
			case strings.HasPrefix(tc.want, "kh.@"):
				n := 0
				if rest := strings.TrimPrefix(tc.want, "kh.@"); rest != "" {
					n, _ = strconv.Atoi(rest)
				}
				if after != c.emailHash(before, col.MaxLen) || !isEmailHash(after) || (n > 0 && len(after) != n) {
					t.Errorf("wrote %q, want the email-shaped keyed hash of %q (%d characters)", after, before, n)
				}
			case tc.want == "psn:":
				if after != c.pseudonym(ids) {
					t.Errorf("wrote %q, want the pseudonym %q", after, c.pseudonym(ids))
				}
			case after != tc.want:
				t.Errorf("wrote %q, want %q", after, tc.want)
			}
			again, err := c.eraseValue(tc.plan, tbl, col, v2, ids)
			if err != nil || again.changed || again.kept != "" {
				t.Errorf("a second erasure: changed %v, kept %q, %v; want nothing to do", again.changed, again.kept, err)
			}
		})
	}
}

// tryUpdate runs an UPDATE of table's row in a transaction it rolls back.
func tryUpdate(ctx context.Context, pool *pgxpool.Pool, table, set string, args ...any) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // always rolled back
	_, err = tx.Exec(ctx, "UPDATE shapes."+table+" SET "+set, args...)
	var pe *pgconn.PgError
	if err != nil && !errors.As(err, &pe) {
		panic(err)
	}
	return err
}

// TestCatalogConstraints: what the catalog reads about a column's
// constraints, and what evaluating its neutral values showed.
func TestCatalogConstraints(t *testing.T) {
	t.Parallel()
	_, cat := newShapes(t)
	col := func(table string) *Column { return cat.Tables["t_"+table].Columns["c"] }

	lang := col("check_default")
	if len(lang.Checks) != 1 || lang.Checks[0].Name != "t_check_default_c_check" ||
		lang.Checks[0].Def != "CHECK ((c = ANY (ARRAY['uz'::text, 'ru'::text, 'en'::text])))" || !slices.Equal(lang.Checks[0].Columns, []string{"c"}) {
		t.Errorf("checks %+v", lang.Checks[0])
	}
	if lang.DefaultExpr != "'en'::text" || !lang.DefaultConst || !lang.admits.dflt || lang.admits.dfltValue != "en" {
		t.Errorf("default %q const %v admits %+v", lang.DefaultExpr, lang.DefaultConst, lang.admits)
	}
	if m := col("enum_default"); !m.IsEnum || !slices.Equal(m.Enum, []string{"sad", "ok", "happy"}) || m.Type != "shapes.mood" {
		t.Errorf("enum %v %v %q", m.IsEnum, m.Enum, m.Type)
	}
	if d := col("domain_not_null"); d.Domain != "shapes.nncode" || !d.DomainNotNull || len(d.DomainChecks) != 1 || d.Base != "text" || d.admits.null {
		t.Errorf("domain %q not null %v checks %v base %q admits %+v", d.Domain, d.DomainNotNull, d.DomainChecks, d.Base, d.admits)
	}
	if d := col("domain_nullable"); !d.admits.null {
		t.Error("a domain whose CHECK passes null: null not admitted")
	}
	if d := col("check_refuses_null"); d.admits.null {
		t.Error("CHECK (c IS NOT NULL AND c <> '') admits null")
	}
	if d := col("check_default_refused"); !d.DefaultConst || d.admits.dflt {
		t.Errorf("a default its CHECK refuses: const %v admitted %v", d.DefaultConst, d.admits.dflt)
	}
	if d := col("notnull_now"); d.DefaultExpr != "now()" || d.DefaultConst {
		t.Errorf("now(): %q const %v", d.DefaultExpr, d.DefaultConst)
	}
	if g := col("generated"); g.DefaultExpr != "" || !g.Generated {
		t.Errorf("generated: default %q", g.DefaultExpr)
	}
	for name, want := range map[string][2]bool{
		"unique_fixed": {true, false}, "unique_nulls_not_distinct": {true, true}, "unique_index": {true, false},
		"primary_key": {true, false}, "check_default": {false, false}, "fk_nullable": {false, false},
	} {
		if c := col(name); c.Unique != want[0] || c.NullsNotDistinct != want[1] {
			t.Errorf("%s: unique %v nulls not distinct %v, want %v", name, c.Unique, c.NullsNotDistinct, want)
		}
	}
	if m := col("multi_default"); len(m.multiChecks()) != 1 || len(m.singleChecks()) != 0 || !slices.Equal(m.Checks[0].Columns, []string{"a", "c"}) {
		t.Errorf("multi-column check %+v", m.Checks)
	}
}

// TestEvaluateInTransaction: the probes run inside the caller's read-only
// transaction (ReadCatalog's) in savepoints, so a default that fails its
// domain does not abort it.
func TestEvaluateInTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	if _, err := pool.Exec(ctx, `CREATE SCHEMA ev; CREATE DOMAIN ev.code AS text CHECK (VALUE ~ '^[A-Z]{2}$');
		CREATE TABLE ev.t (a ev.code NOT NULL DEFAULT 'bad', b ev.code NOT NULL DEFAULT 'OK', c text DEFAULT 'x' CHECK (c <> 'x'))`); err != nil {
		t.Fatal(err)
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	cat, err := LoadCatalog(ctx, tx, "ev")
	if err != nil {
		t.Fatal(err)
	}
	cols := cat.Tables["t"].Columns
	if cols["a"].admits.dflt || !cols["b"].admits.dflt || cols["b"].admits.dfltValue != "OK" || cols["c"].admits.dflt || !cols["c"].admits.null {
		t.Errorf("a %+v, b %+v, c %+v", cols["a"].admits, cols["b"].admits, cols["c"].admits)
	}
	var one int
	if err := tx.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Errorf("the transaction is unusable after the probes: %v", err)
	}
}

// nonConstants are DEFAULT expressions (as pg_get_expr prints them, or
// could) that are not constants.
var nonConstants = []string{
	"now()", "CURRENT_TIMESTAMP", "CURRENT_USER", "CURRENT_DATE", "LOCALTIMESTAMP", "nextval('t_j_seq'::regclass)",
	"gen_random_uuid()", "(1 + 2)", "('now'::text)::date", "'now'::text::date", "ARRAY['a'::text]", "NULL::text", "NULL",
	"'now'::timestamp with time zone", "'today'::date", "'tomorrow'::date", "'Yesterday'::timestamp without time zone",
	"' now '::timestamp with time zone", "'x'::text || now()", "'x'::text COLLATE \"C\"", "E'a\\nb'::text", "-(1)",
	"'1'::integer + 1", "(0)::bigint", "random()", "'a'::text, now()", "'a'::text; DROP TABLE t", "true OR false",
	"'2020-01-01'::date + 1", "statement_timestamp()", "clock_timestamp()", "txid_current()", "'a'::", "'a'::text()",
	"1::", "::text", "'a'::text[", "'unterminated::text", "timeofday()", "1 + 1", "'{}'::jsonb || '{}'::jsonb",
}

// constants are DEFAULT expressions that are.
var constants = []string{
	"'en'::text", "'user'::character varying", "0", "1.5", "-1", "'-1'::integer", "false", "true", "'{}'::jsonb", "'{}'::text[]",
	"'ok'::mood", "'ok'::shapes.mood", "'2020-01-01'::date", "'it''s'::text", "'101'::\"bit\"", "'x'::\"char\"",
	"'NaN'::real", "'1 day'::interval", "'9223372036854775807'::bigint", "'0'::numeric(10,2)", "'{}'::integer[][]",
	"'2020-01-01 00:00:00+00'::timestamp with time zone", "'unknown'::text", "1e10", "'x'::\"My Type\"",
}

func TestConstantDefault(t *testing.T) {
	for _, s := range nonConstants {
		if constantDefault(s) {
			t.Errorf("constantDefault(%q) = true", s)
		}
	}
	for _, s := range constants {
		if !constantDefault(s) {
			t.Errorf("constantDefault(%q) = false", s)
		}
	}
}

// constantOracle is constantDefault's language written as one regular
// expression, independently: a literal, optionally cast once.
var constantOracle = regexp.MustCompile(`^(?:'((?:[^']|'')*)'|-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false)` +
	`(?:::(?:bit varying|character varying|double precision|time with time zone|time without time zone|` +
	`timestamp with time zone|timestamp without time zone|` +
	`(?:[a-z_][a-z0-9_$]*|"(?:[^"]|"")+")(?:\.(?:[a-z_][a-z0-9_$]*|"(?:[^"]|"")+"))?)` +
	`(?:\([0-9]+(?:,[0-9]+)?\))?(?:\[\])*)?$`)

// FuzzConstantDefault: the recogniser never panics, accepts exactly the
// oracle's language (less the relative date/time words), none of the known
// non-constant forms, and nothing with a call, an operator or a second
// cast after it.
func FuzzConstantDefault(f *testing.F) {
	for _, s := range append(slices.Clone(constants), nonConstants...) {
		f.Add(s)
	}
	for _, tc := range shapeCases {
		if i := strings.Index(tc.cols, "DEFAULT "); i >= 0 {
			f.Add(strings.Fields(tc.cols[i+len("DEFAULT "):])[0])
		}
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 256 {
			t.Skip("no default is that long; long inputs only slow minimisation down")
		}
		got := constantDefault(s)
		m := constantOracle.FindStringSubmatch(s)
		want := m != nil && !(strings.HasPrefix(s, "'") && relativeTime.MatchString(strings.ReplaceAll(m[1], "''", "'")))
		if got != want {
			t.Fatalf("constantDefault(%q) = %v, the oracle says %v", s, got, want)
		}
		if got && slices.Contains(nonConstants, s) {
			t.Fatalf("constantDefault(%q) accepted a known non-constant", s)
		}
		for _, suffix := range []string{"()", " || now()", "::text::date", " + 1", "; SELECT 1"} {
			if constantDefault(s + suffix) {
				t.Fatalf("constantDefault(%q) accepted an expression", s+suffix)
			}
		}
		if constantDefault("(" + s + ")") {
			t.Fatalf("constantDefault(%q) accepted a parenthesised expression", "("+s+")")
		}
	})
}

func TestNullTolerant(t *testing.T) {
	for def, want := range map[string]bool{
		"CHECK ((c > starts))":                                   true,
		"CHECK (((price >= 0) AND (discount <= price)))":         true,
		"CHECK ((referrer_tg_id <> referee_tg_id))":              true,
		"CHECK ((length(a) < length(b)))":                        true,
		"CHECK ((a = ANY (ARRAY['x'::text, 'y'::text])))":        false, // arrays are refused wholesale
		"CHECK (((c IS NOT NULL) OR (d IS NOT NULL)))":           false,
		"CHECK (((ended_at IS NULL) OR (ended_at > started)))":   false,
		"CHECK ((COALESCE(a, b) > 0))":                           false,
		"CHECK ((num_nonnulls(a, b) = 1))":                       false,
		"CHECK ((GREATEST(a, b) > 0))":                           false,
		"CHECK ((CASE WHEN a THEN b ELSE c END))":                false,
		"CHECK ((my_check(a, b)))":                               false,
		"CHECK ((\"My Check\"(a, b)))":                           false,
		"CHECK ((a IS DISTINCT FROM b))":                         false,
		"CHECK ((ROW(a, b) <> ROW(c, d)))":                       false,
		"CHECK (((a || b) <> 'IS NULL'::text))":                  true, // text in a literal is no construct
		"CHECK ((concat(a, b) <> ''::text))":                     false,
		"CHECK ((a <> 'unterminated))":                           false,
		"CHECK (((a)::text <> (NULLIF(b, ''::text))::text))":     false,
		"CHECK ((lower((a)::text) <> lower((b)::text)))":         true,
		"CHECK (((a ~ '^x'::text) AND (NOT (b ~~ '%y'::text))))": true,
	} {
		if got := nullTolerant(def); got != want {
			t.Errorf("nullTolerant(%q) = %v, want %v", def, got, want)
		}
	}
}
