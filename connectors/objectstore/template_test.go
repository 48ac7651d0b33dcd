package objectstore_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/objectstore"
)

// resolve is the data map's rule for a dataset without identity fields:
// identity type names, with an optional "_id"; "customer" is a reference
// field to a non-identity field (no values).
func resolve(name string) (string, bool) {
	switch strings.TrimSuffix(name, "_id") {
	case "user", "tg", "email", "visitor", "stripe", "creem", "oauth":
		return strings.TrimSuffix(name, "_id"), true
	case "customer":
		return "", true
	}
	return "", false
}

var validValues = []string{"7", "42", "u_9f3a", "cus_ABC123", "ann@example.com", "a.b", ".x", "1-2", "Ünïcode", "a b"}

var refusedValues = []string{
	"", ".", "..", "../7", "7/../8", "7/..", "a/b", "/7", "7/", `a\b`, `..\7`,
	"%2e%2e", "%2F", "7%2f8", "a%", "__0x2f__", "7__0X2F__8", "__0x2e____0x2e__",
	" 7", "7 ", "\t7", "7\n", "7\x00", "\x7f", "7\u0085", "7\u2028", "\ufeff7", "7\u202e",
	"\xff\xfe", strings.Repeat("x", 256),
}

func TestValidValue(t *testing.T) {
	for _, v := range validValues {
		if err := objectstore.ValidValue(v); err != nil {
			t.Errorf("ValidValue(%q) = %v, want nil", v, err)
		}
	}
	for _, v := range refusedValues {
		err := objectstore.ValidValue(v)
		if err == nil {
			t.Errorf("ValidValue(%q) = nil, want refused", v)
			continue
		}
		if v != "" && len(v) > 1 && strings.Contains(err.Error(), v) {
			t.Errorf("ValidValue(%q): the error %q repeats the value, which is personal data", v, err)
		}
	}
}

var goodTemplates = []string{
	"uploads/{user_id}/", "generated/{user}/", "tg/{tg}/voice/", "a/{user_id}/b/{visitor}/", "u/{user_id}/avatar.png",
	"{user_id}/", "x/{customer}/",
}

var badTemplates = []string{
	"", "/uploads/{user_id}/", "../uploads/{user_id}/", "uploads/../{user_id}/", "uploads/{user_id}/../",
	`uploads\{user_id}/`, "uploads/%2e%2e/{user_id}/", "uploads/%2F{user_id}/", "uploads/__0x2f__/{user_id}/",
	"uploads//{user_id}/", "./uploads/{user_id}/", "uploads/./{user_id}/", "uploads/*/{user_id}/", "uploads/{user_id}?/",
	"uploads/", "uploads", "uploads/{user_id}", "uploads/{user_id}x/", "uploads/{user_id}{tg}/", "uploads/{user_id}:x/",
	"uploads/{nope}/", "uploads/{oauth}/", "uploads/{}/", "uploads/{user_id/", "uploads/user_id}/", "uploads/{us{er}/",
	"uploads /{user_id}/", "uploads/\x00/{user_id}/", "uploads/\u202e/{user_id}/", strings.Repeat("a", 513) + "/{user_id}/",
}

func TestParseTemplate(t *testing.T) {
	for _, s := range goodTemplates {
		if _, err := objectstore.ParseTemplate(s, resolve); err != nil {
			t.Errorf("ParseTemplate(%q): %v", s, err)
		}
	}
	for _, s := range badTemplates {
		if tm, err := objectstore.ParseTemplate(s, resolve); err == nil {
			t.Errorf("ParseTemplate(%q) accepted it (head %q)", s, tm.Head())
		}
	}
}

func TestExpand(t *testing.T) {
	tm, err := objectstore.ParseTemplate("a/{user_id}/b/{tg}/", resolve)
	if err != nil {
		t.Fatal(err)
	}
	ids := []connectors.Identity{
		user("2"), user("1"), user("1"), user("../1"), user(""), user("a/b"),
		{Type: "tg", Value: "9"}, {Type: "email", Value: "x@example.com"},
	}
	got, err := tm.Expand(ids)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a/1/b/9/", "a/2/b/9/"}
	if !slices.Equal(got, want) {
		t.Errorf("Expand = %q, want %q", got, want)
	}
	// A placeholder without values expands to nothing, never to "a/1/b/".
	if got, err := tm.Expand([]connectors.Identity{user("1")}); err != nil || got != nil {
		t.Errorf("Expand without a tg = %q, %v; want nothing", got, err)
	}
	// Only refused values: nothing, never "a//b/9/".
	if got, _ := tm.Expand([]connectors.Identity{user(".."), user(""), {Type: "tg", Value: "9"}}); got != nil {
		t.Errorf("Expand with only refused values = %q; want nothing", got)
	}
	ref, _ := objectstore.ParseTemplate("x/{customer}/", resolve)
	if got, _ := ref.Expand([]connectors.Identity{{Type: "", Value: "cus_1"}, user("1")}); got != nil {
		t.Errorf("a reference placeholder without an identity type expanded to %q", got)
	}
	var many []connectors.Identity
	for i := range 300 {
		many = append(many, user(strings.Repeat("x", 1+i%50)+string(rune('a'+i/50))))
	}
	if _, err := tm.Expand(append(many, connectors.Identity{Type: "tg", Value: "1"})); err == nil {
		t.Error("Expand of 300 ids: want an error, not a silently shortened list")
	}
}

func TestMatch(t *testing.T) {
	tm, _ := objectstore.ParseTemplate("generated/{user_id}/images/", resolve)
	for key, want := range map[string]bool{
		"generated/7/images/a.png":      true,
		"generated/7/images/":           true,
		"generated/7/archives/a.zip":    false,
		"generated/7/imagesx/a.png":     false,
		"generated/../images/a.png":     false,
		"generated//images/a.png":       false,
		"generated/%2e%2e/images/a.png": false,
		"generated/7":                   false,
		"uploads/7/images/a.png":        false,
	} {
		if got := tm.Match(key); got != want {
			t.Errorf("Match(%q) = %v, want %v", key, got, want)
		}
	}
}

// FuzzValidValue: whatever the value, a template expanded with it stays
// under the template's head, adds exactly one segment, and is matched by
// the template; a refused value expands to nothing.
func FuzzValidValue(f *testing.F) {
	for _, v := range append(slices.Clone(validValues), refusedValues...) {
		f.Add(v)
	}
	tm, err := objectstore.ParseTemplate("uploads/{user_id}/", resolve)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := tm.Expand([]connectors.Identity{user(v)})
		if err != nil {
			t.Fatal(err)
		}
		if objectstore.ValidValue(v) != nil {
			if got != nil {
				t.Fatalf("refused value %q expanded to %q", v, got)
			}
			return
		}
		if len(got) != 1 {
			t.Fatalf("valid value %q expanded to %q", v, got)
		}
		p := got[0]
		segs := strings.Split(strings.TrimSuffix(strings.TrimPrefix(p, "uploads/"), "/"), "/")
		if !strings.HasPrefix(p, "uploads/") || !strings.HasSuffix(p, "/") || len(segs) != 1 || segs[0] == "" ||
			segs[0] == "." || segs[0] == ".." || strings.ContainsAny(p, `\%`) || !tm.Match(p+"x") {
			t.Fatalf("valid value %q expanded to the unsafe prefix %q", v, p)
		}
	})
}

// FuzzParseTemplate: an accepted template has a placeholder, no escape,
// and every expansion (with a fixed valid value) stays under its head
// and is matched by it.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range append(slices.Clone(goodTemplates), badTemplates...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := objectstore.ParseTemplate(s, resolve)
		if err != nil {
			return
		}
		if strings.HasPrefix(s, "/") || strings.Contains(s, "..") || strings.ContainsAny(s, `\%*?`) || strings.Contains(s, "//") ||
			!strings.Contains(s, "{") {
			t.Fatalf("accepted unsafe template %q", s)
		}
		ids := []connectors.Identity{user("7"), {Type: "tg", Value: "8"}, {Type: "email", Value: "a@b.c"},
			{Type: "visitor", Value: "v"}, {Type: "stripe", Value: "cus_1"}, {Type: "creem", Value: "c"}}
		got, err := tm.Expand(ids)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range got {
			if !strings.HasPrefix(p, tm.Head()) || !tm.Match(p) || strings.Contains(p, "//") || strings.Contains(p, "..") {
				t.Fatalf("template %q expanded to %q (head %q)", s, p, tm.Head())
			}
		}
	})
}
