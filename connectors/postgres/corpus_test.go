package postgres_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.yaml.in/yaml/v3"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/policies"
)

// The corpus (testdata/corpus/<name>/): schemas shaped after real
// applications, each with the hazards such schemas have (mixed-case and
// citext emails, partitions with keys on the partitions, composite keys, a
// table without a primary key, quoted mixed-case names, enums, CHECK
// constraints, jsonb, arrays, BEFORE UPDATE triggers, rows two people
// share, relationships between people). Each directory holds:
//
//   - schema.sql: DDL and a handful of people, some of whom share rows;
//   - datamap.yaml: the map a person writes from `steward datamap scan`'s
//     draft (every dataset is a table the scan drafted: checked here);
//   - expect.sql: who person A is (`-- person: <type> <value>` lines),
//     who person B is (`-- second: <type> <value>` lines: someone who
//     shares rows with A) and, for every dataset, hand-written SQL
//     selecting the record keys of exactly A's rows (`-- dataset: <id>`)
//     and of exactly B's (`-- second-dataset: <id>`): the primary key as
//     text joined by '/', or 'row:' || md5(t::text) for a table without
//     one. Both run before any erasure.
//
// For each schema: access for A exports exactly those rows; erasing A with
// the reference policy's plans, children first, succeeds on the first run
// and verifies; afterwards a fresh access finds only rows kept with a
// stated basis, no email identity column holds A's address unless the plan
// retains it, and every row that is not A's is byte-identical. Every
// erase result lists in Retained each field the plan deletes or masks that
// still holds its old value in one of the person's rows. Access for B,
// before either erasure, exports exactly B's rows by the independent SQL.
// Then B is erased the same way: it succeeds first time and verifies, and
// every row that is neither A's nor B's (by the independent SQL) is
// byte-identical to the snapshot before both erasures.
var corpusSchemas = []string{"billing", "booking", "crm", "forum", "saas", "shop"}

func TestCorpus(t *testing.T) {
	ctx := context.Background()
	e, err := policy.Load(ctx, policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	refs := e.MapRefs()
	for _, name := range corpusSchemas {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			checkCorpus(t, ctx, e, refs, name)
		})
	}
}

// corpusExpect is a parsed expect.sql.
type corpusExpect struct {
	person   []connectors.Identity
	second   []connectors.Identity // person B
	datasets map[string]string     // dataset -> SQL selecting A's record keys
	// datasetsB is the same for B.
	datasetsB map[string]string
}

func readCorpusExpect(t *testing.T, path string) corpusExpect {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := corpusExpect{datasets: map[string]string{}, datasetsB: map[string]string{}}
	var into map[string]string // A's or B's, as the last block header says
	cur := ""
	block := func(m map[string]string, header string) {
		cur, into = strings.TrimSpace(header), m
		if _, dup := m[cur]; dup {
			t.Fatalf("%s: two blocks for dataset %s", path, cur)
		}
		m[cur] = ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(line, "-- person: "):
			typ, val, _ := strings.Cut(strings.TrimPrefix(line, "-- person: "), " ")
			out.person = append(out.person, id(typ, val))
		case strings.HasPrefix(line, "-- second: "):
			typ, val, _ := strings.Cut(strings.TrimPrefix(line, "-- second: "), " ")
			out.second = append(out.second, id(typ, val))
		case strings.HasPrefix(line, "-- dataset: "):
			block(out.datasets, strings.TrimPrefix(line, "-- dataset: "))
		case strings.HasPrefix(line, "-- second-dataset: "):
			block(out.datasetsB, strings.TrimPrefix(line, "-- second-dataset: "))
		case cur != "" && !strings.HasPrefix(line, "--"):
			into[cur] += line + "\n"
		}
	}
	if len(out.person) == 0 || len(out.second) == 0 || len(out.datasets) == 0 {
		t.Fatalf("%s: no person, no second person or no datasets", path)
	}
	// B's blocks name the same datasets as A's: every dataset is checked
	// for both people.
	if a, b := slices.Sorted(maps.Keys(out.datasets)), slices.Sorted(maps.Keys(out.datasetsB)); !slices.Equal(a, b) {
		t.Fatalf("%s: datasets for A %q, for B %q; want the same", path, a, b)
	}
	return out
}

func checkCorpus(t *testing.T, ctx context.Context, e *policy.Engine, refs datamap.Refs, name string) {
	dir := filepath.Join("testdata", "corpus", name)
	ddl, err := os.ReadFile(filepath.Join(dir, "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(dir, "datamap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	url, pool := newDB(t, name, string(ddl))
	sid := name // the system id is the schema's name

	// The scan drafts every table the map names, under the same dataset id.
	cat, err := postgres.ReadCatalog(ctx, url, name)
	if err != nil {
		t.Fatal(err)
	}
	draftSrc, err := postgres.Scan(cat, postgres.ScanOptions{System: sid})
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("CORPUS_DRAFT") == name {
		_ = os.WriteFile("/tmp/corpus_draft_"+name+".yaml", draftSrc, 0o644)
	}
	dm, err := datamap.Parse(filepath.Join(dir, "datamap.yaml"), src, refs)
	if err != nil {
		t.Fatal(err)
	}
	sys, ok := dm.Systems[sid]
	if len(dm.Systems) != 1 || !ok {
		t.Fatalf("the map must have one system, %s", sid)
	}
	exp := readCorpusExpect(t, filepath.Join(dir, "expect.sql"))
	var draft datamap.Map
	if err := yaml.Unmarshal(draftSrc, &draft); err != nil {
		t.Fatal(err)
	}
	for _, did := range slices.Sorted(maps.Keys(sys.Datasets)) {
		dd, ok := draft.Systems[sid].Datasets[did]
		if !ok || dd.Table != sys.Datasets[did].Table {
			t.Errorf("dataset %s (table %s): the scan drafted no such dataset (%+v)", did, sys.Datasets[did].Table, dd.Table)
		}
	}
	if _, ok := exp.datasets["*"]; ok {
		t.Fatal("expect.sql: no dataset may be named *")
	}
	for did := range exp.datasets {
		if _, ok := sys.Datasets[did]; !ok {
			t.Errorf("expect.sql: dataset %s is not in the map", did)
		}
	}
	for did := range sys.Datasets {
		if _, ok := exp.datasets[did]; !ok {
			t.Errorf("expect.sql says nothing of dataset %s", did)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	c := newConnector(t, postgres.Config{System: sid, DSN: url, Schema: name, DataMap: staticMap(dm)})
	var kinds []string
	for _, i := range exp.person {
		kinds = append(kinds, i.Type)
	}
	access := mapTasks(t, e, dm, c, sid, "access", kinds)
	erase := mapTasks(t, e, dm, c, sid, "erasure", kinds)
	ids := slices.Clone(exp.person)
	linked, err := c.ResolveIdentities(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, linked...)

	// What A and B own, by the independent SQL, before anything changes.
	want, wantB := map[string][]string{}, map[string][]string{}
	for did, q := range exp.datasets {
		want[did] = corpusKeys(t, pool, name, q)
	}
	for did, q := range exp.datasetsB {
		wantB[did] = corpusKeys(t, pool, name, q)
	}
	accessAll := func(ids []connectors.Identity) map[string][]string {
		got := map[string][]string{}
		for _, task := range access {
			sink := &connectortest.MemorySink{}
			if _, err := c.Access(ctx, connectors.AccessParams{Target: connectors.Target{System: sid, Dataset: task.dataset, Identities: ids}, Fields: task.fields}, sink); err != nil {
				t.Fatalf("access %s: %v", task.dataset, err)
			}
			for _, r := range sink.Records() {
				got[task.dataset] = append(got[task.dataset], r.Key)
			}
			slices.Sort(got[task.dataset])
		}
		return got
	}
	got := accessAll(ids)
	records := 0
	for _, did := range slices.Sorted(maps.Keys(sys.Datasets)) {
		records += len(want[did])
		if !slices.Equal(got[did], want[did]) {
			t.Errorf("access %s: exported %q, the independent SQL selects %q", did, got[did], want[did])
		}
	}
	if records == 0 {
		t.Fatal("A owns nothing: the corpus checks nothing")
	}
	if t.Failed() {
		t.FailNow()
	}

	// B, with the identities B's own leads to: access for B exports
	// exactly B's rows by the independent SQL.
	idsB := slices.Clone(exp.second)
	linkedB, err := c.ResolveIdentities(ctx, idsB)
	if err != nil {
		t.Fatal(err)
	}
	idsB = append(idsB, linkedB...)
	gotB := accessAll(idsB)
	recordsB := 0
	for _, did := range slices.Sorted(maps.Keys(sys.Datasets)) {
		recordsB += len(wantB[did])
		if !slices.Equal(gotB[did], wantB[did]) {
			t.Errorf("access %s for B: exported %q, the independent SQL selects %q", did, gotB[did], wantB[did])
		}
	}
	if recordsB == 0 {
		t.Fatal("B owns nothing: the corpus checks nothing of B")
	}
	if t.Failed() {
		t.FailNow()
	}

	// eraseAll erases one person (who: "A" or "B"), children first, with
	// the policy's plans; keys are the person's record keys per dataset.
	// Every erasure succeeds on the first run and verifies, every kept
	// value has a basis, and every field the plan deletes or masks either
	// no longer holds its old value in the person's rows or is listed in
	// Retained (a value the erasure kept is always reported).
	eraseAll := func(who string, ids []connectors.Identity, keys map[string][]string) map[string]bool {
		keptBasis := map[string]bool{}
		_, prior := corpusSnapshot(t, pool, cat, name)
		for _, task := range erase {
			res, err := c.Erase(ctx, connectors.EraseParams{Target: connectors.Target{System: sid, Dataset: task.dataset, Identities: ids,
				RequestID: "corpus-" + who, IdempotencyKey: "corpus-" + who + "-" + task.dataset}, Fields: task.fields})
			if err != nil {
				t.Fatalf("erase %s of %s: %v", task.dataset, who, err)
			}
			if !res.Verified {
				t.Errorf("erase %s of %s not verified: %+v", task.dataset, who, res)
			}
			listed := map[string]bool{}
			for _, r := range res.Retained {
				if r.Basis == "" {
					t.Errorf("erase %s of %s: field %s retained without a basis", task.dataset, who, r.Field)
				}
				keptBasis[task.dataset] = true
				listed[r.Field] = true
			}
			t.Logf("erase %s of %s: deleted %d, masked %d, retained %+v", task.dataset, who, res.Deleted, res.Masked, res.Retained)
			tb := sys.Datasets[task.dataset].Table
			_, now := corpusSnapshot(t, pool, cat, name)
			for _, k := range keys[task.dataset] {
				old, there := prior[tb][k], now[tb][k]
				if old == nil || there == nil {
					continue // deleted (or, without a primary key, changed)
				}
				for _, f := range task.fields {
					if f.Action != connectors.ActionDelete && f.Action != connectors.ActionMask {
						continue
					}
					// A value that is the column's constant default is in
					// its erased form already (the schema's neutral value,
					// which the erasure writes): nothing of the person's.
					col := cat.Tables[tb].Columns[f.Field]
					if v := old[f.Field]; string(v) != "null" && string(v) == string(there[f.Field]) && !listed[f.Field] &&
						!(col != nil && col.DefaultConst && corpusDefault(t, pool, name, col.DefaultExpr) == string(v)) {
						t.Errorf("erase %s of %s: record %s keeps %s (the plan says %s), and Retained does not list it", task.dataset, who, k, f.Field, f.Action)
					}
				}
			}
		}
		return keptBasis
	}

	// Erasure of A.
	before, _ := corpusSnapshot(t, pool, cat, name)
	keptBasis := eraseAll("A", ids, want)
	after, _ := corpusSnapshot(t, pool, cat, name)

	// Rows that are not A's are byte-identical.
	mine := map[string]map[string]bool{}
	for did, keys := range want {
		tb := sys.Datasets[did].Table
		if mine[tb] == nil {
			mine[tb] = map[string]bool{}
		}
		for _, k := range keys {
			mine[tb][k] = true
		}
	}
	for _, tb := range slices.Sorted(maps.Keys(before)) {
		for k, row := range before[tb] {
			if mine[tb][k] {
				continue
			}
			if after[tb][k] != row {
				t.Errorf("table %s row %s is not A's and changed:\nbefore %s\nafter  %q", tb, k, row, after[tb][k])
			}
		}
		for k := range after[tb] {
			if _, ok := before[tb][k]; !ok && !mine[tb][k] {
				t.Errorf("table %s: a new row %s after the erasure: %s", tb, k, after[tb][k])
			}
		}
	}

	// A fresh access finds only rows kept with a stated basis.
	for did, keys := range accessAll(ids) {
		if len(keys) > 0 && !keptBasis[did] {
			t.Errorf("after the erasure, access %s still finds %q, and the erasure stated no basis for keeping them", did, keys)
		}
	}
	// No email identity column holds A's address unless the plan keeps it.
	retained := map[string]bool{}
	for _, task := range erase {
		for _, f := range task.fields {
			if f.Action == connectors.ActionRetain {
				retained[task.dataset+"."+f.Field] = true
			}
		}
	}
	for _, did := range slices.Sorted(maps.Keys(sys.Datasets)) {
		ds := sys.Datasets[did]
		for _, ident := range ds.Identities {
			if retained[did+"."+ident.Field] {
				continue
			}
			for _, i := range ids {
				if i.Type != ident.Type || i.Type != "email" {
					continue
				}
				q := fmt.Sprintf("SELECT count(*) FROM %s WHERE lower(%s::text) = lower($1)",
					pgx.Identifier{name, ds.Table}.Sanitize(), pgx.Identifier{ident.Field}.Sanitize())
				if n := count(t, pool, q, i.Value); n != 0 {
					t.Errorf("after the erasure %s.%s still holds %s in %d row(s)", did, ident.Field, i.Value, n)
				}
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Erasure of B, who shared rows with A: it succeeds first time and
	// verifies; every row neither A's nor B's is as it was before both.
	eraseAll("B", idsB, wantB)
	afterB, _ := corpusSnapshot(t, pool, cat, name)
	for did, keys := range wantB {
		tb := sys.Datasets[did].Table
		if mine[tb] == nil {
			mine[tb] = map[string]bool{}
		}
		for _, k := range keys {
			mine[tb][k] = true
		}
	}
	for _, tb := range slices.Sorted(maps.Keys(before)) {
		for k, row := range before[tb] {
			if !mine[tb][k] && afterB[tb][k] != row {
				t.Errorf("table %s row %s is neither A's nor B's and changed:\nbefore %s\nafter  %q", tb, k, row, afterB[tb][k])
			}
		}
		for k := range afterB[tb] {
			if _, ok := before[tb][k]; !ok && !mine[tb][k] {
				t.Errorf("table %s: a new row %s after the erasures: %s", tb, k, afterB[tb][k])
			}
		}
	}
}

// corpusKeys runs an expectation query (one text column) in schema.
func corpusKeys(t *testing.T, pool *pgxpool.Pool, schema, q string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, "RESET search_path") //nolint:errcheck
	rows, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	slices.Sort(keys)
	return keys
}

// corpusDefault is a constant DEFAULT expression's value as JSON, as
// to_jsonb(t) prints a column holding it.
func corpusDefault(t *testing.T, pool *pgxpool.Pool, schema, expr string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET search_path TO "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, "RESET search_path") //nolint:errcheck
	var v string
	if err := conn.QueryRow(ctx, "SELECT to_jsonb("+expr+")::text").Scan(&v); err != nil {
		t.Fatalf("default %s: %v", expr, err)
	}
	return v
}

// corpusSnapshot is every row of every table of the schema (partitioned
// tables through their parent), by record key, as text, and as its
// columns' values (JSON).
func corpusSnapshot(t *testing.T, pool *pgxpool.Pool, cat *postgres.Catalog, schema string) (map[string]map[string]string, map[string]map[string]map[string]json.RawMessage) {
	t.Helper()
	out := map[string]map[string]string{}
	cols := map[string]map[string]map[string]json.RawMessage{}
	for _, name := range slices.Sorted(maps.Keys(cat.Tables)) {
		tb := cat.Tables[name]
		key := "'row:' || md5(t::text)"
		if len(tb.PrimaryKey) > 0 {
			var parts []string
			for _, c := range tb.PrimaryKey {
				parts = append(parts, "t."+pgx.Identifier{c}.Sanitize()+"::text")
			}
			key = strings.Join(parts, " || '/' || ")
		}
		only := "ONLY " // an inheritance parent's children are tables of their own
		if tb.Partitioned {
			only = ""
		}
		rows, err := pool.Query(context.Background(), fmt.Sprintf("SELECT %s, t::text, to_jsonb(t)::text FROM %s%s AS t", key, only, pgx.Identifier{schema, name}.Sanitize()))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = map[string]string{}
		cols[name] = map[string]map[string]json.RawMessage{}
		for rows.Next() {
			var k, v, j string
			if err := rows.Scan(&k, &v, &j); err != nil {
				t.Fatal(err)
			}
			if _, dup := out[name][k]; dup {
				t.Fatalf("table %s: two rows with key %s", name, k)
			}
			out[name][k] = v
			var m map[string]json.RawMessage
			if err := json.Unmarshal([]byte(j), &m); err != nil {
				t.Fatal(err)
			}
			cols[name][k] = m
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out, cols
}
