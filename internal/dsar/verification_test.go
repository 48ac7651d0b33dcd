package dsar_test

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/recordstore"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/challengelogin"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/policy"
)

// invoiceStore is the record store standing in for the payment system, with
// the optional invoice check: the person's one recent invoice is "in_ann".
type invoiceStore struct {
	connectors.Connector
	calls atomic.Int32
}

func (s *invoiceStore) VerifyInvoice(_ context.Context, ids []connectors.Identity, ref string, since time.Time) (bool, error) {
	s.calls.Add(1)
	for _, id := range ids {
		if id.Type == "email" && strings.HasPrefix(id.Value, "ann") && ref == "in_ann" && since.Before(time.Now()) {
			return true, nil
		}
	}
	return false, nil
}

var challengeKey = bytes.Repeat([]byte("c"), 32)

func verificationRig(t *testing.T, exports bool) (*rig, *invoiceStore) {
	t.Helper()
	inv := &invoiceStore{}
	r := newRig(t, rigOpts{exports: exports, cfg: dsar.Config{ChallengeLoginKeys: challengelogin.Keys{"web": challengeKey}},
		registry: func(store *recordstore.Store, e *policy.Engine) connectors.Registry {
			reg := allSystems(store, e)
			inv.Connector = store
			reg["stripe"] = inv
			return reg
		}})
	return r, inv
}

func ccpaRequest(typ, email string) dsar.CreateInput {
	in := webRequest(typ, email)
	in.Region = "US-CA"
	return in
}

func methods(r dsar.Request) []string {
	var out []string
	for _, m := range r.VerificationMethods {
		out = append(out, m.Method+"="+string(m.Level))
	}
	return out
}

func loginToken(t *testing.T, subject, requestID, jti string, now time.Time) string {
	t.Helper()
	tok, err := challengelogin.Sign(challengelogin.Claims{Product: "web", Subject: subject, ID: jti, RequestID: requestID,
		IssuedAt: now.Add(-10 * time.Second), Expires: now.Add(2 * time.Minute)}, challengeKey)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestVerificationLevelIsEnforced: the level deadlines.rego asks for is what
// the engine requires before it plans (so before anything is disclosed or
// deleted). Cal. Code Regs. tit. 11 §7062(c): specific pieces of personal
// information need a reasonably high degree of certainty (an email code is
// one factor: reasonable); GDPR Art. 12(6): reasonable measures; §7026: an
// opt-out need not be verified. The web notice: "We will verify identity
// (challenge login, recent invoice, signed instruction, etc.)".
func TestVerificationLevelIsEnforced(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("GDPR access needs only the code", func(t *testing.T) {
		t.Parallel()
		r, _ := verificationRig(t, false)
		c, err := r.svc.Create(ctx, webRequest("access", "gina@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		v, err := r.svc.Verify(ctx, c.Request.ID, r.code("gina@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		if v.Request.Status != dsar.Verified || v.Request.VerificationLevel != "reasonable" || v.Request.VerificationRequired != "reasonable" ||
			!slices.Equal(methods(v.Request), []string{"email_code=reasonable"}) || v.Request.AwaitingSecondFactor {
			t.Errorf("after the code: %+v", v.Request)
		}
	})

	t.Run("CCPA access waits after the code for a recent invoice", func(t *testing.T) {
		t.Parallel()
		r, inv := verificationRig(t, false)
		c, err := r.svc.Create(ctx, ccpaRequest("access", "ann@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Request.VerificationRequired != "high" {
			t.Fatalf("required %q, want high", c.Request.VerificationRequired)
		}
		v, err := r.svc.Verify(ctx, c.Request.ID, r.code("ann@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		if v.Request.Status != dsar.IdentityPending || !v.Request.AwaitingSecondFactor || v.Request.VerificationLevel != "reasonable" {
			t.Fatalf("after the code: status %s, awaiting %v, level %s", v.Request.Status, v.Request.AwaitingSecondFactor, v.Request.VerificationLevel)
		}
		st, err := r.svc.Status(ctx, c.Request.ID, v.StatusToken)
		if err != nil || !st.AwaitingSecondFactor || !slices.Equal(st.SecondFactors, []string{"recent_invoice", "challenge_login"}) {
			t.Fatalf("status %+v %v", st, err)
		}
		// A second code is not a second factor.
		if _, err := r.svc.Verify(ctx, c.Request.ID, "123456"); !isCode(err, apperr.Conflict) {
			t.Errorf("second code: %v, want conflict", err)
		}
		if err := r.svc.ResendCode(ctx, c.Request.ID, "192.0.2.10"); !isCode(err, apperr.Conflict) {
			t.Errorf("resend: %v, want conflict", err)
		}
		// Without the status token the code gave, no invoice is checked.
		if _, err := r.svc.VerifyInvoice(ctx, c.Request.ID, c.StatusToken, "in_ann"); !isCode(err, apperr.NotFound) {
			t.Errorf("old token: %v, want not found", err)
		}
		if _, err := r.svc.VerifyInvoice(ctx, c.Request.ID, v.StatusToken, "in_someone_else"); !isCode(err, apperr.Invalid) ||
			!strings.Contains(err.Error(), "4 of 5 attempts left") {
			t.Fatalf("wrong invoice: %v", err)
		}
		// Refused, audited, and nothing else changed.
		d, err := r.svc.Get(ctx, c.Request.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Status != dsar.IdentityPending || d.VerificationLevel != "reasonable" || len(d.VerificationMethods) != 1 {
			t.Fatalf("a wrong invoice changed the request: %s %s %v", d.Status, d.VerificationLevel, methods(d.Request))
		}
		if d.PlannedAt != nil || slices.Contains(eventNames(d.Timeline), "planned") {
			t.Fatal("planned below the level the policy asks for")
		}
		got, err := r.svc.VerifyInvoice(ctx, c.Request.ID, v.StatusToken, "in_ann")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != dsar.Verified || got.VerificationLevel != "high" || got.Verification != "recent_invoice" ||
			!slices.Equal(methods(got), []string{"email_code=reasonable", "recent_invoice=high"}) {
			t.Errorf("after the invoice: %+v", got)
		}
		if inv.calls.Load() != 2 {
			t.Errorf("the payment system was asked %d times, want 2", inv.calls.Load())
		}
		// The timeline names each method and level, never the reference.
		d = r.wait(c.Request.ID, dsar.InProgress, dsar.Completed)
		var steps []string
		for _, e := range d.Timeline {
			if e.Event == "verification_step" {
				steps = append(steps, e.Event)
			}
		}
		if len(steps) != 2 {
			t.Errorf("timeline steps %v", eventNames(d.Timeline))
		}
		if n := r.count(`SELECT count(*) FROM (SELECT actor, action, details FROM audit_pending UNION ALL SELECT actor, action, details FROM audit_log) a WHERE details::text LIKE '%in_someone_else%' OR details::text LIKE '%in_ann%'`); n != 0 {
			t.Errorf("%d audit entries carry the invoice reference", n)
		}
		if n := r.count(`SELECT count(*) FROM (SELECT actor, action, details FROM audit_pending UNION ALL SELECT actor, action, details FROM audit_log) a WHERE action = 'privacy_request.verification_step' AND details->>'method' = 'recent_invoice' AND details->>'reached' = 'high'`); n != 1 {
			t.Errorf("%d audited invoice steps, want 1", n)
		}
	})

	t.Run("five wrong invoices void the method", func(t *testing.T) {
		t.Parallel()
		r, _ := verificationRig(t, false)
		c, err := r.svc.Create(ctx, ccpaRequest("export", "ann.v@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		v, err := r.svc.Verify(ctx, c.Request.ID, r.code("ann.v@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			if _, err := r.svc.VerifyInvoice(ctx, c.Request.ID, v.StatusToken, "in_wrong"); !isCode(err, apperr.Invalid) {
				t.Fatalf("attempt %d: %v", i+1, err)
			}
		}
		if _, err := r.svc.VerifyInvoice(ctx, c.Request.ID, v.StatusToken, "in_wrong"); !isCode(err, apperr.RateLimited) {
			t.Fatalf("fifth: %v, want rate limited", err)
		}
		if _, err := r.svc.VerifyInvoice(ctx, c.Request.ID, v.StatusToken, "in_ann"); !isCode(err, apperr.RateLimited) {
			t.Fatalf("right one after the method was void: %v", err)
		}
		if n := r.count(`SELECT count(*) FROM (SELECT actor, action, details FROM audit_pending UNION ALL SELECT actor, action, details FROM audit_log) a WHERE action = 'privacy_request.verification_failed' AND details->>'method' = 'recent_invoice'`); n != 5 {
			t.Errorf("%d audited failures, want 5", n)
		}
	})

	t.Run("challenge login verifies at account_login, once", func(t *testing.T) {
		t.Parallel()
		r, _ := verificationRig(t, false)
		c, err := r.svc.Create(ctx, ccpaRequest("access", "cleo@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		now := r.clk.Now()
		if _, err := r.svc.ChallengeLogin(ctx, c.Request.ID, loginToken(t, "email:mallory@example.com", c.Request.ID, "jti-mallory-0000000001", now)); !isCode(err, apperr.Invalid) {
			t.Fatalf("another person's token: %v", err)
		}
		if _, err := r.svc.ChallengeLogin(ctx, c.Request.ID, loginToken(t, "email:cleo@example.com", "00000000-0000-4000-8000-000000000000", "jti-cleo-other-00000001", now)); !isCode(err, apperr.Invalid) {
			t.Fatalf("a token for another request: %v", err)
		}
		tok := loginToken(t, "email:cleo@example.com", c.Request.ID, "jti-cleo-000000000001", now)
		v, err := r.svc.ChallengeLogin(ctx, c.Request.ID, tok)
		if err != nil {
			t.Fatal(err)
		}
		if v.Request.Status != dsar.Verified || v.Request.VerificationLevel != "account_login" || v.StatusToken == "" {
			t.Errorf("after the token: %+v", v.Request)
		}
		if _, err := r.svc.ChallengeLogin(ctx, c.Request.ID, tok); !isCode(err, apperr.Conflict) {
			t.Errorf("replay: %v", err)
		}
		// At intake, from the product's backend, a token verifies at once.
		in := ccpaRequest("access", "dora@example.com")
		in.ChallengeLoginToken = loginToken(t, "email:dora@example.com", "", "jti-dora-0000000000001", now)
		c2, err := r.svc.Create(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if c2.Request.Status != dsar.Verified || c2.Request.Verification != "challenge_login" {
			t.Errorf("intake with a token: %s %s", c2.Request.Status, c2.Request.Verification)
		}
		in = ccpaRequest("erasure", "dora@example.com")
		in.ChallengeLoginToken = loginToken(t, "email:dora@example.com", "", "jti-dora-0000000000001", now)
		if _, err := r.svc.Create(ctx, in); !isCode(err, apperr.Invalid) {
			t.Errorf("the same token again at intake: %v", err)
		}
	})

	t.Run("CCPA objection needs no code", func(t *testing.T) {
		t.Parallel()
		r, _ := verificationRig(t, false)
		c, err := r.svc.Create(ctx, ccpaRequest("objection", "otto@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Request.Status != dsar.Verified || c.Request.VerificationRequired != "none" || c.Request.Verification != "none" {
			t.Errorf("objection: %s required %q by %q", c.Request.Status, c.Request.VerificationRequired, c.Request.Verification)
		}
		for _, e := range r.deliver() {
			if codeRe.MatchString(e.Text) && strings.Contains(strings.ToLower(e.Subject), "code") {
				t.Errorf("a code was sent: %q", e.Subject)
			}
		}
		if n := r.count(`SELECT count(*) FROM verification_codes WHERE request_id = $1`, c.Request.ID); n != 0 {
			t.Errorf("%d codes stored", n)
		}
	})

	t.Run("a reviewed signed instruction completes an agent's code", func(t *testing.T) {
		t.Parallel()
		r, _ := verificationRig(t, false)
		in := ccpaRequest("access", "pia@example.com")
		in.Channel = dsar.ChannelAgent
		in.Agent = &dsar.Agent{Name: "Agent A", Email: "a@agents.example.com"}
		in.AgentDocument = &dsar.Document{Name: "auth.pdf", Content: []byte("%PDF-1.7\nsigned")}
		c, err := r.svc.Create(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		v, err := r.svc.Verify(ctx, c.Request.ID, r.code("pia@example.com"))
		if err != nil {
			t.Fatal(err)
		}
		if !v.Request.AwaitingSecondFactor {
			t.Fatalf("agent's CCPA access verified by the code alone: %s", v.Request.Status)
		}
		if _, err := r.svc.ReviewDocument(ctx, c.Request.ID, dsar.DocAgentAuthorization, "key:reviewer", ""); !isCode(err, apperr.Invalid) {
			t.Errorf("review without a note: %v", err)
		}
		if _, err := r.svc.ReviewDocument(ctx, c.Request.ID, dsar.DocAgentAuthorization, "key:reviewer", "looks fine"); !isCode(err, apperr.Conflict) {
			t.Errorf("review of a document nobody opened: %v", err)
		}
		if _, err := r.svc.OpenDocument(ctx, c.Request.ID, dsar.DocAgentAuthorization, "key:reviewer"); err != nil {
			t.Fatal(err)
		}
		got, err := r.svc.ReviewDocument(ctx, c.Request.ID, dsar.DocAgentAuthorization, "key:reviewer", "signature matches; scope: access")
		if err != nil {
			t.Fatal(err)
		}
		// Verified (then planned: the agent's request waits for approval, approval_agent).
		if got.Status != dsar.Verified || got.VerificationLevel != "high" || got.Verification != "signed_instruction" {
			t.Errorf("after the review: %s level %s by %s", got.Status, got.VerificationLevel, got.Verification)
		}
		if _, err := r.svc.ReviewDocument(ctx, c.Request.ID, dsar.DocAgentAuthorization, "key:reviewer", "again"); !isCode(err, apperr.Conflict) {
			t.Errorf("second review: %v", err)
		}
	})

	t.Run("staff cannot vouch below the policy's level", func(t *testing.T) {
		t.Parallel()
		r, _ := verificationRig(t, false)
		in := dsar.CreateInput{Type: "access", Subject: identity.MustParse("email:sam@example.com"), Region: "US-CA", Channel: dsar.ChannelStaff,
			Note: "letter", IdentityVerified: true, VerificationLevel: "reasonable", Actor: "key:reviewer", IsStaff: true}
		if _, err := r.svc.Create(ctx, in); !isCode(err, apperr.Invalid) {
			t.Fatalf("reasonable for CCPA access: %v", err)
		}
		in.VerificationLevel = "high"
		c, err := r.svc.Create(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if c.Request.Status != dsar.Verified || !slices.Equal(methods(c.Request), []string{"staff=high"}) {
			t.Errorf("staff-verified: %s %v", c.Request.Status, methods(c.Request))
		}
	})
}

// TestPackageReviewHoldsTheLink: deadlines.rego package_review (Cal. Code
// Regs. tit. 11 §7024(d), §7062(c)) holds a CCPA access package for a
// reviewer: the person gets no link and no completion email until a
// reviewer releases it; a GDPR access package is not held.
func TestPackageReviewHoldsTheLink(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r, _ := verificationRig(t, true)
	r.seedWebUser("ann.pr@example.com", "u-pr", "")
	c, err := r.svc.Create(ctx, ccpaRequest("access", "ann.pr@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.svc.Verify(ctx, c.Request.ID, r.code("ann.pr@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.VerifyInvoice(ctx, c.Request.ID, v.StatusToken, "in_ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.ReleasePackage(ctx, c.Request.ID, "key:reviewer", "early"); !isCode(err, apperr.Conflict) {
		t.Errorf("release before a package: %v", err)
	}
	r.wait(c.Request.ID, dsar.InProgress, dsar.Completed)
	r.completeManual(c.Request.ID)
	deadline := time.Now().Add(30 * time.Second)
	var d dsar.Detail
	for {
		if d, err = r.svc.Get(ctx, c.Request.ID); err != nil {
			t.Fatal(err)
		}
		if d.PackageHeld || d.Status == dsar.Completed || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !d.PackageHeld || d.Status != dsar.InProgress || !d.PackageReview {
		t.Fatalf("package not held: %s held %v", d.Status, d.PackageHeld)
	}
	st, err := r.svc.Status(ctx, c.Request.ID, v.StatusToken)
	if err != nil || st.DownloadURL != "" {
		t.Fatalf("held package's link shown to the person: %+v %v", st, err)
	}
	if n := r.completionEmails(c.Request.ID); n != 0 {
		t.Fatalf("%d completion emails before release", n)
	}
	got, err := r.svc.ReleasePackage(ctx, c.Request.ID, "key:reviewer", "checked: no government ids")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != dsar.Completed || got.PackageHeld {
		t.Errorf("after release: %s held %v", got.Status, got.PackageHeld)
	}
	if st, err := r.svc.Status(ctx, c.Request.ID, v.StatusToken); err != nil || st.DownloadURL == "" {
		t.Errorf("no link after release: %+v %v", st, err)
	}
	if n := r.count(`SELECT count(*) FROM (SELECT actor, action, details FROM audit_pending UNION ALL SELECT actor, action, details FROM audit_log) a WHERE action = 'privacy_request.package_released' AND actor = 'key:reviewer'`); n != 1 {
		t.Errorf("%d audited releases", n)
	}

	// GDPR: not held.
	r.seedWebUser("gus.pr@example.com", "u-pr2", "")
	id, token := r.verifiedWebAccess("gus.pr@example.com")
	r.wait(id, dsar.InProgress, dsar.Completed)
	r.completeManual(id)
	gd := r.wait(id, dsar.Completed)
	if gd.PackageReview || gd.PackageHeld {
		t.Errorf("GDPR package held")
	}
	if st, err := r.svc.Status(ctx, id, token); err != nil || st.DownloadURL == "" {
		t.Errorf("GDPR link: %+v %v", st, err)
	}
}
