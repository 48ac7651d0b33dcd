package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"

	"github.com/jackc/pgx/v5"
)

// KindEmail sends one transactional email (see Email) through Resend.
const KindEmail = "email.send"

// Template names, with the Data keys each takes; the texts live in
// templates/<lang>/. A required key that is missing or blank, or a value that
// is malformed (request_type not one of access, export, erasure,
// rectification, restriction, objection; a date not YYYY-MM-DD; code not 6
// digits; a URL not absolute http(s)), is refused at enqueue. Keys a template
// does not take are ignored, so callers may pass one common set.
const (
	// TemplateRequestReceived acknowledges a privacy request.
	// Data: request_id, request_type, due_date; optional status_url.
	TemplateRequestReceived = "request_received"
	// TemplateVerificationCode asks the requester to confirm with a code.
	// Data: code (6 digits), expires_minutes, request_type.
	TemplateVerificationCode = "verification_code"
	// TemplateRequestCompleted says a request was fulfilled.
	// Data: request_id, request_type; optional download_url, summary,
	// status_url.
	TemplateRequestCompleted = "request_completed"
	// TemplateRequestDenied refuses a request with the reason and the right
	// to complain to a supervisory authority and to a judicial remedy.
	// Data: request_id, request_type, reason, authority; optional
	// status_url.
	TemplateRequestDenied = "request_denied"
	// TemplateRequestExtended announces a later response date.
	// Data: request_id, request_type, reason, new_due_date; optional
	// status_url.
	TemplateRequestExtended = "request_extended"
	// TemplateStaffReminder tells staff a request is nearly due or overdue.
	// Data: request_id, request_type, due_date, when (7d|1d|overdue);
	// optional staff_url.
	TemplateStaffReminder = "staff_reminder"
	// TemplateSigninCode is the one-time code that signs a person in to
	// the privacy center to manage their consent.
	// Data: code (6 digits), expires_minutes.
	TemplateSigninCode = "signin_code"
	// TemplateNoticeChanged tells a person who consented under an older
	// major version that the product's privacy notice changed and their
	// choices wait for them to confirm again (web notice: "For major
	// changes we will also notify you via email or in-product messaging").
	// Data: product_name, version, effective_date; optional summary,
	// notice_url, manage_url.
	TemplateNoticeChanged = "notice_changed"
	// TemplateRecipientNotice tells a processor that received a person's
	// data of their rectification, erasure or restriction (GDPR Art. 19),
	// with the person's identities as the processor knows them.
	// Data: request_id, request_type, system, identities, controller.
	TemplateRecipientNotice = "recipient_notice"
)

// Email is a transactional email to enqueue.
type Email struct {
	To       string            // recipient address (personal data: sealed in the payload)
	Template string            // one of the Template* constants
	Language string            // "en", "ru", "uz" (or a tag such as "ru-RU"); anything else falls back to "en"
	Data     map[string]string // values the template uses; sealed with To, never stored in the clear
	// Key is an optional caller-chosen idempotency key (a UUID); empty means
	// a random one. The same key is sent to Resend on every attempt, so a
	// caller that derives it from its own records (and enqueues again after
	// a crash) gets the email at most once: a second EnqueueEmail with the
	// same key returns ErrAlreadyQueued.
	Key string
}

// ErrInvalidEmail wraps every refusal of an Email at enqueue: unknown
// template, malformed address, missing or malformed Data. The message names
// the offending key but never a value, which may be personal or secret.
var ErrInvalidEmail = errors.New("outbox: invalid email")

// ErrAlreadyQueued is returned (with the key) by EnqueueEmail when a message
// with the same idempotency key exists. Nothing was written and the caller's
// transaction is still usable, so treating it as success makes enqueueing
// idempotent.
var ErrAlreadyQueued = errors.New("outbox: a message with this idempotency key is already queued")

// maxAddressLen is the longest address SMTP can carry (RFC 5321 path limit).
const maxAddressLen = 254

// emailPayload is the jsonb payload of KindEmail. The template name is kept
// in the clear so an operator can tell which email is stuck, and is bound
// into the seal's AAD so it cannot be swapped; recipient, language and data
// travel only inside CT.
type emailPayload struct {
	V        int    `json:"v"`
	Template string `json:"template"`
	KID      string `json:"kid"`
	CT       []byte `json:"ct"`
}

// sealedEmail is what CT holds.
type sealedEmail struct {
	To   string            `json:"to"`
	Lang string            `json:"lang"`
	Data map[string]string `json:"data"`
}

func emailAAD(key, template string) []byte {
	return append(payloadAAD(KindEmail, key), "\x00"+template...)
}

// EnqueueEmail writes, inside the caller's transaction, a message that sends
// e once tx commits; if tx rolls back the email is never sent. The email is
// validated and rendered here, so a mistake is reported to the caller rather
// than discovered by the worker. It returns the message's idempotency key.
func (o *Outbox) EnqueueEmail(ctx context.Context, tx pgx.Tx, e Email) (string, error) {
	to, err := checkAddress(e.To)
	if err != nil {
		return "", err
	}
	lang := NormalizeLanguage(e.Language)
	if _, err := renderEmail(e.Template, lang, e.Data); err != nil {
		return "", err
	}
	key, err := messageKey(e.Key, ErrInvalidEmail)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(sealedEmail{To: to, Lang: lang, Data: e.Data})
	if err != nil {
		return "", fmt.Errorf("outbox: encode email: %w", err)
	}
	kid, ct, err := o.kr.Seal(plain, emailAAD(key, e.Template))
	if err != nil {
		return "", fmt.Errorf("outbox: seal email: %w", err)
	}
	payload, err := json.Marshal(emailPayload{V: 1, Template: e.Template, KID: kid, CT: ct})
	if err != nil {
		return "", fmt.Errorf("outbox: encode payload: %w", err)
	}
	return o.insert(ctx, tx, KindEmail, payload, key, e.Template)
}

// insert writes one pending message due now and returns its key. ON
// CONFLICT rather than a unique violation: an error would abort the
// caller's whole transaction.
func (o *Outbox) insert(ctx context.Context, tx pgx.Tx, kind string, payload []byte, key, template string) (string, error) {
	now := o.clk.Now()
	var id int64
	err := tx.QueryRow(ctx, `
		INSERT INTO outbox (kind, payload, idempotency_key, status, attempts, next_attempt_at, created_at)
		VALUES ($1, $2, $3, 'pending', 0, $4, $4)
		ON CONFLICT (idempotency_key) DO NOTHING
		RETURNING id`, kind, payload, key, now).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return key, ErrAlreadyQueued
	}
	if err != nil {
		return "", fmt.Errorf("outbox: insert: %w", err)
	}
	o.log.InfoContext(ctx, "outbox message queued", "outbox_kind", kind, "outbox_id", id, "template", template)
	return key, nil
}

// checkAddress accepts a bare address ("ann@example.com", no display name)
// with a dotted domain. Errors never repeat the value.
func checkAddress(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fmt.Errorf("%w: a recipient address is required", ErrInvalidEmail)
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s || len(s) > maxAddressLen || strings.ContainsFunc(s, unicode.IsControl) {
		return "", fmt.Errorf("%w: the recipient is not an email address", ErrInvalidEmail)
	}
	at := strings.LastIndexByte(s, '@')
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", fmt.Errorf("%w: the recipient is not an email address", ErrInvalidEmail)
	}
	return s, nil
}

// deliverEmail opens and renders an email message and sends it.
func (w *Worker) deliverEmail(ctx context.Context, r row) *deliveryError {
	var p emailPayload
	if err := json.Unmarshal(r.payload, &p); err != nil || p.V != 1 || len(p.CT) == 0 {
		return permanentError("outbox: unreadable %s payload", r.kind)
	}
	plain, err := w.kr.Open(p.KID, p.CT, emailAAD(r.key, p.Template))
	if err != nil {
		// A removed key, or a payload edited in place (the template is bound
		// into the AAD). err names only the key id.
		return permanentError("outbox: cannot open payload: %v", err)
	}
	var se sealedEmail
	if err := json.Unmarshal(plain, &se); err != nil || se.To == "" {
		return permanentError("outbox: unreadable sealed email")
	}
	// Render again rather than store the text: the payload then holds only
	// what the caller gave, and the output is the same on every attempt, as
	// Resend's idempotency requires.
	m, err := renderEmail(p.Template, se.Lang, se.Data)
	if err != nil {
		// Validated at enqueue, so only a template change in between gets
		// here; its message names keys, not values.
		return permanentError("outbox: render email: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return w.resend.sendEmail(cctx, se.To, m, r.key, se.Data["code"])
}
