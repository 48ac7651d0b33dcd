package stdwebhook

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks reference libraries' shared test vector.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = int64(1614265330)
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignMatchesReferenceVector(t *testing.T) {
	t.Parallel()
	key, err := DecodeSecret(vecSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got := Sign(key, vecID, time.Unix(vecTS, 0), []byte(vecBody)); got != vecSig {
		t.Fatalf("Sign = %s, want %s", got, vecSig)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	other, _ := NewSecret()
	otherKey, _ := DecodeSecret(other)
	now := func() time.Time { return time.Unix(vecTS+30, 0) }
	cases := []struct {
		name              string
		id, ts, sig, body string
		want              error
	}{
		{"valid", vecID, "1614265330", vecSig, vecBody, nil},
		{"valid among rotated signatures", vecID, "1614265330", Sign(otherKey, vecID, time.Unix(vecTS, 0), []byte(vecBody)) + " " + vecSig, vecBody, nil},
		{"unknown version ignored beside a good v1", vecID, "1614265330", "v1a,abc " + vecSig, vecBody, nil},
		{"tampered body", vecID, "1614265330", vecSig, `{"test": 2432232315}`, ErrNoMatch},
		{"other id", "msg_other", "1614265330", vecSig, vecBody, ErrNoMatch},
		{"wrong secret only", vecID, "1614265330", Sign(otherKey, vecID, time.Unix(vecTS, 0), []byte(vecBody)), vecBody, ErrNoMatch},
		{"too old", vecID, "1614264000", vecSig, vecBody, ErrTooOld},
		{"in the future", vecID, "1614269000", vecSig, vecBody, ErrTooOld},
		{"timestamp not a number", vecID, "yesterday", vecSig, vecBody, ErrBadTimestamp},
		{"missing signature", vecID, "1614265330", "", vecBody, ErrMissingHeader},
		{"missing id", "", "1614265330", vecSig, vecBody, ErrMissingHeader},
		{"no comma", vecID, "1614265330", "v1" + vecSig[3:], vecBody, ErrBadSignature},
		{"not base64", vecID, "1614265330", "v1,!!!", vecBody, ErrBadSignature},
		{"short mac", vecID, "1614265330", "v1,AAAA", vecBody, ErrBadSignature},
		{"only unknown versions", vecID, "1614265330", "v2,abc", vecBody, ErrBadSignature},
		{"too many entries", vecID, "1614265330", strings.Repeat(vecSig+" ", MaxSignatures+1), vecBody, ErrBadSignature},
	}
	v, err := NewVerifier(vecSecret)
	if err != nil {
		t.Fatal(err)
	}
	v.Now = now
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			err := v.Verify(c.id, c.ts, c.sig, []byte(c.body))
			if !errors.Is(err, c.want) {
				t.Fatalf("Verify = %v, want %v", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), c.sig) && c.sig != "" {
				t.Fatalf("error repeats the header: %v", err)
			}
		})
	}
}

func TestSecrets(t *testing.T) {
	t.Parallel()
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s, SecretPrefix) {
		t.Fatalf("secret %q lacks the whsec_ prefix", s)
	}
	if k, err := DecodeSecret(s); err != nil || len(k) != 32 {
		t.Fatalf("DecodeSecret(new) = %d bytes, %v", len(k), err)
	}
	for _, bad := range []string{"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_AAAA", "whsec_%%%"} {
		if _, err := DecodeSecret(bad); !errors.Is(err, ErrBadSecret) {
			t.Errorf("DecodeSecret(%q) = %v, want ErrBadSecret", bad, err)
		}
	}
	if _, err := NewVerifier(); !errors.Is(err, ErrBadSecret) {
		t.Errorf("NewVerifier() = %v", err)
	}
}

// FuzzParseSignatureHeader: the parser never panics, never returns more
// than MaxSignatures entries, and every v1 entry it accepts holds a
// 32-byte MAC that re-encodes to a header it parses the same way.
func FuzzParseSignatureHeader(f *testing.F) {
	for _, s := range []string{vecSig, vecSig + " v1a,abc", "v1,AAAA", "v1,!!!", "", " ", "v1,", ",x", "v2,abc v1,abc",
		strings.Repeat(vecSig+" ", MaxSignatures+1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		sigs, err := ParseSignatureHeader(h)
		if err != nil {
			if sigs != nil {
				t.Fatalf("entries returned with an error")
			}
			return
		}
		if len(sigs) == 0 || len(sigs) > MaxSignatures {
			t.Fatalf("%d entries", len(sigs))
		}
		for _, s := range sigs {
			if s.Version == "v1" && len(s.Value) != 32 {
				t.Fatalf("v1 entry of %d bytes", len(s.Value))
			}
		}
	})
}
