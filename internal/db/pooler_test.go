package db_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/testpeer"
)

// stmtName is pgx's name for a cached statement, left out of error
// messages so they group.
var stmtName = regexp.MustCompile(`stmtcache_[0-9a-f]+`)

// poolerLoad runs workers goroutines, each holding its own pool connection
// for a few statements and a transaction at a time, so many client
// connections share the pooler's few server connections. It returns the
// errors seen, by message.
func poolerLoad(ctx context.Context, pool *pgxpool.Pool, workers, rounds int) (ok int64, errs map[string]int) {
	var mu sync.Mutex
	errs = map[string]int{}
	var okN atomic.Int64
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs[stmtName.ReplaceAllString(err.Error(), "stmtcache_…")]++
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				conn, err := pool.Acquire(ctx)
				if err != nil {
					fail(err)
					continue
				}
				var n int
				// Several distinct statements on one client connection, as
				// a request's store calls make.
				if err := conn.QueryRow(ctx, `SELECT $1::int + 1`, w).Scan(&n); err != nil || n != w+1 {
					fail(fmt.Errorf("query 1: %v (got %d)", err, n))
				} else if err := conn.QueryRow(ctx, `SELECT length($1::text)`, strconv.Itoa(r)).Scan(&n); err != nil || n != len(strconv.Itoa(r)) {
					fail(fmt.Errorf("query 2: %v (got %d)", err, n))
				} else if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
					var s string
					if err := tx.QueryRow(ctx, `SELECT set_config('steward.probe', $1, true)`, strconv.Itoa(w)).Scan(&s); err != nil {
						return err
					}
					// Transaction-local state holds for the transaction:
					// the pooler keeps one server connection until commit.
					return tx.QueryRow(ctx, `SELECT current_setting('steward.probe')`).Scan(&s)
				}); err != nil {
					fail(fmt.Errorf("transaction: %w", err))
				} else {
					okN.Add(1)
				}
				conn.Release()
			}
		}()
	}
	wg.Wait()
	return okN.Load(), errs
}

// TestPoolThroughTransactionPooler runs many client connections through a
// real PgBouncer 1.18 in transaction mode with 2 server connections: pgx's
// default mode (named prepared statements) fails there, OpenPooled's
// does not.
func TestPoolThroughTransactionPooler(t *testing.T) {
	t.Parallel()
	url, _ := dbtest.New(t)
	pgb := testpeer.StartPgBouncerT(t, url, testpeer.PgBouncerConfig{PoolSize: 2})
	pooled, err := pgb.URL(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const workers, rounds = 16, 10

	t.Run("named prepared statements fail through the pooler", func(t *testing.T) {
		pool, err := db.Open(ctx, pooled)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		_, errs := poolerLoad(ctx, pool, workers, rounds)
		prepared := 0
		for msg, n := range errs {
			if strings.Contains(msg, "prepared statement") {
				prepared += n
			}
		}
		if prepared == 0 {
			t.Fatalf("pgx's default mode worked through a transaction pooler (errors %v): this test no longer shows why OpenPooled exists", errs)
		}
		t.Logf("default mode through PgBouncer: %d prepared-statement errors in %d rounds: %v", prepared, workers*rounds, errs)
	})

	t.Run("OpenPooled works through the pooler", func(t *testing.T) {
		pool, err := db.OpenPooled(ctx, pooled)
		if err != nil {
			t.Fatal(err)
		}
		defer pool.Close()
		ok, errs := poolerLoad(ctx, pool, workers, rounds)
		if len(errs) > 0 || ok != workers*rounds {
			t.Fatalf("%d of %d rounds ok; errors: %v", ok, workers*rounds, errs)
		}
		if got := pool.Stat().MaxConns(); got <= 2 {
			t.Fatalf("Steward's pool has %d connections: not more than the pooler's 2, the test shares nothing", got)
		}
		// The load went through the pooler, on no more server
		// connections than it has.
		name := pool.Config().ConnConfig.Database
		pools, err := pgb.Show(ctx, "postgres", "POOLS")
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range pools {
			if p["database"] != name {
				continue
			}
			found = true
			servers := 0
			for _, col := range []string{"sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"} {
				n, _ := strconv.Atoi(p[col])
				servers += n
			}
			if servers > 2 {
				t.Fatalf("pooler has %d server connections, want at most 2: %v", servers, p)
			}
		}
		if !found {
			t.Fatalf("pooler has no pool for %s: %v", name, pools)
		}
	})
}
