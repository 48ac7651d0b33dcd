package audit

import (
	"fmt"

	"github.com/steward-privacy/steward/internal/receipt"
)

// LoadKeys builds the checkpoint signer from signingKey (base64 of a
// 32-byte Ed25519 seed; "" gives a nil signer) and the set of keys Verify
// trusts: the signer's and the retired ones (base64 public keys). Key ids
// are RFC 7638 thumbprints, so a verifier can match a key it was given out
// of band. Errors name the setting, never the key.
func LoadKeys(signingKey string, retired []string) (*Signer, Keys, error) {
	keys := Keys{}
	var signer *Signer
	if signingKey != "" {
		seed, err := receipt.ParseSeed(signingKey)
		if err != nil {
			return nil, nil, fmt.Errorf("STEWARD_AUDIT_SIGNING_KEY: %w", err)
		}
		s, err := NewSigner(seed, "")
		if err != nil {
			return nil, nil, err
		}
		kid := receipt.Thumbprint(s.PublicKey())
		if signer, err = NewSigner(seed, kid); err != nil {
			return nil, nil, err
		}
		keys[kid] = signer.PublicKey()
	}
	for _, k := range retired {
		pk, err := receipt.ParsePublicKey(k)
		if err != nil {
			return nil, nil, fmt.Errorf("STEWARD_AUDIT_RETIRED_KEYS: %w", err)
		}
		keys[receipt.Thumbprint(pk)] = pk
	}
	return signer, keys, nil
}
