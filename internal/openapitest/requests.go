package openapitest

// The request side of the document, for tests that send requests the
// document describes: a fuzzer that derives hostile inputs from each
// operation's parameters and body schema, and an authorization matrix that
// reads which permission each operation needs. Validate above checks what
// the server answers; this file only builds what a client sends.

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Schema is a JSON Schema object from the document with every $ref
// resolved (to a bounded depth) and allOf merged, so generators can walk it
// without the document at hand.
type Schema map[string]any

// Param is one path, query or header parameter of an operation.
type Param struct {
	Name     string
	In       string // path, query or header
	Required bool
	Schema   Schema
}

// Body is an operation's request body.
type Body struct {
	Required  bool
	MediaType string
	Schema    Schema
	// Example is the media type's example, if the document gives one: a
	// request the server accepts, which makes the best base to mutate.
	Example any
}

// RequestSpec is what the document says a client sends to one operation.
type RequestSpec struct {
	Method   string // upper case
	Template string // e.g. /v1/legal-holds/{id}/lift
	// Public is true for operations whose security is explicitly empty
	// (no API key); every other operation uses the document's global
	// Bearer scheme.
	Public bool
	// Action is the permission the operation's description says it
	// "Needs `...`" (policies/data/roles.json names them); empty for
	// public operations.
	Action string
	Params []Param
	Body   *Body // nil: the operation takes no body
}

// Name is "METHOD /template", as Doc.Operations spells it.
func (r RequestSpec) Name() string { return r.Method + " " + r.Template }

// In lists the parameters of one location (path, query or header).
func (r RequestSpec) In(where string) []Param {
	var out []Param
	for _, p := range r.Params {
		if p.In == where {
			out = append(out, p)
		}
	}
	return out
}

var needsRe = regexp.MustCompile("[Nn]eeds `([a-z_]+\\.[a-z_]+)`")

// LoadRequests reads the request side of every operation of doc, sorted by
// name. It fails if a keyed operation does not say which permission it
// needs, or says two, so the authorization matrix cannot silently skip one.
func LoadRequests(doc []byte) ([]RequestSpec, error) {
	var root map[string]any
	if err := json.Unmarshal(doc, &root); err != nil {
		return nil, fmt.Errorf("openapitest: document is not JSON: %w", err)
	}
	paths, ok := root["paths"].(map[string]any)
	if !ok {
		return nil, errors.New("openapitest: document has no paths object")
	}
	var out []RequestSpec
	for tmpl, rawItem := range paths {
		item, _ := rawItem.(map[string]any)
		for _, m := range methods {
			op, ok := item[m].(map[string]any)
			if !ok {
				continue
			}
			spec := RequestSpec{Method: strings.ToUpper(m), Template: tmpl}
			if sec, ok := op["security"].([]any); ok && len(sec) == 0 {
				spec.Public = true
			}
			if !spec.Public {
				desc, _ := op["description"].(string)
				found := map[string]bool{}
				for _, mm := range needsRe.FindAllStringSubmatch(desc, -1) {
					found[mm[1]] = true
				}
				if len(found) != 1 {
					return nil, fmt.Errorf("openapitest: %s: the description names %d permissions (\"Needs `x`\"), want exactly one", spec.Name(), len(found))
				}
				for a := range found {
					spec.Action = a
				}
			}
			params, _ := op["parameters"].([]any)
			if common, ok := item["parameters"].([]any); ok {
				params = append(common, params...)
			}
			for _, rp := range params {
				obj, err := derefObj(root, rp)
				if err != nil {
					return nil, fmt.Errorf("openapitest: %s: parameter: %w", spec.Name(), err)
				}
				p := Param{}
				p.Name, _ = obj["name"].(string)
				p.In, _ = obj["in"].(string)
				p.Required, _ = obj["required"].(bool)
				if s, ok := obj["schema"]; ok {
					p.Schema = resolveSchema(root, s, 0)
				}
				// A parameter's own example beats its schema's.
				if ex, ok := obj["example"]; ok {
					if p.Schema == nil {
						p.Schema = Schema{}
					}
					p.Schema["example"] = ex
				}
				spec.Params = append(spec.Params, p)
			}
			if rb, ok := op["requestBody"]; ok {
				obj, err := derefObj(root, rb)
				if err != nil {
					return nil, fmt.Errorf("openapitest: %s: requestBody: %w", spec.Name(), err)
				}
				b := &Body{}
				b.Required, _ = obj["required"].(bool)
				content, _ := obj["content"].(map[string]any)
				keys := make([]string, 0, len(content))
				for k := range content {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				for _, k := range keys {
					media, _ := content[k].(map[string]any)
					b.MediaType = k
					b.Schema = resolveSchema(root, media["schema"], 0)
					b.Example = media["example"]
					if k == "application/json" {
						break
					}
				}
				spec.Body = b
			}
			out = append(out, spec)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func derefObj(root map[string]any, v any) (map[string]any, error) {
	obj, _, err := deref(root, v, "")
	return obj, err
}

// resolveSchema copies a schema with $refs replaced by their targets and
// allOf folded into the parent. Recursive schemas stop at depth 8 (an empty
// schema), which is deeper than any request body Steward takes.
func resolveSchema(root map[string]any, v any, depth int) Schema {
	obj, ok := v.(map[string]any)
	if !ok || depth > 8 {
		return Schema{}
	}
	out := Schema{}
	if ref, ok := obj["$ref"].(string); ok && strings.HasPrefix(ref, "#/") {
		if target, err := resolve(root, ref[1:]); err == nil {
			for k, v := range resolveSchema(root, target, depth+1) {
				out[k] = v
			}
		}
	}
	for k, v := range obj {
		switch k {
		case "$ref":
		case "allOf":
			parts, _ := v.([]any)
			for _, p := range parts {
				for pk, pv := range resolveSchema(root, p, depth+1) {
					if _, set := out[pk]; !set {
						out[pk] = pv
					}
				}
			}
		case "properties":
			props, _ := v.(map[string]any)
			m := map[string]any{}
			for name, ps := range props {
				m[name] = resolveSchema(root, ps, depth+1)
			}
			out[k] = m
		case "items", "additionalProperties":
			if sub, ok := v.(map[string]any); ok {
				out[k] = resolveSchema(root, sub, depth+1)
			} else {
				out[k] = v
			}
		case "oneOf", "anyOf":
			parts, _ := v.([]any)
			var rs []any
			for _, p := range parts {
				rs = append(rs, resolveSchema(root, p, depth+1))
			}
			out[k] = rs
		default:
			out[k] = v
		}
	}
	return out
}

// Type is the schema's JSON type ("string", "integer", ...), the first
// non-null one when it lists several, or "" when it does not say.
func (s Schema) Type() string {
	switch t := s["type"].(type) {
	case string:
		return t
	case []any:
		for _, x := range t {
			if str, _ := x.(string); str != "" && str != "null" {
				return str
			}
		}
	}
	if _, ok := s["properties"]; ok {
		return "object"
	}
	return ""
}

// Properties returns the schema's properties by name.
func (s Schema) Properties() map[string]Schema {
	props, _ := s["properties"].(map[string]any)
	out := make(map[string]Schema, len(props))
	for k, v := range props {
		if sch, ok := v.(Schema); ok {
			out[k] = sch
		}
	}
	return out
}

// Required lists the schema's required properties.
func (s Schema) Required() []string {
	req, _ := s["required"].([]any)
	out := make([]string, 0, len(req))
	for _, r := range req {
		if str, ok := r.(string); ok {
			out = append(out, str)
		}
	}
	return out
}

// Enum lists the schema's allowed values, if it has an enum or const.
func (s Schema) Enum() []any {
	if e, ok := s["enum"].([]any); ok {
		return e
	}
	if c, ok := s["const"]; ok {
		return []any{c}
	}
	return nil
}

// MaxLength is the schema's maxLength, or -1.
func (s Schema) MaxLength() int {
	if f, ok := s["maxLength"].(float64); ok {
		return int(f)
	}
	return -1
}

// Example builds a value the schema describes: its example, default or
// first enum value when it has one, else a value of its type (objects with
// their required properties only). It is a plausible base for mutations,
// not a guarantee the server accepts it: patterns and cross-field rules are
// not solved.
func (s Schema) Example() any {
	if v, ok := s["example"]; ok {
		return v
	}
	if xs, ok := s["examples"].([]any); ok && len(xs) > 0 {
		return xs[0]
	}
	if e := s.Enum(); len(e) > 0 {
		return e[0]
	}
	if v, ok := s["default"]; ok {
		return v
	}
	if alts, ok := s["oneOf"].([]any); ok && len(alts) > 0 && s.Type() == "" {
		if a, ok := alts[0].(Schema); ok {
			return a.Example()
		}
	}
	switch s.Type() {
	case "object":
		out := map[string]any{}
		props := s.Properties()
		req := s.Required()
		// A oneOf of required-sets (exactly one of a, b, c) takes the first.
		if alts, ok := s["oneOf"].([]any); ok && len(alts) > 0 {
			if a, ok := alts[0].(Schema); ok {
				req = append(req, a.Required()...)
			}
		}
		for _, name := range req {
			if p, ok := props[name]; ok {
				out[name] = p.Example()
			} else {
				out[name] = "x"
			}
		}
		return out
	case "array":
		n := 0
		if f, ok := s["minItems"].(float64); ok {
			n = int(f)
		}
		items, _ := s["items"].(Schema)
		out := make([]any, n)
		for i := range out {
			out[i] = items.Example()
		}
		return out
	case "integer", "number":
		if f, ok := s["minimum"].(float64); ok {
			return f
		}
		return 1
	case "boolean":
		return false
	case "string":
		switch s["format"] {
		case "uuid":
			return "0190b6f4-0000-7000-8000-000000000000"
		case "date-time":
			return "2026-01-02T03:04:05Z"
		case "date":
			return "2026-01-02"
		case "email":
			return "someone@example.org"
		case "uri":
			return "https://example.org/hook"
		}
		return "x"
	}
	return "x"
}
