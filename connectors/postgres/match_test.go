package postgres_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/testutil"
)

// matchDDL stores addresses as people typed them: upper- and mixed-case,
// in a text column, a citext column and a varchar column.
const matchDDL = `
CREATE TABLE people (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name text);
CREATE TABLE members (id bigint PRIMARY KEY, email citext NOT NULL UNIQUE, nick text);
CREATE TABLE tickets (id bigint PRIMARY KEY, contact varchar(200), body text);
CREATE TABLE handles (id bigint PRIMARY KEY, handle text NOT NULL, person_id bigint REFERENCES people (id));
INSERT INTO people VALUES (1, 'ANN@EXAMPLE.COM', 'Ann'), (2, 'Bob@Example.com', 'Bob'), (3, 'cat@example.com', 'Cat');
INSERT INTO members VALUES (1, 'Ann@Example.COM', 'annie'), (2, 'bob@example.com', 'bobby');
INSERT INTO tickets VALUES (1, 'ann@EXAMPLE.com', 'help'), (2, 'BOB@example.com', 'hi'), (3, 'Ann@Example.com', 'again');
INSERT INTO handles VALUES (1, 'AnnTheFirst', 1), (2, 'bobby', 2);
`

func matchMap() *datamap.Map {
	f := func(names ...string) map[string]datamap.Field {
		out := map[string]datamap.Field{}
		for _, n := range names {
			out[n] = datamap.Field{Category: "user"}
		}
		return out
	}
	return &datamap.Map{Version: 1, Systems: map[string]datamap.System{"ci": {
		Kind: datamap.KindPostgres, Connector: datamap.ConnectorPostgres,
		Datasets: map[string]datamap.Dataset{
			"people":  {Table: "people", Identities: []datamap.Identity{{Field: "id", Type: "user"}, {Field: "email", Type: "email"}}, Fields: f("id", "email", "name")},
			"members": {Table: "members", Identities: []datamap.Identity{{Field: "email", Type: "email"}}, Fields: f("id", "email", "nick")},
			"tickets": {Table: "tickets", Identities: []datamap.Identity{{Field: "contact", Type: "email"}}, Fields: f("id", "contact", "body")},
			"handles": {Table: "handles", Identities: []datamap.Identity{{Field: "handle", Type: "visitor"}}, Fields: f("id", "handle", "person_id")},
		},
	}}}
}

// newMatchDB creates matchDDL with the citext extension in extSchema:
// public, on the connector's search_path as usual, or the test's own
// schema, off it (the catalog then names the type ci.citext).
func newMatchDB(t *testing.T, extSchema string) (string, *pgxpool.Pool) {
	t.Helper()
	url, pool := newDB(t, "ci", "SELECT 1")
	var ok bool
	if err := pool.QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'citext')").Scan(&ok); err != nil || !ok {
		t.Skipf("the citext extension is not available on the test server (%v)", err)
	}
	if _, err := pool.Exec(context.Background(), "BEGIN; CREATE EXTENSION IF NOT EXISTS citext SCHEMA "+extSchema+"; SET LOCAL search_path TO ci, public;"+matchDDL+"; COMMIT"); err != nil {
		t.Fatal(err)
	}
	return url, pool
}

func accessCount(t *testing.T, c *postgres.Connector, dataset string, ids ...connectors.Identity) int {
	t.Helper()
	sink := &countingSink{}
	fields := map[string][]string{"people": {"id", "email", "name"}, "members": {"id", "email", "nick"}, "tickets": {"id", "contact", "body"}, "handles": {"id", "handle", "person_id"}}
	if _, err := c.Access(context.Background(), connectors.AccessParams{Target: connectors.Target{System: "ci", Dataset: dataset, Identities: ids},
		Fields: plan(connectors.ActionInclude, fields[dataset]...)}, sink); err != nil {
		t.Fatalf("access %s: %v", dataset, err)
	}
	return sink.n
}

// TestEmailCaseInsensitiveByDefault: a lower-case subject finds addresses
// stored upper- or mixed-case in text, varchar and citext columns; erasure
// removes them and verifies; the opt-out compares exactly again, except
// for citext, whose type ignores case.
func TestEmailCaseInsensitiveByDefault(t *testing.T) {
	for _, ext := range []string{"public", "ci"} {
		t.Run("citext in "+ext, func(t *testing.T) { testEmailCaseInsensitive(t, ext) })
	}
}

func testEmailCaseInsensitive(t *testing.T, extSchema string) {
	url, pool := newMatchDB(t, extSchema)
	ctx := context.Background()
	ann := id("email", "ann@example.com")
	c := newConnector(t, postgres.Config{System: "ci", DSN: url, Schema: "ci", DataMap: staticMap(matchMap())})
	for ds, want := range map[string]int{"people": 1, "members": 1, "tickets": 2} {
		if got := accessCount(t, c, ds, ann); got != want {
			t.Errorf("access %s by %s: %d records, want %d", ds, ann.Value, got, want)
		}
	}
	found, err := c.ResolveIdentities(ctx, []connectors.Identity{ann})
	if err != nil || len(found) != 1 || found[0] != id("user", "1") {
		t.Errorf("ResolveIdentities = %v, %v; want user:1 (the stored address is the subject's, normalised)", found, err)
	}

	// Exact matching (the opt-out) misses what is stored in another case,
	// except in the citext column.
	exact := newConnector(t, postgres.Config{System: "ci", DSN: url, Schema: "ci", DataMap: staticMap(matchMap()), EmailCaseSensitive: true})
	for ds, want := range map[string]int{"people": 0, "members": 1, "tickets": 0} {
		if got := accessCount(t, exact, ds, ann); got != want {
			t.Errorf("email_case_sensitive: access %s: %d records, want %d", ds, got, want)
		}
	}
	if got := accessCount(t, exact, "people", id("email", "cat@example.com")); got != 1 {
		t.Errorf("email_case_sensitive: an address stored lower-case: %d records, want 1", got)
	}

	// A data-map identity's match overrides the connector's default, for
	// any type: exact for one email column, case-insensitive for handles.
	m := matchMap()
	sys := m.Systems["ci"]
	people, tickets, handles := sys.Datasets["people"], sys.Datasets["tickets"], sys.Datasets["handles"]
	people.Identities = []datamap.Identity{{Field: "id", Type: "user"}, {Field: "email", Type: "email", Match: datamap.MatchExact}}
	tickets.Identities = []datamap.Identity{{Field: "contact", Type: "email", Match: datamap.MatchCaseInsensitive}}
	handles.Identities = []datamap.Identity{{Field: "handle", Type: "visitor", Match: datamap.MatchCaseInsensitive}}
	sys.Datasets["people"], sys.Datasets["tickets"], sys.Datasets["handles"] = people, tickets, handles
	mixed := newConnector(t, postgres.Config{System: "ci", DSN: url, Schema: "ci", DataMap: staticMap(m), EmailCaseSensitive: true})
	if got := accessCount(t, mixed, "people", ann); got != 0 {
		t.Errorf("match: exact: %d records, want 0", got)
	}
	if got := accessCount(t, mixed, "tickets", ann); got != 2 {
		t.Errorf("match: case_insensitive over email_case_sensitive: %d records, want 2", got)
	}
	if got := accessCount(t, mixed, "handles", id("visitor", "annthefirst")); got != 1 {
		t.Errorf("match: case_insensitive on a visitor id: %d records, want 1", got)
	}
	if got := accessCount(t, c, "handles", id("visitor", "annthefirst")); got != 0 {
		t.Errorf("a visitor id without match is compared exactly: %d records, want 0", got)
	}

	// Erasure finds the same rows, removes them and verifies.
	before := snapshot(t, pool, "SELECT * FROM ci.people WHERE id <> 1 UNION ALL SELECT id, email::text, nick FROM ci.members WHERE id <> 1 UNION ALL SELECT * FROM ci.tickets WHERE id = 2 ORDER BY 1, 2")
	for _, ds := range []string{"tickets", "members"} {
		fields := map[string][]string{"members": {"id", "email", "nick"}, "tickets": {"id", "contact", "body"}}[ds]
		res, err := c.Erase(ctx, connectors.EraseParams{Target: connectors.Target{System: "ci", Dataset: ds, Identities: []connectors.Identity{ann}},
			Fields: plan(connectors.ActionDelete, fields...)})
		if err != nil || !res.Verified {
			t.Fatalf("erase %s: %+v, %v", ds, res, err)
		}
	}
	// people: Ann's handle still references her row, so it stays as a
	// tombstone with its address erased.
	res, err := c.Erase(ctx, connectors.EraseParams{Target: connectors.Target{System: "ci", Dataset: "people", Identities: []connectors.Identity{ann}},
		Fields: []connectors.FieldPlan{{Field: "email", Category: "user", Action: connectors.ActionMask, Strategy: "keyed_hash"}, {Field: "name", Category: "user", Action: connectors.ActionDelete}}})
	if err != nil || !res.Verified || res.Masked != 1 {
		t.Fatalf("erase people: %+v, %v", res, err)
	}
	if n := count(t, pool, "SELECT count(*) FROM ci.tickets WHERE lower(contact) = 'ann@example.com'"); n != 0 {
		t.Errorf("%d of Ann's tickets left", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM ci.members WHERE email = 'ann@example.com'"); n != 0 {
		t.Errorf("Ann's member row left")
	}
	if n := count(t, pool, "SELECT count(*) FROM ci.people WHERE lower(email) = 'ann@example.com' OR name IS NOT NULL AND id = 1"); n != 0 {
		t.Errorf("Ann's address or name left in people")
	}
	after := snapshot(t, pool, "SELECT * FROM ci.people WHERE id <> 1 UNION ALL SELECT id, email::text, nick FROM ci.members WHERE id <> 1 UNION ALL SELECT * FROM ci.tickets WHERE id = 2 ORDER BY 1, 2")
	if before != after {
		t.Errorf("other people's rows changed:\n%s\n%s", before, after)
	}
	for ds, want := range map[string]int{"people": 0, "members": 0, "tickets": 0} {
		if got := accessCount(t, c, ds, ann); got != want {
			t.Errorf("after erasure, access %s: %d records", ds, got)
		}
	}
}

// TestEmailLowerIndexWarning: at start, each identity compared with lower()
// that no index on lower(column) serves is logged with the statement that
// creates the index; once it exists (or for citext, or with the opt-out)
// nothing is logged, and the index serves the lookup.
func TestEmailLowerIndexWarning(t *testing.T) {
	url, pool := newMatchDB(t, "public")
	ctx := context.Background()
	start := func(cfg postgres.Config) string {
		t.Helper()
		var buf testutil.SyncBuffer
		cfg.System, cfg.DSN, cfg.Schema, cfg.DataMap = "ci", url, "ci", staticMap(matchMap())
		cfg.Log = slog.New(slog.NewTextHandler(&buf, nil))
		newConnector(t, cfg)
		return buf.String()
	}
	logs := start(postgres.Config{})
	for _, want := range []string{
		`column=people.email create_index="CREATE INDEX CONCURRENTLY ON \"ci\".\"people\" (lower(\"email\"));"`,
		`column=tickets.contact create_index="CREATE INDEX CONCURRENTLY ON \"ci\".\"tickets\" (lower(\"contact\"));"`,
		"has no index on lower(column)",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("start logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "members") || strings.Contains(logs, "handles") {
		t.Errorf("a citext or exactly compared column was reported:\n%s", logs)
	}
	if logs := start(postgres.Config{EmailCaseSensitive: true}); strings.Contains(logs, "lower(column)") {
		t.Errorf("email_case_sensitive: a lower() warning:\n%s", logs)
	}
	// The logged statements are what to run.
	for _, stmt := range []string{`CREATE INDEX CONCURRENTLY ON "ci"."people" (lower("email"));`, `CREATE INDEX CONCURRENTLY ON "ci"."tickets" (lower("contact"));`} {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if logs := start(postgres.Config{}); strings.Contains(logs, "lower(column)") {
		t.Errorf("with the indexes, still a warning:\n%s", logs)
	}
	// The index serves the connector's predicate.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SET enable_seqscan = off"); err != nil {
		t.Fatal(err)
	}
	rows, err := conn.Query(ctx, `EXPLAIN SELECT 1 FROM ci.people AS t WHERE lower(t."email") = ANY($1::text[]::text[])`, []string{"ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if plan := strings.Join(lines, "\n"); !strings.Contains(plan, "people_lower_idx") {
		t.Errorf("the lower() predicate does not use the index:\n%s", plan)
	}
}

// TestReferenceEmailLookupsIndexed: the reference schemas have an index on
// lower(column) for every email identity of the reference data map, so the
// default comparison never reads a whole table there.
func TestReferenceEmailLookupsIndexed(t *testing.T) {
	ref := newReference(t, 5)
	for _, sys := range [][2]string{{"app_db", "app"}, {"bot_db", "bot"}} {
		var buf testutil.SyncBuffer
		ref.connector(t, sys[0], sys[1], func(cfg *postgres.Config) { cfg.Log = slog.New(slog.NewTextHandler(&buf, nil)) })
		if strings.Contains(buf.String(), "lower(column)") {
			t.Errorf("%s: %s", sys[0], buf.String())
		}
	}
}
