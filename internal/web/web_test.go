package web

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

// Every message exists in every language, and no translation is left in
// English by mistake (the few words that are the same are listed).
func TestCatalogComplete(t *testing.T) {
	same := map[string]bool{"form_change_none": true} // a dash in every language
	en := messages["en"]
	for _, lang := range []string{"ru", "uz"} {
		for k := range en {
			v, ok := messages[lang][k]
			if !ok {
				t.Errorf("%s lacks %q", lang, k)
				continue
			}
			if v == en[k] && !same[k] && !strings.HasPrefix(k, "cat_") && lang == "ru" {
				t.Errorf("%s %q is the English text", lang, k)
			}
			if strings.Count(v, "%") != strings.Count(en[k], "%") {
				t.Errorf("%s %q has other format verbs than English", lang, k)
			}
		}
		for k := range messages[lang] {
			if _, ok := en[k]; !ok {
				t.Errorf("%s has %q, which English lacks", lang, k)
			}
		}
	}
	if got := slices.Sorted(maps.Keys(messages)); !slices.Equal(got, languages) {
		t.Errorf("catalog languages %v", got)
	}
}

func TestNegotiate(t *testing.T) {
	for in, want := range map[string]string{
		"": "en", "ru-RU,ru;q=0.9": "ru", "uz-Latn-UZ": "uz", "de-DE,ru;q=0.5": "ru", "fr": "en", "garbage;;;q=x": "en", "uz": "uz",
	} {
		if got := negotiate(in); got != want {
			t.Errorf("negotiate(%q) = %q, want %q", in, got, want)
		}
	}
}

var emailCases = map[string]bool{
	"ann@example.com": true, "a.b+c@sub.example.org": true, "ann@localhost": false, "Ann <ann@example.com>": false,
	"ann@example.com ": false, "": false, "ann": false, "ann@exa mple.com": false, "ann@example.com\x00": false,
	strings.Repeat("a", 250) + "@example.com": false,
}

func TestValidEmail(t *testing.T) {
	for in, want := range emailCases {
		if got := validEmail(in); got != want {
			t.Errorf("validEmail(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzValidEmail(f *testing.F) {
	for in := range emailCases {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validEmail(s) && (strings.ContainsAny(s, " <>\x00") || !strings.Contains(s, "@") || len(s) > 254) {
			t.Fatalf("validEmail accepted %q", s)
		}
	})
}

func TestFormatDate(t *testing.T) {
	d := time.Date(2026, 3, 5, 23, 0, 0, 0, time.UTC)
	for lang, want := range map[string]string{"en": "5 March 2026", "ru": "5 марта 2026 г.", "uz": "2026-yil 5-mart"} {
		if got := formatDate(lang, d); got != want {
			t.Errorf("%s: %q, want %q", lang, got, want)
		}
	}
}

// SiteVerify against a local stand-in of the siteverify protocol: the
// secret, the response and the client address are posted as a form, and
// only {"success": true} passes.
func TestSiteVerify(t *testing.T) {
	var gotIP string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.FormValue("secret") != "s3cret" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		gotIP = r.FormValue("remoteip")
		w.Header().Set("Content-Type", "application/json")
		if r.FormValue("response") == "human" {
			_, _ = w.Write([]byte(`{"success":true}`))
			return
		}
		_, _ = w.Write([]byte(`{"success":false,"error-codes":["invalid-input-response"]}`))
	}))
	defer srv.Close()
	c := &SiteVerify{URL: srv.URL, Secret: "s3cret", FieldName: "cf-turnstile-response"}
	ctx := context.Background()
	if err := c.Verify(ctx, "human", "198.51.100.7"); err != nil || gotIP != "198.51.100.7" {
		t.Fatalf("a passed challenge: %v (ip %q)", err, gotIP)
	}
	if err := c.Verify(ctx, "bot", "198.51.100.7"); !errors.Is(err, ErrChallenge) {
		t.Fatalf("a failed challenge: %v", err)
	}
	if err := c.Verify(ctx, "", ""); !errors.Is(err, ErrChallenge) {
		t.Fatalf("an empty response: %v", err)
	}
	bad := &SiteVerify{URL: srv.URL, Secret: "wrong", FieldName: "x"}
	if err := bad.Verify(ctx, "human", ""); err == nil {
		t.Fatal("a provider refusing the secret passed the challenge")
	}
}

// The templates parse and every page renders without a missing key.
func TestPagesParse(t *testing.T) {
	p, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"home", "request", "verify", "status", "access", "message", "signin", "consent", "miniapp"} {
		if p[want] == nil {
			t.Errorf("no page %s", want)
		}
	}
}
