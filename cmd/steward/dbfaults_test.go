package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
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
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/notify/resendtest"
	"github.com/steward-privacy/steward/internal/testpeer"
)

// faultLoad drives a replica with concurrent consent writes and privacy
// request submissions while the database is cut or restarted, and keeps
// what was acknowledged so the test can look for it afterwards.
type faultLoad struct {
	t    *testing.T
	base string
	key  string

	mu        sync.Mutex
	consents  []string    // ids of acknowledged (201) consent events
	requests  []string    // ids of acknowledged (201) privacy requests
	okAt      []time.Time // when each acknowledged write was sent
	status    map[int]int // answers by status code
	bad       []string    // answers that are neither 2xx nor a proper 503
	transport int         // requests that got no answer at all
	seq       atomic.Int64
}

// send posts body and classifies the answer: a 2xx (returned, with its body)
// or a 503 problem+json with Retry-After; anything else is a violation.
func (l *faultLoad) send(path string, body any) (int, []byte) {
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", l.base+path, bytes.NewReader(j))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.key)
	res, err := client.Do(req)
	if err != nil {
		l.mu.Lock()
		l.transport++
		l.bad = append(l.bad, fmt.Sprintf("POST %s: no answer: %v", path, err))
		l.mu.Unlock()
		return 0, nil
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status[res.StatusCode]++
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
	case res.StatusCode == 503:
		if res.Header.Get("Retry-After") == "" || res.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(b), `"code":"unavailable"`) {
			l.bad = append(l.bad, fmt.Sprintf("POST %s: 503 without Retry-After/problem+json: %q %s", path, res.Header.Get("Retry-After"), b))
		}
	default:
		l.bad = append(l.bad, fmt.Sprintf("POST %s: %d %s", path, res.StatusCode, b))
	}
	if err := openapiDoc(l.t).Validate("POST", path, res.StatusCode, res.Header.Get("Content-Type"), b); err != nil {
		l.bad = append(l.bad, fmt.Sprintf("POST %s: response does not match openapi.json: %v", path, err))
	}
	return res.StatusCode, b
}

func (l *faultLoad) consent(worker int) {
	n := l.seq.Add(1)
	sent := time.Now()
	st, b := l.send("/v1/consents", grant(fmt.Sprintf("tg:%d", 7_000_000+worker*1_000_000+int(n)), "broadcast", "granted", "source", "bot", "notice_version", "1.0"))
	if st != 201 {
		return
	}
	var out struct {
		Event struct {
			ID string `json:"id"`
		} `json:"event"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Event.ID == "" {
		l.mu.Lock()
		l.bad = append(l.bad, fmt.Sprintf("201 without an event id: %s", b))
		l.mu.Unlock()
		return
	}
	l.mu.Lock()
	l.consents = append(l.consents, out.Event.ID)
	l.okAt = append(l.okAt, sent)
	l.mu.Unlock()
}

// request submits a bot access request for a person with records in the
// bot database (one with none would pause as "nothing found"); while the
// database is away the records cannot be stored and nothing is submitted.
func (l *faultLoad) request(store *recordstore.Store) {
	tg := fmt.Sprint(6_000_000 + l.seq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := store.Put(ctx, "bot_db", "tg_users", tg, []connectors.Identity{{Type: "tg", Value: tg}}, map[string]any{"tg_id": tg, "username": "u" + tg}); err != nil {
		return
	}
	st, b := l.send("/v1/privacy-requests", map[string]any{"type": "access", "subject": "tg:" + tg, "region": "DE", "channel": "bot", "identity_asserted": true})
	if st != 201 {
		return
	}
	var c createdReq
	if err := json.Unmarshal(b, &c); err != nil || c.Request.ID == "" {
		l.mu.Lock()
		l.bad = append(l.bad, fmt.Sprintf("201 without a request id: %s", b))
		l.mu.Unlock()
		return
	}
	l.mu.Lock()
	l.requests = append(l.requests, c.Request.ID)
	l.mu.Unlock()
}

// firstAckAfter is when the first write sent at or after t was
// acknowledged: recovery is measured from the database's return to it.
func (l *faultLoad) firstAckAfter(t time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var best time.Time
	for _, s := range l.okAt {
		if !s.Before(t) && (best.IsZero() || s.Before(best)) {
			best = s
		}
	}
	return best, !best.IsZero()
}

// TestDatabaseFaultsLoseNoAcknowledgedWrite runs a replica on a private
// PostgreSQL cluster under load — consent writes from several goroutines
// and privacy requests submitted alongside — and, in turn, terminates every
// backend, restarts the cluster (fast) and crashes it (immediate). Every
// acknowledged write must be in the database afterwards, every answer
// meanwhile a 2xx or a 503 with Retry-After, /readyz must fail while the
// database is down, and the replica must recover by itself, finishing the
// privacy requests it had accepted.
func TestDatabaseFaultsLoseNoAcknowledgedWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := testpeer.PG(t)
	if err := pg.CreateDatabase(ctx, "steward"); err != nil {
		t.Fatal(err)
	}
	dbURL := pg.URL("steward")
	if _, err := db.MigrateUp(ctx, dbURL, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("migrate the private cluster: %v", err)
	}
	pool, err := db.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	fake := resendtest.New(t)
	e := newEnvAt(t, dbURL, pool, map[string]string{
		"STEWARD_RESEND_API_KEY": "re_test", "STEWARD_RESEND_BASE_URL": fake.URL, "STEWARD_EMAIL_FROM": "Privacy <privacy@example.com>",
		"STEWARD_TELEGRAM_BOT_TOKEN": testBotToken, "STEWARD_STAFF_EMAIL": "dpo@example.com",
	})
	store := recordstore.New(e.pool, recordstore.Options{HashKey: []byte("0123456789abcdef0123456789abcdef")})
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	r := e.start(func(a *application) {
		a.connectors["app_db"] = store
		a.connectors["bot_db"] = store
	})
	g := &requestsRig{t: t, e: e, r: r, fake: fake, store: store}

	l := &faultLoad{t: t, base: r.base, key: e.keys["frontend"], status: map[int]int{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				l.consent(w)
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(150 * time.Millisecond):
				l.request(store)
			}
		}
	}()
	stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopLoad()

	readyz := func() int {
		c := &http.Client{Timeout: 5 * time.Second}
		res, err := c.Get(r.base + "/readyz")
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	// waitRecovered measures from back (the database answering again) to
	// the first acknowledged write sent after it, and to /readyz passing.
	waitRecovered := func(name string, back time.Time) (write, ready time.Duration) {
		deadline := back.Add(30 * time.Second)
		for ready == 0 || write == 0 {
			if ready == 0 && readyz() == 200 {
				ready = time.Since(back)
			}
			if write == 0 {
				if at, ok := l.firstAckAfter(back); ok {
					write = at.Sub(back)
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not recovered 30 s after the database came back (write %v, readyz %v)\n%s", name, write, ready, pg.Log())
			}
			time.Sleep(10 * time.Millisecond)
		}
		return write, ready
	}
	settle := func() { time.Sleep(1500 * time.Millisecond) }

	settle()
	l.mu.Lock()
	acked, status, bad := len(l.consents), fmt.Sprint(l.status), fmt.Sprint(l.bad)
	l.mu.Unlock()
	if acked == 0 {
		t.Fatalf("no consent write acknowledged before the faults: %s %s", status, bad)
	}

	type result struct {
		name        string
		down        time.Duration
		write, rdyz time.Duration
	}
	var results []result

	// 1. Every client backend terminated (a failover, an administrator's
	// pg_terminate_backend): the database never goes away.
	cut := time.Now()
	n, err := pg.TerminateBackends(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("terminate: no client backend to end; the replica holds none?")
	}
	w, rd := waitRecovered("terminate backends", cut)
	results = append(results, result{name: fmt.Sprintf("terminate %d backends", n), write: w, rdyz: rd})
	settle()

	// 2 and 3. The cluster stopped fast and immediately (a crash: the next
	// start replays the WAL), down long enough for /readyz to see it.
	for _, mode := range []testpeer.ShutdownMode{testpeer.Fast, testpeer.Immediate} {
		start := time.Now()
		if err := pg.Stop(mode); err != nil {
			t.Fatal(err)
		}
		sawDown := false
		for time.Since(start) < 2*time.Second {
			if readyz() == 503 {
				sawDown = true
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !sawDown {
			t.Errorf("restart %s: /readyz never failed while the database was down", mode)
		}
		if err := pg.Start(); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		w, rd := waitRecovered("restart "+string(mode), back)
		results = append(results, result{name: "restart " + string(mode), down: back.Sub(start), write: w, rdyz: rd})
		settle()
	}
	stopLoad()

	l.mu.Lock()
	defer l.mu.Unlock()
	for _, b := range l.bad {
		t.Error(b)
	}
	if strings.Contains(r.logs.String(), `"msg":"request failed"`) {
		t.Error("a fault logged a request failure (a 500) instead of unavailable")
	}
	if l.status[503] == 0 {
		t.Error("no write was answered 503 during the faults: the faults did not bite")
	}

	// Every acknowledged consent event is in the ledger.
	var found int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM consent_events WHERE id = ANY($1::uuid[])", l.consents).Scan(&found); err != nil {
		t.Fatal(err)
	}
	lost := len(l.consents) - found
	if lost != 0 {
		t.Errorf("%d of %d acknowledged consent writes lost", lost, len(l.consents))
	}
	for _, id := range []string{l.consents[0], l.consents[len(l.consents)-1]} {
		if res := r.do("GET", "/v1/consents/receipts/"+id, e.keys["frontend"], nil); res.status != 200 {
			t.Errorf("receipt of acknowledged %s: %d %s", id, res.status, res.body)
		}
	}

	// Every acknowledged privacy request completes: those in flight
	// during a fault are picked up again without help.
	if len(l.requests) == 0 {
		t.Fatal("no privacy request acknowledged")
	}
	var foundReq int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM privacy_requests WHERE id = ANY($1::uuid[])", l.requests).Scan(&foundReq); err != nil {
		t.Fatal(err)
	}
	if foundReq != len(l.requests) {
		t.Errorf("%d of %d acknowledged privacy requests lost", len(l.requests)-foundReq, len(l.requests))
	}
	for _, id := range l.requests {
		g.finishManual(id)
		waitCompleted(t, pool, id, 60*time.Second)
	}

	codes := make([]int, 0, len(l.status))
	for c := range l.status {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var sb strings.Builder
	for _, c := range codes {
		fmt.Fprintf(&sb, " %d×%d", l.status[c], c)
	}
	t.Logf("answers:%s; no answer: %d", sb.String(), l.transport)
	t.Logf("acknowledged: %d consent writes (lost %d), %d privacy requests (lost %d, all completed)", len(l.consents), lost, len(l.requests), len(l.requests)-foundReq)
	for _, res := range results {
		t.Logf("%s: down %v; first acknowledged write %v after the database was back, /readyz 200 after %v",
			res.name, res.down.Round(time.Millisecond), res.write.Round(time.Millisecond), res.rdyz.Round(time.Millisecond))
	}
}

// waitCompleted waits for a privacy request to complete and, if it does
// not, reports where its tasks and their jobs stand.
func waitCompleted(t *testing.T, pool *pgxpool.Pool, id string, limit time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(limit)
	for {
		var st string
		if err := pool.QueryRow(ctx, `SELECT status FROM privacy_requests WHERE id = $1`, id).Scan(&st); err != nil {
			t.Fatal(err)
		}
		if st == string(dsar.Completed) {
			return
		}
		if time.Now().After(deadline) {
			var tasks, jobs []string
			rows, _ := pool.Query(ctx, `SELECT system || '/' || dataset || ':' || status FROM privacy_request_tasks WHERE request_id = $1 ORDER BY system, dataset`, id)
			tasks, _ = pgx.CollectRows(rows, pgx.RowTo[string])
			rows, _ = pool.Query(ctx, `SELECT kind || ':' || state || ' attempt ' || attempt || coalesce(' errors ' || array_length(errors, 1)::text, '') ||
				coalesce(' lease ' || (SELECT (l.expires_at - now())::text FROM job_leases l WHERE l.job_id = j.id), '')
				FROM river_job j WHERE j.args::text LIKE '%' || $1 || '%'
				OR EXISTS (SELECT 1 FROM privacy_request_tasks k WHERE k.request_id = $1::uuid AND j.args::text LIKE '%' || k.id::text || '%') ORDER BY id`, id)
			jobs, _ = pgx.CollectRows(rows, pgx.RowTo[string])
			t.Fatalf("request %s still %s %v after the faults; tasks %v; jobs %v", id, st, limit, tasks, jobs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
