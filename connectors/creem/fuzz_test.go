package creem_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/steward-privacy/steward/connectors/creem"
)

// FuzzVerifyWebhook: VerifyWebhook never panics, and accepts exactly the
// hex (either case) HMAC-SHA256 of the body under a non-empty secret.
func FuzzVerifyWebhook(f *testing.F) {
	for _, tc := range verifyCases() {
		f.Add(tc.secret, tc.body, tc.sig)
	}
	f.Fuzz(func(t *testing.T, secret, body []byte, sig string) {
		err := creem.VerifyWebhook(secret, body, sig)
		m := hmac.New(sha256.New, secret)
		m.Write(body)
		want := hex.EncodeToString(m.Sum(nil))
		valid := len(secret) > 0 && len(body) <= creem.MaxWebhookSize && len(sig) == 64 && strings.EqualFold(sig, want)
		if valid != (err == nil) {
			t.Fatalf("VerifyWebhook(%q, %q, %q) = %v; the signature is valid: %v", secret, body, sig, err, valid)
		}
		if err != nil && !errors.Is(err, creem.ErrNoWebhookSecret) && !errors.Is(err, creem.ErrSignatureMissing) &&
			!errors.Is(err, creem.ErrSignatureMalformed) && !errors.Is(err, creem.ErrSignatureMismatch) && !errors.Is(err, creem.ErrWebhookTooLarge) {
			t.Fatalf("unclassified error %v", err)
		}
	})
}

// FuzzParseWebhook: ParseWebhook never panics; what it accepts has an id,
// a type and a creation time, customer ids of the identity syntax, and
// parses the same again.
func FuzzParseWebhook(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "webhooks", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, tc := range parseRejects {
		f.Add([]byte(tc.body))
	}
	for _, tc := range parseAccepts {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := creem.ParseWebhook(body)
		if err != nil {
			if !errors.Is(err, creem.ErrWebhookMalformed) && !errors.Is(err, creem.ErrWebhookTooLarge) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		if ev.ID == "" || ev.Type == "" || ev.Created.IsZero() || !utf8.ValidString(ev.CustomerEmail) {
			t.Fatalf("accepted an incomplete event %+v", ev)
		}
		if ev.CustomerID == "" && ev.CustomerEmail != "" {
			t.Fatalf("an email without a customer id: %+v", ev)
		}
		if strings.ContainsAny(ev.CustomerID+ev.ID+ev.ObjectID, "/?#% \x00") {
			t.Fatalf("an id with a character outside the identity syntax: %+v", ev)
		}
		again, err := creem.ParseWebhook(body)
		if err != nil || again != ev {
			t.Fatalf("not deterministic: %+v then %+v, %v", ev, again, err)
		}
	})
}
