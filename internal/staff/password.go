package staff

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/steward-privacy/steward/internal/apperr"
)

// PasswordParams is the argon2id cost of a password hash.
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultPasswordParams follow OWASP's password storage guidance for
// argon2id (19 MiB, 2 passes, 1 lane): the smallest memory it recommends,
// since a sign-in burst must not exhaust a replica's memory, at the pass
// count that gives that memory its equivalent strength.
var DefaultPasswordParams = PasswordParams{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// MinPasswordLength is in characters (runes), not bytes.
	MinPasswordLength = 12
	// maxPasswordBytes bounds the work a sign-in form can ask for.
	maxPasswordBytes = 1024
	// Bounds a stored hash may claim, so a corrupted or hostile hash
	// string cannot make verification allocate gigabytes or spin.
	maxMemory  = 4 * 1024 * 1024 // 4 GiB in KiB
	maxTime    = 64
	maxThreads = 64
)

func (p PasswordParams) validate() error {
	switch {
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("memory %d KiB out of range", p.Memory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("time %d out of range", p.Time)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("threads %d out of range", p.Threads)
	}
	return nil
}

// phc is a parsed PHC string: $argon2id$v=19$m=...,t=...,p=...$salt$hash.
type phc struct {
	params PasswordParams
	salt   []byte
	hash   []byte
}

var errBadHash = errors.New("not an argon2id PHC hash")

// parsePHC reads a stored hash. It accepts only what hashPassword writes
// (argon2id, version 19, the parameters in order, unpadded standard
// base64), so every accepted string has exactly one form.
func parsePHC(s string) (phc, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v=19" {
		return phc{}, errBadHash
	}
	var p phc
	kv := strings.Split(parts[3], ",")
	if len(kv) != 3 {
		return phc{}, errBadHash
	}
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok || v == "" || (len(v) > 1 && v[0] == '0') {
			return phc{}, errBadHash
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return phc{}, errBadHash
		}
		switch name {
		case "m":
			p.params.Memory = uint32(n)
		case "t":
			p.params.Time = uint32(n)
		case "p":
			if n > 255 {
				return phc{}, errBadHash
			}
			p.params.Threads = uint8(n)
		}
	}
	if err := p.params.validate(); err != nil {
		return phc{}, fmt.Errorf("%w: %v", errBadHash, err)
	}
	var ok bool
	if p.salt, ok = decodeB64(parts[4]); !ok || len(p.salt) < 8 || len(p.salt) > 64 {
		return phc{}, errBadHash
	}
	if p.hash, ok = decodeB64(parts[5]); !ok || len(p.hash) < 16 || len(p.hash) > 64 {
		return phc{}, errBadHash
	}
	return p, nil
}

// decodeB64 decodes unpadded standard base64 in its one canonical form:
// the decoder alone would skip CR and LF and so accept many spellings.
func decodeB64(s string) ([]byte, bool) {
	b, err := base64.RawStdEncoding.Strict().DecodeString(s)
	if err != nil || base64.RawStdEncoding.EncodeToString(b) != s {
		return nil, false
	}
	return b, true
}

func (p phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.params.Memory, p.params.Time, p.params.Threads,
		base64.RawStdEncoding.EncodeToString(p.salt), base64.RawStdEncoding.EncodeToString(p.hash))
}

// hashPassword makes a PHC string with a fresh salt.
func hashPassword(password string, params PasswordParams) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	h := argon2.IDKey([]byte(password), salt, params.Time, params.Memory, params.Threads, keyLen)
	return phc{params: params, salt: salt, hash: h}.String(), nil
}

// verifyPassword says whether password matches the stored hash, and
// whether the hash should be remade with want (its parameters differ). The
// comparison is constant-time; an unreadable hash is an error, never a
// match.
func verifyPassword(password, stored string, want PasswordParams) (ok, rehash bool, err error) {
	p, err := parsePHC(stored)
	if err != nil {
		return false, false, err
	}
	h := argon2.IDKey([]byte(password), p.salt, p.params.Time, p.params.Memory, p.params.Threads, uint32(len(p.hash)))
	ok = subtle.ConstantTimeCompare(h, p.hash) == 1
	return ok, ok && (p.params != want || len(p.hash) != keyLen || len(p.salt) != saltLen), nil
}

// checkPassword is the password rule: at least MinPasswordLength
// characters, not the email and not containing its local part (the first
// thing an attacker who knows the address tries). Length is the rule that
// matters (NIST SP 800-63B); composition rules are deliberately absent.
func checkPassword(password, email string) error {
	weak := func(msg string) error {
		return &apperr.Error{Code: apperr.Invalid, Message: "password: " + msg,
			Fields: []apperr.FieldError{{Field: "password", Message: msg}}, Err: ErrWeakPassword}
	}
	if !utf8.ValidString(password) {
		return weak("not valid text")
	}
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return weak(fmt.Sprintf("at least %d characters", MinPasswordLength))
	}
	if len(password) > maxPasswordBytes {
		return weak(fmt.Sprintf("at most %d bytes", maxPasswordBytes))
	}
	if strings.TrimFunc(password, unicode.IsSpace) == "" || allSame(password) {
		return weak("not one repeated character")
	}
	lp, le := strings.ToLower(password), strings.ToLower(strings.TrimSpace(email))
	if le != "" {
		if lp == le {
			return weak("must not be the email address")
		}
		// A one- or two-letter local part ("a@…") would refuse most
		// passwords while protecting nothing.
		if local, _, _ := strings.Cut(le, "@"); utf8.RuneCountInString(local) >= 3 && strings.Contains(lp, local) {
			return weak("must not contain the email address's name")
		}
	}
	return nil
}

func allSame(s string) bool {
	first, _ := utf8.DecodeRuneInString(s)
	for _, r := range s {
		if r != first {
			return false
		}
	}
	return true
}
