package dsar

import (
	"strings"
	"testing"

	"github.com/steward-privacy/steward/connectors"
)

func TestCleanReviewBoundsWhatAConnectorSays(t *testing.T) {
	in := []connectors.Review{
		{Dataset: " addresses ", Reference: strings.Repeat("r", 500), Reason: connectors.ReviewShared, Records: 2, Holders: -1},
		{Dataset: "empty", Reason: connectors.ReviewShared, Records: 0},
		{Dataset: "odd", Reason: "because", Records: 1},
	}
	for range maxReviewItems + 5 {
		in = append(in, connectors.Review{Dataset: "many", Reason: connectors.ReviewOtherOwner, Records: 1})
	}
	out := cleanReview(in)
	if len(out) != maxReviewItems {
		t.Fatalf("%d items, want %d", len(out), maxReviewItems)
	}
	if out[0].Dataset != "addresses" || len(out[0].Reference) > maxReviewText+len("…") || out[0].Holders != 0 {
		t.Errorf("first item %+v", out[0])
	}
	if out[1].Reason != "other:because" {
		t.Errorf("unknown reason kept as %q", out[1].Reason)
	}
	if got, want := reviewCount(out), reviewCount(in); got != want {
		t.Errorf("%d records after folding, want %d", got, want)
	}
}

func TestReviewSummaryInEachLanguage(t *testing.T) {
	for lang, want := range map[string]string{
		"en": "3 records were not erased because other people's data is in them",
		"ru": "Не удалено записей: 3.",
		"uz": "Oʻchirilmagan yozuvlar: 3.",
	} {
		if got := reviewSummary(lang, 3); !strings.Contains(got, want) {
			t.Errorf("%s: %q lacks %q", lang, got, want)
		}
	}
	if got := reviewSummary("en", 1); !strings.HasPrefix(got, "1 record was not erased") {
		t.Errorf("singular: %q", got)
	}
}

func TestWithheldSummaryInEachLanguage(t *testing.T) {
	for _, c := range []struct {
		lang    string
		n       int
		contact string
		want    []string
	}{
		{"en", 3, "help@example.com", []string{"3 records were not included in your data because other people's data is in them",
			"Our staff review them", "write to us at help@example.com and quote the request ID"}},
		{"en", 1, "", []string{"1 record was not included in your data because other people's data is in it", "contact us and quote the request ID"}},
		{"ru", 3, "help@example.com", []string{"Не включено записей: 3.", "напишите нам (help@example.com) и укажите номер запроса"}},
		{"ru", 3, "", []string{"свяжитесь с нами и укажите номер запроса"}},
		{"uz", 3, "help@example.com", []string{"Kiritilmagan yozuvlar: 3.", "bizga yozing (help@example.com)"}},
		{"uz", 3, "", []string{"biz bilan bogʻlaning"}},
	} {
		got := withheldSummary(c.lang, c.n, c.contact)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s %d %q: %q lacks %q", c.lang, c.n, c.contact, got, w)
			}
		}
	}
}
