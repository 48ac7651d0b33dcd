// Package telegram verifies Telegram Mini App initData, so a privacy request
// from the bot proves which Telegram user sent it.
//
// The algorithm follows Telegram's "Validating data received via the Mini App":
// the data-check-string is every received field except hash, sorted by key,
// written as key=value (values URL-decoded) and joined with '\n';
// secret_key = HMAC-SHA256(key="WebAppData", msg=bot_token) and
// hash = hex(HMAC-SHA256(key=secret_key, msg=data_check_string)).
package telegram

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxInitDataLen bounds the raw input. Real initData is well under 1 KiB;
// the cap keeps an unauthenticated caller from making us parse and HMAC
// arbitrarily large bodies.
const MaxInitDataLen = 4 << 10

// maxClockSkew tolerates a Telegram clock slightly ahead of ours, while still
// refusing auth_date values minted for the future (which would extend a
// token's useful life beyond maxAge).
const maxClockSkew = time.Minute

// Sentinel errors. Wrapped errors add detail but never the bot token or the
// raw initData, because both end up in logs.
var (
	ErrMissingHash = errors.New("telegram: initData has no hash")
	ErrBadHash     = errors.New("telegram: initData hash mismatch")
	ErrStale       = errors.New("telegram: initData auth_date out of range")
	ErrMalformed   = errors.New("telegram: malformed initData")
	// ErrConfig reports a caller mistake (empty bot token, non-positive
	// maxAge) rather than bad input, so it must not be mapped to a 4xx.
	ErrConfig = errors.New("telegram: invalid validator configuration")
)

// User is the subset of Telegram's WebAppUser that Steward needs.
type User struct {
	ID           int64  `json:"id"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name"`
	Username     string `json:"username"`
	LanguageCode string `json:"language_code"`
}

// InitData is the verified content of a Mini App launch.
type InitData struct {
	User       User
	AuthDate   time.Time
	QueryID    string
	StartParam string
}

// Validate verifies raw initData for botToken at time now; maxAge bounds
// auth_date's age (e.g. 24h). The hash is checked before any field is
// interpreted, so unauthenticated content never reaches the JSON decoder.
func Validate(raw, botToken string, now time.Time, maxAge time.Duration) (InitData, error) {
	if botToken == "" {
		return InitData{}, fmt.Errorf("%w: empty bot token", ErrConfig)
	}
	if maxAge <= 0 {
		return InitData{}, fmt.Errorf("%w: maxAge must be positive", ErrConfig)
	}
	if len(raw) > MaxInitDataLen {
		return InitData{}, fmt.Errorf("%w: %d bytes exceeds %d", ErrMalformed, len(raw), MaxInitDataLen)
	}

	fields, err := parse(raw)
	if err != nil {
		return InitData{}, err
	}
	gotHex, ok := fields["hash"]
	if !ok || gotHex == "" {
		return InitData{}, ErrMissingHash
	}
	got, err := hex.DecodeString(gotHex)
	if err != nil || len(got) != sha256.Size {
		return InitData{}, fmt.Errorf("%w: hash is not 64 hex digits", ErrBadHash)
	}
	// hmac.Equal is constant-time, so response timing does not leak how many
	// leading bytes of a forged hash were right.
	if !hmac.Equal(got, computeHash(fields, botToken)) {
		return InitData{}, ErrBadHash
	}

	authDate, err := parseAuthDate(fields["auth_date"])
	if err != nil {
		return InitData{}, err
	}
	if age := now.Sub(authDate); age > maxAge {
		return InitData{}, fmt.Errorf("%w: auth_date is %s old, limit %s", ErrStale, age.Truncate(time.Second), maxAge)
	}
	if ahead := authDate.Sub(now); ahead > maxClockSkew {
		return InitData{}, fmt.Errorf("%w: auth_date is %s in the future", ErrStale, ahead.Truncate(time.Second))
	}

	user, err := parseUser(fields["user"])
	if err != nil {
		return InitData{}, err
	}
	return InitData{
		User:       user,
		AuthDate:   authDate,
		QueryID:    fields["query_id"],
		StartParam: fields["start_param"],
	}, nil
}

// Sign builds a valid initData string for tests and demos: fields are
// url-encoded in key order and the hash is appended. A "hash" entry in
// fields is ignored, since it is what Sign computes.
func Sign(fields map[string]string, botToken string) string {
	f := make(map[string]string, len(fields))
	for k, v := range fields {
		if k != "hash" {
			f[k] = v
		}
	}
	var b strings.Builder
	for _, k := range sortedKeys(f) {
		b.WriteString(url.QueryEscape(k))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(f[k]))
		b.WriteByte('&')
	}
	b.WriteString("hash=")
	b.WriteString(hex.EncodeToString(computeHash(f, botToken)))
	return b.String()
}

// parse decodes the query string. url.ParseQuery is used for its decoding
// rules (they match the URLSearchParams the Mini App uses), but any decode
// error is fatal and repeated keys are refused: with duplicates, which value
// was signed and which one we act on could differ.
func parse(raw string) (map[string]string, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: bad query encoding", ErrMalformed)
	}
	fields := make(map[string]string, len(vals))
	for k, vs := range vals {
		if len(vs) != 1 {
			return nil, fmt.Errorf("%w: duplicate key", ErrMalformed)
		}
		fields[k] = vs[0]
	}
	return fields, nil
}

// computeHash implements the spec. Only "hash" is left out of the
// data-check-string: Telegram's own initData covers "signature" (the
// third-party Ed25519 field) with the bot-token hash too, so excluding it
// would reject every genuine launch that carries one.
func computeHash(fields map[string]string, botToken string) []byte {
	var dcs strings.Builder
	first := true
	for _, k := range sortedKeys(fields) {
		if k == "hash" {
			continue
		}
		if !first {
			dcs.WriteByte('\n')
		}
		first = false
		dcs.WriteString(k)
		dcs.WriteByte('=')
		dcs.WriteString(fields[k])
	}
	secret := hmacSHA256([]byte("WebAppData"), []byte(botToken))
	return hmacSHA256(secret, []byte(dcs.String()))
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// parseAuthDate accepts only plain decimal digits: strconv alone would also
// take "+5", which Telegram never sends, and one timestamp should have one
// spelling.
func parseAuthDate(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("%w: missing auth_date", ErrMalformed)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return time.Time{}, fmt.Errorf("%w: auth_date is not a positive integer", ErrMalformed)
		}
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, fmt.Errorf("%w: auth_date is not a positive integer", ErrMalformed)
	}
	return time.Unix(sec, 0), nil
}

// parseUser requires the user field: a privacy request must be attributable
// to a person, and launches without a user (e.g. some inline contexts) carry
// no identity to act on. Decoding into int64 rejects fractional, exponent and
// string ids; the sign check rejects zero (also the value of an absent id).
func parseUser(s string) (User, error) {
	if s == "" {
		return User{}, fmt.Errorf("%w: missing user", ErrMalformed)
	}
	var u User
	if err := json.Unmarshal([]byte(s), &u); err != nil {
		return User{}, fmt.Errorf("%w: user is not valid JSON", ErrMalformed)
	}
	if u.ID <= 0 {
		return User{}, fmt.Errorf("%w: user id must be a positive integer", ErrMalformed)
	}
	return u, nil
}
