package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/notify/resendtest"
	"github.com/steward-privacy/steward/internal/testutil"
)

const (
	testAudience = "aud_test"
	testAPIKey   = "re_test_key"
)

type env struct {
	pool *pgxpool.Pool
	kr   *keyring.Keyring
	clk  *clock.Fake
	fake *resendtest.Server
	logs *testutil.SyncBuffer
	log  *slog.Logger
	ob   *Outbox
}

func newEnv(t *testing.T) *env {
	t.Helper()
	_, pool := dbtest.New(t)
	e := &env{
		pool: pool,
		kr:   keyring.NewRandom("k1"),
		clk:  clock.NewFake(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)),
		fake: resendtest.New(t),
		logs: &testutil.SyncBuffer{},
	}
	e.log = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.ob = NewOutbox(e.kr, e.clk, e.log)
	return e
}

// enqueue commits one unsubscribe message and returns its id.
func (e *env) enqueue(t *testing.T, email string) int64 {
	t.Helper()
	var id int64
	err := db.Tx(context.Background(), e.pool, func(tx pgx.Tx) error {
		if err := e.ob.EnqueueUnsubscribe(context.Background(), tx, email); err != nil {
			return err
		}
		return tx.QueryRow(context.Background(), `SELECT max(id) FROM outbox`).Scan(&id)
	})
	if err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return id
}

// config is a worker config aimed at the fake, with small backoffs.
func (e *env) config() WorkerConfig {
	return WorkerConfig{
		Resend:      ResendConfig{APIKey: testAPIKey, BaseURL: e.fake.URL, AudienceID: testAudience},
		BaseBackoff: 10 * time.Second,
		MaxBackoff:  time.Hour,
	}
}

type outboxRow struct {
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	LastError     *string
	Key           string
	Payload       string
	DeliveredAt   *time.Time
	FailedAt      *time.Time
}

func (e *env) row(t *testing.T, id int64) outboxRow {
	t.Helper()
	var r outboxRow
	err := e.pool.QueryRow(context.Background(), `
		SELECT status, attempts, next_attempt_at, last_error, idempotency_key::text, payload::text, delivered_at, failed_at
		FROM outbox WHERE id = $1`, id).
		Scan(&r.Status, &r.Attempts, &r.NextAttemptAt, &r.LastError, &r.Key, &r.Payload, &r.DeliveredAt, &r.FailedAt)
	if err != nil {
		t.Fatalf("read outbox row %d: %v", id, err)
	}
	return r
}

func runOnce(t *testing.T, w *Worker) RunResult {
	t.Helper()
	res, err := w.RunOnce(context.Background())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return res
}

// failRecorder is a FinalFailure hook that remembers its calls and checks it
// runs inside the transaction that marks the message failed.
type failRecorder struct {
	mu    sync.Mutex
	calls []Message
	err   error // returned from the hook when set
}

func (f *failRecorder) hook(t *testing.T) FinalFailure {
	return func(ctx context.Context, tx pgx.Tx, m Message) error {
		// The failed status is not committed yet: only the same transaction
		// can see it.
		var status string
		if err := tx.QueryRow(ctx, `SELECT status FROM outbox WHERE id = $1`, m.ID).Scan(&status); err != nil {
			t.Errorf("hook: read row: %v", err)
		}
		if status != "failed" {
			t.Errorf("hook sees status %q, want failed (same transaction)", status)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		f.calls = append(f.calls, m)
		return f.err
	}
}

func (f *failRecorder) Calls() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Message(nil), f.calls...)
}

func assertNoEmail(t *testing.T, where, s string) {
	t.Helper()
	if strings.Contains(s, "@") {
		t.Errorf("%s contains an email address: %q", where, s)
	}
}

func TestEnqueue(t *testing.T) {
	t.Parallel()

	t.Run("rolled_back_transaction_leaves_nothing", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		ctx := context.Background()
		errRollback := errors.New("consent change refused")
		err := db.Tx(ctx, e.pool, func(tx pgx.Tx) error {
			if err := e.ob.EnqueueUnsubscribe(ctx, tx, "ann@example.com"); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("Tx error = %v, want the rollback cause", err)
		}
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("outbox has %d rows after rollback, want 0", n)
		}
	})

	t.Run("payload_holds_no_plaintext_email", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id := e.enqueue(t, "bob.secret@example.com")
		var clean bool
		err := e.pool.QueryRow(context.Background(), `
			SELECT payload::text NOT LIKE '%@%' AND payload::text NOT LIKE '%bob.secret%' FROM outbox WHERE id = $1`, id).Scan(&clean)
		if err != nil {
			t.Fatal(err)
		}
		if !clean {
			t.Fatalf("payload holds the email in the clear: %s", e.row(t, id).Payload)
		}
		r := e.row(t, id)
		if r.Status != "pending" || r.Attempts != 0 || !r.NextAttemptAt.Equal(e.clk.Now()) {
			t.Errorf("new row = %+v, want pending, 0 attempts, due now", r)
		}
		logs := e.logs.String()
		if !strings.Contains(logs, "outbox message queued") || !strings.Contains(logs, fmt.Sprintf("outbox_id=%d", id)) {
			t.Errorf("queue log missing: %s", logs)
		}
		assertNoEmail(t, "logs", logs)
	})

	t.Run("missing_email_refused", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		err := db.Tx(context.Background(), e.pool, func(tx pgx.Tx) error {
			return e.ob.EnqueueUnsubscribe(context.Background(), tx, "  ")
		})
		if err == nil {
			t.Fatal("empty email accepted")
		}
	})
}

func TestWorker(t *testing.T) {
	t.Parallel()

	t.Run("delivered_and_contact_unsubscribed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		const email = "ann@example.com"
		e.fake.AddContact(testAudience, email, false)
		id := e.enqueue(t, email)
		key := e.row(t, id).Key
		w := NewWorker(e.pool, e.kr, e.config(), e.clk, e.log, nil)

		if res := runOnce(t, w); res != (RunResult{Delivered: 1}) {
			t.Fatalf("RunOnce = %+v, want 1 delivered", res)
		}
		if c, ok := e.fake.Contact(testAudience, email); !ok || !c.Unsubscribed {
			t.Fatalf("contact = %+v (exists %v), want unsubscribed", c, ok)
		}
		reqs := e.fake.Requests()
		if len(reqs) != 1 {
			t.Fatalf("requests = %v, want one PATCH", reqs)
		}
		got := reqs[0]
		if got.Method != http.MethodPatch || got.Path != "/audiences/"+testAudience+"/contacts/"+email {
			t.Errorf("request = %v, want PATCH of the contact", got)
		}
		if got.IdempotencyKey != key {
			t.Errorf("Idempotency-Key = %q, want the row's key %q", got.IdempotencyKey, key)
		}
		if got.Authorization != "Bearer "+testAPIKey {
			t.Errorf("Authorization = %q", got.Authorization)
		}
		if got.Body["unsubscribed"] != true {
			t.Errorf("body = %v, want unsubscribed=true", got.Body)
		}
		r := e.row(t, id)
		if r.Status != "delivered" || r.Attempts != 1 || r.DeliveredAt == nil || !r.DeliveredAt.Equal(e.clk.Now()) || r.LastError != nil {
			t.Errorf("row = %+v, want delivered after 1 attempt", r)
		}
		if r.Payload != "{}" {
			t.Errorf("payload after delivery = %s, want {} (sealed email erased)", r.Payload)
		}
		if n, _ := w.Pending(context.Background()); n != 0 {
			t.Errorf("Pending = %d, want 0", n)
		}
		if res := runOnce(t, w); res != (RunResult{}) {
			t.Errorf("second RunOnce = %+v, want nothing to do", res)
		}
		assertNoEmail(t, "logs", e.logs.String())
	})

	t.Run("missing_contact_created_unsubscribed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		const email = "New.Person@example.com"
		id := e.enqueue(t, email)
		key := e.row(t, id).Key
		w := NewWorker(e.pool, e.kr, e.config(), e.clk, e.log, nil)

		if res := runOnce(t, w); res != (RunResult{Delivered: 1}) {
			t.Fatalf("RunOnce = %+v, want 1 delivered", res)
		}
		c, ok := e.fake.Contact(testAudience, email)
		if !ok || !c.Unsubscribed {
			t.Fatalf("contact = %+v (exists %v), want created unsubscribed", c, ok)
		}
		reqs := e.fake.Requests()
		if len(reqs) != 2 || reqs[0].Method != http.MethodPatch || reqs[0].Status != http.StatusNotFound ||
			reqs[1].Method != http.MethodPost || reqs[1].Status != http.StatusCreated {
			t.Fatalf("requests = %v, want PATCH 404 then POST 201", reqs)
		}
		for _, r := range reqs {
			if r.IdempotencyKey != key {
				t.Errorf("%v: Idempotency-Key = %q, want %q", r, r.IdempotencyKey, key)
			}
		}
	})

	t.Run("contact_created_concurrently_updated_after_conflict", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		const email = "race@example.com"
		// The contact exists, but the first PATCH answers 404 as if it did
		// not yet: the create then conflicts, and the update must follow.
		e.fake.AddContact(testAudience, email, false)
		e.fake.FailNext(1, http.StatusNotFound)
		e.enqueue(t, email)
		w := NewWorker(e.pool, e.kr, e.config(), e.clk, e.log, nil)

		if res := runOnce(t, w); res != (RunResult{Delivered: 1}) {
			t.Fatalf("RunOnce = %+v, want 1 delivered", res)
		}
		reqs := e.fake.Requests()
		if len(reqs) != 3 || reqs[1].Method != http.MethodPost || reqs[1].Status != http.StatusConflict ||
			reqs[2].Method != http.MethodPatch || reqs[2].Status != http.StatusOK {
			t.Fatalf("requests = %v, want PATCH 404, POST 409, PATCH 200", reqs)
		}
		if c, _ := e.fake.Contact(testAudience, email); !c.Unsubscribed {
			t.Error("contact still subscribed")
		}
	})

	t.Run("run_loop_delivers_until_cancelled", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		for i := range 15 {
			e.enqueue(t, fmt.Sprintf("loop%02d@example.com", i))
		}
		cfg := e.config()
		cfg.BatchSize = 4
		cfg.PollInterval = 10 * time.Millisecond
		w := NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { w.Run(ctx); close(done) }()

		deadline := time.Now().Add(10 * time.Second)
		for {
			n, err := w.Pending(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d messages still pending", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	})

	t.Run("resend_down_retried_with_growing_backoff_then_delivered", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		const email = "carol@example.com"
		e.fake.AddContact(testAudience, email, false)
		id := e.enqueue(t, email)
		key := e.row(t, id).Key
		w := NewWorker(e.pool, e.kr, e.config(), e.clk, e.log, nil)
		e.fake.FailNext(3, http.StatusServiceUnavailable)

		var lastDelay time.Duration
		for i := 1; i <= 3; i++ {
			if res := runOnce(t, w); res != (RunResult{Retried: 1}) {
				t.Fatalf("attempt %d: RunOnce = %+v, want 1 retried", i, res)
			}
			r := e.row(t, id)
			delay := r.NextAttemptAt.Sub(e.clk.Now())
			if r.Status != "pending" || r.Attempts != i {
				t.Fatalf("attempt %d: row = %+v, want pending with %d attempts", i, r, i)
			}
			if delay <= lastDelay {
				t.Fatalf("attempt %d: backoff %v did not grow from %v", i, delay, lastDelay)
			}
			if r.LastError == nil || !strings.Contains(*r.LastError, "503") {
				t.Errorf("attempt %d: last_error = %v, want the 503", i, r.LastError)
			} else {
				assertNoEmail(t, "last_error", *r.LastError)
			}
			lastDelay = delay
			// Not due yet: nothing happens before the backoff elapses.
			if res := runOnce(t, w); res != (RunResult{}) {
				t.Fatalf("attempt %d: RunOnce before due = %+v, want nothing", i, res)
			}
			e.clk.Set(r.NextAttemptAt)
		}
		if res := runOnce(t, w); res != (RunResult{Delivered: 1}) {
			t.Fatalf("final RunOnce = %+v, want delivered", res)
		}
		if c, _ := e.fake.Contact(testAudience, email); !c.Unsubscribed {
			t.Error("contact still subscribed")
		}
		reqs := e.fake.Requests()
		if len(reqs) != 4 {
			t.Fatalf("requests = %v, want 4", reqs)
		}
		for _, r := range reqs {
			if r.IdempotencyKey != key {
				t.Errorf("%v: Idempotency-Key changed across retries, want %q", r, key)
			}
		}
		if r := e.row(t, id); r.Status != "delivered" || r.Attempts != 4 {
			t.Errorf("row = %+v, want delivered after 4 attempts", r)
		}
		assertNoEmail(t, "logs", e.logs.String())
	})

	t.Run("rate_limited_waits_at_least_retry_after", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id := e.enqueue(t, "dan@example.com")
		cfg := e.config()
		cfg.BaseBackoff = 10 * time.Millisecond
		w := NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil)
		e.fake.FailNext(1, http.StatusTooManyRequests) // the fake says Retry-After: 1

		if res := runOnce(t, w); res != (RunResult{Retried: 1}) {
			t.Fatalf("RunOnce = %+v, want 1 retried", res)
		}
		if d := e.row(t, id).NextAttemptAt.Sub(e.clk.Now()); d < time.Second {
			t.Errorf("retry in %v, want at least Retry-After (1s)", d)
		}
	})

	t.Run("permanent_rejection_failed_at_once_and_hook_called", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id := e.enqueue(t, "erin@example.com")
		key := e.row(t, id).Key
		fr := &failRecorder{}
		w := NewWorker(e.pool, e.kr, e.config(), e.clk, e.log, fr.hook(t))
		e.fake.FailNext(1, http.StatusUnprocessableEntity)

		if res := runOnce(t, w); res != (RunResult{Failed: 1}) {
			t.Fatalf("RunOnce = %+v, want 1 failed", res)
		}
		r := e.row(t, id)
		if r.Status != "failed" || r.Attempts != 1 || r.FailedAt == nil || r.LastError == nil || !strings.Contains(*r.LastError, "422") {
			t.Fatalf("row = %+v, want failed after 1 attempt with the 422", r)
		}
		calls := fr.Calls()
		if len(calls) != 1 {
			t.Fatalf("hook calls = %+v, want 1", calls)
		}
		want := Message{ID: id, Kind: KindResendUnsubscribe, IdempotencyKey: key, Attempts: 1, LastError: *r.LastError}
		if calls[0] != want {
			t.Errorf("hook got %+v, want %+v", calls[0], want)
		}
		if res := runOnce(t, w); res != (RunResult{}) {
			t.Errorf("RunOnce after failure = %+v, want nothing", res)
		}
	})

	t.Run("attempts_exhausted_failed_and_hook_called", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id := e.enqueue(t, "frank@example.com")
		fr := &failRecorder{}
		cfg := e.config()
		cfg.MaxAttempts = 3
		w := NewWorker(e.pool, e.kr, cfg, e.clk, e.log, fr.hook(t))
		e.fake.FailNext(100, http.StatusInternalServerError)

		for i := 1; i <= 2; i++ {
			if res := runOnce(t, w); res != (RunResult{Retried: 1}) {
				t.Fatalf("attempt %d: RunOnce = %+v, want retried", i, res)
			}
			e.clk.Set(e.row(t, id).NextAttemptAt)
		}
		if res := runOnce(t, w); res != (RunResult{Failed: 1}) {
			t.Fatalf("last attempt: RunOnce = %+v, want failed", res)
		}
		if r := e.row(t, id); r.Status != "failed" || r.Attempts != 3 {
			t.Errorf("row = %+v, want failed after 3 attempts", r)
		}
		if calls := fr.Calls(); len(calls) != 1 || calls[0].ID != id || calls[0].Attempts != 3 {
			t.Errorf("hook calls = %+v, want one for message %d after 3 attempts", calls, id)
		}
		if n := len(e.fake.Requests()); n != 3 {
			t.Errorf("%d requests, want 3", n)
		}
	})

	t.Run("hook_error_keeps_message_pending", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id := e.enqueue(t, "gina@example.com")
		fr := &failRecorder{err: errors.New("audit store down")}
		w := NewWorker(e.pool, e.kr, e.config(), e.clk, e.log, fr.hook(t))
		e.fake.FailNext(2, http.StatusUnprocessableEntity)

		res, err := w.RunOnce(context.Background())
		if err == nil || res != (RunResult{Retried: 1}) {
			t.Fatalf("RunOnce = %+v, %v; want 1 retried and the hook's error", res, err)
		}
		r := e.row(t, id)
		if r.Status != "pending" || r.Attempts != 1 || r.FailedAt != nil {
			t.Fatalf("row = %+v, want still pending (failure not recorded without its audit)", r)
		}
		fr.mu.Lock()
		fr.err = nil
		fr.mu.Unlock()
		e.clk.Set(r.NextAttemptAt)
		if res := runOnce(t, w); res != (RunResult{Failed: 1}) {
			t.Fatalf("RunOnce = %+v, want failed once the hook works", res)
		}
		if calls := fr.Calls(); len(calls) != 2 {
			t.Errorf("hook calls = %d, want 2", len(calls))
		}
	})

	t.Run("network_error_retried_without_email_in_error", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		const email = "hana@example.com"
		id := e.enqueue(t, email)
		down := resendtest.New(t)
		down.Close() // nothing listens there any more
		cfg := e.config()
		cfg.Resend.BaseURL = down.URL
		w := NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil)

		if res := runOnce(t, w); res != (RunResult{Retried: 1}) {
			t.Fatalf("RunOnce = %+v, want retried", res)
		}
		r := e.row(t, id)
		if r.LastError == nil || !strings.Contains(*r.LastError, "network") {
			t.Fatalf("last_error = %v, want a network error", r.LastError)
		}
		assertNoEmail(t, "last_error", *r.LastError)
		assertNoEmail(t, "logs", e.logs.String())
	})

	t.Run("no_api_key_keeps_messages_and_warns_once", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id := e.enqueue(t, "ivan@example.com")
		e.enqueue(t, "judy@example.com")
		cfg := e.config()
		cfg.Resend.APIKey = ""
		w := NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil)

		for range 3 {
			if res := runOnce(t, w); res != (RunResult{Kept: 2}) {
				t.Fatalf("RunOnce = %+v, want 2 kept", res)
			}
		}
		if r := e.row(t, id); r.Status != "pending" || r.Attempts != 0 {
			t.Errorf("row = %+v, want untouched pending", r)
		}
		if n, _ := w.Pending(context.Background()); n != 2 {
			t.Errorf("Pending = %d, want 2", n)
		}
		if reqs := e.fake.Requests(); len(reqs) != 0 {
			t.Errorf("requests sent without a key: %v", reqs)
		}
		logs := e.logs.String()
		if n := strings.Count(logs, "until STEWARD_RESEND_API_KEY is set"); n != 1 {
			t.Errorf("keep warning logged %d times, want once per worker:\n%s", n, logs)
		}
		if !strings.Contains(logs, "level=WARN") {
			t.Errorf("keep warning not at WARN:\n%s", logs)
		}
	})

	t.Run("key_without_audience_refused_and_messages_kept", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.enqueue(t, "kim@example.com")
		cfg := e.config()
		cfg.Resend.AudienceID = ""
		if err := cfg.Resend.Validate(); err == nil {
			t.Error("Validate accepted an API key without an audience")
		}
		w := NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil)
		if res := runOnce(t, w); res != (RunResult{Kept: 1}) {
			t.Fatalf("RunOnce = %+v, want 1 kept", res)
		}
		if reqs := e.fake.Requests(); len(reqs) != 0 {
			t.Errorf("requests sent: %v", reqs)
		}
	})

	t.Run("undecryptable_payload_failed_for_good", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id := e.enqueue(t, "leo@example.com")
		fr := &failRecorder{}
		// A keyring without the sealing key, as after removing it too early.
		w := NewWorker(e.pool, keyring.NewRandom("k2"), e.config(), e.clk, e.log, fr.hook(t))
		if res := runOnce(t, w); res != (RunResult{Failed: 1}) {
			t.Fatalf("RunOnce = %+v, want failed", res)
		}
		if r := e.row(t, id); r.Status != "failed" {
			t.Errorf("row = %+v, want failed", r)
		}
		if len(fr.Calls()) != 1 || len(e.fake.Requests()) != 0 {
			t.Errorf("hook calls %d, requests %d; want 1 and 0", len(fr.Calls()), len(e.fake.Requests()))
		}
	})

	t.Run("concurrent_workers_deliver_each_message_once", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		const n = 40
		for i := range n {
			e.enqueue(t, fmt.Sprintf("user%02d@example.com", i))
		}
		cfg := e.config()
		cfg.BatchSize = 3
		workers := []*Worker{
			NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil),
			NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil),
		}
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			delivered int
			start     = make(chan struct{})
		)
		for _, w := range workers {
			wg.Go(func() {
				<-start
				for {
					res, err := w.RunOnce(context.Background())
					if err != nil {
						t.Errorf("RunOnce: %v", err)
						return
					}
					mu.Lock()
					delivered += res.Delivered
					mu.Unlock()
					if res.Delivered+res.Retried+res.Failed == 0 {
						return
					}
				}
			})
		}
		close(start)
		wg.Wait()
		if res := runOnce(t, workers[0]); res != (RunResult{}) {
			t.Errorf("left over after both workers stopped: %+v", res)
		}
		if delivered != n {
			t.Errorf("delivered %d, want %d", delivered, n)
		}
		perKey := map[string]int{}
		for _, r := range e.fake.Requests() {
			if r.Method == http.MethodPost {
				perKey[r.IdempotencyKey]++ // contacts do not exist: PATCH 404, then POST
			}
		}
		if len(perKey) != n {
			t.Errorf("%d distinct messages created contacts, want %d", len(perKey), n)
		}
		for k, c := range perKey {
			if c != 1 {
				t.Errorf("message %s delivered %d times, want once", k, c)
			}
		}
		for i := range n {
			if c, ok := e.fake.Contact(testAudience, fmt.Sprintf("user%02d@example.com", i)); !ok || !c.Unsubscribed {
				t.Errorf("user%02d not unsubscribed", i)
			}
		}
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	base, limit := 5*time.Second, time.Hour

	t.Run("doubles_within_jitter_bounds", func(t *testing.T) {
		t.Parallel()
		for prior := range 8 {
			nominal := base << prior
			lo := backoffDelay(base, limit, prior, 0, 0)
			hi := backoffDelay(base, limit, prior, 0, 0.999999)
			if lo < nominal*8/10 || hi > nominal*12/10 || lo >= hi {
				t.Errorf("prior %d: range [%v, %v], want within ±20%% of %v", prior, lo, hi, nominal)
			}
			if next := backoffDelay(base, limit, prior+1, 0, 0); next <= hi {
				t.Errorf("prior %d: next minimum %v not above this maximum %v", prior, next, hi)
			}
		}
	})

	t.Run("capped_at_max_backoff", func(t *testing.T) {
		t.Parallel()
		for _, prior := range []int{10, 12, 63, 1000} {
			if d := backoffDelay(base, limit, prior, 0, 0.999999); d > limit || d < limit*8/10 {
				t.Errorf("prior %d: %v, want within [0.8, 1]×%v", prior, d, limit)
			}
		}
	})

	t.Run("retry_after_respected", func(t *testing.T) {
		t.Parallel()
		if d := backoffDelay(base, limit, 0, time.Minute, 0.5); d != time.Minute {
			t.Errorf("got %v, want Retry-After's 1m", d)
		}
	})
}

func TestRedact(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"echoed_address":   `[ERROR]: Contact Ann@Example.com not found`,
		"escaped_in_query": `Patch "http://x/contacts?e=ann%40example.com": EOF`,
		"other_address":    `conflict with bob@example.org`,
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			out := redact(in, "ann@example.com")
			if strings.Contains(out, "@") || strings.Contains(out, "%40") || strings.Contains(strings.ToLower(out), "ann") {
				t.Errorf("redact(%q) = %q, still has the address", in, out)
			}
		})
	}
}
