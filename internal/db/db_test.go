package db_test

import (
	"context"
	"log/slog"
	"net/url"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/db/dbtest"
)

// TestConcurrentMigrationsDoNotRace starts several "replicas" migrating one
// empty database at once: the advisory lock must serialise them so that all
// succeed and the schema is applied exactly once.
func TestConcurrentMigrationsDoNotRace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	admin := dbtest.AdminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := "steward_migrate_race"
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	var wg sync.WaitGroup
	applied := make([]int, 4)
	errs := make([]error, 4)
	for i := range applied {
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied[i], errs[i] = db.MigrateUp(ctx, u.String(), slog.New(slog.DiscardHandler))
		}()
	}
	wg.Wait()
	total := 0
	for i := range applied {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	var versions int
	pool, err := db.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM steward_schema_migrations WHERE version_id > 0").Scan(&versions); err != nil {
		t.Fatal(err)
	}
	if total != versions || versions == 0 {
		t.Fatalf("migrations applied %d times in total, schema has %d versions", total, versions)
	}
}
