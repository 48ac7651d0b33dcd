package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/resend/resend-go/v2"
)

// ResendConfig says how to reach Resend. With APIKey empty nothing is sent and
// the outbox keeps its messages until a key is configured.
//
// Each message kind needs its own piece of configuration: unsubscribes need
// AudienceID (contacts live in an audience), emails need From (Resend refuses
// a message without a verified sender). A kind whose piece is missing is kept
// pending, with an error logged once, while the other kind is still
// delivered; see ValidateKind.
type ResendConfig struct {
	APIKey     string
	BaseURL    string // "" = Resend's default (https://api.resend.com/)
	AudienceID string // needed for KindResendUnsubscribe
	// From is the sender of KindEmail messages, an address on a domain
	// verified in Resend, optionally with a display name:
	// "Privacy team <privacy@example.com>". Needed for KindEmail.
	From string
}

// Validate reports a configuration that cannot deliver anything: a key with
// neither an audience nor a sender, a malformed sender or base URL. Call it
// at startup so the mistake stops the process instead of silently piling up
// messages. A key with only one of AudienceID and From passes: use
// ValidateKind to insist on a particular kind.
func (c ResendConfig) Validate() error {
	if strings.TrimSpace(c.APIKey) == "" {
		return nil
	}
	if strings.TrimSpace(c.AudienceID) == "" && strings.TrimSpace(c.From) == "" {
		return errors.New("resend: an audience id (for unsubscribes) or a From address (for emails) is required when an API key is set")
	}
	if from := strings.TrimSpace(c.From); from != "" {
		if _, err := mail.ParseAddress(from); err != nil {
			return errors.New(`resend: From must be an email address, optionally with a name ("Privacy team <privacy@example.com>")`)
		}
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("resend: base URL must be an absolute http(s) URL")
		}
	}
	return nil
}

// ValidateKind reports why messages of kind cannot be delivered with this
// configuration, or nil when they can. A worker keeps such messages pending
// rather than failing them, since the fix is configuration, not the message.
func (c ResendConfig) ValidateKind(kind string) error {
	if strings.TrimSpace(c.APIKey) == "" {
		return errors.New("resend: no API key is set")
	}
	if err := c.Validate(); err != nil {
		return err
	}
	switch kind {
	case KindResendUnsubscribe:
		if strings.TrimSpace(c.AudienceID) == "" {
			return errors.New("resend: an audience id is required to deliver unsubscribes (contacts are unsubscribed within one audience)")
		}
	case KindEmail:
		if strings.TrimSpace(c.From) == "" {
			return errors.New("resend: a From address is required to deliver emails")
		}
	default:
		return fmt.Errorf("resend: unknown message kind %q", kind)
	}
	return nil
}

// requestTimeout bounds one HTTP exchange with Resend. The worker holds the
// message's row lock while it waits, so this must stay short.
const requestTimeout = 30 * time.Second

// resendDeliverer marks contacts unsubscribed in one Resend audience and
// sends emails from one sender. Either may be empty; the worker does not hand
// it messages of a kind it is not configured for.
type resendDeliverer struct {
	client     *resend.Client
	audienceID string
	from       string
}

func newResendDeliverer(cfg ResendConfig) (*resendDeliverer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: requestTimeout, Transport: &callTransport{base: http.DefaultTransport}}
	c := resend.NewCustomClient(hc, strings.TrimSpace(cfg.APIKey))
	if cfg.BaseURL != "" {
		// resend-go resolves relative paths against BaseURL; without a trailing
		// slash the last path segment (e.g. "/v1") would be replaced.
		base := cfg.BaseURL
		if !strings.HasSuffix(base, "/") {
			base += "/"
		}
		u, err := url.Parse(base)
		if err != nil {
			return nil, fmt.Errorf("resend: base URL: %w", err)
		}
		c.BaseURL = u
	}
	return &resendDeliverer{client: c, audienceID: strings.TrimSpace(cfg.AudienceID), from: strings.TrimSpace(cfg.From)}, nil
}

// callInfo carries the idempotency key into the transport and the response
// status back out: resend-go's contacts calls take no idempotency option, and
// its errors do not say which HTTP status caused them, yet retry decisions
// depend on exactly that.
type callInfo struct {
	idempotencyKey string
	status         int
	retryAfter     string
}

type callInfoKey struct{}

// callTransport sets the Idempotency-Key header from the context and records
// the response status.
type callTransport struct{ base http.RoundTripper }

func (t *callTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	info, _ := req.Context().Value(callInfoKey{}).(*callInfo)
	if info != nil && info.idempotencyKey != "" {
		// A RoundTripper must not modify the caller's request.
		req = req.Clone(req.Context())
		req.Header.Set("Idempotency-Key", info.idempotencyKey)
	}
	resp, err := t.base.RoundTrip(req)
	if info != nil && resp != nil {
		info.status = resp.StatusCode
		info.retryAfter = resp.Header.Get("Retry-After")
	}
	return resp, err
}

// deliveryError is a failed delivery, classified for the retry decision. Its
// message has email addresses (and, for Telegram, the chat id and the bot
// token) redacted, so it can be stored and logged.
type deliveryError struct {
	msg        string
	permanent  bool
	retryAfter time.Duration // the far side's hint on 429 (Resend's Retry-After, Telegram's retry_after), 0 if none
}

func (e *deliveryError) Error() string { return e.msg }

func permanentError(format string, args ...any) *deliveryError {
	return &deliveryError{msg: fmt.Sprintf(format, args...), permanent: true}
}

// unsubscribe marks email unsubscribed in the audience, creating the contact
// (already unsubscribed) when it does not exist, so that a later import or
// sign-up sync cannot quietly subscribe the person again.
func (r *resendDeliverer) unsubscribe(ctx context.Context, email, idempotencyKey string) *deliveryError {
	if r.audienceID == "" {
		// The worker keeps these back; should one slip through, wait for
		// the configuration rather than fail it.
		return &deliveryError{msg: "resend: no audience id configured"}
	}
	info := &callInfo{idempotencyKey: idempotencyKey}
	ctx = context.WithValue(ctx, callInfoKey{}, info)

	update := func() (int, error) {
		req := &resend.UpdateContactRequest{AudienceId: r.audienceID}
		// resend-go puts the id-or-email into the URL path unescaped; an
		// address with '?', '#' or '/' in it (legal in a local part) would
		// break the URL, so such addresses go as an escaped id instead.
		if esc := url.PathEscape(email); esc != email {
			req.Id = esc
		} else {
			req.Email = email
		}
		req.SetUnsubscribed(true)
		info.status, info.retryAfter = 0, ""
		_, err := r.client.Contacts.UpdateWithContext(ctx, req)
		return info.status, err
	}
	create := func() (int, error) {
		info.status, info.retryAfter = 0, ""
		_, err := r.client.Contacts.CreateWithContext(ctx, &resend.CreateContactRequest{
			AudienceId: r.audienceID, Email: email, Unsubscribed: true,
		})
		return info.status, err
	}

	status, err := update()
	if isSuccess(status) {
		// A 2xx means Resend applied the change, even if its body did not parse.
		return nil
	}
	if status != http.StatusNotFound {
		return classify("update contact", status, info.retryAfter, err, email)
	}
	status, err = create()
	if isSuccess(status) {
		return nil
	}
	if status == http.StatusConflict {
		// Someone created the contact between our two calls: update it now
		// rather than waiting a whole backoff.
		status, err = update()
		if isSuccess(status) {
			return nil
		}
		return classify("update contact", status, info.retryAfter, err, email)
	}
	return classify("create contact", status, info.retryAfter, err, email)
}

// sendEmail sends one rendered email. Resend keeps the idempotency key for 24
// hours and answers a repeat with the original response instead of sending
// again, so a retry after a lost response or a crash before the outbox row was
// marked delivered does not reach the recipient twice. secret (a verification
// code) is redacted from errors along with the address.
func (r *resendDeliverer) sendEmail(ctx context.Context, to string, m renderedEmail, idempotencyKey, secret string) *deliveryError {
	if r.from == "" {
		return &deliveryError{msg: "resend: no From address configured"}
	}
	info := &callInfo{idempotencyKey: idempotencyKey}
	ctx = context.WithValue(ctx, callInfoKey{}, info)
	_, err := r.client.Emails.SendWithOptions(ctx, &resend.SendEmailRequest{
		From:    r.from,
		To:      []string{to},
		Subject: m.Subject,
		Text:    m.Text,
		Html:    m.HTML,
	}, &resend.SendEmailOptions{IdempotencyKey: idempotencyKey})
	if isSuccess(info.status) {
		// Accepted, even if the body did not parse: a retry would only
		// replay the same answer.
		return nil
	}
	de := classify("send email", info.status, info.retryAfter, err, to)
	if secret != "" {
		de.msg = strings.ReplaceAll(de.msg, secret, "[secret]")
	}
	return de
}

func isSuccess(status int) bool { return status >= 200 && status < 300 }

// classify decides whether a failure is worth retrying. 404 and 409 can heal
// (audience being set up, a racing create), 429 and 5xx are Resend's load or
// outage, and a missing status is a network error; any other 4xx means the
// request itself is wrong and will be wrong every time.
func classify(op string, status int, retryAfter string, err error, email string) *deliveryError {
	if err == nil {
		err = errors.New("no error detail")
	}
	// url.Error repeats the request URL, which has the email in its path.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	detail := redact(err.Error(), email)
	if status == 0 {
		return &deliveryError{msg: fmt.Sprintf("resend %s: network: %s", op, detail)}
	}
	de := &deliveryError{msg: fmt.Sprintf("resend %s: HTTP %d: %s", op, status, detail)}
	switch {
	case status == http.StatusTooManyRequests:
		if s, perr := strconv.Atoi(strings.TrimSpace(retryAfter)); perr == nil && s > 0 {
			de.retryAfter = time.Duration(s) * time.Second
		}
	case status == http.StatusNotFound, status == http.StatusConflict:
	case status >= 400 && status < 500:
		de.permanent = true
	}
	return de
}

// emailToken matches any token with an '@' (or its escaped form), since it may
// be an address: errors come from Resend and from the network stack, and
// either may echo it.
var emailToken = regexp.MustCompile(`\S*(@|%40)\S*`)

// maxErrorLen keeps last_error readable and bounded.
const maxErrorLen = 500

// redact removes the address (and anything that looks like one) from s.
func redact(s, email string) string {
	if email != "" {
		for _, form := range []string{email, url.PathEscape(email), url.QueryEscape(email)} {
			s = replaceFold(s, form, "[email]")
		}
	}
	s = emailToken.ReplaceAllString(s, "[email]")
	if len(s) > maxErrorLen {
		s = strings.ToValidUTF8(s[:maxErrorLen], "") + "…"
	}
	return s
}

// replaceFold replaces old in s ignoring case: Resend may echo the address
// lowercased.
func replaceFold(s, old, repl string) string {
	if old == "" {
		return s
	}
	return regexp.MustCompile(`(?i)`+regexp.QuoteMeta(old)).ReplaceAllString(s, repl)
}
