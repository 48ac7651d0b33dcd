package openapitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"strings"
)

// Input is one generated request: the path and query are ready to send
// (already escaped), the body is raw bytes so it can carry what no JSON
// encoder writes (invalid UTF-8, broken syntax).
type Input struct {
	// Name says what was changed, for the failure message.
	Name        string
	Path        string // path and query string, escaped
	Body        []byte // nil: no body
	ContentType string // "" with a body: none sent
	// Oversized is set for a request line past the server's header
	// buffer: the server answers from the first 4 KiB and closes with the
	// rest unread, so TCP may reset the connection before the client reads
	// the answer; a sender should tolerate that for this input only.
	Oversized bool
}

// Base is the valid request a fuzzer mutates: concrete path parameters
// (ids of fixtures the test created), query parameters and a body.
type Base struct {
	PathParams map[string]string
	Query      url.Values
	Body       any // nil: the spec's example, or one built from its schema
}

// rawMarker stands for raw bytes in a JSON document: the generator
// encodes a value holding the marker, then swaps the marker's encoding for
// the raw bytes, which a JSON encoder would have escaped or replaced.
const rawMarker = "\u0001openapitest-raw\u0001"

// hostileStrings are string values no field of Steward should store as
// they are: each is either refused or, for free text, an edge a handler
// must survive. invalid UTF-8 is handled separately (raw bytes).
var hostileStrings = []struct{ name, value string }{
	{"NUL byte", "a\x00b"},
	{"control chars", "a\x01\x07\x1b[31mb"},
	{"path traversal", "../../../etc/passwd"},
	{"unicode bidi and emoji", "\u202egnp.exe\U0001F600\u0301"},
	{"sql meta", "'; DROP TABLE consent_events; --"},
	{"whitespace only", "   "},
	{"empty", ""},
}

// wrongTypes returns JSON values that are not of type t.
func wrongTypes(t string) []struct {
	name  string
	value any
} {
	all := []struct {
		name  string
		value any
	}{
		{"string", "1"},
		{"integer", 7},
		{"float", 1.5},
		{"huge number", json.RawMessage("1e400")},
		{"negative", -1},
		{"boolean", true},
		{"object", map[string]any{"a": 1}},
		{"array", []any{1, "a"}},
		{"null", nil},
	}
	skip := map[string][]string{
		"string":  {"string"},
		"integer": {"integer", "negative"},
		"number":  {"integer", "float", "negative"},
		"boolean": {"boolean"},
		"object":  {"object"},
		"array":   {"array"},
	}[t]
	var out []struct {
		name  string
		value any
	}
next:
	for _, w := range all {
		for _, s := range skip {
			if w.name == s {
				continue next
			}
		}
		out = append(out, w)
	}
	return out
}

// Fuzz generates hostile variations of base for spec: the body broken as
// a whole (absent, null, not JSON, wrong media type, deeply nested), each
// field (top level and one level down) of the wrong type, missing, too
// long, holding NUL, control characters, invalid UTF-8 or an enum value
// that does not exist, an unknown field; each path parameter replaced by a
// non-canonical or hostile one; each query parameter repeated, invalid or
// huge, and an unknown one. Most inputs must be refused; a few (free text
// with unicode) may be legal, which the caller tells from the status.
// rng picks among the huge variants so a seed explores different sizes.
func Fuzz(spec RequestSpec, base Base, rng *rand.Rand) []Input {
	g := &gen{spec: spec, base: base, rng: rng}
	g.pathCases()
	g.queryCases()
	if spec.Body != nil {
		g.bodyCases()
	}
	return g.out
}

type gen struct {
	spec RequestSpec
	base Base
	rng  *rand.Rand
	out  []Input
}

// Path builds the concrete path for spec from path parameters and a query.
func Path(spec RequestSpec, params map[string]string, q string) string {
	p := spec.Template
	for _, prm := range spec.In("path") {
		v, ok := params[prm.Name]
		if !ok {
			v = fmt.Sprint(prm.Schema.Example())
		}
		p = strings.ReplaceAll(p, "{"+prm.Name+"}", v)
	}
	if q != "" {
		p += "?" + q
	}
	return p
}

func (g *gen) baseBody() any {
	if g.base.Body != nil {
		return g.base.Body
	}
	if g.spec.Body == nil {
		return nil
	}
	if g.spec.Body.Example != nil {
		return g.spec.Body.Example
	}
	return g.spec.Body.Schema.Example()
}

// add records an input with the base's path and query unless overridden.
func (g *gen) add(name, path string, body []byte, ctype string) {
	if path == "" {
		path = Path(g.spec, g.base.PathParams, g.base.Query.Encode())
	}
	if body == nil && g.spec.Body != nil && ctype == "" && !strings.HasPrefix(name, "body:") {
		body, _ = json.Marshal(g.baseBody())
		ctype = "application/json"
	}
	g.out = append(g.out, Input{Name: name, Path: path, Body: body, ContentType: ctype})
}

func (g *gen) huge(min int) int { return min + 1 + g.rng.IntN(min+64) }

func (g *gen) pathCases() {
	for _, p := range g.spec.In("path") {
		orig := g.base.PathParams[p.Name]
		if orig == "" {
			orig = fmt.Sprint(p.Schema.Example())
		}
		variants := []struct{ name, raw string }{
			{"upper case", url.PathEscape(strings.ToUpper(orig))},
			{"encoded slash traversal", "..%2f..%2fadmin"},
			{"encoded NUL", url.PathEscape(orig) + "%00"},
			{"invalid UTF-8", "%ff%fe"},
			{"unicode", url.PathEscape("ünï\u202e")},
			{"very long", strings.Repeat("a", g.huge(1024))},
			{"space", "%20" + url.PathEscape(orig)},
			{"negative", "-1"},
			{"braces", "%7Bid%7D"},
		}
		if len(orig) > 8 {
			variants = append(variants, struct{ name, raw string }{"truncated", url.PathEscape(orig[:len(orig)-1])})
		}
		for _, v := range variants {
			params := map[string]string{}
			for k, val := range g.base.PathParams {
				params[k] = url.PathEscape(val)
			}
			params[p.Name] = v.raw
			g.add("path "+p.Name+": "+v.name, Path(g.spec, params, g.base.Query.Encode()), nil, "")
		}
	}
}

func (g *gen) queryCases() {
	withQ := func(q string) string {
		params := map[string]string{}
		for k, v := range g.base.PathParams {
			params[k] = url.PathEscape(v)
		}
		return Path(g.spec, params, q)
	}
	base := g.base.Query.Encode()
	join := func(extra string) string {
		if base == "" {
			return extra
		}
		return base + "&" + extra
	}
	g.add("query: unknown parameter", withQ(join("zz_unknown=1")), nil, "")
	g.add("query: NUL in a name", withQ(join("a%00b=1")), nil, "")
	// Past the server's header read buffer (fasthttp: 4 KiB by default).
	// Refused from the headers alone, so sent without a body: a client
	// still writing one may see the connection closed before it reads
	// the answer.
	g.out = append(g.out, Input{Name: "query: URL longer than the header buffer", Path: withQ(join("zz=" + strings.Repeat("x", g.huge(8192)))), Oversized: true})
	for _, p := range g.spec.In("query") {
		name := url.QueryEscape(p.Name)
		without := url.Values{}
		for k, v := range g.base.Query {
			if k != p.Name {
				without[k] = v
			}
		}
		set := func(raw string) string {
			q := without.Encode()
			if q != "" {
				q += "&"
			}
			return q + name + "=" + raw
		}
		orig := g.base.Query.Get(p.Name)
		if orig == "" {
			orig = fmt.Sprint(p.Schema.Example())
		}
		variants := []struct{ name, q string }{
			{"repeated", set(url.QueryEscape(orig) + "&" + name + "=" + url.QueryEscape(orig))},
			{"empty", set("")},
			{"NUL", set("a%00b")},
			{"invalid UTF-8", set("%ff%fe")},
			{"control chars", set("%01%1b")},
			{"huge", set(strings.Repeat("9", g.huge(2000)))},
			{"unicode", set(url.QueryEscape("ü\u202e\U0001F600"))},
			{"brackets", set("[]")},
		}
		switch p.Schema.Type() {
		case "integer", "number":
			variants = append(variants,
				struct{ name, q string }{"not a number", set("abc")},
				struct{ name, q string }{"negative", set("-1")},
				struct{ name, q string }{"float", set("1.5")},
				struct{ name, q string }{"overflow", set("99999999999999999999999")})
		case "boolean":
			variants = append(variants, struct{ name, q string }{"not a boolean", set("maybe")})
		}
		if len(p.Schema.Enum()) > 0 {
			variants = append(variants, struct{ name, q string }{"unknown enum value", set("zz_not_in_enum")})
		}
		if p.Required {
			variants = append(variants, struct{ name, q string }{"missing", without.Encode()})
		}
		for _, v := range variants {
			g.add("query "+p.Name+": "+v.name, withQ(v.q), nil, "")
		}
	}
}

func (g *gen) bodyCases() {
	valid, _ := json.Marshal(g.baseBody())
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	deepObj := []byte(strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000))
	g.add("body: none", "", nil, "")
	g.add("body: empty with JSON type", "", []byte{}, "application/json")
	g.add("body: null", "", []byte("null"), "application/json")
	g.add("body: not JSON", "", []byte("{not json"), "application/json")
	g.add("body: truncated", "", valid[:len(valid)/2], "application/json")
	g.add("body: array", "", []byte("[]"), "application/json")
	g.add("body: string", "", []byte(`"x"`), "application/json")
	g.add("body: number", "", []byte(`12`), "application/json")
	g.add("body: trailing data", "", append(append([]byte{}, valid...), []byte(" {}")...), "application/json")
	g.add("body: wrong content type", "", valid, "text/plain")
	g.add("body: form content type", "", []byte("a=1"), "application/x-www-form-urlencoded")
	g.add("body: no content type", "", valid, "")
	g.add("body: deeply nested array", "", []byte(deep), "application/json")
	g.add("body: deeply nested object", "", deepObj, "application/json")
	g.add("body: invalid UTF-8 outside strings", "", []byte("{\xff}"), "application/json")
	g.add("body: BOM", "", append([]byte("\xef\xbb\xbf"), valid...), "application/json")

	obj, ok := g.baseBody().(map[string]any)
	if !ok {
		return
	}
	g.add("body: unknown field", "", g.encode(obj, []string{"zz_unknown_field"}, 1, nil), "application/json")
	g.add("body: duplicate key", "", dupKey(valid), "application/json")
	g.fieldCases(obj, g.spec.Body.Schema, nil)
}

// dupKey repeats the first key of an encoded object with another value.
func dupKey(valid []byte) []byte {
	if len(valid) < 2 || valid[0] != '{' || valid[1] == '}' {
		return valid
	}
	return append([]byte(`{"zz_dup":1,"zz_dup":"x",`), valid[1:]...)
}

// fieldCases mutates every property of schema (the ones the base sets and
// the ones it does not) and, for object properties, one level below.
func (g *gen) fieldCases(obj map[string]any, schema Schema, prefix []string) {
	props := schema.Properties()
	names := make([]string, 0, len(props))
	for n := range props {
		names = append(names, n)
	}
	sort.Strings(names)
	required := map[string]bool{}
	for _, r := range schema.Required() {
		required[r] = true
	}
	for _, name := range names {
		ps := props[name]
		path := append(append([]string{}, prefix...), name)
		label := "body " + strings.Join(path, ".") + ": "
		for _, w := range wrongTypes(ps.Type()) {
			if w.value == nil && !required[name] {
				continue // null for an optional field may mean "absent"
			}
			g.add(label+"wrong type "+w.name, "", g.encode(g.root(), path, w.value, nil), "application/json")
		}
		if required[name] {
			g.add(label+"missing", "", g.encode(g.root(), path, deleteMarker{}, nil), "application/json")
		}
		if e := ps.Enum(); len(e) > 0 {
			g.add(label+"unknown enum value", "", g.encode(g.root(), path, "zz_not_in_enum", nil), "application/json")
		}
		if ps.Type() == "string" || ps.Type() == "" {
			n := ps.MaxLength()
			if n < 0 {
				n = 4096
			}
			g.add(label+"too long", "", g.encode(g.root(), path, strings.Repeat("é", g.huge(n)), nil), "application/json")
			for _, h := range hostileStrings {
				g.add(label+h.name, "", g.encode(g.root(), path, h.value, nil), "application/json")
			}
			g.add(label+"invalid UTF-8", "", g.encode(g.root(), path, rawMarker, []byte("a\xff\xfe\xc3(b")), "application/json")
			g.add(label+"lone surrogate escape", "", g.encode(g.root(), path, rawMarker, []byte(`a\ud800b`)), "application/json")
			g.add(label+"raw NUL byte", "", g.encode(g.root(), path, rawMarker, []byte("a\x00b")), "application/json")
		}
		if ps.Type() == "integer" || ps.Type() == "number" {
			for _, v := range []json.RawMessage{json.RawMessage("9223372036854775808"), json.RawMessage("-9223372036854775809"), json.RawMessage("1.0000001"), json.RawMessage("-0")} {
				g.add(label+"number "+string(v), "", g.encode(g.root(), path, v, nil), "application/json")
			}
		}
		if ps.Type() == "array" {
			items, _ := ps["items"].(Schema)
			g.add(label+"array of wrong items", "", g.encode(g.root(), path, []any{map[string]any{"x": []any{}}, nil}, nil), "application/json")
			many := make([]any, g.huge(1000))
			for i := range many {
				many[i] = items.Example()
			}
			g.add(label+"huge array", "", g.encode(g.root(), path, many, nil), "application/json")
		}
		if ps.Type() == "object" && len(prefix) == 0 {
			sub, _ := obj[name].(map[string]any)
			if sub == nil {
				sub, _ = ps.Example().(map[string]any)
			}
			if sub != nil {
				g.fieldCases(sub, ps, path)
			}
		}
	}
}

// deleteMarker removes the field instead of setting it.
type deleteMarker struct{}

func (g *gen) root() map[string]any {
	obj, _ := g.baseBody().(map[string]any)
	return obj
}

// encode returns the base object with the value at path replaced (a deep
// copy, so the base is never changed), then raw bytes swapped in for
// rawMarker when raw is set.
func (g *gen) encode(obj map[string]any, path []string, value any, raw []byte) []byte {
	cp := deepCopy(obj).(map[string]any)
	cur := cp
	for i, k := range path {
		if i == len(path)-1 {
			if _, del := value.(deleteMarker); del {
				delete(cur, k)
			} else {
				cur[k] = value
			}
			break
		}
		next, ok := cur[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[k] = next
		}
		cur = next
	}
	b, err := json.Marshal(cp)
	if err != nil {
		return []byte("{}")
	}
	if raw != nil {
		enc, _ := json.Marshal(rawMarker)
		b = bytes.Replace(b, enc[1:len(enc)-1], raw, 1)
	}
	return b
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, val := range x {
			m[k] = deepCopy(val)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, val := range x {
			s[i] = deepCopy(val)
		}
		return s
	default:
		return v
	}
}
