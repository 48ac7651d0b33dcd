package creem

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// Creem signs every webhook delivery: the creem-signature header holds the
// hex HMAC-SHA256 of the raw request body, keyed with the webhook secret
// from the dashboard (Developers > Webhooks). There is no timestamp in the
// signature, so a captured delivery can be replayed; receivers deduplicate
// on Event.ID (Creem itself redelivers on failure, so they must anyway).
const SignatureHeader = "creem-signature"

// MaxWebhookSize bounds a webhook body. Creem's documented events are a few
// kilobytes (a checkout with its order, product, customer and
// subscription); a megabyte is far beyond any of them.
const MaxWebhookSize = 1 << 20

// Webhook errors. Each is wrapped with detail; test with errors.Is.
var (
	ErrNoWebhookSecret    = errors.New("creem webhook: no webhook secret configured")
	ErrSignatureMissing   = errors.New("creem webhook: no signature")
	ErrSignatureMalformed = errors.New("creem webhook: malformed signature")
	ErrSignatureMismatch  = errors.New("creem webhook: signature does not match")
	ErrWebhookTooLarge    = errors.New("creem webhook: body too large")
	ErrWebhookMalformed   = errors.New("creem webhook: malformed event")
)

// SignWebhook returns the signature Creem sends for body: the lowercase hex
// HMAC-SHA256 of body keyed with secret. For tests and fakes.
func SignWebhook(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyWebhook checks signature (the creem-signature header) against body,
// the raw request body exactly as received, before any parsing.
//
// The signature must be exactly 64 hex digits. Creem sends lowercase (its
// documentation computes digest('hex')); uppercase and mixed-case hex are
// accepted too, as they encode the same 32 bytes: case carries no secret,
// and the comparison is of the decoded bytes, in constant time. Anything
// else (empty, shorter, longer, surrounding spaces, a "sha256=" prefix) is
// malformed. An empty secret is refused rather than verifying against the
// HMAC of an empty key.
func VerifyWebhook(secret, body []byte, signature string) error {
	if len(secret) == 0 {
		return ErrNoWebhookSecret
	}
	if len(body) > MaxWebhookSize {
		return fmt.Errorf("%w: more than %d bytes", ErrWebhookTooLarge, MaxWebhookSize)
	}
	if signature == "" {
		return ErrSignatureMissing
	}
	if len(signature) != hex.EncodedLen(sha256.Size) {
		return fmt.Errorf("%w: want %d hex digits, got %d characters", ErrSignatureMalformed, hex.EncodedLen(sha256.Size), len(signature))
	}
	got, err := hex.DecodeString(signature)
	if err != nil {
		return fmt.Errorf("%w: not hex", ErrSignatureMalformed)
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return ErrSignatureMismatch
	}
	return nil
}

// Event is what Steward needs of a verified Creem webhook event: which
// event it is, and the customer it is about, so a creem: id can be linked
// to a subject.
type Event struct {
	// ID is the event id (evt_…): the key to deduplicate redeliveries on.
	ID string
	// Type is the eventType: checkout.completed, subscription.active,
	// subscription.paid, subscription.canceled, refund.created, ...
	Type string
	// Created is when Creem created the event (created_at, Unix ms), UTC.
	Created time.Time
	// ObjectType and ObjectID are the event's object: "checkout", "ch_…".
	ObjectType string
	ObjectID   string
	// CustomerID is the Creem customer the event is about (cust_…), empty
	// when the event carries none.
	CustomerID string
	// CustomerEmail is the customer's email as Creem holds it (not
	// normalized), when the event carries the expanded customer. It is
	// personal data: never log it.
	CustomerEmail string
}

// ReadWebhook reads a webhook delivery: at most MaxWebhookSize bytes of
// body, the signature checked before anything is parsed, then the event.
func ReadWebhook(r *http.Request, secret []byte) (Event, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxWebhookSize+1))
	if err != nil {
		return Event{}, fmt.Errorf("creem webhook: read body: %w", err)
	}
	if len(body) > MaxWebhookSize {
		return Event{}, fmt.Errorf("%w: more than %d bytes", ErrWebhookTooLarge, MaxWebhookSize)
	}
	if err := VerifyWebhook(secret, body, r.Header.Get(SignatureHeader)); err != nil {
		return Event{}, err
	}
	return ParseWebhook(body)
}

// ParseWebhook parses a verified event body. Creem documents every event as
// {"id", "eventType", "created_at" (Unix ms), "object": {...}}; these are
// required, with their types. Fields it does not read are allowed (Creem
// adds fields), but what it reads is checked: one JSON object, no trailing
// data, valid UTF-8, ids of the identity syntax Steward accepts.
//
// The customer is found where Creem's documented events put it: the object
// itself when it is a customer; object.customer, expanded ({"id", "email",
// ...}) or an id; else the customer id of the object's order, subscription
// or transaction. Two different customer ids in one event are an error:
// linking the event to either could link another person.
func ParseWebhook(body []byte) (Event, error) {
	var ev Event
	if len(body) > MaxWebhookSize {
		return ev, fmt.Errorf("%w: more than %d bytes", ErrWebhookTooLarge, MaxWebhookSize)
	}
	if !utf8.Valid(body) {
		return ev, fmt.Errorf("%w: not UTF-8", ErrWebhookMalformed)
	}
	var raw struct {
		ID        *string         `json:"id"`
		EventType *string         `json:"eventType"`
		CreatedAt json.RawMessage `json:"created_at"`
		Object    json.RawMessage `json:"object"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return ev, malformed("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return ev, malformed("data after the event")
	}
	if raw.ID == nil || checkToken(*raw.ID, 128) != nil {
		return ev, malformed("id missing or not an event id")
	}
	if raw.EventType == nil || checkEventType(*raw.EventType) != nil {
		return ev, malformed("eventType missing or not an event type")
	}
	created, err := parseCreated(raw.CreatedAt)
	if err != nil {
		return ev, err
	}
	ev.ID, ev.Type, ev.Created = *raw.ID, *raw.EventType, created

	var obj map[string]json.RawMessage
	if isNull(raw.Object) || json.Unmarshal(raw.Object, &obj) != nil || obj == nil {
		return ev, malformed("object missing or not a JSON object")
	}
	if ev.ObjectType, err = optString(obj, "object"); err != nil {
		return ev, err
	}
	if ev.ObjectID, err = optString(obj, "id"); err != nil {
		return ev, err
	}
	if ev.ObjectID != "" && checkToken(ev.ObjectID, 255) != nil {
		return ev, malformed("object.id is not an id")
	}

	if ev.ObjectType == "customer" {
		if ev.CustomerID, ev.CustomerEmail, err = customerOf(raw.Object, "object"); err != nil {
			return ev, err
		}
		return ev, nil
	}
	var found []string
	if c, ok := obj["customer"]; ok && !isNull(c) {
		if ev.CustomerID, ev.CustomerEmail, err = customerOf(c, "object.customer"); err != nil {
			return ev, err
		}
		found = append(found, ev.CustomerID)
	}
	for _, k := range []string{"order", "subscription", "transaction"} {
		v, ok := obj[k]
		if !ok || isNull(v) || v[0] != '{' {
			continue // absent, or only an id of the related object
		}
		var rel map[string]json.RawMessage
		if err := json.Unmarshal(v, &rel); err != nil {
			return ev, malformed("object.%s: %v", k, err)
		}
		if c, ok := rel["customer"]; ok && !isNull(c) {
			id, _, err := customerOf(c, "object."+k+".customer")
			if err != nil {
				return ev, err
			}
			found = append(found, id)
		}
	}
	for _, id := range found {
		if ev.CustomerID == "" {
			ev.CustomerID = id
		}
		if id != ev.CustomerID {
			return ev, malformed("the event names two customers")
		}
	}
	return ev, nil
}

// customerOf reads a customer reference: an id, or an expanded customer
// object with an id and optionally an email.
func customerOf(v json.RawMessage, where string) (id, email string, err error) {
	if len(v) > 0 && v[0] == '"' {
		if json.Unmarshal(v, &id) != nil || checkCreemID(id) != nil {
			return "", "", malformed("%s is not a customer id", where)
		}
		return id, "", nil
	}
	var c map[string]json.RawMessage
	if json.Unmarshal(v, &c) != nil || c == nil {
		return "", "", malformed("%s is neither a customer id nor a customer", where)
	}
	if id, err = optString(c, "id"); err != nil {
		return "", "", err
	}
	if checkCreemID(id) != nil {
		return "", "", malformed("%s.id is missing or not a customer id", where)
	}
	if email, err = optString(c, "email"); err != nil {
		return "", "", err
	}
	if email != "" && !plausibleEmail(email) {
		return "", "", malformed("%s.email is not an email address", where)
	}
	return id, email, nil
}

// parseCreated reads created_at: Unix milliseconds, as every documented
// event has it. An RFC 3339 string is accepted too (the API's other
// timestamps are strings); anything else is malformed.
func parseCreated(v json.RawMessage) (time.Time, error) {
	if isNull(v) {
		return time.Time{}, malformed("created_at missing")
	}
	var s string
	if v[0] == '"' {
		if json.Unmarshal(v, &s) != nil {
			return time.Time{}, malformed("created_at is not a string")
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return time.Time{}, malformed("created_at is not an RFC 3339 time")
		}
		return t.UTC(), nil
	}
	var n json.Number
	if json.Unmarshal(v, &n) != nil {
		return time.Time{}, malformed("created_at is not a number")
	}
	ms, err := n.Int64()
	// 2000-01-01 to 2200-01-01: a millisecond time Creem could have sent,
	// and not seconds (which would land in 1970).
	if err != nil || ms < 946_684_800_000 || ms > 7_258_118_400_000 {
		return time.Time{}, malformed("created_at is not a Unix time in milliseconds")
	}
	return time.UnixMilli(ms).UTC(), nil
}

func optString(m map[string]json.RawMessage, key string) (string, error) {
	v, ok := m[key]
	if !ok || isNull(v) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", malformed("%s is not a string", key)
	}
	return s, nil
}

func isNull(v json.RawMessage) bool { return len(v) == 0 || string(v) == "null" }

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrWebhookMalformed, fmt.Sprintf(format, args...))
}

// checkToken accepts an id of 1-max characters A-Z, a-z, 0-9, '-', '_',
// '.'.
func checkToken(v string, max int) error {
	if len(v) > max {
		return errors.New("too long")
	}
	return checkCreemID(v)
}

// checkEventType accepts dotted lowercase names such as
// "subscription.paid" (letters, digits, '.', '_', '-'; at most 64).
func checkEventType(v string) error {
	if v == "" || len(v) > 64 {
		return errors.New("empty or too long")
	}
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '.' || ch == '_' || ch == '-') {
			return errors.New("bad character")
		}
	}
	return nil
}

// plausibleEmail is a sanity check, not validation: one '@' with text
// either side, no spaces or control characters, at most 320 bytes. Creem's
// own examples use addresses without a dot in the domain.
func plausibleEmail(s string) bool {
	if len(s) > 320 || strings.Count(s, "@") != 1 {
		return false
	}
	at := strings.IndexByte(s, '@')
	if at == 0 || at == len(s)-1 {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}
