package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/resend/resend-go/v2"
)

// ResendConfig says how to reach Resend. With APIKey empty nothing is sent and
// the outbox keeps its messages until a key is configured.
type ResendConfig struct {
	APIKey     string
	BaseURL    string // "" = Resend's default (https://api.resend.com/)
	AudienceID string // required with APIKey: contacts live in an audience
}

// Validate reports a configuration that cannot deliver: a key without an
// audience. Call it at startup so the mistake stops the process instead of
// silently piling up messages.
func (c ResendConfig) Validate() error {
	if strings.TrimSpace(c.APIKey) == "" {
		return nil
	}
	if strings.TrimSpace(c.AudienceID) == "" {
		return errors.New("resend: an audience id is required when an API key is set (contacts are unsubscribed within one audience)")
	}
	if c.BaseURL != "" {
		u, err := url.Parse(c.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("resend: base URL must be an absolute http(s) URL")
		}
	}
	return nil
}

// requestTimeout bounds one HTTP exchange with Resend. The worker holds the
// message's row lock while it waits, so this must stay short.
const requestTimeout = 30 * time.Second

// resendDeliverer marks contacts unsubscribed in one Resend audience.
type resendDeliverer struct {
	client     *resend.Client
	audienceID string
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
	return &resendDeliverer{client: c, audienceID: strings.TrimSpace(cfg.AudienceID)}, nil
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
// message has email addresses redacted, so it can be stored and logged.
type deliveryError struct {
	msg        string
	permanent  bool
	retryAfter time.Duration // Resend's hint on 429, 0 if none
}

func (e *deliveryError) Error() string { return e.msg }

func permanentError(format string, args ...any) *deliveryError {
	return &deliveryError{msg: fmt.Sprintf(format, args...), permanent: true}
}

// unsubscribe marks email unsubscribed in the audience, creating the contact
// (already unsubscribed) when it does not exist, so that a later import or
// sign-up sync cannot quietly subscribe the person again.
func (r *resendDeliverer) unsubscribe(ctx context.Context, email, idempotencyKey string) *deliveryError {
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
