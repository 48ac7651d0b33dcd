package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	neturl "net/url"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/postgres"
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
