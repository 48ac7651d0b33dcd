package receipt

import (
	"crypto/ed25519"
	"errors"
	"fmt"
)

// LoadSigner builds the signer from signingKey (base64 of a 32-byte Ed25519
// seed, STEWARD_RECEIPT_SIGNING_KEY); retired keys (base64 public keys)
// still verify the receipts they signed. Errors name the setting, never the
// key.
func LoadSigner(signingKey string, retired []string) (*Signer, error) {
	if signingKey == "" {
		return nil, errors.New("STEWARD_RECEIPT_SIGNING_KEY is not set (base64 of a 32-byte Ed25519 seed)")
	}
	seed, err := ParseSeed(signingKey)
	if err != nil {
		return nil, fmt.Errorf("STEWARD_RECEIPT_SIGNING_KEY: %w", err)
	}
	var old []ed25519.PublicKey
	for _, k := range retired {
		pk, err := ParsePublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("STEWARD_RECEIPT_RETIRED_KEYS: %w", err)
		}
		old = append(old, pk)
	}
	s, err := NewSigner(seed, old...)
	if err != nil {
		return nil, fmt.Errorf("receipt signer: %w", err)
	}
	return s, nil
}
