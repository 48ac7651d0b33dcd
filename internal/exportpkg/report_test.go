package exportpkg

import (
	"bytes"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/steward-privacy/steward/internal/testutil"
)

// words are phrases each language's report must show in its own words:
// one per required section, plus values it computes (a legal basis, a
// retention period, a source).
var words = map[string][]string{
	"en": {"Why we process your data and on what legal basis", "Categories of personal data", "Recipients and processors",
		"International transfers", "How long we keep your data", "Where your data comes from", "Automated decision-making",
		"Your rights", "Data we keep after your erasure request", "Your data, by dataset", "Your files",
		"performance of a contract with you", "5 years from the date of the record; then deleted", "until you delete your account",
		"from Stripe, our service provider", "recorded automatically", "supervisory authority", "Supervisory authority: CNIL",
		"Access to personal data", "email address", "kept in masked form", "Art. 22"},
	"ru": {"Цели обработки и правовые основания", "Категории персональных данных", "Получатели и обработчики",
		"Трансграничная передача данных", "Сколько мы храним ваши данные", "Откуда получены данные", "Автоматизированное принятие решений",
		"Ваши права", "Данные, сохранённые после запроса на удаление", "Ваши данные по наборам", "Ваши файлы",
		"исполнение договора с вами", "5 лет с даты записи; затем удаляются", "до удаления вашего аккаунта",
		"от Stripe, нашего поставщика услуг", "записываются автоматически", "надзорный орган", "Надзорный орган: CNIL",
		"Доступ к персональным данным", "адрес электронной почты", "хранится в замаскированном виде", "ст. 22"},
	"uz": {"Maʼlumotlarga ishlov berish maqsadlari va huquqiy asoslari", "Shaxsga doir maʼlumotlar toifalari", "Oluvchilar va ishlov beruvchilar",
		"Maʼlumotlarni xalqaro uzatish", "Maʼlumotlaringizni qancha muddat saqlaymiz", "Maʼlumotlar qayerdan olingan", "Avtomatlashtirilgan qarorlar qabul qilish",
		"Sizning huquqlaringiz", "Oʻchirish soʻrovidan keyin saqlab qolingan maʼlumotlar", "Maʼlumotlaringiz toʻplamlar boʻyicha", "Fayllaringiz",
		"siz bilan tuzilgan shartnomani bajarish", "yozuv sanasidan boshlab 5 yil; soʻngra oʻchiriladi", "akkauntingiz oʻchirilgunga qadar",
		"xizmat koʻrsatuvchimiz Stripe orqali", "avtomatik ravishda qayd etiladi", "nazorat qiluvchi organ", "Nazorat qiluvchi organ: CNIL",
		"Shaxsga doir maʼlumotlar bilan tanishish", "elektron pochta manzili", "niqoblangan holda saqlanadi", "22-modda"},
}

var sectionIDs = []string{"contents", "purposes", "categories", "sources", "recipients", "transfers", "retention", "automated", "rights", "retained", "datasets", "files"}

func TestReportInEachLanguage(t *testing.T) {
	t.Parallel()
	for _, lang := range languages {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			fx := realistic(t, lang)
			p := build(t, fx.in)
			html := string(p.read(t, PathIndex))
			if !strings.Contains(html, `<html lang="`+lang+`">`) {
				t.Errorf("not marked as %s", lang)
			}
			for _, id := range sectionIDs {
				if !strings.Contains(html, `<section id="`+id+`">`) {
					t.Errorf("no %s section", id)
				}
			}
			for _, w := range words[lang] {
				if !strings.Contains(html, escapeText(w)) {
					t.Errorf("the %s report does not say %q", lang, w)
				}
			}
			// Facts from the data map and the retained items.
			for _, s := range []string{
				"Provide core features, authenticate accounts, operate the workbench, launch AI jobs",
				"Email address", "Payment records",
				"EU Standard Contractual Clauses (SCCs) or equivalent safeguards",
				"Payment and invoice records must be kept to meet accounting and tax obligations", "5 years from the record date",
				"The opt-out itself is kept, pseudonymized", "the opt-out no longer needs to be honoured",
				"csv/app_db/generation_jobs.csv", "files/object_store/uploads/ref-1.png",
			} {
				if !strings.Contains(html, escapeText(s)) {
					t.Errorf("the %s report does not state %q", lang, s)
				}
			}
			// No other language's words: a key missing in this language
			// would have failed the render, and none may have been copied
			// across untranslated. (Text from the data map is English in
			// every report and is skipped.)
			facts, err := json.Marshal([]any{fx.in.Systems, fx.in.Categories, fx.in.Retained})
			if err != nil {
				t.Fatal(err)
			}
			for other, msgs := range messages {
				if other == lang {
					continue
				}
				for key, text := range msgs {
					if len([]rune(text)) < 12 || text == messages[lang][key] || strings.Contains(string(facts), text) {
						continue
					}
					if strings.Contains(html, escapeText(text)) {
						t.Errorf("the %s report shows %s text of %q: %q", lang, other, key, text)
					}
				}
			}
			if strings.Contains(html, "{") && regexp.MustCompile(`\{[a-z_]+\}`).MatchString(html) {
				t.Errorf("a placeholder was left unfilled: %s", regexp.MustCompile(`\{[a-z_]+\}`).FindString(html))
			}
		})
	}
}

// escapeText is how html/template writes plain text.
func escapeText(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;", "+", "&#43;").Replace(s)
}

func TestReportFallsBackToEnglish(t *testing.T) {
	t.Parallel()
	for tag, want := range map[string]string{"de": "en", "": "en", "ru-RU": "ru", "uz_Cyrl": "uz", " UZ ": "uz"} {
		if got := normalizeLanguage(tag); got != want {
			t.Errorf("normalizeLanguage(%q) = %q, want %q", tag, got, want)
		}
	}
	fx := realistic(t, "de-DE")
	html := string(build(t, fx.in).read(t, PathIndex))
	if !strings.Contains(html, `<html lang="en">`) || !strings.Contains(html, "Your rights") {
		t.Error("an unknown language did not fall back to English")
	}
}

func TestReportWithoutData(t *testing.T) {
	t.Parallel()
	in := Input{RequestID: "r-empty", RequestType: "access", Language: "ru", GeneratedAt: realistic(t, "en").in.GeneratedAt}
	p := build(t, in)
	html := string(p.read(t, PathIndex))
	for _, w := range []string{"Мы не нашли о вас ни одной записи.", "Файлов нет.", "Ваши права"} {
		if !strings.Contains(html, w) {
			t.Errorf("the empty report does not say %q", w)
		}
	}
	if strings.Contains(html, `id="retained"`) {
		t.Error("an empty retained section was shown")
	}
	if got := len(p.names()); got != 3 {
		t.Errorf("an empty package has %d entries (%v), want data.json, index.html and manifest.json", got, p.names())
	}
}

// TestNothingFound: a package built after a search that found nothing says
// so plainly, first, in the person's language, and its data.json is valid
// with no records and no files.
func TestNothingFound(t *testing.T) {
	t.Parallel()
	for _, lang := range languages {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			fx := realistic(t, lang)
			in := fx.in
			in.Records, in.Files, in.Retained = nil, nil, nil
			p := build(t, in)
			html := string(p.read(t, PathIndex))
			notice := escapeText(messages[lang]["empty.notice"])
			at := strings.Index(html, notice)
			if at < 0 {
				t.Fatalf("the %s report does not state that nothing was found", lang)
			}
			if first := strings.Index(html, "<section"); first >= 0 && at > first {
				t.Error("the nothing-found notice comes after the report's sections")
			}
			for _, k := range []string{"intro.empty", "label.searched_by", "datasets.empty", "files.empty"} {
				if !strings.Contains(html, escapeText(messages[lang][k])) {
					t.Errorf("the %s report does not say %s: %q", lang, k, messages[lang][k])
				}
			}
			// Nothing in it claims data was found or is enclosed.
			for _, k := range []string{"intro", "label.identities"} {
				if strings.Contains(html, ">"+escapeText(messages[lang][k])+"<") {
					t.Errorf("the %s report says %s: %q", lang, k, messages[lang][k])
				}
			}
			var doc struct {
				Records, Files []any
			}
			validData(t, p, &doc)
			if doc.Records == nil || len(doc.Records) != 0 || doc.Files == nil || len(doc.Files) != 0 {
				t.Errorf("data.json records %v files %v, want two empty arrays", doc.Records, doc.Files)
			}
			if n := len(p.names()); n != 3 {
				t.Errorf("%d entries: %v", n, p.names())
			}
		})
	}
	// A package with data says nothing of the kind.
	html := string(build(t, realistic(t, "en").in).read(t, PathIndex))
	if strings.Contains(html, "nothing-found") || strings.Contains(html, escapeText(messages["en"]["empty.notice"])) {
		t.Error("a package with records claims nothing was found")
	}
}

// TestSeveralControllers: data that belongs to products with different
// controllers names each of them, in the report and in data.json.
func TestSeveralControllers(t *testing.T) {
	t.Parallel()
	fx := realistic(t, "en")
	in := fx.in
	in.Controllers = []Controller{
		{Name: "Bananapics", Contact: "blogchikuz@gmail.com"},
		{Name: "Nano Banana Pro", Contact: "support@nano-bananapro.com", SupervisoryAuthority: "CNIL"},
	}
	p := build(t, in)
	html := string(p.read(t, PathIndex))
	for _, w := range []string{"<dd>Bananapics</dd>", "<dd>blogchikuz@gmail.com</dd>", "<dd>Nano Banana Pro</dd>", "<dd>support@nano-bananapro.com</dd>",
		escapeText(messages["en"]["controllers.note"]), "Supervisory authority: CNIL",
		"contact us at blogchikuz@gmail.com (Bananapics), support@nano-bananapro.com (Nano Banana Pro) and quote"} {
		if !strings.Contains(html, w) {
			t.Errorf("the report does not say %q", w)
		}
	}
	var doc struct {
		Controller  Controller
		Controllers []Controller
	}
	validData(t, p, &doc)
	if doc.Controller != in.Controllers[0] || !slices.Equal(doc.Controllers, in.Controllers) {
		t.Errorf("data.json controller %+v controllers %+v", doc.Controller, doc.Controllers)
	}

	// One controller: named once, without the note.
	in.Controllers = in.Controllers[1:]
	p = build(t, in)
	html = string(p.read(t, PathIndex))
	if strings.Contains(html, escapeText(messages["en"]["controllers.note"])) || strings.Contains(html, "<dd>Bananapics</dd>") ||
		!strings.Contains(html, "contact us at support@nano-bananapro.com and quote") {
		t.Error("a single controller's report is wrong")
	}
	validData(t, p, &doc)
	if doc.Controller != in.Controllers[0] || len(doc.Controllers) != 1 {
		t.Errorf("data.json controller %+v controllers %+v", doc.Controller, doc.Controllers)
	}

	// None known: data.json still has its required controller member.
	in.Controllers = nil
	validData(t, build(t, in), &doc)
	if len(doc.Controllers) != 0 {
		t.Errorf("controllers %+v", doc.Controllers)
	}
}

// validData checks data.json against the published schema and decodes it
// into v.
func validData(t *testing.T, p pkg, v any) {
	t.Helper()
	raw := p.read(t, PathData)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.ExportSchema(t).Validate(inst); err != nil {
		t.Fatalf("data.json does not validate: %v", err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatal(err)
	}
}

func TestReportAutomatedDecisionsFromInput(t *testing.T) {
	t.Parallel()
	fx := realistic(t, "en")
	fx.in.AutomatedDecisions = "Fraud scoring may block a payment <automatically>; you may ask for a person to review it."
	html := string(build(t, fx.in).read(t, PathIndex))
	if !strings.Contains(html, "Fraud scoring may block a payment &lt;automatically&gt;") || strings.Contains(html, "We do not make decisions") {
		t.Error("the report does not state the given automated decision-making")
	}
}

func TestMessages(t *testing.T) {
	t.Parallel()
	keys := slices.Sorted(maps.Keys(messages["en"]))
	placeholder := regexp.MustCompile(`\{[a-z_]+\}`)
	forms := map[string]int{"en": 2, "ru": 3, "uz": 1}
	for _, lang := range languages {
		got := slices.Sorted(maps.Keys(messages[lang]))
		if !slices.Equal(got, keys) {
			t.Errorf("%s has keys %v; en has %v", lang, diff(got, keys), diff(keys, got))
		}
		for _, k := range keys {
			text := messages[lang][k]
			if strings.TrimSpace(text) == "" {
				t.Errorf("%s %s is empty", lang, k)
			}
			a, b := placeholder.FindAllString(text, -1), placeholder.FindAllString(messages["en"][k], -1)
			slices.Sort(a)
			slices.Sort(b)
			if !slices.Equal(a, b) {
				t.Errorf("%s %s has placeholders %v, en %v", lang, k, a, b)
			}
			if strings.HasPrefix(k, "unit.") && len(strings.Split(text, "|")) != forms[lang] {
				t.Errorf("%s %s needs %d plural forms: %q", lang, k, forms[lang], text)
			}
			if strings.ContainsAny(text, "<>") {
				t.Errorf("%s %s holds markup; messages are text", lang, k)
			}
		}
	}
	// Every key the report renders from Go code exists.
	for _, k := range []string{"type.access", "type.export", "type.erasure", "type.rectification", "type.restriction", "type.objection",
		"kind.email", "kind.tg", "kind.user", "kind.oauth", "kind.stripe", "kind.creem", "kind.visitor",
		"basis.contract", "basis.legal_obligation", "basis.legitimate_interests", "basis.consent", "basis.vital_interests", "basis.public_task",
		"ret.until.account_deletion", "ret.until.withdrawal", "ret.then.delete", "ret.then.anonymize", "action.retain", "action.mask"} {
		if _, ok := messages["en"][k]; !ok {
			t.Errorf("no message %s", k)
		}
	}
}

func diff(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}

func TestRetentionWording(t *testing.T) {
	t.Parallel()
	cases := []struct {
		lang string
		r    Retention
		want string
	}{
		{"en", Retention{Period: "5 years", Action: "delete"}, "5 years from the date of the record; then deleted"},
		{"en", Retention{Period: "1 year", Action: "delete"}, "1 year from the date of the record; then deleted"},
		{"en", Retention{Period: "2 years", Until: "account_deletion", Action: "delete"}, "2 years from the date of the record, or until you delete your account, whichever comes first; then deleted"},
		{"en", Retention{Until: "withdrawal", Action: "anonymize"}, "until you withdraw your consent or unsubscribe; then anonymized"},
		{"en", Retention{}, "as stated in our privacy policy"},
		{"en", Retention{Period: "a while", Action: "delete"}, "a while from the date of the record; then deleted"},
		{"ru", Retention{Period: "5 years", Action: "delete"}, "5 лет с даты записи; затем удаляются"},
		{"ru", Retention{Period: "2 years", Action: "delete"}, "2 года с даты записи; затем удаляются"},
		{"ru", Retention{Period: "21 days", Action: "delete"}, "21 день с даты записи; затем удаляются"},
		{"ru", Retention{Period: "72 hours", Action: "delete"}, "72 часа с даты записи; затем удаляются"},
		{"ru", Retention{Period: "180 days", Action: "anonymize"}, "180 дней с даты записи; затем обезличиваются"},
		{"ru", Retention{Period: "11 days", Action: "delete"}, "11 дней с даты записи; затем удаляются"},
		{"uz", Retention{Period: "30 days", Action: "delete"}, "yozuv sanasidan boshlab 30 kun; soʻngra oʻchiriladi"},
		{"uz", Retention{Until: "account_deletion", Action: "anonymize"}, "akkauntingiz oʻchirilgunga qadar; soʻngra anonimlashtiriladi"},
	}
	for _, c := range cases {
		if got := translator(c.lang).retention(c.r); got != c.want {
			t.Errorf("%s %+v: %q, want %q", c.lang, c.r, got, c.want)
		}
	}
	for _, c := range []struct {
		lang string
		n    int64
		want string
	}{{"en", 512, "512\u00a0B"}, {"en", 300 << 10, "300.0\u00a0KiB"}, {"ru", 3 << 19, "1,5\u00a0МиБ"}, {"uz", 5 << 30, "5,0\u00a0GiB"}} {
		if got := translator(c.lang).size(c.n); got != c.want {
			t.Errorf("%s size(%d) = %q, want %q", c.lang, c.n, got, c.want)
		}
	}
}
