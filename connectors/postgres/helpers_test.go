package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/db/dbtest"
)

var hashKey = []byte("0123456789abcdef0123456789abcdef")

// newDB returns a fresh database (on the test server) with ddl run in
// schema.
func newDB(t testing.TB, schema, ddl string) (string, *pgxpool.Pool) {
	t.Helper()
	url, pool := dbtest.New(t)
	ctx := context.Background()
	if _, err := pool.Exec(ctx, "BEGIN; CREATE SCHEMA "+schema+"; SET LOCAL search_path TO "+schema+";"+ddl+"; COMMIT"); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	return url, pool
}

func newConnector(t testing.TB, cfg postgres.Config) *postgres.Connector {
	t.Helper()
	if cfg.HashKey == nil && !cfg.ReadOnly {
		cfg.HashKey = hashKey
	}
	c, err := postgres.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("postgres.New: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func staticMap(m *datamap.Map) func() *datamap.Map { return func() *datamap.Map { return m } }

func id(typ, v string) connectors.Identity { return connectors.Identity{Type: typ, Value: v} }

func count(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// snapshot is every row sql returns, printed, to compare before and after.
func snapshot(t testing.TB, pool *pgxpool.Pool, sql string) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	var all [][]any
	for rows.Next() {
		v, err := rows.Values()
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		all = append(all, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return fmt.Sprint(all)
}
