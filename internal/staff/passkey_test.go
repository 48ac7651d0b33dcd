package staff_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/staff"
)

// authenticator is a software WebAuthn authenticator: one ES256 key, "none"
// attestation, and a signature counter the test controls. It builds what a
// browser would hand back (clientDataJSON, attestationObject, assertion),
// so the server side runs the library's real checks. (The console's
// browser tests use Chrome's virtual authenticator.)
type authenticator struct {
	key    *ecdsa.PrivateKey
	credID []byte
	origin string
	rpID   string
	count  uint32
}

func newAuthenticator(t *testing.T) *authenticator {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &authenticator{key: key, credID: id, origin: origin, rpID: rpID}
}

var b64 = base64.RawURLEncoding.EncodeToString

// cbor encodes the few CBOR shapes WebAuthn needs here (RFC 8949): ints,
// byte and text strings, and maps in the order given.
type cborKV struct {
	k any
	v any
}

func cbor(v any) []byte {
	head := func(major byte, n uint64) []byte {
		switch {
		case n < 24:
			return []byte{major<<5 | byte(n)}
		case n < 1<<8:
			return []byte{major<<5 | 24, byte(n)}
		case n < 1<<16:
			return []byte{major<<5 | 25, byte(n >> 8), byte(n)}
		default:
			return binary.BigEndian.AppendUint32([]byte{major<<5 | 26}, uint32(n))
		}
	}
	switch x := v.(type) {
	case int:
		if x >= 0 {
			return head(0, uint64(x))
		}
		return head(1, uint64(-1-x))
	case []byte:
		return append(head(2, uint64(len(x))), x...)
	case string:
		return append(head(3, uint64(len(x))), x...)
	case []cborKV:
		out := head(5, uint64(len(x)))
		for _, kv := range x {
			out = append(out, cbor(kv.k)...)
			out = append(out, cbor(kv.v)...)
		}
		return out
	}
	panic("cbor: unsupported type")
}

func (a *authenticator) authData(flags byte, attested bool) []byte {
	rp := sha256.Sum256([]byte(a.rpID))
	out := append(rp[:], flags)
	out = binary.BigEndian.AppendUint32(out, a.count)
	if attested {
		out = append(out, make([]byte, 16)...) // AAGUID: none
		out = binary.BigEndian.AppendUint16(out, uint16(len(a.credID)))
		out = append(out, a.credID...)
		pad := func(b []byte) []byte { return append(make([]byte, 32-len(b)), b...) }
		out = append(out, cbor([]cborKV{
			{1, 2},  // kty: EC2
			{3, -7}, // alg: ES256
			{-1, 1}, // crv: P-256
			{-2, pad(a.key.X.Bytes())},
			{-3, pad(a.key.Y.Bytes())},
		})...)
	}
	return out
}

func challengeOf(t *testing.T, options []byte) string {
	t.Helper()
	var o struct {
		PublicKey struct {
			Challenge string `json:"challenge"`
			RP        struct {
				ID string `json:"id"`
			} `json:"rp"`
			RPID string `json:"rpId"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil || o.PublicKey.Challenge == "" {
		t.Fatalf("options %s: %v", options, err)
	}
	if id := o.PublicKey.RP.ID + o.PublicKey.RPID; id != rpID {
		t.Fatalf("relying party %q in %s", id, options)
	}
	return o.PublicKey.Challenge
}

const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

// create answers navigator.credentials.create.
func (a *authenticator) create(t *testing.T, options []byte) []byte {
	t.Helper()
	cd, _ := json.Marshal(map[string]any{"type": "webauthn.create", "challenge": challengeOf(t, options), "origin": a.origin, "crossOrigin": false})
	att := cbor([]cborKV{{"fmt", "none"}, {"attStmt", []cborKV{}}, {"authData", a.authData(flagUP|flagUV|flagAT, true)}})
	out, _ := json.Marshal(map[string]any{
		"id": b64(a.credID), "rawId": b64(a.credID), "type": "public-key", "authenticatorAttachment": "platform",
		"response":               map[string]any{"clientDataJSON": b64(cd), "attestationObject": b64(att), "transports": []string{"internal"}},
		"clientExtensionResults": map[string]any{},
	})
	return out
}

// get answers navigator.credentials.get, with the counter moved forward
// by step (0 replays the last value, as a cloned key would).
func (a *authenticator) get(t *testing.T, options []byte, userHandle []byte, step uint32) []byte {
	t.Helper()
	a.count += step
	cd, _ := json.Marshal(map[string]any{"type": "webauthn.get", "challenge": challengeOf(t, options), "origin": a.origin, "crossOrigin": false})
	ad := a.authData(flagUP|flagUV, false)
	cdh := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, ad...), cdh[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(map[string]any{
		"id": b64(a.credID), "rawId": b64(a.credID), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64(cd), "authenticatorData": b64(ad), "signature": b64(sig),
			"userHandle": b64(userHandle)},
		"clientExtensionResults": map[string]any{},
	})
	return out
}

func userHandleOf(t *testing.T, options []byte) []byte {
	t.Helper()
	var o struct {
		PublicKey struct {
			User struct {
				ID string `json:"id"`
			} `json:"user"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(options, &o); err != nil {
		t.Fatal(err)
	}
	h, err := base64.RawURLEncoding.DecodeString(o.PublicKey.User.ID)
	if err != nil || len(h) != 16 {
		t.Fatalf("user handle %q: %v", o.PublicKey.User.ID, err)
	}
	return h
}

func TestPasskeys(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	acc, password := f.create(t, "ann@example.com", "reviewer")
	auth := newAuthenticator(t)
	var handle []byte

	t.Run("enrolment with a none-attestation passkey signs in", func(t *testing.T) {
		p, err := f.svc.SignInPassword(ctx, acc.Email, password, ip)
		if err != nil || !p.NeedsEnrolment {
			t.Fatalf("%+v %v", p, err)
		}
		f.secrets = append(f.secrets, p.Token)
		if _, err := f.svc.FinishPasskeyEnrolment(ctx, p.Token, []byte(`{}`), ip); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("finish before begin: %v", err)
		}
		opts, err := f.svc.BeginPasskeyEnrolment(ctx, p.Token)
		if err != nil {
			t.Fatal(err)
		}
		handle = userHandleOf(t, opts)
		if strings.Contains(string(opts), acc.ID) {
			t.Fatalf("options carry the account id: %s", opts)
		}
		// Another authenticator's answer to this challenge, from the wrong
		// origin, is refused and uses the challenge up.
		evil := newAuthenticator(t)
		evil.origin = "https://evil.example"
		if _, err := f.svc.FinishPasskeyEnrolment(ctx, p.Token, evil.create(t, opts), ip); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("wrong origin: %v", err)
		}
		if _, err := f.svc.FinishPasskeyEnrolment(ctx, p.Token, auth.create(t, opts), ip); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("a used challenge: %v", err)
		}
		opts, err = f.svc.BeginPasskeyEnrolment(ctx, p.Token)
		if err != nil {
			t.Fatal(err)
		}
		s, err := f.svc.FinishPasskeyEnrolment(ctx, p.Token, auth.create(t, opts), ip)
		if err != nil {
			t.Fatalf("%v", err)
		}
		f.secrets = append(f.secrets, s.Token)
		if s.Principal.Method != "passkey" {
			t.Fatalf("%+v", s.Principal)
		}
		if got, _ := f.svc.Get(ctx, acc.ID); got.Passkeys != 1 || got.TOTP {
			t.Fatalf("%+v", got)
		}
		if es := f.actions(t, "staff.passkey_enrolled"); len(es) != 1 || !strings.Contains(es[0].details, `"none"`) {
			t.Fatalf("%+v", es)
		}
	})

	signIn := func(t *testing.T, step uint32) (staff.Session, error) {
		t.Helper()
		f.clk.Advance(time.Minute)
		p, err := f.svc.SignInPassword(ctx, acc.Email, password, ip)
		if err != nil {
			return staff.Session{}, err
		}
		if !p.Passkey || p.TOTP || p.NeedsEnrolment {
			t.Fatalf("%+v", p)
		}
		f.secrets = append(f.secrets, p.Token)
		opts, err := f.svc.BeginPasskeySignIn(ctx, p.Token)
		if err != nil {
			return staff.Session{}, err
		}
		s, err := f.svc.FinishPasskeySignIn(ctx, p.Token, auth.get(t, opts, handle, step), ip)
		f.secrets = append(f.secrets, s.Token)
		return s, err
	}

	t.Run("a passkey completes a password sign-in", func(t *testing.T) {
		s, err := signIn(t, 1)
		if err != nil || s.Principal.AccountID != acc.ID || s.Principal.Method != "passkey" {
			t.Fatalf("%+v %v", s, err)
		}
		if _, err := f.svc.Authenticate(ctx, s.Token); err != nil {
			t.Fatal(err)
		}
		var count int64
		if err := f.pool.QueryRow(ctx, `SELECT sign_count FROM staff_passkeys WHERE account_id = $1`, acc.ID).Scan(&count); err != nil || count != 1 {
			t.Fatalf("stored counter %d %v", count, err)
		}
	})
	t.Run("an assertion for another challenge is refused and counted", func(t *testing.T) {
		f.clk.Advance(time.Minute)
		p, _ := f.svc.SignInPassword(ctx, acc.Email, password, ip)
		f.secrets = append(f.secrets, p.Token)
		old, _ := f.svc.BeginPasskeySignIn(ctx, p.Token)
		if _, err := f.svc.BeginPasskeySignIn(ctx, p.Token); err != nil { // replaces the challenge
			t.Fatal(err)
		}
		if _, err := f.svc.FinishPasskeySignIn(ctx, p.Token, auth.get(t, old, handle, 1), ip); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("%v", err)
		}
		es := f.actions(t, "staff.signin_failed")
		if last := es[len(es)-1]; !strings.Contains(last.details, `"failures": 1`) || !strings.Contains(last.details, "assertion_refused") {
			t.Fatalf("%+v", last)
		}
	})
	t.Run("a counter that does not move forward flags the passkey", func(t *testing.T) {
		auth.count = 1 // the stored value: the refused answer above never counted
		if _, err := signIn(t, 0); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("a replayed counter: %v", err)
		}
		if es := f.actions(t, "staff.passkey_clone_warning"); len(es) != 1 {
			t.Fatalf("%+v", es)
		}
		if got, _ := f.svc.Get(ctx, acc.ID); got.Passkeys != 0 {
			t.Fatalf("a flagged passkey still counts: %+v", got)
		}
		// The flagged passkey is no longer offered, and the password alone
		// cannot enrol a new factor: an admin resets it.
		f.clk.Advance(time.Minute)
		p, err := f.svc.SignInPassword(ctx, acc.Email, password, ip)
		if err != nil || p.Passkey || p.NeedsEnrolment {
			t.Fatalf("%+v %v", p, err)
		}
		f.secrets = append(f.secrets, p.Token)
		if _, err := f.svc.BeginPasskeySignIn(ctx, p.Token); !errors.Is(err, staff.ErrWrongStep) {
			t.Fatalf("%v", err)
		}
		if _, err := f.svc.BeginPasskeyEnrolment(ctx, p.Token); !errors.Is(err, staff.ErrWrongStep) {
			t.Fatalf("%v", err)
		}
		if err := f.svc.ResetMFA(ctx, acc.ID, "system:test"); err != nil {
			t.Fatal(err)
		}
		if got, _ := f.svc.Get(ctx, acc.ID); got.Passkeys != 0 || got.TOTP {
			t.Fatalf("%+v", got)
		}
	})
}

func TestPasskeysNotConfigured(t *testing.T) {
	t.Parallel()
	f := setup(t, func(c *staff.Config) { c.RPID, c.RPOrigins = "", nil })
	ctx := context.Background()
	acc, password := f.create(t, "ann@example.com", "reviewer")
	p, err := f.svc.SignInPassword(ctx, acc.Email, password, ip)
	if err != nil {
		t.Fatal(err)
	}
	f.secrets = append(f.secrets, p.Token)
	if f.svc.Passkeys() {
		t.Fatal("Passkeys() without a relying party")
	}
	if _, err := f.svc.BeginPasskeyEnrolment(ctx, p.Token); !errors.Is(err, staff.ErrUnavailable) {
		t.Fatalf("%v", err)
	}
}
