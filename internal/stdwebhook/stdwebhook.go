// Package stdwebhook signs and verifies webhooks as the Standard Webhooks
// specification (https://www.standardwebhooks.com/) defines them, so any
// subscriber can check Steward's outbound webhooks with an off-the-shelf
// library: three headers, webhook-id (the message id, the same on every
// retry and replay, for the receiver's deduplication), webhook-timestamp
// (Unix seconds of this attempt) and webhook-signature (space-separated
// "v1,<base64 HMAC-SHA256>" entries over "<id>.<timestamp>.<body>"). A
// secret is "whsec_" followed by the base64 of its key bytes. During a key
// rotation a message carries one signature per live secret; a receiver
// accepts it when any one matches.
//
// It depends on nothing in Steward, so the demo's receiver and tests use
// the same verifier a subscriber would write.
package stdwebhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The headers the specification names.
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// SecretPrefix starts every secret's text form.
const SecretPrefix = "whsec_"

// DefaultTolerance is how far a timestamp may be from the receiver's clock
// (the specification's recommendation): older messages are refused as
// replays.
const DefaultTolerance = 5 * time.Minute

// MaxSignatures bounds the entries a header may hold, so a hostile header
// cannot make a receiver compute many HMACs.
const MaxSignatures = 8

// Errors a verification reports. None of them repeats a header's value.
var (
	ErrMissingHeader   = errors.New("stdwebhook: a webhook-id, webhook-timestamp or webhook-signature header is missing")
	ErrBadTimestamp    = errors.New("stdwebhook: webhook-timestamp is not Unix seconds")
	ErrTooOld          = errors.New("stdwebhook: webhook-timestamp is outside the tolerance")
	ErrBadSignature    = errors.New("stdwebhook: webhook-signature is malformed")
	ErrNoMatch         = errors.New("stdwebhook: no signature matches")
	ErrBadSecret       = errors.New("stdwebhook: the secret must be whsec_ followed by base64 of 24 to 64 bytes")
	errTooManyEntries  = fmt.Errorf("%w: more than %d entries", ErrBadSignature, MaxSignatures)
	errUnsupportedOnly = fmt.Errorf("%w: no v1 entry", ErrBadSignature)
)

// NewSecret returns a fresh secret: 32 random bytes as "whsec_<base64>".
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("stdwebhook: random secret: %w", err)
	}
	return SecretPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// DecodeSecret returns a secret's key bytes.
func DecodeSecret(secret string) ([]byte, error) {
	s, ok := strings.CutPrefix(strings.TrimSpace(secret), SecretPrefix)
	if !ok {
		return nil, ErrBadSecret
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(key) < 24 || len(key) > 64 {
		return nil, ErrBadSecret
	}
	return key, nil
}

// Sign returns the "v1,<base64>" signature of one message with one key.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// SignatureHeader is the webhook-signature value for a message signed
// with every key (the current one first, then those still valid during a
// rotation), space-separated.
func SignatureHeader(keys [][]byte, id string, ts time.Time, body []byte) string {
	sigs := make([]string, 0, len(keys))
	for _, k := range keys {
		sigs = append(sigs, Sign(k, id, ts, body))
	}
	return strings.Join(sigs, " ")
}

// Signature is one entry of a webhook-signature header.
type Signature struct {
	Version string // "v1" is the only one this package verifies
	Value   []byte // the decoded MAC
}

// ParseSignatureHeader splits a webhook-signature header into its entries.
// Entries of versions other than v1 are kept (a receiver ignores them,
// which lets a sender add a scheme later); a v1 entry whose value is not
// base64 of a 32-byte MAC is an error, as is a header with no entry.
func ParseSignatureHeader(h string) ([]Signature, error) {
	fields := strings.Fields(h)
	if len(fields) == 0 {
		return nil, ErrBadSignature
	}
	if len(fields) > MaxSignatures {
		return nil, errTooManyEntries
	}
	out := make([]Signature, 0, len(fields))
	for _, f := range fields {
		version, value, ok := strings.Cut(f, ",")
		if !ok || version == "" || value == "" {
			return nil, ErrBadSignature
		}
		if version != "v1" {
			out = append(out, Signature{Version: version})
			continue
		}
		mac, err := base64.StdEncoding.DecodeString(value)
		if err != nil || len(mac) != sha256.Size {
			return nil, ErrBadSignature
		}
		out = append(out, Signature{Version: version, Value: mac})
	}
	return out, nil
}

// Verifier checks incoming messages against one or more secrets (several
// while the sender rotates).
type Verifier struct {
	keys      [][]byte
	Tolerance time.Duration    // 0: DefaultTolerance
	Now       func() time.Time // nil: time.Now
}

// NewVerifier returns a verifier for the given "whsec_..." secrets.
func NewVerifier(secrets ...string) (*Verifier, error) {
	if len(secrets) == 0 {
		return nil, ErrBadSecret
	}
	v := &Verifier{}
	for _, s := range secrets {
		k, err := DecodeSecret(s)
		if err != nil {
			return nil, err
		}
		v.keys = append(v.keys, k)
	}
	return v, nil
}

// Verify checks a message by its three header values and raw body: the
// timestamp within the tolerance, and at least one v1 signature matching
// one of the secrets (compared in constant time).
func (v *Verifier) Verify(id, timestamp, signature string, body []byte) error {
	if id == "" || timestamp == "" || signature == "" {
		return ErrMissingHeader
	}
	secs, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	ts := time.Unix(secs, 0)
	if d := now().Sub(ts); d > tol || d < -tol {
		return ErrTooOld
	}
	sigs, err := ParseSignatureHeader(signature)
	if err != nil {
		return err
	}
	v1 := false
	for _, s := range sigs {
		if s.Version != "v1" {
			continue
		}
		v1 = true
		for _, k := range v.keys {
			want := Sign(k, id, ts, body)
			mac, _ := base64.StdEncoding.DecodeString(want[3:])
			if hmac.Equal(mac, s.Value) {
				return nil
			}
		}
	}
	if !v1 {
		return errUnsupportedOnly
	}
	return ErrNoMatch
}

// VerifyRequest is Verify with the values taken from r's headers.
func (v *Verifier) VerifyRequest(h http.Header, body []byte) error {
	return v.Verify(h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature), body)
}
