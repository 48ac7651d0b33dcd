package notify

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
	"unicode/utf8"
)

// Email texts are files rather than Go strings so translators can work on
// them directly. Each language directory holds, per template, <name>.txt
// (defines "subject" and "text", run with text/template) and <name>.html
// (defines "body", run with html/template inside the shared layout.html and the language's footer.html,
// so every value is escaped for its HTML context). Its telegram/ directory
// holds the Telegram texts of the person-facing templates (render_telegram.go).
//
//go:embed templates
var templateFS embed.FS

// Languages are the languages Steward writes to people in (emails, the
// export package's report); the first is the fallback for any other.
var Languages = []string{"en", "ru", "uz"}

// NormalizeLanguage maps a language tag to one we have: its primary subtag
// ("ru-RU" → "ru"; "uz-Cyrl" → "uz", since the Latin script is Uzbekistan's
// official one), else English.
func NormalizeLanguage(tag string) string {
	tag = strings.ToLower(strings.TrimSpace(tag))
	if i := strings.IndexAny(tag, "-_"); i >= 0 {
		tag = tag[:i]
	}
	if slices.Contains(Languages, tag) {
		return tag
	}
	return Languages[0]
}

// templateSpec lists the Data keys a template takes.
type templateSpec struct {
	required []string
	optional []string
}

var templateSpecs = map[string]templateSpec{
	TemplateRequestReceived:  {required: []string{"request_id", "request_type", "due_date"}, optional: []string{"status_url", "as_agent"}},
	TemplateVerificationCode: {required: []string{"code", "expires_minutes", "request_type"}},
	TemplateRequestCompleted: {required: []string{"request_id", "request_type"}, optional: []string{"download_url", "download_expires", "summary", "status_url", "as_agent"}},
	TemplateRequestDenied:    {required: []string{"request_id", "request_type", "reason", "authority"}, optional: []string{"status_url", "as_agent"}},
	TemplateRequestExtended:  {required: []string{"request_id", "request_type", "reason", "new_due_date"}, optional: []string{"status_url", "as_agent"}},
	TemplateStaffReminder:    {required: []string{"request_id", "request_type", "due_date", "when"}, optional: []string{"staff_url"}},
	TemplateSigninCode:       {required: []string{"code", "expires_minutes"}},
	TemplateNoticeChanged:    {required: []string{"product_name", "version", "effective_date"}, optional: []string{"summary", "notice_url", "manage_url"}},
	TemplateRecipientNotice:  {required: []string{"request_id", "request_type", "system", "identities", "controller"}},
}

// requestTypeNames are the localized names of request types. They read as a
// label's value ("Request type: …"), which keeps Russian and Uzbek free of
// case endings that would depend on the surrounding sentence.
var requestTypeNames = map[string]map[string]string{
	"en": {
		"access":        "Access to personal data",
		"export":        "Data portability (a copy of your data)",
		"erasure":       "Erasure of personal data",
		"rectification": "Rectification of personal data",
		"restriction":   "Restriction of processing",
		"objection":     "Objection to processing",
	},
	"ru": {
		"access":        "Доступ к персональным данным",
		"export":        "Переносимость данных (получение копии)",
		"erasure":       "Удаление персональных данных",
		"rectification": "Исправление персональных данных",
		"restriction":   "Ограничение обработки",
		"objection":     "Возражение против обработки",
	},
	"uz": {
		"access":        "Shaxsga doir maʼlumotlar bilan tanishish",
		"export":        "Maʼlumotlarni koʻchirish (nusxasini olish)",
		"erasure":       "Shaxsga doir maʼlumotlarni oʻchirish",
		"rectification": "Shaxsga doir maʼlumotlarni tuzatish",
		"restriction":   "Maʼlumotlarga ishlov berishni cheklash",
		"objection":     "Maʼlumotlarga ishlov berishga eʼtiroz",
	},
}

// whenTexts render a staff reminder's "when".
var whenTexts = map[string]map[string]string{
	"en": {"7d": "due in 7 days", "1d": "due tomorrow", "overdue": "overdue"},
	"ru": {"7d": "срок ответа истекает через 7 дней", "1d": "срок ответа истекает завтра", "overdue": "срок ответа истёк"},
	"uz": {"7d": "javob muddati 7 kundan keyin tugaydi", "1d": "javob muddati ertaga tugaydi", "overdue": "javob muddati oʻtgan"},
}

// Bounds on values keep payloads small and subjects readable.
const (
	maxShortValue = 256  // ids, names, numbers
	maxURLValue   = 2048 // links
	maxLongValue  = 4000 // reason, summary
)

var sixDigits = regexp.MustCompile(`^[0-9]{6}$`)

// checkValue validates one Data value by its key. Messages name the key and
// never the value.
func checkValue(key, v string, invalid error) error {
	bad := func(why string) error { return fmt.Errorf("%w: data key %q %s", invalid, key, why) }
	if !utf8.ValidString(v) {
		return bad("is not valid UTF-8")
	}
	multiline := key == "reason" || key == "summary"
	limit := maxShortValue
	switch {
	case multiline:
		limit = maxLongValue
	case strings.HasSuffix(key, "_url"):
		limit = maxURLValue
	}
	if len(v) > limit {
		return bad(fmt.Sprintf("is longer than %d bytes", limit))
	}
	for _, r := range v {
		if unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t' || r == '\r')) {
			// A line break in a one-line value could break a subject line.
			return bad("contains a control character")
		}
	}
	switch key {
	case "request_type":
		if _, ok := requestTypeNames["en"][v]; !ok {
			return bad("is not one of access, export, erasure, rectification, restriction, objection")
		}
	case "due_date", "new_due_date", "effective_date":
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			return bad("is not a YYYY-MM-DD date")
		}
	case "code":
		if !sixDigits.MatchString(v) {
			return bad("is not 6 digits")
		}
	case "expires_minutes":
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 24*60 {
			return bad("is not a whole number of minutes from 1 to 1440")
		}
	case "when":
		if _, ok := whenTexts["en"][v]; !ok {
			return bad("is not one of 7d, 1d, overdue")
		}
	case "download_expires":
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			return bad("is not a date (YYYY-MM-DD)")
		}
	case "status_url", "download_url", "staff_url", "notice_url", "manage_url":
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return bad("is not an absolute http(s) URL")
		}
	}
	return nil
}

// prepareData validates data against the template and returns the values the
// template files see: every declared key (optional ones "" when absent), plus
// request_type_name, when_text and lang, localized in Go. Refusals wrap
// invalid (ErrInvalidEmail or ErrInvalidTelegram, for the caller's kind).
func prepareData(name, lang string, data map[string]string, invalid error) (map[string]string, error) {
	spec, ok := templateSpecs[name]
	if !ok {
		return nil, fmt.Errorf("%w: unknown template %q", invalid, name)
	}
	out := make(map[string]string, len(spec.required)+len(spec.optional)+4)
	for _, k := range spec.required {
		v, ok := data[k]
		if !ok || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("%w: %s: data key %q is missing", invalid, name, k)
		}
		out[k] = strings.TrimSpace(v)
	}
	for _, k := range spec.optional {
		out[k] = strings.TrimSpace(data[k])
	}
	// Keys the template does not take are ignored rather than refused, so a
	// caller can pass one common set (request_id, request_type, status_url)
	// to every template; they are never rendered, and never validated.
	for _, k := range append(slices.Clone(spec.required), spec.optional...) {
		if out[k] == "" {
			continue
		}
		if err := checkValue(k, out[k], invalid); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	out["lang"] = lang
	// What the footer says the message is about.
	out["about"] = "request"
	if name == TemplateNoticeChanged {
		out["about"] = "notice"
	}
	if t := out["request_type"]; t != "" {
		out["request_type_name"] = requestTypeNames[lang][t]
	}
	if w := out["when"]; w != "" {
		out["when_text"] = whenTexts[lang][w]
	}
	return out, nil
}

// renderedEmail is one email ready to send.
type renderedEmail struct {
	Subject string
	Text    string
	HTML    string
}

// parsedTemplate is one template in one language.
type parsedTemplate struct {
	text *texttemplate.Template
	html *htmltemplate.Template
}

// parsed holds every template in every language, keyed lang+"/"+name. It is
// built once at start-up; a broken template file fails every test, so it
// never reaches a running server.
var parsed = parseAll()

func parseAll() map[string]parsedTemplate {
	out := map[string]parsedTemplate{}
	for _, lang := range Languages {
		funcs := map[string]any{"plural": pluralFunc(lang)}
		for name := range templateSpecs {
			t := texttemplate.Must(texttemplate.New(name).Funcs(funcs).Option("missingkey=error").
				ParseFS(templateFS, "templates/"+lang+"/"+name+".txt"))
			h := htmltemplate.Must(htmltemplate.New(name).Funcs(funcs).Option("missingkey=error").
				ParseFS(templateFS, "templates/layout.html", "templates/"+lang+"/footer.html", "templates/"+lang+"/"+name+".html"))
			out[lang+"/"+name] = parsedTemplate{text: t, html: h}
		}
	}
	return out
}

// pluralFunc returns the template function "plural": the form of a noun that
// goes with the number n, given the language's forms in CLDR order (English:
// one, other; Russian: one, few, many; Uzbek nouns do not change after a
// numeral, so one form).
func pluralFunc(lang string) func(n string, forms ...string) (string, error) {
	return func(n string, forms ...string) (string, error) {
		i, err := strconv.Atoi(n)
		if err != nil || len(forms) == 0 {
			return "", fmt.Errorf("plural: need a whole number and at least one form")
		}
		pick := func(k int) string { return forms[min(k, len(forms)-1)] }
		switch lang {
		case "ru":
			switch m10, m100 := i%10, i%100; {
			case m10 == 1 && m100 != 11:
				return pick(0), nil
			case m10 >= 2 && m10 <= 4 && (m100 < 12 || m100 > 14):
				return pick(1), nil
			default:
				return pick(2), nil
			}
		case "en":
			if i == 1 {
				return pick(0), nil
			}
			return pick(1), nil
		default:
			return pick(0), nil
		}
	}
}

// renderEmail validates data for the named template and renders it in lang
// (normalized first). Errors name keys, never values.
func renderEmail(name, lang string, data map[string]string) (renderedEmail, error) {
	lang = NormalizeLanguage(lang)
	vals, err := prepareData(name, lang, data, ErrInvalidEmail)
	if err != nil {
		return renderedEmail{}, err
	}
	pt := parsed[lang+"/"+name]
	var subj, text, html bytes.Buffer
	if err := pt.text.ExecuteTemplate(&subj, "subject", vals); err != nil {
		return renderedEmail{}, fmt.Errorf("render %s/%s subject: %w", lang, name, templateError(err))
	}
	if err := pt.text.ExecuteTemplate(&text, "text", vals); err != nil {
		return renderedEmail{}, fmt.Errorf("render %s/%s text: %w", lang, name, templateError(err))
	}
	m := renderedEmail{Subject: strings.Join(strings.Fields(subj.String()), " "), Text: cleanText(text.String())}
	vals["subject"] = m.Subject
	if err := pt.html.ExecuteTemplate(&html, "layout", vals); err != nil {
		return renderedEmail{}, fmt.Errorf("render %s/%s html: %w", lang, name, templateError(err))
	}
	m.HTML = html.String()
	return m, nil
}

// templateError keeps a template failure's position and cause but not the
// values it was executing with. text/template's errors name the template and
// the missing key only, so they pass through; anything longer is cut.
func templateError(err error) error {
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return fmt.Errorf("%s", s)
}

var blankLines = regexp.MustCompile(`\n{3,}`)

// cleanText tidies the plain-text part: conditional sections in the template
// leave stray blank lines and trailing spaces, which are removed so the text
// reads the same whichever optional values are present.
func cleanText(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r")
	}
	s = strings.Join(lines, "\n")
	s = blankLines.ReplaceAllString(s, "\n\n")
	return strings.TrimSpace(s) + "\n"
}
