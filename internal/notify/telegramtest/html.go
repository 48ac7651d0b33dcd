package telegramtest

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Entity is a piece of formatting found in a message, as the Bot API reports
// it in Message.entities: its type ("bold", "italic", "underline",
// "strikethrough", "spoiler", "text_link", "code", "pre", "blockquote",
// "custom_emoji"), and where it lies in the message's plain text, counted in
// UTF-16 code units as Telegram counts.
type Entity struct {
	Type   string `json:"type"`
	Offset int    `json:"offset"`
	Length int    `json:"length"`
	URL    string `json:"url,omitempty"` // text_link only
}

// tagEntity maps each tag of the Bot API's HTML style to its entity type.
var tagEntity = map[string]string{
	"b": "bold", "strong": "bold",
	"i": "italic", "em": "italic",
	"u": "underline", "ins": "underline",
	"s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
	"span": "spoiler", "tg-spoiler": "spoiler",
	"a":          "text_link",
	"code":       "code",
	"pre":        "pre",
	"blockquote": "blockquote",
	"tg-emoji":   "custom_emoji",
}

// tagAttrs lists the attributes each tag may carry; anything else is
// refused, so a template that leans on an attribute Telegram ignores (style,
// class on a <b>) is caught here rather than rendered oddly.
var tagAttrs = map[string][]string{
	"a":          {"href"},
	"span":       {"class"},
	"code":       {"class"},
	"pre":        {"language"},
	"blockquote": {"expandable"},
	"tg-emoji":   {"emoji-id"},
}

// namedEntities are the only named HTML entities the Bot API knows.
var namedEntities = map[string]rune{"lt": '<', "gt": '>', "amp": '&', "quot": '"'}

// MaxTextLength is the longest message text sendMessage accepts, in
// characters after entities parsing.
const MaxTextLength = 4096

// open is a start tag waiting for its end tag, with what encloses it
// (itself included), so the nesting rules cost the same at any depth.
type open struct {
	name   string
	offset int // where its text starts, in UTF-16 units
	url    string
	code   bool // inside a code or pre
	excl   bool // inside an entity that may contain no other exclusive one
	quote  bool // inside a blockquote
}

// ParseHTML parses text as sendMessage does with parse_mode HTML and
// returns the plain text the person sees and its entities. It follows the
// Bot API's "HTML style": only the documented tags and attributes, tags
// closed in order, <a> with an href, no entities inside <code> or <pre>
// (but <code> directly in <pre>), and '<', '>' and '&' escaped everywhere
// else as &lt; &gt; &amp; (or &quot; or a numeric entity). Telegram itself
// passes an '&' that starts no entity through as text; this parser refuses
// it, since the documentation says it must be escaped and a template that
// forgets is wrong. Errors read like Telegram's: "can't parse entities:
// ... at byte offset N".
func ParseHTML(text string) (string, []Entity, error) {
	if !utf8.ValidString(text) {
		return "", nil, fmt.Errorf("text must be encoded in UTF-8")
	}
	var (
		out      strings.Builder
		units    int // UTF-16 length of out
		stack    []open
		entities []Entity
	)
	emit := func(r rune) {
		out.WriteRune(r)
		units += utf16.RuneLen(r)
	}
	fail := func(at int, format string, args ...any) (string, []Entity, error) {
		return "", nil, fmt.Errorf("can't parse entities: %s at byte offset %d", fmt.Sprintf(format, args...), at)
	}
	for i := 0; i < len(text); {
		c := text[i]
		switch c {
		case '&':
			r, n, ok := decodeEntity(text[i:])
			if !ok {
				return fail(i, "unescaped '&' (write &amp;)")
			}
			emit(r)
			i += n
		case '>':
			return fail(i, "unescaped '>' (write &gt;)")
		case '<':
			end := strings.IndexByte(text[i:], '>')
			if end < 0 {
				return fail(i, "unclosed start tag")
			}
			tag := text[i+1 : i+end]
			if strings.HasPrefix(tag, "/") {
				name := strings.ToLower(strings.TrimSpace(tag[1:]))
				if len(stack) == 0 {
					return fail(i, "unexpected end tag")
				}
				top := stack[len(stack)-1]
				if name != top.name {
					return fail(i, "unmatched end tag, expected \"</%s>\", found \"</%s>\"", top.name, name)
				}
				stack = stack[:len(stack)-1]
				if length := units - top.offset; length > 0 {
					entities = append(entities, Entity{Type: tagEntity[top.name], Offset: top.offset, Length: length, URL: top.url})
				}
				i += end + 1
				continue
			}
			name, attrs, err := parseTag(tag)
			if err != nil {
				return fail(i, "%v", err)
			}
			_, ok := tagEntity[name]
			if !ok {
				return fail(i, "unsupported start tag %q", name)
			}
			for k := range attrs {
				if !contains(tagAttrs[name], k) {
					return fail(i, "unsupported attribute %q in tag %q", k, name)
				}
			}
			o := open{name: name, offset: units}
			switch name {
			case "a":
				href := attrs["href"]
				u, err := url.Parse(href)
				if err != nil || u.Scheme == "" || (u.Scheme != "tg" && u.Scheme != "mailto" && u.Host == "") {
					return fail(i, "invalid or missing href in tag \"a\"")
				}
				o.url = href
			case "span":
				if attrs["class"] != "tg-spoiler" {
					return fail(i, "tag \"span\" must have class \"tg-spoiler\"")
				}
			}
			o, err = nest(stack, o)
			if err != nil {
				return fail(i, "%v", err)
			}
			stack = append(stack, o)
			i += end + 1
		default:
			r, n := utf8.DecodeRuneInString(text[i:])
			emit(r)
			i += n
		}
	}
	if len(stack) > 0 {
		return fail(len(text), "can't find end tag corresponding to start tag %q", stack[len(stack)-1].name)
	}
	plain := out.String()
	// Telegram trims the text it shows, and entities move with it.
	trimmed := strings.TrimSpace(plain)
	lead := utf16Len(plain[:strings.Index(plain, trimmed)])
	for k := range entities {
		entities[k].Offset = max(entities[k].Offset-lead, 0)
	}
	if trimmed == "" {
		return "", nil, fmt.Errorf("message text is empty")
	}
	if n := utf16Len(trimmed); n > MaxTextLength {
		return "", nil, fmt.Errorf("message is too long (%d characters after entities parsing, at most %d)", n, MaxTextLength)
	}
	return trimmed, entities, nil
}

// exclusive are the entities that may not contain one another (the Bot
// API's "all other entities can't contain each other"); bold, italic,
// underline, strikethrough and spoiler nest freely outside code and pre.
var exclusive = map[string]bool{"text_link": true, "code": true, "pre": true, "custom_emoji": true}

// nest applies the Bot API's nesting rules to a tag opened inside the tags
// on stack and returns it with what encloses it.
func nest(stack []open, o open) (open, error) {
	kind := tagEntity[o.name]
	o.code = kind == "code" || kind == "pre"
	o.excl = exclusive[kind]
	o.quote = kind == "blockquote"
	if len(stack) == 0 {
		return o, nil
	}
	p := stack[len(stack)-1]
	switch {
	case p.code && tagEntity[p.name] == "pre" && kind == "code":
		// <pre><code class="language-go"> names the language.
	case p.code:
		return o, fmt.Errorf("no entities can be nested in \"code\" or \"pre\"")
	case p.excl && o.excl:
		return o, fmt.Errorf("%q can't be nested in a link, code, pre or custom emoji", o.name)
	case p.quote && o.quote:
		return o, fmt.Errorf("blockquotes can't be nested")
	}
	o.code, o.excl, o.quote = o.code || p.code, o.excl || p.excl, o.quote || p.quote
	return o, nil
}

// parseTag splits the inside of a start tag into its lower-cased name and
// attributes. Values may be double-quoted, single-quoted or bare, and have
// their entities decoded.
func parseTag(s string) (string, map[string]string, error) {
	if strings.HasSuffix(s, "/") {
		return "", nil, fmt.Errorf("self-closing tags are not supported")
	}
	i := 0
	for i < len(s) && (isNameByte(s[i])) {
		i++
	}
	if i == 0 {
		return "", nil, fmt.Errorf("empty tag name")
	}
	name := strings.ToLower(s[:i])
	attrs := map[string]string{}
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			return name, attrs, nil
		}
		start := i
		for i < len(s) && isNameByte(s[i]) {
			i++
		}
		if start == i {
			return "", nil, fmt.Errorf("malformed attribute in tag %q", name)
		}
		key := strings.ToLower(s[start:i])
		if _, dup := attrs[key]; dup {
			return "", nil, fmt.Errorf("duplicate attribute %q in tag %q", key, name)
		}
		if i == len(s) || s[i] != '=' {
			attrs[key] = "" // a bare attribute, such as expandable
			continue
		}
		i++
		var raw string
		switch {
		case i < len(s) && (s[i] == '"' || s[i] == '\''):
			q := s[i]
			end := strings.IndexByte(s[i+1:], q)
			if end < 0 {
				return "", nil, fmt.Errorf("unclosed attribute value in tag %q", name)
			}
			raw = s[i+1 : i+1+end]
			i += end + 2
		default:
			start := i
			for i < len(s) && !isSpace(s[i]) {
				i++
			}
			raw = s[start:i]
		}
		v, err := decodeAll(raw)
		if err != nil {
			return "", nil, fmt.Errorf("attribute %q in tag %q: %v", key, name, err)
		}
		attrs[key] = v
	}
}

// decodeEntity decodes the entity s starts with ("&amp;", "&#39;",
// "&#x2F;"): the character and the entity's length.
func decodeEntity(s string) (rune, int, bool) {
	end := strings.IndexByte(s, ';')
	if end < 2 || end > 10 {
		return 0, 0, false
	}
	body := s[1:end]
	if body[0] == '#' {
		var n uint64
		var err error
		if len(body) > 1 && (body[1] == 'x' || body[1] == 'X') {
			n, err = strconv.ParseUint(body[2:], 16, 32)
		} else {
			n, err = strconv.ParseUint(body[1:], 10, 32)
		}
		r := rune(n)
		if err != nil || n == 0 || !utf8.ValidRune(r) {
			return 0, 0, false
		}
		return r, end + 1, true
	}
	r, ok := namedEntities[body]
	return r, end + 1, ok
}

// decodeAll decodes every entity in an attribute value, refusing a bare '&'
// or '<' as the text outside tags does.
func decodeAll(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); {
		switch s[i] {
		case '&':
			r, n, ok := decodeEntity(s[i:])
			if !ok {
				return "", fmt.Errorf("unescaped '&'")
			}
			b.WriteRune(r)
			i += n
		case '<':
			return "", fmt.Errorf("unescaped '<'")
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), nil
}

func isNameByte(c byte) bool {
	return c == '-' || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// utf16Len is the length of s in UTF-16 code units, the unit of Telegram's
// limits and entity offsets.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}
