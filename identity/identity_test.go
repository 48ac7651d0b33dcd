package identity_test

import (
	"strings"
	"testing"

	"github.com/steward-privacy/steward/identity"
)

var parseCases = []struct {
	in   string
	want string // canonical form; "" = must be refused
}{
	{"email:Ann@Example.COM", "email:ann@example.com"},
	{"email:  ann@example.com ", "email:ann@example.com"},
	{"email:ann+news@example.com", "email:ann+news@example.com"},
	{"email:ann@bücher.de", "email:ann@xn--bcher-kva.de"},
	{"email:ann.lee@example.com", "email:ann.lee@example.com"},
	{"tg:123456789", "tg:123456789"},
	{"user:42", "user:42"},
	{"user:3f2a-uuid_like.id", "user:3f2a-uuid_like.id"},
	{"visitor:abcdefgh", "visitor:abcdefgh"},
	{"stripe:cus_Nf0abc123", "stripe:cus_Nf0abc123"},
	{"creem:cust_123", "creem:cust_123"},
	{"oauth:Google:10987654321", "oauth:google:10987654321"},
	{"oauth:github:octo-cat", "oauth:github:octo-cat"},
	{"", ""},
	{"email", ""},
	{"email:", ""},
	{"email:no-at", ""},
	{"email:a@b", ""},
	{"email:@example.com", ""},
	{"email:a b@example.com", ""},
	{"email:a@exa mple.com", ""},
	{"email:0@..", ""},
	{"email:a@.example.com", ""},
	{"email:a@-x.com", ""},
	{"email:a@x_y.com", ""},
	{"tg:0", ""},
	{"tg:-1", ""},
	{"tg:007", ""},
	{"tg:12a", ""},
	{"tg:99999999999999999999", ""},
	{"user:", ""},
	{"user:a/b", ""},
	{"user:../../etc", ""},
	{"user:..", ""},
	{"user:.", ""},
	{"visitor:........", ""},
	{"visitor:short", ""},
	{"stripe:123", ""},
	{"oauth:google", ""},
	{"oauth::123", ""},
	{"oauth:goo gle:1", ""},
	{"oauth:google:has space", ""},
	{"phone:+15551234", ""},
	{"EMAIL:a@example.com", ""},
	{"user:" + strings.Repeat("a", 400), ""},
	{"email:\xff@example.com", ""},
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range parseCases {
		s, err := identity.Parse(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("Parse(%q) accepted as %q", tc.in, s)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if s.String() != tc.want {
			t.Errorf("Parse(%q) = %q, want %q", tc.in, s, tc.want)
		}
	}
}

func TestParseErrorsNeverEchoTheValue(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"email:secret-person-at-example", "tg:secret123", "oauth:x:has secret"} {
		_, err := identity.Parse(in)
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("Parse(%q) error %v", in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range parseCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := identity.Parse(in)
		if err != nil {
			return
		}
		// Canonical forms are fixed points: parsing them again changes nothing.
		again, err := identity.Parse(s.String())
		if err != nil || again != s {
			t.Fatalf("Parse(%q) = %q, reparse = %q, %v", in, s, again, err)
		}
		if s.Kind() == "" || s.Value == "" {
			t.Fatalf("empty kind or value from %q", in)
		}
	})
}
