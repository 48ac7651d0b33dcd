// Package challengelogin verifies the short-lived tokens a product's
// signed-in backend issues to assert that the person asking is the account
// holder ("challenge login", the web privacy notice's "We will verify
// identity (challenge login, recent invoice, signed instruction, etc.)";
// Cal. Code Regs. tit. 11 §7061: a business may verify an account holder
// through the account's existing authentication, re-authenticating before it
// discloses or deletes).
//
// A token is a compact JWS (RFC 7515) signed with HMAC-SHA256 under a secret
// the product shares with Steward (STEWARD_CHALLENGE_LOGIN_KEYS). Its header
// names the product as "kid"; its claims are
//
//	iss  the product (must equal kid)
//	aud  "steward"
//	sub  the person, as a subject (email:ann@example.com, tg:123)
//	jti  a unique id: every token is accepted once
//	iat, exp  seconds; exp - iat at most five minutes, exp in the future
//	rid  optional: the privacy request the token is for
//
// Parse checks everything that needs no state; the caller records jti to
// refuse a replay.
package challengelogin

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"
)

// MaxLifetime is the longest a token may live (exp - iat).
const MaxLifetime = 5 * time.Minute

// skew is how far in the future iat may be (clocks differ a little).
const skew = 30 * time.Second

// maxToken bounds the token before any work is done on it.
const maxToken = 2048

// Audience is the aud every token must carry.
const Audience = "steward"

// Keys are the products' shared secrets, by product.
type Keys map[string][]byte

var productRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// ParseKeys reads "product:base64secret,product2:base64secret" (standard or
// URL base64, padded or not). A secret shorter than 32 bytes is refused:
// HMAC-SHA256 is only as strong as its key.
func ParseKeys(s string) (Keys, error) {
	keys := Keys{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		product, secret, ok := strings.Cut(part, ":")
		if !ok || !productRe.MatchString(product) {
			return nil, fmt.Errorf("challenge login keys: want product:base64secret, got an entry for %q", product)
		}
		b, err := decodeSecret(secret)
		if err != nil {
			return nil, fmt.Errorf("challenge login keys: %s: not base64", product)
		}
		if len(b) < 32 {
			return nil, fmt.Errorf("challenge login keys: %s: the secret must be at least 32 bytes", product)
		}
		if _, dup := keys[product]; dup {
			return nil, fmt.Errorf("challenge login keys: %s given twice", product)
		}
		keys[product] = b
	}
	return keys, nil
}

func decodeSecret(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// Claims are a verified token's claims.
type Claims struct {
	Product   string
	Subject   string
	ID        string // jti
	RequestID string // rid, "" when the token names no request
	IssuedAt  time.Time
	Expires   time.Time
}

type header struct {
	Alg string `json:"alg"`
	Typ string `json:"typ,omitempty"`
	Kid string `json:"kid"`
}

type claims struct {
	Iss string `json:"iss"`
	Aud string `json:"aud"`
	Sub string `json:"sub"`
	Jti string `json:"jti"`
	Rid string `json:"rid,omitempty"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
}

// Errors Parse returns; all say why without echoing the token.
var (
	ErrMalformed = errors.New("not a challenge login token (header.claims.signature)")
	ErrProduct   = errors.New("the token names a product Steward has no key for")
	ErrSignature = errors.New("the token's signature does not verify")
	ErrExpired   = errors.New("the token has expired")
	ErrLifetime  = errors.New("the token lives longer than five minutes or was issued in the future")
	ErrClaims    = errors.New("the token lacks a claim Steward needs (iss = kid, aud steward, sub, jti, iat, exp)")
)

var jtiRe = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)

// Parse verifies token against keys at now.
func Parse(token string, keys Keys, now time.Time) (Claims, error) {
	if len(token) > maxToken {
		return Claims{}, ErrMalformed
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, ErrMalformed
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	var h header
	if err := json.Unmarshal(hb, &h); err != nil {
		return Claims{}, ErrMalformed
	}
	// Only HS256: a token cannot choose "none" or another algorithm.
	if h.Alg != "HS256" {
		return Claims{}, ErrMalformed
	}
	key, ok := keys[h.Kid]
	if !ok || h.Kid == "" {
		return Claims{}, ErrProduct
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return Claims{}, ErrSignature
	}
	cb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return Claims{}, ErrMalformed
	}
	var c claims
	if err := json.Unmarshal(cb, &c); err != nil {
		return Claims{}, ErrMalformed
	}
	if c.Iss != h.Kid || c.Aud != Audience || c.Sub == "" || len(c.Sub) > 300 || !jtiRe.MatchString(c.Jti) ||
		c.Iat <= 0 || c.Exp <= 0 || len(c.Rid) > 64 {
		return Claims{}, ErrClaims
	}
	iat, exp := time.Unix(c.Iat, 0), time.Unix(c.Exp, 0)
	if !now.Before(exp) {
		return Claims{}, ErrExpired
	}
	if exp.Sub(iat) > MaxLifetime || exp.Before(iat) || iat.After(now.Add(skew)) {
		return Claims{}, ErrLifetime
	}
	return Claims{Product: h.Kid, Subject: c.Sub, ID: c.Jti, RequestID: c.Rid, IssuedAt: iat.UTC(), Expires: exp.UTC()}, nil
}

// Sign issues a token: what a product's backend does (in Go; any JWT library
// with HS256 does the same). Steward uses it in tests and the demo.
func Sign(c Claims, key []byte) (string, error) {
	h, err := json.Marshal(header{Alg: "HS256", Typ: "JWT", Kid: c.Product})
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(claims{Iss: c.Product, Aud: Audience, Sub: c.Subject, Jti: c.ID, Rid: c.RequestID,
		Iat: c.IssuedAt.Unix(), Exp: c.Expires.Unix()})
	if err != nil {
		return "", err
	}
	signing := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(b)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), nil
}

// String names the products only: the secrets stay out of %v and logs.
func (k Keys) String() string {
	names := make([]string, 0, len(k))
	for p := range k {
		names = append(names, p)
	}
	sort.Strings(names)
	return "challengelogin.Keys[" + strings.Join(names, " ") + "]"
}
