package stripe

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// decodeObject decodes a Stripe object's JSON generically, numbers kept as
// json.Number: the data map may name any field of the object by its dotted
// path, so the connector reads the JSON Stripe sent rather than stripe-go's
// typed struct (which lags the API and drops fields it does not know), and
// amounts and timestamps disclose exactly as Stripe wrote them.
func decodeObject(raw []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var obj map[string]any
	if err := d.Decode(&obj); err != nil {
		return nil, fmt.Errorf("decode Stripe object: %w", err)
	}
	if obj == nil {
		return nil, fmt.Errorf("decode Stripe object: not a JSON object")
	}
	return obj, nil
}

// maxLookupSteps bounds the work of one lookup. A path is tried against
// every way of splitting it at dots (a metadata key may itself contain
// dots), which on hostile input could grow without bound.
const maxLookupSteps = 4096

// lookup resolves a dotted path (billing_details.address,
// metadata.user_id, items.data.0.price) on a decoded object. A segment may
// hold dots when the object has a key spelled that way; a number indexes an
// array; a name applied to an array (tax_ids.value) collects it from every
// element; a Stripe list envelope ({"object": "list", "data": [...]}) is
// looked through to its data. ok is false when nothing is there.
func lookup(obj any, path string) (v any, ok bool) {
	steps := 0
	return lookupIn(obj, path, &steps)
}

func lookupIn(v any, path string, steps *int) (any, bool) {
	*steps++
	if *steps > maxLookupSteps {
		return nil, false
	}
	if path == "" {
		return v, true
	}
	switch v := v.(type) {
	case map[string]any:
		if x, ok := v[path]; ok {
			return x, true
		}
		for i := 0; i < len(path); i++ {
			if path[i] != '.' {
				continue
			}
			if x, ok := v[path[:i]]; ok {
				if r, ok := lookupIn(x, path[i+1:], steps); ok {
					return r, true
				}
			}
		}
		if v["object"] == "list" {
			if data, ok := v["data"]; ok {
				return lookupIn(data, path, steps)
			}
		}
	case []any:
		head, rest, _ := strings.Cut(path, ".")
		if n, err := strconv.Atoi(head); err == nil && head == strconv.Itoa(n) {
			if n < 0 || n >= len(v) {
				return nil, false
			}
			return lookupIn(v[n], rest, steps)
		}
		var out []any
		for _, e := range v {
			if r, ok := lookupIn(e, path, steps); ok {
				out = append(out, r)
			}
		}
		if out != nil {
			return out, true
		}
	}
	return nil, false
}

// disclosed is a field's value as Access hands it over: a list envelope
// becomes its data (the person sees their items, not Stripe's paging).
func disclosed(v any) any {
	if m, ok := v.(map[string]any); ok && m["object"] == "list" {
		if data, ok := m["data"].([]any); ok {
			return data
		}
	}
	return v
}

// empty says a value holds nothing to erase: absent, null, "", or an empty
// object or array. An address whose every part is null is empty too (Stripe
// answers so for a payment method without a billing address).
func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		for _, x := range v {
			if !empty(x) {
				return false
			}
		}
		return true
	}
	return false
}

// searchString quotes s for Stripe's search query language: single quotes
// around, a backslash before any quote or backslash inside. Without it a
// quote in an address (o'brien@example.com) would end the string early and
// the rest would be read as query syntax.
func searchString(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('\'')
	return b.String()
}
