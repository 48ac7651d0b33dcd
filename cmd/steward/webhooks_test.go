package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/demo"
	"github.com/steward-privacy/steward/internal/refapp"
	"github.com/steward-privacy/steward/internal/stdwebhook"
	"github.com/steward-privacy/steward/internal/webhooks"
)

// TestOutboundWebhooksKeepTheBotsOptOutsInStep: an opt-out recorded in
// Steward reaches the bot's own opt-out table through a signed webhook.
// The bot notice promises broadcasts can be refused at any time, and GDPR
// Art. 21(3) / Art. 7(3) make a withdrawal stop the processing wherever it
// happens; the bot broadcasts from tg_broadcast_optouts, so without this the
// promise holds only in Steward's ledger.
func TestOutboundWebhooksKeepTheBotsOptOutsInStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, map[string]string{"STEWARD_WEBHOOKS_ALLOW_LOOPBACK": "true"})
	clk := clock.NewFake(time.Now().UTC())
	e.clock = clk
	r := e.start()
	admin, fk := e.keys["admin"], e.keys["frontend"]

	// The reference bot's tables, and a user who has opened the bot.
	if err := refapp.CreateSchema(ctx, e.pool, "bot", refapp.Bot); err != nil {
		t.Fatal(err)
	}
	const tg = int64(700123)
	if _, err := e.pool.Exec(ctx, `INSERT INTO bot.tg_users (tg_id, first_name) VALUES ($1, 'Ann')`, tg); err != nil {
		t.Fatal(err)
	}

	// The bot backend's receiver, behind a switch that fails the first
	// answers on demand.
	var (
		mu       sync.Mutex
		failNext int
		got      []http.Header
		bodies   [][]byte
	)
	var recv *demo.OptOutReceiver
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		mu.Lock()
		got = append(got, req.Header.Clone())
		bodies = append(bodies, body)
		fail := failNext > 0
		if fail {
			failNext--
		}
		mu.Unlock()
		if fail {
			http.Error(w, "busy", http.StatusInternalServerError)
			return
		}
		req.Body = io.NopCloser(bytesReader(body))
		recv.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)

	res := r.do("POST", "/v1/webhooks/endpoints", admin, map[string]any{
		"url": srv.URL + "/steward", "description": "bot opt-outs", "event_types": []string{"consent.changed"}, "include_identities": true})
	if res.status != 201 {
		t.Fatalf("create endpoint: %d %s", res.status, res.body)
	}
	var ep webhooks.Endpoint
	res.json(t, &ep)
	if ep.Secret == "" || !ep.AllowLoopback {
		t.Fatalf("endpoint %+v", ep)
	}
	v, err := stdwebhook.NewVerifier(ep.Secret)
	if err != nil {
		t.Fatal(err)
	}
	v.Now = clk.Now
	recv = &demo.OptOutReceiver{Pool: e.pool, Schema: "bot", Verifier: v}

	// Only admins manage endpoints; the secret is never listed again.
	if res := r.do("GET", "/v1/webhooks/endpoints", e.keys["reviewer"], nil); res.status != 403 {
		t.Fatalf("reviewer lists endpoints: %d", res.status)
	}
	if res := r.do("POST", "/v1/webhooks/endpoints", admin, map[string]any{"url": "http://10.0.0.5/hook"}); res.status != 400 {
		t.Fatalf("private URL accepted: %d %s", res.status, res.body)
	}
	res = r.do("GET", "/v1/webhooks/endpoints", admin, nil)
	var list struct{ Endpoints []webhooks.Endpoint }
	res.json(t, &list)
	if len(list.Endpoints) != 1 || list.Endpoints[0].Secret != "" {
		t.Fatalf("list: %s", res.body)
	}

	optedOut := func() bool {
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM bot.tg_broadcast_optouts WHERE tg_user_id = $1`, tg).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	runOnce := func() {
		t.Helper()
		if _, err := r.app.worker.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	record := func(state string) {
		t.Helper()
		r.record(fk, map[string]any{"subject": "tg:700123", "purpose": "broadcast", "state": state, "source": "bot", "notice_version": "1.0", "jurisdiction": "DE"})
	}

	t.Run("a withdrawal arrives signed, once, and the bot's opt-out row appears", func(t *testing.T) {
		record("withdrawn")
		runOnce()
		runOnce() // nothing more to send
		mu.Lock()
		n := len(got)
		h := got[0]
		mu.Unlock()
		if n != 1 {
			t.Fatalf("%d deliveries, want 1", n)
		}
		if h.Get("webhook-id") == "" || h.Get("webhook-timestamp") == "" || h.Get("webhook-signature") == "" {
			t.Fatalf("headers %v", h)
		}
		if !optedOut() {
			t.Fatal("no opt-out row in the bot's table")
		}
	})

	t.Run("a tampered signature is rejected by the verifier", func(t *testing.T) {
		mu.Lock()
		h, body := got[0], bodies[0]
		mu.Unlock()
		if err := v.VerifyRequest(h, body); err != nil {
			t.Fatalf("the genuine message does not verify: %v", err)
		}
		bad := h.Clone()
		bad.Set("webhook-signature", "v1,"+"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
		if err := v.VerifyRequest(bad, body); err == nil {
			t.Fatal("tampered signature accepted")
		}
		if err := v.VerifyRequest(h, append([]byte(nil), append(body, ' ')...)); err == nil {
			t.Fatal("tampered body accepted")
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/steward", bytesReader(body))
		req.Header = bad
		recv.ServeHTTP(rec, req)
		if rec.Code != 401 {
			t.Fatalf("receiver answered %d to a tampered message", rec.Code)
		}
	})

	t.Run("a receiver failing twice gets it on the third attempt", func(t *testing.T) {
		mu.Lock()
		failNext, got, bodies = 2, nil, nil
		mu.Unlock()
		clk.Advance(time.Minute) // the log lists newest first
		record("granted")
		runOnce()
		clk.Advance(2 * time.Minute)
		runOnce()
		clk.Advance(5 * time.Minute)
		runOnce()
		mu.Lock()
		n := len(got)
		ids := []string{}
		for _, h := range got {
			ids = append(ids, h.Get("webhook-id"))
		}
		mu.Unlock()
		if n != 3 || ids[0] != ids[1] || ids[1] != ids[2] {
			t.Fatalf("%d attempts with ids %v, want 3 with one id", n, ids)
		}
		if optedOut() {
			t.Fatal("the opt-out row is still there after a grant")
		}
		res := r.do("GET", "/v1/webhooks/endpoints/"+ep.ID+"/deliveries", admin, nil)
		var ds struct{ Deliveries []webhooks.Delivery }
		res.json(t, &ds)
		if len(ds.Deliveries) != 2 || ds.Deliveries[0].Status != "delivered" || len(ds.Deliveries[0].AttemptLog) != 3 {
			t.Fatalf("deliveries: %s", res.body)
		}
		if c := ds.Deliveries[0].AttemptLog[0].StatusCode; c == nil || *c != 500 {
			t.Fatalf("first attempt %+v", ds.Deliveries[0].AttemptLog[0])
		}
	})

	t.Run("replay re-sends with the same webhook-id", func(t *testing.T) {
		res := r.do("GET", "/v1/webhooks/endpoints/"+ep.ID+"/deliveries", admin, nil)
		var ds struct{ Deliveries []webhooks.Delivery }
		res.json(t, &ds)
		first := ds.Deliveries[len(ds.Deliveries)-1] // the withdrawal
		mu.Lock()
		got, bodies = nil, nil
		mu.Unlock()
		res = r.do("POST", "/v1/webhooks/deliveries/"+first.ID+"/replay", admin, nil)
		if res.status != 202 {
			t.Fatalf("replay: %d %s", res.status, res.body)
		}
		runOnce()
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 1 || got[0].Get("webhook-id") != first.MessageID {
			t.Fatalf("replay sent %d with id %v, want %s", len(got), got, first.MessageID)
		}
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM audit_pending WHERE action = 'webhook.delivery_replayed') +
			(SELECT count(*) FROM audit_log WHERE action = 'webhook.delivery_replayed')`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("replay audited %d times (%v)", n, err)
		}
	})

	t.Run("rotation signs with both secrets for a day, deletion stops sending", func(t *testing.T) {
		res := r.do("POST", "/v1/webhooks/endpoints/"+ep.ID+"/rotate-secret", admin, nil)
		var rot webhooks.Endpoint
		if res.status != 200 {
			t.Fatalf("rotate: %d %s\n%s", res.status, res.body, r.logs.String())
		}
		res.json(t, &rot)
		if rot.Secret == "" || rot.Secret == ep.Secret || rot.PreviousSecretExpiresAt == nil {
			t.Fatalf("rotate: %s", res.body)
		}
		mu.Lock()
		got, bodies = nil, nil
		mu.Unlock()
		record("withdrawn")
		runOnce()
		mu.Lock()
		h, body := got[0], bodies[0]
		mu.Unlock()
		nv, _ := stdwebhook.NewVerifier(rot.Secret)
		nv.Now = clk.Now
		if err := nv.VerifyRequest(h, body); err != nil {
			t.Fatalf("new secret: %v", err)
		}
		if err := v.VerifyRequest(h, body); err != nil {
			t.Fatalf("old secret within the overlap: %v", err)
		}
		if res := r.do("DELETE", "/v1/webhooks/endpoints/"+ep.ID, admin, nil); res.status != 204 {
			t.Fatalf("delete: %d %s", res.status, res.body)
		}
		mu.Lock()
		got = nil
		mu.Unlock()
		record("granted")
		runOnce()
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 0 {
			t.Fatalf("%d messages sent to a deleted endpoint", len(got))
		}
	})
}

func bytesReader(b []byte) io.Reader { return &byteReader{b: b} }

type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
