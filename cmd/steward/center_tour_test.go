package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/steward-privacy/steward/internal/browsertest"
	"github.com/steward-privacy/steward/internal/dsar"
)

// TestPrivacyCenterEveryPageEveryLanguage walks every page of the privacy
// center in English, Russian and Uzbek (home, the request form and the
// agent's, the form with errors, the code page, the status page, the access
// page of another browser, sign-in, its code page and My consent): each in
// the language asked for, with no WCAG 2.1 AA violation, and a screenshot
// (center-tour-<page>-<lang>.png in var/screenshots; make screenshots puts
// them in docs/screenshots).
func TestPrivacyCenterEveryPageEveryLanguage(t *testing.T) {
	t.Parallel()
	g := newCenterRig(t)
	b := browsertest.Start(t)
	base := g.r.base
	headings := map[string]map[string]string{ // page → language → its h1
		"form":  {"en": "Make a privacy request", "ru": "Подать запрос о персональных данных", "uz": "Shaxsiy maʼlumotlar boʻyicha soʻrov"},
		"agent": {"en": "Make a request for someone else", "ru": "Запрос от имени другого человека", "uz": "Boshqa shaxs nomidan soʻrov"},
	}
	for _, lang := range []string{"en", "ru", "uz"} {
		t.Run(lang, func(t *testing.T) {
			ctx := b.Tab(t)
			visit := func(page, path string) {
				t.Helper()
				openPage(t, ctx, base, path, page+" ("+lang+")")
				if got := browsertest.Eval[string](t, ctx, `document.documentElement.lang`); got != lang {
					t.Fatalf("%s: page language %q, want %s", page, got, lang)
				}
				if want := headings[page][lang]; want != "" {
					if h := browsertest.Text(t, ctx, "h1"); h != want {
						t.Errorf("%s: heading %q, want %q", page, h, want)
					}
				}
				browsertest.Screenshot(t, ctx, screenshots(t), "center-tour-"+page+"-"+lang)
			}
			after := func(page string) {
				t.Helper()
				browsertest.Axe(t, ctx, page+" ("+lang+")")
				browsertest.Screenshot(t, ctx, screenshots(t), "center-tour-"+page+"-"+lang)
			}
			visit("home", "/privacy/web/?lang="+lang)
			visit("agent", "/privacy/web/request?agent=1")
			visit("form", "/privacy/web/request")
			// The form sent empty: every problem named, in this language.
			browsertest.Must(t, ctx, "focus submit", chromedp.Focus(chromedp.CSS("form button[type=submit]")))
			submit(t, ctx, "send the empty form")
			if n := browsertest.Eval[int](t, ctx, `document.querySelectorAll('#errors li').length`); n < 2 {
				t.Fatalf("empty form: %d errors listed", n)
			}
			after("errors")
			addr := "tour-" + lang + "@example.com"
			browsertest.Must(t, ctx, "fill the form",
				chromedp.Click(chromedp.CSS(`#type-access`)),
				chromedp.SendKeys(chromedp.ID("email"), addr),
				chromedp.SetValue(chromedp.ID("region"), "DE"),
				chromedp.Focus(chromedp.ID("email")))
			submit(t, ctx, "send the form")
			after("verify")
			browsertest.Must(t, ctx, "enter the code", chromedp.SendKeys(chromedp.ID("code"), g.lastCode(addr)), chromedp.Focus(chromedp.ID("code")))
			submit(t, ctx, "send the code")
			loc := browsertest.Location(t, ctx)
			id := loc[strings.LastIndex(loc, "/")+1:]
			if !dsar.ValidID(id) {
				t.Fatalf("after the code: %s", loc)
			}
			after("status")
			other := b.Tab(t)
			openPage(t, other, base, "/privacy/web/requests/"+id+"?lang="+lang, "access page ("+lang+")")
			browsertest.Screenshot(t, other, screenshots(t), "center-tour-access-"+lang)

			visit("signin", "/privacy/web/signin")
			browsertest.Must(t, ctx, "sign in", chromedp.SendKeys(chromedp.ID("email"), addr), chromedp.Focus(chromedp.ID("email")))
			submit(t, ctx, "send the sign-in code")
			after("signin-code")
			browsertest.Must(t, ctx, "enter the sign-in code", chromedp.SendKeys(chromedp.ID("code"), g.lastCode(addr)), chromedp.Focus(chromedp.ID("code")))
			submit(t, ctx, "sign in")
			if loc := browsertest.Location(t, ctx); !strings.HasSuffix(loc, "/privacy/web/consent") {
				t.Fatalf("after sign-in: %s", loc)
			}
			after("consent")
		})
	}
}
