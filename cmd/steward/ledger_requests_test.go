package main

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/dsar"
)

// Steward's own ledgers take part in a person's requests, through the API
// of a whole replica:
//   - an objection withdraws the person's direct-marketing consent at once
//     (GDPR Art. 21(3); bot notice: opt out of broadcasts), with no
//     approval;
//   - a completed restriction makes the consent check answer "restricted"
//     (GDPR Art. 18(1));
//   - the access package holds the consent ledger with signed receipts
//     (GDPR Art. 15(1), Art. 7(1));
//   - an erasure forgets the ledger's identity and grants, keeping the
//     opt-outs under the keyed hash (GDPR Art. 17(1), Art. 21(3)).
func TestOwnLedgersInRequests(t *testing.T) {
	t.Parallel()
	g := newRequestsRig(t)
	front, reviewer := g.e.keys["frontend"], g.e.keys["reviewer"]
	botGrant := func(tg, purpose string) {
		t.Helper()
		g.r.record(front, grant("tg:"+tg, purpose, "granted", "source", "bot", "notice_version", "1.0"))
	}
	bot := func(typ, tg string) string {
		t.Helper()
		return g.create(front, map[string]any{"type": typ, "subject": "tg:" + tg, "region": "DE", "channel": "bot", "identity_asserted": true}, 201).Request.ID
	}
	timeline := func(id, event string) bool {
		for _, e := range g.detail(id).Timeline {
			if e.Event == event {
				return true
			}
		}
		return false
	}

	t.Run("objection withdraws broadcasts at once", func(t *testing.T) {
		botGrant("7100001", "broadcast")
		if c := g.r.check(front, "tg:7100001", "broadcast", "DE"); !c.Allow {
			t.Fatalf("before: %+v", c)
		}
		id := bot("objection", "7100001")
		deadline := 300
		for !timeline(id, "marketing_withdrawn") {
			if deadline--; deadline == 0 {
				t.Fatalf("no withdrawal: %+v", g.detail(id).Timeline)
			}
			sleepShort()
		}
		if c := g.r.check(front, "tg:7100001", "broadcast", "DE"); c.Allow || c.Reason != "withdrawn" {
			t.Errorf("after the objection: %+v", c)
		}
	})

	t.Run("a completed restriction answers restricted", func(t *testing.T) {
		botGrant("7100002", "broadcast")
		id := bot("restriction", "7100002")
		g.waitFor(id, dsar.InProgress, dsar.Completed)
		g.finishManual(id)
		for i := 0; i < 100 && g.detail(id).Status != dsar.Completed; i++ {
			sleepShort()
		}
		if d := g.detail(id); d.Status != dsar.Completed {
			for _, tk := range d.Tasks {
				t.Logf("task %s/%s %s %s %s %s", tk.System, tk.Dataset, tk.Operation, tk.Mode, tk.Status, tk.Error)
			}
			t.Fatalf("restriction %s", d.Status)
		}
		deadline := 300
		for !timeline(id, "consent_restricted") {
			if deadline--; deadline == 0 {
				t.Fatalf("restriction not recorded: %+v", g.detail(id).Timeline)
			}
			sleepShort()
		}
		if c := g.r.check(front, "tg:7100002", "broadcast", "DE"); c.Allow || c.Reason != "restricted" {
			t.Errorf("after the restriction: %+v", c)
		}
	})

	t.Run("the access package holds the consent ledger; an erasure forgets it", func(t *testing.T) {
		tg := connectors.Identity{Type: "tg", Value: "7100003"}
		if err := g.store.Put(context.Background(), "bot_db", "tg_users", "7100003", []connectors.Identity{tg}, map[string]any{"tg_id": "7100003", "username": "gina"}); err != nil {
			t.Fatal(err)
		}
		botGrant("7100003", "broadcast")
		g.r.record(front, grant("tg:7100003", "broadcast", "withdrawn", "source", "bot", "notice_version", "1.0"))
		botGrant("7100003", "broadcast")
		id := bot("access", "7100003")
		g.waitFor(id, dsar.InProgress, dsar.Completed)
		g.finishManual(id)
		g.waitFor(id, dsar.Completed)
		res := g.r.do("GET", "/v1/privacy-requests/"+id+"/package", reviewer, nil)
		if res.status != 200 {
			t.Fatalf("package: %d %s", res.status, res.body)
		}
		zr, err := zip.NewReader(bytes.NewReader(res.body), int64(len(res.body)))
		if err != nil {
			t.Fatal(err)
		}
		var data string
		for _, f := range zr.File {
			if f.Name == "data.json" {
				rc, _ := f.Open()
				b, _ := io.ReadAll(rc)
				rc.Close()
				data = string(b)
			}
		}
		if strings.Count(data, `"consent_events"`) < 1 || !strings.Contains(data, `"receipt_jws"`) || strings.Count(data, `"withdrawn"`) < 1 {
			t.Fatalf("data.json has no consent ledger: %.600s", data)
		}

		er := bot("erasure", "7100003")
		g.waitFor(er, dsar.AwaitingApproval)
		if res := g.r.do("POST", "/v1/privacy-requests/"+er+"/approve", reviewer, map[string]any{"note": "ok"}); res.status != 200 {
			t.Fatalf("approve: %d %s", res.status, res.body)
		}
		g.waitFor(er, dsar.InProgress, dsar.Completed)
		g.finishManual(er)
		g.waitFor(er, dsar.Completed)
		if !timeline(er, "consent_ledger_forgotten") {
			t.Fatalf("ledger not forgotten: %+v", g.detail(er).Timeline)
		}
		var grants, refusals, sealed int
		ctx := context.Background()
		if err := g.e.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE e.state = 'granted'), count(*) FILTER (WHERE e.state <> 'granted'),
			count(*) FILTER (WHERE s.forgotten_at IS NULL)
			FROM consent_events e JOIN subjects s ON s.id = e.subject_id
			WHERE s.id = (SELECT subject_id FROM privacy_requests WHERE id = $1)`, er).Scan(&grants, &refusals, &sealed); err != nil {
			t.Fatal(err)
		}
		if grants != 0 || refusals < 1 || sealed != 0 {
			t.Errorf("after erasure: %d grants, %d refusals kept, %d events of an unforgotten subject", grants, refusals, sealed)
		}
		// The opt-out still holds: a check finds the withdrawal, not a grant.
		if c := g.r.check(front, "tg:7100003", "broadcast", "DE"); c.Allow {
			t.Errorf("after erasure the check allows: %+v", c)
		}
	})
}

func sleepShort() { time.Sleep(20 * time.Millisecond) }
