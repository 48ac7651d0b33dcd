package notify

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// sampleData is a full set of values for each template, optional keys
// included, with values that are easy to spot in the output.
func sampleData(name string) map[string]string {
	all := map[string]string{
		"request_id":      "REQ-2030-0042",
		"request_type":    "access",
		"due_date":        "2030-02-01",
		"new_due_date":    "2030-04-01",
		"status_url":      "https://privacy.example.com/requests/REQ-2030-0042?t=abc&x=1",
		"download_url":    "https://privacy.example.com/download/xyz?sig=1&exp=2",
		"staff_url":       "https://steward.example.com/requests/REQ-2030-0042",
		"code":            "482913",
		"expires_minutes": "15",
		"summary":         "We found 3 records.\nAll are included in the export.",
		"reason":          "We could not verify your identity.",
		"authority":       "the Example Data Protection Authority",
		"when":            "7d",
		"product_name":    "Nano Banana Pro",
		"version":         "3.0",
		"effective_date":  "2030-05-01",
		"notice_url":      "https://steward.example.com/v1/notices/web/3.0?lang=en",
		"manage_url":      "https://privacy.example.com/privacy/web/consent",
		"system":          "Sentry",
		"identities":      "tg:123456",
		"controller":      "Nano Banana Pro",
	}
	spec := templateSpecs[name]
	out := map[string]string{}
	for _, k := range append(slices.Clone(spec.required), spec.optional...) {
		out[k] = all[k]
	}
	return out
}

// requiredOnly drops the optional keys from d.
func requiredOnly(name string, d map[string]string) map[string]string {
	out := maps.Clone(d)
	for _, k := range templateSpecs[name].optional {
		delete(out, k)
	}
	return out
}

func templateNames() []string { return slices.Sorted(maps.Keys(templateSpecs)) }

func hasCyrillic(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Cyrillic, r) {
			return true
		}
	}
	return false
}

func mustRender(t *testing.T, name, lang string, data map[string]string) renderedEmail {
	t.Helper()
	m, err := renderEmail(name, lang, data)
	if err != nil {
		t.Fatalf("render %s/%s: %v", lang, name, err)
	}
	return m
}

func TestTemplatesRenderInEveryLanguage(t *testing.T) {
	t.Parallel()
	if len(templateSpecs) != 9 {
		t.Fatalf("%d templates, want 9", len(templateSpecs))
	}
	for _, name := range templateNames() {
		for _, lang := range Languages {
			for variant, data := range map[string]map[string]string{"full": sampleData(name), "required_only": requiredOnly(name, sampleData(name))} {
				t.Run(name+"/"+lang+"/"+variant, func(t *testing.T) {
					t.Parallel()
					m := mustRender(t, name, lang, data)
					if m.Subject == "" || strings.ContainsAny(m.Subject, "\r\n") {
						t.Errorf("subject = %q, want one non-empty line", m.Subject)
					}
					for part, s := range map[string]string{"subject": m.Subject, "text": m.Text, "html": m.HTML} {
						for _, bad := range []string{"{{", "}}", "<no value>", "ZgotmplZ", "%!"} {
							if strings.Contains(s, bad) {
								t.Errorf("%s contains %q:\n%s", part, bad, s)
							}
						}
					}
					for _, k := range []string{"request_id", "code", "due_date", "new_due_date", "authority"} {
						if v := data[k]; v != "" && (!strings.Contains(m.Text, v) || !strings.Contains(m.HTML, v)) {
							t.Errorf("%s value missing from text or html", k)
						}
					}
					if !strings.Contains(m.Text, requestTypeNames[lang][data["request_type"]]) {
						t.Errorf("text lacks the localized request type %q:\n%s", requestTypeNames[lang][data["request_type"]], m.Text)
					}
					for _, k := range templateSpecs[name].optional {
						if k == "summary" {
							continue
						}
						// URLs appear raw in the text and escaped in the HTML.
						if v := data[k]; v != "" && (!strings.Contains(m.Text, v) || !strings.Contains(m.HTML, strings.ReplaceAll(v, "&", "&amp;"))) {
							t.Errorf("%s missing from text or html", k)
						}
					}
					if !strings.HasPrefix(m.HTML, "<!DOCTYPE html>") || !strings.Contains(m.HTML, `<html lang="`+lang+`">`) {
						t.Errorf("html has no doctype or lang:\n%.200s", m.HTML)
					}
					if strings.Contains(m.Text, "\n\n\n") || !strings.HasSuffix(m.Text, "\n") || strings.HasPrefix(m.Text, "\n") {
						t.Errorf("text is not tidy:\n%q", m.Text)
					}
					switch lang {
					case "ru":
						if !hasCyrillic(m.Subject) || !hasCyrillic(m.Text) || !hasCyrillic(m.HTML) {
							t.Error("Russian email is not in Cyrillic")
						}
					case "uz":
						if hasCyrillic(m.Text) || hasCyrillic(m.HTML) {
							t.Error("Uzbek email is not in the Latin script")
						}
					}
				})
			}
		}
	}
}

// TestTranslationsAreNotEnglishCopies checks that no English sentence is left
// in the Russian and Uzbek texts.
func TestTranslationsAreNotEnglishCopies(t *testing.T) {
	t.Parallel()
	englishMarkers := []string{"Hello", "Request", "request", "your", "the ", "This ", "data", "Reminder", "code"}
	for _, name := range templateNames() {
		data := sampleData(name)
		en := mustRender(t, name, "en", data)
		seen := map[string]string{"en": en.Text}
		for _, lang := range []string{"ru", "uz"} {
			m := mustRender(t, name, lang, data)
			if m.Subject == en.Subject || m.Text == en.Text || m.HTML == en.HTML {
				t.Errorf("%s/%s is identical to English", lang, name)
			}
			for other, text := range seen {
				if text == m.Text {
					t.Errorf("%s/%s text is identical to %s", lang, name, other)
				}
			}
			seen[lang] = m.Text
			// Strip the values we put in, which are English; what is left is
			// the template's own words.
			rest := m.Text + m.Subject + m.HTML
			// Longest first: a value may contain another (a URL, the id).
			vals := slices.Collect(maps.Values(data))
			slices.SortFunc(vals, func(a, b string) int { return len(b) - len(a) })
			for _, v := range vals {
				rest = strings.ReplaceAll(rest, v, "")
				rest = strings.ReplaceAll(rest, strings.ReplaceAll(v, "&", "&amp;"), "")
			}
			for _, marker := range englishMarkers {
				if strings.Contains(stripTags(rest), marker) {
					t.Errorf("%s/%s still has English (%q):\n%s", lang, name, marker, m.Text)
				}
			}
		}
	}
}

// stripTags removes HTML tags and attributes, so CSS font names do not count
// as English prose.
func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestLocalizedNames(t *testing.T) {
	t.Parallel()
	types := slices.Sorted(maps.Keys(requestTypeNames["en"]))
	if want := []string{"access", "erasure", "export", "objection", "rectification", "restriction"}; !slices.Equal(types, want) {
		t.Fatalf("request types = %v, want %v", types, want)
	}
	for _, lang := range Languages {
		for _, typ := range types {
			n := requestTypeNames[lang][typ]
			if n == "" || (lang != "en" && n == requestTypeNames["en"][typ]) {
				t.Errorf("%s name of %s = %q", lang, typ, n)
			}
		}
		for _, w := range []string{"7d", "1d", "overdue"} {
			n := whenTexts[lang][w]
			if n == "" || (lang != "en" && n == whenTexts["en"][w]) {
				t.Errorf("%s text of when=%s = %q", lang, w, n)
			}
		}
		if len(requestTypeNames[lang]) != len(types) || len(whenTexts[lang]) != 3 {
			t.Errorf("%s has extra names", lang)
		}
	}
	wantEN := map[string]string{"7d": "due in 7 days", "1d": "due tomorrow", "overdue": "overdue"}
	for w, want := range wantEN {
		d := sampleData(TemplateStaffReminder)
		d["when"] = w
		m := mustRender(t, TemplateStaffReminder, "en", d)
		if !strings.Contains(m.Subject, want) || !strings.Contains(m.Text, "is "+want+".") {
			t.Errorf("when=%s: subject %q / text lack %q", w, m.Subject, want)
		}
	}
}

// TestDenialStatesRemedies checks that a refusal tells the requester of both
// remedies (GDPR Art. 12(4)) in every language, naming the authority given.
func TestDenialStatesRemedies(t *testing.T) {
	t.Parallel()
	phrases := map[string][]string{
		"en": {"lodge a complaint with a supervisory authority", "judicial remedy"},
		"ru": {"подать жалобу в надзорный орган", "в суд"},
		"uz": {"nazorat qiluvchi organga", "shikoyat berish", "sudga murojaat qilish"},
	}
	for _, lang := range Languages {
		d := sampleData(TemplateRequestDenied)
		d["authority"] = "Roskomnadzor"
		m := mustRender(t, TemplateRequestDenied, lang, d)
		for _, s := range []string{m.Text, m.HTML} {
			for _, p := range append(phrases[lang], "Roskomnadzor", d["reason"]) {
				if !strings.Contains(s, p) {
					t.Errorf("%s denial lacks %q", lang, p)
				}
			}
		}
	}
}

func TestPlural(t *testing.T) {
	t.Parallel()
	cases := map[string]map[string]string{
		"en": {"1": "1 minute.", "2": "2 minutes.", "15": "15 minutes.", "21": "21 minutes."},
		"ru": {"1": "1 минуту.", "2": "2 минуты.", "5": "5 минут.", "11": "11 минут.", "12": "12 минут.", "21": "21 минуту.", "22": "22 минуты.", "111": "111 минут.", "1440": "1440 минут."},
		"uz": {"1": "1 daqiqa davomida", "15": "15 daqiqa davomida"},
	}
	for lang, want := range cases {
		for n, phrase := range want {
			d := sampleData(TemplateVerificationCode)
			d["expires_minutes"] = n
			if m := mustRender(t, TemplateVerificationCode, lang, d); !strings.Contains(m.Text, phrase) {
				t.Errorf("%s, %s minutes: text lacks %q:\n%s", lang, n, phrase, m.Text)
			}
		}
	}
}

func TestRenderEscapesHTML(t *testing.T) {
	t.Parallel()
	d := sampleData(TemplateRequestDenied)
	d["reason"] = `<script>alert("x")</script> & <b>bold</b>`
	d["request_id"] = `R<1>`
	m := mustRender(t, TemplateRequestDenied, "en", d)
	if strings.Contains(m.HTML, "<script>") || strings.Contains(m.HTML, "<b>bold") || strings.Contains(m.HTML, "R<1>") {
		t.Errorf("html not escaped:\n%s", m.HTML)
	}
	if !strings.Contains(m.HTML, "&lt;script&gt;") || !strings.Contains(m.HTML, "&amp;") {
		t.Errorf("html lacks the escaped value:\n%s", m.HTML)
	}
	if !strings.Contains(m.Text, d["reason"]) || !strings.Contains(m.Subject, "R<1>") {
		t.Error("plain text and subject must carry values as given")
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	t.Parallel()
	// Resend deduplicates a retry only if it is the same request: every
	// attempt must render byte for byte the same.
	for _, name := range templateNames() {
		for _, lang := range Languages {
			a := mustRender(t, name, lang, sampleData(name))
			for range 5 {
				if b := mustRender(t, name, lang, sampleData(name)); a != b {
					t.Fatalf("%s/%s renders differently on a second try", lang, name)
				}
			}
		}
	}
}

func TestRenderRefusesBadData(t *testing.T) {
	t.Parallel()
	secret := "SECRET-VALUE"
	cases := []struct {
		name     string
		template string
		edit     func(d map[string]string)
		wantKey  string
	}{
		{"missing_required", TemplateRequestReceived, func(d map[string]string) { delete(d, "due_date") }, "due_date"},
		{"blank_required", TemplateRequestDenied, func(d map[string]string) { d["authority"] = "  " }, "authority"},
		{"bad_type", TemplateRequestExtended, func(d map[string]string) { d["request_type"] = secret }, "request_type"},
		{"bad_date", TemplateRequestReceived, func(d map[string]string) { d["due_date"] = "01/02/2030" }, "due_date"},
		{"bad_new_date", TemplateRequestExtended, func(d map[string]string) { d["new_due_date"] = "2030-13-01" }, "new_due_date"},
		{"short_code", TemplateVerificationCode, func(d map[string]string) { d["code"] = "12345" }, "code"},
		{"letter_code", TemplateVerificationCode, func(d map[string]string) { d["code"] = "12345a" }, "code"},
		{"bad_minutes", TemplateVerificationCode, func(d map[string]string) { d["expires_minutes"] = "0" }, "expires_minutes"},
		{"bad_when", TemplateStaffReminder, func(d map[string]string) { d["when"] = "3d" }, "when"},
		{"script_url", TemplateRequestCompleted, func(d map[string]string) { d["download_url"] = "javascript:alert(1)" }, "download_url"},
		{"relative_url", TemplateRequestReceived, func(d map[string]string) { d["status_url"] = "/requests/1" }, "status_url"},
		{"newline_in_id", TemplateRequestReceived, func(d map[string]string) { d["request_id"] = "R1\nBcc: x" }, "request_id"},
		{"too_long", TemplateRequestDenied, func(d map[string]string) { d["reason"] = strings.Repeat("x", maxLongValue+1) }, "reason"},
		{"invalid_utf8", TemplateRequestDenied, func(d map[string]string) { d["reason"] = "\xff" }, "reason"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d := sampleData(c.template)
			c.edit(d)
			_, err := renderEmail(c.template, "en", d)
			if !errors.Is(err, ErrInvalidEmail) {
				t.Fatalf("err = %v, want ErrInvalidEmail", err)
			}
			if !strings.Contains(err.Error(), `"`+c.wantKey+`"`) {
				t.Errorf("err = %v, want it to name %q", err, c.wantKey)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "REQ-2030") {
				t.Errorf("err = %v repeats a value", err)
			}
		})
	}
	t.Run("unknown_template", func(t *testing.T) {
		t.Parallel()
		if _, err := renderEmail("welcome", "en", nil); !errors.Is(err, ErrInvalidEmail) || !strings.Contains(err.Error(), "welcome") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("keys_a_template_does_not_take_are_ignored", func(t *testing.T) {
		t.Parallel()
		// Callers pass one common set to every template.
		d := sampleData(TemplateVerificationCode)
		want := mustRender(t, TemplateVerificationCode, "en", d)
		d["request_id"] = secret
		d["status_url"] = "not even a URL"
		if got := mustRender(t, TemplateVerificationCode, "en", d); got != want {
			t.Error("an extra key changed the rendering")
		}
	})
	t.Run("multiline_reason_allowed", func(t *testing.T) {
		t.Parallel()
		d := sampleData(TemplateRequestDenied)
		d["reason"] = "First line.\r\nSecond line.\tTabbed."
		mustRender(t, TemplateRequestDenied, "en", d)
	})
}

func TestNormalizeLanguage(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"en": "en", "ru": "ru", "uz": "uz", "RU": "ru", " ru-RU ": "ru", "uz_UZ": "uz", "uz-Cyrl": "uz",
		"en-GB": "en", "fr": "en", "": "en", "russian": "en", "kk": "en",
	}
	for in, want := range cases {
		if got := NormalizeLanguage(in); got != want {
			t.Errorf("NormalizeLanguage(%q) = %q, want %q", in, got, want)
		}
	}
	// The fallback is visible in the output: a French request gets English.
	fr := mustRender(t, TemplateRequestReceived, "fr", sampleData(TemplateRequestReceived))
	en := mustRender(t, TemplateRequestReceived, "en", sampleData(TemplateRequestReceived))
	if fr != en {
		t.Error("unknown language did not fall back to English")
	}
}

func TestCheckAddress(t *testing.T) {
	t.Parallel()
	good := []string{"ann@example.com", " Bob.Smith+dsr@mail.example.co.uk ", "o'neil@example.org"}
	bad := []string{"", "ann", "ann@", "@example.com", "ann@localhost", "Ann <ann@example.com>", "ann@example.com, bob@example.com",
		"ann@example.com\r\nBcc: x@example.com", "ann@.example.com", "ann@example.", strings.Repeat("a", 250) + "@example.com"}
	for _, s := range good {
		if got, err := checkAddress(s); err != nil || got != strings.TrimSpace(s) {
			t.Errorf("checkAddress(%q) = %q, %v; want accepted", s, got, err)
		}
	}
	for _, s := range bad {
		_, err := checkAddress(s)
		if !errors.Is(err, ErrInvalidEmail) {
			t.Errorf("checkAddress(%q) accepted", s)
		} else if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error %q repeats the address", err)
		}
	}
}

// FuzzRenderEmail feeds arbitrary values to every template: rendering never
// panics, and whatever it accepts comes out as a one-line subject, with no
// template syntax left over and with the HTML escaped.
func FuzzRenderEmail(f *testing.F) {
	f.Add(uint8(0), "en", "REQ-1", "reason", "https://x.example/a?b=1&c=2", "123456", "ann@example.com")
	f.Add(uint8(3), "ru", "R<1>", "<script>alert(1)</script>", "javascript:alert(1)", "12345", "Ann <ann@example.com>")
	f.Add(uint8(5), "uz-Cyrl", "{{.code}}", "line\nbreak", "http://[::1]:80/", "000000", "a@b.c\r\nBcc: x@y.z")
	names := templateNames()
	f.Fuzz(func(t *testing.T, which uint8, lang, id, text, link, code, to string) {
		name := names[int(which)%len(names)]
		data := map[string]string{
			"request_id": id, "request_type": "objection", "due_date": "2030-01-31", "new_due_date": "2030-03-01",
			"status_url": link, "download_url": link, "staff_url": link, "code": code, "expires_minutes": "10",
			"summary": text, "reason": text, "authority": id, "when": "1d",
		}
		m, err := renderEmail(name, lang, data)
		if err == nil {
			if strings.ContainsAny(m.Subject, "\r\n") || m.Subject == "" {
				t.Errorf("subject %q", m.Subject)
			}
			// The templates have no script of their own: any is injected.
			if strings.Contains(strings.ToLower(m.HTML), "<script") {
				t.Errorf("unescaped value in the HTML: %q", text)
			}
			if strings.Contains(m.Subject+m.Text+m.HTML, "{{") && !strings.Contains(id+text+link, "{{") {
				t.Error("template syntax left in the output")
			}
			again, err := renderEmail(name, lang, data)
			if err != nil || again != m {
				t.Error("rendering is not deterministic")
			}
		} else if !errors.Is(err, ErrInvalidEmail) {
			t.Errorf("render failed for a reason other than the input: %v", err)
		}
		if addr, err := checkAddress(to); err == nil {
			if strings.ContainsFunc(addr, unicode.IsControl) || !strings.Contains(addr, "@") || strings.ContainsAny(addr, "<>,") {
				t.Errorf("accepted address %q", addr)
			}
		}
	})
}
