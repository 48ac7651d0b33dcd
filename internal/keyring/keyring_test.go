package keyring_test

import (
	"bytes"
	"encoding/base64"
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
