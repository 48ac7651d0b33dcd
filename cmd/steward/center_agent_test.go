package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/browsertest"
	"github.com/steward-privacy/steward/internal/dsar"
)

// An authorized agent's erasure request from the privacy center: the
// agent's details and the signed authorization uploaded, the person's code,
// a reviewer's approval, and the erasure reaching only the person's
// records; and a person withdrawing an erasure from its status page while
// it waits for approval, which then erases nothing.
func TestPrivacyCenterAgentErasureAndWithdrawal(t *testing.T) {
	t.Parallel()
	g := newCenterRig(t)
	b := browsertest.Start(t)
	base := g.r.base
	ctx0 := context.Background()
	put := func(addr, id string) {
		em := connectors.Identity{Type: "email", Value: addr}
		user := connectors.Identity{Type: "user", Value: id}
		if err := g.store.Put(ctx0, "app_db", "users", id, []connectors.Identity{em, user}, map[string]any{"id": id, "email": addr, "name": "Dan"}); err != nil {
			t.Fatal(err)
		}
		if err := g.store.Link(ctx0, em, user); err != nil {
			t.Fatal(err)
		}
	}
	put("dan@example.com", "u-dan")
	put("erin@example.com", "u-erin")
	put("fay@example.com", "u-fay")
	users := func() int {
		t.Helper()
		n, err := g.store.Count(ctx0, "app_db", "users")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	reviewer := g.e.keys["reviewer"]

	t.Run("agent erasure with approval", func(t *testing.T) {
		ctx := b.Tab(t)
		openPage(t, ctx, base, "/privacy/web/?lang=uz", "home (uz)")
		browsertest.Must(t, ctx, "follow the agent link", chromedp.Click(chromedp.CSS(`a[href$="request?agent=1"]`)), chromedp.WaitVisible(chromedp.ID("agent_name")))
		browsertest.Axe(t, ctx, "agent form")
		browsertest.Screenshot(t, ctx, screenshots(t), "center-agent-uz")

		// Sent without the authorization first: the page says what is
		// missing, in Uzbek, and nothing is stored.
		browsertest.Must(t, ctx, "fill the agent form",
			chromedp.Click(chromedp.CSS(`#type-erasure`)),
			chromedp.SendKeys(chromedp.ID("agent_name"), "Privacy Agents LLC"),
			chromedp.SendKeys(chromedp.ID("agent_email"), "requests@agents.example.com"),
			chromedp.SendKeys(chromedp.ID("email"), "dan@example.com"),
			chromedp.SetValue(chromedp.ID("region"), "US-CA"))
		browsertest.Must(t, ctx, "focus the email field", chromedp.Focus(chromedp.ID("email")))
		submit(t, ctx, "submit without a document")
		if msg := browsertest.Text(t, ctx, "#errors"); !strings.Contains(msg, "PDF, PNG yoki JPEG") {
			t.Fatalf("missing document: errors say %q", msg)
		}
		if got := browsertest.Eval[string](t, ctx, `document.getElementById('agent_name').value`); got != "Privacy Agents LLC" {
			t.Errorf("the agent's name was not kept in the form: %q", got)
		}
		browsertest.Axe(t, ctx, "agent form with errors")

		// A file that only claims to be a PDF is refused the same way.
		dir := t.TempDir()
		fake := filepath.Join(dir, "authorization.pdf")
		if err := os.WriteFile(fake, []byte("<html><script>alert(1)</script>"), 0o600); err != nil {
			t.Fatal(err)
		}
		browsertest.Must(t, ctx, "attach a fake PDF", chromedp.SetUploadFiles(chromedp.ID("authorization"), []string{fake}))
		browsertest.Must(t, ctx, "focus the email field", chromedp.Focus(chromedp.ID("email")))
		submit(t, ctx, "submit a fake PDF")
		if msg := browsertest.Text(t, ctx, "#errors"); !strings.Contains(msg, "PDF, PNG yoki JPEG") {
			t.Fatalf("fake PDF: errors say %q", msg)
		}
		var n int
		if err := g.e.pool.QueryRow(ctx0, `SELECT count(*) FROM privacy_requests`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("refused forms stored %d requests (%v)", n, err)
		}

		pdf := []byte("%PDF-1.7\n% Dan authorizes Privacy Agents LLC to erase his data\n%%EOF\n")
		signed := filepath.Join(dir, "dan-authorization.pdf")
		if err := os.WriteFile(signed, pdf, 0o600); err != nil {
			t.Fatal(err)
		}
		browsertest.Must(t, ctx, "attach the authorization", chromedp.SetUploadFiles(chromedp.ID("authorization"), []string{signed}))
		browsertest.Must(t, ctx, "focus the email field", chromedp.Focus(chromedp.ID("email")))
		submit(t, ctx, "submit the agent's request")
		if loc := browsertest.Location(t, ctx); !strings.HasSuffix(loc, "/verify") {
			t.Fatalf("after submitting: %s: %s", loc, browsertest.Text(t, ctx, "main"))
		}
		// The person, not the agent, gets the code.
		code := g.lastCode("dan@example.com")
		for _, e := range g.fake.Emails() {
			if len(e.To) == 1 && e.To[0] == "requests@agents.example.com" && strings.Contains(e.Text, code) {
				t.Fatal("the code went to the agent")
			}
		}
		browsertest.Must(t, ctx, "enter the code", chromedp.SendKeys(chromedp.ID("code"), code))
		submit(t, ctx, "submit the code")
		loc := browsertest.Location(t, ctx)
		id := loc[strings.LastIndex(loc, "/")+1:]
		if !dsar.ValidID(id) {
			t.Fatalf("after the code: %s", loc)
		}
		d := g.waitFor(id, dsar.AwaitingApproval)
		if d.Channel != dsar.ChannelAgent || d.ApprovalRule != "approval_agent" || len(d.Documents) != 1 || d.Documents[0].Kind != dsar.DocAgentAuthorization {
			t.Fatalf("request: channel %s documents %+v", d.Channel, d.Documents)
		}
		openPage(t, ctx, base, "/privacy/web/requests/"+id, "status awaiting approval")
		browsertest.Screenshot(t, ctx, screenshots(t), "center-status-approval-uz")

		// Approval waits for someone to have looked at the authorization.
		if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/approve", reviewer, map[string]any{"note": "looks fine"}); res.status != 409 ||
			!strings.Contains(res.problem(t).Detail, "authorization") {
			t.Fatalf("approved unread: %d %s", res.status, res.body)
		}
		// A reviewer opens the authorization (the bytes uploaded, audited)
		// and approves.
		res := g.r.do("GET", "/v1/privacy-requests/"+id+"/documents/agent_authorization", reviewer, nil)
		sum := sha256.Sum256(pdf)
		if res.status != 200 || !bytes.Equal(res.body, pdf) || res.header.Get("Content-Type") != "application/pdf" ||
			res.header.Get("Cache-Control") != "no-store" || res.header.Get("Digest") != "sha-256="+hex.EncodeToString(sum[:]) {
			t.Fatalf("document: %d %v %q", res.status, res.header, res.body)
		}
		if res := g.r.do("GET", "/v1/privacy-requests/"+id+"/documents/agent_authorization", g.e.keys["auditor"], nil); res.status != 403 {
			t.Errorf("an auditor opened the authorization: %d", res.status)
		}
		before := users()
		if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/approve", reviewer, map[string]any{"note": "authorization checked"}); res.status != 200 {
			t.Fatalf("approve: %d %s", res.status, res.body)
		}
		g.finishManual(id)
		done := g.waitFor(id, dsar.Completed)
		if users() != before-1 {
			t.Errorf("users %d → %d: the erasure should remove Dan's record and nobody else's", before, users())
		}
		opened := false
		for _, e := range done.Timeline {
			opened = opened || e.Event == "document_opened"
		}
		if !opened {
			t.Error("opening the authorization is not on the timeline")
		}
		openPage(t, ctx, base, "/privacy/web/requests/"+id, "status erased")
		if got := browsertest.Text(t, ctx, ".state"); got == "" {
			t.Error("no state shown")
		}
	})

	t.Run("withdrawn from the status page while awaiting approval", func(t *testing.T) {
		ctx := b.Tab(t)
		openPage(t, ctx, base, "/privacy/web/request?type=erasure", "erasure form")
		browsertest.Must(t, ctx, "fill the form",
			chromedp.SendKeys(chromedp.ID("email"), "erin@example.com"),
			chromedp.SetValue(chromedp.ID("region"), "DE"))
		browsertest.Must(t, ctx, "focus the email field", chromedp.Focus(chromedp.ID("email")))
		submit(t, ctx, "submit")
		browsertest.Must(t, ctx, "enter the code", chromedp.SendKeys(chromedp.ID("code"), g.lastCode("erin@example.com")))
		submit(t, ctx, "submit the code")
		loc := browsertest.Location(t, ctx)
		id := loc[strings.LastIndex(loc, "/")+1:]
		g.waitFor(id, dsar.AwaitingApproval)
		before := users()

		// By keyboard: to the reason, then the withdraw button.
		openPage(t, ctx, base, "/privacy/web/requests/"+id, "status before withdrawal")
		browsertest.TabTo(t, ctx, 40, "the reason field", func(f browsertest.Focused) bool { return f.ID == "reason" })
		browsertest.Press(t, ctx, "I changed my mind")
		browsertest.TabTo(t, ctx, 5, "the withdraw button", func(f browsertest.Focused) bool { return f.Tag == "button" })
		submit(t, ctx, "withdraw")
		browsertest.Axe(t, ctx, "status withdrawn")
		if msg := browsertest.Text(t, ctx, "main"); !strings.Contains(msg, "You withdrew this request.") {
			t.Fatalf("after withdrawing the page says %q", msg)
		}
		d := g.waitFor(id, dsar.Canceled)
		if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/approve", reviewer, map[string]any{"note": "too late"}); res.status != 409 {
			t.Errorf("approving a withdrawn request: %d", res.status)
		}
		if users() != before {
			t.Errorf("a withdrawn erasure removed records: %d → %d", before, users())
		}
		if len(d.Timeline) == 0 || d.Timeline[len(d.Timeline)-1].Actor == "" || !strings.HasPrefix(d.Timeline[len(d.Timeline)-1].Actor, "subject:") {
			t.Errorf("the withdrawal is not the person's on the timeline: %+v", d.Timeline[len(d.Timeline)-1])
		}
	})

	t.Run("a restriction takes effect, and the person lifts it", func(t *testing.T) {
		ctx := b.Tab(t)
		openPage(t, ctx, base, "/privacy/web/request?type=restriction", "restriction form")
		browsertest.Must(t, ctx, "fill the form",
			chromedp.SendKeys(chromedp.ID("email"), "fay@example.com"),
			chromedp.SetValue(chromedp.ID("region"), "DE"),
			chromedp.Focus(chromedp.ID("email")))
		submit(t, ctx, "submit")
		browsertest.Must(t, ctx, "enter the code", chromedp.SendKeys(chromedp.ID("code"), g.lastCode("fay@example.com")), chromedp.Focus(chromedp.ID("code")))
		submit(t, ctx, "submit the code")
		loc := browsertest.Location(t, ctx)
		id := loc[strings.LastIndex(loc, "/")+1:]
		g.waitFor(id, dsar.InProgress, dsar.Completed)
		g.finishManual(id)
		g.waitFor(id, dsar.Completed)
		check := func() string {
			t.Helper()
			res := g.r.do("GET", "/v1/consent/check?subject=email:fay@example.com&purpose=marketing&jurisdiction=DE", g.e.keys["frontend"], nil)
			var d struct {
				Allow  bool   `json:"allow"`
				Reason string `json:"reason"`
			}
			res.json(t, &d)
			return d.Reason
		}
		// GDPR Art. 18(1): while restricted, the data is not used.
		deadline := time.Now().Add(10 * time.Second)
		for check() != "restricted" {
			if time.Now().After(deadline) {
				t.Fatalf("the check never answered restricted: %s", check())
			}
			time.Sleep(50 * time.Millisecond)
		}
		openPage(t, ctx, base, "/privacy/web/requests/"+id, "completed restriction")
		browsertest.TabTo(t, ctx, 40, "the lift button", func(f browsertest.Focused) bool { return f.ID == "lift-button" })
		submit(t, ctx, "lift")
		browsertest.Axe(t, ctx, "restriction lifted")
		if msg := browsertest.Text(t, ctx, "main"); !strings.Contains(msg, "The restriction is lifted.") {
			t.Fatalf("after lifting the page says %q", msg)
		}
		if r := check(); r == "restricted" {
			t.Error("the check still answers restricted after the person lifted it")
		}
		if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('#lift-button').length`); n != 0 {
			t.Error("the lift button is still offered")
		}
	})
}
