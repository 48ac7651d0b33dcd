package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/internal/accesslog"
	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/policy"
)

const (
	localRequestID = "rid"
	localKey       = "key"
)

// Request ids are a per-process random prefix plus a counter: unique across
// replicas, sortable within one, and far cheaper than a random UUID per call.
var (
	ridPrefix = func() string {
		b := make([]byte, 6)
		_, _ = rand.Read(b)
		return hex.EncodeToString(b)
	}()
	ridCounter atomic.Uint64
)

func newRequestID() string {
	var buf [32]byte
	b := append(buf[:0], ridPrefix...)
	b = append(b, '-')
	return string(strconv.AppendUint(b, ridCounter.Add(1), 36))
}

// validRequestID accepts a caller's id only if it is short and plain, so it
// can be logged safely.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

func routeOf(c *fiber.Ctx) string {
	if r := c.Route(); r != nil && r.Path != "/" && r.Path != "" {
		return r.Path
	}
	return "unmatched"
}

// observe is the outermost middleware: it assigns the request id, recovers
// panics, renders errors as problems (so the status is known here), then
// records metrics and the access log. The log carries the route pattern,
// never the path or query, because subjects travel in the query string.
func (s *server) observe(c *fiber.Ctx) (err error) {
	rid, start := s.begin(c)
	c.Locals(localRequestID, rid)
	defer func() {
		k, _ := c.Locals(localKey).(apikey.Key)
		s.finish(c, rid, start, k, recover(), err)
		err = nil
	}()
	return c.Next()
}

// begin is the first step of every request (observe, and the consent
// check's fused path): it takes the caller's request id if it is plain, or
// makes one, and echoes it.
func (s *server) begin(c *fiber.Ctx) (rid string, start time.Time) {
	start = time.Now()
	rid = c.Get(fiber.HeaderXRequestID)
	if !validRequestID(rid) {
		rid = newRequestID()
	} else {
		rid = strings.Clone(rid)
	}
	c.Response().Header.SetCanonical(hdrRequestID, []byte(rid))
	return rid, start
}

// finish is the last step of every request: a panic (recovered by the
// caller's deferred call) becomes an internal error, an error becomes its
// problem, and the request is counted and logged with its key (the zero
// Key when none authenticated). The answer is then written: the caller
// returns nil to fiber.
func (s *server) finish(c *fiber.Ctx, rid string, start time.Time, k apikey.Key, panicked any, err error) {
	if panicked != nil {
		s.Log.Error("panic serving request", "request_id", rid, "route", routeOf(c), "panic", fmt.Sprint(panicked), "stack", string(debug.Stack()))
		err = apperr.New(apperr.Internal, "internal error")
	}
	if err != nil {
		// writeProblem quotes the id; the fused path sets it only now.
		c.Locals(localRequestID, rid)
		if werr := s.writeProblem(c, err); werr != nil {
			s.Log.Error("write problem", "request_id", rid, "err", werr)
		}
	}
	status := c.Response().StatusCode()
	route := routeOf(c)
	end := time.Now()
	elapsed := end.Sub(start)
	s.Metrics.observeRequest(route, c.Method(), status, elapsed)
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	hasKey := k.ID != ""
	if h, ok := s.Log.Handler().(*accesslog.Handler); ok {
		// The process's logger (cmd/steward): the same line, written
		// without slog's per-record machinery.
		e := accesslog.Entry{Time: end, Level: level, RequestID: rid, Method: c.Method(), Route: route, Status: status,
			Duration: elapsed, BytesOut: len(c.Response().Body())}
		if hasKey {
			e.KeyID, e.Role = k.ID, k.Role
		}
		h.Write(c.UserContext(), &e)
		return
	}
	if !s.Log.Enabled(c.UserContext(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", rid),
		slog.String("method", c.Method()),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Int64("duration_us", elapsed.Microseconds()),
		slog.Int("bytes_out", len(c.Response().Body())),
	}
	if hasKey {
		attrs = append(attrs, slog.String("key_id", k.ID), slog.String("role", k.Role))
	}
	s.Log.LogAttrs(c.UserContext(), level, "http_request", attrs...)
}

// KeyAuthenticator resolves an API key's secret to the key (*apikey.Store).
type KeyAuthenticator interface {
	// Authenticate returns the key for a secret, or an unauthenticated
	// apperr error for an unknown, revoked or malformed one.
	Authenticate(ctx context.Context, secret string) (apikey.Key, error)
}

// Authorizer decides whether a role may perform an action on subjects of the
// given kinds (*policy.Engine, through policies/authz.rego).
type Authorizer interface {
	Authorize(ctx context.Context, role, action string, kinds []string) (policy.AuthzDecision, error)
}

// engineAuthorizer asks the policy engine the consent service holds now, so
// a reloaded bundle decides the next request.
type engineAuthorizer struct{ consent ConsentService }

func (a engineAuthorizer) Authorize(ctx context.Context, role, action string, kinds []string) (policy.AuthzDecision, error) {
	return a.consent.Engine().Authorize(ctx, role, action, kinds)
}

// authenticate requires a valid Bearer API key.
func (s *server) authenticate(c *fiber.Ctx) error {
	k, err := s.keyOf(c)
	if err != nil {
		return err
	}
	c.Locals(localKey, k)
	return c.Next()
}

// keyOf is the key whose secret the Authorization header carries.
func (s *server) keyOf(c *fiber.Ctx) (apikey.Key, error) {
	h := c.Get(fiber.HeaderAuthorization)
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return apikey.Key{}, apikey.ErrInvalid
	}
	return s.Keys.Authenticate(c.UserContext(), strings.TrimSpace(secret))
}

// authorize asks the authz policy whether the caller's role may do action on
// subjects of the given kinds.
func (s *server) authorize(c *fiber.Ctx, action string, kinds ...string) error {
	k, ok := c.Locals(localKey).(apikey.Key)
	if !ok {
		return apikey.ErrInvalid
	}
	return s.authorizeKey(c, k, action, kinds)
}

// authorizeKey is authorize for a key the caller holds.
func (s *server) authorizeKey(c *fiber.Ctx, k apikey.Key, action string, kinds []string) error {
	d, err := s.Authz.Authorize(c.UserContext(), k.Role, action, kinds)
	if err != nil {
		return fmt.Errorf("authorize: %w", err)
	}
	if !d.Allow {
		return apperr.New(apperr.Forbidden, "%s", d.Reason)
	}
	// A publishable key from a browser counts only on a product's origins.
	return s.checkOriginKey(c, k, "")
}

func callerKey(c *fiber.Ctx) apikey.Key {
	k, _ := c.Locals(localKey).(apikey.Key)
	return k
}

// errNotJSON is returned for a body sent with another content type.
var errNotJSON = apperr.New(apperr.UnsupportedMedia, "send the body as JSON with Content-Type: application/json")

func requireJSON(c *fiber.Ctx) error {
	ct := strings.ToLower(strings.TrimSpace(strings.SplitN(c.Get(fiber.HeaderContentType), ";", 2)[0]))
	if ct != fiber.MIMEApplicationJSON {
		return errNotJSON
	}
	return nil
}

// checkQuery refuses query parameters the endpoint does not know, so a typo
// ("purpse") is an error instead of a silently different question.
func checkQuery(c *fiber.Ctx, allowed ...string) error {
	var bad string
	c.Context().QueryArgs().VisitAll(func(k, _ []byte) {
		if bad != "" {
			return
		}
		for _, a := range allowed {
			if string(k) == a {
				return
			}
		}
		bad = string(k)
	})
	if bad != "" {
		if len(bad) > 40 {
			bad = bad[:40] + "…"
		}
		return apperr.Field(bad, "unknown query parameter; allowed: %s", strings.Join(allowed, ", "))
	}
	return nil
}
