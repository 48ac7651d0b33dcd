package exportpkg

import (
	"fmt"
	"maps"
	"strings"
	"testing"
)

// withheldWords is what each language's report says about records left out
// because other people's data is in them: the total and that staff review
// them, then the reasons of the rows.
var withheldWords = map[string][]string{
	"en": {"6 records were not included because other people's data is in them (for example, a shared address).",
		"Our staff review them; ask us if you want to know more.",
		"other people's records use it too", "shared with other people", "other people's data is in it"},
	"ru": {"Не включено записей: 6. В них есть данные других людей (например, общий адрес).",
		"Их проверяют наши сотрудники; напишите нам, если хотите узнать подробнее.",
		"их используют и записи других людей", "общие с другими людьми", "в них есть данные других людей"},
	"uz": {"Kiritilmagan yozuvlar: 6. Ularda boshqa odamlarning maʼlumotlari bor (masalan, umumiy manzil).",
		"Ularni xodimlarimiz koʻrib chiqadi; batafsil bilmoqchi boʻlsangiz, bizga yozing.",
		"boshqa odamlarning yozuvlari ham undan foydalanadi", "boshqa odamlar bilan umumiy", "unda boshqa odamlarning maʼlumotlari bor"},
}

// section is the HTML of one section of the report.
func section(t *testing.T, html, id string) string {
	t.Helper()
	_, rest, ok := strings.Cut(html, `<section id="`+id+`">`)
	if !ok {
		t.Fatalf("no %s section", id)
	}
	s, _, _ := strings.Cut(rest, "</section>")
	return s
}

// TestWithheldInEachLanguage: records left out because other people's data
// is in them are told in every language — the total in plain words, that
// staff review them, and a row per system and dataset with why and how
// many — and listed in data.json (schema-valid), counts only: no value of
// the person's records and nothing but system, dataset, reason and count.
func TestWithheldInEachLanguage(t *testing.T) {
	t.Parallel()
	for _, lang := range languages {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			fx := realistic(t, lang)
			fx.in.Withheld = []WithheldItem{
				{System: "app_db", Dataset: "addresses", Reason: "held_by_others", Records: 2},
				{System: "app_db", Dataset: "users", Reason: "shared", Records: 1},
				{System: "bot_db", Dataset: "tg_links", Reason: "other:unknown", Records: 3},
				{System: "stripe", Dataset: "customers", Reason: "relationship", Records: 0}, // says nothing: left out
			}
			p := build(t, fx.in)
			html := string(p.read(t, PathIndex))
			if !strings.Contains(html, `<a href="#withheld">`) {
				t.Error("no contents link to the withheld section")
			}
			sec := section(t, html, "withheld")
			for _, w := range withheldWords[lang] {
				if !strings.Contains(sec, escapeText(w)) {
					t.Errorf("the %s withheld section does not say %q:\n%s", lang, w, sec)
				}
			}
			for _, row := range []struct {
				data    string
				records int
			}{{"· addresses", 2}, {"· users", 1}, {"· tg_links", 3}} {
				if !strings.Contains(sec, fmt.Sprintf(`%s</td>`, row.data)) || !strings.Contains(sec, fmt.Sprintf(`<td class="num">%d</td>`, row.records)) {
					t.Errorf("no row for %s with %d records:\n%s", row.data, row.records, sec)
				}
			}
			if strings.Contains(sec, "customers") {
				t.Error("an item with no records is shown")
			}
			if n := strings.Count(sec, "<tr>"); n != 4 {
				t.Errorf("%d table rows, want a header and 3", n)
			}
			// No personal value: none of the person's record values (those
			// long enough not to be a word of the report) is in the section.
			for _, v := range []string{"ana.lukasz@example.com", "+79991234567", "Łukasz"} {
				if strings.Contains(sec, escapeText(v)) {
					t.Errorf("the withheld section holds %q", v)
				}
			}
			for _, r := range fx.in.Records {
				for _, f := range r.Fields {
					if s, ok := f.Value.(string); ok && len(s) >= 8 && strings.Contains(sec, escapeText(s)) {
						t.Errorf("the withheld section holds the value of %s.%s: %q", r.Dataset, f.Field, s)
					}
				}
				if strings.Contains(sec, r.Key) {
					t.Errorf("the withheld section holds a record key %q", r.Key)
				}
			}

			var data struct {
				Withheld []map[string]any `json:"withheld"`
			}
			validData(t, p, &data)
			want := []map[string]any{
				{"system": "app_db", "dataset": "addresses", "reason": "held_by_others", "records": 2.0},
				{"system": "app_db", "dataset": "users", "reason": "shared", "records": 1.0},
				{"system": "bot_db", "dataset": "tg_links", "reason": "other:unknown", "records": 3.0},
			}
			if len(data.Withheld) != len(want) {
				t.Fatalf("data.json withheld %v, want %v", data.Withheld, want)
			}
			for i := range want {
				if !maps.Equal(data.Withheld[i], want[i]) {
					t.Errorf("data.json withheld[%d] = %v, want %v", i, data.Withheld[i], want[i])
				}
			}
		})
	}
}

// TestWithheldOneAndNone: one record is told in the singular; with
// nothing withheld there is no section and data.json has no withheld
// member (it is optional).
func TestWithheldOneAndNone(t *testing.T) {
	t.Parallel()
	fx := realistic(t, "en")
	fx.in.Withheld = []WithheldItem{{System: "app_db", Dataset: "addresses", Reason: "held_by_others", Records: 1}}
	sec := section(t, string(build(t, fx.in).read(t, PathIndex)), "withheld")
	if !strings.Contains(sec, escapeText("1 record was not included because other people's data is in it (for example, a shared address).")) {
		t.Errorf("one record is not told in the singular:\n%s", sec)
	}

	for _, w := range [][]WithheldItem{nil, {{System: "app_db", Dataset: "addresses", Reason: "shared"}}} {
		fx.in.Withheld = w
		p := build(t, fx.in)
		if html := string(p.read(t, PathIndex)); strings.Contains(html, `id="withheld"`) || strings.Contains(html, "#withheld") {
			t.Errorf("a withheld section with %v", w)
		}
		var data map[string]any
		validData(t, p, &data)
		if _, ok := data["withheld"]; ok {
			t.Errorf("data.json has withheld with %v", w)
		}
	}

	fx.in.Withheld = []WithheldItem{{Dataset: "addresses", Reason: "shared", Records: 1}}
	if _, err := newBuilder(fx.in); err == nil {
		t.Error("a withheld item without a system was accepted")
	}
}

// The report renders these keys from Go code.
func TestWithheldMessages(t *testing.T) {
	t.Parallel()
	for _, lang := range languages {
		for _, k := range []string{"withheld.title", "withheld.summary.one", "withheld.summary.other", "withheld.staff", "col.reason",
			"withheld.reason.shared", "withheld.reason.relationship", "withheld.reason.held_by_others", "withheld.reason.other_owner",
			"withheld.reason.other"} {
			if _, ok := messages[lang][k]; !ok {
				t.Errorf("no %s message %s", lang, k)
			}
		}
	}
}
