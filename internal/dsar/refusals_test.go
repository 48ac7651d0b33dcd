package dsar_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
)

// snapshot is what a refused action must leave as it was.
type snapshot struct {
	Status   dsar.Status
	DueAt    time.Time
	Extended bool
	Reason   string
	Timeline []string
}

func (r *rig) snapshot(id string) snapshot {
	r.t.Helper()
	d, err := r.svc.Get(context.Background(), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return snapshot{Status: d.Status, DueAt: d.DueAt, Extended: d.Extended, Reason: d.ExtensionReason, Timeline: eventNames(d.Timeline)}
}

func (r *rig) unchanged(id string, before snapshot, what string) {
	r.t.Helper()
	if after := r.snapshot(id); !reflect.DeepEqual(after, before) {
		r.t.Errorf("%s changed the request:\n before %+v\n after  %+v", what, before, after)
	}
}

func webRequest(typ, email string) dsar.CreateInput {
	return dsar.CreateInput{Type: typ, Subject: identity.MustParse("email:" + email), Region: "DE", Channel: dsar.ChannelWeb,
		Actor: "key:frontend", ClientIP: "192.0.2.10"}
}

func TestBadInputIsRefusedAndStoresNothing(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{noStart: true})
	ctx := context.Background()
	email := identity.MustParse("email:ann@example.com")
	tg := identity.MustParse("tg:900020")
	cases := []struct {
		name string
		in   dsar.CreateInput
		code apperr.Code
	}{
		{"unknown type", dsar.CreateInput{Type: "forget-me", Subject: email, Region: "DE", Channel: dsar.ChannelWeb}, apperr.Invalid},
		{"no subject", dsar.CreateInput{Type: "access", Region: "DE", Channel: dsar.ChannelWeb}, apperr.Invalid},
		{"web with a tg subject", dsar.CreateInput{Type: "access", Subject: tg, Region: "DE", Channel: dsar.ChannelWeb}, apperr.Invalid},
		{"bot with an email subject", dsar.CreateInput{Type: "access", Subject: email, Region: "DE", Channel: dsar.ChannelBot, IdentityAsserted: true, CanAssert: true}, apperr.Invalid},
		{"agent with a tg subject", dsar.CreateInput{Type: "access", Subject: tg, Region: "DE", Channel: dsar.ChannelAgent,
			Agent: &dsar.Agent{Name: "A", Email: "a@agents.example.com", AuthorizationRef: "POA-1"}}, apperr.Invalid},
		{"unknown channel", dsar.CreateInput{Type: "access", Subject: email, Region: "DE", Channel: "fax"}, apperr.Invalid},
		{"region a name", dsar.CreateInput{Type: "access", Subject: email, Region: "Germany", Channel: dsar.ChannelWeb}, apperr.Invalid},
		{"region missing", dsar.CreateInput{Type: "access", Subject: email, Channel: dsar.ChannelWeb}, apperr.Invalid},
		{"region with junk", dsar.CreateInput{Type: "access", Subject: email, Region: "US-CA'; --", Channel: dsar.ChannelWeb}, apperr.Invalid},
		{"unknown language", dsar.CreateInput{Type: "access", Subject: email, Region: "DE", Channel: dsar.ChannelWeb, Language: "de"}, apperr.Invalid},
		{"changes on access", dsar.CreateInput{Type: "access", Subject: email, Region: "DE", Channel: dsar.ChannelWeb, Changes: map[string]string{"user.name": "Ann Lee"}}, apperr.Invalid},
		{"rectification without changes", dsar.CreateInput{Type: "rectification", Subject: email, Region: "DE", Channel: dsar.ChannelWeb}, apperr.Invalid},
		{"uncorrectable category", dsar.CreateInput{Type: "rectification", Subject: email, Region: "DE", Channel: dsar.ChannelWeb, Changes: map[string]string{"user.financial.payment": "0"}}, apperr.Invalid},
		{"unknown category", dsar.CreateInput{Type: "rectification", Subject: email, Region: "DE", Channel: dsar.ChannelWeb, Changes: map[string]string{"user.shoe_size": "42"}}, apperr.Invalid},
		{"bad email value", dsar.CreateInput{Type: "rectification", Subject: email, Region: "DE", Channel: dsar.ChannelWeb, Changes: map[string]string{"user.contact.email": "not an address"}}, apperr.Invalid},
		{"bad phone value", dsar.CreateInput{Type: "rectification", Subject: email, Region: "DE", Channel: dsar.ChannelWeb, Changes: map[string]string{"user.contact.phone": "0151 123"}}, apperr.Invalid},
		{"control characters", dsar.CreateInput{Type: "rectification", Subject: email, Region: "DE", Channel: dsar.ChannelWeb, Changes: map[string]string{"user.name": "Ann\x07Lee"}}, apperr.Invalid},
		{"blank name", dsar.CreateInput{Type: "rectification", Subject: email, Region: "DE", Channel: dsar.ChannelWeb, Changes: map[string]string{"user.name": "  "}}, apperr.Invalid},
		{"bot without proof", dsar.CreateInput{Type: "access", Subject: tg, Region: "DE", Channel: dsar.ChannelBot}, apperr.Invalid},
		{"bot asserted by a key that may not", dsar.CreateInput{Type: "access", Subject: tg, Region: "DE", Channel: dsar.ChannelBot, IdentityAsserted: true}, apperr.Forbidden},
		{"web claiming an asserted identity", dsar.CreateInput{Type: "access", Subject: email, Region: "DE", Channel: dsar.ChannelWeb, IdentityAsserted: true, CanAssert: true}, apperr.Invalid},
		{"staff channel by a non-reviewer", dsar.CreateInput{Type: "access", Subject: email, Region: "DE", Channel: dsar.ChannelStaff, Note: "letter"}, apperr.Forbidden},
		{"staff channel without a note", dsar.CreateInput{Type: "access", Subject: email, Region: "DE", Channel: dsar.ChannelStaff, IsStaff: true, IdentityVerified: true}, apperr.Invalid},
		{"staff: unverified tg subject", dsar.CreateInput{Type: "access", Subject: tg, Region: "DE", Channel: dsar.ChannelStaff, IsStaff: true, Note: "letter"}, apperr.Invalid},
		{"web vouching for the identity", dsar.CreateInput{Type: "access", Subject: email, Region: "DE", Channel: dsar.ChannelWeb, IdentityVerified: true}, apperr.Invalid},
		{"agent without details", dsar.CreateInput{Type: "access", Subject: email, Region: "DE", Channel: dsar.ChannelAgent}, apperr.Invalid},
		{"agent with a bad address", dsar.CreateInput{Type: "access", Subject: email, Region: "DE", Channel: dsar.ChannelAgent,
			Agent: &dsar.Agent{Name: "A", Email: "nope", AuthorizationRef: "POA-1"}}, apperr.Invalid},
		{"agent details on a web request", dsar.CreateInput{Type: "access", Subject: email, Region: "DE", Channel: dsar.ChannelWeb,
			Agent: &dsar.Agent{Name: "A", Email: "a@agents.example.com", AuthorizationRef: "POA-1"}}, apperr.Invalid},
		{"agent document on a web request", dsar.CreateInput{Type: "access", Subject: email, Region: "DE", Channel: dsar.ChannelWeb,
			AgentDocument: &dsar.Document{Content: []byte("%PDF-1.7")}}, apperr.Invalid},
		{"agent document that is not a document", dsar.CreateInput{Type: "access", Subject: email, Region: "DE", Channel: dsar.ChannelAgent,
			Agent: &dsar.Agent{Name: "A", Email: "a@agents.example.com"}, AgentDocument: &dsar.Document{Content: []byte("<html><script>")}}, apperr.Invalid},
		{"agent document too large", dsar.CreateInput{Type: "access", Subject: email, Region: "DE", Channel: dsar.ChannelAgent,
			Agent: &dsar.Agent{Name: "A", Email: "a@agents.example.com"}, AgentDocument: &dsar.Document{Content: append([]byte("%PDF-"), make([]byte, dsar.MaxDocumentSize)...)}}, apperr.Invalid},
		{"agent document empty", dsar.CreateInput{Type: "access", Subject: email, Region: "DE", Channel: dsar.ChannelAgent,
			Agent: &dsar.Agent{Name: "A", Email: "a@agents.example.com"}, AgentDocument: &dsar.Document{}}, apperr.Invalid},
	}
	for _, tc := range cases {
		_, err := r.svc.Create(ctx, tc.in)
		if !isCode(err, tc.code) {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
		}
	}
	for _, table := range []string{"privacy_requests", "privacy_request_documents", "subjects", "privacy_request_events", "verification_sends", "outbox", "audit_pending", "river_job"} {
		if n := r.count(`SELECT count(*) FROM ` + table); n != 0 {
			t.Errorf("refused requests left %d rows in %s", n, table)
		}
	}
}

func TestWrongCodesVoidTheCodeAndAreAudited(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	ctx := context.Background()
	c, err := r.svc.Create(ctx, webRequest("access", "carol@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Request.ID
	code := r.code("carol@example.com")
	wrong := fmt.Sprintf("%06d", (mustAtoi(t, code)+1)%1_000_000)
	for i := 1; i <= 5; i++ {
		_, err := r.svc.Verify(ctx, id, wrong)
		want := apperr.Invalid
		if i == 5 {
			want = apperr.RateLimited
		}
		if !isCode(err, want) {
			t.Fatalf("wrong code %d: %v, want %s", i, err, want)
		}
	}
	before := r.snapshot(id)
	// The right code no longer works: it was voided.
	if _, err := r.svc.Verify(ctx, id, code); !isCode(err, apperr.Invalid) {
		t.Fatalf("voided code: %v", err)
	}
	r.unchanged(id, before, "a voided code")
	if before.Status != dsar.IdentityPending {
		t.Errorf("status %s", before.Status)
	}
	failures := r.count(`SELECT count(*) FROM privacy_request_events WHERE request_id = $1 AND event = 'verification_failed'`, id)
	audited := r.count(`SELECT (SELECT count(*) FROM audit_pending WHERE action = 'privacy_request.verification_failed' AND target_id = $1)
		+ (SELECT count(*) FROM audit_log WHERE action = 'privacy_request.verification_failed' AND target_id = $1)`, id)
	if failures != 5 || audited != 5 {
		t.Errorf("%d failures in the timeline, %d audited; want 5 and 5", failures, audited)
	}
	if n := r.count(`SELECT count(*) FROM audit_pending WHERE action = 'privacy_request.verification_failed' AND details->>'code_voided' = 'true'`); n != 1 {
		t.Errorf("the voiding attempt is audited as such %d times", n)
	}
	// A malformed code is refused before it counts.
	if _, err := r.svc.Verify(ctx, id, "12ab56"); !isCode(err, apperr.Invalid) {
		t.Errorf("malformed code: %v", err)
	}
	// A new code works.
	if err := r.svc.ResendCode(ctx, id, "192.0.2.10"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Verify(ctx, id, r.code("carol@example.com")); err != nil {
		t.Fatalf("new code: %v", err)
	}
	// And a verified request takes no code at all.
	if _, err := r.svc.Verify(ctx, id, code); !isCode(err, apperr.Conflict) {
		t.Errorf("code after verification: %v", err)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestExpiredCodeIsRefused(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{noStart: true})
	ctx := context.Background()
	c, err := r.svc.Create(ctx, webRequest("erasure", "dave@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	code := r.code("dave@example.com")
	r.clk.Advance(15*time.Minute + time.Second)
	before := r.snapshot(c.Request.ID)
	if _, err := r.svc.Verify(ctx, c.Request.ID, code); !isCode(err, apperr.Invalid) {
		t.Fatalf("expired code: %v", err)
	}
	r.unchanged(c.Request.ID, before, "an expired code")
	// Just inside the window the same kind of code works.
	if err := r.svc.ResendCode(ctx, c.Request.ID, ""); err != nil {
		t.Fatal(err)
	}
	code = r.code("dave@example.com")
	r.clk.Advance(14*time.Minute + 59*time.Second)
	if _, err := r.svc.Verify(ctx, c.Request.ID, code); err != nil {
		t.Fatalf("code within 15 minutes: %v", err)
	}
}

func TestResendIsRateLimited(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{noStart: true})
	ctx := context.Background()

	// Per identity: three codes an hour, the first sent at intake.
	c, err := r.svc.Create(ctx, webRequest("access", "erin@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := r.svc.ResendCode(ctx, c.Request.ID, fmt.Sprintf("192.0.2.%d", 50+i)); err != nil {
			t.Fatalf("resend %d: %v", i+1, err)
		}
	}
	before := r.snapshot(c.Request.ID)
	sends := r.count(`SELECT count(*) FROM verification_sends`)
	if err := r.svc.ResendCode(ctx, c.Request.ID, "192.0.2.99"); !isCode(err, apperr.RateLimited) {
		t.Fatalf("fourth code within the hour: %v", err)
	}
	r.unchanged(c.Request.ID, before, "a refused resend")
	if n := r.count(`SELECT count(*) FROM verification_sends`); n != sends {
		t.Errorf("a refused resend was counted as a send")
	}
	// Another request naming the same address is held back too, and stored
	// nowhere.
	if _, err := r.svc.Create(ctx, webRequest("erasure", "erin@example.com")); !isCode(err, apperr.RateLimited) {
		t.Fatalf("new request to a throttled address: %v", err)
	}
	if n := r.count(`SELECT count(*) FROM privacy_requests`); n != 1 {
		t.Errorf("%d requests stored", n)
	}
	r.clk.Advance(time.Hour + time.Second)
	if err := r.svc.ResendCode(ctx, c.Request.ID, "192.0.2.99"); err != nil {
		t.Fatalf("resend after the window: %v", err)
	}
	if got := len(r.deliver()); got != 4 {
		t.Errorf("%d code emails sent, want 4", got)
	}

	// Per IP: ten codes an hour from one address, whoever they go to.
	for i := 0; i < 10; i++ {
		in := webRequest("access", fmt.Sprintf("ip%d@example.com", i))
		in.ClientIP = "203.0.113.77"
		if _, err := r.svc.Create(ctx, in); err != nil {
			t.Fatalf("request %d from one IP: %v", i+1, err)
		}
	}
	in := webRequest("access", "ip10@example.com")
	in.ClientIP = "203.0.113.77"
	if _, err := r.svc.Create(ctx, in); !isCode(err, apperr.RateLimited) {
		t.Fatalf("eleventh code from one IP: %v", err)
	}
	in.ClientIP = "203.0.113.78"
	if _, err := r.svc.Create(ctx, in); err != nil {
		t.Fatalf("another IP: %v", err)
	}
}

func TestIllegalTransitionsAreRefused(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	ctx := context.Background()
	c, err := r.svc.Create(ctx, botRequest("erasure", "900030"))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Request.ID
	r.wait(id, dsar.AwaitingApproval)
	if _, err := r.svc.Deny(ctx, id, "key:reviewer", " "); !isCode(err, apperr.Invalid) {
		t.Errorf("deny without a reason: %v", err)
	}
	// The reason is emailed: a control character (a terminal escape here)
	// is the staff member's input error, found by the abuse fuzzer as a 500
	// from the email template after the request had moved.
	untouched := r.snapshot(id)
	for _, act := range []func() error{
		func() error { _, err := r.svc.Deny(ctx, id, "key:reviewer", "a\x1b[31mb"); return err },
		func() error { _, err := r.svc.Extend(ctx, id, "key:reviewer", "a\x07b"); return err },
	} {
		if err := act(); !isCode(err, apperr.Invalid) {
			t.Errorf("a reason with a control character: %v, want invalid", err)
		}
	}
	r.unchanged(id, untouched, "reasons with control characters")
	if _, err := r.svc.Deny(ctx, id, "key:reviewer", "The account holds an open dispute"); err != nil {
		t.Fatal(err)
	}
	before := r.snapshot(id)
	if before.Status != dsar.Denied {
		t.Fatalf("status %s", before.Status)
	}
	for name, act := range map[string]func() error{
		"approve": func() error { _, err := r.svc.Approve(ctx, id, "key:reviewer", ""); return err },
		"deny":    func() error { _, err := r.svc.Deny(ctx, id, "key:reviewer", "again"); return err },
		"cancel":  func() error { _, err := r.svc.Cancel(ctx, id, "key:reviewer", "withdrawn"); return err },
		"pause":   func() error { _, err := r.svc.Pause(ctx, id, "key:reviewer", "waiting"); return err },
		"resume":  func() error { _, err := r.svc.Resume(ctx, id, "key:reviewer"); return err },
		"extend":  func() error { _, err := r.svc.Extend(ctx, id, "key:reviewer", "complex"); return err },
		"retry":   func() error { _, err := r.svc.RetryPlan(ctx, id, "key:reviewer"); return err },
	} {
		if err := act(); !isCode(err, apperr.Conflict) {
			t.Errorf("%s a denied request: %v, want conflict", name, err)
		}
	}
	r.unchanged(id, before, "actions on a denied request")
	if n := r.count(`SELECT count(*) FROM privacy_request_tasks WHERE request_id = $1 AND status <> 'pending'`, id); n != 0 {
		t.Errorf("%d tasks of a denied request moved", n)
	}

	// A request waiting for its code cannot be approved either, nor can an
	// unknown one be found.
	w, err := r.svc.Create(ctx, webRequest("erasure", "frank@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	before = r.snapshot(w.Request.ID)
	if _, err := r.svc.Approve(ctx, w.Request.ID, "key:reviewer", ""); !isCode(err, apperr.Conflict) {
		t.Errorf("approve an unverified request: %v", err)
	}
	if _, err := r.svc.Resume(ctx, w.Request.ID, "key:reviewer"); !isCode(err, apperr.Conflict) {
		t.Errorf("resume a request that is not paused: %v", err)
	}
	r.unchanged(w.Request.ID, before, "approving an unverified request")
	if _, err := r.svc.Approve(ctx, "00000000-0000-0000-0000-000000000000", "key:reviewer", ""); !isCode(err, apperr.NotFound) {
		t.Errorf("approve an unknown request: %v", err)
	}
	if _, err := r.svc.Approve(ctx, "not-a-uuid", "key:reviewer", ""); !isCode(err, apperr.NotFound) {
		t.Errorf("approve a malformed id: %v", err)
	}
}

func TestExtension(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{noStart: true, start: time.Date(2027, 3, 3, 10, 0, 0, 0, time.UTC)})
	ctx := context.Background()

	// GDPR access: once, to the regime's limit.
	c, err := r.svc.Create(ctx, webRequest("access", "gina@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Request.ID
	if c.Request.ExtendableUntil == nil || c.Request.ExtendNoticeBy == nil {
		t.Fatalf("GDPR access is extendable: %+v", c.Request)
	}
	if _, err := r.svc.Extend(ctx, id, "key:reviewer", ""); !isCode(err, apperr.Invalid) {
		t.Errorf("extension without a reason: %v", err)
	}
	r.clk.Advance(20 * 24 * time.Hour)
	x, err := r.svc.Extend(ctx, id, "key:reviewer", "Records in five systems, two of them archived")
	if err != nil {
		t.Fatal(err)
	}
	if !x.Extended || !x.DueAt.Equal(*c.Request.ExtendableUntil) {
		t.Errorf("extended to %s, want %s", x.DueAt, c.Request.ExtendableUntil)
	}
	d, _ := r.svc.Get(ctx, id)
	if !d.DueAt.Equal(*c.Request.ExtendableUntil) || !d.OriginalDueAt.Equal(c.Request.DueAt) || d.ExtensionReason == "" {
		t.Errorf("stored: due %s original %s reason %q", d.DueAt, d.OriginalDueAt, d.ExtensionReason)
	}
	// 2027-03-03 + 1 month = 2027-04-03, + 2 months = 2027-06-03.
	if want := time.Date(2027, 6, 3, 10, 0, 0, 0, time.UTC); !d.DueAt.Equal(want) {
		t.Errorf("extended due %s, want %s", d.DueAt, want)
	}
	before := r.snapshot(id)
	if _, err := r.svc.Extend(ctx, id, "key:reviewer", "and again"); !isCode(err, apperr.Conflict) {
		t.Errorf("second extension: %v", err)
	}
	r.unchanged(id, before, "a second extension")
	var extended int
	for _, e := range r.deliver() {
		if e.To[0] == "gina@example.com" && strings.Contains(e.Text, "Records in five systems") {
			extended++
		}
	}
	if extended != 1 {
		t.Errorf("%d extension notices sent to the person, want 1", extended)
	}

	// A CCPA opt-out (objection) has no extension.
	in := webRequest("objection", "hal@example.com")
	in.Region = "US-CA"
	o, err := r.svc.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if o.Request.ExtendableUntil != nil {
		t.Errorf("CCPA objection extendable until %s", o.Request.ExtendableUntil)
	}
	before = r.snapshot(o.Request.ID)
	if _, err := r.svc.Extend(ctx, o.Request.ID, "key:reviewer", "busy"); !isCode(err, apperr.Conflict) {
		t.Errorf("extend a CCPA objection: %v", err)
	}
	r.unchanged(o.Request.ID, before, "extending a CCPA objection")

	// Nor may one be extended once the person can no longer be told in time.
	late, err := r.svc.Create(ctx, webRequest("access", "ivy@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	r.clk.Set(late.Request.ExtendNoticeBy.Add(time.Second))
	before = r.snapshot(late.Request.ID)
	if _, err := r.svc.Extend(ctx, late.Request.ID, "key:reviewer", "complex"); !isCode(err, apperr.Conflict) {
		t.Errorf("extension after the notice deadline: %v", err)
	}
	r.unchanged(late.Request.ID, before, "a late extension")
	// One second earlier it would have been allowed: the boundary is the
	// notice deadline itself.
	r.clk.Set(*late.Request.ExtendNoticeBy)
	if _, err := r.svc.Extend(ctx, late.Request.ID, "key:reviewer", "complex"); err != nil {
		t.Errorf("extension at the notice deadline: %v", err)
	}
}
