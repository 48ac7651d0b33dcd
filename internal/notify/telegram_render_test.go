package notify

import (
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/steward-privacy/steward/internal/notify/telegramtest"
)

// mustRenderTelegram renders a Telegram text and parses it as sendMessage would,
// failing the test if Telegram would refuse it.
func mustRenderTelegram(t *testing.T, name, lang string, data map[string]string) (html, plain string, entities []telegramtest.Entity) {
	t.Helper()
	html, err := renderTelegram(name, lang, data)
	if err != nil {
		t.Fatalf("render %s/telegram/%s: %v", lang, name, err)
	}
	plain, entities, err = telegramtest.ParseHTML(html)
	if err != nil {
		t.Fatalf("%s/telegram/%s is not valid for Telegram: %v\n%s", lang, name, err, html)
	}
	return html, plain, entities
}

func links(entities []telegramtest.Entity) []string {
	var out []string
	for _, e := range entities {
		if e.Type == "text_link" {
			out = append(out, e.URL)
		}
	}
	return out
}

func TestTelegramTemplatesRenderInEveryLanguage(t *testing.T) {
	t.Parallel()
	if len(telegramTemplates) != 6 {
		t.Fatalf("%d Telegram templates, want the 6 person-facing ones", len(telegramTemplates))
	}
	for _, name := range telegramTemplates {
		for _, lang := range Languages {
			full := sampleData(name)
			if name == TemplateRequestCompleted {
				full["download_expires"] = "2030-03-01"
			}
			for variant, data := range map[string]map[string]string{"full": full, "required_only": requiredOnly(name, sampleData(name))} {
				t.Run(name+"/"+lang+"/"+variant, func(t *testing.T) {
					t.Parallel()
					html, plain, entities := mustRenderTelegram(t, name, lang, data)
					for _, bad := range []string{"{{", "}}", "<no value>", "ZgotmplZ", "%!"} {
						if strings.Contains(html, bad) {
							t.Errorf("text contains %q:\n%s", bad, html)
						}
					}
					for _, k := range []string{"request_id", "code", "due_date", "new_due_date", "authority", "reason", "download_expires"} {
						if v := data[k]; v != "" && !strings.Contains(plain, v) {
							t.Errorf("%s value %q missing from what the person sees:\n%s", k, v, plain)
						}
					}
					if name != TemplateVerificationCode || data["request_type"] != "" {
						if n := requestTypeNames[lang][data["request_type"]]; !strings.Contains(plain, n) {
							t.Errorf("text lacks the localized request type %q", n)
						}
					}
					// Links are tappable text, with the URL exactly as given.
					var want []string
					for _, k := range []string{"download_url", "status_url", "notice_url", "manage_url"} {
						if v := data[k]; v != "" {
							want = append(want, v)
						}
					}
					if got := links(entities); !slices.Equal(got, want) {
						t.Errorf("links = %q, want %q", got, want)
					}
					if data["summary"] != "" && !strings.Contains(plain, "All are included in the export.") {
						t.Errorf("summary missing:\n%s", plain)
					}
					if strings.Contains(html, "\n\n\n") || strings.HasPrefix(html, "\n") || strings.HasSuffix(html, "\n") {
						t.Errorf("text is not tidy:\n%q", html)
					}
					switch lang {
					case "ru":
						if !hasCyrillic(plain) {
							t.Error("Russian message is not in Cyrillic")
						}
					case "uz":
						if hasCyrillic(plain) {
							t.Error("Uzbek message is not in the Latin script")
						}
					}
				})
			}
		}
	}
}

// TestTelegramTranslationsAreNotEnglishCopies checks that no English sentence
// is left in the Russian and Uzbek Telegram texts.
func TestTelegramTranslationsAreNotEnglishCopies(t *testing.T) {
	t.Parallel()
	englishMarkers := []string{"Hello", "Request", "request", "your", "the ", "This ", "data", "code", "message"}
	for _, name := range telegramTemplates {
		data := sampleData(name)
		_, en, _ := mustRenderTelegram(t, name, "en", data)
		for _, lang := range []string{"ru", "uz"} {
			_, plain, _ := mustRenderTelegram(t, name, lang, data)
			if plain == en {
				t.Errorf("%s/%s is identical to English", lang, name)
			}
			rest := plain
			vals := slices.Collect(maps.Values(data))
			slices.SortFunc(vals, func(a, b string) int { return len(b) - len(a) })
			for _, v := range vals {
				rest = strings.ReplaceAll(rest, v, "")
			}
			for _, marker := range englishMarkers {
				if strings.Contains(rest, marker) {
					t.Errorf("%s/%s still has English (%q):\n%s", lang, name, marker, plain)
				}
			}
		}
	}
}

// TestTelegramDenialStatesRemedies: a refusal by Telegram tells the person
// of both remedies (GDPR Art. 12(4)) in every language, as the email does.
func TestTelegramDenialStatesRemedies(t *testing.T) {
	t.Parallel()
	phrases := map[string][]string{
		"en": {"lodge a complaint with a supervisory authority", "judicial remedy"},
		"ru": {"подать жалобу в надзорный орган", "в суд"},
		"uz": {"nazorat qiluvchi organga", "shikoyat berish", "sudga murojaat qilish"},
	}
	for _, lang := range Languages {
		d := sampleData(TemplateRequestDenied)
		d["authority"] = "Roskomnadzor"
		_, plain, _ := mustRenderTelegram(t, TemplateRequestDenied, lang, d)
		for _, p := range append(phrases[lang], "Roskomnadzor", d["reason"]) {
			if !strings.Contains(plain, p) {
				t.Errorf("%s denial lacks %q:\n%s", lang, p, plain)
			}
		}
	}
}

func TestTelegramRenderEscapes(t *testing.T) {
	t.Parallel()
	d := sampleData(TemplateRequestDenied)
	clean := len(func() []telegramtest.Entity {
		_, _, e := mustRenderTelegram(t, TemplateRequestDenied, "en", d)
		return e
	}())
	d["reason"] = `<script>alert("x")</script> & <b>bold</b> <a href="https://evil.example/">x</a> &amp;`
	d["request_id"] = `R<1>`
	html, plain, entities := mustRenderTelegram(t, TemplateRequestDenied, "en", d)
	if !strings.Contains(plain, d["reason"]) || !strings.Contains(plain, "R<1>") {
		t.Errorf("the person does not see the values as given:\n%s", plain)
	}
	if len(entities) != clean || strings.Contains(html, "evil.example/\">") {
		t.Errorf("a value became markup (%d entities, want %d):\n%s", len(entities), clean, html)
	}
}

func TestTelegramRenderFitsTheLimit(t *testing.T) {
	t.Parallel()
	units := func(s string) int { return len(utf16.Encode([]rune(s))) }

	t.Run("longest_reason_shortened_with_ellipsis", func(t *testing.T) {
		t.Parallel()
		for _, lang := range Languages {
			for _, name := range []string{TemplateRequestDenied, TemplateRequestExtended} {
				d := sampleData(name)
				d["reason"] = strings.Repeat("x", maxLongValue) // the longest a reason may be, in characters
				_, plain, _ := mustRenderTelegram(t, name, lang, d)
				if n := units(plain); n > maxTelegramText || n < maxTelegramText-2 {
					t.Errorf("%s/%s: %d characters, want just within %d", lang, name, n, maxTelegramText)
				}
				if !strings.Contains(plain, "x…") || !strings.Contains(plain, d["request_id"]) {
					t.Errorf("%s/%s: reason not cut with an ellipsis, or the rest lost:\n%.300s", lang, name, plain)
				}
				again, _ := renderTelegram(name, lang, d)
				if first, _ := renderTelegram(name, lang, d); again != first {
					t.Errorf("%s/%s: shortening is not deterministic", lang, name)
				}
			}
		}
	})

	t.Run("summary_gives_way_before_the_link", func(t *testing.T) {
		t.Parallel()
		d := sampleData(TemplateRequestCompleted)
		d["summary"] = strings.Repeat("y", maxLongValue)
		_, plain, entities := mustRenderTelegram(t, TemplateRequestCompleted, "ru", d)
		if units(plain) > maxTelegramText || !strings.Contains(plain, "y…") {
			t.Errorf("summary not shortened: %d characters", units(plain))
		}
		if got := links(entities); len(got) != 2 || got[0] != d["download_url"] {
			t.Errorf("links = %v, want the download and status links kept", got)
		}
	})

	t.Run("short_texts_untouched", func(t *testing.T) {
		t.Parallel()
		d := sampleData(TemplateRequestDenied)
		_, plain, _ := mustRenderTelegram(t, TemplateRequestDenied, "en", d)
		if strings.Contains(plain, "…") {
			t.Errorf("a short reason was shortened:\n%s", plain)
		}
	})
}

func TestTelegramRenderRefuses(t *testing.T) {
	t.Parallel()
	secret := "SECRET-VALUE"
	for name, c := range map[string]struct {
		template string
		edit     func(map[string]string)
		want     string
	}{
		"staff_reminder_is_email_only": {TemplateStaffReminder, func(map[string]string) {}, TemplateStaffReminder},
		"unknown_template":             {"newsletter", func(map[string]string) {}, "newsletter"},
		"missing_key":                  {TemplateRequestDenied, func(d map[string]string) { delete(d, "authority") }, `"authority"`},
		"bad_url":                      {TemplateRequestCompleted, func(d map[string]string) { d["download_url"] = "javascript:" + secret }, `"download_url"`},
		"bad_type":                     {TemplateRequestReceived, func(d map[string]string) { d["request_type"] = secret }, `"request_type"`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := sampleData(c.template)
			c.edit(d)
			_, err := renderTelegram(c.template, "en", d)
			if !errors.Is(err, ErrInvalidTelegram) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrInvalidTelegram naming %s", err, c.want)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "REQ-2030") {
				t.Errorf("err = %v repeats a value", err)
			}
		})
	}
}

// FuzzRenderTelegram feeds arbitrary values to every Telegram text: what
// is accepted is markup the Bot API takes (telegramtest.ParseHTML) within
// its length limit, shows the values as given, and renders the same twice.
func FuzzRenderTelegram(f *testing.F) {
	f.Add(uint8(0), "en", "REQ-1", "reason", "https://x.example/a?b=1&c=2", "123456")
	f.Add(uint8(2), "ru", "R<1>", "<script>alert(1)</script> &amp; <b>", "javascript:alert(1)", "12345")
	f.Add(uint8(3), "uz-Cyrl", "{{.code}}", "line\nbreak\r\n\ttab", "http://[::1]:80/", "000000")
	f.Add(uint8(4), "en", "R", strings.Repeat("x", maxLongValue), "https://x.example/", "000000")
	f.Fuzz(func(t *testing.T, which uint8, lang, id, text, link, code string) {
		name := telegramTemplates[int(which)%len(telegramTemplates)]
		data := map[string]string{
			"request_id": id, "request_type": "objection", "due_date": "2030-01-31", "new_due_date": "2030-03-01",
			"status_url": link, "download_url": link, "code": code, "expires_minutes": "10",
			"summary": text, "reason": text, "authority": id,
		}
		html, err := renderTelegram(name, lang, data)
		if err != nil {
			if !errors.Is(err, ErrInvalidTelegram) {
				t.Errorf("render failed for a reason other than the input: %v", err)
			}
			return
		}
		plain, entities, err := telegramtest.ParseHTML(html)
		if err != nil {
			t.Fatalf("Telegram would refuse %q: %v", html, err)
		}
		if n := len(utf16.Encode([]rune(plain))); n > maxTelegramText {
			t.Errorf("%d characters", n)
		}
		if strings.TrimSpace(id) != "" && !strings.Contains(plain, strings.TrimSpace(id)) {
			t.Errorf("the request id %q is not shown as given", id)
		}
		// html/template may percent-encode a link (a space, a non-ASCII
		// letter); it must stay an absolute http(s) URL.
		for _, l := range links(entities) {
			if u, err := url.Parse(l); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Errorf("link %q from %q", l, link)
			}
		}
		if again, _ := renderTelegram(name, lang, data); again != html {
			t.Error("rendering is not deterministic")
		}
	})
}
