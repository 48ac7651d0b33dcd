// Package identity parses and normalizes subject identities ("email:a@b.c",
// "tg:123", "oauth:google:1234", ...): the canonical form is what Steward
// hashes, stores (sealed, by internal/keyring) and hands to connectors, so
// it is public for connectors written outside this repository.
package identity

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Type is the kind of identity.
type Type string

// The identity types a subject can be named by.
const (
	Email    Type = "email"   // an email address, normalized
	Telegram Type = "tg"      // a Telegram user id
	User     Type = "user"    // the product's own account id
	Visitor  Type = "visitor" // an anonymous cookie / device id
	Stripe   Type = "stripe"  // a Stripe customer id (cus_...)
	Creem    Type = "creem"   // a Creem customer id
	OAuth    Type = "oauth"   // oauth:<provider>:<id>
)

// MaxLen bounds a whole subject string; longer input is refused before any work.
const MaxLen = 320

// Subject is a parsed, normalized identity.
type Subject struct {
	Type     Type
	Provider string // only for OAuth
	Value    string
}

// Kind is the type with the OAuth provider, e.g. "oauth:google"; it is not
// personal data and may be stored and logged in the clear.
func (s Subject) Kind() string {
	if s.Type == OAuth {
		return string(OAuth) + ":" + s.Provider
	}
	return string(s.Type)
}

// String is the canonical form; equal identities have equal strings, so it is
// what gets hashed.
func (s Subject) String() string { return s.Kind() + ":" + s.Value }

// IsZero reports whether s is the zero Subject.
func (s Subject) IsZero() bool { return s.Type == "" }

// ParseError explains why a subject was refused. It never echoes the value,
// which may be personal data.
type ParseError struct{ Reason string }

func (e *ParseError) Error() string { return "invalid subject: " + e.Reason }

func perr(format string, args ...any) error { return &ParseError{Reason: fmt.Sprintf(format, args...)} }

// Parse parses "type:value" and returns the normalized subject.
func Parse(raw string) (Subject, error) {
	if len(raw) == 0 {
		return Subject{}, perr("empty; expected type:value such as email:ann@example.com or tg:123456")
	}
	if len(raw) > MaxLen {
		return Subject{}, perr("longer than %d bytes", MaxLen)
	}
	if !utf8.ValidString(raw) {
		return Subject{}, perr("not valid UTF-8")
	}
	typ, rest, ok := strings.Cut(raw, ":")
	if !ok {
		return Subject{}, perr("missing ':'; expected type:value such as email:ann@example.com or tg:123456")
	}
	switch Type(typ) {
	case Email:
		v, err := NormalizeEmail(rest)
		if err != nil {
			return Subject{}, err
		}
		return Subject{Type: Email, Value: v}, nil
	case Telegram:
		n, err := strconv.ParseInt(rest, 10, 64)
		if err != nil || n <= 0 || strconv.FormatInt(n, 10) != rest {
			return Subject{}, perr("tg: value must be a positive decimal Telegram user id")
		}
		return Subject{Type: Telegram, Value: rest}, nil
	case User:
		if err := checkToken(rest, 1, 128, "user"); err != nil {
			return Subject{}, err
		}
		return Subject{Type: User, Value: rest}, nil
	case Visitor:
		if err := checkToken(rest, 8, 128, "visitor"); err != nil {
			return Subject{}, err
		}
		return Subject{Type: Visitor, Value: rest}, nil
	case Stripe:
		if !strings.HasPrefix(rest, "cus_") {
			return Subject{}, perr("stripe: value must be a Stripe customer id (cus_...)")
		}
		if err := checkToken(rest, 5, 255, "stripe"); err != nil {
			return Subject{}, err
		}
		return Subject{Type: Stripe, Value: rest}, nil
	case Creem:
		if err := checkToken(rest, 1, 255, "creem"); err != nil {
			return Subject{}, err
		}
		return Subject{Type: Creem, Value: rest}, nil
	case OAuth:
		provider, id, ok := strings.Cut(rest, ":")
		if !ok {
			return Subject{}, perr("oauth: expected oauth:<provider>:<id>")
		}
		provider = strings.ToLower(provider)
		if len(provider) == 0 || len(provider) > 32 || !isProvider(provider) {
			return Subject{}, perr("oauth: provider must be 1-32 characters a-z, 0-9, '-' or '_'")
		}
		if len(id) == 0 || len(id) > 255 {
			return Subject{}, perr("oauth: id must be 1-255 characters")
		}
		for _, r := range id {
			if !unicode.IsPrint(r) || unicode.IsSpace(r) {
				return Subject{}, perr("oauth: id must be printable with no spaces")
			}
		}
		return Subject{Type: OAuth, Provider: provider, Value: id}, nil
	default:
		return Subject{}, perr("unknown type; use one of email, tg, user, visitor, stripe, creem, oauth:<provider>")
	}
}

// MustParse parses or panics; for tests and constants only.
func MustParse(raw string) Subject {
	s, err := Parse(raw)
	if err != nil {
		panic(err)
	}
	return s
}

func checkToken(v string, minLen, maxLen int, typ string) error {
	if len(v) < minLen || len(v) > maxLen {
		return perr("%s: value must be %d-%d characters", typ, minLen, maxLen)
	}
	// "." and ".." would name a directory when an id is put into an object
	// key or a path.
	if strings.Trim(v, ".") == "" {
		return perr("%s: value cannot be only dots", typ)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return perr("%s: value may contain only A-Z, a-z, 0-9, '-', '_' and '.'", typ)
		}
	}
	return nil
}

func isProvider(p string) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// NormalizeEmail trims, lowercases and IDNA-normalizes an address, so that the
// same mailbox always hashes the same. It deliberately does not strip dots or
// "+tags": those are different mailboxes at most providers, and merging two
// people's records is worse than missing a link.
func NormalizeEmail(raw string) (string, error) {
	v := strings.TrimSpace(raw)
	at := strings.LastIndexByte(v, '@')
	if at <= 0 || at == len(v)-1 {
		return "", perr("email: expected local@domain")
	}
	local, domain := v[:at], v[at+1:]
	if len(local) > 64 {
		return "", perr("email: local part longer than 64 characters")
	}
	for _, r := range local {
		if r <= ' ' || r == '@' || r == '"' || r == '\\' || r == '(' || r == ')' || r == ',' || r == ';' || r == '<' || r == '>' || r == '[' || r == ']' || r == 0x7f {
			return "", perr("email: local part has a character not allowed here")
		}
	}
	ascii, err := idna.Lookup.ToASCII(strings.TrimSuffix(domain, "."))
	if err != nil || !validHost(ascii) {
		return "", perr("email: domain is not a valid host name")
	}
	return strings.ToLower(local) + "@" + strings.ToLower(ascii), nil
}

// validHost checks a host name: at least two labels of 1-63 letters, digits
// or hyphens, no label starting or ending with a hyphen, at most 253 bytes.
func validHost(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i] | 0x20
			if !(c >= 'a' && c <= 'z' || l[i] >= '0' && l[i] <= '9' || l[i] == '-') {
				return false
			}
		}
	}
	return true
}
