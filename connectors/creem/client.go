package creem

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/steward-privacy/steward/connectors"
)

const (
	// maxResponse bounds a response body read into memory. A page of 50
	// subscriptions with their expanded product and customer is a few tens
	// of kilobytes; anything near this limit is not Creem answering.
	maxResponse = 8 << 20
	// maxErrorBody bounds an error body read for its message.
	maxErrorBody = 64 << 10
	// maxInlineWait is the longest the connector waits between retries of
	// one request. A longer Retry-After is handed to the engine, whose
	// durable retry waits without holding a worker.
	maxInlineWait = 5 * time.Second
	// backoffBase and backoffCap shape the exponential backoff between
	// retries when Creem gives no Retry-After.
	backoffBase = 250 * time.Millisecond
	backoffCap  = 4 * time.Second
	// maxMessage bounds Creem's message as quoted in an error.
	maxMessage = 500
)

// errNotFound is a 404 with Creem's error body: the object asked for does
// not exist (a lookup by an email no customer has, or a customer Creem has
// deleted). Only the customer lookup turns it into "nothing"; elsewhere it
// is a permanent error.
var errNotFound = errors.New("not found")

// apiError is a non-2xx answer from Creem.
type apiError struct {
	endpoint   string // the endpoint's label, never its URL (which may carry an email)
	status     int
	message    string // Creem's message(s), for staff
	traceID    string // Creem's trace_id, which its support asks for
	retryAfter time.Duration
	creemBody  bool // the body had Creem's error shape
}

func (e *apiError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "creem %s: HTTP %d", e.endpoint, e.status)
	if e.message != "" {
		b.WriteString(": ")
		b.WriteString(e.message)
	}
	if e.traceID != "" {
		b.WriteString(" (trace_id ")
		b.WriteString(e.traceID)
		b.WriteString(")")
	}
	return b.String()
}

func (e *apiError) Is(target error) bool {
	return target == errNotFound && e.status == http.StatusNotFound && e.creemBody
}

// get fetches path (under the base URL) with query and decodes the JSON
// answer into out. endpoint labels the request in logs and errors: the URL
// itself may hold an email or a customer id, personal data never logged.
//
// Retryable failures (429, 5xx, network errors, timeouts) are retried up to
// MaxRetries times with exponential backoff, waiting at least what
// Retry-After says; past that, or when Creem asks for a longer wait than
// the connector holds a worker for, the error is returned as
// connectors.Retryable with Creem's hint. Other 4xx are permanent, with
// Creem's message. A cancelled context ends the call at once with an error
// wrapping context.Canceled.
func (c *Connector) get(ctx context.Context, endpoint, path string, query url.Values, out any) error {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("creem %s: %w", endpoint, err)
		}
		body, err := c.do(ctx, endpoint, u.String())
		if err == nil {
			if err := decodeJSON(body, out); err != nil {
				return connectors.Permanent(fmt.Errorf("creem %s: unexpected response: %w", endpoint, err))
			}
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("creem %s: %w", endpoint, ctxErr)
		}
		retry, after := connectors.Classify(err)
		if !retry {
			return err
		}
		if attempt >= c.cfg.MaxRetries || after > maxInlineWait {
			return err
		}
		wait := max(connectors.Backoff(attempt, backoffBase, backoffCap), after)
		c.log.Debug("creem: retrying", "endpoint", endpoint, "attempt", attempt+1, "wait", wait, "error_kind", errorKind(err))
		if err := c.sleep(ctx, wait); err != nil {
			return fmt.Errorf("creem %s: %w", endpoint, err)
		}
	}
}

// do makes one request and returns the body of a 2xx answer, or a
// classified error.
func (c *Connector) do(ctx context.Context, endpoint, rawURL string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, connectors.Permanent(fmt.Errorf("creem %s: build request: %w", endpoint, err))
	}
	req.Header.Set("x-api-key", c.cfg.APIKey)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "steward-creem-connector")
	resp, err := c.client.Do(req)
	if err != nil {
		// Network errors and client timeouts: the request may never have
		// reached Creem, and a GET is safe to repeat. The URL is left out
		// of the message: it may hold an email.
		return nil, connectors.Retryable(fmt.Errorf("creem %s: request failed: %w", endpoint, stripURL(err)), 0)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
		if err != nil {
			return nil, connectors.Retryable(fmt.Errorf("creem %s: read response: %w", endpoint, stripURL(err)), 0)
		}
		if len(body) > maxResponse {
			return nil, connectors.Permanent(fmt.Errorf("creem %s: response larger than %d bytes", endpoint, maxResponse))
		}
		return body, nil
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	ae := &apiError{endpoint: endpoint, status: resp.StatusCode}
	ae.message, ae.traceID, ae.creemBody = parseErrorBody(raw)
	if ae.message == "" && !ae.creemBody {
		ae.message = http.StatusText(resp.StatusCode)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		ae.retryAfter = c.retryAfter(resp.Header)
		return nil, connectors.Retryable(ae, ae.retryAfter)
	case resp.StatusCode == http.StatusRequestTimeout:
		return nil, connectors.Retryable(ae, 0)
	default:
		// 400, 401, 403, 404 and the rest fail the same way every time:
		// a bad request, a wrong or revoked key, a missing object.
		return nil, connectors.Permanent(ae)
	}
}

// retryAfter reads how long Creem asks to wait: Retry-After in seconds or as
// an HTTP date, else the documented X-RateLimit-Reset (a Unix time). Zero
// when neither says.
func (c *Connector) retryAfter(h http.Header) time.Duration {
	return parseRetryAfter(h, c.clock.Now())
}

func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	const limit = 24 * time.Hour // a hint beyond this is not a hint
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			if n <= 0 {
				return 0
			}
			return min(time.Duration(n)*time.Second, limit)
		}
		if t, err := http.ParseTime(v); err == nil {
			if d := t.Sub(now); d > 0 {
				return min(d.Round(time.Second), limit)
			}
			return 0
		}
	}
	if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			if d := time.Unix(n, 0).Sub(now); d > 0 {
				return min(d.Round(time.Second), limit)
			}
		}
	}
	return 0
}

// parseErrorBody reads Creem's error body. The documented shape is
// {"trace_id", "status", "error", "message": [...], "timestamp"}; message
// is an array in the documentation but a string in some SDKs, and the rate
// limit page documents {"error": {"code", "message", "retry_after"}} for
// 429. All three are read. creem says the body had one of these shapes.
func parseErrorBody(raw []byte) (message, traceID string, creem bool) {
	var body struct {
		TraceID json.RawMessage `json:"trace_id"`
		Status  json.RawMessage `json:"status"`
		Error   json.RawMessage `json:"error"`
		Message json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		return "", "", false
	}
	creem = body.TraceID != nil || body.Status != nil || body.Message != nil || body.Error != nil
	var msgs []string
	var s string
	switch {
	case json.Unmarshal(body.Message, &msgs) == nil:
	case json.Unmarshal(body.Message, &s) == nil && s != "":
		msgs = []string{s}
	}
	if len(msgs) == 0 {
		var nested struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		}
		if json.Unmarshal(body.Error, &nested) == nil && (nested.Message != "" || nested.Code != "") {
			msgs = []string{strings.TrimSpace(nested.Code + " " + nested.Message)}
		} else if json.Unmarshal(body.Error, &s) == nil && s != "" {
			msgs = []string{s}
		}
	}
	_ = json.Unmarshal(body.TraceID, &traceID)
	return clean(strings.Join(msgs, "; "), maxMessage), clean(traceID, 100), creem
}

// clean makes text from Creem safe to put in an error shown to staff:
// control characters become spaces, and it is cut at limit bytes.
func clean(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8Start(b byte) bool { return b&0xC0 != 0x80 }

// decodeJSON decodes one JSON value, keeping numbers exact (json.Number):
// amounts and timestamps are disclosed as Creem wrote them.
func decodeJSON(body []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// stripURL drops the URL from a *url.Error: it may hold an email.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// errorKind is a log-safe summary of err: the HTTP status, or "network".
func errorKind(err error) string {
	var ae *apiError
	if errors.As(err, &ae) {
		return strconv.Itoa(ae.status)
	}
	return "network"
}
