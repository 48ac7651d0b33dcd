package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
)

// shopDDL has foreign keys in every direction: a self-reference that sets
// null, one that refuses (NO ACTION), one that restricts within a table
// (comment replies), RESTRICT from retained accounting rows, CASCADE from a
// mapped table and from an unmapped one.
const shopDDL = `
CREATE TABLE people (
    id bigint PRIMARY KEY,
    email text NOT NULL UNIQUE,
    name text,
    best_friend_id bigint REFERENCES people (id) ON DELETE SET NULL,
    mentor_id bigint REFERENCES people (id));
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    person_id bigint NOT NULL REFERENCES people (id) ON DELETE RESTRICT,
    note text,
    amount integer NOT NULL);
CREATE TABLE comments (
    id bigint PRIMARY KEY,
    person_id bigint NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    parent_id bigint REFERENCES comments (id) ON DELETE RESTRICT,
    body text);
CREATE TABLE audit_notes (
    id bigint PRIMARY KEY,
    person_id bigint REFERENCES people (id) ON DELETE CASCADE,
    note text);

INSERT INTO people VALUES
    (3, 'cat@example.com', 'Cat', NULL, NULL),
    (5, 'eve@example.com', 'Eve', NULL, NULL),
    (1, 'ann@example.com', 'Ann', NULL, NULL),
    (2, 'bob@example.com', 'Bob', 1, NULL),
    (4, 'dan@example.com', 'Dan', 5, 3);
UPDATE people SET best_friend_id = 2 WHERE id = 1;
INSERT INTO orders VALUES (100, 1, 'gift wrap', 1200), (101, 1, 'express', 800), (200, 2, 'bob''s', 500);
-- Ann's own thread 10 <- 11 <- 12 goes entirely; Bob replied to her 13.
INSERT INTO comments VALUES
    (10, 1, NULL, 'first'), (11, 1, 10, 'second'), (12, 1, 11, 'third'),
    (13, 1, NULL, 'question'), (20, 2, 13, 'bob answers'), (30, 3, NULL, 'cat says');
INSERT INTO audit_notes VALUES (1, 1, 'ann note'), (5, 5, 'eve note'), (2, 2, 'bob note');
`

func shopMap() *datamap.Map {
	f := func(names ...string) map[string]datamap.Field {
		out := map[string]datamap.Field{}
		for _, n := range names {
			out[n] = datamap.Field{Category: "user"}
		}
		return out
	}
	ref := func(field, to string) []datamap.Reference { return []datamap.Reference{{Field: field, To: to}} }
	return &datamap.Map{Version: 1, Systems: map[string]datamap.System{"shop": {
		Kind: datamap.KindPostgres, Connector: datamap.ConnectorPostgres,
		Datasets: map[string]datamap.Dataset{
			"people": {Table: "people", Identities: []datamap.Identity{{Field: "id", Type: "user"}, {Field: "email", Type: "email"}},
				Fields: f("id", "email", "name", "best_friend_id", "mentor_id")},
			"orders":   {Table: "orders", References: ref("person_id", "shop.people.id"), Fields: f("id", "person_id", "note", "amount")},
			"comments": {Table: "comments", References: ref("person_id", "shop.people.id"), Fields: f("id", "person_id", "parent_id", "body")},
		},
	}}}
}

func plan(action string, fields ...string) []connectors.FieldPlan {
	out := make([]connectors.FieldPlan, len(fields))
	for i, f := range fields {
		out[i] = connectors.FieldPlan{Field: f, Category: "user", Action: action}
	}
	return out
}

func TestEraseForeignKeysInEveryDirection(t *testing.T) {
	ctx := context.Background()
	url, pool := newDB(t, "shop", shopDDL)
	// BatchSize 2 splits Ann's comment thread across transactions: a parent
	// whose reply is in a later batch is only deletable on a second pass.
	c := newConnector(t, postgres.Config{System: "shop", DSN: url, Schema: "shop", DataMap: staticMap(shopMap()), BatchSize: 2})
	if got := c.EraseAfter("shop", "people"); strings.Join(got, ",") != "comments,orders" {
		t.Fatalf("EraseAfter(people) = %v, want comments and orders first", got)
	}
	bobBefore := snapshot(t, pool, "SELECT * FROM shop.people WHERE id = 2")
	erase := func(who connectors.Identity, dataset string, fields []connectors.FieldPlan) connectors.EraseResult {
		t.Helper()
		res, err := c.Erase(ctx, connectors.EraseParams{Target: connectors.Target{System: "shop", Dataset: dataset,
			Identities: []connectors.Identity{who}, RequestID: "r", IdempotencyKey: "k"}, Fields: fields})
		if err != nil {
			t.Fatalf("Erase %s: %v", dataset, err)
		}
		if !res.Verified {
			t.Fatalf("Erase %s: not verified: %+v", dataset, res)
		}
		return res
	}
	ann, cat, eve := id("email", "ann@example.com"), id("email", "cat@example.com"), id("email", "eve@example.com")

	// Comments, children first within the table.
	res := erase(ann, "comments", plan(connectors.ActionDelete, "id", "person_id", "parent_id", "body"))
	if res.Deleted != 3 || res.Masked != 1 {
		t.Fatalf("comments: deleted %d masked %d, want 3 and 1 (13 is answered by Bob: kept without its body)", res.Deleted, res.Masked)
	}
	if n := count(t, pool, "SELECT count(*) FROM shop.comments WHERE id = 13 AND body IS NULL"); n != 1 {
		t.Fatalf("comment 13 should be a tombstone with no body")
	}
	if n := count(t, pool, "SELECT count(*) FROM shop.comments WHERE id = 20 AND body = 'bob answers' AND parent_id = 13"); n != 1 {
		t.Fatalf("Bob's reply changed")
	}
	if again := erase(ann, "comments", plan(connectors.ActionDelete, "id", "person_id", "parent_id", "body")); again.Deleted+again.Masked != 0 {
		t.Fatalf("second erase of comments did work: %+v", again)
	}
	erase(cat, "comments", plan(connectors.ActionDelete, "id", "person_id", "parent_id", "body"))

	// Orders are kept for accounting: the note goes, the reference to the
	// person cannot become a hash (it would point nowhere) and is reported.
	ordersPlan := []connectors.FieldPlan{
		{Field: "id", Action: connectors.ActionRetain, Basis: "accounting", Until: "5 years"},
		{Field: "amount", Action: connectors.ActionRetain, Basis: "accounting", Until: "5 years"},
		{Field: "person_id", Action: connectors.ActionMask, Strategy: connectors.StrategyKeyedHash},
		{Field: "note", Action: connectors.ActionDelete},
	}
	res = erase(ann, "orders", ordersPlan)
	if res.Deleted != 0 || res.Masked != 2 {
		t.Fatalf("orders: %+v, want 2 masked", res)
	}
	wantRetained := map[string]bool{"id": false, "amount": false, "person_id": false}
	for _, r := range res.Retained {
		if _, ok := wantRetained[r.Field]; ok && r.Records == 2 {
			wantRetained[r.Field] = true
		}
		if r.Field == "person_id" && !strings.Contains(r.Basis, "foreign key") {
			t.Errorf("person_id kept with basis %q, want the foreign key named", r.Basis)
		}
	}
	for f, ok := range wantRetained {
		if !ok {
			t.Errorf("orders: retained field %s not reported for 2 records: %+v", f, res.Retained)
		}
	}

	// People: Ann is still referenced by her retained orders, Cat mentors
	// Dan (NO ACTION): both stay as tombstones. Eve goes; Dan's friendship
	// with her is set null by the schema, her audit note cascades.
	peoplePlan := plan(connectors.ActionDelete, "id", "email", "name", "best_friend_id", "mentor_id")
	for _, who := range []connectors.Identity{ann, cat, eve} {
		erase(who, "people", peoplePlan)
	}
	rows := snapshot(t, pool, "SELECT id, email LIKE 'kh:%', name IS NULL, best_friend_id IS NULL FROM shop.people ORDER BY id")
	want := "[[1 true true true] [2 false false false] [3 true true true] [4 false false true]]"
	if rows != want {
		t.Fatalf("people after erasure:\n got %s\nwant %s", rows, want)
	}
	if got := snapshot(t, pool, "SELECT * FROM shop.people WHERE id = 2"); got != bobBefore {
		t.Fatalf("Bob's row changed: %s -> %s", bobBefore, got)
	}
	if n := count(t, pool, "SELECT count(*) FROM shop.audit_notes"); n != 2 {
		t.Fatalf("audit notes: %d, want Ann's (her row is kept) and Bob's", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM shop.orders WHERE person_id = 1 AND note IS NULL AND amount > 0"); n != 2 {
		t.Fatalf("Ann's orders must be kept with their amounts and no note")
	}
	// The tombstones are no longer found by email, and a new run finds
	// nothing to do.
	res = erase(ann, "people", peoplePlan)
	if res.Deleted+res.Masked != 0 {
		t.Fatalf("second erase of people did work: %+v", res)
	}
	found, err := c.ResolveIdentities(ctx, []connectors.Identity{ann})
	if err != nil || len(found) != 0 {
		t.Fatalf("after erasure Ann's email resolves to %v (%v)", found, err)
	}
}
