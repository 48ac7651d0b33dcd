package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"gocloud.dev/gcerrors"
	"google.golang.org/api/googleapi"

	"github.com/steward-privacy/steward/connectors"
)

// storeError is a failure of the store with a message fit for logs and
// task errors. gocloud's own messages name the object key, and keys name
// people; the original stays reachable through Unwrap for errors.As.
type storeError struct {
	msg string
	err error
}

func (e *storeError) Error() string { return e.msg }
func (e *storeError) Unwrap() error { return e.err }

// sinkError marks a failure of the export sink: it is the sink's to
// classify, and is passed through unchanged.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

var errOutside = connectors.Permanent(errors.New("the store listed a key outside the prefix asked for; nothing under it was touched"))

// retryableCodes are S3 (and S3-compatible) error codes that mean "slow
// down or try later" whatever the status says.
var retryableCodes = map[string]bool{
	"SlowDown": true, "Throttling": true, "ThrottlingException": true, "RequestTimeout": true,
	"RequestTimeTooSkewed": true, "InternalError": true, "ServiceUnavailable": true,
	"RequestLimitExceeded": true, "TooManyRequests": true, "OperationAborted": true,
	"ServerBusy": true, "OperationTimedOut": true, "InternalServerError": true,
}

// fail classifies err and prefixes what was being done; op and dataset
// are not personal data.
func (c *Connector) fail(ctx context.Context, op, dataset string, err error) error {
	var se *sinkError
	if errors.As(err, &se) {
		return fmt.Errorf("objectstore %s: %s %s: sink: %w", c.cfg.System, op, dataset, se.err)
	}
	return fmt.Errorf("objectstore %s: %s %s: %w", c.cfg.System, op, dataset, c.classify(ctx, err))
}

// classify says whether a store error is worth retrying: rate limits
// (429, SlowDown), server errors, timeouts and lost connections are, with
// the server's Retry-After as the hint; a missing permission, a missing
// bucket or a refused request fail the same way every time and carry the
// server's message for staff.
func (c *Connector) classify(ctx context.Context, err error) error {
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return err
	}
	if ctx.Err() != nil {
		// The caller stopped us; what the store said on the way out does
		// not matter.
		return fmt.Errorf("%w (%s)", ctx.Err(), safeMessage(err))
	}
	d := details(err)
	e := &storeError{msg: d.describe(err), err: err}
	switch {
	case d.status == http.StatusTooManyRequests || d.status == http.StatusRequestTimeout || d.status >= 500 || retryableCodes[d.code]:
		return connectors.Retryable(e, c.retryAfter(d.retryAfter))
	case d.status >= 400:
		return connectors.Permanent(e)
	}
	// A store that did not answer (refused, reset, unreachable) is the
	// network or the store briefly away, whatever code the driver gave it:
	// gocloud's s3blob sometimes reports a dial failure under a code that
	// reads as permanent.
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) {
		return connectors.Retryable(e, 0)
	}
	switch gcerrors.Code(err) {
	case gcerrors.ResourceExhausted, gcerrors.DeadlineExceeded, gcerrors.Internal:
		return connectors.Retryable(e, 0)
	case gcerrors.PermissionDenied, gcerrors.InvalidArgument, gcerrors.FailedPrecondition,
		gcerrors.Unimplemented, gcerrors.NotFound, gcerrors.AlreadyExists:
		// NotFound here is the bucket itself: a missing object is handled
		// where it can happen (it is no error for a delete).
		return connectors.Permanent(e)
	}
	// Timeouts, resets and everything unknown: most are the network or
	// the store being briefly unavailable, and the engine bounds retries.
	return connectors.Retryable(e, 0)
}

// detail is what a store's error says, from whichever SDK made it.
type detail struct {
	status     int
	code       string // the store's error code (SlowDown, AccessDenied)
	msg        string // the store's message
	retryAfter string // the Retry-After header
}

func details(err error) detail {
	var d detail
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		d.status = re.HTTPStatusCode()
		d.retryAfter = re.Response.Header.Get("Retry-After")
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		d.code, d.msg = ae.ErrorCode(), ae.ErrorMessage()
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		d.status, d.msg = ge.Code, ge.Message
		if ge.Header != nil {
			d.retryAfter = ge.Header.Get("Retry-After")
		}
		if len(ge.Errors) > 0 {
			d.code = ge.Errors[0].Reason
		}
	}
	var ze *azcore.ResponseError
	if errors.As(err, &ze) {
		// Azure's message repeats the request URL, which names the blob:
		// the status and code say enough.
		d.status, d.code = ze.StatusCode, ze.ErrorCode
		if ze.RawResponse != nil {
			d.retryAfter = ze.RawResponse.Header.Get("Retry-After")
		}
	}
	return d
}

// describe is the message a classified error carries.
func (d detail) describe(err error) string {
	if d.status == 0 && d.code == "" {
		return safeMessage(err)
	}
	var b strings.Builder
	if d.status != 0 {
		fmt.Fprintf(&b, "HTTP %d", d.status)
	}
	if d.code != "" {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		b.WriteString(d.code)
	}
	if d.msg != "" {
		b.WriteString(": " + redact(d.msg))
	}
	if d.retryAfter != "" {
		b.WriteString(" (Retry-After: " + redact(d.retryAfter) + ")")
	}
	return b.String()
}

// safeMessage describes an error without the object keys and paths its
// text usually holds: a URL error names the request URL, a file error
// the file, gocloud's errors the key.
func safeMessage(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Sprintf("%s request: %s", ue.Op, safeMessage(ue.Err))
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s [path]: %v", pe.Op, pe.Err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "network timeout"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "deadline exceeded"
	}
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	if code := gcerrors.Code(err); code != gcerrors.Unknown && code != gcerrors.OK {
		return "store error: " + code.String()
	}
	return redact(err.Error())
}

// redact drops every word of a message that looks like a path or key:
// anything with a '/' or '\' in it, and quoted strings.
func redact(s string) string {
	words := strings.Fields(s)
	for i, w := range words {
		if strings.ContainsAny(w, `/\"`) {
			words[i] = "[redacted]"
		}
	}
	return strings.Join(words, " ")
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func (c *Connector) retryAfter(h string) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(c.clock.Now()); d > 0 {
			return d.Round(time.Second)
		}
	}
	return 0
}
