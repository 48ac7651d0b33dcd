// Package keyring protects identities at rest: every stored identity is a
// keyed HMAC for lookup plus an AES-256-GCM ciphertext, each tagged with the
// id of the key that made it so keys can rotate. A retired key may stay as
// lookup-only ("kid:base64:lookup"): it still computes lookup hashes, for
// rows that keep nothing but a hash (an erased person's opt-out), and opens
// nothing.
package keyring

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"sync"

	"github.com/steward-privacy/steward/identity"
)

// Keyring holds the identity keys. Each key is a 32-byte secret from which a
// lookup (HMAC) key and an encryption (AES-256-GCM) key are derived with HKDF,
// so one configured secret per generation is all an operator manages. The
// first key is active: new hashes and ciphertexts use it; older keys still
// verify lookups and decrypt until the data is re-keyed. A lookup-only key
// only verifies lookups.
type Keyring struct {
	active string
	order  []string
	keys   map[string]*ringKey
}

type ringKey struct {
	id      string
	macPool sync.Pool // of *macState; hmac.New per call would allocate on the hot path
	aead    cipher.AEAD
	// lookupOnly keys hash for lookups and never seal or open: everything
	// sealed under them was re-keyed, only hash-only rows still need them.
	lookupOnly bool
}

// LookupOnlySuffix marks a keyring entry lookup-only: "kid:base64:lookup".
const LookupOnlySuffix = "lookup"

// ErrLookupOnly is wrapped by Open when asked to open with a lookup-only key:
// a value still sealed under it means the key was demoted too early.
var ErrLookupOnly = errors.New("key is lookup-only")

// Parse reads "kid:BASE64[:lookup][,kid:BASE64[:lookup]...]"; every secret
// must be 32 bytes. The first entry is the active key and cannot be
// lookup-only (it seals every new value). Base64 has no colon, so the
// suffix is unambiguous.
func Parse(spec string) (*Keyring, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, errors.New("identity keyring: no keys configured (STEWARD_IDENTITY_KEYS=kid:base64-of-32-bytes)")
	}
	kr := &Keyring{keys: map[string]*ringKey{}}
	for _, part := range strings.Split(spec, ",") {
		kid, b64, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || kid == "" || len(kid) > 32 {
			return nil, fmt.Errorf("identity keyring: entry %q: want kid:base64", redactKey(part))
		}
		b64, flag, flagged := strings.Cut(b64, ":")
		if flagged && strings.TrimSpace(flag) != LookupOnlySuffix {
			return nil, fmt.Errorf("identity keyring: key %q: unknown flag (want kid:base64 or kid:base64:%s)", kid, LookupOnlySuffix)
		}
		if flagged && len(kr.order) == 0 {
			return nil, fmt.Errorf("identity keyring: key %q: the first (active) key seals new values and cannot be lookup-only", kid)
		}
		secret, err := decodeB64(b64)
		if err != nil || len(secret) != 32 {
			return nil, fmt.Errorf("identity keyring: key %q: want base64 of exactly 32 bytes", kid)
		}
		if _, dup := kr.keys[kid]; dup {
			return nil, fmt.Errorf("identity keyring: key id %q appears twice", kid)
		}
		k, err := newRingKey(kid, secret)
		if err != nil {
			return nil, err
		}
		k.lookupOnly = flagged
		kr.keys[kid] = k
		kr.order = append(kr.order, kid)
	}
	kr.active = kr.order[0]
	return kr, nil
}

// NewRandom makes a single-key ring with a fresh random secret (tests, demos).
func NewRandom(kid string) *Keyring {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		panic(err)
	}
	kr, err := Parse(kid + ":" + base64.StdEncoding.EncodeToString(secret))
	if err != nil {
		panic(err)
	}
	return kr
}

func redactKey(part string) string {
	if kid, _, ok := strings.Cut(part, ":"); ok {
		return kid + ":…"
	}
	return "…"
}

func decodeB64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

func newRingKey(kid string, secret []byte) (*ringKey, error) {
	macKey, err := hkdf.Key(sha256.New, secret, nil, "steward identity lookup v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive lookup key: %w", err)
	}
	encKey, err := hkdf.Key(sha256.New, secret, nil, "steward identity encryption v1", 32)
	if err != nil {
		return nil, fmt.Errorf("derive encryption key: %w", err)
	}
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	k := &ringKey{id: kid, aead: aead}
	k.macPool.New = func() any { return &macState{h: hmac.New(sha256.New, macKey)} }
	return k, nil
}

// ActiveKID is the id of the key used for new writes.
func (kr *Keyring) ActiveKID() string { return kr.active }

// KIDs lists key ids, active first, lookup-only ones included.
func (kr *Keyring) KIDs() []string { return append([]string(nil), kr.order...) }

// LookupOnly lists the lookup-only key ids, in configured order.
func (kr *Keyring) LookupOnly() []string {
	var out []string
	for _, kid := range kr.order {
		if kr.keys[kid].lookupOnly {
			out = append(out, kid)
		}
	}
	return out
}

// IsLookupOnly reports whether kid is configured lookup-only.
func (kr *Keyring) IsLookupOnly(kid string) bool {
	k, ok := kr.keys[kid]
	return ok && k.lookupOnly
}

// Domain separates what is hashed, so an identity hash can never collide with
// an IP hash made from the same bytes.
const (
	domainSubject = "subject\x00"
	domainIP      = "ip\x00"
	domainValue   = "value\x00"
)

// macState is a pooled HMAC with buffers for its input and its sum: a
// value handed to the hash.Hash interface escapes, so without them every
// lookup hash would allocate its input's copy and its sum.
type macState struct {
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
}

// macAppend appends the MAC of domain followed by parts to dst.
func (k *ringKey) macAppend(dst []byte, domain string, parts ...string) []byte {
	st := k.macPool.Get().(*macState)
	st.in = append(st.in[:0], domain...)
	for _, p := range parts {
		st.in = append(st.in, p...)
	}
	st.h.Reset()
	st.h.Write(st.in)
	dst = append(dst, st.h.Sum(st.sum[:0])...)
	if cap(st.in) <= 4<<10 {
		k.macPool.Put(st)
	}
	return dst
}

func (k *ringKey) mac(domain, v string) []byte {
	return k.macAppend(make([]byte, 0, sha256.Size), domain, v)
}

// subjectParts is s.String() in pieces, for macAppend to join without a
// concatenation.
func subjectParts(s identity.Subject, buf *[5]string) []string {
	if s.Type == identity.OAuth {
		*buf = [5]string{string(s.Type), ":", s.Provider, ":", s.Value}
		return buf[:]
	}
	*buf = [5]string{string(s.Type), ":", s.Value}
	return buf[:3]
}

// Hash is the lookup hash of s under the active key.
func (kr *Keyring) Hash(s identity.Subject) []byte {
	var buf [5]string
	return kr.keys[kr.active].macAppend(make([]byte, 0, sha256.Size), domainSubject, subjectParts(s, &buf)...)
}

// HashString is Hash as a string (a map key), made with one allocation.
func (kr *Keyring) HashString(s identity.Subject) string {
	var buf [5]string
	var out [sha256.Size]byte
	return string(kr.keys[kr.active].macAppend(out[:0], domainSubject, subjectParts(s, &buf)...))
}

// Hashes returns the lookup hash of s under every key, active first and
// lookup-only keys included, so a lookup finds identities written before a
// rotation and the hashes erased subjects keep.
func (kr *Keyring) Hashes(s identity.Subject) [][]byte {
	var buf [5]string
	parts := subjectParts(s, &buf)
	out := make([][]byte, 0, len(kr.order))
	for _, kid := range kr.order {
		out = append(out, kr.keys[kid].macAppend(make([]byte, 0, sha256.Size), domainSubject, parts...))
	}
	return out
}

// HashIP is a keyed hash of an IP address: the same address links events as
// proof, but the address itself is never stored.
func (kr *Keyring) HashIP(ip string) []byte { return kr.keys[kr.active].mac(domainIP, ip) }

// HashValue is a keyed hash of any other personal value (e.g. for pseudonyms in logs).
func (kr *Keyring) HashValue(v string) []byte { return kr.keys[kr.active].mac(domainValue, v) }

// Seal encrypts plaintext with the active key; aad binds the ciphertext to its
// context (e.g. the subject kind) so it cannot be swapped between rows.
func (kr *Keyring) Seal(plaintext, aad []byte) (kid string, ciphertext []byte, err error) {
	k := kr.keys[kr.active]
	if k.lookupOnly { // Parse forbids it; kept so no path ever seals under one
		return "", nil, fmt.Errorf("seal: key id %q: %w", k.id, ErrLookupOnly)
	}
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return k.id, k.aead.Seal(nonce, nonce, plaintext, aad), nil
}

// Open decrypts a ciphertext made by Seal with key kid.
func (kr *Keyring) Open(kid string, ciphertext, aad []byte) ([]byte, error) {
	k, ok := kr.keys[kid]
	if !ok {
		return nil, fmt.Errorf("open: unknown key id %q", kid)
	}
	if k.lookupOnly {
		// Never fall back to decrypting: a lookup-only key promises the
		// operator nothing is sealed under it any more (rekey's start-up
		// check refuses otherwise), so a value that is stays an error.
		return nil, fmt.Errorf("open: key id %q: %w; run `steward keys reencrypt` with it configured in full", kid, ErrLookupOnly)
	}
	ns := k.aead.NonceSize()
	if len(ciphertext) < ns+k.aead.Overhead() {
		return nil, errors.New("open: ciphertext too short")
	}
	pt, err := k.aead.Open(nil, ciphertext[:ns], ciphertext[ns:], aad)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	return pt, nil
}
