package api

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/steward-privacy/steward/internal/apperr"
)

// statusOf is the one table from application error codes to HTTP statuses.
var statusOf = map[apperr.Code]int{
	apperr.Invalid:          fiber.StatusBadRequest,
	apperr.Unauthenticated:  fiber.StatusUnauthorized,
	apperr.Forbidden:        fiber.StatusForbidden,
	apperr.NotFound:         fiber.StatusNotFound,
	apperr.MethodNotAllowed: fiber.StatusMethodNotAllowed,
	apperr.Conflict:         fiber.StatusConflict,
	apperr.Gone:             fiber.StatusGone,
	apperr.TooLarge:         fiber.StatusRequestEntityTooLarge,
	apperr.UnsupportedMedia: fiber.StatusUnsupportedMediaType,
	apperr.RateLimited:      fiber.StatusTooManyRequests,
	apperr.Timeout:          fiber.StatusRequestTimeout,
	apperr.Unavailable:      fiber.StatusServiceUnavailable,
	apperr.Internal:         fiber.StatusInternalServerError,
}

var titleOf = map[apperr.Code]string{
	apperr.Invalid:          "The request is invalid",
	apperr.Unauthenticated:  "Authentication required",
	apperr.Forbidden:        "Not allowed",
	apperr.NotFound:         "Not found",
	apperr.MethodNotAllowed: "Method not allowed",
	apperr.Conflict:         "Conflict",
	apperr.Gone:             "Gone",
	apperr.TooLarge:         "Request body too large",
	apperr.UnsupportedMedia: "Unsupported media type",
	apperr.RateLimited:      "Too many requests",
	apperr.Timeout:          "Request timeout",
	apperr.Unavailable:      "Service unavailable",
	apperr.Internal:         "Internal error",
}

// Problem is an RFC 9457 problem details document, plus a stable `code`
// clients can switch on and the request id to quote to support.
type Problem struct {
	Type      string              `json:"type"`
	Title     string              `json:"title"`
	Status    int                 `json:"status"`
	Detail    string              `json:"detail"`
	Instance  string              `json:"instance,omitempty"`
	Code      apperr.Code         `json:"code"`
	RequestID string              `json:"request_id,omitempty"`
	Errors    []apperr.FieldError `json:"errors,omitempty"`
}

// ProblemType is the URI identifying a problem code.
func ProblemType(c apperr.Code) string { return "urn:steward:problem:" + string(c) }

// fromFiber maps the framework's own errors (unknown route, body too large,
// malformed request line) into application errors.
func fromFiber(fe *fiber.Error) *apperr.Error {
	switch fe.Code {
	case fiber.StatusNotFound:
		return apperr.New(apperr.NotFound, "no such endpoint; see /openapi.json")
	case fiber.StatusMethodNotAllowed:
		return apperr.New(apperr.MethodNotAllowed, "method not allowed on this endpoint; see /openapi.json")
	case fiber.StatusRequestEntityTooLarge:
		return apperr.New(apperr.TooLarge, "request body is larger than this server accepts")
	case fiber.StatusRequestTimeout:
		// 408, not 400: a client's pool recognises a 408 on a connection
		// it opened and left idle as the server closing it (RFC 9110
		// 15.5.9), where a 400 reads as an answer nobody asked for.
		return apperr.New(apperr.Timeout, "request was not received in time")
	case fiber.StatusRequestHeaderFieldsTooLarge:
		return apperr.New(apperr.Invalid, "request headers are too large")
	case fiber.StatusUnsupportedMediaType:
		return apperr.New(apperr.UnsupportedMedia, "send Content-Type: application/json")
	}
	if fe.Code >= 400 && fe.Code < 500 {
		return apperr.New(apperr.Invalid, "%s", strings.ToLower(fe.Message))
	}
	return apperr.New(apperr.Internal, "internal error")
}

// RetryAfterSeconds is the Retry-After of an unavailable answer: long
// enough for a pool to reconnect after PostgreSQL comes back, short enough
// that a client's retry lands soon after.
const RetryAfterSeconds = "5"

// unavailable reports whether err says the database cannot be reached
// (refused, cut, shutting down, or no connection within the deadline)
// rather than that the request was wrong or the code is. Such an error is
// a 503 the caller may retry, not a 500 to investigate. This is the one
// place that knows the driver's shapes of it.
func unavailable(err error) bool {
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, puddle.ErrClosedPool):
		return true
	case errors.As(err, &pe):
		// Class 08: connection exception; 57P01–57P03: admin or crash
		// shutdown, cannot connect now (starting up or in recovery).
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03"
	case errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err) && !errors.Is(err, context.Canceled):
		// No connection (or answer) within the request's deadline.
		return true
	case errors.As(err, &ne), errors.Is(err, io.ErrUnexpectedEOF):
		// A socket refused, reset or cut mid-answer.
		return true
	}
	return false
}

// writeProblem renders err. Internal errors are logged with the request id
// and shown only as "internal error".
func (s *server) writeProblem(c *fiber.Ctx, err error) error {
	var ae *apperr.Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &ae) && !(ae.Code == apperr.Internal && unavailable(err)):
	case errors.As(err, &fe):
		ae = fromFiber(fe)
	case unavailable(err):
		ae = &apperr.Error{Code: apperr.Unavailable, Message: "the database is unreachable; retry shortly", Err: err}
	default:
		ae = apperr.New(apperr.Internal, "internal error")
	}
	status := statusOf[ae.Code]
	if status == 0 {
		status = fiber.StatusInternalServerError
	}
	rid, _ := c.Locals(localRequestID).(string)
	if rid == "" {
		// The server refused the request before any middleware ran (e.g. a
		// body over the limit): it still gets an id to quote.
		rid = newRequestID()
		c.Set(fiber.HeaderXRequestID, rid)
	}
	switch {
	case ae.Code == apperr.Unavailable:
		// Expected while the database is away: a warning, and the cause
		// (driver text, no personal data) for the operator.
		s.Log.Warn("request unavailable", "request_id", rid, "route", routeOf(c), "err", err)
		c.Set(fiber.HeaderRetryAfter, RetryAfterSeconds)
	case status >= 500:
		s.Log.Error("request failed", "request_id", rid, "route", routeOf(c), "err", err)
	}
	// A problem is never cached and never sniffed, whatever the handler
	// set before it failed (and also when the server refused the request
	// before any middleware ran).
	c.Set(fiber.HeaderCacheControl, noStore)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	p := Problem{
		Type: ProblemType(ae.Code), Title: titleOf[ae.Code], Status: status, Detail: ae.Message,
		Code: ae.Code, RequestID: rid, Errors: ae.Fields,
	}
	if ae.Code == apperr.Internal {
		p.Detail = "internal error; quote the request id when reporting it"
	}
	if ae.Code == apperr.Unauthenticated {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="steward"`)
	}
	c.Status(status)
	c.Set(fiber.HeaderContentType, "application/problem+json")
	b, mErr := jsonMarshal(p)
	if mErr != nil {
		return mErr
	}
	return c.Send(b)
}
