package staff

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Token prefixes make a leaked token easy to recognise (and to match with
// a secret scanner), and tell a session cookie from a pending one.
const (
	sessionPrefix = "sts_"
	pendingPrefix = "stp_"
	statePrefix   = "sto_"
)

// randomToken is 256 random bits, URL-safe, after prefix.
func randomToken(prefix string) string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand does not fail on supported platforms (Go 1.24+
		// crashes the program itself if the source is broken).
		panic(err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// tokenHash is what is stored for a token. A token of the wrong kind or
// shape hashes to something that is never stored, so it is refused by the
// lookup like any unknown token.
func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// wellFormed says whether token could have been issued with prefix; a
// cheap refusal before the database is asked.
func wellFormed(token, prefix string) bool {
	rest, ok := strings.CutPrefix(token, prefix)
	return ok && len(rest) == 43
}

// ipHash is the keyed hash of an address, nil when there is none.
func (s *Service) ipHash(ip string) []byte {
	if ip == "" {
		return nil
	}
	return s.keys.HashIP(ip)
}

// ipHex is the keyed hash for audit details (never the address).
func (s *Service) ipHex(ip string) string {
	if ip == "" {
		return ""
	}
	return hex.EncodeToString(s.keys.HashIP(ip))
}
