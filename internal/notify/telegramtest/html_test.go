package telegramtest

import (
	"strings"
	"testing"
	"unicode/utf8"
)

type htmlCase struct {
	name  string
	in    string
	plain string // "" when refused
	links []string
}

func htmlCases() []htmlCase {
	return []htmlCase{
		{name: "plain", in: "Hello", plain: "Hello"},
		{name: "bold_and_link", in: `<b>Request</b> <a href="https://x.example/s?a=1&amp;b=2">status</a>`, plain: "Request status",
			links: []string{"https://x.example/s?a=1&b=2"}},
		{name: "entities_decoded", in: "a &lt;b&gt; &amp; &quot;c&quot; &#39;d&#39; &#x41;", plain: `a <b> & "c" 'd' A`},
		{name: "nested_formatting", in: "<b><i>x</i></b><u>y</u><s>z</s>", plain: "xyz"},
		{name: "code_in_pre", in: `<pre><code class="language-go">x := 1</code></pre>`, plain: "x := 1"},
		{name: "spoiler_span", in: `<span class="tg-spoiler">s</span>`, plain: "s"},
		{name: "cyrillic_and_newlines", in: "Здравствуйте!\n\n<b>Номер</b>", plain: "Здравствуйте!\n\nНомер"},
		{name: "trimmed", in: "  \n hi \n", plain: "hi"},
		{name: "unsupported_tag", in: "<p>x</p>"},
		{name: "unclosed_tag", in: "<b>x"},
		{name: "crossed_tags", in: "<b><i>x</b></i>"},
		{name: "stray_end_tag", in: "x</b>"},
		{name: "bare_ampersand", in: "Q&A"},
		{name: "bare_lt", in: "1 < 2"},
		{name: "bare_gt", in: "2 > 1"},
		{name: "unknown_entity", in: "&nbsp;"},
		{name: "link_without_href", in: "<a>x</a>"},
		{name: "javascript_link", in: `<a href="javascript:alert(1)">x</a>`},
		{name: "link_in_link", in: `<a href="https://a.example/"><a href="https://b.example/">x</a></a>`},
		{name: "bold_in_code", in: "<code><b>x</b></code>"},
		{name: "code_in_link", in: `<a href="https://a.example/"><code>x</code></a>`},
		{name: "code_in_bold_in_pre", in: "<pre><b><code>x</code></b></pre>"},
		{name: "quote_in_quote", in: "<blockquote><blockquote>x</blockquote></blockquote>"},
		{name: "bold_in_link_in_quote", in: `<blockquote expandable><a href="https://a.example/"><b>x</b></a></blockquote>`, plain: "x",
			links: []string{"https://a.example/"}},
		{name: "deeply_nested", in: strings.Repeat("<b><i>", 5000) + "x" + strings.Repeat("</i></b>", 5000), plain: "x"},
		{name: "extra_attribute", in: `<b style="color:red">x</b>`},
		{name: "self_closing", in: "<br/>"},
		{name: "empty", in: "<b> </b>"},
		{name: "invalid_utf8", in: "\xff"},
		{name: "too_long", in: strings.Repeat("я", MaxTextLength+1)},
		{name: "longest", in: strings.Repeat("я", MaxTextLength), plain: strings.Repeat("я", MaxTextLength)},
		// An emoji is two UTF-16 units: 2049 of them exceed 4096.
		{name: "too_long_in_utf16", in: strings.Repeat("😀", MaxTextLength/2+1)},
	}
}

func TestParseHTML(t *testing.T) {
	t.Parallel()
	for _, c := range htmlCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			plain, entities, err := ParseHTML(c.in)
			if c.plain == "" {
				if err == nil {
					t.Fatalf("accepted %q as %q", c.in, plain)
				}
				if !strings.Contains(err.Error(), "entities") && !strings.Contains(err.Error(), "message") && !strings.Contains(err.Error(), "UTF-8") {
					t.Errorf("error %q does not read like Telegram's", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused %q: %v", c.in, err)
			}
			if plain != c.plain {
				t.Errorf("plain = %q, want %q", plain, c.plain)
			}
			var links []string
			for _, e := range entities {
				if e.Type == "text_link" {
					links = append(links, e.URL)
				}
			}
			if strings.Join(links, " ") != strings.Join(c.links, " ") {
				t.Errorf("links = %v, want %v", links, c.links)
			}
		})
	}

	t.Run("entity_offsets_in_utf16", func(t *testing.T) {
		t.Parallel()
		// "😀 " is three UTF-16 units; the bold word follows.
		_, entities, err := ParseHTML("😀 <b>bold</b>")
		if err != nil {
			t.Fatal(err)
		}
		if len(entities) != 1 || entities[0] != (Entity{Type: "bold", Offset: 3, Length: 4}) {
			t.Errorf("entities = %+v, want bold at 3 for 4", entities)
		}
	})
}

// FuzzParseHTML checks that arbitrary markup never panics, and that what is
// accepted is non-empty valid text within the limit whose entities lie
// inside it; escaping the plain text again round-trips.
func FuzzParseHTML(f *testing.F) {
	for _, c := range htmlCases() {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		plain, entities, err := ParseHTML(in)
		if err != nil {
			return
		}
		n := utf16Len(plain)
		if plain == "" || n > MaxTextLength || !utf8.ValidString(plain) {
			t.Fatalf("accepted %q as %q (%d units)", in, plain, n)
		}
		for _, e := range entities {
			if e.Offset < 0 || e.Length <= 0 || e.Type == "" {
				t.Errorf("entity %+v", e)
			}
		}
		escaped := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(plain)
		again, _, err := ParseHTML(escaped)
		if err != nil || again != plain {
			t.Errorf("escaped plain text %q did not round-trip: %q, %v", escaped, again, err)
		}
	})
}
