package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/notify/resendtest"
)

type auditPageResp struct {
	Entries []struct {
		Seq        int64           `json:"seq"`
		Actor      string          `json:"actor"`
		Action     string          `json:"action"`
		TargetType string          `json:"target_type"`
		TargetID   string          `json:"target_id"`
		Details    json.RawMessage `json:"details"`
		Hash       string          `json:"hash"`
	} `json:"entries"`
	NextCursor *string `json:"next_cursor"`
}

func (r *replica) seal() {
	r.t.Helper()
	if _, err := r.app.sealer.SealAll(context.Background()); err != nil {
		r.t.Fatal(err)
	}
}

func (r *replica) auditPage(key, query string) auditPageResp {
	r.t.Helper()
	res := r.do("GET", "/v1/admin/audit?"+query, key, nil)
	if res.status != 200 {
		r.t.Fatalf("audit %s: %d %s", query, res.status, res.body)
	}
	var p auditPageResp
	res.json(r.t, &p)
	return p
}

func TestEverythingWritesToTheAuditLog(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	e := newEnv(t, map[string]string{"STEWARD_RESEND_API_KEY": "re_test", "STEWARD_RESEND_BASE_URL": fake.URL, "STEWARD_RESEND_AUDIENCE_ID": "aud_1"})
	r := e.start()
	ak := e.keys["auditor"]
	fk := e.keys["frontend"]

	// GPC seen for an email subject; marketing withdrawn for a subject whose
	// unsubscribe Resend refuses for good.
	r.check(fk, "email:gpc.person@example.com", "marketing", "US-CA", "Sec-GPC", "1")
	r.record(fk, grant("email:refused@example.com", "marketing", "granted"))
	r.record(fk, grant("email:refused@example.com", "marketing", "withdrawn"))
	fake.FailNext(5, 422)
	if res, err := r.app.worker.RunOnce(context.Background()); err != nil || res.Failed != 1 {
		t.Fatalf("outbox: %+v %v", res, err)
	}
	r.seal()

	counts := map[string]int{}
	all := r.auditPage(ak, "limit=1000&order=asc")
	for i, en := range all.Entries {
		counts[en.Action]++
		if en.Seq != int64(i+1) {
			t.Fatalf("entry %d has seq %d", i, en.Seq)
		}
	}
	for action, want := range map[string]int{"key.created": 5, "policy.loaded": 1, "consent.gpc_recorded": 1, "outbox.delivery_failed": 1} {
		if counts[action] != want {
			t.Errorf("%s: %d entries, want %d (all: %v)", action, counts[action], want, counts)
		}
	}
	raw, _ := json.Marshal(all)
	for _, pii := range []string{"gpc.person", "refused@", "example.com"} {
		if strings.Contains(string(raw), pii) {
			t.Errorf("audit log contains %q", pii)
		}
	}

	t.Run("filters", func(t *testing.T) {
		if p := r.auditPage(ak, "action=key.created"); len(p.Entries) != 5 || p.Entries[0].Seq < p.Entries[4].Seq {
			t.Fatalf("action filter, newest first: %+v", p.Entries)
		}
		if p := r.auditPage(ak, "action=consent.*"); len(p.Entries) != 1 || p.Entries[0].Action != "consent.gpc_recorded" || !strings.HasPrefix(p.Entries[0].Actor, "subject:") {
			t.Fatalf("prefix filter: %+v", p.Entries)
		}
		if p := r.auditPage(ak, "actor=system:cli"); len(p.Entries) != 5 {
			t.Fatalf("actor filter: %d", len(p.Entries))
		}
		if p := r.auditPage(ak, "target_type=outbox_message&target_id=1"); len(p.Entries) != 1 {
			t.Fatalf("target filter: %d", len(p.Entries))
		}
		future := url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
		past := url.QueryEscape(time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
		if p := r.auditPage(ak, "since="+future); len(p.Entries) != 0 {
			t.Fatalf("since in the future: %d", len(p.Entries))
		}
		if p := r.auditPage(ak, "since="+past+"&until="+future); len(p.Entries) != len(all.Entries) {
			t.Fatalf("time range: %d", len(p.Entries))
		}
	})
	t.Run("cursor pagination visits every entry once", func(t *testing.T) {
		seen := map[int64]bool{}
		q := "limit=3"
		for i := 0; i < 20; i++ {
			p := r.auditPage(ak, q)
			for _, en := range p.Entries {
				if seen[en.Seq] {
					t.Fatalf("seq %d twice", en.Seq)
				}
				seen[en.Seq] = true
			}
			if p.NextCursor == nil {
				break
			}
			q = "limit=3&cursor=" + *p.NextCursor
		}
		if len(seen) != len(all.Entries) {
			t.Fatalf("paged %d of %d", len(seen), len(all.Entries))
		}
	})
	t.Run("export as jsonl and csv", func(t *testing.T) {
		res := r.do("GET", "/v1/admin/audit/export?format=jsonl", ak, nil)
		lines := strings.Split(strings.TrimSpace(string(res.body)), "\n")
		if res.status != 200 || len(lines) != len(all.Entries) || !strings.HasPrefix(res.header.Get("Content-Type"), "application/jsonl") {
			t.Fatalf("jsonl: %d, %d lines", res.status, len(lines))
		}
		var first audit.Entry
		if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Seq != 1 {
			t.Fatalf("first line %q: %v", lines[0], err)
		}
		res = r.do("GET", "/v1/admin/audit/export?format=csv&action=key.created", ak, nil)
		recs, err := csv.NewReader(strings.NewReader(string(res.body))).ReadAll()
		if err != nil || len(recs) != 6 || recs[0][0] != "seq" || recs[1][3] != "key.created" {
			t.Fatalf("csv: %v %v", recs, err)
		}
	})
	t.Run("verify over HTTP", func(t *testing.T) {
		res := r.do("GET", "/v1/admin/audit/verify", ak, nil)
		var v struct {
			OK      bool   `json:"ok"`
			Entries int64  `json:"entries"`
			Summary string `json:"summary"`
		}
		res.json(t, &v)
		if !v.OK || v.Entries != int64(len(all.Entries)) || !strings.HasPrefix(v.Summary, "OK ") {
			t.Fatalf("%s", res.body)
		}
	})
	t.Run("bad queries are 4xx problems", func(t *testing.T) {
		for _, q := range []string{"colour=red", "cursor=zzz", "since=yesterday", "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "action=Bad Action", "limit=0", "order=sideways"} {
			if res := r.do("GET", "/v1/admin/audit?"+q, ak, nil); res.status != 400 {
				t.Errorf("%s: %d %s", q, res.status, res.body)
			} else {
				res.problem(t)
			}
		}
		if res := r.do("GET", "/v1/admin/audit/export?format=xml", ak, nil); res.status != 400 {
			t.Errorf("format=xml: %d", res.status)
		}
		if res := r.do("GET", "/v1/admin/audit", fk, nil); res.status != 403 {
			t.Errorf("frontend read the audit log: %d", res.status)
		}
	})
	t.Run("the CLI verifies and names a tampered entry", func(t *testing.T) {
		env := map[string]string{"DATABASE_URL": e.url, "STEWARD_AUDIT_SIGNING_KEY": e.cfg.AuditSigningKey}
		code, out, errs := runCLI(t, env, "audit", "verify")
		if code != 0 || !strings.HasPrefix(out, "OK ") {
			t.Fatalf("%d %q %q", code, out, errs)
		}
		err := db.Tx(context.Background(), e.pool, func(tx pgx.Tx) error {
			for _, s := range []string{"ALTER TABLE audit_log DISABLE TRIGGER USER", `UPDATE audit_log SET details = '{"role":"admin"}' WHERE seq = 2`, "ALTER TABLE audit_log ENABLE TRIGGER USER"} {
				if _, err := tx.Exec(context.Background(), s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		code, out, _ = runCLI(t, env, "audit", "verify")
		if code != 1 || !strings.Contains(out, "FAIL at seq 2: hash mismatch") {
			t.Fatalf("%d %q", code, out)
		}
		res := r.do("GET", "/v1/admin/audit/verify", ak, nil)
		if !strings.Contains(string(res.body), `"broken_seq":2`) {
			t.Fatalf("%s", res.body)
		}
	})
}
