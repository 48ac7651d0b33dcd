package keyring_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/keyring"
)

func TestHashAndEncrypt(t *testing.T) {
	t.Parallel()
	kr := keyring.NewRandom("k1")
	a := identity.MustParse("email:ann@example.com")
	b := identity.MustParse("email:ANN@example.com")
	if !bytes.Equal(kr.Hash(a), kr.Hash(b)) {
		t.Fatal("normalized identities hash differently")
	}
	if bytes.Equal(kr.Hash(a), kr.Hash(identity.MustParse("email:bob@example.com"))) {
		t.Fatal("different identities hash alike")
	}
	// Domain separation: an IP hash is never an identity hash of the same bytes.
	if bytes.Equal(kr.HashIP("email:ann@example.com"), kr.Hash(a)) {
		t.Fatal("ip and subject hashes collide")
	}
	kid, ct, err := kr.Seal([]byte(a.String()), []byte("email"))
	if err != nil || kid != "k1" || bytes.Contains(ct, []byte("ann")) {
		t.Fatalf("seal: %v %s", err, kid)
	}
	pt, err := kr.Open(kid, ct, []byte("email"))
	if err != nil || string(pt) != a.String() {
		t.Fatalf("open: %v %q", err, pt)
	}
	if _, err := kr.Open(kid, ct, []byte("tg")); err == nil {
		t.Fatal("ciphertext opened under another context")
	}
	ct[len(ct)-1] ^= 1
	if _, err := kr.Open(kid, ct, []byte("email")); err == nil {
		t.Fatal("tampered ciphertext opened")
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	old := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	nw := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	before, err := keyring.Parse("k1:" + old)
	if err != nil {
		t.Fatal(err)
	}
	after, err := keyring.Parse("k2:" + nw + ",k1:" + old)
	if err != nil {
		t.Fatal(err)
	}
	s := identity.MustParse("tg:42")
	kid, ct, _ := before.Seal([]byte("tg:42"), nil)
	if after.ActiveKID() != "k2" {
		t.Fatal(after.ActiveKID())
	}
	// Lookups made after rotation still find hashes made before it.
	found := false
	for _, h := range after.Hashes(s) {
		found = found || bytes.Equal(h, before.Hash(s))
	}
	if !found {
		t.Fatal("old hash not among lookup hashes after rotation")
	}
	if pt, err := after.Open(kid, ct, nil); err != nil || string(pt) != "tg:42" {
		t.Fatalf("old ciphertext: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	good := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, spec := range []string{"", "nokid", "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 16)), "k1:!!!", "k1:" + good + ",k1:" + good, ":" + good} {
		if _, err := keyring.Parse(spec); err == nil {
			t.Errorf("Parse(%q) accepted", spec)
		} else if strings.Contains(err.Error(), good) {
			t.Errorf("error leaks the key: %v", err)
		}
	}
}

// A demoted key ("kid:base64:lookup") keeps finding the hashes it made, so
// an erased person's opt-out survives the rotation, and opens nothing: a
// value still sealed under it is an error, never a silent fallback.
func TestLookupOnlyKey(t *testing.T) {
	t.Parallel()
	old := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	nw := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32))
	before, err := keyring.Parse("k1:" + old)
	if err != nil {
		t.Fatal(err)
	}
	demoted, err := keyring.Parse("k2:" + nw + ", k1:" + old + ":lookup")
	if err != nil {
		t.Fatal(err)
	}
	if demoted.ActiveKID() != "k2" || !demoted.IsLookupOnly("k1") || demoted.IsLookupOnly("k2") ||
		strings.Join(demoted.LookupOnly(), ",") != "k1" || strings.Join(demoted.KIDs(), ",") != "k2,k1" {
		t.Fatalf("ring: active %s, lookup-only %v, kids %v", demoted.ActiveKID(), demoted.LookupOnly(), demoted.KIDs())
	}
	s := identity.MustParse("email:ann@example.com")
	hs := demoted.Hashes(s)
	if len(hs) != 2 || !bytes.Equal(hs[0], demoted.Hash(s)) || !bytes.Equal(hs[1], before.Hash(s)) {
		t.Fatal("lookup-only key's hash is not among the lookup hashes")
	}
	kid, ct, err := before.Seal([]byte(s.String()), []byte("email"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := demoted.Open(kid, ct, []byte("email")); !errors.Is(err, keyring.ErrLookupOnly) {
		t.Fatalf("opened under a lookup-only key: %v", err)
	}
	if kid, _, err := demoted.Seal([]byte("x"), nil); err != nil || kid != "k2" {
		t.Fatalf("seal: %s %v", kid, err)
	}
	// Nothing can seal under a lookup-only key: it cannot be the active
	// one, and an unknown flag is not taken for one.
	for _, spec := range []string{"k1:" + old + ":lookup", "k1:" + old + ":lookup,k2:" + nw, "k2:" + nw + ",k1:" + old + ":lookups"} {
		if _, err := keyring.Parse(spec); err == nil {
			t.Errorf("Parse(%q) accepted", spec)
		} else if strings.Contains(err.Error(), old) || strings.Contains(err.Error(), nw) {
			t.Errorf("error leaks the key: %v", err)
		}
	}
}
