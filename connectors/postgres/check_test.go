package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
)

// TestSchemaCheck: a data map that does not match the database stops the
// connector with every problem named by its data-map entry.
func TestSchemaCheck(t *testing.T) {
	url, pool := newDB(t, "shop", shopDDL+`
CREATE TABLE blobs (id bigint PRIMARY KEY, owner jsonb, person_id bigint, flag integer);`)
	m := shopMap()
	sys := m.Systems["shop"]
	people := sys.Datasets["people"]
	people.Fields["shoe_size"] = datamap.Field{Category: "user"}
	sys.Datasets["people"] = people
	sys.Datasets["ghosts"] = datamap.Dataset{Table: "ghosts", Fields: map[string]datamap.Field{"id": {}}}
	sys.Datasets["blobs"] = datamap.Dataset{Table: "blobs",
		Identities: []datamap.Identity{{Field: "owner", Type: "email"}},
		References: []datamap.Reference{{Field: "person_id", To: "shop.people.id"}},
		Fields:     map[string]datamap.Field{"id": {}, "owner": {}, "person_id": {}, "flag": {}}}
	sys.Datasets["orders"] = datamap.Dataset{Table: "orders", References: []datamap.Reference{{Field: "note", To: "shop.people.id"}},
		Fields: map[string]datamap.Field{"id": {}, "note": {}}}
	m.Systems["shop"] = sys
	_, err := postgres.New(context.Background(), postgres.Config{System: "shop", DSN: url, Schema: "shop", HashKey: hashKey,
		DataMap: staticMap(m), RestrictColumns: map[string]string{"blobs": "flag", "people": "nope", "unknown": "x"}})
	if err == nil {
		t.Fatal("a mismatched data map was accepted")
	}
	for _, want := range []string{
		`shop.datasets.people.fields.shoe_size: column "shoe_size" not found in table shop.people`,
		`shop.datasets.ghosts.table: table "ghosts" not found in schema "shop"`,
		`shop.datasets.blobs.identities[0]: column "owner" has type jsonb`,
		`shop.datasets.blobs.references[0]: no foreign key blobs(person_id) REFERENCES people(id)`,
		`shop.datasets.orders.references[0]: orders.note (text) cannot be compared with people.id (bigint)`,
		`shop.datasets.blobs: restrict column "flag" is integer`,
		`shop.datasets.people: restrict column "nope" not found`,
		`shop.datasets.unknown: restrict column configured for a dataset the data map does not have`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}

	// The same map passes when the schema catches up (and a missing
	// foreign key may be allowed explicitly).
	if _, err := pool.Exec(context.Background(), `
		CREATE TABLE shop.ghosts (id bigint PRIMARY KEY);
		ALTER TABLE shop.people ADD COLUMN shoe_size integer;
		ALTER TABLE shop.blobs ALTER COLUMN owner TYPE text, ALTER COLUMN flag TYPE boolean USING flag <> 0, ADD COLUMN nope timestamptz;`); err != nil {
		t.Fatal(err)
	}
	orders := sys.Datasets["orders"]
	orders.References = nil
	sys.Datasets["orders"] = orders
	c, err := postgres.New(context.Background(), postgres.Config{System: "shop", DSN: url, Schema: "shop", HashKey: hashKey,
		DataMap: staticMap(m), AllowMissingForeignKeys: true, RestrictColumns: map[string]string{"blobs": "flag"}})
	if err != nil {
		t.Fatalf("fixed schema refused: %v", err)
	}
	c.Close()
}

// TestReadOnly: a read-only connector declares no writes, refuses them, and
// its sessions cannot write even if asked.
func TestReadOnly(t *testing.T) {
	url, pool := newDB(t, "shop", shopDDL)
	c := newConnector(t, postgres.Config{System: "shop", DSN: url, Schema: "shop", DataMap: staticMap(shopMap()), ReadOnly: true})
	caps := c.Capabilities()
	if !caps.Access || !caps.ResolveIdentities || caps.Erase || caps.Rectify || caps.Restrict {
		t.Fatalf("read-only capabilities %+v", caps)
	}
	ctx := context.Background()
	tg := connectors.Target{System: "shop", Dataset: "people", Identities: []connectors.Identity{id("email", "ann@example.com")}}
	if _, err := c.Erase(ctx, connectors.EraseParams{Target: tg, Fields: plan(connectors.ActionDelete, "id", "email")}); !errors.Is(err, connectors.ErrUnsupported) {
		t.Fatalf("Erase on a read-only connector: %v", err)
	}
	found, err := c.ResolveIdentities(ctx, tg.Identities)
	if err != nil || len(found) != 1 || found[0] != id("user", "1") {
		t.Fatalf("ResolveIdentities = %v, %v; want user:1", found, err)
	}
	if n := count(t, pool, "SELECT count(*) FROM shop.people"); n != 5 {
		t.Fatalf("people: %d", n)
	}
	if err := postgres.ExecForTest(c, "DELETE FROM shop.people WHERE id = 5"); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Fatalf("a write on a read-only connector's session: %v", err)
	}
}
