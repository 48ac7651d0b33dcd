package objectstore

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/steward-privacy/steward/connectors"
)

// maxTemplate bounds a key template, as the data map does.
const maxTemplate = 512

// maxValue bounds one identity value put into a key: the longest id the
// product issues is far shorter, and S3 keys end at 1,024 bytes.
const maxValue = 255

// maxPrefixes bounds how many prefixes one subject's identities expand to
// (a template with two placeholders multiplies the values): more is not a
// person but a malformed request.
const maxPrefixes = 256

// Template is a compiled key template such as "uploads/{user_id}/". Each
// placeholder takes the subject's identity values of one type; nothing else
// about a key comes from outside the reviewed data map.
type Template struct {
	raw   string
	parts []part
}

// part is a literal run of the template, or one placeholder.
type part struct {
	lit  string
	name string // placeholder name; "" for a literal
	// typ is the identity type whose values fill the placeholder; "" for a
	// placeholder no identity of the subject can fill (a reference to a
	// field that is not an identity): it expands to nothing.
	typ string
}

// Resolver maps a placeholder name to the identity type filling it; ok is
// false for a name that is neither an identity type nor a field of the
// dataset.
type Resolver func(name string) (typ string, ok bool)

// ParseTemplate compiles a key template. It refuses every template that
// could address keys beyond one subject's: an absolute or escaping path,
// encoded separators, globs, a template without a placeholder (every
// subject's objects), and a placeholder not closed by '/' (subject 12's
// prefix would also cover subject 123's keys).
func ParseTemplate(tmpl string, resolve Resolver) (*Template, error) {
	bad := func(why string) error { return fmt.Errorf("unsafe key template %q: %s", tmpl, why) }
	switch {
	case tmpl == "":
		return nil, bad("empty")
	case len(tmpl) > maxTemplate:
		return nil, bad(fmt.Sprintf("longer than %d bytes", maxTemplate))
	case !utf8.ValidString(tmpl):
		return nil, bad("not valid UTF-8")
	case strings.HasPrefix(tmpl, "/"):
		return nil, bad("must not start with '/' (an absolute key)")
	case strings.Contains(tmpl, ".."):
		return nil, bad("must not contain '..'")
	case strings.Contains(tmpl, `\`):
		return nil, bad(`must not contain '\'`)
	case strings.Contains(tmpl, "%"):
		return nil, bad("must not contain percent-escapes such as %2f")
	case strings.Contains(strings.ToLower(tmpl), "__0x"):
		// gocloud's own key escape ("__0x2f__" is '/'): a driver would
		// decode it into a separator.
		return nil, bad("must not contain gocloud key escapes such as __0x2f__")
	case strings.Contains(tmpl, "//"):
		return nil, bad("must not contain an empty segment '//'")
	case strings.HasPrefix(tmpl, "./") || strings.Contains(tmpl, "/./"):
		return nil, bad("must not contain a '.' segment")
	case strings.ContainsAny(tmpl, "*?[]"):
		return nil, bad("must not contain glob characters (* ? [ ])")
	}
	for _, r := range tmpl {
		if unicode.IsSpace(r) || isControl(r) {
			return nil, bad(fmt.Sprintf("must not contain space or control character %U", r))
		}
	}
	t := &Template{raw: tmpl}
	rest := tmpl
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			t.parts = append(t.parts, part{lit: rest})
			break
		}
		if rest[open] == '}' {
			return nil, bad("has a '}' without a '{'")
		}
		if open > 0 {
			t.parts = append(t.parts, part{lit: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, bad("has a '{' without a '}'")
		}
		name := rest[open+1 : open+end]
		if !placeholderName(name) {
			return nil, bad(fmt.Sprintf("placeholder {%s} is not a plain name", name))
		}
		rest = rest[open+end+1:]
		if !strings.HasPrefix(rest, "/") {
			return nil, bad(fmt.Sprintf("placeholder {%s} must be followed by '/'; otherwise subject 12's prefix also covers subject 123's keys", name))
		}
		typ, ok := resolve(name)
		if !ok {
			return nil, bad(fmt.Sprintf("placeholder {%s} is neither an identity type (user_id, tg, ...) nor an identity or reference field of the dataset", name))
		}
		if typ == "oauth" {
			// An OAuth id is unique only per provider: the same value from
			// two providers is two people.
			return nil, bad(fmt.Sprintf("placeholder {%s} is an OAuth id, which names a person only together with its provider", name))
		}
		t.parts = append(t.parts, part{name: name, typ: typ})
	}
	if !slices.ContainsFunc(t.parts, func(p part) bool { return p.name != "" }) {
		return nil, bad("has no placeholder, so it would address every subject's objects")
	}
	return t, nil
}

func placeholderName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// String is the template as the data map spells it.
func (t *Template) String() string { return t.raw }

// Head is the literal text before the first placeholder: the part of the
// key space every subject's objects of the dataset share ("uploads/").
func (t *Template) Head() string {
	if t.parts[0].name != "" {
		return ""
	}
	return t.parts[0].lit
}

// Types are the identity types the template's placeholders take, in
// order; "" for a placeholder nothing fills.
func (t *Template) Types() []string {
	var out []string
	for _, p := range t.parts {
		if p.name != "" {
			out = append(out, p.typ)
		}
	}
	return out
}

// Expand returns every prefix the identities reach: each placeholder takes
// every valid value of its type (a subject with two account ids reaches
// both prefixes). A value that ValidValue refuses cannot be a key of the
// subject and is skipped; a placeholder without values expands to nothing
// rather than to a wider prefix. The result is sorted and has no
// duplicates. More than maxPrefixes prefixes is an error, not a silently
// shortened list: an export must not quietly leave objects out.
func (t *Template) Expand(ids []connectors.Identity) ([]string, error) {
	values := map[string][]string{}
	for _, id := range ids {
		if ValidValue(id.Value) == nil && !slices.Contains(values[id.Type], id.Value) {
			values[id.Type] = append(values[id.Type], id.Value)
		}
	}
	out := []string{""}
	for _, p := range t.parts {
		if p.name == "" {
			for i := range out {
				out[i] += p.lit
			}
			continue
		}
		vs := values[p.typ]
		if p.typ == "" || len(vs) == 0 {
			return nil, nil
		}
		if len(out)*len(vs) > maxPrefixes {
			return nil, fmt.Errorf("the subject's identities expand key template %q to more than %d prefixes", t.raw, maxPrefixes)
		}
		next := make([]string, 0, len(out)*len(vs))
		for _, o := range out {
			for _, v := range vs {
				next = append(next, o+v)
			}
		}
		out = next
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Match reports whether key lies under the template for some valid
// placeholder values: the literal parts match and each placeholder spans
// one segment that ValidValue accepts. It tells a dataset's keys from
// others under the same head.
func (t *Template) Match(key string) bool {
	rest := key
	for _, p := range t.parts {
		if p.name == "" {
			if !strings.HasPrefix(rest, p.lit) {
				return false
			}
			rest = rest[len(p.lit):]
			continue
		}
		// Every placeholder is followed by '/', and values hold none.
		i := strings.IndexByte(rest, '/')
		if i < 0 || ValidValue(rest[:i]) != nil {
			return false
		}
		rest = rest[i:]
	}
	return true
}

// Value problems. They never quote the value: it is personal data.
var (
	errEmpty     = errors.New("empty")
	errLong      = fmt.Errorf("longer than %d bytes", maxValue)
	errUTF8      = errors.New("not valid UTF-8")
	errSeparator = errors.New("contains a path separator ('/' or '\\')")
	errDots      = errors.New("is or contains a dot-dot or dot segment")
	errEscape    = errors.New("contains an escape ('%' or gocloud's __0x)")
	errControl   = errors.New("contains a control character")
	errSpace     = errors.New("starts or ends with a space")
)

// ValidValue checks an identity value before it becomes part of a key. A
// value that could change which key is addressed is refused: separators,
// dot segments, percent or gocloud escapes (a driver may decode them into
// separators), control characters, and surrounding spaces (which some
// stores trim).
func ValidValue(v string) error {
	switch {
	case v == "":
		return errEmpty
	case len(v) > maxValue:
		return errLong
	case !utf8.ValidString(v):
		return errUTF8
	case strings.ContainsAny(v, `/\`):
		return errSeparator
	case v == "." || strings.Contains(v, ".."):
		return errDots
	case strings.Contains(v, "%") || strings.Contains(strings.ToLower(v), "__0x"):
		return errEscape
	}
	for _, r := range v {
		if isControl(r) {
			return errControl
		}
	}
	first, _ := utf8.DecodeRuneInString(v)
	last, _ := utf8.DecodeLastRuneInString(v)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return errSpace
	}
	return nil
}

// isControl is a character that has no business in a key: C0 and C1
// controls, DEL, the Unicode line and paragraph separators, the byte-order
// mark, and bidirectional overrides that make a key read as another.
func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || r == 0xfeff ||
		(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}
