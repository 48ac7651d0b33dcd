// Package openapitest checks real HTTP responses against Steward's OpenAPI 3.1 document.
//
// The document in internal/api/openapi.json is what front-end developers and
// generated clients rely on, so it must describe what the server really
// sends. Hand-written documents drift; this package lets the HTTP tests
// assert, response by response, that the status, the media type and the body
// are all documented, and lets a test list the operations that were never
// exercised. Validate only reads responses; requests.go and fuzz.go read the
// request side of the document so the abuse harness can generate hostile
// requests from it (cmd/steward/abuse_test.go).
//
// Only what Steward's document uses is supported: response objects may be
// $refs into the same document, schemas may $ref anything in the document,
// and path items must be inline.
package openapitest

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// docURL is the location the document is registered under in the schema
// compiler. It is never fetched: it only gives "#/components/..." references
// a base to resolve against, so they stay inside the document.
const docURL = "mem://steward/openapi.json"

// methods are the operation fields of an OpenAPI path item.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Doc is a loaded OpenAPI document with every response schema compiled. It
// is immutable after Load, so parallel tests may share one.
type Doc struct {
	ops []*operation
}

type operation struct {
	method    string // upper case
	template  string // e.g. /v1/consents/receipts/{event_id}
	segs      []segment
	responses map[string]*response // "200", "2XX" or "default"
}

// segment is one path segment of a template: a literal, or a pattern when it
// holds a {parameter}.
type segment struct {
	literal string
	re      *regexp.Regexp
}

type response struct {
	content map[string]*media // by media type, lower case, without parameters
}

type media struct {
	schema *jsonschema.Schema // nil: the media type is declared without a schema
	json   bool
}

// Load parses doc, checks it is OpenAPI 3.1, and compiles the schema of
// every response media type as JSON Schema 2020-12 with format assertions on
// (so a malformed date-time fails). It fails on anything it cannot resolve,
// so a broken $ref is caught when the document is loaded, not when a rarely
// seen status first occurs.
func Load(doc []byte) (*Doc, error) {
	// jsonschema.UnmarshalJSON keeps numbers as json.Number, which the
	// compiler needs to treat integers and decimals exactly.
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("openapitest: document is not JSON: %w", err)
	}
	root, ok := raw.(map[string]any)
	if !ok {
		return nil, errors.New("openapitest: document is not a JSON object")
	}
	if v, _ := root["openapi"].(string); !strings.HasPrefix(v, "3.1.") {
		return nil, fmt.Errorf("openapitest: openapi is %q; only 3.1.x documents use JSON Schema 2020-12", v)
	}
	paths, ok := root["paths"].(map[string]any)
	if !ok {
		return nil, errors.New("openapitest: document has no paths object")
	}

	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(docURL, raw); err != nil {
		return nil, fmt.Errorf("openapitest: %w", err)
	}
	// Many responses share one component; compile each location once.
	compiled := map[string]*jsonschema.Schema{}

	d := &Doc{}
	templates := make([]string, 0, len(paths))
	for t := range paths {
		templates = append(templates, t)
	}
	sort.Strings(templates)
	for _, tmpl := range templates {
		item, ok := paths[tmpl].(map[string]any)
		if !ok {
			return nil, fmt.Errorf("openapitest: path %s is not an object", tmpl)
		}
		if _, ok := item["$ref"]; ok {
			return nil, fmt.Errorf("openapitest: path %s: path item $ref is not supported", tmpl)
		}
		segs, err := parseTemplate(tmpl)
		if err != nil {
			return nil, err
		}
		for _, m := range methods {
			rawOp, ok := item[m]
			if !ok {
				continue
			}
			name := strings.ToUpper(m) + " " + tmpl
			opObj, ok := rawOp.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("openapitest: %s: operation is not an object", name)
			}
			resps, ok := opObj["responses"].(map[string]any)
			if !ok || len(resps) == 0 {
				return nil, fmt.Errorf("openapitest: %s: no responses", name)
			}
			op := &operation{method: strings.ToUpper(m), template: tmpl, segs: segs, responses: map[string]*response{}}
			for key, rawResp := range resps {
				if !validStatusKey(key) {
					return nil, fmt.Errorf("openapitest: %s: response key %q is not a status code, a range like 2XX, or default", name, key)
				}
				ptr := pointer("paths", tmpl, m, "responses", key)
				respObj, ptr, err := deref(root, rawResp, ptr)
				if err != nil {
					return nil, fmt.Errorf("openapitest: %s %s: %w", name, key, err)
				}
				r := &response{content: map[string]*media{}}
				content, _ := respObj["content"].(map[string]any)
				for mtKey, rawMedia := range content {
					mt, _, err := mime.ParseMediaType(mtKey)
					if err != nil {
						return nil, fmt.Errorf("openapitest: %s %s: media type %q: %w", name, key, mtKey, err)
					}
					mt = strings.ToLower(mt)
					mObj, ok := rawMedia.(map[string]any)
					if !ok {
						return nil, fmt.Errorf("openapitest: %s %s %s: media type object is not an object", name, key, mtKey)
					}
					md := &media{json: isJSON(mt)}
					if _, ok := mObj["schema"]; ok {
						loc := docURL + "#" + ptr + "/content/" + escapeToken(mtKey) + "/schema"
						sch, ok := compiled[loc]
						if !ok {
							if sch, err = c.Compile(loc); err != nil {
								return nil, fmt.Errorf("openapitest: %s %s %s: schema does not compile: %w", name, key, mtKey, err)
							}
							compiled[loc] = sch
						}
						md.schema = sch
					}
					r.content[mt] = md
				}
				if key != "default" {
					key = strings.ToUpper(key) // 2xx and 2XX are the same range
				}
				op.responses[key] = r
			}
			d.ops = append(d.ops, op)
		}
	}
	return d, nil
}

// Operations lists "METHOD /template" for every operation in the document,
// sorted, so a test can check that each one was exercised.
func (d *Doc) Operations() []string {
	out := make([]string, 0, len(d.ops))
	for _, op := range d.ops {
		out = append(out, op.method+" "+op.template)
	}
	sort.Strings(out)
	return out
}

// Operation returns "METHOD /template" for the operation a request with
// this method and concrete path is documented under, by the same matching
// rules as Validate, so a test can record which entries of Operations it
// exercised.
func (d *Doc) Operation(method, path string) (string, error) {
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	op, err := d.find(strings.ToUpper(method), path)
	if err != nil {
		return "", err
	}
	return op.method + " " + op.template, nil
}

// Validate checks one real response:
//
//   - the operation is found by method (case-insensitive) and the concrete
//     path (a query string or fragment is ignored). Path segments match
//     exactly, case-sensitively, with no trailing-slash folding; a {param}
//     matches one non-empty segment. When several templates match, the one
//     with a literal segment at the first position where they differ wins,
//     so /v1/consents/receipts/jwks.json beats /v1/consents/receipts/{event_id}.
//   - the response is the one documented for the exact status, else for its
//     range (2XX), else "default".
//   - the Content-Type's media type (parameters such as charset ignored,
//     case-insensitive) must be declared for that response, exactly or by a
//     type/* or */* range. A response documented without content must have
//     an empty body.
//   - the body is validated against the media type's schema: parsed as JSON
//     for application/json and any +json type, otherwise validated as a
//     string. A media type declared without a schema accepts any body.
//
// Errors start with the operation, concrete path, status and content type,
// and list every failing location in the body as a JSON pointer.
func (d *Doc) Validate(method, path string, status int, contentType string, body []byte) error {
	method = strings.ToUpper(method)
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	op, err := d.find(method, path)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("%s %s (path %s) status %d", op.method, op.template, path, status)

	key := strconv.Itoa(status)
	r, ok := op.responses[key]
	if !ok {
		key = key[:1] + "XX"
		r, ok = op.responses[key]
	}
	if !ok {
		r, ok = op.responses["default"]
	}
	if !ok {
		return fmt.Errorf("openapitest: %s: status is not documented; documented: %s", where, strings.Join(op.statuses(), ", "))
	}

	if len(r.content) == 0 {
		if len(body) > 0 {
			return fmt.Errorf("openapitest: %s: the document declares no body, but the response has %d bytes", where, len(body))
		}
		return nil
	}
	if contentType == "" {
		return fmt.Errorf("openapitest: %s: response has no Content-Type; documented: %s", where, strings.Join(r.mediaTypes(), ", "))
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("openapitest: %s: Content-Type %q does not parse: %v", where, contentType, err)
	}
	mt = strings.ToLower(mt)
	md := r.content[mt]
	if md == nil {
		if slash := strings.IndexByte(mt, '/'); slash > 0 {
			md = r.content[mt[:slash]+"/*"]
		}
	}
	if md == nil {
		md = r.content["*/*"]
	}
	if md == nil {
		return fmt.Errorf("openapitest: %s: Content-Type %q is not documented; documented: %s", where, mt, strings.Join(r.mediaTypes(), ", "))
	}
	where += " " + mt
	if md.schema == nil {
		return nil
	}

	var inst any
	if md.json {
		if inst, err = jsonschema.UnmarshalJSON(bytes.NewReader(body)); err != nil {
			return fmt.Errorf("openapitest: %s: body is not valid JSON: %v", where, err)
		}
	} else {
		if !utf8.Valid(body) {
			return fmt.Errorf("openapitest: %s: body is not valid UTF-8 text", where)
		}
		inst = string(body)
	}
	if err := md.schema.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if !errors.As(err, &ve) {
			return fmt.Errorf("openapitest: %s: %w", where, err)
		}
		return fmt.Errorf("openapitest: %s: body does not match the schema:\n%s", where, describe(ve))
	}
	return nil
}

// find picks the operation for method and a concrete path.
func (d *Doc) find(method, path string) (*operation, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("openapitest: path %q does not start with /", path)
	}
	parts := strings.Split(path, "/")[1:]
	var best *operation
	var other []string // methods documented for matching paths, for the error
	for _, op := range d.ops {
		if !op.matches(parts) {
			continue
		}
		if op.method != method {
			other = append(other, op.method+" "+op.template)
			continue
		}
		if best == nil || moreSpecific(op, best) {
			best = op
		}
	}
	if best != nil {
		return best, nil
	}
	if len(other) > 0 {
		sort.Strings(other)
		return nil, fmt.Errorf("openapitest: %s %s: method is not documented for this path; documented: %s", method, path, strings.Join(other, ", "))
	}
	return nil, fmt.Errorf("openapitest: %s %s: no path in the document matches", method, path)
}

func (op *operation) matches(parts []string) bool {
	if len(parts) != len(op.segs) {
		return false
	}
	for i, s := range op.segs {
		if s.re == nil {
			if parts[i] != s.literal {
				return false
			}
		} else if !s.re.MatchString(parts[i]) {
			return false
		}
	}
	return true
}

// moreSpecific reports whether a should win over b when both match: at the
// first segment where one is literal and the other templated, the literal
// wins (OpenAPI: concrete paths match before templated ones). Equal shapes
// fall back to the template text, only so the choice is deterministic.
func moreSpecific(a, b *operation) bool {
	for i := range a.segs {
		al, bl := a.segs[i].re == nil, b.segs[i].re == nil
		if al != bl {
			return al
		}
	}
	return a.template < b.template
}

func (op *operation) statuses() []string {
	out := make([]string, 0, len(op.responses))
	for k := range op.responses {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (r *response) mediaTypes() []string {
	out := make([]string, 0, len(r.content))
	for k := range r.content {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

var paramRe = regexp.MustCompile(`\{[^{}/]+\}`)

// parseTemplate splits a path template into segments. A segment may mix a
// parameter with literal text ({id}.json); each parameter matches one or
// more characters other than '/'.
func parseTemplate(t string) ([]segment, error) {
	if !strings.HasPrefix(t, "/") {
		return nil, fmt.Errorf("openapitest: path %q does not start with /", t)
	}
	var out []segment
	for _, p := range strings.Split(t, "/")[1:] {
		if !strings.ContainsAny(p, "{}") {
			out = append(out, segment{literal: p})
			continue
		}
		if strings.ContainsAny(paramRe.ReplaceAllString(p, ""), "{}") {
			return nil, fmt.Errorf("openapitest: path %q has an unbalanced brace", t)
		}
		var sb strings.Builder
		sb.WriteByte('^')
		last := 0
		for _, loc := range paramRe.FindAllStringIndex(p, -1) {
			sb.WriteString(regexp.QuoteMeta(p[last:loc[0]]))
			sb.WriteString(`[^/]+`)
			last = loc[1]
		}
		sb.WriteString(regexp.QuoteMeta(p[last:]))
		sb.WriteByte('$')
		out = append(out, segment{re: regexp.MustCompile(sb.String())})
	}
	return out, nil
}

func validStatusKey(k string) bool {
	if k == "default" {
		return true
	}
	if len(k) != 3 || k[0] < '1' || k[0] > '5' {
		return false
	}
	if strings.EqualFold(k[1:], "XX") {
		return true
	}
	_, err := strconv.Atoi(k)
	return err == nil
}

func isJSON(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

// deref follows $ref chains of OpenAPI objects (here: response objects)
// within the document and returns the object with its JSON pointer, which
// is where the schemas inside it are compiled from.
func deref(root map[string]any, v any, ptr string) (map[string]any, string, error) {
	for range 16 {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, "", fmt.Errorf("%s is not an object", ptr)
		}
		ref, ok := obj["$ref"].(string)
		if !ok {
			return obj, ptr, nil
		}
		if !strings.HasPrefix(ref, "#/") {
			return nil, "", fmt.Errorf("$ref %q: only references within the document (#/...) are supported", ref)
		}
		frag, err := url.PathUnescape(ref[1:])
		if err != nil {
			return nil, "", fmt.Errorf("$ref %q: %v", ref, err)
		}
		if v, err = resolve(root, frag); err != nil {
			return nil, "", fmt.Errorf("$ref %q: %v", ref, err)
		}
		ptr = frag
	}
	return nil, "", fmt.Errorf("%s: $ref chain is too long (a cycle?)", ptr)
}

// resolve evaluates an RFC 6901 JSON pointer against the document.
func resolve(root any, ptr string) (any, error) {
	cur := root
	for _, tok := range strings.Split(ptr, "/")[1:] {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("nothing at %s", ptr)
		}
		if cur, ok = obj[tok]; !ok {
			return nil, fmt.Errorf("nothing at %s", ptr)
		}
	}
	return cur, nil
}

// pointer builds a JSON pointer from raw tokens.
func pointer(tokens ...string) string {
	var sb strings.Builder
	for _, t := range tokens {
		sb.WriteByte('/')
		sb.WriteString(escapeToken(t))
	}
	return sb.String()
}

// escapeToken escapes a pointer token (RFC 6901) and then percent-encodes it,
// because the compiler reads the pointer from a URI fragment: path templates
// carry braces and media types carry '+'.
func escapeToken(t string) string {
	return url.PathEscape(strings.ReplaceAll(strings.ReplaceAll(t, "~", "~0"), "/", "~1"))
}

// describe lists the leaf failures of a validation error, one per line, each
// naming the body location and the schema that refused it. The leaves are
// what a person has to fix; the tree above them (allOf, $ref) is noise.
func describe(ve *jsonschema.ValidationError) string {
	var lines []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		// Error of a leaf reads "at '<pointer>': <reason>"; the root
		// pointer is empty, which reads better spelled out.
		line := "  - " + strings.Replace(e.Error(), "at '':", "at '' (body root):", 1)
		if _, frag, ok := strings.Cut(e.SchemaURL, "#"); ok {
			if f, err := url.PathUnescape(frag); err == nil {
				frag = f
			}
			line += " (schema #" + frag + ")"
		}
		lines = append(lines, line)
	}
	walk(ve)
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
