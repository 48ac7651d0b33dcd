package api

import (
	"strings"
	"testing"
)

// originCases are Origin headers and what parseOrigin makes of them ("" =
// refused); they seed FuzzParseOrigin.
var originCases = []struct{ in, want string }{
	{"https://nano-bananapro.com", "https://nano-bananapro.com"},
	{"https://Nano-BananaPro.COM", "https://nano-bananapro.com"},
	{"HTTPS://nano-bananapro.com", "https://nano-bananapro.com"},
	{"http://localhost:5173", "http://localhost:5173"},
	{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
	{"http://[::1]:3000", "http://[::1]:3000"},
	{"https://nano-bananapro.com:443", "https://nano-bananapro.com"},
	{"http://nano-bananapro.com:80", "http://nano-bananapro.com"},
	{"https://nano-bananapro.com:80", "https://nano-bananapro.com:80"},
	{"https://xn--80ak6aa92e.com", "https://xn--80ak6aa92e.com"},
	{"https://nano-bananapro.com/", "https://nano-bananapro.com"}, // as configured; browsers send no slash
	{"https://nano-bananapro.com/path", ""},
	{"https://nano-bananapro.com?x=1", ""},
	{"https://nano-bananapro.com#x", ""},
	{"https://user@nano-bananapro.com", ""},
	{"null", ""},
	{"", ""},
	{"file://", ""},
	{"ftp://nano-bananapro.com", ""},
	{"chrome-extension://abcdef", ""},
	{"nano-bananapro.com", ""},
	{"//nano-bananapro.com", ""},
	{"https://", ""},
	{"https://a b.com", ""},
	{"https://nano-bananapro.com:abc", ""},
	{"https://nano-bananapro.com\\@evil.example", ""},
	{"https://" + strings.Repeat("a", 600) + ".com", ""},
}

func TestParseOrigin(t *testing.T) {
	t.Parallel()
	for _, tc := range originCases {
		got, ok := parseOrigin(tc.in)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("parseOrigin(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

// FuzzParseOrigin: whatever an Origin header holds, parseOrigin either
// refuses it or returns a canonical origin (lower case, http or https, a
// host and nothing after it, no default port) that parses to itself, so
// the sets it is compared against cannot be matched by two spellings.
func FuzzParseOrigin(f *testing.F) {
	for _, tc := range originCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, ok := parseOrigin(in)
		if !ok {
			if got != "" {
				t.Fatalf("refused %q but returned %q", in, got)
			}
			return
		}
		scheme, host, found := strings.Cut(got, "://")
		if !found || (scheme != "http" && scheme != "https") || host == "" {
			t.Fatalf("parseOrigin(%q) = %q: not scheme://host", in, got)
		}
		if got != strings.ToLower(got) {
			t.Fatalf("parseOrigin(%q) = %q: not lower case", in, got)
		}
		if strings.ContainsAny(host, "/?#@\\ ") {
			t.Fatalf("parseOrigin(%q) = %q: more than a host", in, got)
		}
		if scheme == "https" && strings.HasSuffix(host, ":443") || scheme == "http" && strings.HasSuffix(host, ":80") {
			t.Fatalf("parseOrigin(%q) = %q: keeps a default port", in, got)
		}
		again, ok := parseOrigin(got)
		if !ok || again != got {
			t.Fatalf("parseOrigin(%q) = %q, but that parses to %q, %v", in, got, again, ok)
		}
	})
}

func TestAcceptsGzip(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]bool{
		"":                     false,
		"gzip":                 true,
		"gzip, deflate, br":    true,
		"br;q=1.0, gzip;q=0.8": true,
		"GZIP":                 true,
		"gzip;q=0":             false,
		"gzip; q=0.000":        false,
		"deflate":              false,
		"x-gzip":               false,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", h, got, want)
		}
	}
}
