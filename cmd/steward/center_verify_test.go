package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/recordstore"
	"github.com/steward-privacy/steward/internal/browsertest"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/notify/resendtest"
)

// payments stands in for the web product's payment system (Stripe in the
// data map): the record store, plus the invoice check the real Stripe
// connector answers from the person's customers (connectors/stripe
// TestVerifyInvoice). Ann's one recent invoice is NB-0042.
type payments struct {
	connectors.Connector
}

func (payments) VerifyInvoice(_ context.Context, ids []connectors.Identity, ref string, since time.Time) (bool, error) {
	for _, id := range ids {
		if id.Type == "email" && id.Value == "ann.ca@example.com" && strings.EqualFold(ref, "NB-0042") && since.Before(time.Now()) {
			return true, nil
		}
	}
	return false, nil
}

// newVerifyRig is the privacy center with a payment connector that can
// check invoices.
func newVerifyRig(t *testing.T) *requestsRig {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fake := resendtest.New(t)
	e := newEnv(t, map[string]string{
		"STEWARD_RESEND_API_KEY": "re_test", "STEWARD_RESEND_BASE_URL": fake.URL, "STEWARD_EMAIL_FROM": "Privacy <privacy@example.com>",
		"STEWARD_STAFF_EMAIL": "dpo@example.com", "STEWARD_PUBLIC_URL": "http://" + ln.Addr().String(),
	})
	e.listen = ln
	store := recordstore.New(e.pool, recordstore.Options{HashKey: []byte("0123456789abcdef0123456789abcdef")})
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := e.start(func(a *application) {
		a.connectors["app_db"] = store
		a.connectors["bot_db"] = store
		a.connectors["stripe"] = payments{Connector: store}
	})
	return &requestsRig{t: t, e: e, r: r, fake: fake, store: store}
}

// fillRequest fills the request form (type, email, where they live) and
// sends it, landing where the center redirects.
func fillRequest(t *testing.T, ctx context.Context, base, typ, email, region string) {
	t.Helper()
	browsertest.Must(t, ctx, "open form", chromedp.Navigate(base+"/privacy/web/request?type="+typ))
	browsertest.Must(t, ctx, "fill form",
		chromedp.Click(chromedp.CSS("#type-"+typ)),
		chromedp.SetValue(chromedp.ID("email"), email),
		chromedp.SetValue(chromedp.ID("region"), region),
		chromedp.Focus(chromedp.CSS(`main form button[type=submit]`)))
	submit(t, ctx, "send "+typ)
}

func enterCode(t *testing.T, ctx context.Context, code string) {
	t.Helper()
	browsertest.Must(t, ctx, "type code", chromedp.SetValue(chromedp.ID("code"), code), chromedp.Focus(chromedp.ID("code")))
	submit(t, ctx, "submit code")
}

func requestIDFrom(t *testing.T, loc string) string {
	t.Helper()
	loc = strings.TrimSuffix(loc, "/verify")
	id := loc[strings.LastIndex(loc, "/")+1:]
	if !dsar.ValidID(id) {
		t.Fatalf("no request id in %s", loc)
	}
	return id
}

// TestPrivacyCenterVerificationLevels: the level the policy asks for is what
// the center requires. Cal. Code Regs. tit. 11 §7062(c): a CCPA access
// request (specific pieces) needs a reasonably high degree of certainty —
// the emailed code and then a recent invoice ("We will verify identity
// (challenge login, recent invoice, signed instruction, etc.)", the web
// notice); a wrong invoice is refused with a clear message and changes
// nothing. GDPR Art. 12(6): reasonable measures — the code alone. §7026: an
// opt-out (a CCPA objection) needs no code at all.
func TestPrivacyCenterVerificationLevels(t *testing.T) {
	t.Parallel()
	g := newVerifyRig(t)
	b := browsertest.Start(t)
	base := g.r.base
	em := connectors.Identity{Type: "email", Value: "ann.ca@example.com"}
	user := connectors.Identity{Type: "user", Value: "u-ca"}
	if err := g.store.Put(context.Background(), "app_db", "users", "u-ca", []connectors.Identity{em, user}, map[string]any{"id": "u-ca", "email": em.Value, "name": "Ann Cal"}); err != nil {
		t.Fatal(err)
	}
	if err := g.store.Link(context.Background(), em, user); err != nil {
		t.Fatal(err)
	}

	t.Run("CCPA access: code, then a recent invoice", func(t *testing.T) {
		ctx := b.Tab(t)
		fillRequest(t, ctx, base, "access", em.Value, "US-CA")
		id := requestIDFrom(t, browsertest.Location(t, ctx))
		enterCode(t, ctx, g.lastCode(em.Value))
		if h := browsertest.Text(t, ctx, "h1"); h != "One more step" {
			t.Fatalf("after the code: %q: %s", h, browsertest.Text(t, ctx, "main"))
		}
		browsertest.Axe(t, ctx, "second factor")
		browsertest.Screenshot(t, ctx, screenshots(t), "center-second-factor-en")
		d := g.detail(id)
		if d.Status != dsar.IdentityPending || !d.AwaitingSecondFactor || d.PlannedAt != nil {
			t.Fatalf("after the code alone: %s awaiting %v planned %v", d.Status, d.AwaitingSecondFactor, d.PlannedAt)
		}

		// A wrong invoice: refused, said plainly, nothing changes.
		browsertest.Must(t, ctx, "wrong invoice", chromedp.SetValue(chromedp.ID("reference"), "NB-9999"), chromedp.Focus(chromedp.ID("reference")))
		submit(t, ctx, "submit wrong invoice")
		if msg := browsertest.Text(t, ctx, "#errors"); !strings.Contains(msg, "no recent invoice or payment of yours") {
			t.Fatalf("wrong invoice page says %q", msg)
		}
		browsertest.Axe(t, ctx, "second factor with an error")
		if d2 := g.detail(id); d2.Status != dsar.IdentityPending || d2.VerificationLevel != "reasonable" || len(d2.VerificationMethods) != 1 || d2.PlannedAt != nil {
			t.Fatalf("a wrong invoice changed the request: %s %s %v", d2.Status, d2.VerificationLevel, d2.VerificationMethods)
		}

		browsertest.Must(t, ctx, "right invoice", chromedp.SetValue(chromedp.ID("reference"), "NB-0042"), chromedp.Focus(chromedp.ID("reference")))
		submit(t, ctx, "submit invoice")
		if loc := browsertest.Location(t, ctx); strings.HasSuffix(loc, "/verify") || strings.HasSuffix(loc, "/invoice") {
			t.Fatalf("after the invoice: %s: %s", loc, browsertest.Text(t, ctx, "main"))
		}
		d = g.waitFor(id, dsar.InProgress, dsar.Completed)
		if d.VerificationLevel != "high" || d.Verification != "recent_invoice" {
			t.Errorf("verified %s by %s", d.VerificationLevel, d.Verification)
		}
	})

	t.Run("GDPR access: the code alone", func(t *testing.T) {
		ctx := b.Tab(t)
		fillRequest(t, ctx, base, "access", "gus.de@example.com", "DE")
		id := requestIDFrom(t, browsertest.Location(t, ctx))
		enterCode(t, ctx, g.lastCode("gus.de@example.com"))
		if loc := browsertest.Location(t, ctx); strings.HasSuffix(loc, "/verify") {
			t.Fatalf("GDPR access asked for more than the code: %s", browsertest.Text(t, ctx, "main"))
		}
		if d := g.detail(id); d.Status == dsar.IdentityPending || d.VerificationLevel != "reasonable" {
			t.Errorf("GDPR access after the code: %s %s", d.Status, d.VerificationLevel)
		}
	})

	t.Run("CCPA objection: no code", func(t *testing.T) {
		ctx := b.Tab(t)
		before := len(g.fake.Emails())
		fillRequest(t, ctx, base, "objection", "otto.ca@example.com", "US-CA")
		loc := browsertest.Location(t, ctx)
		if strings.HasSuffix(loc, "/verify") {
			t.Fatalf("an opt-out asked for a code: %s", browsertest.Text(t, ctx, "main"))
		}
		browsertest.Axe(t, ctx, "objection status")
		id := requestIDFrom(t, loc)
		if d := g.detail(id); d.Status == dsar.IdentityPending || d.Verification != "none" || d.VerificationRequired != "none" {
			t.Errorf("objection: %s by %q (required %q)", d.Status, d.Verification, d.VerificationRequired)
		}
		if _, err := g.r.app.worker.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, e := range g.fake.Emails()[before:] {
			if sixDigits.MatchString(e.Text) && strings.Contains(strings.ToLower(e.Subject), "code") {
				t.Errorf("a code was emailed for an opt-out: %q", e.Subject)
			}
		}
	})
}
