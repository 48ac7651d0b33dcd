package sdk_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/browsertest"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/testutil"
)

// The consent SDK as a visitor meets it: real Chromium on a product page
// served from another origin than Steward, under a strict CSP, recording
// into the real ledger. Each test has its own Steward, database and
// browser context.

// waitFor polls a JavaScript condition in the page until it holds.
func waitFor(t *testing.T, ctx context.Context, what, cond string) {
	t.Helper()
	// Evaluated afresh each time rather than with chromedp.Poll, which can
	// hold on to the execution context of the page a navigation replaced.
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			state := browsertest.Eval[string](t, ctx, `JSON.stringify({banner: !!document.querySelector(".stw-banner"), dialog: !!document.querySelector("dialog[open]"),
				csp: window.cspViolations, allowed: window.steward && steward.consent.banner() ? steward.consent.banner().purposes.map(p => p.id + "=" + steward.consent.allowed(p.id)) : null})`)
			t.Fatalf("waiting for %s (%s): %v; page: %s", what, cond, err, state)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// openPage opens url in a fresh browser context and waits until the SDK has
// its banner data.
func openPage(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	browsertest.Must(t, ctx, "open "+url, chromedp.Navigate(url))
	waitFor(t, ctx, "the SDK to be ready", `!!(window.steward && steward.consent.banner())`)
}

func click(t *testing.T, ctx context.Context, css string) {
	t.Helper()
	browsertest.Must(t, ctx, "click "+css, chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
}

func counter(t *testing.T, ctx context.Context, name string) int {
	t.Helper()
	return browsertest.Eval[int](t, ctx, "window."+name+" || 0")
}

// inert reports whether the gated script for purposes is still text/plain.
func inert(t *testing.T, ctx context.Context, purposes string) bool {
	t.Helper()
	return browsertest.Eval[bool](t, ctx, fmt.Sprintf(`!!document.querySelector('script[type="text/plain"][data-consent=%q]')`, purposes))
}

func subject(t *testing.T, ctx context.Context) string {
	t.Helper()
	s := browsertest.Eval[string](t, ctx, `steward.consent.subject()`)
	if _, err := identity.Parse(s); err != nil || !strings.HasPrefix(s, "visitor:") {
		t.Fatalf("the SDK's subject %q is not a visitor: %v", s, err)
	}
	return s
}

// noCSPViolations: the SDK and the scripts it activated ran under the host's
// strict CSP without tripping it.
func noCSPViolations(t *testing.T, ctx context.Context) {
	t.Helper()
	if v := browsertest.Eval[[]string](t, ctx, `window.cspViolations`); len(v) > 0 {
		t.Errorf("CSP violations on the host page: %v", v)
	}
}

// TestBannerAcceptAll: in Germany (opt-in) nothing gated runs until the
// visitor accepts; "Accept all" runs the analytics, functional and
// marketing scripts (inline and external) but not model training, which
// needs its own switch; the choices land in the ledger with the notice
// version, jurisdiction, language and the browser's user agent; the next
// page runs the same scripts at once and shows no banner.
func TestBannerAcceptAll(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := browsertest.Start(t).Tab(t)
	openPage(t, ctx, s.page("/", pageOpts{Region: "DE"}))
	waitFor(t, ctx, "the banner", `!!document.querySelector(".stw-banner")`)
	if browsertest.Eval[string](t, ctx, `getComputedStyle(document.querySelector(".stw-banner")).position`) != "fixed" {
		t.Error("the banner is unstyled: its stylesheet did not apply under the host's CSP")
	}
	for _, p := range []string{"analytics", "functional", "marketing", "model_training"} {
		if browsertest.Eval[bool](t, ctx, fmt.Sprintf("steward.consent.allowed(%q)", p)) || !inert(t, ctx, p) {
			t.Errorf("%s allowed or its script activated before any choice in an opt-in regime", p)
		}
	}
	if !browsertest.Eval[bool](t, ctx, `steward.consent.allowed("essential")`) {
		t.Error("essential not allowed")
	}
	visitor := subject(t, ctx)
	// A listener added once the SDK is settled hears the current state at once.
	browsertest.Eval[bool](t, ctx, `window.heard = []; steward.consent.on("change", (e) => window.heard.push(e.allowed)); true`)
	waitFor(t, ctx, "on(change) to report the current state", `window.heard.length === 1 && window.heard[0].analytics === false`)

	click(t, ctx, `.stw-banner [data-act="accept"]`)
	waitFor(t, ctx, "the accepted scripts to run", `window.analyticsRan === 1 && window.functionalRan === 1 && window.marketingRan === 1 && window.bothRan === 1`)
	if counter(t, ctx, "trainingRan") != 0 || !inert(t, ctx, "model_training") {
		t.Error(`"Accept all" ran the model-training script, which needs explicit consent`)
	}
	if browsertest.Eval[bool](t, ctx, `!!document.querySelector(".stw-banner")`) {
		t.Error("the banner is still shown after a choice")
	}
	got := s.waitLedger(visitor, map[string]string{"analytics": "granted", "functional": "granted", "marketing": "granted", "model_training": "denied", "third_party_models": "denied"})
	if st := got["essential"].State; st != "none" {
		t.Errorf("essential recorded as %q: it is not a choice", st)
	}
	for _, ev := range s.history(visitor) {
		if ev.Source != "web_banner" || ev.NoticeVersion != "2.0" || ev.Jurisdiction != "DE" || ev.Language != "en" || ev.Product != "web" ||
			!strings.Contains(ev.UserAgent, "Chrome") || ev.IPHash == "" || ev.GPC {
			t.Errorf("event %+v: want source web_banner, notice 2.0, DE, en, web, the browser's user agent and address, no GPC", ev)
		}
	}
	optional := s.optionalPurposes()
	if n := len(s.history(visitor)); n != optional {
		t.Errorf("%d events recorded, want one per optional purpose (%d)", n, optional)
	}
	// The change event told the page.
	if !browsertest.Eval[bool](t, ctx, `window.changes.some(a => a.analytics === true && a.marketing === true && a.model_training === false) &&
		window.heard.length === 2 && window.heard[1].analytics === true`) {
		t.Errorf("no change event with the accepted purposes: DOM %s, on() %s", browsertest.Eval[string](t, ctx, `JSON.stringify(window.changes)`),
			browsertest.Eval[string](t, ctx, `JSON.stringify(window.heard)`))
	}
	// The server decides alike.
	d, err := s.svc.Check(context.Background(), consent.CheckInput{Subject: identity.MustParse(visitor), Purpose: "analytics", Jurisdiction: "DE", Product: "web", Age: -1})
	if err != nil || !d.Allow || d.Reason != "granted" {
		t.Errorf("server check of analytics: %+v %v", d, err)
	}
	noCSPViolations(t, ctx)

	// The next page: the stored choice runs the scripts, no banner.
	openPage(t, ctx, s.page("/next", pageOpts{Region: "DE"}))
	waitFor(t, ctx, "the scripts on the next page", `window.analyticsRan === 1 && window.marketingRan === 1`)
	if browsertest.Eval[bool](t, ctx, `!!document.querySelector(".stw-banner")`) {
		t.Error("the banner is shown again although the visitor chose")
	}
	if n := len(s.history(visitor)); n != optional {
		t.Errorf("the next page recorded again: %d events", n)
	}
	noCSPViolations(t, ctx)
}

// TestBannerRejectAll: "Reject all" runs nothing and records a refusal of
// every optional purpose.
func TestBannerRejectAll(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := browsertest.Start(t).Tab(t)
	openPage(t, ctx, s.page("/", pageOpts{Region: "FR", Lang: "ru"}))
	visitor := subject(t, ctx)
	click(t, ctx, `.stw-banner [data-act="reject"]`)
	s.waitLedger(visitor, map[string]string{"analytics": "denied", "functional": "denied", "marketing": "denied", "model_training": "denied"})
	waitFor(t, ctx, "the banner to close", `!document.querySelector(".stw-banner")`)
	for _, p := range []string{"analytics", "functional", "marketing", "model_training", "analytics marketing"} {
		if !inert(t, ctx, p) {
			t.Errorf("the %s script was activated after Reject all", p)
		}
	}
	for _, f := range []string{"analyticsRan", "functionalRan", "marketingRan", "trainingRan", "bothRan"} {
		if counter(t, ctx, f) != 0 {
			t.Errorf("%s after Reject all", f)
		}
	}
	for _, ev := range s.history(visitor) {
		if ev.Language != "ru" || ev.Jurisdiction != "FR" || ev.State != "denied" {
			t.Errorf("event %+v", ev)
		}
	}
	noCSPViolations(t, ctx)
}

// TestPreferencesPerPurpose: the dialog lets the visitor allow one purpose
// and not the others; only that purpose's scripts run; reopened from the
// page's own "Privacy settings" button, turning it off records a
// withdrawal, as easily as it was given.
func TestPreferencesPerPurpose(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := browsertest.Start(t).Tab(t)
	openPage(t, ctx, s.page("/", pageOpts{Region: "DE"}))
	visitor := subject(t, ctx)
	click(t, ctx, `.stw-banner [data-act="prefs"]`)
	waitFor(t, ctx, "the dialog", `!!document.querySelector("dialog.stw-dialog[open]")`)
	if !browsertest.Eval[bool](t, ctx, `(() => { const e = document.getElementById("stw-p-essential"); return e.checked && e.disabled })()`) {
		t.Error("essential is not shown on and fixed")
	}
	click(t, ctx, `#stw-p-analytics`)
	click(t, ctx, `dialog [data-act="save"]`)
	waitFor(t, ctx, "analytics to run", `window.analyticsRan === 1`)
	got := s.waitLedger(visitor, map[string]string{"analytics": "granted", "functional": "denied", "marketing": "denied", "model_training": "denied"})
	if got["analytics"].Source != "web_settings" {
		t.Errorf("source %q, want web_settings", got["analytics"].Source)
	}
	for _, p := range []string{"functional", "marketing", "analytics marketing"} {
		if !inert(t, ctx, p) {
			t.Errorf("the %s script ran though only analytics was allowed", p)
		}
	}

	// Withdraw through the page's own link to the preferences.
	click(t, ctx, `#privacy-settings`)
	waitFor(t, ctx, "the dialog again", `!!document.querySelector("dialog.stw-dialog[open]")`)
	if !browsertest.Eval[bool](t, ctx, `document.getElementById("stw-p-analytics").checked && !document.getElementById("stw-p-marketing").checked`) {
		t.Error("the dialog does not show the stored choices")
	}
	click(t, ctx, `#stw-p-analytics`)
	click(t, ctx, `dialog [data-act="save"]`)
	s.waitLedger(visitor, map[string]string{"analytics": "withdrawn"})
	waitFor(t, ctx, "allowed() to follow", `steward.consent.allowed("analytics") === false`)
	if !browsertest.Eval[bool](t, ctx, `window.changes.length >= 2 && window.changes[window.changes.length-1].analytics === false`) {
		t.Errorf("no change event for the withdrawal: %s", browsertest.Eval[string](t, ctx, `JSON.stringify(window.changes)`))
	}
	// Only the purpose that changed was recorded again.
	if n, want := len(s.history(visitor)), s.optionalPurposes()+1; n != want {
		t.Errorf("%d events, want one choice per optional purpose and 1 withdrawal (%d)", n, want)
	}
	noCSPViolations(t, ctx)
}

// TestGPC: with Global Privacy Control on (navigator.globalPrivacyControl
// and Sec-GPC, as a browser with it sends both) in California, an opt-out
// regime that honours it: the banner says so; analytics runs by default
// but marketing does not; "Accept all" leaves marketing off; switching it
// on by itself in the dialog is an explicit grant that stands.
func TestGPC(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := browsertest.Start(t).Tab(t)
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `Object.defineProperty(Navigator.prototype, "globalPrivacyControl", {get: () => true, configurable: true});`,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Sec-GPC": "1"}}); err != nil {
		t.Fatal(err)
	}
	openPage(t, ctx, s.page("/", pageOpts{Region: "US-CA"}))
	waitFor(t, ctx, "the banner", `!!document.querySelector(".stw-banner")`)
	note := browsertest.Text(t, ctx, `.stw-banner .stw-note[data-gpc="honoured"]`)
	if !strings.Contains(note, "Global Privacy Control") || !strings.Contains(note, "Marketing") || !strings.Contains(note, "Model training") {
		t.Errorf("GPC note %q", note)
	}
	visitor := subject(t, ctx)
	// Opt-out defaults, less what GPC refuses: only analytics (legitimate
	// interests with an opt-out) runs by default; functional cookies are
	// "non-essential cookies | Consent" and wait for a grant (issue 19).
	waitFor(t, ctx, "analytics by default", `window.analyticsRan === 1`)
	if !inert(t, ctx, "marketing") || browsertest.Eval[bool](t, ctx, `steward.consent.allowed("marketing")`) {
		t.Error("marketing runs under GPC")
	}

	click(t, ctx, `.stw-banner [data-act="accept"]`)
	s.waitLedger(visitor, map[string]string{"analytics": "granted", "functional": "granted", "marketing": "denied", "model_training": "denied"})
	if !inert(t, ctx, "marketing") {
		t.Error(`"Accept all" ran marketing under GPC`)
	}
	sawGPC := false
	for _, ev := range s.history(visitor) {
		sawGPC = sawGPC || ev.GPC
	}
	if !sawGPC {
		t.Error("no event recorded the GPC signal")
	}
	check := func(purpose string) bool {
		d, err := s.svc.Check(context.Background(), consent.CheckInput{Subject: identity.MustParse(visitor), Purpose: purpose, Jurisdiction: "US-CA", Product: "web", Age: -1, GPC: true})
		if err != nil {
			t.Fatal(err)
		}
		return d.Allow
	}
	if check("marketing") || !check("analytics") {
		t.Error("the server's decisions differ from the banner's")
	}

	// An explicit grant, made with GPC on, stands.
	click(t, ctx, `#privacy-settings`)
	waitFor(t, ctx, "the dialog", `!!document.querySelector("dialog.stw-dialog[open]")`)
	if browsertest.Eval[string](t, ctx, `document.querySelector("dialog .stw-note").dataset.gpc`) != "honoured" {
		t.Error("the dialog does not show GPC")
	}
	click(t, ctx, `#stw-p-marketing`)
	click(t, ctx, `dialog [data-act="save"]`)
	s.waitLedger(visitor, map[string]string{"marketing": "granted"})
	waitFor(t, ctx, "marketing to run", `window.marketingRan === 1`)
	if !check("marketing") {
		t.Error("the server refuses marketing granted explicitly under GPC")
	}
	noCSPViolations(t, ctx)
}

// TestReconsentAfterNoticeMajorChange: a grant given under notice 2.0 stops
// counting when the notice becomes 3.0: the next page asks again, runs
// nothing the old grant allowed, and the new choice is recorded under 3.0.
func TestReconsentAfterNoticeMajorChange(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ctx := browsertest.Start(t).Tab(t)
	openPage(t, ctx, s.page("/", pageOpts{Region: "DE"}))
	visitor := subject(t, ctx)
	click(t, ctx, `.stw-banner [data-act="accept"]`)
	s.waitLedger(visitor, map[string]string{"analytics": "granted"})
	waitFor(t, ctx, "analytics", `window.analyticsRan === 1`)

	// A minor change asks nothing.
	s.changeNotice("2.1")
	openPage(t, ctx, s.page("/minor", pageOpts{Region: "DE"}))
	waitFor(t, ctx, "analytics under 2.1", `window.analyticsRan === 1`)
	if browsertest.Eval[bool](t, ctx, `!!document.querySelector(".stw-banner")`) {
		t.Error("a minor notice change asked for consent again")
	}

	s.changeNotice("3.0")
	openPage(t, ctx, s.page("/after", pageOpts{Region: "DE"}))
	waitFor(t, ctx, "the banner again", `!!document.querySelector(".stw-banner")`)
	if text := browsertest.Text(t, ctx, "#stw-b-text"); !strings.Contains(text, "privacy notice has changed") {
		t.Errorf("the banner does not say why it asks again: %q", text)
	}
	if browsertest.Eval[bool](t, ctx, `steward.consent.allowed("analytics")`) || !inert(t, ctx, "analytics") || counter(t, ctx, "analyticsRan") != 0 {
		t.Error("a grant under the old major notice still runs analytics")
	}
	d, err := s.svc.Check(context.Background(), consent.CheckInput{Subject: identity.MustParse(visitor), Purpose: "analytics", Jurisdiction: "DE", Product: "web", Age: -1})
	if err != nil || d.Reason != "reconsent_required" {
		t.Errorf("server check: %+v %v; want reconsent_required", d, err)
	}
	click(t, ctx, `.stw-banner [data-act="accept"]`)
	waitFor(t, ctx, "analytics after re-consent", `window.analyticsRan === 1`)
	got := s.waitLedger(visitor, map[string]string{"analytics": "granted"})
	deadline := time.Now().Add(10 * time.Second)
	for got["analytics"].NoticeVersion != "3.0" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		got = s.ledger(visitor)
	}
	if got["analytics"].NoticeVersion != "3.0" {
		t.Errorf("re-consent recorded under notice %q, want 3.0", got["analytics"].NoticeVersion)
	}
	noCSPViolations(t, ctx)
}

// TestKeyboardOnly: a keyboard user reaches the banner's buttons with Tab,
// sees where focus is, opens the preferences with Enter, toggles with
// Space, is kept inside the dialog by Tab and Shift+Tab, closes it with
// Escape (focus goes back), and saves with Enter; "Reject all" works with
// Space.
func TestKeyboardOnly(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	b := browsertest.Start(t)
	ctx := b.Tab(t)
	openPage(t, ctx, s.page("/", pageOpts{Region: "DE"}))
	visitor := subject(t, ctx)
	isText := func(text string) func(browsertest.Focused) bool {
		return func(f browsertest.Focused) bool { return f.Text == text }
	}
	browsertest.TabTo(t, ctx, 6, "the banner's Preferences button", isText("Preferences"))
	if got := browsertest.Eval[string](t, ctx, `(() => { const s = getComputedStyle(document.activeElement); return s.outlineStyle + " " + s.outlineWidth })()`); got != "solid 3px" {
		t.Errorf("focus is not visible: outline %q", got)
	}
	browsertest.Press(t, ctx, kb.Enter)
	waitFor(t, ctx, "the dialog", `!!document.querySelector("dialog.stw-dialog[open]")`)
	if f := browsertest.Focus(t, ctx); f.ID != "stw-p-analytics" {
		t.Fatalf("focus did not move into the dialog: %+v", f)
	}
	if !browsertest.Eval[bool](t, ctx, `(() => { const d = document.querySelector("dialog.stw-dialog"); return d.getAttribute("aria-modal") === "true" &&
		document.getElementById(d.getAttribute("aria-labelledby")).textContent === "Privacy preferences" })()`) {
		t.Error("the dialog is not a labelled modal dialog")
	}
	browsertest.Press(t, ctx, " ")
	if !browsertest.Eval[bool](t, ctx, `document.getElementById("stw-p-analytics").checked`) {
		t.Fatal("Space did not switch analytics on")
	}
	browsertest.Press(t, ctx, kb.Escape)
	waitFor(t, ctx, "Escape to close the dialog", `!document.querySelector("dialog.stw-dialog")`)
	if f := browsertest.Focus(t, ctx); f.Text != "Preferences" {
		t.Errorf("after Escape focus is on %+v, want the Preferences button", f)
	}
	if len(s.history(visitor)) != 0 {
		t.Error("Escape recorded a choice")
	}

	browsertest.Press(t, ctx, kb.Enter)
	waitFor(t, ctx, "the dialog again", `!!document.querySelector("dialog.stw-dialog[open]")`)
	browsertest.Press(t, ctx, " ")
	browsertest.TabTo(t, ctx, 10, "Save choices", isText("Save choices"))
	// Tab from the last control wraps to the first, Shift+Tab back.
	browsertest.Press(t, ctx, kb.Tab)
	if f := browsertest.Focus(t, ctx); f.Label != "Close" {
		t.Errorf("Tab left the dialog: focus on %+v", f)
	}
	browsertest.Must(t, ctx, "Shift+Tab", chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)))
	if f := browsertest.Focus(t, ctx); f.Text != "Save choices" {
		t.Errorf("Shift+Tab from the first control went to %+v", f)
	}
	browsertest.Press(t, ctx, kb.Enter)
	s.waitLedger(visitor, map[string]string{"analytics": "granted", "marketing": "denied", "functional": "denied"})
	waitFor(t, ctx, "analytics", `window.analyticsRan === 1`)

	// Another visitor rejects everything with Space alone.
	ctx2 := b.Tab(t)
	openPage(t, ctx2, s.page("/", pageOpts{Region: "DE"}))
	visitor2 := subject(t, ctx2)
	browsertest.TabTo(t, ctx2, 6, "Reject all", isText("Reject all"))
	browsertest.Press(t, ctx2, " ")
	s.waitLedger(visitor2, map[string]string{"analytics": "denied", "marketing": "denied", "functional": "denied", "model_training": "denied"})
}

// TestSDKAccessibilityAndScreenshots: with the banner and with the dialog open,
// in each language, axe-core finds no WCAG 2.1 AA violation; the texts
// are the language's; "Reject all" looks exactly like "Accept all"; and
// the screenshots are written.
func TestSDKAccessibilityAndScreenshots(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	b := browsertest.Start(t)
	dir := browsertest.ScreenshotDir(testutil.ModuleRoot(t))
	words := map[string][3]string{ // title, reject, analytics
		"en": {"Your privacy choices", "Reject all", "Performance and analytics"},
		"ru": {"Ваша конфиденциальность", "Отклонить все", "Производительность и аналитика"},
		"uz": {"Maxfiyligingiz", "Hammasini rad etish", "Unumdorlik va tahlil"},
	}
	for _, lang := range []string{"en", "ru", "uz"} {
		t.Run(lang, func(t *testing.T) {
			ctx := b.Tab(t)
			openPage(t, ctx, s.page("/"+lang, pageOpts{Lang: lang, Region: "DE"}))
			waitFor(t, ctx, "the banner", `!!document.querySelector(".stw-banner")`)
			w := words[lang]
			if got := browsertest.Text(t, ctx, "#stw-b-title"); got != w[0] {
				t.Errorf("title %q, want %q", got, w[0])
			}
			if got := browsertest.Text(t, ctx, `.stw-banner [data-act="reject"]`); got != w[1] {
				t.Errorf("reject button %q, want %q", got, w[1])
			}
			same := browsertest.Eval[bool](t, ctx, `(() => {
				const st = (a) => { const e = document.querySelector('.stw-banner [data-act="' + a + '"]'), s = getComputedStyle(e), r = e.getBoundingClientRect();
					return [s.backgroundColor, s.color, s.fontSize, s.fontWeight, s.borderWidth, Math.round(r.height)].join("|") };
				return st("reject") === st("accept") })()`)
			if !same {
				t.Error(`"Reject all" is not as prominent as "Accept all"`)
			}
			browsertest.Axe(t, ctx, "banner "+lang)
			browsertest.Screenshot(t, ctx, dir, "sdk-banner-"+lang)

			click(t, ctx, `.stw-banner [data-act="prefs"]`)
			waitFor(t, ctx, "the dialog", `!!document.querySelector("dialog.stw-dialog[open]")`)
			if got := browsertest.Text(t, ctx, `label[for="stw-p-analytics"]`); got != w[2] {
				t.Errorf("analytics label %q, want %q", got, w[2])
			}
			browsertest.Axe(t, ctx, "preferences "+lang)
			browsertest.Screenshot(t, ctx, dir, "sdk-preferences-"+lang)
			noCSPViolations(t, ctx)
		})
	}
}

// TestOriginNotAllowed: the same page on a site the product does not list
// gets no banner data and no way to write: the browser's preflight is
// refused, the SDK shows nothing and runs nothing, and the ledger stays
// empty.
func TestOriginNotAllowed(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	other := &http.Server{Handler: http.HandlerFunc(s.serveHost), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = other.Serve(ln) }()
	t.Cleanup(func() { _ = other.Close() })
	s.page("/", pageOpts{Region: "DE"})
	url := fmt.Sprintf("http://localhost:%d/", ln.Addr().(*net.TCPAddr).Port)

	ctx := browsertest.Start(t).Tab(t)
	browsertest.Must(t, ctx, "open "+url, chromedp.Navigate(url))
	browsertest.Eval[bool](t, ctx, `steward.consent.ready.then(() => true)`)
	if browsertest.Eval[bool](t, ctx, `steward.consent.banner() !== null || !!document.querySelector(".stw-banner")`) {
		t.Error("the SDK got banner data on a site the product does not list")
	}
	visitor := subject(t, ctx)
	res := browsertest.Eval[string](t, ctx, fmt.Sprintf(`fetch(%q + "/v1/consents", {method: "POST", headers: {Authorization: "Bearer %s", "Content-Type": "application/json"},
		body: JSON.stringify({subject: %q, purpose: "marketing", state: "granted", source: "web_banner", notice_version: "2.0"})}).then(r => "status " + r.status, e => "blocked")`,
		s.steward, s.key, visitor))
	if res != "blocked" {
		t.Errorf("a write from an unlisted site was let through: %s", res)
	}
	for _, p := range []string{"analytics", "functional", "marketing"} {
		if !inert(t, ctx, p) {
			t.Errorf("%s ran on an unlisted site", p)
		}
	}
	if n := len(s.history(visitor)); n != 0 {
		t.Errorf("%d events recorded from an unlisted site", n)
	}
}
