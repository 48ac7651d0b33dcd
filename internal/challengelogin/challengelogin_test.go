package challengelogin_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/challengelogin"
)

var (
	now  = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	key  = bytes.Repeat([]byte("k"), 32)
	keys = challengelogin.Keys{"web": key}
)

func good() challengelogin.Claims {
	return challengelogin.Claims{Product: "web", Subject: "email:ann@example.com", ID: "jti-0123456789abcdef",
		RequestID: "8d5e9f8e-8d7c-4e0e-9d3e-4f5b1d2c3a4b", IssuedAt: now.Add(-time.Minute), Expires: now.Add(3 * time.Minute)}
}

func sign(t testing.TB, c challengelogin.Claims, k []byte) string {
	t.Helper()
	s, err := challengelogin.Sign(c, k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// cases are the table the fuzz target is seeded from. Cal. Code Regs. tit.
// 11 §7061: an account holder is verified through the account's own
// authentication — a token only the product's signed-in backend can issue,
// short-lived and used once.
func cases(t testing.TB) []struct {
	name  string
	token string
	err   error
} {
	mod := func(f func(*challengelogin.Claims)) challengelogin.Claims { c := good(); f(&c); return c }
	tok := sign(t, good(), key)
	return []struct {
		name  string
		token string
		err   error
	}{
		{"valid", tok, nil},
		{"wrong key", sign(t, good(), bytes.Repeat([]byte("x"), 32)), challengelogin.ErrSignature},
		{"unknown product", sign(t, mod(func(c *challengelogin.Claims) { c.Product = "bot" }), key), challengelogin.ErrProduct},
		{"expired", sign(t, mod(func(c *challengelogin.Claims) { c.IssuedAt, c.Expires = now.Add(-6*time.Minute), now.Add(-time.Second) }), key), challengelogin.ErrExpired},
		{"lives too long", sign(t, mod(func(c *challengelogin.Claims) { c.Expires = now.Add(10 * time.Minute) }), key), challengelogin.ErrLifetime},
		{"issued in the future", sign(t, mod(func(c *challengelogin.Claims) {
			c.IssuedAt, c.Expires = now.Add(2*time.Minute), now.Add(4*time.Minute)
		}), key), challengelogin.ErrLifetime},
		{"no subject", sign(t, mod(func(c *challengelogin.Claims) { c.Subject = "" }), key), challengelogin.ErrClaims},
		{"short jti", sign(t, mod(func(c *challengelogin.Claims) { c.ID = "1" }), key), challengelogin.ErrClaims},
		{"tampered claims", tok[:strings.Index(tok, ".")+1] + "eyJzdWIiOiJ4In0" + tok[strings.LastIndex(tok, "."):], challengelogin.ErrSignature},
		{"alg none", "eyJhbGciOiJub25lIiwia2lkIjoid2ViIn0." + strings.Split(tok, ".")[1] + ".", challengelogin.ErrMalformed},
		{"two parts", "a.b", challengelogin.ErrMalformed},
		{"garbage", "!!!.???.###", challengelogin.ErrMalformed},
		{"too long", strings.Repeat("a", 3000), challengelogin.ErrMalformed},
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range cases(t) {
		t.Run(tc.name, func(t *testing.T) {
			c, err := challengelogin.Parse(tc.token, keys, now)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Parse: %v, want %v", err, tc.err)
			}
			if err == nil && (c.Subject != "email:ann@example.com" || c.Product != "web" || c.ID != good().ID || c.RequestID != good().RequestID) {
				t.Errorf("claims %+v", c)
			}
		})
	}
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	k, err := challengelogin.ParseKeys("web:" + strings.Repeat("QUFB", 11) + ", bot:" + strings.Repeat("QkJC", 11))
	if err != nil || len(k["web"]) != 33 || len(k["bot"]) != 33 {
		t.Fatalf("ParseKeys: %v %v", k, err)
	}
	for _, bad := range []string{"web", "web:short", "Web!:" + strings.Repeat("QUFB", 11), "web:" + strings.Repeat("QUFB", 11) + ",web:" + strings.Repeat("QUFB", 11), "web:***"} {
		if _, err := challengelogin.ParseKeys(bad); err == nil {
			t.Errorf("ParseKeys(%q) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, tc := range cases(f) {
		f.Add(tc.token)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := challengelogin.Parse(token, keys, now)
		if err == nil && (c.Product != "web" || c.Subject == "" || c.ID == "" || !c.Expires.After(now)) {
			t.Fatalf("accepted %q as %+v", token, c)
		}
	})
}
