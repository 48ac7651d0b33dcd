package receipt_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/internal/receipt"
)

// FuzzVerify checks that Verify never panics, that every rejection wraps one
// of the documented sentinel errors, and — the property that matters — that
// anything it accepts really is signed by a key in the set, judged by an
// independent, deliberately naive re-implementation.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	f.Add(fx.valid)
	if tok, err := fx.old.Sign(fx.rec); err == nil {
		f.Add(tok)
	}
	for _, tc := range rejectCases(f, fx) {
		if len(tc.compact) <= receipt.MaxCompactSize {
			f.Add(tc.compact)
		}
	}
	sentinels := []error{receipt.ErrTooLarge, receipt.ErrMalformed, receipt.ErrAlgorithm, receipt.ErrUnknownKey, receipt.ErrSignature}

	f.Fuzz(func(t *testing.T, compact string) {
		payload, err := receipt.Verify(compact, fx.set)
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error %q wraps no sentinel", err)
		}

		segs := strings.Split(compact, ".")
		if len(segs) != 3 {
			t.Fatalf("accepted %d segments", len(segs))
		}
		hdrJSON, err := b64.DecodeString(segs[0])
		if err != nil {
			t.Fatalf("accepted undecodable header: %v", err)
		}
		var hdr map[string]any
		if err := json.Unmarshal(hdrJSON, &hdr); err != nil {
			t.Fatalf("accepted non-JSON header: %v", err)
		}
		if hdr["alg"] != "EdDSA" {
			t.Fatalf("accepted alg %v", hdr["alg"])
		}
		var pub ed25519.PublicKey
		for _, k := range fx.set.Keys {
			if k.Kid == hdr["kid"] {
				pub, _ = b64.DecodeString(k.X)
			}
		}
		if pub == nil {
			t.Fatalf("accepted kid %v that is not in the set", hdr["kid"])
		}
		sig, err := b64.DecodeString(segs[2])
		if err != nil || !ed25519.Verify(pub, []byte(segs[0]+"."+segs[1]), sig) {
			t.Fatalf("accepted a signature that does not verify: %q", compact)
		}
		if want, err := b64.DecodeString(segs[1]); err != nil || !bytes.Equal(payload, want) {
			t.Fatalf("payload %q is not the signed payload", payload)
		}
		// Only the real signers' output can pass, and those always use
		// the canonical encodings.
		if b64.EncodeToString(sig) != segs[2] {
			t.Fatalf("accepted non-canonical signature encoding %q", segs[2])
		}
	})
}

// FuzzParseJWKS checks that ParseJWKS never panics and that whatever it
// accepts is a set Verify can use: Ed25519 keys, 32-byte x, unique kids, and
// stable under a marshal/parse round trip.
func FuzzParseJWKS(f *testing.F) {
	fx := newFixture(f)
	good, err := json.Marshal(fx.set)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, tc := range jwksCases(f) {
		if len(tc.doc) <= receipt.MaxJWKSSize {
			f.Add([]byte(tc.doc))
		}
	}

	f.Fuzz(func(t *testing.T, doc []byte) {
		set, err := receipt.ParseJWKS(doc)
		if err != nil {
			return
		}
		if len(set.Keys) == 0 {
			t.Fatal("accepted an empty set")
		}
		kids := map[string]bool{}
		for i, k := range set.Keys {
			if k.Kty != "OKP" || k.Crv != "Ed25519" {
				t.Fatalf("key %d: accepted kty %q crv %q", i, k.Kty, k.Crv)
			}
			if x, err := b64.DecodeString(k.X); err != nil || len(x) != ed25519.PublicKeySize {
				t.Fatalf("key %d: accepted x %q", i, k.X)
			}
			if k.Kid == "" || kids[k.Kid] {
				t.Fatalf("key %d: accepted empty or duplicate kid %q", i, k.Kid)
			}
			kids[k.Kid] = true
		}
		again, err := json.Marshal(set)
		if err != nil {
			t.Fatal(err)
		}
		back, err := receipt.ParseJWKS(again)
		if err != nil {
			t.Fatalf("re-parsing accepted set failed: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(back, set) {
			t.Fatalf("round trip changed the set: %+v -> %+v", set, back)
		}
	})
}
