package main

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/restrictions"
	"github.com/steward-privacy/steward/policies"
)

// Issue 19, restriction: GDPR Art. 18(2) ("with the exception of storage,
// only be processed with the data subject's consent ..."), web "Restrict or
// object to processing", bot 6.4 "Right to Restriction: Limit how we use
// your data." A restriction in force makes every check but the essential
// one answer restricted, naming the request; staff read it and lift it
// with a reason, audited; the check allows again at once.
func TestRestrictionThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.start()
	fk, rk, ak := e.keys["frontend"], e.keys["reviewer"], e.keys["auditor"]
	ctx := context.Background()
	r.record(fk, grant("email:rita@example.com", "marketing", "granted"))
	if c := r.check(fk, "email:rita@example.com", "marketing", "DE"); !c.Allow {
		t.Fatalf("before: %+v", c)
	}
	// What a completed restriction request records (internal/dsar calls
	// the ledger; connectors without a flag column write it too).
	rita, _ := identity.Parse("email:rita@example.com")
	if _, err := r.app.restrictions.RestrictSubjects(ctx, "req-art18-1", []identity.Subject{rita}); err != nil {
		t.Fatal(err)
	}
	c := r.check(fk, "email:rita@example.com", "marketing", "DE")
	res := r.do("GET", "/v1/consent/check?"+url.Values{"subject": {"email:rita@example.com"}, "purpose": {"marketing"}, "jurisdiction": {"DE"}}.Encode(), fk, nil)
	var full struct {
		RestrictionID string `json:"restriction_id"`
		RequestID     string `json:"request_id"`
	}
	res.json(t, &full)
	if c.Allow || c.Reason != "restricted" || c.Rule != "processing_restricted" || full.RequestID != "req-art18-1" || full.RestrictionID == "" {
		t.Fatalf("restricted: %+v %s", c, res.body)
	}
	if c := r.check(fk, "email:rita@example.com", "essential", "DE"); !c.Allow {
		t.Fatalf("essential: %+v", c)
	}
	q := "/v1/restrictions?" + url.Values{"subject": {"email:rita@example.com"}}.Encode()
	for _, k := range []string{rk, ak, e.keys["admin"]} {
		res := r.do("GET", q, k, nil)
		var l struct {
			Restricted   bool                       `json:"restricted"`
			Restrictions []restrictions.Restriction `json:"restrictions"`
		}
		res.json(t, &l)
		if res.status != 200 || !l.Restricted || len(l.Restrictions) != 1 || l.Restrictions[0].RequestID != "req-art18-1" || l.Restrictions[0].ID != full.RestrictionID {
			t.Fatalf("list: %d %s", res.status, res.body)
		}
	}
	if res := r.do("GET", q, fk, nil); res.status != 403 {
		t.Fatalf("front end read restrictions: %d", res.status)
	}
	if res := r.do("GET", "/v1/restrictions/"+full.RestrictionID, ak, nil); res.status != 200 {
		t.Fatalf("get: %d %s", res.status, res.body)
	}
	lift := "/v1/restrictions/" + full.RestrictionID + "/lift"
	if res := r.do("POST", lift, ak, map[string]string{"reason": "auditors may not"}); res.status != 403 {
		t.Fatalf("auditor lifted: %d", res.status)
	}
	if res := r.do("POST", lift, rk, map[string]string{"reason": ""}); res.status != 400 || res.problem(t).Errors[0].Field != "reason" {
		t.Fatalf("lift without reason: %d %s", res.status, res.body)
	}
	if res := r.do("POST", lift, rk, map[string]string{"reason": "accuracy verified with Rita"}); res.status != 200 || !strings.Contains(string(res.body), `"active":false`) {
		t.Fatalf("lift: %d %s", res.status, res.body)
	}
	if res := r.do("POST", lift, rk, map[string]string{"reason": "again"}); res.status != 409 {
		t.Fatalf("lift twice: %d %s", res.status, res.body)
	}
	if res := r.do("POST", "/v1/restrictions/00000000-0000-0000-0000-000000000000/lift", rk, map[string]string{"reason": "x"}); res.status != 404 {
		t.Fatalf("lift unknown: %d %s", res.status, res.body)
	}
	if c := r.check(fk, "email:rita@example.com", "marketing", "DE"); !c.Allow || c.Reason != "granted" {
		t.Fatalf("after lift: %+v", c)
	}
	var audited int
	if err := e.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM audit_pending WHERE action = 'restriction.lifted' AND target_id = $1)
		+ (SELECT count(*) FROM audit_log WHERE action = 'restriction.lifted' AND target_id = $1)`, full.RestrictionID).Scan(&audited); err != nil || audited != 1 {
		t.Fatalf("audited %d %v", audited, err)
	}
}

// Issue 19, notices. Web (Policy updates): "For major changes we will also
// notify you via email or in-product messaging and can provide prior
// versions on request"; bot 11: "Sending a notification through the bot
// (for significant changes)" and "Requiring acceptance of the new policy
// before continued use". Every version is served; a major version asks the
// people who consented under the older one again and tells them.
func TestNoticeRegistryThroughTheAPI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	products, _ := policies.FS.ReadFile("data/products.json")
	notices, _ := policies.FS.ReadFile("data/notices.json")
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("data/products.json", string(products))
	e := newEnv(t, map[string]string{"STEWARD_POLICY_OVERLAY": dir, "STEWARD_PUBLIC_URL": "https://privacy.example.com"})
	r := e.start()
	fk, rk := e.keys["frontend"], e.keys["reviewer"]

	// Served without a key: a notice is public.
	res := r.do("GET", "/v1/notices/bot", "", nil)
	if res.status != 200 || !strings.Contains(string(res.body), `"current":"1.0"`) {
		t.Fatalf("list: %d %s", res.status, res.body)
	}
	res = r.do("GET", "/v1/notices/bot/1.0?lang=uz", "", nil)
	if res.status != 200 || res.header.Get("Content-Language") != "en" || !strings.Contains(string(res.body), "Bananapics") {
		t.Fatalf("text: %d %s", res.status, res.body)
	}
	for _, p := range []string{"/v1/notices/tv", "/v1/notices/web/9.9"} {
		if res := r.do("GET", p, "", nil); res.status != 404 {
			t.Fatalf("%s: %d", p, res.status)
		}
	}

	r.record(fk, grant("user:lena", "marketing", "granted", "language", "ru", "linked_subjects", []string{"email:lena@example.com"}))
	r.record(fk, grant("tg:3003", "broadcast", "granted", "source", "bot", "notice_version", "1.0"))
	// The operator publishes 3.0, a major change, and reloads.
	write("data/products.json", strings.Replace(string(products), `"notice_version": "2.0"`, `"notice_version": "3.0"`, 1))
	write("data/notices.json", strings.Replace(string(notices), `"versions": {
      "2.0": {`, `"versions": {
      "3.0": {"effective": "2026-06-01", "change": "major", "summary": "New AI processors.", "languages": ["en"]},
      "2.0": {`, 1))
	write("notices/web/3.0/en.md", "Privacy Policy, version 3.0\n")
	if _, err := r.app.policies.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c := r.check(fk, "user:lena", "marketing", "DE"); c.Allow || c.Reason != "reconsent_required" {
		t.Fatalf("after 3.0: %+v", c)
	}
	// The bot's notice did not change: its people keep their consent.
	if c := r.check(fk, "tg:3003", "broadcast", "DE"); !c.Allow {
		t.Fatalf("bot after web 3.0: %+v", c)
	}
	// The prior version is still served, on request.
	if res := r.do("GET", "/v1/notices/web/2.0", "", nil); res.status != 200 || !strings.Contains(string(res.body), `"current":false`) {
		t.Fatalf("prior version: %d %s", res.status, res.body)
	}
	announce := "/v1/notices/web/3.0/announce"
	if res := r.do("POST", announce, fk, nil); res.status != 403 {
		t.Fatalf("front end announced: %d", res.status)
	}
	res = r.do("POST", announce, rk, nil)
	if res.status != 201 || !strings.Contains(string(res.body), `"subjects":1,"emails":1,"telegrams":0,"unreachable":0`) {
		t.Fatalf("announce: %d %s", res.status, res.body)
	}
	var n int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM outbox WHERE payload->>'template' = 'notice_changed'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("queued %d %v", n, err)
	}
	if res := r.do("POST", announce, rk, nil); res.status != 409 {
		t.Fatalf("announce twice: %d %s", res.status, res.body)
	}
	if res := r.do("POST", "/v1/notices/web/2.0/announce", rk, nil); res.status != 409 {
		t.Fatalf("announce a prior version: %d %s", res.status, res.body)
	}
	r.record(fk, grant("user:lena", "marketing", "granted", "notice_version", "3.0"))
	if c := r.check(fk, "user:lena", "marketing", "DE"); !c.Allow {
		t.Fatalf("after re-consent: %+v", c)
	}
}
