package main

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/recordstore"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/browsertest"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/dsar"
)

// The staff console in real Chromium, against a whole Steward: sign-in with
// a password and TOTP (enrolled in the browser), a passkey through the
// DevTools virtual authenticator, the reviewer's erasure from search to
// completion, the auditor's read-only view, lockout, idle expiry, and
// axe-core on every page.

// newConsoleRig is a Steward whose public URL is http://localhost:<port>
// (passkeys need a host name, not an address), with the record store as
// the application database, and clk as its clock when set.
func newConsoleRig(t *testing.T, clk clock.Clock) *requestsRig {
	t.Helper()
	return newConsoleRigWith(t, clk, nil)
}

// newConsoleRigWith is newConsoleRig with more variables, made knowing the
// console's base URL (http://localhost:<port>).
func newConsoleRigWith(t *testing.T, clk clock.Clock, extra func(base string) map[string]string) *requestsRig {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	vars := map[string]string{"STEWARD_PUBLIC_URL": "http://localhost:" + port, "STEWARD_STAFF_EMAIL": "dpo@example.com"}
	if extra != nil {
		for k, v := range extra("http://localhost:" + port) {
			vars[k] = v
		}
	}
	e := newEnv(t, vars)
	e.listen = ln
	e.clock = clk
	store := recordstore.New(e.pool, recordstore.Options{HashKey: []byte("0123456789abcdef0123456789abcdef")})
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := e.start(func(a *application) {
		a.connectors["app_db"] = store
		a.connectors["bot_db"] = store
	})
	r.base = "http://localhost:" + port
	return &requestsRig{t: t, e: e, r: r, store: store}
}

const consolePassword = "correct horse battery staple"

func (g *requestsRig) account(email, role string) {
	g.t.Helper()
	if _, err := g.r.app.staff.CreateAccount(context.Background(), email, role, role, consolePassword, "system:test"); err != nil {
		g.t.Fatal(err)
	}
}

// typeInto focuses a field and types text, as a person with a keyboard.
func typeInto(t *testing.T, ctx context.Context, id, text string) {
	t.Helper()
	browsertest.Must(t, ctx, "type into #"+id, chromedp.Focus(chromedp.ID(id)), chromedp.SendKeys(chromedp.ID(id), text))
}

// press focuses a button and presses Enter, waiting for the next page.
func press(t *testing.T, ctx context.Context, css string) {
	t.Helper()
	browsertest.Must(t, ctx, "focus "+css, chromedp.Focus(chromedp.CSS(css)))
	submit(t, ctx, "press "+css)
}

// signInPassword fills the sign-in form (the tab is on it).
func signInPassword(t *testing.T, ctx context.Context, email string) {
	t.Helper()
	typeInto(t, ctx, "email", email)
	typeInto(t, ctx, "password", consolePassword)
	press(t, ctx, "#signin")
}

// enrolTOTP sets up an authenticator on the enrolment page and signs in;
// it returns the secret shown.
func enrolTOTP(t *testing.T, g *requestsRig, ctx context.Context) string {
	t.Helper()
	press(t, ctx, "#enrol-totp")
	browsertest.Axe(t, ctx, "enrol TOTP")
	secret := strings.TrimSpace(browsertest.Text(t, ctx, "#totp-secret"))
	typeInto(t, ctx, "code", totpCode(t, secret, g.r.app.clock.Now()))
	press(t, ctx, "#confirm")
	return secret
}

func consoleShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	browsertest.Screenshot(t, ctx, screenshots(t), "console-"+name)
}

// consoleShotTop is the first screen of a page too long for a full-page
// capture (a request with many tasks).
func consoleShotTop(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := screenshots(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "console-"+name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestConsoleReviewerAndAuditor(t *testing.T) {
	t.Parallel()
	g := newConsoleRig(t, nil)
	base := g.r.base
	em := connectors.Identity{Type: "email", Value: "erin@example.com"}
	user := connectors.Identity{Type: "user", Value: "u-erin"}
	if err := g.store.Put(context.Background(), "app_db", "users", "u-erin", []connectors.Identity{em, user}, map[string]any{"id": "u-erin", "email": "erin@example.com", "name": "Erin"}); err != nil {
		t.Fatal(err)
	}
	if err := g.store.Link(context.Background(), em, user); err != nil {
		t.Fatal(err)
	}
	c := g.create(g.e.keys["reviewer"], map[string]any{"type": "erasure", "subject": "email:erin@example.com", "region": "DE", "channel": "staff", "identity_verified": true, "note": "email to privacy@, identity checked against the account"}, 201)
	id := c.Request.ID
	g.waitFor(id, dsar.AwaitingApproval)
	g.account("rita@example.com", "reviewer")
	g.account("audrey@example.com", "auditor")
	b := browsertest.Start(t)

	t.Run("reviewer", func(t *testing.T) {
		ctx := b.Tab(t)
		// The reminder email's link: sign in first, then back to it.
		browsertest.Must(t, ctx, "open the link", chromedp.Navigate(base+"/console/requests/"+id))
		if loc := browsertest.Location(t, ctx); !strings.Contains(loc, "/console/signin?next=") {
			t.Fatalf("not sent to sign in: %s", loc)
		}
		browsertest.Axe(t, ctx, "sign-in")
		consoleShot(t, ctx, "signin-en")
		signInPassword(t, ctx, "rita@example.com")
		if loc := browsertest.Location(t, ctx); !strings.Contains(loc, "/console/signin/enrol") {
			t.Fatalf("after password: %s", loc)
		}
		browsertest.Axe(t, ctx, "enrol")
		enrolTOTP(t, g, ctx)
		if loc := browsertest.Location(t, ctx); !strings.HasSuffix(loc, "/console/requests/"+id) {
			t.Fatalf("after enrolment: %s", loc)
		}

		// Find the erasure by the person's email.
		browsertest.Must(t, ctx, "queue", chromedp.Navigate(base+"/console/requests"))
		browsertest.Axe(t, ctx, "queue")
		typeInto(t, ctx, "q", "email:erin@example.com")
		press(t, ctx, "#search")
		if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('tr[data-request]').length`); n != 1 {
			t.Fatalf("search found %d rows", n)
		}
		consoleShot(t, ctx, "queue-en")
		browsertest.Must(t, ctx, "open the request", chromedp.Click(chromedp.CSS(`tr[data-request="`+id+`"] a`)), chromedp.WaitVisible(chromedp.ID("status")))
		browsertest.Axe(t, ctx, "request")
		typeInto(t, ctx, "reason-approve", "identity matches the account")
		press(t, ctx, "#do-approve")
		if !strings.Contains(browsertest.Text(t, ctx, "#flash"), "Approved") {
			t.Fatal("no confirmation after approving")
		}
		// The manual tasks the plan produced, once the automated ones end.
		deadline := time.Now().Add(40 * time.Second)
		for {
			d := g.detail(id)
			busy, manual := false, 0
			for _, tk := range d.Tasks {
				busy = busy || tk.Mode == dsar.ModeAutomated && (tk.Status == dsar.TaskPending || tk.Status == dsar.TaskRunning)
				if tk.Mode == dsar.ModeManual && tk.Status == dsar.TaskPending {
					manual++
				}
			}
			if !busy && manual > 0 || d.Status == dsar.Completed || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		browsertest.Must(t, ctx, "reload", chromedp.Navigate(base+"/console/requests/"+id))
		consoleShotTop(t, ctx, "request-en")
		for range 20 {
			n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('form[data-action="task.complete"]').length`)
			if n == 0 {
				break
			}
			fid := browsertest.Eval[string](t, ctx, `document.querySelector('form[data-action="task.complete"] input[name=note]').id`)
			typeInto(t, ctx, fid, "deleted in the vendor console")
			press(t, ctx, `form[data-action="task.complete"] button`)
		}
		d := g.waitFor(id, dsar.Completed)
		browsertest.Must(t, ctx, "reload", chromedp.Navigate(base+"/console/requests/"+id))
		if st := browsertest.Eval[string](t, ctx, `document.getElementById('status').dataset.status`); st != "completed" {
			t.Fatalf("page shows %s (service: %s)", st, d.Status)
		}
		browsertest.Axe(t, ctx, "completed request")
		consoleShotTop(t, ctx, "request-completed-en")
		for _, p := range []string{"/console/consent", "/console/retention", "/console/policy"} {
			browsertest.Must(t, ctx, "open "+p, chromedp.Navigate(base+p))
			browsertest.Axe(t, ctx, p)
		}
		consoleShotTop(t, ctx, "policy-en")
		browsertest.Must(t, ctx, "open retention", chromedp.Navigate(base+"/console/retention?lang=ru"))
		consoleShotTop(t, ctx, "retention-ru")
	})

	t.Run("auditor", func(t *testing.T) {
		ctx := b.Tab(t)
		browsertest.Must(t, ctx, "sign in", chromedp.Navigate(base+"/console/requests/"+id))
		signInPassword(t, ctx, "audrey@example.com")
		enrolTOTP(t, g, ctx)
		if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('main form[data-action^="request."], main form[data-action^="task."]').length`); n != 0 {
			t.Fatalf("auditor sees %d action forms", n)
		}
		browsertest.Axe(t, ctx, "request as auditor")
		browsertest.Must(t, ctx, "verify", chromedp.Navigate(base+"/console/audit"), chromedp.Click(chromedp.ID("verify")), chromedp.WaitVisible(chromedp.ID("verify-result")))
		if ok := browsertest.Eval[string](t, ctx, `document.getElementById('verify-result').dataset.ok`); ok != "true" {
			t.Fatalf("chain: %s", browsertest.Text(t, ctx, "#verify-result"))
		}
		browsertest.Axe(t, ctx, "audit")
		consoleShotTop(t, ctx, "audit-en")
		// A forged approve from the auditor's own session, with its valid
		// CSRF token: refused by the policy, and audited.
		status := browsertest.Eval[int](t, ctx, `(() => { const f = new FormData(); f.set('csrf', document.querySelector('input[name=csrf]').value);
			return fetch('/console/requests/`+id+`/cancel', {method: 'POST', body: new URLSearchParams(f), credentials: 'same-origin'}).then(r => r.status); })()`)
		if status != 403 {
			t.Fatalf("forged POST: %d", status)
		}
		if _, err := g.r.app.sealer.SealAll(context.Background()); err != nil {
			t.Fatal(err)
		}
		entries, _, err := audit.Reader{Pool: g.e.pool}.List(context.Background(), audit.Filter{Action: "staff.*", Desc: true, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range entries {
			found = found || e.Action == "staff.denied" && e.TargetID == "request.cancel"
		}
		if !found {
			t.Fatalf("refusal not in the audit log: %+v", entries)
		}
		if d := g.detail(id); d.Status != dsar.Completed {
			t.Fatalf("forged POST changed the request: %s", d.Status)
		}
	})
}

func TestConsoleLockoutAndIdle(t *testing.T) {
	t.Parallel()
	clk := clock.NewFake(time.Now())
	g := newConsoleRig(t, clk)
	base := g.r.base
	g.account("lee@example.com", "reviewer")
	tok, secret := staffMember(t, g.r.app, "ida@example.com", "reviewer")
	_ = tok
	b := browsertest.Start(t)

	t.Run("five wrong codes lock the account", func(t *testing.T) {
		ctx := b.Tab(t)
		browsertest.Must(t, ctx, "sign in", chromedp.Navigate(base+"/console/signin"))
		signInPassword(t, ctx, "lee@example.com")
		enrolTOTP(t, g, ctx)
		browsertest.Must(t, ctx, "sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("email")))
		clk.Advance(time.Minute)
		signInPassword(t, ctx, "lee@example.com")
		browsertest.Axe(t, ctx, "second factor")
		consoleShot(t, ctx, "factor-en")
		for i := range 5 {
			if browsertest.Eval[int](t, ctx, `document.querySelectorAll('#code').length`) == 0 {
				break
			}
			typeInto(t, ctx, "code", "000000")
			press(t, ctx, "#verify")
			clk.Advance(40 * time.Second) // past any pause between failures
			_ = i
		}
		if loc := browsertest.Location(t, ctx); !strings.Contains(browsertest.Text(t, ctx, "main"), "locked until") {
			t.Fatalf("not locked at %s: %s", loc, browsertest.Text(t, ctx, "main"))
		}
		browsertest.Axe(t, ctx, "locked")
		consoleShot(t, ctx, "locked-en")
		// Even the right password and code are refused while locked.
		browsertest.Must(t, ctx, "sign in again", chromedp.Navigate(base+"/console/signin"))
		signInPassword(t, ctx, "lee@example.com")
		if !strings.Contains(browsertest.Text(t, ctx, "main"), "locked until") {
			t.Fatalf("signed in while locked: %s", browsertest.Location(t, ctx))
		}
	})

	t.Run("an idle session is signed out", func(t *testing.T) {
		ctx := b.Tab(t)
		clk.Advance(time.Minute)
		browsertest.Must(t, ctx, "sign in", chromedp.Navigate(base+"/console/signin"))
		signInPassword(t, ctx, "ida@example.com")
		typeInto(t, ctx, "code", totpCode(t, secret, clk.Now()))
		press(t, ctx, "#verify")
		if loc := browsertest.Location(t, ctx); !strings.HasSuffix(loc, "/console/requests") {
			t.Fatalf("signed in to %s: %s", loc, browsertest.Text(t, ctx, "main"))
		}
		clk.Advance(31 * time.Minute)
		browsertest.Must(t, ctx, "come back", chromedp.Navigate(base+"/console/requests"))
		if loc := browsertest.Location(t, ctx); !strings.Contains(loc, "expired=1") {
			t.Fatalf("idle session still in at %s", loc)
		}
		if !strings.Contains(browsertest.Text(t, ctx, "#notice"), "without activity") {
			t.Fatal("no idle message")
		}
		browsertest.Axe(t, ctx, "expired")
	})
}

func TestConsolePasskey(t *testing.T) {
	t.Parallel()
	g := newConsoleRig(t, nil)
	base := g.r.base
	if !g.r.app.staff.Passkeys() {
		t.Skip("passkeys are off for this host")
	}
	g.account("pat@example.com", "auditor")
	b := browsertest.Start(t)
	ctx := b.Tab(t)
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}}); err != nil {
		t.Fatal(err)
	}
	browsertest.Must(t, ctx, "sign in", chromedp.Navigate(base+"/console/signin"))
	signInPassword(t, ctx, "pat@example.com")
	// Enrol a passkey (the script runs navigator.credentials.create).
	browsertest.Must(t, ctx, "create a passkey", chromedp.WaitVisible(chromedp.ID("passkey")), chromedp.Click(chromedp.ID("passkey")))
	waitPath(t, ctx, "/console/requests")
	browsertest.Must(t, ctx, "sign out", chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("email")))
	// Sign in again with it.
	signInPassword(t, ctx, "pat@example.com")
	browsertest.Axe(t, ctx, "second factor with a passkey")
	browsertest.Must(t, ctx, "use the passkey", chromedp.WaitVisible(chromedp.ID("passkey")), chromedp.Click(chromedp.ID("passkey")))
	waitPath(t, ctx, "/console/requests")
	accts, err := g.r.app.staff.Accounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		if a.Email == "pat@example.com" && a.Passkeys != 1 {
			t.Fatalf("passkeys: %d", a.Passkeys)
		}
	}
}

// waitPath waits until the tab is on a page whose path ends with suffix.
func waitPath(t *testing.T, ctx context.Context, suffix string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		loc := browsertest.Location(t, ctx)
		if u, err := url.Parse(loc); err == nil && strings.HasSuffix(u.Path, suffix) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still at %s: %s", loc, browsertest.Eval[string](t, ctx, `document.querySelector('main') ? document.querySelector('main').innerText : ''`))
		}
		time.Sleep(100 * time.Millisecond)
	}
}
