package main

import (
	"archive/zip"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/recordstore"
	"github.com/steward-privacy/steward/internal/browsertest"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/notify/resendtest"
	"github.com/steward-privacy/steward/internal/receipt"
	"github.com/steward-privacy/steward/internal/telegram"
	"github.com/steward-privacy/steward/internal/testutil"
)

// The privacy center in real Chromium, against a whole Steward (real
// PostgreSQL, the request engine and its jobs, the outbox and the Resend
// stand-in that receives the codes): a person's flows from the form to the
// downloaded ZIP, by keyboard alone where it matters, with axe-core on
// every page and screenshots in three languages.

// newCenterRig is the requests rig on a known address, so the public URL
// (download and status links) points at the replica itself.
func newCenterRig(t *testing.T) *requestsRig {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	public := "http://" + ln.Addr().String()
	fake := resendtest.New(t)
	e := newEnv(t, map[string]string{
		"STEWARD_RESEND_API_KEY": "re_test", "STEWARD_RESEND_BASE_URL": fake.URL, "STEWARD_EMAIL_FROM": "Privacy <privacy@example.com>",
		"STEWARD_TELEGRAM_BOT_TOKEN": testBotToken, "STEWARD_STAFF_EMAIL": "dpo@example.com",
		"STEWARD_PUBLIC_URL": public,
	})
	e.listen = ln
	store := recordstore.New(e.pool, recordstore.Options{HashKey: []byte("0123456789abcdef0123456789abcdef")})
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := e.start(func(a *application) {
		a.connectors["app_db"] = store
		a.connectors["bot_db"] = store
	})
	return &requestsRig{t: t, e: e, r: r, fake: fake, store: store}
}

func screenshots(t *testing.T) string { return browsertest.ScreenshotDir(testutil.ModuleRoot(t)) }

// page opens path and runs axe-core on it.
func openPage(t *testing.T, ctx context.Context, base, path, name string) {
	t.Helper()
	browsertest.Must(t, ctx, "open "+path, chromedp.Navigate(base+path))
	browsertest.Axe(t, ctx, name)
}

func TestPrivacyCenterAccessRequestByKeyboard(t *testing.T) {
	t.Parallel()
	g := newCenterRig(t)
	b := browsertest.Start(t)
	ctx := b.Tab(t)
	base := g.r.base
	put := func(addr, id string) {
		em := connectors.Identity{Type: "email", Value: addr}
		user := connectors.Identity{Type: "user", Value: id}
		if err := g.store.Put(context.Background(), "app_db", "users", id, []connectors.Identity{em, user}, map[string]any{"id": id, "email": addr, "name": "Ann Lee"}); err != nil {
			t.Fatal(err)
		}
		if err := g.store.Link(context.Background(), em, user); err != nil {
			t.Fatal(err)
		}
	}
	put("ann@example.com", "u-ann")
	put("bob@example.com", "u-bob")

	// The home page, then the form, reached and filled by keyboard only.
	openPage(t, ctx, base, "/privacy/", "home")
	browsertest.Screenshot(t, ctx, screenshots(t), "center-home-en")
	browsertest.Must(t, ctx, "open form", chromedp.Navigate(base+"/privacy/web/request"))
	browsertest.Axe(t, ctx, "request form")
	browsertest.Screenshot(t, ctx, screenshots(t), "center-request-en")
	browsertest.TabTo(t, ctx, 30, "the first request type", func(f browsertest.Focused) bool { return f.Name == "type" })
	// Arrow keys move between radios and select: the first is access.
	browsertest.Press(t, ctx, " ")
	browsertest.TabTo(t, ctx, 30, "the email field", func(f browsertest.Focused) bool { return f.ID == "email" })
	browsertest.Press(t, ctx, "ann@example.com")
	// The region is preselected from the browser's language (en-US → US).
	if got := browsertest.Eval[string](t, ctx, `document.getElementById('region').value`); got != "US" {
		t.Fatalf("region preselected %q, want US from Accept-Language", got)
	}
	browsertest.TabTo(t, ctx, 10, "the submit button", func(f browsertest.Focused) bool { return f.Tag == "button" && f.Type == "submit" })
	submit(t, ctx, "submit")
	if loc := browsertest.Location(t, ctx); !strings.HasSuffix(loc, "/verify") {
		t.Fatalf("after submitting: %s: %s", loc, browsertest.Eval[string](t, ctx, `document.querySelector('main').innerText`))
	}
	browsertest.Axe(t, ctx, "verify")
	browsertest.Screenshot(t, ctx, screenshots(t), "center-verify-en")

	// A wrong code first: the page says so and nothing moves.
	browsertest.TabTo(t, ctx, 20, "the code field", func(f browsertest.Focused) bool { return f.ID == "code" })
	browsertest.Press(t, ctx, "000000")
	submit(t, ctx, "submit wrong code")
	if msg := browsertest.Text(t, ctx, "#errors"); !strings.Contains(msg, "not right") {
		t.Fatalf("wrong code page says %q", msg)
	}
	browsertest.Axe(t, ctx, "verify with an error")
	code := g.lastCode("ann@example.com")
	browsertest.TabTo(t, ctx, 20, "the code field", func(f browsertest.Focused) bool { return f.ID == "code" })
	browsertest.Press(t, ctx, code)
	submit(t, ctx, "submit code")
	loc := browsertest.Location(t, ctx)
	id := loc[strings.LastIndex(loc, "/")+1:]
	if !dsar.ValidID(id) {
		t.Fatalf("after the code: %s", loc)
	}
	g.waitFor(id, dsar.InProgress, dsar.Completed)
	g.finishManual(id)
	g.waitFor(id, dsar.Completed)
	openPage(t, ctx, base, "/privacy/web/requests/"+id, "status completed")
	browsertest.Screenshot(t, ctx, screenshots(t), "center-status-en")
	if got := browsertest.Text(t, ctx, ".state"); got != "Done" {
		t.Fatalf("state shown %q", got)
	}

	// The download: by keyboard, into a real file, a ZIP with Ann's data
	// and nobody else's.
	dir := t.TempDir()
	browsertest.AllowDownloads(t, ctx, dir)
	browsertest.TabTo(t, ctx, 30, "the download link", func(f browsertest.Focused) bool { return f.ID == "download" })
	browsertest.Press(t, ctx, kb.Enter)
	zipPath := browsertest.WaitFile(t, dir, ".zip", 30*time.Second)
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatalf("downloaded package is not a ZIP: %v", err)
	}
	defer zr.Close()
	var data []byte
	for _, f := range zr.File {
		if f.Name == "data.json" {
			rc, err := f.Open()
			if err != nil {
				t.Fatal(err)
			}
			data, err = io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if !strings.Contains(string(data), "u-ann") || strings.Contains(string(data), "bob@example.com") || strings.Contains(string(data), "u-bob") {
		t.Fatalf("data.json holds the wrong records: %.300s", data)
	}

	// Another browser (no token) sees the access page, not the request.
	other := b.Tab(t)
	openPage(t, other, base, "/privacy/web/requests/"+id, "access page")
	if h := browsertest.Text(t, other, "h1"); h != "Open your request" {
		t.Fatalf("a browser without the token sees %q", h)
	}
	browsertest.Screenshot(t, other, screenshots(t), "center-access-en")
	if strings.Contains(browsertest.Eval[string](t, other, `document.body.innerText`), "Done") {
		t.Fatal("a browser without the token sees the request's state")
	}
}

func TestPrivacyCenterConsentMiniAppAndBadInput(t *testing.T) {
	t.Parallel()
	g := newCenterRig(t)
	b := browsertest.Start(t)
	base := g.r.base

	t.Run("my consent: sign in by code, allow, withdraw, receipt", func(t *testing.T) {
		ctx := b.Tab(t)
		openPage(t, ctx, base, "/privacy/web/consent?lang=ru", "consent redirects to sign-in")
		if h := browsertest.Text(t, ctx, "h1"); h != "Войдите, чтобы увидеть свои согласия" {
			t.Fatalf("sign-in page heading %q", h)
		}
		browsertest.Screenshot(t, ctx, screenshots(t), "center-signin-ru")
		browsertest.TabTo(t, ctx, 30, "the email field", func(f browsertest.Focused) bool { return f.ID == "email" })
		browsertest.Press(t, ctx, "cleo@example.com")
		submit(t, ctx, "send sign-in code")
		browsertest.Axe(t, ctx, "sign-in code")
		browsertest.TabTo(t, ctx, 30, "the code field", func(f browsertest.Focused) bool { return f.ID == "code" })
		browsertest.Press(t, ctx, g.lastCode("cleo@example.com"))
		submit(t, ctx, "sign in")
		if loc := browsertest.Location(t, ctx); !strings.HasSuffix(loc, "/privacy/web/consent") {
			t.Fatalf("after sign-in: %s", loc)
		}
		browsertest.Axe(t, ctx, "my consent")
		browsertest.Screenshot(t, ctx, screenshots(t), "center-consent-ru")
		// Allow analytics by keyboard: its button is labelled with the purpose.
		browsertest.TabTo(t, ctx, 40, "allow analytics", func(f browsertest.Focused) bool {
			return f.Tag == "button" && strings.Contains(f.Label, "Производительность")
		})
		submit(t, ctx, "allow analytics")
		if st := browsertest.Text(t, ctx, "#purpose-analytics .state strong"); st != "Разрешено" {
			t.Fatalf("analytics shows %q after allowing", st)
		}
		check := func(want string) {
			t.Helper()
			res := g.r.do("GET", "/v1/consent/check?subject=email:cleo@example.com&purpose=analytics&jurisdiction=DE", g.e.keys["frontend"], nil)
			var d struct {
				Allowed bool `json:"allow"`
			}
			res.json(t, &d)
			if (want == "granted") != d.Allowed {
				t.Fatalf("consent check after %s: %s", want, res.body)
			}
		}
		check("granted")
		// Withdrawing is one button, like allowing.
		browsertest.TabTo(t, ctx, 40, "withdraw analytics", func(f browsertest.Focused) bool {
			return f.Tag == "button" && strings.HasPrefix(f.Label, "Отозвать") && strings.Contains(f.Label, "Производительность")
		})
		submit(t, ctx, "withdraw analytics")
		check("withdrawn")
		if st := browsertest.Text(t, ctx, "#purpose-analytics .state strong"); st != "Не разрешено" {
			t.Fatalf("analytics shows %q after withdrawing", st)
		}
		// The receipt of the newest event verifies against the public keys.
		href := browsertest.Eval[string](t, ctx, `document.querySelector('tr.saved a').getAttribute('href')`)
		cookies := browsertest.Eval[string](t, ctx, `document.cookie`) // HttpOnly: none visible to script
		if strings.Contains(cookies, "steward_session") {
			t.Fatal("the session cookie is readable by script")
		}
		body := fetchInTab(t, ctx, href)
		var rc struct {
			JWS     string `json:"jws"`
			Receipt struct {
				State string `json:"state"`
			} `json:"receipt"`
		}
		if err := json.Unmarshal([]byte(body), &rc); err != nil {
			t.Fatalf("receipt %s: %v: %s", href, err, regexp.MustCompile(`<main[\s\S]*</main>`).FindString(body))
		}
		jwks := g.r.do("GET", "/v1/consents/receipts/jwks.json", "", nil)
		var set receipt.JWKS
		jwks.json(t, &set)
		payload, err := receipt.Verify(rc.JWS, set)
		if err != nil || !strings.Contains(string(payload), `"withdrawn"`) {
			t.Fatalf("receipt does not verify as a withdrawal: %v %s", err, payload)
		}
	})

	t.Run("mini app: signed initData signs in, forged is refused", func(t *testing.T) {
		ctx := b.Tab(t)
		user := `{"id":5550002,"first_name":"Dilnoza","language_code":"uz"}`
		initData := telegram.Sign(map[string]string{"user": user, "auth_date": strconv.FormatInt(time.Now().Unix(), 10), "query_id": "AAH1"}, testBotToken)
		browsertest.Must(t, ctx, "launch", chromedp.Navigate(base+"/privacy/bot/tg#tgWebAppData="+url.QueryEscape(initData)+"&tgWebAppVersion=8.0"))
		deadline := time.Now().Add(10 * time.Second)
		for !strings.HasSuffix(browsertest.Location(t, ctx), "/privacy/bot/") {
			if time.Now().After(deadline) {
				t.Fatalf("mini app did not sign in: %s", browsertest.Location(t, ctx))
			}
			time.Sleep(50 * time.Millisecond)
		}
		if lang := browsertest.Eval[string](t, ctx, `document.documentElement.lang`); lang != "uz" {
			t.Fatalf("mini app language %q, want Telegram's uz", lang)
		}
		browsertest.Axe(t, ctx, "mini app home")
		browsertest.Screenshot(t, ctx, screenshots(t), "center-miniapp-uz")
		openPage(t, ctx, base, "/privacy/bot/request?type=erasure", "mini app request form")
		if who := browsertest.Text(t, ctx, ".who"); !strings.Contains(who, "5550002") {
			t.Fatalf("form does not show the Telegram account: %q", who)
		}
		browsertest.Must(t, ctx, "choose region", chromedp.SetValue(chromedp.ID("region"), "GB"))
		browsertest.Must(t, ctx, "focus submit", chromedp.Focus(chromedp.CSS("form button[type=submit]")))
		submit(t, ctx, "send bot request")
		loc := browsertest.Location(t, ctx)
		id := loc[strings.LastIndex(loc, "/")+1:]
		if !dsar.ValidID(id) {
			t.Fatalf("after the bot request: %s", loc)
		}
		d := g.detail(id)
		if d.Channel != dsar.ChannelBot || d.Type != "erasure" {
			t.Fatalf("request made as %s %s", d.Channel, d.Type)
		}
		browsertest.Axe(t, ctx, "mini app status")

		// Forged: same data, another bot's signature.
		forged := b.Tab(t)
		bad := telegram.Sign(map[string]string{"user": user, "auth_date": strconv.FormatInt(time.Now().Unix(), 10)}, "999999:not-our-bot")
		browsertest.Must(t, forged, "launch forged", chromedp.Navigate(base+"/privacy/bot/tg#tgWebAppData="+url.QueryEscape(bad)))
		deadline = time.Now().Add(10 * time.Second)
		for !strings.HasSuffix(browsertest.Location(t, forged), "/tg/session") {
			if time.Now().After(deadline) {
				t.Fatalf("forged initData: %s", browsertest.Location(t, forged))
			}
			time.Sleep(50 * time.Millisecond)
		}
		if h := browsertest.Text(t, forged, "main p"); !strings.Contains(h, "Telegram") {
			t.Fatalf("forged initData page says %q", h)
		}
	})

	t.Run("bad input: a clear page in the person's language, nothing changed", func(t *testing.T) {
		before := countRows(t, g.e.pool, "privacy_requests")
		cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		post := func(path string, form url.Values, cookie string) (int, string) {
			req, _ := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept-Language", "uz")
			if cookie != "" {
				req.Header.Set("Cookie", cookie)
			}
			res, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			buf, _ := io.ReadAll(res.Body)
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("POST %s answered %s", path, ct)
			}
			if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("POST %s: Cache-Control %q", path, cc)
			}
			return res.StatusCode, string(buf)
		}
		// No CSRF token, a forged one, a cross-site Origin.
		if code, body := post("/privacy/web/request", url.Values{"type": {"access"}, "email": {"a@example.com"}, "region": {"DE"}}, ""); code != 403 || !strings.Contains(body, "Shakl muddati tugagan") {
			t.Errorf("no CSRF: %d", code)
		}
		if code, _ := post("/privacy/web/request", url.Values{"csrf": {"forged"}, "type": {"access"}, "email": {"a@example.com"}, "region": {"DE"}}, "steward_csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"); code != 403 {
			t.Errorf("forged CSRF: %d", code)
		}
		// Real token, bad fields: 422 with the messages in Uzbek.
		ctx := b.Tab(t)
		openPage(t, ctx, base, "/privacy/web/request?lang=uz", "form in uz")
		browsertest.Screenshot(t, ctx, screenshots(t), "center-request-uz")
		browsertest.Must(t, ctx, "fill bad",
			chromedp.SetValue(chromedp.ID("email"), "not-an-email"),
			chromedp.SetValue(chromedp.ID("region"), ""),
			chromedp.Focus(chromedp.CSS("form button[type=submit]")))
		submit(t, ctx, "submit bad form")
		errs := browsertest.Text(t, ctx, "#errors")
		for _, want := range []string{"Nima qilmoqchi ekaningizni tanlang", "Toʻgʻri elektron pochta manzilini kiriting", "Qayerda yashashingizni tanlang"} {
			if !strings.Contains(errs, want) {
				t.Errorf("errors %q lack %q", errs, want)
			}
		}
		if got := browsertest.Eval[string](t, ctx, `document.activeElement.id`); got != "errors" {
			t.Errorf("focus after a refused form is on %q, want the error summary", got)
		}
		browsertest.Axe(t, ctx, "form with errors")
		browsertest.Screenshot(t, ctx, screenshots(t), "center-request-errors-uz")
		for _, p := range []string{"/privacy/web/requests/not-a-uuid", "/privacy/nope/", "/privacy/web/requests/00000000-0000-0000-0000-000000000000/verify", "/privacy/status?request=x"} {
			res, err := http.Get(base + p)
			if err != nil {
				t.Fatal(err)
			}
			buf, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 404 || !strings.Contains(string(buf), "<html") {
				t.Errorf("GET %s: %d %.100s", p, res.StatusCode, buf)
			}
		}
		if after := countRows(t, g.e.pool, "privacy_requests"); after != before {
			t.Errorf("bad input made %d requests", after-before)
		}
	})
}

// fetchInTab fetches path with the tab's cookies and returns the body.
func fetchInTab(t *testing.T, ctx context.Context, path string) string {
	t.Helper()
	return browsertest.Eval[string](t, ctx, `fetch(`+strconv.Quote(path)+`, {credentials: 'same-origin'}).then(r => r.text())`)
}

// submit presses Enter on what has focus and waits for the page it loads.
func submit(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.KeyEvent(kb.Enter))); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
