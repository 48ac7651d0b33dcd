package creem_test

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors/creem"
)

var webhookSecret = []byte("whsec_3Jk9mQ2vX8pL4nR7tY1bC6dF")

// A body and its signature as Creem's documentation computes it (hex
// HMAC-SHA256 of the raw body with the secret). The vectors are written
// out, computed independently of the code under test:
//
//	printf '%s' "$body" | openssl dgst -sha256 -hmac 'whsec_3Jk9mQ2vX8pL4nR7tY1bC6dF' -hex
const (
	sampleBody = `{"id":"evt_1","eventType":"checkout.completed","created_at":1767261600123,"object":{"id":"ch_1","object":"checkout"}}`
	goodSig    = "a199baa564ed9f5c5d549e1ffa6db98dcab7102ef4633b97044a44d99eeb37ae"
	emptySig   = "d188011cc04846708780dac58d82990296fae152824c65ca43bab5c55c3673d6" // of the empty body
)

// verifyCase is one VerifyWebhook case; the table seeds the fuzz target.
type verifyCase struct {
	name   string
	secret []byte
	body   []byte
	sig    string
	want   error // nil for accepted
}

func verifyCases() []verifyCase {
	body := []byte(sampleBody)
	good := goodSig
	return []verifyCase{
		{"valid", webhookSecret, body, good, nil},
		{"valid, uppercase hex", webhookSecret, body, strings.ToUpper(good), nil},
		{"valid, mixed-case hex", webhookSecret, body, good[:32] + strings.ToUpper(good[32:]), nil},
		{"wrong secret", []byte("whsec_other"), body, good, creem.ErrSignatureMismatch},
		{"tampered body", webhookSecret, bytes.Replace(body, []byte("ch_1"), []byte("ch_2"), 1), good, creem.ErrSignatureMismatch},
		{"body with a trailing newline", webhookSecret, append(bytes.Clone(body), '\n'), good, creem.ErrSignatureMismatch},
		{"empty signature", webhookSecret, body, "", creem.ErrSignatureMissing},
		{"truncated signature", webhookSecret, body, good[:63], creem.ErrSignatureMalformed},
		{"half a signature", webhookSecret, body, good[:32], creem.ErrSignatureMalformed},
		{"signature too long", webhookSecret, body, good + "00", creem.ErrSignatureMalformed},
		{"non-hex signature", webhookSecret, body, "zz" + good[2:], creem.ErrSignatureMalformed},
		{"prefixed signature", webhookSecret, body, "sha256=" + good[:57], creem.ErrSignatureMalformed},
		{"signature with a space", webhookSecret, body, " " + good[1:], creem.ErrSignatureMalformed},
		{"base64 signature", webhookSecret, body, "2bewsNC1yKHgpfag6NbXybKg9OPRwLmo9+bVxLOi8eA=", creem.ErrSignatureMalformed},
		{"other valid-looking hex", webhookSecret, body, strings.Repeat("ab", 32), creem.ErrSignatureMismatch},
		{"no secret", nil, body, good, creem.ErrNoWebhookSecret},
		{"empty body, its signature", webhookSecret, nil, emptySig, nil},
	}
}

func TestVerifyWebhook(t *testing.T) {
	if got := creem.SignWebhook(webhookSecret, []byte(sampleBody)); got != goodSig {
		t.Fatalf("SignWebhook = %s, want the fixed vector %s", got, goodSig)
	}
	for _, tc := range verifyCases() {
		err := creem.VerifyWebhook(tc.secret, tc.body, tc.sig)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
	big := make([]byte, creem.MaxWebhookSize+1)
	if err := creem.VerifyWebhook(webhookSecret, big, creem.SignWebhook(webhookSecret, big)); !errors.Is(err, creem.ErrWebhookTooLarge) {
		t.Errorf("oversize body: %v", err)
	}
}

func readSample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "webhooks", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseWebhookSamples(t *testing.T) {
	ms := func(n int64) time.Time { return time.UnixMilli(n).UTC() }
	cases := []struct {
		file string
		want creem.Event
	}{
		{"checkout.completed.json", creem.Event{ID: "evt_3kQm7TzVw1XbR9pLc2HdYa", Type: "checkout.completed", Created: ms(1767261600123),
			ObjectType: "checkout", ObjectID: "ch_7YtR2wQpLm3NbV8cX1ZaKe", CustomerID: "cust_5HnB2vC8xZ1aS4dF7gJ9kL", CustomerEmail: "mira.k@example.org"}},
		{"subscription.paid.json", creem.Event{ID: "evt_6VbN1mQ4wE7rT0yU3iO5pA", Type: "subscription.paid", Created: ms(1769940000456),
			ObjectType: "subscription", ObjectID: "sub_8JhG5fD2sA9pO6iU3yT1rE", CustomerID: "cust_5HnB2vC8xZ1aS4dF7gJ9kL", CustomerEmail: "mira.k@example.org"}},
		{"subscription.canceled.json", creem.Event{ID: "evt_1QaZ2wSx3EdC4rFv5TgB6y", Type: "subscription.canceled", Created: ms(1772359200789),
			ObjectType: "subscription", ObjectID: "sub_2WsX3eDc4RfV5tGb6YhN7u", CustomerID: "cust_9OlK8iJ7uH6yG5tF4rD3eS", CustomerEmail: "Jonas.Berg@Example.COM"}},
		{"refund.created.json", creem.Event{ID: "evt_7UjM8ik9OL0pQ1aW2sE3dR", Type: "refund.created", Created: ms(1770112800321),
			ObjectType: "refund", ObjectID: "ref_5TgB6yHn7UjM8iK9oL0pQa", CustomerID: "cust_5HnB2vC8xZ1aS4dF7gJ9kL", CustomerEmail: "mira.k@example.org"}},
		{"dispute.created.json", creem.Event{ID: "evt_0PlO9kI8jU7hY6gT5fR4dE", Type: "dispute.created", Created: ms(1771322400654),
			ObjectType: "dispute", ObjectID: "disp_3EdC4rFv5TgB6yHn7UjM8i", CustomerID: "cust_1AqZ2wSx3EdC4rFv5TgB6y", CustomerEmail: "lena@example.net"}},
	}
	for _, tc := range cases {
		body := readSample(t, tc.file)
		got, err := creem.ParseWebhook(body)
		if err != nil {
			t.Errorf("%s: %v", tc.file, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%s:\ngot  %+v\nwant %+v", tc.file, got, tc.want)
		}
	}
	if _, err := creem.ParseWebhook(readSample(t, "conflicting-customers.json")); !errors.Is(err, creem.ErrWebhookMalformed) || !strings.Contains(err.Error(), "two customers") {
		t.Errorf("an event naming two customers: %v", err)
	}
}

// parseRejects are bodies ParseWebhook must refuse; they seed the fuzz
// target too.
var parseRejects = []struct {
	name, body string
}{
	{"empty", ``},
	{"not JSON", `event`},
	{"an array", `[{"id":"evt_1"}]`},
	{"null", `null`},
	{"no id", `{"eventType":"checkout.completed","created_at":1767261600123,"object":{}}`},
	{"numeric id", `{"id":12,"eventType":"checkout.completed","created_at":1767261600123,"object":{}}`},
	{"id with a slash", `{"id":"evt/1","eventType":"checkout.completed","created_at":1767261600123,"object":{}}`},
	{"no eventType", `{"id":"evt_1","created_at":1767261600123,"object":{}}`},
	{"eventType with spaces", `{"id":"evt_1","eventType":"checkout completed","created_at":1767261600123,"object":{}}`},
	{"no created_at", `{"id":"evt_1","eventType":"checkout.completed","object":{}}`},
	{"created_at in seconds", `{"id":"evt_1","eventType":"checkout.completed","created_at":1767261600,"object":{}}`},
	{"created_at fractional", `{"id":"evt_1","eventType":"checkout.completed","created_at":1767261600123.5,"object":{}}`},
	{"created_at a bool", `{"id":"evt_1","eventType":"checkout.completed","created_at":true,"object":{}}`},
	{"created_at a bad string", `{"id":"evt_1","eventType":"checkout.completed","created_at":"yesterday","object":{}}`},
	{"no object", `{"id":"evt_1","eventType":"checkout.completed","created_at":1767261600123}`},
	{"object a string", `{"id":"evt_1","eventType":"checkout.completed","created_at":1767261600123,"object":"ch_1"}`},
	{"trailing data", `{"id":"evt_1","eventType":"checkout.completed","created_at":1767261600123,"object":{}} {}`},
	{"customer a number", `{"id":"evt_1","eventType":"x.y","created_at":1767261600123,"object":{"customer":5}}`},
	{"customer without id", `{"id":"evt_1","eventType":"x.y","created_at":1767261600123,"object":{"customer":{"email":"a@b"}}}`},
	{"customer id with a slash", `{"id":"evt_1","eventType":"x.y","created_at":1767261600123,"object":{"customer":"../cust"}}`},
	{"customer email not an email", `{"id":"evt_1","eventType":"x.y","created_at":1767261600123,"object":{"customer":{"id":"cust_1","email":"no at sign"}}}`},
	{"customer email a number", `{"id":"evt_1","eventType":"x.y","created_at":1767261600123,"object":{"customer":{"id":"cust_1","email":7}}}`},
	{"two customers", `{"id":"evt_1","eventType":"x.y","created_at":1767261600123,"object":{"customer":"cust_1","subscription":{"customer":"cust_2"}}}`},
	{"invalid UTF-8", "{\"id\":\"evt_1\",\"eventType\":\"x.y\",\"created_at\":1767261600123,\"object\":{\"name\":\"\xff\"}}"},
}

// parseAccepts are bodies ParseWebhook must accept, with the customer they
// name.
var parseAccepts = []struct {
	name, body, customer, email string
}{
	{"minimal", `{"id":"evt_1","eventType":"checkout.completed","created_at":1767261600123,"object":{}}`, "", ""},
	{"customer as an id", `{"id":"evt_1","eventType":"x.y","created_at":1767261600123,"object":{"customer":"cust_1"}}`, "cust_1", ""},
	{"customer from the order", `{"id":"evt_1","eventType":"x.y","created_at":1767261600123,"object":{"order":{"id":"ord_1","customer":"cust_9"}}}`, "cust_9", ""},
	{"the object is a customer", `{"id":"evt_1","eventType":"customer.updated","created_at":1767261600123,"object":{"id":"cust_5","object":"customer","email":"a@b.c"}}`, "cust_5", "a@b.c"},
	{"RFC 3339 created_at", `{"id":"evt_1","eventType":"x.y","created_at":"2026-01-01T10:00:00.123Z","object":{"customer":null}}`, "", ""},
	{"unknown fields", `{"id":"evt_1","eventType":"x.y","created_at":1767261600123,"mode":"test","object":{"extra":[1,2,{"a":null}]}}`, "", ""},
}

func TestParseWebhookStrict(t *testing.T) {
	for _, tc := range parseRejects {
		if ev, err := creem.ParseWebhook([]byte(tc.body)); !errors.Is(err, creem.ErrWebhookMalformed) {
			t.Errorf("%s: want ErrWebhookMalformed, got %+v, %v", tc.name, ev, err)
		}
	}
	for _, tc := range parseAccepts {
		ev, err := creem.ParseWebhook([]byte(tc.body))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if ev.ID != "evt_1" || ev.CustomerID != tc.customer || ev.CustomerEmail != tc.email {
			t.Errorf("%s: %+v", tc.name, ev)
		}
	}
	ev, _ := creem.ParseWebhook([]byte(parseAccepts[4].body))
	if want := time.Date(2026, 1, 1, 10, 0, 0, 123e6, time.UTC); !ev.Created.Equal(want) {
		t.Errorf("RFC 3339 created_at: %v", ev.Created)
	}

	// Oversize: refused before parsing, even when otherwise valid.
	pad := strings.Repeat(" ", creem.MaxWebhookSize)
	if _, err := creem.ParseWebhook([]byte(parseAccepts[0].body + pad)); !errors.Is(err, creem.ErrWebhookTooLarge) {
		t.Errorf("oversize body: %v", err)
	}
}

func TestReadWebhook(t *testing.T) {
	body := readSample(t, "checkout.completed.json")
	r := httptest.NewRequest("POST", "/webhooks/creem", bytes.NewReader(body))
	r.Header.Set(creem.SignatureHeader, creem.SignWebhook(webhookSecret, body))
	ev, err := creem.ReadWebhook(r, webhookSecret)
	if err != nil || ev.CustomerID != "cust_5HnB2vC8xZ1aS4dF7gJ9kL" {
		t.Fatalf("ReadWebhook: %+v, %v", ev, err)
	}

	r = httptest.NewRequest("POST", "/webhooks/creem", bytes.NewReader(body))
	r.Header.Set(creem.SignatureHeader, creem.SignWebhook([]byte("whsec_other"), body))
	if _, err := creem.ReadWebhook(r, webhookSecret); !errors.Is(err, creem.ErrSignatureMismatch) {
		t.Errorf("wrong secret: %v", err)
	}

	r = httptest.NewRequest("POST", "/webhooks/creem", bytes.NewReader(body))
	if _, err := creem.ReadWebhook(r, webhookSecret); !errors.Is(err, creem.ErrSignatureMissing) {
		t.Errorf("no header: %v", err)
	}

	// A signed body that is not an event: verified, then refused.
	junk := []byte(`{"hello":"world"}`)
	r = httptest.NewRequest("POST", "/webhooks/creem", bytes.NewReader(junk))
	r.Header.Set(creem.SignatureHeader, creem.SignWebhook(webhookSecret, junk))
	if _, err := creem.ReadWebhook(r, webhookSecret); !errors.Is(err, creem.ErrWebhookMalformed) {
		t.Errorf("signed junk: %v", err)
	}

	big := bytes.Repeat([]byte("a"), creem.MaxWebhookSize+10)
	r = httptest.NewRequest("POST", "/webhooks/creem", bytes.NewReader(big))
	r.Header.Set(creem.SignatureHeader, creem.SignWebhook(webhookSecret, big))
	if _, err := creem.ReadWebhook(r, webhookSecret); !errors.Is(err, creem.ErrWebhookTooLarge) {
		t.Errorf("oversize: %v", err)
	}
}
