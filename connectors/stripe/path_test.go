package stripe

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/stripe/stripefake"
)

const sampleObject = `{
	"id": "cus_1", "email": "a@example.com", "balance": 0, "deleted": false,
	"address": {"city": "Tallinn", "line1": null},
	"metadata": {"user_id": "u1", "a.b": "dotted", "a": {"b": "nested"}},
	"tax_ids": [{"id": "txi_1", "value": "EE1"}, {"id": "txi_2", "value": "EE2"}],
	"items": {"object": "list", "data": [{"id": "si_1", "price": {"id": "price_1"}}], "has_more": false},
	"list": [[1, 2], [3]]
}`

var lookupCases = []struct {
	path string
	want string // fmt %v of the value, or "absent"
}{
	{"email", "a@example.com"},
	{"balance", "0"},
	{"deleted", "false"},
	{"address.city", "Tallinn"},
	{"address.line1", "<nil>"},
	{"address.country", "absent"},
	{"metadata.user_id", "u1"},
	{"metadata.a.b", "dotted"}, // a key with a dot wins over the nested path
	{"tax_ids.0.value", "EE1"},
	{"tax_ids.1.id", "txi_2"},
	{"tax_ids.2.id", "absent"},
	{"tax_ids.-1.id", "absent"},
	{"tax_ids.01.id", "absent"}, // not an index: looked up in every element, found in none
	{"tax_ids.value", "[EE1 EE2]"},
	{"items.data.0.price.id", "price_1"},
	{"items.price.id", "[price_1]"}, // through the list envelope
	{"items.has_more", "false"},
	{"list.0.1", "2"},
	{"nope", "absent"},
	{"email.x", "absent"},
	{".", "absent"},
}

func TestLookup(t *testing.T) {
	obj, err := decodeObject([]byte(sampleObject))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range lookupCases {
		v, ok := lookup(obj, tc.path)
		got := "absent"
		if ok {
			got = fmt.Sprint(v)
		}
		if got != tc.want {
			t.Errorf("lookup(%q) = %s, want %s", tc.path, got, tc.want)
		}
	}
	if _, err := decodeObject([]byte(`[1]`)); err == nil {
		t.Error("an array decoded as an object")
	}
	if _, err := decodeObject([]byte(`null`)); err == nil {
		t.Error("null decoded as an object")
	}
}

func TestDisclosedAndEmpty(t *testing.T) {
	obj, _ := decodeObject([]byte(sampleObject))
	items, _ := lookup(obj, "items")
	if d, ok := disclosed(items).([]any); !ok || len(d) != 1 {
		t.Errorf("disclosed list envelope: %v", disclosed(items))
	}
	for v, want := range map[string]bool{`null`: true, `""`: true, `[]`: true, `{}`: true,
		`{"city": null, "line1": ""}`: true, `{"city": "x"}`: false, `0`: false, `false`: false, `"x"`: false, `[null]`: false} {
		var x any
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			t.Fatal(err)
		}
		if empty(x) != want {
			t.Errorf("empty(%s) = %v", v, !want)
		}
	}
}

var searchCases = []string{"a@example.com", "o'neil@example.com", `back\slash@example.com`, `'`, `\`, `\'`, "", "a b:c AND email:'x'", "ünï@例え.jp"}

func TestSearchString(t *testing.T) {
	if got := searchString("o'neil@x"); got != `'o\'neil@x'` {
		t.Errorf("searchString = %s", got)
	}
	for _, s := range searchCases {
		checkSearchRoundTrip(t, s)
	}
}

// checkSearchRoundTrip: a query built with searchString reads back (by
// the fake's parser of Stripe's syntax) as exactly one clause with s.
func checkSearchRoundTrip(t *testing.T, s string) {
	t.Helper()
	for _, q := range []string{"email:" + searchString(s), "metadata[" + searchString("user_id") + "]:" + searchString(s)} {
		cl, err := stripefake.ParseQuery(q)
		if err != nil {
			t.Fatalf("query %q: %v", q, err)
		}
		if len(cl) != 1 || cl[0].Value != s {
			t.Fatalf("query %q parsed as %+v, want one clause with %q", q, cl, s)
		}
	}
}

func FuzzSearchString(f *testing.F) {
	for _, s := range searchCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkSearchRoundTrip(t, s) })
}

func FuzzLookup(f *testing.F) {
	for _, tc := range lookupCases {
		f.Add([]byte(sampleObject), tc.path)
	}
	f.Add([]byte(`{"a.b.c.d.e.f.g.h":{"a":{"a":{}}},"a":{"b":{"c":{"d":{}}}},"a.b":{"c.d":{}}}`), "a.b.c.d.e.f.g.h.i.j")
	f.Fuzz(func(t *testing.T, raw []byte, path string) {
		obj, err := decodeObject(raw)
		if err != nil {
			return
		}
		steps := 0
		v, ok := lookupIn(obj, path, &steps)
		if !ok && v != nil {
			t.Fatalf("lookup(%q) not found but returned %v", path, v)
		}
		// A key spelled exactly as the path is always found, as itself.
		if x, has := obj[path]; has && path != "" {
			if v, ok := lookup(obj, path); !ok || fmt.Sprint(v) != fmt.Sprint(x) {
				t.Fatalf("lookup(%q) = %v, %v; want the key's value %v", path, v, ok, x)
			}
		}
		// Nested once: {"k": obj} finds path under "k.".
		if path != "" && steps < maxLookupSteps-1 {
			wrapped := map[string]any{"k": obj}
			v2, ok2 := lookup(wrapped, "k."+path)
			if ok && (!ok2 || fmt.Sprint(v2) != fmt.Sprint(v)) {
				t.Fatalf("lookup(k.%q) = %v, %v; want %v", path, v2, ok2, v)
			}
		}
		_ = disclosed(v)
		_ = empty(v)
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"7": 7 * time.Second, "1.5": 1500 * time.Millisecond, " 2 ": 2 * time.Second, "": 0, "0": 0, "-3": 0,
		"soon": 0, "999999": 0,
		now.Add(30 * time.Second).Format(http.TimeFormat): 30 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	tg := connectors.Target{IdempotencyKey: "task-1"}
	change := url.Values{"email": {""}}
	k := func(t connectors.Target, op, id string, ch url.Values) string {
		p := idempotencyKey(t, op, id, ch)
		if p == nil {
			return "<nil>"
		}
		return *p
	}
	base := k(tg, "customer.update", "cus_1", change)
	if !strings.HasPrefix(base, "steward-customer.update-") || len(base) > 255 {
		t.Errorf("key %q", base)
	}
	if again := k(tg, "customer.update", "cus_1", url.Values{"email": {""}}); again != base {
		t.Errorf("same write, keys %q and %q", base, again)
	}
	for name, other := range map[string]string{
		"task":   k(connectors.Target{IdempotencyKey: "task-2"}, "customer.update", "cus_1", change),
		"op":     k(tg, "customer.delete", "cus_1", change),
		"object": k(tg, "customer.update", "cus_2", change),
		"change": k(tg, "customer.update", "cus_1", url.Values{"phone": {""}}),
	} {
		if other == base {
			t.Errorf("another %s, same key %q", name, base)
		}
	}
	byRequest := k(connectors.Target{RequestID: "r"}, "customer.update", "cus_1", change)
	if byRequest == base || byRequest != k(connectors.Target{RequestID: "r"}, "customer.update", "cus_1", change) {
		t.Errorf("without a task key, the request id's key %q is not its own or not stable", byRequest)
	}
	r1, r2 := k(connectors.Target{}, "customer.update", "cus_1", change), k(connectors.Target{}, "customer.update", "cus_1", change)
	if r1 == r2 || !strings.HasPrefix(r1, "steward-customer.update-") {
		t.Errorf("without any key: %q, %q; want fresh keys", r1, r2)
	}
}
