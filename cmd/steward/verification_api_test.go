package main

import (
	"testing"

	"github.com/steward-privacy/steward/internal/dsar"
)

// The staff and person endpoints of verification, package release and
// Art. 19 recipients, through a whole replica: each answers as openapi.json
// says, and refuses what it must without changing the request. (Their
// successful flows are in internal/dsar and the privacy-center tests.)
func TestVerificationReleaseAndRecipientEndpoints(t *testing.T) {
	t.Parallel()
	g := newRequestsRig(t)
	front, reviewer := g.e.keys["frontend"], g.e.keys["reviewer"]
	c := g.create(front, map[string]any{"type": "erasure", "subject": "tg:7300001", "region": "DE", "channel": "bot", "identity_asserted": true}, 201)
	id := c.Request.ID
	g.waitFor(id, dsar.AwaitingApproval)

	// A forged challenge-login token is refused (GDPR Art. 12(6): only the
	// person's own authenticated session vouches for them).
	if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/verification/challenge-login", "", map[string]any{"token": "eyJhbGciOiJIUzI1NiJ9.e30.forged"}); res.status < 400 || res.status >= 500 {
		t.Errorf("forged challenge token: %d %s", res.status, res.body)
	}
	// An invoice without the request's status token names no request.
	if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/verification/invoice", "", map[string]any{"reference": "in_123"}); res.status != 404 {
		t.Errorf("invoice without the status token: %d %s", res.status, res.body)
	}
	// Nothing to release, nothing to review on a bot erasure.
	if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/release-package", reviewer, map[string]any{"note": "ok"}); res.status != 409 && res.status != 404 {
		t.Errorf("release without a held package: %d %s", res.status, res.body)
	}
	if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/documents/agent_authorization/review", reviewer, map[string]any{"note": "ok"}); res.status != 404 && res.status != 409 {
		t.Errorf("review without a document: %d %s", res.status, res.body)
	}
	if d := g.detail(id); d.Status != dsar.AwaitingApproval {
		t.Fatalf("refused calls moved the request to %s", d.Status)
	}

	// GDPR Art. 19: once the erasure completes, the recipients are listed
	// (an auditor may read them), and marking one told needs a pending one.
	if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/approve", reviewer, map[string]any{"note": "ok"}); res.status != 200 {
		t.Fatalf("approve: %d %s", res.status, res.body)
	}
	g.waitFor(id, dsar.InProgress, dsar.Completed)
	g.finishManual(id)
	g.waitFor(id, dsar.Completed)
	var list struct {
		Recipients []dsar.Recipient `json:"recipients"`
	}
	res := g.r.do("GET", "/v1/privacy-requests/"+id+"/recipients", g.e.keys["auditor"], nil)
	if res.status != 200 {
		t.Fatalf("recipients: %d %s", res.status, res.body)
	}
	res.json(t, &list)
	if len(list.Recipients) == 0 {
		t.Fatal("a bot erasure reaching processors (Sentry, Telegram, Wavespeed) told nobody")
	}
	for _, rc := range list.Recipients {
		if rc.Status != "done" {
			t.Errorf("recipient %s reached by the plan is %s", rc.System, rc.Status)
		}
	}
	if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/recipients/"+list.Recipients[0].System+"/told", reviewer, map[string]any{"note": "again"}); res.status != 404 {
		t.Errorf("marking a done recipient told: %d %s", res.status, res.body)
	}
	if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/recipients/"+list.Recipients[0].System+"/told", g.e.keys["auditor"], map[string]any{"note": "x"}); res.status != 403 {
		t.Errorf("an auditor marked a recipient told: %d", res.status)
	}
}
