package staff

import (
	"errors"
	"strings"
	"testing"
)

var cheap = PasswordParams{Memory: 1024, Time: 1, Threads: 1}

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	h, err := hashPassword("correct horse battery", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("not a PHC argon2id string: %q", h)
	}
	t.Run("the password matches and needs no rehash", func(t *testing.T) {
		ok, rehash, err := verifyPassword("correct horse battery", h, cheap)
		if !ok || rehash || err != nil {
			t.Fatalf("%v %v %v", ok, rehash, err)
		}
	})
	t.Run("another password does not match", func(t *testing.T) {
		ok, rehash, err := verifyPassword("correct horse batterY", h, cheap)
		if ok || rehash || err != nil {
			t.Fatalf("%v %v %v", ok, rehash, err)
		}
	})
	t.Run("changed parameters ask for a rehash on a match only", func(t *testing.T) {
		stronger := PasswordParams{Memory: 2048, Time: 2, Threads: 1}
		if ok, rehash, _ := verifyPassword("correct horse battery", h, stronger); !ok || !rehash {
			t.Fatalf("%v %v", ok, rehash)
		}
		if ok, rehash, _ := verifyPassword("wrong", h, stronger); ok || rehash {
			t.Fatalf("%v %v", ok, rehash)
		}
	})
	t.Run("two hashes of one password differ (salted)", func(t *testing.T) {
		h2, _ := hashPassword("correct horse battery", cheap)
		if h2 == h {
			t.Fatal("same hash twice")
		}
	})
	t.Run("an unreadable hash is an error, never a match", func(t *testing.T) {
		ok, _, err := verifyPassword("x", "$2a$10$bcrypt", cheap)
		if ok || err == nil {
			t.Fatalf("%v %v", ok, err)
		}
	})
}

// phcCases seed FuzzParsePHC; ok says whether parsePHC accepts them.
var phcCases = []struct {
	s  string
	ok bool
}{
	{"$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", true},
	{"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", true},
	{"$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"$argon2id$v=16$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"$argon2id$v=19$t=1,m=1024,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"$argon2id$v=19$m=01024,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"$argon2id$v=19$m=1024,t=0,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"$argon2id$v=19$m=1024,t=1,p=300$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA==$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"$argon2id$v=19$m=1024,t=1,p=1$$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false},
	{"$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$", false},
	{"$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g$", false},
	{"$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRz\r\nYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g", false}, // the decoder skips CR LF
	{"", false},
	{"$", false},
	{"plaintext-password", false},
}

func TestParsePHC(t *testing.T) {
	t.Parallel()
	for _, c := range phcCases {
		p, err := parsePHC(c.s)
		if (err == nil) != c.ok {
			t.Errorf("parsePHC(%q): %v, want ok=%v", c.s, err, c.ok)
			continue
		}
		if c.ok && p.String() != c.s {
			t.Errorf("round trip of %q gave %q", c.s, p.String())
		}
	}
}

// FuzzParsePHC: whatever parses has one form (it prints back as itself)
// and parameters within the bounds verification accepts.
func FuzzParsePHC(f *testing.F) {
	for _, c := range phcCases {
		f.Add(c.s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parsePHC(s)
		if err != nil {
			if !errors.Is(err, errBadHash) {
				t.Fatalf("error %v does not wrap errBadHash", err)
			}
			return
		}
		if p.String() != s {
			t.Fatalf("%q parses but prints as %q", s, p.String())
		}
		if p.params.validate() != nil || len(p.salt) < 8 || len(p.hash) < 16 {
			t.Fatalf("%q accepted with out-of-range parts", s)
		}
	})
}

func TestCheckPassword(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		password, email string
		ok              bool
	}{
		{"correct horse battery", "ann@example.com", true},
		{"short", "ann@example.com", false},
		{"elevenchars", "ann@example.com", false},
		{"twelve chars", "ann@example.com", true},
		{"пароль-пароль", "ann@example.com", true}, // 13 characters, more bytes
		{"ann@example.com", "ann@example.com", false},
		{"ANN@EXAMPLE.COM", "ann@example.com", false},
		{"xx-annabelle-2026!", "annabelle@example.com", false},
		{"a perfectly fine one", "a@example.com", true}, // a one-letter local part is not a rule
		{"aaaaaaaaaaaaaaaa", "ann@example.com", false},
		{"            ", "ann@example.com", false},
		{strings.Repeat("x", 1000) + "yz", "ann@example.com", true},
		{strings.Repeat("xy", 600), "ann@example.com", false},
		{"bad\xffutf8 password", "ann@example.com", false},
	} {
		err := checkPassword(c.password, c.email)
		if (err == nil) != c.ok {
			t.Errorf("checkPassword(%q, %q) = %v, want ok=%v", c.password, c.email, err, c.ok)
		}
		if err != nil && !errors.Is(err, ErrWeakPassword) {
			t.Errorf("%q: %v is not ErrWeakPassword", c.password, err)
		}
	}
}
