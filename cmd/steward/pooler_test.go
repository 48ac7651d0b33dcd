package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/recordstore"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/notify/resendtest"
	"github.com/steward-privacy/steward/internal/testpeer"
)

// withParam returns the PostgreSQL URL u with query parameter k set to v.
func withParam(t *testing.T, u, k, v string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	q.Set(k, v)
	p.RawQuery = q.Encode()
	return p.String()
}

// sessionBackends counts the backends each named session URL has open
// (pg_stat_activity's application_name), and names the one holding the
// scheduler's leader lock ("" when none does).
func sessionBackends(t *testing.T, pool *pgxpool.Pool) (counts map[string]int, leader []string) {
	t.Helper()
	ctx := context.Background()
	counts = map[string]int{}
	rows, err := pool.Query(ctx, `SELECT application_name, count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name LIKE 'steward-%-session' GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			t.Fatal(err)
		}
		counts[name] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// A bigint advisory key is stored as classid (high half), objid (low
	// half), objsubid 1.
	rows, err = pool.Query(ctx, `SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
		  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND (l.classid::bigint << 32 | l.objid::bigint) = $1`, int64(schedulerLockID))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		leader = append(leader, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return counts, leader
}

// emptyDatabase creates a database with no schema, dropped when the test
// ends, so the first replica's start must migrate it.
func emptyDatabase(t *testing.T) (string, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	admin := dbtest.AdminURL()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := "steward_pooler_" + strings.ToLower(rand.Text()[:10])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err != nil {
			t.Logf("drop %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("drop %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	pool, err := db.Open(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return u.String(), pool
}

// TestBehindTransactionPooler runs two replicas whose DATABASE_URL is a real
// PgBouncer 1.18 in transaction mode (4 server connections, fewer than
// either replica's own pool) and whose STEWARD_DATABASE_SESSION_URL is the
// direct server: everything works, the session work stays on its few
// direct connections, and the load shows no prepared-statement errors.
func TestBehindTransactionPooler(t *testing.T) {
	t.Parallel()
	direct, pool := emptyDatabase(t)
	pgb := testpeer.StartPgBouncerT(t, direct, testpeer.PgBouncerConfig{PoolSize: 4})
	pooled, err := pgb.URL(direct)
	if err != nil {
		t.Fatal(err)
	}
	fake := resendtest.New(t)
	sessionA := withParam(t, direct, "application_name", "steward-a-session")
	sessionB := withParam(t, direct, "application_name", "steward-b-session")
	e := newEnvAt(t, pooled, pool, map[string]string{
		"STEWARD_DATABASE_SESSION_URL": sessionA,
		// The elector is asked at every firing: a short interval makes
		// the election (and a failover) visible within the test.
		"STEWARD_REMINDER_INTERVAL": "200ms",
		"STEWARD_RESEND_API_KEY":    "re_test", "STEWARD_RESEND_BASE_URL": fake.URL, "STEWARD_EMAIL_FROM": "Privacy <privacy@example.com>",
		"STEWARD_TELEGRAM_BOT_TOKEN": testBotToken, "STEWARD_STAFF_EMAIL": "dpo@example.com",
	})
	if !e.cfg.Pooled() {
		t.Fatal("configuration does not treat DATABASE_URL as a pooler")
	}
	// newEnvAt's first command migrated the empty database: through the
	// session URL, since the pooler would not keep the migration locks.
	if n := countRows(t, pool, "steward_schema_migrations"); n < 2 {
		t.Fatalf("%d migrations recorded", n)
	}
	store := recordstore.New(pool, recordstore.Options{HashKey: []byte("0123456789abcdef0123456789abcdef")})
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	withStore := func(a *application) {
		a.connectors["app_db"] = store
		a.connectors["bot_db"] = store
	}
	a := e.start(withStore)
	e.cfg.DatabaseSessionURL = sessionB
	b := e.start(withStore)
	fk, reviewer := e.keys["frontend"], e.keys["reviewer"]

	t.Run("the main pool goes through the pooler, the session work does not", func(t *testing.T) {
		if got := a.app.pool.Config().ConnConfig.Port; fmt.Sprint(got) != pgb.Addr[strings.LastIndex(pgb.Addr, ":")+1:] {
			t.Fatalf("main pool on port %d, pooler on %s", got, pgb.Addr)
		}
		if a.app.session == a.app.pool || a.app.session.Config().MaxConns != db.SessionConns {
			t.Fatalf("elector pool: shared with the main pool or not capped at %d", db.SessionConns)
		}
	})

	t.Run("consent write and check, and cross-replica invalidation", func(t *testing.T) {
		subj := "tg:4242001"
		if c := b.check(fk, subj, "broadcast", "DE"); c.Allow {
			t.Fatalf("before grant: %+v", c)
		}
		if b.app.consent.Cache().Len() == 0 {
			t.Fatal("replica B did not cache the subject; the test would not prove invalidation")
		}
		a.record(fk, grant(subj, "broadcast", "granted", "source", "bot", "notice_version", "1.0"))
		if c := a.check(fk, subj, "broadcast", "DE"); !c.Allow {
			t.Fatalf("replica A does not see its own write: %+v", c)
		}
		waitCheck := func(r *replica, allow bool, reason string) time.Duration {
			start := time.Now()
			for deadline := start.Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
				if c := r.check(fk, subj, "broadcast", "DE"); c.Allow == allow && (reason == "" || c.Reason == reason) {
					return time.Since(start)
				}
			}
			t.Fatalf("replica never saw the change made on the other (allow %v)", allow)
			return 0
		}
		waitCheck(b, true, "")
		// The withdrawal: B's cache now holds the grant, so only the
		// NOTIFY, received on B's direct LISTEN connection, can end it.
		a.record(fk, grant(subj, "broadcast", "withdrawn", "source", "bot", "notice_version", "1.0"))
		took := waitCheck(b, false, "withdrawn")
		t.Logf("replica B saw replica A's withdrawal %v after it was acknowledged", took)
	})

	t.Run("a key revoked on A is refused by B", func(t *testing.T) {
		keyRevokedEverywhere(t, e.vars, "pooled", func(id string) {
			if _, err := a.app.keys.Revoke(context.Background(), id, "system:test"); err != nil {
				t.Fatal(err)
			}
		}, a, b)
	})

	t.Run("a privacy request runs to completion through River", func(t *testing.T) {
		g := &requestsRig{t: t, e: e, r: a, fake: fake, store: store}
		ctx := context.Background()
		tg := connectors.Identity{Type: "tg", Value: "5550077"}
		if err := store.Put(ctx, "bot_db", "tg_users", "5550077", []connectors.Identity{tg}, map[string]any{"tg_user_id": "5550077"}); err != nil {
			t.Fatal(err)
		}
		c := g.create(fk, map[string]any{"type": "erasure", "subject": "tg:5550077", "region": "GB", "channel": "bot", "identity_asserted": true}, 201)
		id := c.Request.ID
		g.waitFor(id, dsar.AwaitingApproval)
		// Approved on the other replica: either may work the jobs.
		if res := b.do("POST", "/v1/privacy-requests/"+id+"/approve", reviewer, map[string]any{"note": "identity matches"}); res.status != 200 {
			t.Fatalf("approve: %d %s", res.status, res.body)
		}
		g.finishManual(id)
		d := g.waitFor(id, dsar.Completed)
		automated := 0
		for _, task := range d.Tasks {
			if task.Mode == dsar.ModeAutomated {
				automated++
				if task.Status != dsar.TaskSucceeded {
					t.Errorf("task %s.%s: %s", task.System, task.Dataset, task.Status)
				}
			}
		}
		if automated == 0 {
			t.Fatal("no automated task ran: River was not exercised")
		}
		var worked int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'completed'`).Scan(&worked); err != nil || worked == 0 {
			t.Fatalf("River completed %d jobs (%v)", worked, err)
		}
	})

	t.Run("many concurrent requests through the pooler", func(t *testing.T) {
		const workers, each = 24, 15
		var ok, bad atomic.Int64
		var mu sync.Mutex
		var failures []string
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := []*replica{a, b}[w%2]
				for i := range each {
					subj := fmt.Sprintf("tg:77%03d%03d", w, i)
					var res resp
					if i%3 == 0 {
						res = r.do("POST", "/v1/consents", fk, grant(subj, "broadcast", "granted", "source", "bot", "notice_version", "1.0"))
					} else {
						res = r.do("GET", "/v1/consent/check?subject="+subj+"&purpose=broadcast&jurisdiction=DE", fk, nil)
					}
					if res.status >= 200 && res.status < 300 {
						ok.Add(1)
						continue
					}
					bad.Add(1)
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%d %s", res.status, res.body))
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if bad.Load() > 0 {
			t.Fatalf("%d of %d requests failed through the pooler, first: %s", bad.Load(), workers*each, failures[0])
		}
		t.Logf("%d concurrent requests through PgBouncer (4 server connections), all 2xx", ok.Load())
	})

	t.Run("exactly one leader, on a direct session, and it fails over", func(t *testing.T) {
		var counts map[string]int
		var holders []string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if counts, holders = sessionBackends(t, pool); len(holders) == 1 {
				break
			}
		}
		if len(holders) != 1 {
			t.Fatalf("leader lock held by %v, want exactly one direct session", holders)
		}
		for name, n := range counts {
			if n > 2 {
				t.Errorf("%s has %d direct connections, want at most 2 (LISTEN and the leader lock)", name, n)
			}
		}
		first, next := a, "steward-b-session"
		if holders[0] == "steward-b-session" {
			first, next = b, "steward-a-session"
		}
		first.stop()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if _, holders = sessionBackends(t, pool); len(holders) == 1 && holders[0] == next {
				return
			}
		}
		t.Fatalf("after the leader stopped, the lock is held by %v, want %s", holders, next)
	})

	t.Run("no database errors in the replicas' logs", func(t *testing.T) {
		for name, r := range map[string]*replica{"A": a, "B": b} {
			for _, line := range strings.Split(r.logs.String(), "\n") {
				if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, "prepared statement") || strings.Contains(line, "SQLSTATE") {
					t.Errorf("replica %s logged: %s", name, line)
				}
			}
		}
	})
}
