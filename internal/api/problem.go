package api

import (
	"errors"
	"strings"

	"github.com/gofiber/fiber/v2"

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
		return apperr.New(apperr.Invalid, "request was not received in time")
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

// writeProblem renders err. Internal errors are logged with the request id
// and shown only as "internal error".
func (s *server) writeProblem(c *fiber.Ctx, err error) error {
	var ae *apperr.Error
	var fe *fiber.Error
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &fe):
		ae = fromFiber(fe)
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
	if status >= 500 {
		s.Log.Error("request failed", "request_id", rid, "route", routeOf(c), "err", err)
	}
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
