package postgres_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	neturl "net/url"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
)

// A schema the connector's role cannot read: the connector does not start,
// the message names the schema (or the table) and the GRANT it needs, and
// nothing changes.
func TestUnreadableSchema(t *testing.T) {
	url, pool := newDB(t, "shop", shopDDL)
	ctx := context.Background()
	role := fmt.Sprintf("steward_noaccess_%d", time.Now().UnixNano())
	if _, err := pool.Exec(ctx, "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = pool.Exec(context.Background(), "DROP OWNED BY "+role+"; DROP ROLE IF EXISTS "+role) })
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	u.User = neturl.User(role)
	dsn := u.String()
	count := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM shop.people`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	_, err = postgres.New(ctx, postgres.Config{System: "shop", DSN: dsn, Schema: "shop", HashKey: hashKey, DataMap: staticMap(shopMap())})
	if err == nil || !strings.Contains(err.Error(), "schema shop: no USAGE") || !strings.Contains(err.Error(), `GRANT USAGE ON SCHEMA "shop"`) {
		t.Fatalf("start with a role that cannot use the schema: %v; want it refused, naming the schema and the GRANT", err)
	}
	if retry, _ := connectors.Classify(err); retry {
		t.Errorf("refusal is retryable: %v", err)
	}
	// With USAGE and SELECT only, a writing connector names what each
	// table lacks; a read-only one starts.
	if _, err := pool.Exec(ctx, "GRANT USAGE ON SCHEMA shop TO "+role+"; GRANT SELECT ON ALL TABLES IN SCHEMA shop TO "+role); err != nil {
		t.Fatal(err)
	}
	_, err = postgres.New(ctx, postgres.Config{System: "shop", DSN: dsn, Schema: "shop", HashKey: hashKey, DataMap: staticMap(shopMap())})
	if err == nil || !strings.Contains(err.Error(), `datasets.people: table "shop"."people": no UPDATE, DELETE (GRANT UPDATE, DELETE ON "shop"."people"`) {
		t.Fatalf("a writing connector with SELECT only: %v", err)
	}
	c, err := postgres.New(ctx, postgres.Config{System: "shop", DSN: dsn, Schema: "shop", DataMap: staticMap(shopMap()), ReadOnly: true})
	if err != nil {
		t.Fatalf("a read-only connector with USAGE and SELECT: %v", err)
	}
	c.Close()
	if after := count(); after != before {
		t.Errorf("rows changed: %d -> %d", before, after)
	}
}

// cycleDDL has foreign keys that go round: users -> orders -> users, and
// orders -> lines -> shipments -> orders; users reference users twice.
const cycleDDL = `
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, manager_id bigint REFERENCES users);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users, note text);
CREATE TABLE lines (id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders, note text);
CREATE TABLE shipments (id bigint PRIMARY KEY, line_id bigint REFERENCES lines, note text);
ALTER TABLE users ADD COLUMN last_order_id bigint REFERENCES orders;
ALTER TABLE orders ADD COLUMN shipment_id bigint REFERENCES shipments;
INSERT INTO users (id, email, manager_id) VALUES (1, 'ann@example.com', NULL), (2, 'bob@example.com', 1);
INSERT INTO orders (id, user_id, note) VALUES (10, 1, 'ann''s'), (20, 2, 'bob''s');
INSERT INTO lines VALUES (100, 10, 'ann''s line'), (200, 20, 'bob''s line');
INSERT INTO shipments VALUES (1000, 100, 'ann''s parcel');
UPDATE users SET last_order_id = 10 WHERE id = 1;
UPDATE users SET last_order_id = 20 WHERE id = 2;
UPDATE orders SET shipment_id = 1000 WHERE id = 10;`

// cycleMap maps cycleDDL's tables, with the references refs adds per
// dataset (users reached by email, orders by user_id always).
func cycleMap(refs map[string][]datamap.Reference) *datamap.Map {
	f := func(names ...string) map[string]datamap.Field {
		out := map[string]datamap.Field{}
		for _, n := range names {
			out[n] = datamap.Field{Category: "user"}
		}
		return out
	}
	return &datamap.Map{Version: 1, Systems: map[string]datamap.System{"shop": {
		Kind: datamap.KindPostgres, Connector: datamap.ConnectorPostgres,
		Datasets: map[string]datamap.Dataset{
			"users": {Table: "users", Identities: []datamap.Identity{{Field: "email", Type: "email"}},
				References: refs["users"], Fields: f("id", "email", "manager_id", "last_order_id")},
			"orders": {Table: "orders", References: append([]datamap.Reference{{Field: "user_id", To: "shop.users.id"}}, refs["orders"]...),
				Fields: f("id", "user_id", "note", "shipment_id")},
			"lines":     {Table: "lines", References: refs["lines"], Fields: f("id", "order_id", "note")},
			"shipments": {Table: "shipments", References: refs["shipments"], Fields: f("id", "line_id", "note")},
		},
	}}}
}

// TestOwnershipCycleRefused: references that own and go round in a cycle
// (two datasets, three, a table referring to itself) make whose rows they
// are undecidable: the connector does not start, the message names every
// reference of the cycle with its table and column, and nothing changes. A
// cycle that does not own (a manager: relationship) is accepted, and
// ownership does not travel along it.
func TestOwnershipCycleRefused(t *testing.T) {
	url, pool := newDB(t, "shop", cycleDDL)
	ctx := context.Background()
	ref := func(field, to, ownership string) datamap.Reference {
		return datamap.Reference{Field: field, To: to, Ownership: ownership}
	}
	// Datasets without a reference of their own hang off orders, so each
	// case's map reaches every dataset.
	chain := map[string][]datamap.Reference{
		"lines":     {ref("order_id", "shop.orders.id", "")},
		"shipments": {ref("line_id", "shop.lines.id", "")},
	}
	with := func(extra map[string][]datamap.Reference) map[string][]datamap.Reference {
		out := maps.Clone(chain)
		for k, v := range extra {
			out[k] = append(slices.Clone(out[k]), v...)
		}
		return out
	}
	const all = `SELECT (SELECT json_agg(u ORDER BY id) FROM shop.users u)::text || (SELECT json_agg(o ORDER BY id) FROM shop.orders o)::text ||
		(SELECT json_agg(l ORDER BY id) FROM shop.lines l)::text || (SELECT json_agg(s ORDER BY id) FROM shop.shipments s)::text`
	before := snapshot(t, pool, all)

	for _, c := range []struct {
		name string
		refs map[string][]datamap.Reference
		want string
	}{
		{"two datasets", with(map[string][]datamap.Reference{"users": {ref("last_order_id", "shop.orders.id", "")}}),
			`shop.datasets.orders.references[0]: references that own go round in a cycle: orders.user_id -> users.id (column orders.user_id), users.last_order_id -> orders.id (column users.last_order_id);`},
		{"three datasets", with(map[string][]datamap.Reference{"orders": {ref("shipment_id", "shop.shipments.id", datamap.OwnershipOwns)}}),
			`shop.datasets.lines.references[0]: references that own go round in a cycle: lines.order_id -> orders.id (column lines.order_id), orders.shipment_id -> shipments.id (column orders.shipment_id), shipments.line_id -> lines.id (column shipments.line_id);`},
		{"a table referring to itself", with(map[string][]datamap.Reference{"users": {ref("manager_id", "shop.users.id", "")}}),
			`shop.datasets.users.references[0]: a reference of table users to itself owns: users.manager_id -> users.id (column users.manager_id);`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := postgres.New(ctx, postgres.Config{System: "shop", DSN: url, Schema: "shop", HashKey: hashKey, DataMap: staticMap(cycleMap(c.refs))})
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "mark one of them ownership: relationship") {
				t.Fatalf("an ownership cycle: %v\nwant it refused with %q", err, c.want)
			}
			if n := strings.Count(err.Error(), "cycle") + strings.Count(err.Error(), "to itself"); n != 1 {
				t.Errorf("the cycle is reported %d times, want once:\n%v", n, err)
			}
			if retry, _ := connectors.Classify(err); retry {
				t.Errorf("refusal is retryable: %v", err)
			}
			if after := snapshot(t, pool, all); after != before {
				t.Errorf("rows changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}

	// The same references as relationships: accepted, and not followed.
	m := cycleMap(with(map[string][]datamap.Reference{"users": {
		ref("manager_id", "shop.users.id", datamap.OwnershipRelationship),
		ref("last_order_id", "shop.orders.id", datamap.OwnershipRelationship),
	}}))
	c := newConnector(t, postgres.Config{System: "shop", DSN: url, Schema: "shop", DataMap: staticMap(m)})
	sink := &connectortest.MemorySink{}
	if _, err := c.Access(ctx, connectors.AccessParams{Target: connectors.Target{System: "shop", Dataset: "users",
		Identities: []connectors.Identity{id("email", "ann@example.com")}}, Fields: plan(connectors.ActionInclude, "id", "email")}, sink); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, r := range sink.Records() {
		keys = append(keys, r.Key)
	}
	if !slices.Equal(keys, []string{"1"}) {
		t.Errorf("Ann's users rows %q, want only her own (Bob, whom she manages, is not hers)", keys)
	}
}
