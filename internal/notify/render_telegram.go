package notify

import (
	"bytes"
	"fmt"
	"html"
	htmltemplate "html/template"
	"regexp"
	"slices"
	"strings"
	"unicode/utf16"
)

// Telegram texts live beside the emails, in templates/<lang>/telegram/:
// <name>.html defines "telegram" and the language's footer.html defines
// "footer". They are run with html/template, so every value is escaped for
// its context, and they use only the markup the Bot API's HTML parse mode
// accepts (<b> and <a href>); line breaks are the text's own, since
// Telegram shows them as written and knows no <p> or <br>.

// telegramTemplates are the templates with a Telegram text: those written
// to the person. Staff reminders go to the staff mailbox only.
var telegramTemplates = []string{
	TemplateRequestReceived, TemplateVerificationCode, TemplateRequestCompleted,
	TemplateRequestDenied, TemplateRequestExtended, TemplateNoticeChanged,
}

// maxTelegramText is sendMessage's limit: 4096 characters after entities
// parsing, counted (conservatively) in UTF-16 code units as Telegram counts
// entity offsets.
const maxTelegramText = 4096

// parsedTelegram holds every Telegram text in every language, keyed
// lang+"/"+name, built once at start-up like parsed.
var parsedTelegram = parseTelegram()

func parseTelegram() map[string]*htmltemplate.Template {
	out := map[string]*htmltemplate.Template{}
	for _, lang := range Languages {
		funcs := map[string]any{"plural": pluralFunc(lang)}
		for _, name := range telegramTemplates {
			out[lang+"/"+name] = htmltemplate.Must(htmltemplate.New(name).Funcs(funcs).Option("missingkey=error").
				ParseFS(templateFS, "templates/"+lang+"/telegram/footer.html", "templates/"+lang+"/telegram/"+name+".html"))
		}
	}
	return out
}

// shortenable are the free-text values long enough to push a message over
// Telegram's limit (a reason or summary may be 4000 bytes), in the order
// they give way.
var shortenable = []string{"summary", "reason"}

// renderTelegram validates data for the named template and renders its
// Telegram text in lang (normalized first). A text over Telegram's limit
// has its longest free-text value (summary, then reason) cut short with
// "…" until it fits; the full text stays on the status page the message
// links to. The output is the same for the same input, on every attempt.
// Errors name keys, never values.
func renderTelegram(name, lang string, data map[string]string) (string, error) {
	lang = NormalizeLanguage(lang)
	if _, ok := templateSpecs[name]; ok && !slices.Contains(telegramTemplates, name) {
		return "", fmt.Errorf("%w: template %q is not sent by Telegram", ErrInvalidTelegram, name)
	}
	vals, err := prepareData(name, lang, data, ErrInvalidTelegram)
	if err != nil {
		return "", err
	}
	t := parsedTelegram[lang+"/"+name]
	for {
		var b bytes.Buffer
		if err := t.ExecuteTemplate(&b, "telegram", vals); err != nil {
			return "", fmt.Errorf("render %s/telegram/%s: %w", lang, name, templateError(err))
		}
		text := tidyTelegram(b.String())
		over := telegramLength(text) - maxTelegramText
		if over <= 0 {
			return text, nil
		}
		if !shorten(vals, over) {
			return "", fmt.Errorf("%w: %s: the text is %d characters over Telegram's limit", ErrInvalidTelegram, name, over)
		}
	}
}

// shorten cuts the longest shortenable value by over characters (and one
// more for the "…"); false when none is left to cut.
func shorten(vals map[string]string, over int) bool {
	key, longest := "", 0
	for _, k := range shortenable {
		if n := utf16Len(vals[k]); n > longest && vals[k] != "…" {
			key, longest = k, n
		}
	}
	if key == "" {
		return false
	}
	keep := longest - over - 1
	if keep <= 0 {
		vals[key] = "…"
		return true
	}
	v, units := vals[key], 0
	for i, r := range v {
		if units+utf16.RuneLen(r) > keep {
			v = v[:i]
			break
		}
		units += utf16.RuneLen(r)
	}
	vals[key] = strings.TrimRight(v, " \t\r\n") + "…"
	return true
}

var tagRe = regexp.MustCompile(`<[^>]*>`)

// telegramLength is the length Telegram measures: the text without its
// tags, entities decoded, trimmed, in UTF-16 code units. It is meant for
// the templates' own output, whose markup is well formed.
func telegramLength(s string) int {
	return utf16Len(strings.TrimSpace(html.UnescapeString(tagRe.ReplaceAllString(s, ""))))
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// tidyTelegram tidies the text as cleanText does the email's plain part
// (conditional sections leave blank lines) and drops the final newline,
// which Telegram would trim anyway.
func tidyTelegram(s string) string {
	return strings.TrimSpace(cleanText(strings.ReplaceAll(s, "\r\n", "\n")))
}
