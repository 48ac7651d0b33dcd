package retention_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/retention"
	"github.com/steward-privacy/steward/internal/subjects"
	"github.com/steward-privacy/steward/policies"
)

type fixed struct{ e *policy.Engine }

func (f fixed) Current() *policy.Engine { return f.e }

var engine = func() func(t testing.TB) *policy.Engine {
	var e *policy.Engine
	return func(t testing.TB) *policy.Engine {
		t.Helper()
		if e == nil {
			var err error
			if e, err = policy.Load(context.Background(), policies.FS); err != nil {
				t.Fatal(err)
			}
		}
		return e
	}
}()

type rig struct {
	svc  *retention.Service
	pool *pgxpool.Pool
	clk  *clock.Fake
	kr   *keyring.Keyring
}

func newRig(t *testing.T) *rig {
	t.Helper()
	_, pool := dbtest.New(t)
	clk := clock.NewFake(time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC))
	kr := keyring.NewRandom("k1")
	cp := &retention.ControlPlane{Pool: pool, Keys: kr, Clock: clk}
	return &rig{pool: pool, clk: clk, kr: kr, svc: &retention.Service{Pool: pool, Keys: kr, Policies: fixed{engine(t)},
		Audit: audit.New(clk, "test"), Clock: clk, Control: cp}}
}

func (r *rig) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := r.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Bad holds are refused with the field named and leave no row; a good
// one is audited with the subject only as a keyed hash; it ends when
// lifted (once) or when it expires.
func TestHolds(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	past := r.clk.Now().Add(-time.Minute)
	future := r.clk.Now().Add(48 * time.Hour)
	for _, tc := range []struct {
		in    retention.HoldInput
		field string
	}{
		{retention.HoldInput{Subject: "email:a@example.com", Reason: "case", ExpiresAt: &past}, "expires_at"},
		{retention.HoldInput{Dataset: "app_db.nope", Reason: "case"}, "dataset"},
		{retention.HoldInput{Dataset: "app_db", Reason: "case"}, "dataset"},
		{retention.HoldInput{Category: "user.nope", Reason: "case"}, "category"},
		{retention.HoldInput{Subject: "email:not-an-email", Reason: "case"}, "subject"},
		{retention.HoldInput{Subject: "email:a@example.com", Reason: "  "}, "reason"},
		{retention.HoldInput{Subject: "email:a@example.com", Reason: strings.Repeat("x", 2001)}, "reason"},
		{retention.HoldInput{Subject: "email:a@example.com", Dataset: "app_db.users", Reason: "case"}, ""},
		{retention.HoldInput{Reason: "case"}, ""},
	} {
		_, err := r.svc.CreateHold(ctx, tc.in, "system:test")
		ae, ok := apperr.As(err)
		if !ok || ae.Code != apperr.Invalid {
			t.Errorf("%+v: want invalid, got %v", tc.in, err)
			continue
		}
		if tc.field != "" && (len(ae.Fields) == 0 || ae.Fields[0].Field != tc.field) {
			t.Errorf("%+v: fields %+v, want %s", tc.in, ae.Fields, tc.field)
		}
	}
	if n := r.count(t, `SELECT count(*) FROM legal_holds`); n != 0 {
		t.Fatalf("refused holds left %d rows", n)
	}

	h, err := r.svc.CreateHold(ctx, retention.HoldInput{Subject: "email:Ann@Example.com", Reason: "Case 9: Ann's complaint", ExpiresAt: &future}, "key:k1")
	if err != nil {
		t.Fatal(err)
	}
	cat, err := r.svc.CreateHold(ctx, retention.HoldInput{Category: "user.financial", Reason: "tax audit"}, "key:k1")
	if err != nil || cat.Scope != retention.ScopeCategory {
		t.Fatalf("category hold: %+v %v", cat, err)
	}
	var details string
	if err := r.pool.QueryRow(ctx, `SELECT details::text FROM audit_pending WHERE action = 'retention.hold_created' AND target_id = $1`, h.ID).Scan(&details); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(details), "ann") || !strings.Contains(details, "subject_hash") || !strings.Contains(details, "reason_sha256") {
		t.Errorf("audit details hold personal data or lack the hashes: %s", details)
	}
	active, err := r.svc.ListHolds(ctx, false)
	if err != nil || len(active) != 2 {
		t.Fatalf("active holds: %d %v", len(active), err)
	}
	if _, err := r.svc.LiftHold(ctx, cat.ID, "", "key:k1"); apperr.CodeOf(err) != apperr.Invalid {
		t.Errorf("lift without reason: %v", err)
	}
	if _, err := r.svc.LiftHold(ctx, cat.ID, "audit done", "key:k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.LiftHold(ctx, cat.ID, "again", "key:k1"); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("lift twice: %v", err)
	}
	if _, err := r.svc.LiftHold(ctx, uuid.NewString(), "x", "key:k1"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("lift unknown: %v", err)
	}
	if _, err := r.svc.GetHold(ctx, "not-a-uuid"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("get malformed id: %v", err)
	}
	r.clk.Advance(49 * time.Hour) // past the subject hold's expiry
	if active, _ = r.svc.ListHolds(ctx, false); len(active) != 0 {
		t.Errorf("expired and lifted holds still active: %+v", active)
	}
	all, _ := r.svc.ListHolds(ctx, true)
	if len(all) != 2 || all[0].Active || all[1].Active {
		t.Errorf("all holds: %+v", all)
	}
	if r.count(t, `SELECT count(*) FROM audit_pending WHERE action = 'retention.hold_lifted'`) != 1 {
		t.Error("the lift was not audited once")
	}
}

// FuzzHoldInput: whatever a client sends as a hold, it is placed or
// refused as invalid with a message; never a panic, never another error.
func FuzzHoldInput(f *testing.F) {
	for _, s := range []string{
		`{"subject":"email:a@example.com","reason":"case"}`,
		`{"dataset":"app_db.users","reason":"case","expires_at":"2030-01-01T00:00:00Z"}`,
		`{"category":"user.financial","reason":"r"}`,
		`{"dataset":"app_db.nope","reason":"case"}`,
		`{"subject":"tg:12","dataset":"x.y","reason":""}`,
		`{"category":"user","reason":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	e := engine(f)
	clk := clock.NewFake(time.Date(2026, 11, 20, 3, 0, 0, 0, time.UTC))
	svc := &retention.Service{Policies: fixed{e}, Clock: clk, Keys: keyring.NewRandom("k1")}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in retention.HoldInput
		if json.Unmarshal(body, &in) != nil {
			return
		}
		err := retention.ValidateHold(svc, in)
		if err == nil {
			return
		}
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Code != apperr.Invalid || ae.Message == "" {
			t.Fatalf("%s: %v", body, err)
		}
	})
}

// Steward's own data: expired codes go a day after expiry, a closed
// request loses its personal data after the period (its record stays),
// and a held subject's request keeps it.
func TestControlPlane(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	now := r.clk.Now()
	e := engine(t)
	cp := e.RetentionSchedule().ControlPlane
	request := func(email string, closed time.Time) string {
		t.Helper()
		var sid int64
		if err := r.pool.QueryRow(ctx, `INSERT INTO subjects (kind, lookup_hash, hash_kid, ciphertext, enc_kid, created_at)
			VALUES ('email', $1, 'k1', '\x00', 'k1', now()) RETURNING id`, []byte(uuid.NewString())).Scan(&sid); err != nil {
			t.Fatal(err)
		}
		id := uuid.NewString()
		if _, err := r.pool.Exec(ctx, `INSERT INTO privacy_requests (id, type, status, channel, language, region, regime, subject_id, subject_kind,
			status_token_hash, contact_kid, contact_ct, received_at, due_at, original_due_at, closed_at, created_by, policy_revision, updated_at)
			VALUES ($1, 'access', 'completed', 'web', 'en', 'DE', 'gdpr', $2, 'email', $3, 'k1', '\x01', $4, $4, $4, $4, 'test', 'r', $4)`,
			id, sid, []byte(id), closed); err != nil {
			t.Fatal(err)
		}
		subj := identity.MustParse("email:" + email)
		if _, err := r.pool.Exec(ctx, `INSERT INTO privacy_request_identities (request_id, kind, lookup_hash, kid, ciphertext, source)
			VALUES ($1, 'email', $2, 'k1', '\x02', 'given')`, id, r.kr.Hash(subj)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.pool.Exec(ctx, `INSERT INTO verification_codes (request_id, code_hash, hash_kid, expires_at, created_at) VALUES ($1, '\x00', 'k1', $2, $2)`,
			id, closed); err != nil {
			t.Fatal(err)
		}
		if _, err := r.pool.Exec(ctx, `INSERT INTO privacy_request_documents (request_id, kind, kid, content, meta, size, sha256, created_at)
			VALUES ($1, 'agent_authorization', 'k1', '\x03', '\x04', 1, $2, $3)`, id, make([]byte, 32), closed); err != nil {
			t.Fatal(err)
		}
		return id
	}
	period := time.Duration(cp.ClosedRequestDays) * 24 * time.Hour
	old := request("old@example.com", now.Add(-period-time.Second))
	inside := request("inside@example.com", now.Add(-period+time.Second))
	heldReq := request("held@example.com", now.Add(-period-time.Hour))
	if _, err := r.svc.CreateHold(ctx, retention.HoldInput{Subject: "email:held@example.com", Reason: "litigation"}, "system:test"); err != nil {
		t.Fatal(err)
	}

	plan, err := r.svc.Plan(ctx, "steward.closed_requests")
	if err != nil || len(plan) != 1 || plan[0].Due != 2 || plan[0].Held != 1 {
		t.Fatalf("plan: %+v %v", plan, err)
	}
	run, err := r.svc.RunNow(ctx, retention.RunOptions{Trigger: retention.TriggerCLI, Actor: "system:cli", Dataset: "steward.closed_requests"})
	if err != nil {
		t.Fatal(err)
	}
	d := run.Datasets[0]
	if run.Status != "completed" || d.Anonymized != 1 || d.Held != 1 || d.Matched == nil || *d.Matched != 2 {
		t.Errorf("run: %s %+v", run.Status, d)
	}
	personal := func(id string) int {
		return r.count(t, `SELECT (contact_ct IS NOT NULL)::int + (SELECT count(*) FROM privacy_request_identities WHERE request_id = $1)::int
			+ (SELECT count(*) FROM privacy_request_documents WHERE request_id = $1)::int
			FROM privacy_requests WHERE id = $1`, id)
	}
	if personal(old) != 0 || personal(inside) != 3 || personal(heldReq) != 3 {
		t.Errorf("personal data left: old %d, inside %d, held %d", personal(old), personal(inside), personal(heldReq))
	}
	if r.count(t, `SELECT count(*) FROM privacy_requests`) != 3 {
		t.Error("a request record itself was removed")
	}
	// A second run finds nothing more (nothing counted twice).
	run, err = r.svc.RunNow(ctx, retention.RunOptions{Trigger: retention.TriggerCLI, Actor: "system:cli", Dataset: "steward.closed_requests"})
	if err != nil || run.Datasets[0].Anonymized != 0 {
		t.Errorf("second run: %+v %v", run.Datasets, err)
	}

	// Codes: every code above expired at its request's closing; those
	// more than verification_days ago go, except the held subject's.
	run, err = r.svc.RunNow(ctx, retention.RunOptions{Trigger: retention.TriggerCLI, Actor: "system:cli", Dataset: "steward.verification_codes"})
	if err != nil {
		t.Fatal(err)
	}
	if d := run.Datasets[0]; d.Deleted != 2 || d.Held != 1 {
		t.Errorf("codes: %+v", d)
	}
	if r.count(t, `SELECT count(*) FROM verification_codes WHERE request_id = $1`, heldReq) != 1 {
		t.Error("the held subject's code went")
	}

	// A run of a dataset without a fixed period, or unknown, is refused.
	for _, ds := range []string{"app_db.users", "app_db.nope", "steward.nope"} {
		if _, err := r.svc.RunNow(ctx, retention.RunOptions{Trigger: retention.TriggerCLI, Actor: "system:cli", Dataset: ds}); apperr.CodeOf(err) != apperr.Invalid {
			t.Errorf("run %s: %v", ds, err)
		}
	}
}

// A dataset hold stops its sweep: the run records it held, with what was
// due, and deletes nothing.
func TestDatasetHold(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	if _, err := r.pool.Exec(ctx, `INSERT INTO verification_sends (subject_hash, at) SELECT '\x01', $1 FROM generate_series(1, 5)`, r.clk.Now().Add(-72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	h, err := r.svc.CreateHold(ctx, retention.HoldInput{Dataset: "steward.verification_sends", Reason: "abuse investigation"}, "system:test")
	if err != nil {
		t.Fatal(err)
	}
	run, err := r.svc.RunNow(ctx, retention.RunOptions{Trigger: retention.TriggerCLI, Actor: "system:cli", Dataset: "steward.verification_sends"})
	if err != nil {
		t.Fatal(err)
	}
	if d := run.Datasets[0]; d.Status != retention.StatusHeld || d.Held != 5 || d.Deleted != 0 || !strings.Contains(d.Note, h.ID) {
		t.Errorf("held dataset: %+v", d)
	}
	if r.count(t, `SELECT count(*) FROM verification_sends`) != 5 {
		t.Error("a held dataset was swept")
	}
	if _, err := r.svc.LiftHold(ctx, h.ID, "closed", "system:test"); err != nil {
		t.Fatal(err)
	}
	run, _ = r.svc.RunNow(ctx, retention.RunOptions{Trigger: retention.TriggerCLI, Actor: "system:cli", Dataset: "steward.verification_sends", DryRun: true})
	if d := run.Datasets[0]; d.Status != retention.StatusSucceeded || *d.Matched != 5 || d.Deleted != 0 {
		t.Errorf("dry run: %+v", d)
	}
	run, _ = r.svc.RunNow(ctx, retention.RunOptions{Trigger: retention.TriggerCLI, Actor: "system:cli", Dataset: "steward.verification_sends"})
	if d := run.Datasets[0]; d.Deleted != 5 || r.count(t, `SELECT count(*) FROM verification_sends`) != 0 {
		t.Errorf("after the lift: %+v", d)
	}
}

// Steward's consent ledger is in the schedule (issue 19: "its retention is
// in the schedule"; GDPR Art. 5(1)(e)): events older than the period lose
// their user agent and IP hash through the ledger's guarded door, the
// events themselves stay as proof of the choice, and a held subject's
// events keep theirs.
func TestControlPlaneConsentDetails(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	now := r.clk.Now()
	cp := engine(t).RetentionSchedule().ControlPlane
	period := time.Duration(cp.ConsentDetailDays) * 24 * time.Hour
	event := func(email string, at time.Time) {
		t.Helper()
		var sid int64
		err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
			row, err := subjects.Upsert(ctx, tx, r.kr, identity.MustParse("email:"+email), now)
			sid = row.ID
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.pool.Exec(ctx, `INSERT INTO consent_events (id, subject_id, subject_kind, purpose, state, source, notice_version,
			product, gpc, user_agent, ip_hash, policy_revision, recorded_at)
			VALUES (gen_random_uuid(), $1, 'email', 'marketing', 'granted', 'web_banner', '1.0', 'web', false, 'Mozilla/5.0', $2, 'r', $3)`,
			sid, r.kr.HashIP("192.0.2.1"), at); err != nil {
			t.Fatal(err)
		}
	}
	event("old@example.com", now.Add(-period-time.Hour))
	event("old@example.com", now.Add(-period-2*time.Hour))
	event("recent@example.com", now.Add(-period+time.Hour))
	event("held@example.com", now.Add(-period-time.Hour))
	if _, err := r.svc.CreateHold(ctx, retention.HoldInput{Subject: "email:held@example.com", Reason: "litigation"}, "system:test"); err != nil {
		t.Fatal(err)
	}

	plan, err := r.svc.Plan(ctx, "steward.consent_event_details")
	if err != nil || len(plan) != 1 || plan[0].Due != 3 || plan[0].Held != 1 || plan[0].Action != retention.ActionAnonymize {
		t.Fatalf("plan: %+v %v", plan, err)
	}
	run, err := r.svc.RunNow(ctx, retention.RunOptions{Trigger: retention.TriggerCLI, Actor: "system:cli", Dataset: "steward.consent_event_details"})
	if err != nil {
		t.Fatal(err)
	}
	if d := run.Datasets[0]; run.Status != "completed" || d.Anonymized != 2 || d.Held != 1 {
		t.Errorf("run: %s %+v", run.Status, d)
	}
	if n := r.count(t, `SELECT count(*) FROM consent_events`); n != 4 {
		t.Errorf("events: %d, want all 4 kept as proof", n)
	}
	if n := r.count(t, `SELECT count(*) FROM consent_events WHERE user_agent IS NULL AND ip_hash IS NULL`); n != 2 {
		t.Errorf("scrubbed: %d, want the 2 old unheld events", n)
	}
	// The door closed with the transaction: the ledger is append-only again.
	if _, err := r.pool.Exec(ctx, `UPDATE consent_events SET user_agent = NULL`); err == nil {
		t.Error("the ledger accepted an update outside the sweep")
	}
	run, err = r.svc.RunNow(ctx, retention.RunOptions{Trigger: retention.TriggerCLI, Actor: "system:cli", Dataset: "steward.consent_event_details"})
	if err != nil || run.Datasets[0].Anonymized != 0 {
		t.Errorf("second run: %+v %v", run.Datasets, err)
	}
}

// Sent webhooks go a month after they were queued, once delivered or
// given up: their sealed bodies may name the person (GDPR Art. 5(1)(e)).
// A pending one is still owed and stays; an Art. 19 notice delivered by a
// swept webhook stays told.
func TestControlPlaneWebhookDeliveries(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	now := r.clk.Now()
	var endpoint string
	if err := r.pool.QueryRow(ctx, `INSERT INTO webhook_endpoints (id, url, secret_kid, secret_ct, created_by, created_at, updated_at)
		VALUES (gen_random_uuid(), 'https://bot.example/hooks', 'k1', '\x00', 'system:test', $1, $1) RETURNING id::text`, now).Scan(&endpoint); err != nil {
		t.Fatal(err)
	}
	delivery := func(status string, age time.Duration) string {
		t.Helper()
		var id string
		if err := r.pool.QueryRow(ctx, `INSERT INTO webhook_deliveries (id, endpoint_id, message_id, event_type, body_kid, body_ct, status, created_at, delivered_at)
			VALUES (gen_random_uuid(), $1, 'msg_x', 'recipient.notice', 'k1', '\x00', $2, $3, CASE WHEN $2 = 'delivered' THEN $3::timestamptz END) RETURNING id::text`,
			endpoint, status, now.Add(-age)).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	month := 31 * 24 * time.Hour
	oldDelivered := delivery("delivered", month)
	delivery("failed", month)
	delivery("pending", month)
	delivery("delivered", time.Hour)
	// An erasure's Art. 19 notice told by the old delivery.
	var sid int64
	if err := r.pool.QueryRow(ctx, `INSERT INTO subjects (kind, lookup_hash, hash_kid, ciphertext, enc_kid, created_at)
		VALUES ('tg', '\x01', 'k1', '\x00', 'k1', now()) RETURNING id`).Scan(&sid); err != nil {
		t.Fatal(err)
	}
	req := uuid.NewString()
	if _, err := r.pool.Exec(ctx, `INSERT INTO privacy_requests (id, type, status, channel, language, region, regime, subject_id, subject_kind,
		status_token_hash, received_at, due_at, original_due_at, closed_at, created_by, policy_revision, updated_at)
		VALUES ($1, 'erasure', 'completed', 'bot', 'en', 'DE', 'gdpr', $2, 'tg', $3, $4, $4, $4, $4, 'test', 'r', $4)`, req, sid, []byte(req), now); err != nil {
		t.Fatal(err)
	}
	if _, err := r.pool.Exec(ctx, `INSERT INTO recipient_notifications (request_id, system, method, status, created_at, delivery_ids)
		VALUES ($1, 'posthog', 'webhook', 'queued', $2, ARRAY[$3::uuid])`, req, now.Add(-month), oldDelivered); err != nil {
		t.Fatal(err)
	}
	run, err := r.svc.RunNow(ctx, retention.RunOptions{Trigger: retention.TriggerCLI, Actor: "system:cli", Dataset: "steward.webhook_deliveries"})
	if err != nil {
		t.Fatal(err)
	}
	if d := run.Datasets[0]; run.Status != "completed" || d.Deleted != 2 {
		t.Errorf("run: %s %+v, want the old delivered and failed ones deleted", run.Status, d)
	}
	if n := r.count(t, `SELECT count(*) FROM webhook_deliveries`); n != 2 {
		t.Errorf("%d deliveries left, want the pending and the recent", n)
	}
	if n := r.count(t, `SELECT count(*) FROM recipient_notifications WHERE status = 'done' AND done_by = 'system:webhooks'`); n != 1 {
		t.Error("the Art. 19 notice lost its told status with its delivery")
	}
}
