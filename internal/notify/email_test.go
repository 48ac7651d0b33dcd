package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/notify/resendtest"
)

const testFrom = "Privacy team <privacy@steward.example>"

// emailConfig is e.config with a sender, so emails are deliverable.
func (e *env) emailConfig() WorkerConfig {
	c := e.config()
	c.Resend.From = testFrom
	return c
}

// enqueueEmail commits one email message and returns its row id and key.
func (e *env) enqueueEmail(t *testing.T, m Email) (int64, string) {
	t.Helper()
	ctx := context.Background()
	var id int64
	var key string
	err := db.Tx(ctx, e.pool, func(tx pgx.Tx) error {
		var err error
		if key, err = e.ob.EnqueueEmail(ctx, tx, m); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT id FROM outbox WHERE idempotency_key = $1`, key).Scan(&id)
	})
	if err != nil {
		t.Fatalf("enqueue email: %v", err)
	}
	return id, key
}

func (e *env) countRows(t *testing.T) int {
	t.Helper()
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// receivedEmail is an acknowledgment to a subject, with values that must
// never appear in the clear in the database.
func receivedEmail(to, lang string) Email {
	return Email{
		To:       to,
		Template: TemplateRequestReceived,
		Language: lang,
		Data: map[string]string{
			"request_id":   "REQ-7731",
			"request_type": "erasure",
			"due_date":     "2030-02-01",
			"status_url":   "https://privacy.example.com/status/REQ-7731",
		},
	}
}

func codeEmail(to, code string) Email {
	return Email{
		To:       to,
		Template: TemplateVerificationCode,
		Language: "ru",
		Data:     map[string]string{"code": code, "expires_minutes": "15", "request_type": "access"},
	}
}

// onlyEmail asserts that the fake holds exactly one distinct email.
func onlyEmail(t *testing.T, e *env) resendtest.SentEmail {
	t.Helper()
	got := e.fake.Emails()
	if len(got) != 1 {
		t.Fatalf("fake holds %d emails, want exactly 1: %+v", len(got), got)
	}
	return got[0]
}

func emailPosts(e *env) []string {
	var keys []string
	for _, r := range e.fake.Requests() {
		if r.Method == http.MethodPost && r.Path == "/emails" {
			keys = append(keys, r.IdempotencyKey)
		}
	}
	return keys
}

func TestEnqueueEmail(t *testing.T) {
	t.Parallel()

	t.Run("rolled_back_transaction_sends_nothing", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		ctx := context.Background()
		errRollback := errors.New("request creation failed")
		err := db.Tx(ctx, e.pool, func(tx pgx.Tx) error {
			if _, err := e.ob.EnqueueEmail(ctx, tx, receivedEmail("ann@example.com", "en")); err != nil {
				return err
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("Tx error = %v, want the rollback cause", err)
		}
		if n := e.countRows(t); n != 0 {
			t.Fatalf("outbox has %d rows after rollback, want 0", n)
		}
		w := NewWorker(e.pool, e.kr, e.emailConfig(), e.clk, e.log, nil)
		if res := runOnce(t, w); res != (RunResult{}) {
			t.Errorf("RunOnce = %+v, want nothing to do", res)
		}
		if n := len(e.fake.Requests()); n != 0 {
			t.Errorf("%d requests reached Resend, want none", n)
		}
	})

	t.Run("payload_holds_nothing_in_the_clear", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		const to, code = "zed.secret@example.com", "739214"
		id, _ := e.enqueueEmail(t, codeEmail(to, code))
		rid, _ := e.enqueueEmail(t, receivedEmail(to, "uz"))
		for _, rowID := range []int64{id, rid} {
			raw := e.row(t, rowID).Payload
			for _, secret := range []string{"@", "zed.secret", "example.com", code, "REQ-7731", "erasure", "privacy.example.com", "2030-02-01", `"ru"`, `"uz"`} {
				if strings.Contains(raw, secret) {
					t.Errorf("payload holds %q in the clear: %s", secret, raw)
				}
			}
			var p map[string]any
			if err := json.Unmarshal([]byte(raw), &p); err != nil {
				t.Fatal(err)
			}
			for k := range p {
				if k != "v" && k != "template" && k != "kid" && k != "ct" {
					t.Errorf("payload has unexpected field %q", k)
				}
			}
		}
		// The raw jsonb, queried in SQL, as a DBA would see it.
		var leaks bool
		err := e.pool.QueryRow(context.Background(), `
			SELECT bool_or(payload::text LIKE '%@%' OR payload::text LIKE '%'||$1||'%') FROM outbox`, code).Scan(&leaks)
		if err != nil || leaks {
			t.Errorf("raw jsonb leaks the address or the code (err %v)", err)
		}
		logs := e.logs.String()
		assertNoEmail(t, "logs", logs)
		if strings.Contains(logs, code) {
			t.Error("logs hold the code")
		}
	})

	t.Run("missing_data_key_refused_naming_the_key", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		ctx := context.Background()
		m := receivedEmail("ann@example.com", "en")
		delete(m.Data, "due_date")
		err := db.Tx(ctx, e.pool, func(tx pgx.Tx) error {
			_, err := e.ob.EnqueueEmail(ctx, tx, m)
			if !errors.Is(err, ErrInvalidEmail) {
				t.Errorf("err = %v, want ErrInvalidEmail", err)
			}
			if err != nil && (!strings.Contains(err.Error(), `"due_date"`) || strings.Contains(err.Error(), "REQ-7731") || strings.Contains(err.Error(), "ann")) {
				t.Errorf("err = %v: want the key named and no values", err)
			}
			// The refusal did not poison the caller's transaction.
			_, err = tx.Exec(ctx, `SELECT 1`)
			return err
		})
		if err != nil {
			t.Fatalf("transaction unusable after a refused email: %v", err)
		}
		if n := e.countRows(t); n != 0 {
			t.Errorf("%d rows written for a refused email", n)
		}
	})

	t.Run("bad_address_and_template_refused", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		ctx := context.Background()
		for name, m := range map[string]Email{
			"no_at":            receivedEmail("ann.example.com", "en"),
			"display_name":     receivedEmail("Ann <ann@example.com>", "en"),
			"unknown_template": {To: "ann@example.com", Template: "newsletter", Data: map[string]string{}},
			"bad_key":          {To: "ann@example.com", Template: TemplateRequestReceived, Data: receivedEmail("", "").Data, Key: "not-a-uuid"},
		} {
			err := db.Tx(ctx, e.pool, func(tx pgx.Tx) error {
				_, err := e.ob.EnqueueEmail(ctx, tx, m)
				return err
			})
			if !errors.Is(err, ErrInvalidEmail) {
				t.Errorf("%s: err = %v, want ErrInvalidEmail", name, err)
			} else if strings.Contains(err.Error(), "ann") {
				t.Errorf("%s: err %q repeats the address", name, err)
			}
		}
		if n := e.countRows(t); n != 0 {
			t.Errorf("%d rows written", n)
		}
	})

	t.Run("caller_key_makes_enqueue_idempotent", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		ctx := context.Background()
		chosen := uuid.New()
		m := receivedEmail("ann@example.com", "en")
		m.Key = strings.ToUpper(chosen.String())
		id, key := e.enqueueEmail(t, m)
		if key != chosen.String() {
			t.Fatalf("key = %q, want the caller's key in canonical form %q", key, chosen)
		}
		err := db.Tx(ctx, e.pool, func(tx pgx.Tx) error {
			again, err := e.ob.EnqueueEmail(ctx, tx, m)
			if !errors.Is(err, ErrAlreadyQueued) || again != key {
				t.Errorf("second enqueue = %q, %v; want the key and ErrAlreadyQueued", again, err)
			}
			// Still usable: the caller can carry on and commit.
			_, err = tx.Exec(ctx, `SELECT 1`)
			return err
		})
		if err != nil {
			t.Fatalf("transaction unusable after ErrAlreadyQueued: %v", err)
		}
		if n := e.countRows(t); n != 1 {
			t.Fatalf("%d rows, want 1", n)
		}
		w := NewWorker(e.pool, e.kr, e.emailConfig(), e.clk, e.log, nil)
		if res := runOnce(t, w); res != (RunResult{Delivered: 1}) {
			t.Fatalf("RunOnce = %+v, want 1 delivered", res)
		}
		if got := onlyEmail(t, e); got.IdempotencyKey != key {
			t.Errorf("Idempotency-Key = %q, want %q", got.IdempotencyKey, key)
		}
		if r := e.row(t, id); r.Key != key {
			t.Errorf("row key = %q, want %q", r.Key, key)
		}
	})
}

func TestEmailDelivery(t *testing.T) {
	t.Parallel()

	t.Run("committed_email_sent_once_in_its_language", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		const to = "Ann.Subject@example.com"
		m := receivedEmail(to, "ru-RU")
		id, key := e.enqueueEmail(t, m)
		w := NewWorker(e.pool, e.kr, e.emailConfig(), e.clk, e.log, nil)

		if res := runOnce(t, w); res != (RunResult{Delivered: 1}) {
			t.Fatalf("RunOnce = %+v, want 1 delivered", res)
		}
		want := mustRender(t, m.Template, "ru", m.Data)
		got := onlyEmail(t, e)
		if got.Subject != want.Subject || got.Text != want.Text || got.HTML != want.HTML {
			t.Errorf("sent %q, want the Russian rendering %q", got.Subject, want.Subject)
		}
		if !strings.Contains(got.Subject, "Мы получили ваш запрос REQ-7731") {
			t.Errorf("subject = %q, want Russian with the request id", got.Subject)
		}
		for _, s := range []string{"Удаление персональных данных", "2030-02-01", "https://privacy.example.com/status/REQ-7731"} {
			if !strings.Contains(got.Text, s) {
				t.Errorf("text lacks %q:\n%s", s, got.Text)
			}
		}
		if got.From != testFrom || len(got.To) != 1 || got.To[0] != to || got.IdempotencyKey != key {
			t.Errorf("sent from %q to %v with key %q; want %q, [%s], %q", got.From, got.To, got.IdempotencyKey, testFrom, to, key)
		}
		reqs := e.fake.Requests()
		if len(reqs) != 1 || reqs[0].Authorization != "Bearer "+testAPIKey || reqs[0].IdempotencyKey != key {
			t.Errorf("requests = %v, want one authorized POST /emails with the row's key", reqs)
		}
		r := e.row(t, id)
		if r.Status != "delivered" || r.Attempts != 1 || r.LastError != nil {
			t.Errorf("row = %+v, want delivered after 1 attempt", r)
		}
		if r.Payload != "{}" {
			t.Errorf("payload after delivery = %s, want {} (sealed values erased)", r.Payload)
		}
		if res := runOnce(t, w); res != (RunResult{}) {
			t.Errorf("second RunOnce = %+v, want nothing", res)
		}
		if n := len(e.fake.Emails()); n != 1 {
			t.Errorf("%d emails after a second run, want 1", n)
		}
		assertNoEmail(t, "logs", e.logs.String())
	})

	t.Run("each_language_delivered", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		subjects := map[string]string{}
		for _, lang := range []string{"en", "ru", "uz", "fr"} {
			m := receivedEmail(lang+"@example.com", lang)
			e.enqueueEmail(t, m)
			subjects[lang+"@example.com"] = mustRender(t, m.Template, NormalizeLanguage(lang), m.Data).Subject
		}
		w := NewWorker(e.pool, e.kr, e.emailConfig(), e.clk, e.log, nil)
		if res := runOnce(t, w); res != (RunResult{Delivered: 4}) {
			t.Fatalf("RunOnce = %+v, want 4 delivered", res)
		}
		for _, got := range e.fake.Emails() {
			if want := subjects[got.To[0]]; got.Subject != want {
				t.Errorf("%s got %q, want %q", got.To[0], got.Subject, want)
			}
		}
		if subjects["fr@example.com"] != subjects["en@example.com"] {
			t.Error("French did not fall back to English")
		}
		if subjects["ru@example.com"] == subjects["en@example.com"] || subjects["uz@example.com"] == subjects["en@example.com"] {
			t.Error("Russian or Uzbek subject is English")
		}
	})

	t.Run("retry_after_500_sends_once", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id, key := e.enqueueEmail(t, codeEmail("bob@example.com", "111222"))
		w := NewWorker(e.pool, e.kr, e.emailConfig(), e.clk, e.log, nil)
		e.fake.FailNext(1, http.StatusInternalServerError)

		if res := runOnce(t, w); res != (RunResult{Retried: 1}) {
			t.Fatalf("first RunOnce = %+v, want retried", res)
		}
		r := e.row(t, id)
		if r.Status != "pending" || r.LastError == nil || !strings.Contains(*r.LastError, "500") {
			t.Fatalf("row = %+v, want pending with the 500", r)
		}
		assertNoEmail(t, "last_error", *r.LastError)
		if n := len(e.fake.Emails()); n != 0 {
			t.Fatalf("%d emails after a refused attempt", n)
		}
		e.clk.Set(r.NextAttemptAt)
		if res := runOnce(t, w); res != (RunResult{Delivered: 1}) {
			t.Fatalf("second RunOnce = %+v, want delivered", res)
		}
		if got := onlyEmail(t, e); got.IdempotencyKey != key || !strings.Contains(got.Text, "111222") {
			t.Errorf("email = %+v, want the code under key %s", got, key)
		}
		if keys := emailPosts(e); len(keys) != 2 || keys[0] != key || keys[1] != key {
			t.Errorf("POST /emails keys = %v, want the same key twice", keys)
		}
		if r := e.row(t, id); r.Status != "delivered" || r.Attempts != 2 || r.Payload != "{}" {
			t.Errorf("row = %+v, want delivered after 2 attempts, payload erased", r)
		}
	})

	t.Run("lost_response_deduplicated_by_key", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id, key := e.enqueueEmail(t, receivedEmail("carol@example.com", "uz"))
		w := NewWorker(e.pool, e.kr, e.emailConfig(), e.clk, e.log, nil)
		// Resend sends the email but the answer never arrives.
		e.fake.ApplyThenFailNext(1, http.StatusBadGateway)

		if res := runOnce(t, w); res != (RunResult{Retried: 1}) {
			t.Fatalf("first RunOnce = %+v, want retried (the worker cannot know it was sent)", res)
		}
		first := onlyEmail(t, e)
		e.clk.Set(e.row(t, id).NextAttemptAt)
		if res := runOnce(t, w); res != (RunResult{Delivered: 1}) {
			t.Fatalf("second RunOnce = %+v, want delivered", res)
		}
		if again := onlyEmail(t, e); again.ID != first.ID || again.IdempotencyKey != key {
			t.Errorf("after the retry: %+v, want still only %s", again, first.ID)
		}
		reqs := e.fake.Requests()
		if len(reqs) != 2 || reqs[0].Status != http.StatusBadGateway || reqs[1].Status != http.StatusOK ||
			reqs[0].IdempotencyKey != key || reqs[1].IdempotencyKey != key {
			t.Errorf("requests = %v, want 502 then a 200 replay under one key", reqs)
		}
	})

	t.Run("crash_after_send_before_commit_sends_once", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id, key := e.enqueueEmail(t, receivedEmail("dan@example.com", "en"))
		w := NewWorker(e.pool, e.kr, e.emailConfig(), e.clk, e.log, nil)
		// A worker that sent the email and died before recording it: the
		// row is still pending with no attempt counted.
		var r row
		err := e.pool.QueryRow(context.Background(), `
			SELECT id, kind, payload, idempotency_key::text, attempts FROM outbox WHERE id = $1`, id).
			Scan(&r.id, &r.kind, &r.payload, &r.key, &r.attempts)
		if err != nil {
			t.Fatal(err)
		}
		if derr := w.deliver(context.Background(), r); derr != nil {
			t.Fatalf("deliver: %v", derr)
		}
		if row := e.row(t, id); row.Status != "pending" {
			t.Fatalf("row = %+v, want still pending after the crash", row)
		}
		// The restarted worker sends it again, under the same key.
		w2 := NewWorker(e.pool, e.kr, e.emailConfig(), e.clk, e.log, nil)
		if res := runOnce(t, w2); res != (RunResult{Delivered: 1}) {
			t.Fatalf("RunOnce = %+v, want delivered", res)
		}
		onlyEmail(t, e)
		if keys := emailPosts(e); len(keys) != 2 || keys[0] != key || keys[1] != key {
			t.Errorf("POST /emails keys = %v, want the same key twice", keys)
		}
	})

	t.Run("rejected_email_failed_for_good", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id, key := e.enqueueEmail(t, receivedEmail("erin@example.com", "en"))
		fr := &failRecorder{}
		w := NewWorker(e.pool, e.kr, e.emailConfig(), e.clk, e.log, fr.hook(t))
		e.fake.FailNext(1, http.StatusUnprocessableEntity)

		if res := runOnce(t, w); res != (RunResult{Failed: 1}) {
			t.Fatalf("RunOnce = %+v, want failed", res)
		}
		r := e.row(t, id)
		if r.Status != "failed" || r.LastError == nil || !strings.Contains(*r.LastError, "422") {
			t.Fatalf("row = %+v, want failed with the 422", r)
		}
		if calls := fr.Calls(); len(calls) != 1 || calls[0].Kind != KindEmail || calls[0].IdempotencyKey != key {
			t.Errorf("hook calls = %+v, want one for the email", calls)
		}
	})

	t.Run("rate_limited_waits_at_least_retry_after", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id, _ := e.enqueueEmail(t, receivedEmail("fay@example.com", "en"))
		cfg := e.emailConfig()
		cfg.BaseBackoff = 10 * time.Millisecond
		w := NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil)
		e.fake.FailNext(1, http.StatusTooManyRequests)

		if res := runOnce(t, w); res != (RunResult{Retried: 1}) {
			t.Fatalf("RunOnce = %+v, want retried", res)
		}
		if d := e.row(t, id).NextAttemptAt.Sub(e.clk.Now()); d < time.Second {
			t.Errorf("retry in %v, want at least Retry-After (1s)", d)
		}
	})

	t.Run("errors_redact_address_and_code", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		const to, code = "gus.private@example.com", "904417"
		id, _ := e.enqueueEmail(t, codeEmail(to, code))
		// A Resend that echoes what it was sent in its error.
		echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			_, _ = w.Write([]byte(`{"statusCode":422,"name":"validation_error","message":"cannot send ` + code + ` to ` + to + `"}`))
		}))
		t.Cleanup(echo.Close)
		cfg := e.emailConfig()
		cfg.Resend.BaseURL = echo.URL
		w := NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil)
		if res := runOnce(t, w); res != (RunResult{Failed: 1}) {
			t.Fatalf("RunOnce = %+v, want failed", res)
		}
		r := e.row(t, id)
		if r.LastError == nil || !strings.Contains(*r.LastError, "422") {
			t.Fatalf("last_error = %v, want the 422", r.LastError)
		}
		for where, s := range map[string]string{"last_error": *r.LastError, "logs": e.logs.String()} {
			assertNoEmail(t, where, s)
			if strings.Contains(s, code) || strings.Contains(s, "gus.private") {
				t.Errorf("%s leaks the code or address: %s", where, s)
			}
		}
	})

	t.Run("network_error_retried", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id, _ := e.enqueueEmail(t, receivedEmail("hal@example.com", "en"))
		cfg := e.emailConfig()
		cfg.Resend.BaseURL = "http://127.0.0.1:1/"
		w := NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil)
		if res := runOnce(t, w); res != (RunResult{Retried: 1}) {
			t.Fatalf("RunOnce = %+v, want retried", res)
		}
		if r := e.row(t, id); r.LastError == nil || !strings.Contains(*r.LastError, "network") {
			t.Errorf("last_error = %v, want a network error", r.LastError)
		}
	})

	t.Run("edited_payload_failed_for_good", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id, _ := e.enqueueEmail(t, Email{
			To: "ivy@example.com", Template: TemplateRequestExtended,
			Data: map[string]string{"request_id": "R1", "request_type": "access", "reason": "volume", "new_due_date": "2030-03-01"},
		})
		// Someone with database access swaps the template of a queued
		// email: the seal no longer opens, so nothing is sent.
		if _, err := e.pool.Exec(context.Background(),
			`UPDATE outbox SET payload = jsonb_set(payload, '{template}', '"request_denied"') WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		w := NewWorker(e.pool, e.kr, e.emailConfig(), e.clk, e.log, nil)
		if res := runOnce(t, w); res != (RunResult{Failed: 1}) {
			t.Fatalf("RunOnce = %+v, want failed", res)
		}
		if n := len(e.fake.Requests()); n != 0 {
			t.Errorf("%d requests sent for a tampered message", n)
		}
	})
}

func TestEmailConfiguration(t *testing.T) {
	t.Parallel()

	t.Run("no_from_keeps_emails_and_still_unsubscribes", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id, _ := e.enqueueEmail(t, receivedEmail("jo@example.com", "en"))
		e.enqueue(t, "jo@example.com")
		cfg := e.config() // audience, no From
		if err := cfg.Resend.Validate(); err != nil {
			t.Fatalf("Validate: %v (an audience alone is a usable configuration)", err)
		}
		if cfg.Resend.ValidateKind(KindEmail) == nil || cfg.Resend.ValidateKind(KindResendUnsubscribe) != nil {
			t.Error("ValidateKind: want emails refused and unsubscribes accepted")
		}
		w := NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil)

		if res := runOnce(t, w); res != (RunResult{Delivered: 1, Kept: 1}) {
			t.Fatalf("RunOnce = %+v, want the unsubscribe delivered and the email kept", res)
		}
		for range 2 {
			if res := runOnce(t, w); res != (RunResult{Kept: 1}) {
				t.Fatalf("RunOnce = %+v, want 1 kept", res)
			}
		}
		if r := e.row(t, id); r.Status != "pending" || r.Attempts != 0 || r.LastError != nil {
			t.Errorf("email row = %+v, want untouched pending", r)
		}
		if keys := emailPosts(e); len(keys) != 0 {
			t.Errorf("emails sent without a sender: %v", keys)
		}
		logs := e.logs.String()
		if n := strings.Count(logs, "Resend is not configured for this kind"); n != 1 || !strings.Contains(logs, "From address is required") {
			t.Errorf("keep error logged %d times, want once naming From:\n%s", n, logs)
		}
		if !strings.Contains(logs, "level=ERROR") {
			t.Errorf("keep message not at ERROR:\n%s", logs)
		}

		// Once a sender is configured, the kept email goes out.
		w = NewWorker(e.pool, e.kr, e.emailConfig(), e.clk, e.log, nil)
		if res := runOnce(t, w); res != (RunResult{Delivered: 1}) {
			t.Fatalf("RunOnce with From = %+v, want the email delivered", res)
		}
	})

	t.Run("from_without_audience_sends_emails_and_keeps_unsubscribes", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.enqueueEmail(t, receivedEmail("kai@example.com", "en"))
		uid := e.enqueue(t, "kai@example.com")
		cfg := e.emailConfig()
		cfg.Resend.AudienceID = ""
		if err := cfg.Resend.Validate(); err != nil {
			t.Fatalf("Validate: %v (a sender alone is a usable configuration)", err)
		}
		if cfg.Resend.ValidateKind(KindResendUnsubscribe) == nil || cfg.Resend.ValidateKind(KindEmail) != nil {
			t.Error("ValidateKind: want unsubscribes refused and emails accepted")
		}
		w := NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil)
		for i := range 3 {
			want := RunResult{Kept: 1}
			if i == 0 {
				want.Delivered = 1
			}
			if res := runOnce(t, w); res != want {
				t.Fatalf("run %d: RunOnce = %+v, want %+v", i, res, want)
			}
		}
		onlyEmail(t, e)
		if r := e.row(t, uid); r.Status != "pending" || r.Attempts != 0 {
			t.Errorf("unsubscribe row = %+v, want untouched pending", r)
		}
		for _, r := range e.fake.Requests() {
			if strings.HasPrefix(r.Path, "/audiences/") {
				t.Errorf("contact request sent without an audience: %v", r)
			}
		}
		logs := e.logs.String()
		if n := strings.Count(logs, "Resend is not configured for this kind"); n != 1 || !strings.Contains(logs, "audience id is required") {
			t.Errorf("keep error logged %d times, want once naming the audience:\n%s", n, logs)
		}
	})

	t.Run("validate", func(t *testing.T) {
		t.Parallel()
		cases := map[string]struct {
			cfg ResendConfig
			ok  bool
		}{
			"no_key":               {ResendConfig{}, true},
			"audience_only":        {ResendConfig{APIKey: "k", AudienceID: "a"}, true},
			"from_only":            {ResendConfig{APIKey: "k", From: "privacy@example.com"}, true},
			"both":                 {ResendConfig{APIKey: "k", AudienceID: "a", From: "Privacy <privacy@example.com>"}, true},
			"neither":              {ResendConfig{APIKey: "k"}, false},
			"malformed_from":       {ResendConfig{APIKey: "k", From: "privacy team"}, false},
			"bad_base_url_w_from":  {ResendConfig{APIKey: "k", From: "p@example.com", BaseURL: "ftp://x"}, false},
			"from_without_key_ok":  {ResendConfig{From: "nonsense"}, true}, // nothing is sent without a key
			"two_senders_are_none": {ResendConfig{APIKey: "k", From: "a@example.com, b@example.com"}, false},
		}
		for name, c := range cases {
			if err := c.cfg.Validate(); (err == nil) != c.ok {
				t.Errorf("%s: Validate = %v, want ok=%v", name, err, c.ok)
			}
		}
		if err := (ResendConfig{From: "p@example.com"}).ValidateKind(KindEmail); err == nil {
			t.Error("ValidateKind accepted emails without an API key")
		}
		if err := (ResendConfig{APIKey: "k", From: "p@example.com"}).ValidateKind("sms.send"); err == nil {
			t.Error("ValidateKind accepted an unknown kind")
		}
	})
}
