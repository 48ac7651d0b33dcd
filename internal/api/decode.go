package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/internal/apperr"
)

// jsonBody is a request body that must be JSON: the media type checked
// (415 otherwise), then decoded strictly into v.
func jsonBody(c *fiber.Ctx, v any) error {
	if err := requireJSON(c); err != nil {
		return err
	}
	return decodeStrict(c.Body(), v)
}

// decodeStrict decodes one JSON object into v, refusing unknown fields,
// trailing data and wrong types with a message that names the field.
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return apperr.Invalidf("request body is empty; send a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apperr.Invalidf("unexpected data after the JSON object")
	}
	return checkText(body, v)
}

// checkText refuses a decoded body whose strings hold a NUL or were not
// valid UTF-8. PostgreSQL refuses NUL in text (a 500 from deep inside a
// store), and encoding/json silently turns invalid UTF-8 and lone
// surrogate escapes into U+FFFD, so a note would be stored altered. The
// check is generic over every string the body type has, so a new free-text
// field is covered without anyone remembering to.
func checkText(body []byte, v any) error {
	// encoding/json replaces only invalid bytes and surrogate escapes with
	// U+FFFD; in a body with neither, U+FFFD is what the caller sent.
	replaced := !utf8.Valid(body) || hasSurrogateEscape(body)
	if field := badText(reflect.ValueOf(v), "", replaced); field != "" {
		return apperr.Field(field, "must be UTF-8 text without NUL characters")
	}
	if !utf8.Valid(body) {
		// Invalid bytes the walk cannot place (e.g. in a raw JSON value).
		return apperr.Invalidf("request body is not valid UTF-8")
	}
	return nil
}

// hasSurrogateEscape reports whether body holds a \uD800–\uDFFF escape
// (any case). A valid pair also counts: then a U+FFFD the caller sent in
// the same body is refused too, a rare and harmless false alarm.
func hasSurrogateEscape(body []byte) bool {
	for i := bytes.Index(body, []byte(`\u`)); i >= 0 && i+3 < len(body); {
		if (body[i+2] == 'd' || body[i+2] == 'D') && strings.IndexByte("89abcdefABCDEF", body[i+3]) >= 0 {
			return true
		}
		j := bytes.Index(body[i+2:], []byte(`\u`))
		if j < 0 {
			return false
		}
		i += 2 + j
	}
	return false
}

// badText returns the JSON path of the first string under v that holds a
// NUL or (when replaced) U+FFFD, or "".
func badText(v reflect.Value, path string, replaced bool) string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return ""
		}
		return badText(v.Elem(), path, replaced)
	case reflect.String:
		if !textOK(v.String(), replaced) {
			return cmpPath(path)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name := f.Name
			if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == "-" {
				continue
			} else if tag != "" {
				name = tag
			}
			p := name
			if f.Anonymous {
				p = path
			} else if path != "" {
				p = path + "." + name
			}
			if bad := badText(v.Field(i), p, replaced); bad != "" {
				return bad
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "" // raw bytes (json.RawMessage): checked as a whole
		}
		for i := 0; i < v.Len(); i++ {
			if bad := badText(v.Index(i), fmt.Sprintf("%s[%d]", path, i), replaced); bad != "" {
				return bad
			}
		}
	case reflect.Map:
		iter := v.MapRange()
		for iter.Next() {
			// Keys are named by the map, never by themselves: a key is
			// caller text and may be anything.
			if k := iter.Key(); k.Kind() == reflect.String && !textOK(k.String(), replaced) {
				return cmpPath(path)
			}
			if bad := badText(iter.Value(), path, replaced); bad != "" {
				return bad
			}
		}
	}
	return ""
}

func cmpPath(path string) string {
	if path == "" {
		return "body"
	}
	return path
}

// textOK reports whether s is text PostgreSQL stores as sent.
func textOK(s string, replacedMeansInvalid bool) bool {
	if strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s) {
		return false
	}
	return !replacedMeansInvalid || !strings.ContainsRune(s, utf8.RuneError)
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return apperr.Invalidf("malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return apperr.Invalidf("body must be a JSON object")
		}
		return apperr.Field(field, "must be %s, not %s", jsonType(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return apperr.Invalidf("malformed JSON: body ends early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if len(name) > 40 {
			name = name[:40] + "…"
		}
		return apperr.Field(name, "unknown field")
	default:
		return apperr.Invalidf("malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64", "int32", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return fmt.Sprintf("a %s", kind)
}
