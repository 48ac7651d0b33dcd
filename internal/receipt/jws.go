package receipt

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Alg is the only JWS algorithm Steward signs or accepts (RFC 8037).
// Pinning one algorithm, instead of trusting the token's header, is what
// closes the classic "alg: none" and HMAC-with-public-key confusion attacks.
const Alg = "EdDSA"

// Typ is the JWS "typ" header of a receipt (RFC 7515 §4.1.9, media type
// application/consent-receipt+jwt with the "application/" prefix omitted).
// Verify requires it (explicit typing, RFC 8725 §3.11) so that some other
// JWS made with the same key can never pass as a consent receipt.
const Typ = "consent-receipt+jwt"

// MaxCompactSize bounds the compact JWS that Verify will look at. Receipts
// are a few KiB; the limit keeps a hostile caller from making the verifier
// decode and hash megabytes. Sign enforces the same limit so that Steward
// never issues a receipt its own verifier would reject.
const MaxCompactSize = 64 << 10

// MaxJWKSSize bounds the JWKS document ParseJWKS accepts, for the same reason.
const MaxJWKSSize = 64 << 10

// SeedSize is the length of an Ed25519 private key seed (RFC 8032).
const SeedSize = ed25519.SeedSize

// Errors returned by Verify, each wrapped with the specific reason. Callers
// can map them with errors.Is (e.g. ErrMalformed to 400, the rest to 422)
// while the message still says exactly what was wrong.
var (
	ErrTooLarge   = errors.New("receipt: JWS too large")
	ErrMalformed  = errors.New("receipt: malformed JWS")
	ErrAlgorithm  = errors.New("receipt: unacceptable JWS algorithm")
	ErrUnknownKey = errors.New("receipt: no usable key for JWS")
	ErrSignature  = errors.New("receipt: JWS signature does not verify")
)

// b64 is the JWS base64url encoding: no padding (RFC 7515 §2), and strict so
// that non-zero trailing bits are rejected and every value has exactly one
// encoding.
var b64 = base64.RawURLEncoding.Strict()

// JWK is an Ed25519 public key as an RFC 8037 OKP JSON Web Key.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use,omitempty"`
	Alg string `json:"alg,omitempty"`
}

// JWKS is a JSON Web Key Set (RFC 7517 §5). Steward publishes it so that
// anyone can verify receipts without asking Steward.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// Signer signs receipts with one active Ed25519 key and publishes, next to
// it, retired public keys that still verify receipts issued before a key
// rotation. Receipts are long-lived evidence, so rotating the signing key
// must not invalidate the ones already handed out.
type Signer struct {
	priv    ed25519.PrivateKey
	kid     string
	header  string // base64url of the protected header; constant per key
	retired []JWK
}

// NewSigner takes a 32-byte Ed25519 seed; kid is the RFC 7638 JWK thumbprint
// (base64url SHA-256) of the public key. A thumbprint kid is derived from the
// key alone, so it needs no separate configuration and cannot drift out of
// sync with the key it names.
//
// retired are public keys of earlier signing keys. They only ever appear in
// the JWKS for verification; they are never used to sign.
func NewSigner(seed []byte, retired ...ed25519.PublicKey) (*Signer, error) {
	if len(seed) != SeedSize {
		return nil, fmt.Errorf("receipt: signing seed is %d bytes, want %d", len(seed), SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	kid := Thumbprint(pub)

	// The header is fixed for a key, so build it once; json.Marshal of a
	// struct keeps the member order stable, which keeps signatures
	// reproducible.
	h, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{Alg, kid, Typ})
	if err != nil {
		return nil, fmt.Errorf("receipt: encode JWS header: %w", err)
	}

	s := &Signer{priv: priv, kid: kid, header: b64.EncodeToString(h)}
	seen := map[string]int{kid: -1}
	for i, k := range retired {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("receipt: retired key %d is %d bytes, want %d", i, len(k), ed25519.PublicKeySize)
		}
		// Duplicate kids would make the published JWKS ambiguous (and
		// ParseJWKS rejects it), so a configuration mistake is caught
		// here, at startup, instead of at a verifier.
		rk := Thumbprint(k)
		if j, dup := seen[rk]; dup {
			if j < 0 {
				return nil, fmt.Errorf("receipt: retired key %d is the active signing key", i)
			}
			return nil, fmt.Errorf("receipt: retired key %d duplicates retired key %d", i, j)
		}
		seen[rk] = i
		s.retired = append(s.retired, publicJWK(k, rk))
	}
	return s, nil
}

// String keeps the private key out of logs: fmt would otherwise print the
// seed bytes of a Signer that ends up in a %v or %+v.
func (s *Signer) String() string { return "receipt.Signer{kid: " + s.kid + "}" }

// GoString does the same for %#v.
func (s *Signer) GoString() string { return s.String() }

// KeyID returns the kid of the active signing key.
func (s *Signer) KeyID() string { return s.kid }

// PublicKey returns the active public key, e.g. to carry it into the retired
// list of the next Signer when the key is rotated.
func (s *Signer) PublicKey() ed25519.PublicKey {
	return bytes.Clone(s.priv.Public().(ed25519.PublicKey))
}

// JWKS returns the JSON Web Key Set with the active key first, then the
// retired ones. The result is a fresh copy the caller may modify.
func (s *Signer) JWKS() JWKS {
	keys := make([]JWK, 0, 1+len(s.retired))
	keys = append(keys, publicJWK(s.priv.Public().(ed25519.PublicKey), s.kid))
	keys = append(keys, s.retired...)
	return JWKS{Keys: keys}
}

func publicJWK(pub ed25519.PublicKey, kid string) JWK {
	return JWK{Kty: "OKP", Crv: "Ed25519", X: b64.EncodeToString(pub), Kid: kid, Use: "sig", Alg: Alg}
}

// Thumbprint computes the RFC 7638 JWK thumbprint of an Ed25519 public key:
// base64url(SHA-256) of the required members in lexicographic order with no
// whitespace. The members are fixed strings plus base64url text, so writing
// the JSON by hand is exact and needs no canonicalisation library.
func Thumbprint(pub ed25519.PublicKey) string {
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return b64.EncodeToString(sum[:])
}

// Sign serialises r as the JWS payload and returns the compact JWS
// (header.payload.signature) with protected header
// {"alg":"EdDSA","kid":<KeyID>,"typ":"consent-receipt+jwt"}.
//
// It refuses receipts that would be misleading as evidence (no record id, or
// an event type that does not match the state) and receipts too large for
// Verify, because a signature makes a mistake permanent.
func (s *Signer) Sign(r Receipt) (string, error) {
	if r.Header.RecordID == "" {
		return "", errors.New("receipt: refusing to sign a receipt without header.record_id")
	}
	if typ, ok := EventType(r.Event.State); !ok {
		return "", fmt.Errorf("receipt: refusing to sign: event state %q has no ISO/IEC TS 27560 event type (want %s, %s or %s)",
			r.Event.State, StateGranted, StateDenied, StateWithdrawn)
	} else if r.Event.Type != typ {
		return "", fmt.Errorf("receipt: refusing to sign: event type %q does not match state %q (want %q)", r.Event.Type, r.Event.State, typ)
	}
	payload, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("receipt: encode payload: %w", err)
	}
	input := s.header + "." + b64.EncodeToString(payload)
	sig := ed25519.Sign(s.priv, []byte(input))
	compact := input + "." + b64.EncodeToString(sig)
	if len(compact) > MaxCompactSize {
		return "", fmt.Errorf("receipt: signed receipt is %d bytes, over the %d-byte limit Verify enforces (is a field such as user_agent unbounded?)", len(compact), MaxCompactSize)
	}
	return compact, nil
}

// Verify checks a compact JWS against a JWKS and returns the decoded payload.
//
// Everything the token says about itself is treated as untrusted until the
// signature checks out: the algorithm must be EdDSA whatever the header
// claims, the key is chosen only from set (by kid; keys embedded in the
// header are ignored), and the payload is returned only after verification.
func Verify(compact string, set JWKS) ([]byte, error) {
	if len(compact) > MaxCompactSize {
		return nil, fmt.Errorf("%w: %d bytes, limit is %d", ErrTooLarge, len(compact), MaxCompactSize)
	}
	segs := strings.Split(compact, ".")
	if len(segs) != 3 {
		return nil, fmt.Errorf("%w: compact serialisation has %d segments, want 3 (header.payload.signature)", ErrMalformed, len(segs))
	}
	hSeg, pSeg, sSeg := segs[0], segs[1], segs[2]

	hdrJSON, err := decodeSegment(hSeg)
	if err != nil {
		return nil, fmt.Errorf("%w: header segment is not base64url: %v", ErrMalformed, err)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(hdrJSON, &hdr); err != nil || hdr == nil {
		return nil, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	// Members are looked up by exact name: encoding/json's struct
	// decoding matches case-insensitively, which would let "ALG" stand
	// in for "alg" where other JOSE libraries would not.
	alg, ok, err := stringMember(hdr, "alg")
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: header %v", ErrMalformed, err)
	case !ok:
		return nil, fmt.Errorf("%w: header has no \"alg\"", ErrAlgorithm)
	case alg == "none":
		return nil, fmt.Errorf("%w: \"none\" (unsigned JWS) is never accepted", ErrAlgorithm)
	case alg != Alg:
		return nil, fmt.Errorf("%w: %q is not accepted; receipts are signed with %s (Ed25519)", ErrAlgorithm, alg, Alg)
	}
	if _, ok := hdr["crit"]; ok {
		// RFC 7515 §4.1.11: extensions listed in crit must be understood
		// or the JWS rejected; Steward understands none.
		return nil, fmt.Errorf("%w: header has \"crit\" extensions, none are supported", ErrMalformed)
	}
	typ, ok, err := stringMember(hdr, "typ")
	if err != nil {
		return nil, fmt.Errorf("%w: header %v", ErrMalformed, err)
	}
	if !ok {
		return nil, fmt.Errorf("%w: header has no \"typ\", want %q", ErrMalformed, Typ)
	}
	// Media type names are case-insensitive and the "application/" prefix
	// is optional (RFC 7515 §4.1.9), so accept every spelling of ours.
	if !strings.EqualFold(typ, Typ) && !strings.EqualFold(typ, "application/"+Typ) {
		return nil, fmt.Errorf("%w: header typ is %q, want %q (not a consent receipt)", ErrMalformed, typ, Typ)
	}
	kid, ok, err := stringMember(hdr, "kid")
	if err != nil {
		return nil, fmt.Errorf("%w: header %v", ErrMalformed, err)
	}
	if !ok || kid == "" {
		return nil, fmt.Errorf("%w: header has no \"kid\" to select a key by", ErrUnknownKey)
	}
	pub, err := set.lookup(kid)
	if err != nil {
		return nil, err
	}

	payload, err := decodeSegment(pSeg)
	if err != nil {
		return nil, fmt.Errorf("%w: payload segment is not base64url: %v", ErrMalformed, err)
	}
	if len(payload) == 0 {
		// An empty payload segment is a detached-payload JWS (RFC 7515
		// Appendix F); a receipt always carries its payload.
		return nil, fmt.Errorf("%w: payload is empty", ErrMalformed)
	}
	sig, err := decodeSegment(sSeg)
	if err != nil {
		return nil, fmt.Errorf("%w: signature segment is not base64url: %v", ErrMalformed, err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature is %d bytes, Ed25519 signatures are %d", ErrMalformed, len(sig), ed25519.SignatureSize)
	}
	// The signing input is the segments exactly as received (RFC 7515
	// §5.2), not a re-encoding, so any change to them breaks the signature.
	if !ed25519.Verify(pub, []byte(hSeg+"."+pSeg), sig) {
		return nil, fmt.Errorf("%w: kid %q; the receipt was altered or signed by another key", ErrSignature, kid)
	}
	return payload, nil
}

// decodeSegment decodes one base64url segment. The alphabet is checked
// first because the decoder silently skips CR and LF, which would let
// differently spelled tokens decode to the same signature.
func decodeSegment(s string) ([]byte, error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			if c == '=' {
				return nil, fmt.Errorf("padding '=' at offset %d (JWS uses unpadded base64url)", i)
			}
			return nil, fmt.Errorf("illegal character %q at offset %d", c, i)
		}
	}
	return b64.DecodeString(s)
}

// lookup returns the public key with the given kid. It validates the JWK it
// picks, because a JWKS value may have been built by hand rather than by
// ParseJWKS.
func (set JWKS) lookup(kid string) (ed25519.PublicKey, error) {
	var found *JWK
	for i := range set.Keys {
		if set.Keys[i].Kid != kid {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%w: JWKS has more than one key with kid %q", ErrUnknownKey, kid)
		}
		found = &set.Keys[i]
	}
	if found == nil {
		return nil, fmt.Errorf("%w: kid %q is not in the JWKS (%d keys)", ErrUnknownKey, kid, len(set.Keys))
	}
	pub, err := found.publicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: key %q: %v", ErrUnknownKey, kid, err)
	}
	return pub, nil
}

// publicKey checks that k is an Ed25519 signing key usable with EdDSA and
// returns it.
func (k JWK) publicKey() (ed25519.PublicKey, error) {
	if k.Kty != "OKP" {
		return nil, fmt.Errorf("kty is %q, want \"OKP\"", k.Kty)
	}
	if k.Crv != "Ed25519" {
		return nil, fmt.Errorf("crv is %q, want \"Ed25519\"", k.Crv)
	}
	if k.Use != "" && k.Use != "sig" {
		return nil, fmt.Errorf("use is %q, want \"sig\"", k.Use)
	}
	if k.Alg != "" && k.Alg != Alg {
		return nil, fmt.Errorf("alg is %q, want %q", k.Alg, Alg)
	}
	x, err := decodeSegment(k.X)
	if err != nil {
		return nil, fmt.Errorf("x is not base64url: %v", err)
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("x is %d bytes, Ed25519 public keys are %d", len(x), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(x), nil
}

// ParseJWKS decodes a JWKS JSON document strictly. Every key must be an
// Ed25519 signing key with a unique kid: the document's only job is to
// verify receipts, so anything else in it is a mistake worth surfacing
// rather than skipping. Unknown members are ignored as RFC 7517 requires,
// except "d": a private key in a published key set is a leak, not an
// extension.
func ParseJWKS(b []byte) (JWKS, error) {
	if len(b) > MaxJWKSSize {
		return JWKS{}, fmt.Errorf("receipt: JWKS is %d bytes, limit is %d", len(b), MaxJWKSSize)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b, &doc); err != nil {
		return JWKS{}, fmt.Errorf("receipt: JWKS is not valid JSON: %w", err)
	}
	if doc == nil {
		return JWKS{}, errors.New("receipt: JWKS is not a JSON object")
	}
	rawKeys, ok := doc["keys"]
	if !ok {
		return JWKS{}, errors.New(`receipt: JWKS has no "keys" member`)
	}
	var raws []map[string]json.RawMessage
	if err := json.Unmarshal(rawKeys, &raws); err != nil || raws == nil {
		return JWKS{}, errors.New(`receipt: JWKS "keys" is not an array of objects`)
	}
	if len(raws) == 0 {
		return JWKS{}, errors.New(`receipt: JWKS "keys" is empty; nothing could be verified`)
	}
	set := JWKS{Keys: make([]JWK, 0, len(raws))}
	seen := make(map[string]int, len(raws))
	for i, raw := range raws {
		if raw == nil {
			return JWKS{}, fmt.Errorf("receipt: JWKS key %d is not a JSON object", i)
		}
		if _, ok := raw["d"]; ok {
			return JWKS{}, fmt.Errorf(`receipt: JWKS key %d contains private key material ("d"); publish only public keys`, i)
		}
		var k JWK
		for _, m := range []struct {
			name     string
			dst      *string
			required bool
		}{
			{"kty", &k.Kty, true},
			{"crv", &k.Crv, true},
			{"x", &k.X, true},
			{"kid", &k.Kid, true},
			{"use", &k.Use, false},
			{"alg", &k.Alg, false},
		} {
			v, ok, err := stringMember(raw, m.name)
			if err != nil {
				return JWKS{}, fmt.Errorf("receipt: JWKS key %d: %v", i, err)
			}
			if !ok && m.required {
				return JWKS{}, fmt.Errorf("receipt: JWKS key %d has no %q member", i, m.name)
			}
			*m.dst = v
		}
		if k.Kid == "" {
			return JWKS{}, fmt.Errorf("receipt: JWKS key %d has an empty kid; receipts select keys by kid", i)
		}
		if j, dup := seen[k.Kid]; dup {
			return JWKS{}, fmt.Errorf("receipt: JWKS keys %d and %d share kid %q", j, i, k.Kid)
		}
		seen[k.Kid] = i
		if _, err := k.publicKey(); err != nil {
			return JWKS{}, fmt.Errorf("receipt: JWKS key %d (kid %q): %v", i, k.Kid, err)
		}
		set.Keys = append(set.Keys, k)
	}
	return set, nil
}

// stringMember reads an optional string member by its exact name. ok is
// false when the member is absent; a present member that is not a string
// (including null) is an error.
func stringMember(obj map[string]json.RawMessage, name string) (v string, ok bool, err error) {
	raw, ok := obj[name]
	if !ok {
		return "", false, nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", false, fmt.Errorf("member %q is not a string", name)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false, fmt.Errorf("member %q is not a string", name)
	}
	return v, true, nil
}

// ParseSeed decodes a base64 32-byte Ed25519 seed. It accepts the standard
// and URL alphabets, padded or not, and ignores surrounding whitespace,
// because seeds arrive from environment variables and secret files written
// by whatever tool the operator had at hand. Errors never echo the input:
// it is a secret.
func ParseSeed(s string) ([]byte, error) {
	b, err := decodeKey(s, "signing seed")
	if err != nil {
		return nil, err
	}
	if len(b) != SeedSize {
		return nil, fmt.Errorf("receipt: signing seed decodes to %d bytes, want %d (generate one with: head -c 32 /dev/urandom | base64)", len(b), SeedSize)
	}
	return b, nil
}

// ParsePublicKey decodes a base64 32-byte Ed25519 public key, in the same
// encodings ParseSeed accepts, so retired keys can be configured the same way
// as the active seed.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := decodeKey(s, "public key")
	if err != nil {
		return nil, err
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("receipt: public key decodes to %d bytes, want %d", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

func decodeKey(s, what string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("receipt: %s is empty", what)
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding.Strict(), base64.RawStdEncoding.Strict(),
		base64.URLEncoding.Strict(), base64.RawURLEncoding.Strict(),
	} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("receipt: %s is not valid base64 (standard or URL alphabet, padded or unpadded)", what)
}
