package stripe

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	stripego "github.com/stripe/stripe-go/v84"

	"github.com/steward-privacy/steward/connectors"
)

// Backoff between retries of one request: doubling from retryBase up to
// retryCap, or what Retry-After asks. A Retry-After beyond maxRetryWait is
// not waited for in the worker: the engine gets the error with the hint and
// reschedules the task.
const (
	retryBase    = 500 * time.Millisecond
	retryCap     = 8 * time.Second
	maxRetryWait = time.Minute
)

// newClient makes the stripe-go client. stripe-go's own retries are off:
// they sleep without honouring the context or Retry-After and do not retry
// rate limits at all, so retryBackend does it instead. Its logger is off
// too: it logs error bodies, which can carry personal data.
func newClient(c *Connector, key, baseURL string, hc *http.Client) *stripego.Client {
	cfg := &stripego.BackendConfig{
		HTTPClient:        hc,
		URL:               stripego.String(baseURL),
		MaxNetworkRetries: stripego.Int64(0),
		LeveledLogger:     &stripego.LeveledLogger{Level: stripego.LevelNull},
		EnableTelemetry:   stripego.Bool(false),
	}
	backends := stripego.NewBackendsWithConfig(cfg)
	backends.API = &retryBackend{Backend: backends.API, c: c}
	return stripego.NewClient(key, stripego.WithBackends(backends))
}

// retryBackend retries a request Stripe rate-limited or failed in a way
// worth retrying, with backoff honouring Retry-After. A retried write
// carries the same idempotency key (it is in the params), so Stripe
// applies it once.
type retryBackend struct {
	stripego.Backend
	c *Connector
}

func (b *retryBackend) Call(method, path, key string, params stripego.ParamsContainer, v stripego.LastResponseSetter) error {
	ctx := context.Background()
	if params != nil {
		if p := params.GetParams(); p != nil && p.Context != nil {
			ctx = p.Context
		}
	}
	return b.retry(ctx, func() error { return b.Backend.Call(method, path, key, params, v) })
}

func (b *retryBackend) CallRaw(method, path, key string, body []byte, params *stripego.Params, v stripego.LastResponseSetter) error {
	ctx := context.Background()
	if params != nil && params.Context != nil {
		ctx = params.Context
	}
	return b.retry(ctx, func() error { return b.Backend.CallRaw(method, path, key, body, params, v) })
}

func (b *retryBackend) CallMultipart(method, path, key, boundary string, body *bytes.Buffer, params *stripego.Params, v stripego.LastResponseSetter) error {
	return errors.New("stripe connector: multipart requests are not used")
}

func (b *retryBackend) retry(ctx context.Context, call func() error) error {
	for attempt := 0; ; attempt++ {
		err := call()
		if err == nil || attempt >= b.c.retries || ctx.Err() != nil {
			return err
		}
		retry, hint := worthRetrying(err, b.c.clock.Now())
		if !retry || hint > maxRetryWait {
			return err
		}
		wait := connectors.Backoff(attempt, retryBase, retryCap)
		if hint > wait {
			wait = hint
		}
		b.c.log.Debug("stripe connector: retrying a request", "system", b.c.cfg.System, "attempt", attempt+1, "wait", wait, "reason", reason(err))
		if err := b.c.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// worthRetrying says whether err may go away by itself, and how long the
// server asked to wait.
func worthRetrying(err error, now time.Time) (bool, time.Duration) {
	// The caller's own deadline or cancellation ends the retries (retry
	// checks the context); a client timeout, which also reads as a
	// deadline, does not.
	if errors.Is(err, context.Canceled) {
		return false, 0
	}
	var se *stripego.Error
	if errors.As(err, &se) {
		hint := retryAfter(se, now)
		switch {
		case se.HTTPStatusCode == http.StatusTooManyRequests, se.HTTPStatusCode == http.StatusConflict,
			se.HTTPStatusCode >= 500:
			return true, hint
		}
		if se.LastResponse != nil && se.LastResponse.Header.Get("Stripe-Should-Retry") == "true" {
			return true, hint
		}
		return false, 0
	}
	return transient(err), 0
}

// transient says a non-API error is the network's: a timeout, a refused or
// dropped connection, a truncated response.
func transient(err error) bool {
	var ne net.Error
	var ue *url.Error
	return errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// retryAfter reads the Retry-After header of an error response: seconds or
// an HTTP date.
func retryAfter(se *stripego.Error, now time.Time) time.Duration {
	if se.LastResponse == nil {
		return 0
	}
	return parseRetryAfter(se.LastResponse.Header.Get("Retry-After"), now)
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 || secs > 86400 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 && d <= 24*time.Hour {
			return d
		}
	}
	return 0
}

func reason(err error) string {
	var se *stripego.Error
	if errors.As(err, &se) {
		return fmt.Sprintf("HTTP %d %s", se.HTTPStatusCode, se.Code)
	}
	return "network"
}

// APIError is an error Stripe answered, in words staff can act on: the
// status, Stripe's error type and code, its message and request id (to
// quote to Stripe support). It unwraps to stripe-go's *stripe.Error.
type APIError struct {
	Status    int
	Type      string
	Code      string
	Message   string
	RequestID string
	err       *stripego.Error
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Stripe answered HTTP %d", e.Status)
	if e.Type != "" || e.Code != "" {
		b.WriteString(" (")
		b.WriteString(e.Type)
		if e.Code != "" {
			if e.Type != "" {
				b.WriteString(", ")
			}
			b.WriteString("code " + e.Code)
		}
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" [request " + e.RequestID + "]")
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.err }

// classify marks err for the engine: rate limits, conflicts (Stripe's lock
// timeouts), server errors and the network are retryable, with Stripe's
// Retry-After; any other answer is permanent, with Stripe's message.
// Cancellation passes through unclassified (the caller stopped).
func (c *Connector) classify(err error) error {
	if err == nil {
		return nil
	}
	var ce *connectors.Error
	if errors.As(err, &ce) || errors.Is(err, context.Canceled) {
		return err
	}
	var se *stripego.Error
	if errors.As(err, &se) {
		ae := &APIError{Status: se.HTTPStatusCode, Type: string(se.Type), Code: string(se.Code), Message: se.Msg,
			RequestID: se.RequestID, err: se}
		if retry, _ := worthRetrying(se, c.clock.Now()); retry {
			return connectors.Retryable(ae, retryAfter(se, c.clock.Now()))
		}
		return connectors.Permanent(ae)
	}
	if errors.Is(err, context.DeadlineExceeded) || transient(err) {
		return connectors.Retryable(err, 0)
	}
	return err
}

// missing says Stripe answered that the object does not exist (any more).
func missing(err error) bool {
	var se *stripego.Error
	return errors.As(err, &se) && (se.HTTPStatusCode == http.StatusNotFound || se.Code == stripego.ErrorCodeResourceMissing)
}

// refused says Stripe answered 400: for a detach or a cancel, often that it
// was already done.
func refused(err error) bool {
	var se *stripego.Error
	return errors.As(err, &se) && se.HTTPStatusCode == http.StatusBadRequest
}

// idempotencyKey derives the key of one write from the task's key, the
// operation, the object and the change itself: a retried task (same key)
// repeats the same request and Stripe answers it once; a new task run, or
// a different change to the same object, gets a key of its own (Stripe
// refuses a key reused with other parameters). Without a task key the
// request id stands in; without either, a random key still makes the
// connector's own retries of this write safe.
func idempotencyKey(t connectors.Target, op, objectID string, change url.Values) *string {
	base := t.IdempotencyKey
	if base == "" {
		base = "request:" + t.RequestID
	}
	if base == "request:" {
		base = "random:" + stripego.NewIdempotencyKey()
	}
	h := sha256.New()
	for _, s := range []string{base, op, objectID, change.Encode()} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	k := "steward-" + op + "-" + hex.EncodeToString(h.Sum(nil))[:40]
	return &k
}
