package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	neturl "net/url"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/postgres"
)

// A schema the connector's role cannot read: the connector does not start
// (or the task fails permanently), the message names the schema or table,
// and nothing changes.
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
	c, err := postgres.New(ctx, postgres.Config{System: "shop", DSN: dsn, Schema: "shop", HashKey: hashKey, DataMap: staticMap(shopMap())})
	if err != nil {
		t.Logf("start refused: %v", err)
		if !strings.Contains(err.Error(), "shop") {
			t.Errorf("start refused without naming the schema: %v", err)
		}
	} else {
		defer c.Close()
		_, err := c.Access(ctx, connectors.AccessParams{Target: connectors.Target{System: "shop", Dataset: "people",
			Identities: []connectors.Identity{id("email", "ann@example.com")}}, Fields: plan(connectors.ActionInclude, "id", "email")},
			&connectortest.MemorySink{})
		if err == nil {
			t.Fatal("access through a role without USAGE on the schema succeeded")
		}
		t.Logf("access refused: %v", err)
		if retry, _ := connectors.Classify(err); retry || !strings.Contains(err.Error(), "shop") || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("access error: retryable=%v %v; want a permanent error naming the schema and the refusal", retry, err)
		}
	}
	if after := count(); after != before {
		t.Errorf("rows changed: %d -> %d", before, after)
	}
}
