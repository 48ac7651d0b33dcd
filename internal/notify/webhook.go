package notify

// Outbound webhooks (KindWebhook): consent changes, privacy request moves
// and restrictions, signed per the Standard Webhooks specification
// (internal/stdwebhook) and sent to the endpoints staff registered
// (internal/webhooks). EnqueueWebhook fans an event out, inside the
// caller's transaction, to one delivery per subscribed endpoint plus one
// outbox row per delivery; the Worker sends it with the outbox's retries
// and backoff and records every attempt.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/stdwebhook"
)

// KindWebhook sends one webhook delivery (a row of webhook_deliveries).
const KindWebhook = "webhook.deliver"

// The event types Steward sends.
const (
	// EventConsentChanged: a consent event was recorded (GDPR Art. 7(3),
	// Art. 21(3): a withdrawal or an objection to direct marketing must
	// stop the processing in every system that does it, the bot's
	// broadcasts included).
	EventConsentChanged = "consent.changed"
	// EventRequestStatusChanged: a privacy request moved (no identities).
	EventRequestStatusChanged = "request.status_changed"
	// EventRestrictionChanged: processing was restricted or a restriction
	// lifted (GDPR Art. 18, and Art. 19: recipients are told).
	EventRestrictionChanged = "restriction.changed"
	// EventRecipientNotice: a rectification, erasure or restriction to
	// apply, sent to the endpoint a processor registered for the data-map
	// system it runs (GDPR Art. 19), and only to it.
	EventRecipientNotice = "recipient.notice"
)

// WebhookEventTypes lists every event type, for validating subscriptions.
var WebhookEventTypes = []string{EventConsentChanged, EventRequestStatusChanged, EventRestrictionChanged, EventRecipientNotice}

// WebhookEvent is one event to send to every endpoint subscribed to its
// type.
type WebhookEvent struct {
	Type string
	// At is when the change happened (the envelope's "timestamp").
	At time.Time
	// Data is the event's data for every endpoint. It must not hold an
	// identity in the clear: use SubjectHash and Identity.
	Data map[string]any
	// Identity ("tg:42", "email:a@b.c") is added as data.subject only for
	// endpoints registered with include_identities; the rest get
	// data.subject_hash alone. A subscriber that acts on an opt-out for a
	// person (the bot backend's opt-out table) must know which person;
	// everyone else needs no more than a stable pseudonym.
	Identity    string
	SubjectHash string
	// RecipientSystem, for a recipient.notice, is the data-map system whose
	// processor is told: only endpoints registered for it get the event.
	RecipientSystem string
}

// webhookPayload is the outbox payload of KindWebhook: the body lives,
// sealed, with the delivery, so a replay can send it again.
type webhookPayload struct {
	V          int    `json:"v"`
	DeliveryID string `json:"delivery_id"`
}

// WebhookBodyAAD binds a sealed body to its delivery.
func WebhookBodyAAD(deliveryID string) []byte {
	return []byte("steward webhook body v1\x00" + deliveryID)
}

// WebhookSecretAAD binds a sealed endpoint secret to its endpoint (and to
// its slot: a previous secret cannot be swapped in as the current one).
func WebhookSecretAAD(endpointID, slot string) []byte {
	return []byte("steward webhook secret v1\x00" + endpointID + "\x00" + slot)
}

// newMessageID is a Standard Webhooks message id: msg_ and 128 random bits.
func newMessageID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "msg_" + hex.EncodeToString(b)
}

// EnqueueWebhook queues ev, inside tx, for every enabled endpoint
// subscribed to its type, and returns how many deliveries it queued (0
// when no endpoint wants it). All endpoints get the same webhook-id.
func (o *Outbox) EnqueueWebhook(ctx context.Context, tx pgx.Tx, ev WebhookEvent) (int, error) {
	ids, err := o.EnqueueWebhookDeliveries(ctx, tx, ev)
	return len(ids), err
}

// EnqueueWebhookDeliveries is EnqueueWebhook returning the deliveries'
// ids, for a caller that tracks them (Art. 19 notices count as told once
// delivered). A recipient.notice goes only to the endpoints registered for
// its RecipientSystem; every other event to the endpoints subscribed to it.
func (o *Outbox) EnqueueWebhookDeliveries(ctx context.Context, tx pgx.Tx, ev WebhookEvent) ([]string, error) {
	if ev.Type == EventRecipientNotice && ev.RecipientSystem == "" {
		return nil, errors.New("outbox: a recipient.notice names its recipient system")
	}
	rows, err := tx.Query(ctx, `
		SELECT id::text, include_identities FROM webhook_endpoints
		WHERE enabled AND deleted_at IS NULL AND (cardinality(event_types) = 0 OR $1 = ANY(event_types))
		  AND ($2 = '' OR recipient_system = $2)
		ORDER BY created_at, id`, ev.Type, ev.RecipientSystem)
	if err != nil {
		return nil, fmt.Errorf("outbox: webhook endpoints: %w", err)
	}
	type target struct {
		id       string
		identity bool
	}
	var targets []target
	for rows.Next() {
		var t target
		if err := rows.Scan(&t.id, &t.identity); err != nil {
			rows.Close()
			return nil, fmt.Errorf("outbox: webhook endpoints: %w", err)
		}
		targets = append(targets, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("outbox: webhook endpoints: %w", err)
	}
	if len(targets) == 0 {
		return nil, nil
	}
	var ids []string
	msgID := newMessageID()
	now := o.clk.Now()
	at := ev.At
	if at.IsZero() {
		at = now
	}
	for _, t := range targets {
		data := make(map[string]any, len(ev.Data)+2)
		for k, v := range ev.Data {
			data[k] = v
		}
		if ev.SubjectHash != "" {
			data["subject_hash"] = ev.SubjectHash
		}
		if t.identity && ev.Identity != "" {
			data["subject"] = ev.Identity
		}
		body, err := json.Marshal(map[string]any{"type": ev.Type, "timestamp": at.UTC().Format(time.RFC3339Nano), "data": data})
		if err != nil {
			return nil, fmt.Errorf("outbox: encode webhook: %w", err)
		}
		deliveryID := uuid.NewString()
		kid, ct, err := o.kr.Seal(body, WebhookBodyAAD(deliveryID))
		if err != nil {
			return nil, fmt.Errorf("outbox: seal webhook: %w", err)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO webhook_deliveries (id, endpoint_id, message_id, event_type, body_kid, body_ct, status, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)`, deliveryID, t.id, msgID, ev.Type, kid, ct, now); err != nil {
			return nil, fmt.Errorf("outbox: insert webhook delivery: %w", err)
		}
		if err := o.insertWebhookMessage(ctx, tx, deliveryID); err != nil {
			return nil, err
		}
		ids = append(ids, deliveryID)
	}
	o.log.InfoContext(ctx, "webhook queued", "event_type", ev.Type, "endpoints", len(targets))
	return ids, nil
}

func (o *Outbox) insertWebhookMessage(ctx context.Context, tx pgx.Tx, deliveryID string) error {
	payload, err := json.Marshal(webhookPayload{V: 1, DeliveryID: deliveryID})
	if err != nil {
		return fmt.Errorf("outbox: encode payload: %w", err)
	}
	now := o.clk.Now()
	if _, err := tx.Exec(ctx, `
		INSERT INTO outbox (kind, payload, idempotency_key, status, attempts, next_attempt_at, created_at)
		VALUES ($1, $2, $3, 'pending', 0, $4, $4)`, KindWebhook, payload, uuid.NewString(), now); err != nil {
		return fmt.Errorf("outbox: insert: %w", err)
	}
	return nil
}

// ErrDeliveryNotFound: no webhook delivery has that id.
var ErrDeliveryNotFound = errors.New("webhook delivery not found")

// ReplayWebhook queues a delivery again, inside tx: the same body and the
// same webhook-id (the receiver deduplicates on it), signed afresh with the
// endpoint's current secret and timestamp.
func (o *Outbox) ReplayWebhook(ctx context.Context, tx pgx.Tx, deliveryID string) error {
	tag, err := tx.Exec(ctx, `
		UPDATE webhook_deliveries SET status = 'pending', replays = replays + 1, delivered_at = NULL
		WHERE id = $1`, deliveryID)
	if err != nil {
		return fmt.Errorf("outbox: replay webhook: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrDeliveryNotFound
	}
	return o.insertWebhookMessage(ctx, tx, deliveryID)
}

// WebhookConfig tunes webhook delivery.
type WebhookConfig struct {
	// AllowLoopback lets endpoints registered with allow_loopback be
	// reached on loopback addresses (tests, the demo:
	// STEWARD_WEBHOOKS_ALLOW_LOOPBACK). Private, link-local (the cloud
	// metadata address), CGNAT, multicast and unspecified addresses are
	// refused whatever it says.
	AllowLoopback bool
	// Timeout bounds one attempt; default 10s.
	Timeout time.Duration
}

// webhookDeliverer sends signed webhooks through clients that never follow
// a redirect, never use a proxy from the environment and refuse to dial a
// forbidden address (checked on the address actually dialled, so DNS
// rebinding cannot get around it).
type webhookDeliverer struct {
	strict   *http.Client // loopback refused
	loopback *http.Client // loopback allowed (only when AllowLoopback)
}

func newWebhookDeliverer(cfg WebhookConfig) *webhookDeliverer {
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	d := &webhookDeliverer{strict: guardedClient(timeout, false)}
	if cfg.AllowLoopback {
		d.loopback = guardedClient(timeout, true)
	}
	return d
}

// errForbiddenAddress is the SSRF guard's refusal.
var errForbiddenAddress = errors.New("address not allowed for webhooks (private, loopback, link-local or reserved)")

func guardedClient(timeout time.Duration, allowLoopback bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return errForbiddenAddress
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !AllowedWebhookAddr(ip, allowLoopback) {
			return errForbiddenAddress
		}
		return nil
	}}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would dial for us, past the guard
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          20,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{Timeout: timeout, Transport: tr,
		// A 3xx is an answer, not a new destination: following it could
		// lead the request (signed, with personal data) anywhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var reservedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // CGNAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"), // NAT64 reaches IPv4 space
	netip.MustParsePrefix("2002::/16"),    // 6to4 likewise
}

// AllowedWebhookAddr reports whether a webhook may be sent to ip: a public
// unicast address, or loopback when allowLoopback.
func AllowedWebhookAddr(ip netip.Addr, allowLoopback bool) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return allowLoopback
	}
	if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range reservedPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// webhookTarget is what a delivery needs from its row and endpoint.
type webhookTarget struct {
	deliveryID, messageID string
	bodyKID               string
	bodyCT                []byte
	endpointID, url       string
	active, loopback      bool
	secretKID             string
	secretCT              []byte
	prevKID               *string
	prevCT                []byte
	prevExpires           *time.Time
}

// excerptLimit bounds what is kept of a receiver's answer.
const excerptLimit = 256

// deliverWebhook sends one delivery and records the attempt in tx, which
// commits with the outbox row's new state.
func (w *Worker) deliverWebhook(ctx context.Context, tx pgx.Tx, r row) *deliveryError {
	var p webhookPayload
	if err := json.Unmarshal(r.payload, &p); err != nil || p.V != 1 || p.DeliveryID == "" {
		return permanentError("outbox: unreadable %s payload", r.kind)
	}
	var t webhookTarget
	err := tx.QueryRow(ctx, `
		SELECT d.id::text, d.message_id, d.body_kid, d.body_ct, e.id::text, e.url,
		       e.enabled AND e.deleted_at IS NULL, e.allow_loopback,
		       e.secret_kid, e.secret_ct, e.prev_secret_kid, e.prev_secret_ct, e.prev_expires_at
		FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
		WHERE d.id = $1
		FOR UPDATE OF d`, p.DeliveryID).Scan(&t.deliveryID, &t.messageID, &t.bodyKID, &t.bodyCT, &t.endpointID, &t.url,
		&t.active, &t.loopback, &t.secretKID, &t.secretCT, &t.prevKID, &t.prevCT, &t.prevExpires)
	if errors.Is(err, pgx.ErrNoRows) {
		return permanentError("webhook: the delivery no longer exists")
	}
	if err != nil {
		return &deliveryError{msg: "webhook: load delivery: " + err.Error()}
	}
	if !t.active {
		return w.webhookDone(ctx, tx, t.deliveryID, "failed", permanentError("webhook: the endpoint is disabled or deleted"))
	}
	body, err := w.kr.Open(t.bodyKID, t.bodyCT, WebhookBodyAAD(t.deliveryID))
	if err != nil {
		return w.webhookDone(ctx, tx, t.deliveryID, "failed", permanentError("webhook: cannot open body: %v", err))
	}
	now := w.clk.Now()
	keys, derr := w.webhookKeys(t, now)
	if derr != nil {
		return w.webhookDone(ctx, tx, t.deliveryID, "failed", derr)
	}

	client := w.webhooks.strict
	if t.loopback && w.webhooks.loopback != nil {
		client = w.webhooks.loopback
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, strings.NewReader(string(body)))
	if err != nil {
		return w.webhookDone(ctx, tx, t.deliveryID, "failed", permanentError("webhook: bad endpoint URL"))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Steward-Webhooks/1")
	req.Header.Set(stdwebhook.HeaderID, t.messageID)
	req.Header.Set(stdwebhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(stdwebhook.HeaderSignature, stdwebhook.SignatureHeader(keys, t.messageID, now, body))

	start := time.Now()
	resp, err := client.Do(req)
	latency := time.Since(start)
	var (
		status  *int
		excerpt *string
		result  *deliveryError
	)
	if err != nil {
		result = &deliveryError{msg: "webhook: " + redactURLError(err)}
		if errors.Is(err, errForbiddenAddress) {
			result.permanent = true
		}
	} else {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, excerptLimit))
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
		_ = resp.Body.Close()
		code := resp.StatusCode
		status = &code
		if s := cleanExcerpt(raw); s != "" {
			excerpt = &s
		}
		switch {
		case isSuccess(code):
		case code == http.StatusGone:
			// The receiver says the endpoint is gone for good: stop
			// sending to it (every pending delivery fails as it comes up).
			if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET enabled = false, disabled_reason = 'gone (HTTP 410)', updated_at = $2 WHERE id = $1`,
				t.endpointID, now); err != nil {
				return &deliveryError{msg: "webhook: disable endpoint: " + err.Error()}
			}
			result = permanentError("webhook: HTTP 410: the endpoint was disabled")
		default:
			result = &deliveryError{msg: fmt.Sprintf("webhook: HTTP %d", code)}
			if code == http.StatusTooManyRequests {
				if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
					result.retryAfter = time.Duration(secs) * time.Second
				}
			}
		}
	}
	var errText *string
	if result != nil {
		errText = &result.msg
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO webhook_attempts (delivery_id, attempted_at, status_code, latency_ms, error, response_excerpt)
		VALUES ($1, $2, $3, $4, $5, $6)`, t.deliveryID, now, status, latency.Milliseconds(), errText, excerpt); err != nil {
		return &deliveryError{msg: "webhook: record attempt: " + err.Error()}
	}
	state := "pending"
	switch {
	case result == nil:
		state = "delivered"
	case result.permanent:
		state = "failed"
	}
	return w.webhookDone(ctx, tx, t.deliveryID, state, result)
}

// webhookKeys opens the endpoint's current secret, and the previous one
// while it is still within its 24 hours.
func (w *Worker) webhookKeys(t webhookTarget, now time.Time) ([][]byte, *deliveryError) {
	cur, err := w.kr.Open(t.secretKID, t.secretCT, WebhookSecretAAD(t.endpointID, "current"))
	if err != nil {
		return nil, permanentError("webhook: cannot open the endpoint secret: %v", err)
	}
	key, err := stdwebhook.DecodeSecret(string(cur))
	if err != nil {
		return nil, permanentError("webhook: the endpoint secret is malformed")
	}
	keys := [][]byte{key}
	if t.prevKID != nil && t.prevExpires != nil && now.Before(*t.prevExpires) {
		prev, err := w.kr.Open(*t.prevKID, t.prevCT, WebhookSecretAAD(t.endpointID, "previous"))
		if err == nil {
			if k, err := stdwebhook.DecodeSecret(string(prev)); err == nil {
				keys = append(keys, k)
			}
		}
	}
	return keys, nil
}

// webhookDone records a delivery's state after an attempt.
func (w *Worker) webhookDone(ctx context.Context, tx pgx.Tx, deliveryID, state string, result *deliveryError) *deliveryError {
	now := w.clk.Now()
	if _, err := tx.Exec(ctx, `
		UPDATE webhook_deliveries SET status = $2, attempts = attempts + 1, last_attempt_at = $3,
		       delivered_at = CASE WHEN $2 = 'delivered' THEN $3 ELSE delivered_at END
		WHERE id = $1`, deliveryID, state, now); err != nil {
		return &deliveryError{msg: "webhook: record delivery: " + err.Error()}
	}
	return result
}

// failWebhook marks a delivery failed when the outbox gives up on it
// (attempts exhausted).
func failWebhook(ctx context.Context, tx pgx.Tx, r row) error {
	var p webhookPayload
	if json.Unmarshal(r.payload, &p) != nil || p.DeliveryID == "" {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = 'failed' WHERE id = $1`, p.DeliveryID); err != nil {
		return fmt.Errorf("outbox: fail webhook delivery: %w", err)
	}
	return nil
}

// redactURLError drops the URL (its query may hold a receiver's token)
// from an HTTP client error.
func redactURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// cleanExcerpt keeps printable, valid UTF-8 of a receiver's answer.
func cleanExcerpt(b []byte) string {
	s := strings.ToValidUTF8(string(b), "")
	for !utf8.ValidString(s) && s != "" {
		s = s[:len(s)-1]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\n' && r != '\t' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}
