package keyring

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/steward-privacy/steward/identity"
)

// TestSubjectHashUnchanged: the lookup hash is what every stored identity
// is found by, so the pieces Hash and HashString feed the MAC must be
// exactly the subject's canonical string, for plain and OAuth subjects, and
// a fixed key must give the same hash as ever (the value below was made
// with the concatenating implementation this one replaced).
func TestSubjectHashUnchanged(t *testing.T) {
	kr, err := Parse("k1:" + "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if err != nil {
		t.Fatal(err)
	}
	for _, raw := range []string{"email:ann@example.com", "tg:123456", "oauth:google:1097", "visitor:abcdefgh12"} {
		s := identity.MustParse(raw)
		want := kr.keys[kr.active].mac(domainSubject, s.String())
		if got := kr.Hash(s); !bytes.Equal(got, want) {
			t.Errorf("%s: Hash %x, want %x", raw, got, want)
		}
		if got := kr.Hashes(s); len(got) != 1 || !bytes.Equal(got[0], want) {
			t.Errorf("%s: Hashes %x, want [%x]", raw, got, want)
		}
		if got := kr.HashString(s); got != string(want) {
			t.Errorf("%s: HashString differs from Hash", raw)
		}
	}
	if got := hex.EncodeToString(kr.Hash(identity.MustParse("email:ann@example.com"))); got != goldenAnn {
		t.Errorf("the lookup hash of a fixed subject under a fixed key changed: %s", got)
	}
}

// TestHashStringAllocatesOnce: the consent check's lookup hash costs one
// allocation, the string. make test runs it again without -race, under
// which sync.Pool drops pooled items at random.
func TestHashStringAllocatesOnce(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race; make test runs this without it")
	}
	kr := NewRandom("k1")
	for _, raw := range []string{"email:ann@example.com", "oauth:google:1097"} {
		s := identity.MustParse(raw)
		if n := testing.AllocsPerRun(100, func() { kr.HashString(s) }); n > 1 {
			t.Errorf("%s: HashString allocates %.0f times", raw, n)
		}
	}
}

// goldenAnn is HMAC-SHA256 under the lookup key derived from the bytes
// 0..31, of "subject\x00email:ann@example.com".
const goldenAnn = "6a6d0c9f86f7ed1658b734016c19163525138ca2479ee76c6c7621a2d9691353"
