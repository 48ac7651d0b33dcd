package receipt_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/receipt"
)

var b64 = base64.RawURLEncoding

// seedOf returns a deterministic 32-byte seed so failures reproduce exactly.
func seedOf(b byte) []byte { return bytes.Repeat([]byte{b}, receipt.SeedSize) }

func sampleEvent(state string) receipt.Event {
	return receipt.Event{
		ID:             "0195a1c2-7f3e-7d41-9b2a-6c1f0e8d4b10",
		SubjectHash:    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		SubjectType:    "email",
		Purpose:        "marketing",
		DataUse:        "marketing.communications.email",
		DPVPurpose:     "dpv:DirectMarketing",
		PurposeName:    "Marketing emails and non-essential cookies",
		State:          state,
		Source:         "web_banner",
		NoticeVersion:  "2025-03-01",
		Jurisdiction:   "DE",
		Regime:         "gdpr",
		Language:       "de",
		Product:        "web",
		GPC:            true,
		UserAgent:      "Mozilla/5.0 <test> & co",
		IPHash:         "3c9909afec25354d551dae21590bb26e38d53f2173b8d3dc3eee4c047e7ab1c1",
		RecordedAt:     time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.FixedZone("CET", 3600)),
		PolicyRevision: "rev-42",
	}
}

var controller = receipt.Controller{Name: "Example GmbH", Contact: "privacy@example.com"}

// fixture is shared by the table tests and the fuzz targets so that the
// fuzzers start from exactly the inputs the tests reason about.
type fixture struct {
	activeSeed []byte
	active     *receipt.Signer
	old        *receipt.Signer // its public key is retired in active
	stranger   *receipt.Signer // not in the JWKS at all
	set        receipt.JWKS    // active.JWKS(), after a JSON round trip
	rec        receipt.Receipt
	valid      string // rec signed by active
}

func newFixture(tb testing.TB) fixture {
	tb.Helper()
	must := func(s *receipt.Signer, err error) *receipt.Signer {
		tb.Helper()
		if err != nil {
			tb.Fatalf("NewSigner: %v", err)
		}
		return s
	}
	fx := fixture{activeSeed: seedOf(1)}
	fx.old = must(receipt.NewSigner(seedOf(2)))
	fx.active = must(receipt.NewSigner(fx.activeSeed, fx.old.PublicKey()))
	fx.stranger = must(receipt.NewSigner(seedOf(3)))
	doc, err := json.Marshal(fx.active.JWKS())
	if err != nil {
		tb.Fatalf("marshal JWKS: %v", err)
	}
	if fx.set, err = receipt.ParseJWKS(doc); err != nil {
		tb.Fatalf("ParseJWKS(own JWKS): %v", err)
	}
	fx.rec = receipt.Build(sampleEvent(receipt.StateGranted), controller)
	if fx.valid, err = fx.active.Sign(fx.rec); err != nil {
		tb.Fatalf("Sign: %v", err)
	}
	return fx
}

// forge assembles a compact JWS from an arbitrary header. With a key it is
// correctly signed, so a rejection can only come from the header itself.
func forge(tb testing.TB, priv ed25519.PrivateKey, header any, payload []byte) string {
	tb.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		tb.Fatalf("marshal header: %v", err)
	}
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(payload)
	var sig []byte
	if priv != nil {
		sig = ed25519.Sign(priv, []byte(input))
	}
	return input + "." + b64.EncodeToString(sig)
}

type rejectCase struct {
	name    string
	compact string
	want    error  // sentinel, checked with errors.Is
	msg     string // substring that makes the error actionable
}

func rejectCases(tb testing.TB, fx fixture) []rejectCase {
	tb.Helper()
	segs := strings.Split(fx.valid, ".")
	h, p, s := segs[0], segs[1], segs[2]
	priv := ed25519.NewKeyFromSeed(fx.activeSeed)
	kid := fx.active.KeyID()
	payload, _ := b64.DecodeString(p)

	tamperedPayload := b64.EncodeToString(bytes.Replace(payload, []byte(`"given"`), []byte(`"withdrawn"`), 1))
	sig, _ := b64.DecodeString(s)
	sig[10] ^= 0x01
	tamperedSig := b64.EncodeToString(sig)

	hdr := func(alg, kid, typ string) map[string]string {
		m := map[string]string{"alg": alg, "kid": kid, "typ": typ}
		for k, v := range m {
			if v == "" {
				delete(m, k)
			}
		}
		return m
	}
	// HS256 keyed with the public key: the textbook algorithm-confusion
	// forgery against verifiers that trust the header's alg.
	hsInput := b64.EncodeToString([]byte(`{"alg":"HS256","kid":"`+kid+`","typ":"`+receipt.Typ+`"}`)) + "." + p
	mac := hmac.New(sha256.New, fx.active.PublicKey())
	mac.Write([]byte(hsInput))
	hs256 := hsInput + "." + b64.EncodeToString(mac.Sum(nil))

	strangerTok, err := fx.stranger.Sign(fx.rec)
	if err != nil {
		tb.Fatalf("stranger Sign: %v", err)
	}

	return []rejectCase{
		{"tampered payload fails signature", h + "." + tamperedPayload + "." + s, receipt.ErrSignature, "altered or signed by another key"},
		{"tampered signature fails signature", h + "." + p + "." + tamperedSig, receipt.ErrSignature, "altered or signed by another key"},
		{"truncated signature is malformed", h + "." + p + "." + s[:len(s)-2], receipt.ErrMalformed, "signature is 63 bytes"},
		{"signer outside JWKS is unknown kid", strangerTok, receipt.ErrUnknownKey, "is not in the JWKS"},
		{"made-up kid is unknown kid", forge(tb, priv, hdr(receipt.Alg, "no-such-kid", receipt.Typ), payload), receipt.ErrUnknownKey, `"no-such-kid" is not in the JWKS`},
		{"missing kid is rejected", forge(tb, priv, hdr(receipt.Alg, "", receipt.Typ), payload), receipt.ErrUnknownKey, `no "kid"`},
		{"alg none is never accepted", forge(tb, nil, hdr("none", kid, receipt.Typ), payload), receipt.ErrAlgorithm, `"none" (unsigned JWS)`},
		{"alg HS256 is not accepted", hs256, receipt.ErrAlgorithm, `"HS256" is not accepted`},
		{"missing alg is rejected", forge(tb, priv, hdr("", kid, receipt.Typ), payload), receipt.ErrAlgorithm, `no "alg"`},
		{"uppercase ALG does not count as alg", forge(tb, priv, map[string]string{"ALG": receipt.Alg, "kid": kid, "typ": receipt.Typ}, payload), receipt.ErrAlgorithm, `no "alg"`},
		{"non-string alg is malformed", forge(tb, priv, map[string]any{"alg": 1, "kid": kid, "typ": receipt.Typ}, payload), receipt.ErrMalformed, `"alg" is not a string`},
		{"wrong typ is not a receipt", forge(tb, priv, hdr(receipt.Alg, kid, "JWT"), payload), receipt.ErrMalformed, "not a consent receipt"},
		{"missing typ is rejected", forge(tb, priv, hdr(receipt.Alg, kid, ""), payload), receipt.ErrMalformed, `no "typ"`},
		{"crit extension is rejected", forge(tb, priv, map[string]any{"alg": receipt.Alg, "kid": kid, "typ": receipt.Typ, "crit": []string{"b64"}, "b64": false}, payload), receipt.ErrMalformed, `"crit"`},
		{"two segments are malformed", h + "." + p, receipt.ErrMalformed, "has 2 segments, want 3"},
		{"four segments are malformed", fx.valid + "." + s, receipt.ErrMalformed, "has 4 segments, want 3"},
		{"empty input is malformed", "", receipt.ErrMalformed, "has 1 segments, want 3"},
		{"bad base64 header is malformed", "!" + h[1:] + "." + p + "." + s, receipt.ErrMalformed, "header segment is not base64url"},
		{"bad base64 payload is malformed", h + "." + p[:5] + "*" + p[6:] + "." + s, receipt.ErrMalformed, "payload segment is not base64url"},
		{"padded signature is malformed", h + "." + p + "." + s + "==", receipt.ErrMalformed, "padding '='"},
		{"newline in signature is malformed", h + "." + p + "." + s[:20] + "\n" + s[20:], receipt.ErrMalformed, `illegal character '\n'`},
		{"header that is not JSON is malformed", b64.EncodeToString([]byte("not json")) + "." + p + "." + s, receipt.ErrMalformed, "header is not a JSON object"},
		{"empty payload is malformed", forge(tb, priv, hdr(receipt.Alg, kid, receipt.Typ), nil), receipt.ErrMalformed, "payload is empty"},
		{"oversized input is too large", fx.valid + strings.Repeat("A", receipt.MaxCompactSize), receipt.ErrTooLarge, "limit is 65536"},
	}
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)

	t.Run("round trip through JWKS JSON returns the receipt", func(t *testing.T) {
		t.Parallel()
		got, err := receipt.Verify(fx.valid, fx.set)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		want, _ := json.Marshal(fx.rec)
		if !bytes.Equal(got, want) {
			t.Errorf("payload = %s\nwant     %s", got, want)
		}
		var back receipt.Receipt
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("decode payload: %v", err)
		}
		if !reflect.DeepEqual(back, fx.rec) {
			t.Errorf("decoded receipt = %+v\nwant %+v", back, fx.rec)
		}
	})

	t.Run("header is EdDSA with kid and typ", func(t *testing.T) {
		t.Parallel()
		raw, _ := b64.DecodeString(strings.Split(fx.valid, ".")[0])
		want := fmt.Sprintf(`{"alg":"EdDSA","kid":%q,"typ":"consent-receipt+jwt"}`, fx.active.KeyID())
		if string(raw) != want {
			t.Errorf("header = %s, want %s", raw, want)
		}
	})

	t.Run("signing is deterministic", func(t *testing.T) {
		t.Parallel()
		again, err := fx.active.Sign(fx.rec)
		if err != nil {
			t.Fatal(err)
		}
		if again != fx.valid {
			t.Error("signing the same receipt twice gave different JWS")
		}
	})

	t.Run("retired key still verifies its receipts", func(t *testing.T) {
		t.Parallel()
		tok, err := fx.old.Sign(fx.rec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := receipt.Verify(tok, fx.set); err != nil {
			t.Fatalf("Verify(receipt from retired key): %v", err)
		}
		keys := fx.set.Keys
		if len(keys) != 2 || keys[0].Kid != fx.active.KeyID() || keys[1].Kid != fx.old.KeyID() {
			t.Errorf("JWKS kids = %v, want active %q then retired %q", keys, fx.active.KeyID(), fx.old.KeyID())
		}
	})

	t.Run("application/ prefixed typ is accepted", func(t *testing.T) {
		t.Parallel()
		payload, _ := json.Marshal(fx.rec)
		tok := forge(t, ed25519.NewKeyFromSeed(fx.activeSeed), map[string]string{
			"alg": "EdDSA", "kid": fx.active.KeyID(), "typ": "application/Consent-Receipt+JWT",
		}, payload)
		if _, err := receipt.Verify(tok, fx.set); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})

	for _, tc := range rejectCases(t, fx) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := receipt.Verify(tc.compact, fx.set)
			if err == nil {
				t.Fatalf("Verify accepted it, payload %q", got)
			}
			if got != nil {
				t.Errorf("Verify returned a payload with error %v", err)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %q is not %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

func TestVerifyWithHandBuiltJWKS(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	good := fx.active.JWKS().Keys[0]

	for _, tc := range []struct {
		name string
		set  receipt.JWKS
		msg  string
	}{
		{"empty set has no key", receipt.JWKS{}, "is not in the JWKS (0 keys)"},
		{"duplicate kid is ambiguous", receipt.JWKS{Keys: []receipt.JWK{good, good}}, "more than one key"},
		{"short key is unusable", receipt.JWKS{Keys: []receipt.JWK{{Kty: "OKP", Crv: "Ed25519", X: good.X[:40], Kid: good.Kid}}}, "x is 30 bytes"},
		{"encryption key is unusable", receipt.JWKS{Keys: []receipt.JWK{{Kty: "OKP", Crv: "Ed25519", X: good.X, Kid: good.Kid, Use: "enc"}}}, `use is "enc"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := receipt.Verify(fx.valid, tc.set)
			if !errors.Is(err, receipt.ErrUnknownKey) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error = %v, want ErrUnknownKey mentioning %q", err, tc.msg)
			}
		})
	}
}

func TestKeyIDIsRFC7638Thumbprint(t *testing.T) {
	t.Parallel()

	t.Run("matches RFC 8037 appendix A vector", func(t *testing.T) {
		t.Parallel()
		// RFC 8037 A.1 private key "d" and A.3 thumbprint.
		seed, err := receipt.ParseSeed("nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A")
		if err != nil {
			t.Fatal(err)
		}
		s, err := receipt.NewSigner(seed)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := s.KeyID(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
			t.Errorf("KeyID = %s, want %s", got, want)
		}
		if got, want := s.JWKS().Keys[0].X, "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"; got != want {
			t.Errorf("x = %s, want %s", got, want)
		}
	})

	t.Run("matches independently computed thumbprint", func(t *testing.T) {
		t.Parallel()
		for b := byte(0); b < 8; b++ {
			s, err := receipt.NewSigner(seedOf(b))
			if err != nil {
				t.Fatal(err)
			}
			pub := ed25519.NewKeyFromSeed(seedOf(b)).Public().(ed25519.PublicKey)
			canon := `{"crv":"Ed25519","kty":"OKP","x":"` + b64.EncodeToString(pub) + `"}`
			sum := sha256.Sum256([]byte(canon))
			if got, want := s.KeyID(), b64.EncodeToString(sum[:]); got != want {
				t.Errorf("seed %d: KeyID = %s, want %s", b, got, want)
			}
		}
	})

	t.Run("JWKS document has the published shape", func(t *testing.T) {
		t.Parallel()
		s, err := receipt.NewSigner(seedOf(9))
		if err != nil {
			t.Fatal(err)
		}
		doc, _ := json.Marshal(s.JWKS())
		want := fmt.Sprintf(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":%q,"kid":%q,"use":"sig","alg":"EdDSA"}]}`,
			b64.EncodeToString(s.PublicKey()), s.KeyID())
		if string(doc) != want {
			t.Errorf("JWKS = %s\nwant   %s", doc, want)
		}
	})
}

func TestNewSigner(t *testing.T) {
	t.Parallel()
	active := ed25519.NewKeyFromSeed(seedOf(1)).Public().(ed25519.PublicKey)
	other := ed25519.NewKeyFromSeed(seedOf(2)).Public().(ed25519.PublicKey)

	for _, tc := range []struct {
		name    string
		seed    []byte
		retired []ed25519.PublicKey
		msg     string
	}{
		{"short seed is rejected", seedOf(1)[:31], nil, "seed is 31 bytes, want 32"},
		{"long seed is rejected", append(seedOf(1), 0), nil, "seed is 33 bytes, want 32"},
		{"short retired key is rejected", seedOf(1), []ed25519.PublicKey{other[:31]}, "retired key 0 is 31 bytes"},
		{"active key as retired is rejected", seedOf(1), []ed25519.PublicKey{active}, "retired key 0 is the active signing key"},
		{"duplicate retired key is rejected", seedOf(1), []ed25519.PublicKey{other, other}, "retired key 1 duplicates retired key 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := receipt.NewSigner(tc.seed, tc.retired...)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error = %v, want one mentioning %q", err, tc.msg)
			}
		})
	}

	t.Run("formatting does not leak the private key", func(t *testing.T) {
		t.Parallel()
		seed := seedOf(0xAB)
		s, err := receipt.NewSigner(seed)
		if err != nil {
			t.Fatal(err)
		}
		out := fmt.Sprintf("%v %+v %#v %s", s, s, s, s)
		for _, leak := range []string{"171 171", "abab", base64.StdEncoding.EncodeToString(seed)[:8]} {
			if strings.Contains(strings.ToLower(out), leak) {
				t.Errorf("formatted signer %q contains key material %q", out, leak)
			}
		}
		if !strings.Contains(out, s.KeyID()) {
			t.Errorf("formatted signer %q should name its kid", out)
		}
	})
}

func TestBuild(t *testing.T) {
	t.Parallel()

	for _, tc := range []struct {
		state, wantType string
	}{
		{receipt.StateGranted, "given"},
		{receipt.StateDenied, "refused"},
		{receipt.StateWithdrawn, "withdrawn"},
	} {
		t.Run(tc.state+" maps to event type "+tc.wantType, func(t *testing.T) {
			t.Parallel()
			ev := sampleEvent(tc.state)
			r := receipt.Build(ev, controller)
			doc, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			var top map[string]map[string]any
			if err := json.Unmarshal(doc, &top); err != nil {
				t.Fatalf("receipt is not an object of objects: %v\n%s", err, doc)
			}
			for _, section := range []string{"header", "processing", "parties", "event"} {
				if top[section] == nil {
					t.Errorf("section %q missing in %s", section, doc)
				}
			}
			if len(top) != 4 {
				t.Errorf("receipt has %d top-level members, want the 4 TS 27560 sections", len(top))
			}

			const at = "2025-03-14T14:09:26.535897Z" // 15:09 CET, in UTC
			want := receipt.Receipt{
				Header: receipt.Header{
					RecordID: ev.ID, SchemaVersion: "ISO/IEC TS 27560:2023", Profile: receipt.Profile,
					RecordTimestamp: at, Language: "de", PolicyRevision: "rev-42",
				},
				Processing: receipt.Processing{
					Purposes: []receipt.Purpose{{
						Name: ev.PurposeName, PurposeID: "marketing",
						DataUse: "marketing.communications.email", DPVPurpose: "dpv:DirectMarketing",
					}},
					LegalBasis: "dpv:Consent", Jurisdiction: "DE", Regime: "gdpr", NoticeVersion: "2025-03-01",
				},
				Parties: receipt.Parties{
					DataController: receipt.DataController{Name: "Example GmbH", Contact: "privacy@example.com"},
					DataSubject:    receipt.DataSubject{PseudonymousID: ev.SubjectHash, IDType: "email"},
				},
				Event: receipt.EventRecord{
					Type: tc.wantType, State: tc.state, Time: at, Method: "web_banner", Product: "web",
					GPC: true, UserAgent: ev.UserAgent, IPHash: ev.IPHash,
				},
			}
			if !reflect.DeepEqual(r, want) {
				t.Errorf("Build =\n%+v\nwant\n%+v", r, want)
			}
			if ts := top["header"]["record_timestamp"]; ts != at {
				t.Errorf("JSON header.record_timestamp = %v, want %s", ts, at)
			}
			if typ := top["event"]["type"]; typ != tc.wantType {
				t.Errorf("JSON event.type = %v, want %s", typ, tc.wantType)
			}
			if _, err := time.Parse(time.RFC3339, r.Event.Time); err != nil {
				t.Errorf("event time %q is not RFC 3339: %v", r.Event.Time, err)
			}
		})
	}

	t.Run("empty optional fields are omitted", func(t *testing.T) {
		t.Parallel()
		ev := sampleEvent(receipt.StateGranted)
		ev.Jurisdiction, ev.Regime, ev.Language, ev.UserAgent, ev.IPHash = "", "", "", "", ""
		ev.GPC = false
		doc, _ := json.Marshal(receipt.Build(ev, controller))
		for _, key := range []string{"jurisdiction", "regime", "language", "user_agent", "ip_hash"} {
			if bytes.Contains(doc, []byte(`"`+key+`"`)) {
				t.Errorf("%q present although empty: %s", key, doc)
			}
		}
		if !bytes.Contains(doc, []byte(`"gpc":false`)) {
			t.Errorf("gpc must always be stated, got %s", doc)
		}
	})

	t.Run("unknown state is refused at signing", func(t *testing.T) {
		t.Parallel()
		s, _ := receipt.NewSigner(seedOf(1))
		_, err := s.Sign(receipt.Build(sampleEvent("maybe"), controller))
		if err == nil || !strings.Contains(err.Error(), `state "maybe" has no ISO/IEC TS 27560 event type`) {
			t.Errorf("error = %v", err)
		}
	})

	t.Run("event type inconsistent with state is refused at signing", func(t *testing.T) {
		t.Parallel()
		s, _ := receipt.NewSigner(seedOf(1))
		r := receipt.Build(sampleEvent(receipt.StateWithdrawn), controller)
		r.Event.Type = receipt.EventGiven
		_, err := s.Sign(r)
		if err == nil || !strings.Contains(err.Error(), `does not match state "withdrawn"`) {
			t.Errorf("error = %v", err)
		}
	})

	t.Run("missing record id is refused at signing", func(t *testing.T) {
		t.Parallel()
		s, _ := receipt.NewSigner(seedOf(1))
		ev := sampleEvent(receipt.StateGranted)
		ev.ID = ""
		_, err := s.Sign(receipt.Build(ev, controller))
		if err == nil || !strings.Contains(err.Error(), "record_id") {
			t.Errorf("error = %v", err)
		}
	})

	t.Run("receipt too large to verify is refused at signing", func(t *testing.T) {
		t.Parallel()
		s, _ := receipt.NewSigner(seedOf(1))
		ev := sampleEvent(receipt.StateGranted)
		ev.UserAgent = strings.Repeat("x", receipt.MaxCompactSize)
		_, err := s.Sign(receipt.Build(ev, controller))
		if err == nil || !strings.Contains(err.Error(), "over the 65536-byte limit") {
			t.Errorf("error = %v", err)
		}
	})
}

func TestParseSeed(t *testing.T) {
	t.Parallel()
	// 0xff bytes encode to '/' in the standard alphabet and '_' in the URL
	// one, so each alphabet is really exercised.
	seed := bytes.Repeat([]byte{0xff}, 32)
	seed[0], seed[1], seed[2] = 0xfb, 0xef, 0xbe // "++++" / "----"

	for _, tc := range []struct{ name, in string }{
		{"std padded is accepted", base64.StdEncoding.EncodeToString(seed)},
		{"std unpadded is accepted", base64.RawStdEncoding.EncodeToString(seed)},
		{"url padded is accepted", base64.URLEncoding.EncodeToString(seed)},
		{"url unpadded is accepted", base64.RawURLEncoding.EncodeToString(seed)},
		{"surrounding whitespace is ignored", "  " + base64.StdEncoding.EncodeToString(seed) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := receipt.ParseSeed(tc.in)
			if err != nil {
				t.Fatalf("ParseSeed(%q): %v", tc.in, err)
			}
			if !bytes.Equal(got, seed) {
				t.Errorf("ParseSeed(%q) = %x, want %x", tc.in, got, seed)
			}
		})
	}

	for _, tc := range []struct{ name, in, msg string }{
		{"31 bytes is rejected", base64.StdEncoding.EncodeToString(seed[:31]), "decodes to 31 bytes, want 32"},
		{"33 bytes is rejected", base64.RawURLEncoding.EncodeToString(append(seed, 7)), "decodes to 33 bytes, want 32"},
		{"non-base64 is rejected", "this is not base64 at all!", "not valid base64"},
		{"mixed alphabets are rejected", "+_" + base64.RawStdEncoding.EncodeToString(seed)[2:], "not valid base64"},
		{"empty is rejected", "   ", "seed is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := receipt.ParseSeed(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error = %v, want one mentioning %q", err, tc.msg)
			}
			if strings.TrimSpace(tc.in) != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.in)) {
				t.Errorf("error %q echoes the secret input", err)
			}
		})
	}

	t.Run("public key parses like a seed", func(t *testing.T) {
		t.Parallel()
		s, _ := receipt.NewSigner(seedOf(5))
		pub, err := receipt.ParsePublicKey(base64.StdEncoding.EncodeToString(s.PublicKey()))
		if err != nil || !pub.Equal(s.PublicKey()) {
			t.Errorf("ParsePublicKey = %x, %v", pub, err)
		}
		if _, err := receipt.ParsePublicKey(base64.StdEncoding.EncodeToString(seed[:31])); err == nil {
			t.Error("ParsePublicKey accepted 31 bytes")
		}
	})
}

// jwksCases are documents ParseJWKS must reject, keyed by the part of the
// error that tells the operator what to fix.
func jwksCases(tb testing.TB) []struct{ name, doc, msg string } {
	tb.Helper()
	s, err := receipt.NewSigner(seedOf(1))
	if err != nil {
		tb.Fatal(err)
	}
	k := s.JWKS().Keys[0]
	key := func(edit func(m map[string]any)) string {
		m := map[string]any{"kty": k.Kty, "crv": k.Crv, "x": k.X, "kid": k.Kid, "use": k.Use, "alg": k.Alg}
		edit(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	good := key(func(map[string]any) {})
	return []struct{ name, doc, msg string }{
		{"non-JSON is rejected", `{"keys":`, "not valid JSON"},
		{"trailing data is rejected", `{"keys":[` + good + `]} x`, "not valid JSON"},
		{"array document is rejected", `[` + good + `]`, "not valid JSON"},
		{"null document is rejected", `null`, "not a JSON object"},
		{"missing keys is rejected", `{"Keys":[` + good + `]}`, `no "keys" member`},
		{"keys not an array is rejected", `{"keys":{}}`, "not an array of objects"},
		{"empty keys is rejected", `{"keys":[]}`, `"keys" is empty`},
		{"null key is rejected", `{"keys":[null]}`, "key 0 is not a JSON object"},
		{"missing kty is rejected", `{"keys":[` + key(func(m map[string]any) { delete(m, "kty") }) + `]}`, `key 0 has no "kty" member`},
		{"missing x is rejected", `{"keys":[` + key(func(m map[string]any) { delete(m, "x") }) + `]}`, `key 0 has no "x" member`},
		{"missing kid is rejected", `{"keys":[` + key(func(m map[string]any) { delete(m, "kid") }) + `]}`, `key 0 has no "kid" member`},
		{"empty kid is rejected", `{"keys":[` + key(func(m map[string]any) { m["kid"] = "" }) + `]}`, "empty kid"},
		{"RSA key is rejected", `{"keys":[` + key(func(m map[string]any) { m["kty"] = "RSA" }) + `]}`, `kty is "RSA"`},
		{"X25519 key is rejected", `{"keys":[` + key(func(m map[string]any) { m["crv"] = "X25519" }) + `]}`, `crv is "X25519"`},
		{"short x is rejected", `{"keys":[` + key(func(m map[string]any) { m["x"] = k.X[:40] }) + `]}`, "x is 30 bytes"},
		{"padded x is rejected", `{"keys":[` + key(func(m map[string]any) { m["x"] = k.X + "=" }) + `]}`, "x is not base64url"},
		{"numeric x is rejected", `{"keys":[` + key(func(m map[string]any) { m["x"] = 5 }) + `]}`, `"x" is not a string`},
		{"encryption use is rejected", `{"keys":[` + key(func(m map[string]any) { m["use"] = "enc" }) + `]}`, `use is "enc"`},
		{"other alg is rejected", `{"keys":[` + key(func(m map[string]any) { m["alg"] = "ES256" }) + `]}`, `alg is "ES256"`},
		{"private key is rejected", `{"keys":[` + key(func(m map[string]any) { m["d"] = "secret" }) + `]}`, "private key material"},
		{"duplicate kid is rejected", `{"keys":[` + good + `,` + good + `]}`, "keys 0 and 1 share kid"},
		{"oversized document is rejected", `{"keys":[` + good + `],"pad":"` + strings.Repeat("a", receipt.MaxJWKSSize) + `"}`, "limit is 65536"},
	}
}

func TestParseJWKS(t *testing.T) {
	t.Parallel()

	t.Run("unknown members are ignored and use/alg are optional", func(t *testing.T) {
		t.Parallel()
		s, _ := receipt.NewSigner(seedOf(1))
		k := s.JWKS().Keys[0]
		doc := fmt.Sprintf(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":%q,"kid":%q,"key_ops":["verify"]}],"extra":1}`, k.X, k.Kid)
		set, err := receipt.ParseJWKS([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		want := receipt.JWKS{Keys: []receipt.JWK{{Kty: "OKP", Crv: "Ed25519", X: k.X, Kid: k.Kid}}}
		if !reflect.DeepEqual(set, want) {
			t.Errorf("ParseJWKS = %+v, want %+v", set, want)
		}
	})

	for _, tc := range jwksCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := receipt.ParseJWKS([]byte(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error = %v, want one mentioning %q", err, tc.msg)
			}
		})
	}
}
