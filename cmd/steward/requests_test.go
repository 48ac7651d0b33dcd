package main

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/recordstore"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/notify/resendtest"
	"github.com/steward-privacy/steward/internal/telegram"
)

type createdReq struct {
	Request     dsar.Request `json:"request"`
	StatusToken string       `json:"status_token"`
	Existing    bool         `json:"existing"`
}

// requestsRig is a replica whose product databases are a record store
// (app_db and bot_db; the data map's vendor systems stay manual tasks).
type requestsRig struct {
	t     testing.TB
	e     *env
	r     *replica
	fake  *resendtest.Server
	store *recordstore.Store
}

const testBotToken = "123456:TEST-bot-token"

func newRequestsRig(t *testing.T) *requestsRig {
	fake := resendtest.New(t)
	e := newEnv(t, map[string]string{
		"STEWARD_RESEND_API_KEY": "re_test", "STEWARD_RESEND_BASE_URL": fake.URL, "STEWARD_EMAIL_FROM": "Privacy <privacy@example.com>",
		"STEWARD_TELEGRAM_BOT_TOKEN": testBotToken, "STEWARD_STAFF_EMAIL": "dpo@example.com",
	})
	store := recordstore.New(e.pool, recordstore.Options{HashKey: []byte("0123456789abcdef0123456789abcdef")})
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := e.start(func(a *application) {
		a.connectors["app_db"] = store
		a.connectors["bot_db"] = store
	})
	return &requestsRig{t: t, e: e, r: r, fake: fake, store: store}
}

func (g *requestsRig) create(key string, body map[string]any, wantStatus int) createdReq {
	g.t.Helper()
	res := g.r.do("POST", "/v1/privacy-requests", key, body)
	if res.status != wantStatus {
		g.t.Fatalf("create: %d %s", res.status, res.body)
	}
	var c createdReq
	if wantStatus < 300 {
		res.json(g.t, &c)
	}
	return c
}

func (g *requestsRig) detail(id string) dsar.Detail {
	g.t.Helper()
	var d dsar.Detail
	res := g.r.do("GET", "/v1/privacy-requests/"+id, g.e.keys["reviewer"], nil)
	if res.status != 200 {
		g.t.Fatalf("detail: %d %s", res.status, res.body)
	}
	res.json(g.t, &d)
	return d
}

func (g *requestsRig) waitFor(id string, want ...dsar.Status) dsar.Detail {
	g.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d := g.detail(id)
		for _, w := range want {
			if d.Status == w {
				return d
			}
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("request %s stuck in %s, want %v", id, d.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// finishManual completes the request's manual tasks through the API once
// its automated ones have ended.
func (g *requestsRig) finishManual(id string) {
	g.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d := g.detail(id)
		busy := false
		for _, t := range d.Tasks {
			busy = busy || t.Mode == dsar.ModeAutomated && (t.Status == dsar.TaskPending || t.Status == dsar.TaskRunning)
		}
		if !busy || time.Now().After(deadline) {
			for _, t := range d.Tasks {
				if t.Mode == dsar.ModeManual && t.Status == dsar.TaskPending {
					res := g.r.do("POST", "/v1/privacy-requests/"+id+"/tasks/"+t.ID+"/complete", g.e.keys["reviewer"], map[string]any{"note": "deleted in the vendor console"})
					if res.status != 200 {
						g.t.Fatalf("complete task: %d %s", res.status, res.body)
					}
				}
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// lastCode delivers the outbox and returns the newest code emailed to addr.
func (g *requestsRig) lastCode(addr string) string {
	g.t.Helper()
	if _, err := g.r.app.worker.RunOnce(context.Background()); err != nil {
		g.t.Fatal(err)
	}
	emails := g.fake.Emails()
	for i := len(emails) - 1; i >= 0; i-- {
		if len(emails[i].To) == 1 && emails[i].To[0] == addr {
			if c := sixDigits.FindString(emails[i].Text); c != "" {
				return c
			}
		}
	}
	g.t.Fatalf("no code emailed (%d emails)", len(emails))
	return ""
}

func TestPrivacyRequestsAPI(t *testing.T) {
	t.Parallel()
	g := newRequestsRig(t)
	ctx := context.Background()
	front, reviewer := g.e.keys["frontend"], g.e.keys["reviewer"]
	em := connectors.Identity{Type: "email", Value: "ann@example.com"}
	user := connectors.Identity{Type: "user", Value: "u-1"}
	if err := g.store.Put(ctx, "app_db", "users", "u-1", []connectors.Identity{em, user}, map[string]any{"id": "u-1", "email": "ann@example.com", "name": "Ann"}); err != nil {
		t.Fatal(err)
	}
	if err := g.store.Link(ctx, em, user); err != nil {
		t.Fatal(err)
	}

	t.Run("web access: code, verify, run, complete", func(t *testing.T) {
		body := map[string]any{"type": "access", "subject": "email:ann@example.com", "region": "DE", "channel": "web", "language": "uz"}
		c := g.create(front, body, 201)
		if c.Request.Status != dsar.IdentityPending || c.StatusToken == "" {
			t.Fatalf("%+v", c)
		}
		if again := g.create(front, body, 200); !again.Existing || again.Request.ID != c.Request.ID {
			t.Errorf("duplicate not deduplicated: %+v", again)
		}
		id := c.Request.ID
		if res := g.r.do("GET", "/v1/privacy-requests/"+id+"/status", "", nil, "Steward-Status-Token", c.StatusToken); res.status != 200 {
			t.Errorf("status: %d %s", res.status, res.body)
		}
		if res := g.r.do("GET", "/v1/privacy-requests/"+id+"/status", "", nil, "Steward-Status-Token", "sts_wrong"); res.status != 404 {
			t.Errorf("wrong token: %d", res.status)
		}
		if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/verification-code", "", nil); res.status != 202 {
			t.Errorf("resend: %d %s", res.status, res.body)
		}
		code := g.lastCode("ann@example.com")
		bad := "000000"
		if code == bad {
			bad = "111111"
		}
		if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/verify", "", map[string]any{"code": bad}); res.status != 400 || res.problem(t).Code != "invalid_request" {
			t.Errorf("wrong code: %d %s", res.status, res.body)
		}
		res := g.r.do("POST", "/v1/privacy-requests/"+id+"/verify", "", map[string]any{"code": code})
		if res.status != 200 {
			t.Fatalf("verify: %d %s", res.status, res.body)
		}
		if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/verify", "", map[string]any{"code": code}); res.status != 409 {
			t.Errorf("verify twice: %d", res.status)
		}
		g.waitFor(id, dsar.InProgress, dsar.Completed)
		if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/identities", reviewer, nil); res.status != 200 {
			t.Errorf("reveal: %d %s", res.status, res.body)
		}
		if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/extend", reviewer, map[string]any{"reason": "complex request across many systems"}); res.status != 200 {
			t.Errorf("extend: %d %s", res.status, res.body)
		}
		if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/extend", reviewer, map[string]any{"reason": "again"}); res.status != 409 {
			t.Errorf("second extension: %d %s", res.status, res.body)
		}
		g.finishManual(id)
		d := g.waitFor(id, dsar.Completed)
		if !d.Extended || d.Plan == nil || len(d.Timeline) < 8 {
			t.Errorf("detail: extended %v plan %v timeline %d", d.Extended, d.Plan != nil, len(d.Timeline))
		}
		var page struct {
			Items []dsar.Request `json:"items"`
		}
		res = g.r.do("GET", "/v1/privacy-requests?status=completed&type=access", reviewer, nil)
		res.json(t, &page)
		if len(page.Items) != 1 || page.Items[0].ID != id {
			t.Errorf("list: %s", res.body)
		}
	})

	t.Run("bot erasure: approval, approve, complete; deny path", func(t *testing.T) {
		c := g.create(front, map[string]any{"type": "erasure", "subject": "tg:5550001", "region": "GB", "channel": "bot", "identity_asserted": true}, 201)
		id := c.Request.ID
		g.waitFor(id, dsar.AwaitingApproval)
		if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/approve", front, nil); res.status != 403 {
			t.Errorf("frontend approved: %d", res.status)
		}
		if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/pause", reviewer, map[string]any{"reason": "asked the person for the account email"}); res.status != 200 {
			t.Errorf("pause: %d %s", res.status, res.body)
		}
		if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/resume", reviewer, nil); res.status != 200 {
			t.Errorf("resume: %d %s", res.status, res.body)
		}
		if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/approve", reviewer, map[string]any{"note": "identity matches"}); res.status != 200 {
			t.Fatalf("approve: %d %s", res.status, res.body)
		}
		g.finishManual(id)
		done := g.waitFor(id, dsar.Completed)
		// The erasure went children first, and the API says so.
		for i, task := range done.Tasks {
			if task.System+"."+task.Dataset == "bot_db.tg_users" && (len(task.After) == 0 || len(done.Plan.Tasks[i].After) == 0) {
				t.Errorf("tg_users waits for nothing: task after %v, plan after %v", task.After, done.Plan.Tasks[i].After)
			}
		}

		d := g.create(front, map[string]any{"type": "erasure", "subject": "tg:5550002", "region": "GB", "channel": "bot", "identity_asserted": true}, 201)
		g.waitFor(d.Request.ID, dsar.AwaitingApproval)
		if res := g.r.do("POST", "/v1/privacy-requests/"+d.Request.ID+"/deny", reviewer, map[string]any{"reason": "the account is subject to a fraud investigation"}); res.status != 200 {
			t.Fatalf("deny: %d %s", res.status, res.body)
		}
		if res := g.r.do("POST", "/v1/privacy-requests/"+d.Request.ID+"/approve", reviewer, nil); res.status != 409 || res.problem(t).Code != "conflict" {
			t.Errorf("approve denied: %d %s", res.status, res.body)
		}
		if res := g.r.do("POST", "/v1/privacy-requests/"+d.Request.ID+"/retry-planning", reviewer, nil); res.status != 409 {
			t.Errorf("retry planning of a denied request: %d", res.status)
		}
	})

	t.Run("a failed task is retried by staff", func(t *testing.T) {
		// The person has an account, so the access finds it (an access that
		// finds nothing pauses for staff instead: package_test.go).
		tg := connectors.Identity{Type: "tg", Value: "5550003"}
		if err := g.store.Put(ctx, "bot_db", "tg_users", "5550003", []connectors.Identity{tg}, map[string]any{"tg_id": "5550003", "username": "ann"}); err != nil {
			t.Fatal(err)
		}
		g.store.FailNext("access", 1, connectors.Permanent(errors.New("table users is locked by a migration")))
		c := g.create(front, map[string]any{"type": "access", "subject": "tg:5550003", "region": "BR", "channel": "bot", "identity_asserted": true}, 201)
		d := g.waitFor(c.Request.ID, dsar.Failed)
		var failed string
		for _, task := range d.Tasks {
			if task.Status == dsar.TaskFailed {
				failed = task.ID
			}
		}
		if failed == "" || d.FailureReason == "" {
			t.Fatalf("no failed task: %+v", d.Tasks)
		}
		if res := g.r.do("POST", "/v1/privacy-requests/"+c.Request.ID+"/tasks/"+failed+"/retry", reviewer, nil); res.status != 200 {
			t.Fatalf("retry: %d %s", res.status, res.body)
		}
		g.finishManual(c.Request.ID)
		g.waitFor(c.Request.ID, dsar.Completed)
	})

	t.Run("cancel", func(t *testing.T) {
		c := g.create(front, map[string]any{"type": "export", "subject": "tg:5550004", "region": "DE", "channel": "bot", "identity_asserted": true}, 201)
		g.waitFor(c.Request.ID, dsar.AwaitingApproval)
		if res := g.r.do("POST", "/v1/privacy-requests/"+c.Request.ID+"/cancel", reviewer, map[string]any{"reason": "withdrawn by the person"}); res.status != 200 {
			t.Fatalf("cancel: %d %s", res.status, res.body)
		}
		if res := g.r.do("POST", "/v1/privacy-requests/"+c.Request.ID+"/cancel", reviewer, map[string]any{"reason": "again"}); res.status != 409 {
			t.Errorf("cancel twice: %d", res.status)
		}
	})

	t.Run("bad input changes nothing", func(t *testing.T) {
		before := countRows(t, g.e.pool, "privacy_requests")
		now := time.Now()
		fields := map[string]string{"auth_date": strconv.FormatInt(now.Unix(), 10), "user": `{"id":5550009,"first_name":"A"}`}
		good := telegram.Sign(fields, testBotToken)
		stale := telegram.Sign(map[string]string{"auth_date": strconv.FormatInt(now.Add(-48*time.Hour).Unix(), 10), "user": `{"id":5550009}`}, testBotToken)
		forged := telegram.Sign(fields, "999:other-bot")
		for name, c := range map[string]struct {
			key    string
			body   any
			status int
		}{
			"unknown type":              {front, map[string]any{"type": "delete_everything", "subject": "email:a@example.com", "region": "DE", "channel": "web"}, 400},
			"missing subject":           {front, map[string]any{"type": "access", "region": "DE", "channel": "web"}, 400},
			"subject wrong shape":       {front, map[string]any{"type": "access", "subject": "tg:abc", "region": "DE", "channel": "bot", "identity_asserted": true}, 400},
			"web needs email":           {front, map[string]any{"type": "access", "subject": "tg:5550010", "region": "DE", "channel": "web"}, 400},
			"bad region":                {front, map[string]any{"type": "access", "subject": "email:a@example.com", "region": "Germany", "channel": "web"}, 400},
			"stale initData":            {g.e.keys["sdk"], map[string]any{"type": "access", "subject": "tg:5550009", "region": "DE", "channel": "bot", "init_data": stale}, 403},
			"forged initData":           {front, map[string]any{"type": "access", "subject": "tg:5550009", "region": "DE", "channel": "bot", "init_data": forged}, 400},
			"stale initData (frontend)": {front, map[string]any{"type": "access", "subject": "tg:5550009", "region": "DE", "channel": "bot", "init_data": stale}, 400},
			"initData of another user":  {front, map[string]any{"type": "access", "subject": "tg:5550011", "region": "DE", "channel": "bot", "init_data": good}, 400},
			"staff channel by frontend": {front, map[string]any{"type": "access", "subject": "email:a@example.com", "region": "DE", "channel": "staff", "note": "letter"}, 403},
			"unknown field":             {front, map[string]any{"type": "access", "subject": "email:a@example.com", "region": "DE", "channel": "web", "extra": 1}, 400},
			"changes on access":         {front, map[string]any{"type": "access", "subject": "email:a@example.com", "region": "DE", "channel": "web", "changes": map[string]string{"user.name": "B"}}, 400},
			"bad correction":            {front, map[string]any{"type": "rectification", "subject": "email:a@example.com", "region": "DE", "channel": "web", "changes": map[string]string{"user.contact.email": "not-an-email"}}, 400},
		} {
			res := g.r.do("POST", "/v1/privacy-requests", c.key, c.body)
			if res.status != c.status {
				t.Errorf("%s: %d %s", name, res.status, res.body)
			}
		}
		if res := g.r.do("POST", "/v1/privacy-requests", front, "type=access"); res.status != 415 && res.status != 400 {
			t.Errorf("not JSON: %d", res.status)
		}
		if after := countRows(t, g.e.pool, "privacy_requests"); after != before {
			t.Errorf("bad input stored requests: %d -> %d", before, after)
		}
		// A valid initData verifies the bot user at intake.
		c := g.create(front, map[string]any{"type": "restriction", "subject": "tg:5550009", "region": "DE", "channel": "bot", "init_data": good}, 201)
		if c.Request.Status != dsar.Verified || c.Request.Verification != "telegram" {
			t.Errorf("initData request: %+v", c.Request)
		}
		if res := g.r.do("GET", "/v1/privacy-requests?status=nonsense", reviewer, nil); res.status != 400 {
			t.Errorf("bad filter: %d", res.status)
		}
		if res := g.r.do("GET", "/v1/privacy-requests/not-a-uuid", reviewer, nil); res.status != 404 {
			t.Errorf("bad id: %d", res.status)
		}
	})
}

// TestAcknowledgeReviewThroughTheAPI: acknowledging review items goes
// through the same authorization and problem responses as every staff
// action; a task with nothing to review is a conflict, a missing note is
// invalid, and an auditor may not.
func TestAcknowledgeReviewThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.start()
	g := &requestsRig{t: t, e: e, r: r}
	reviewer := e.keys["reviewer"]
	c := g.create(reviewer, map[string]any{"type": "access", "subject": "email:ack@example.com", "region": "DE", "channel": "staff",
		"note": "letter", "identity_verified": true}, 201)
	// No connector is configured here: its tasks are manual, waiting for
	// staff, and none has review items.
	d := g.waitFor(c.Request.ID, dsar.InProgress)
	if len(d.Tasks) == 0 {
		t.Fatal("the request has no tasks")
	}
	path := "/v1/privacy-requests/" + c.Request.ID + "/tasks/" + d.Tasks[0].ID + "/acknowledge-review"
	if res := r.do("POST", path, e.keys["auditor"], map[string]any{"note": "seen"}); res.status != 403 {
		t.Errorf("auditor: %d %s", res.status, res.body)
	}
	if res := r.do("POST", path, reviewer, map[string]any{}); res.status != 400 || res.problem(t).Code != "invalid_request" {
		t.Errorf("no note: %d %s", res.status, res.body)
	}
	if res := r.do("POST", path, reviewer, map[string]any{"note": "seen"}); res.status != 409 || res.problem(t).Code != "conflict" {
		t.Errorf("a task without review items: %d %s", res.status, res.body)
	}
}
