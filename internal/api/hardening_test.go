package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/retention"
)

// TestTextIsRefusedWithNULOrInvalidUTF8: free text a store could not keep
// as sent (PostgreSQL refuses NUL; encoding/json turns invalid UTF-8 into
// U+FFFD) is a 400 naming the field, before any service is asked.
func TestTextIsRefusedWithNULOrInvalidUTF8(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		req   req
		field string
	}{
		{"NUL in a hold's reason", req{method: "POST", path: "/v1/legal-holds", body: `{"reason":"litigation\u0000x"}`}, "reason"},
		{"NUL in a lift's reason", req{method: "POST", path: "/v1/legal-holds/" + holdID + "/lift", body: `{"reason":"a\u0000"}`}, "reason"},
		{"invalid UTF-8 in a denial's reason", req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/deny", body: "{\"reason\":\"bad \xff\xfe\"}"}, "reason"},
		{"lone surrogate in an approval's note", req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/approve", body: `{"note":"x\udc00y"}`}, "note"},
		{"NUL in an intake note", req{method: "POST", path: "/v1/privacy-requests", body: `{"type":"access","subject":"email:ann@example.com","note":"\u0000"}`}, "note"},
		{"invalid UTF-8 in a rectification's changes", req{method: "POST", path: "/v1/privacy-requests", body: "{\"type\":\"rectification\",\"subject\":\"email:ann@example.com\",\"changes\":{\"name\":\"\xc3\"}}"}, "changes"},
		{"NUL in a replan note", req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/replan", body: `{"note":"n\u0000"}`}, "note"},
		{"NUL in a completed task's note", req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/tasks/" + taskID + "/complete", body: `{"note":"\u0000"}`}, "note"},
		{"NUL in a consent subject", req{method: "POST", path: "/v1/consents", body: recordBody("subject", `"email:ann\u0000@example.com"`)}, "subject"},
		{"NUL in a query value", req{method: "GET", path: "/v1/consents?subject=email:ann%00@example.com"}, "subject"},
		{"invalid UTF-8 in a query value", req{method: "GET", path: "/v1/privacy-requests?product=%ff"}, "product"},
	}
	for _, tc := range tests {
		t.Run(tc.name+" is invalid", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			tc.req.role = "admin"
			p := e.do(tc.req).problem(t, 400, "invalid_request")
			if len(p.Errors) != 1 || p.Errors[0].Field != tc.field {
				t.Errorf("errors = %+v, want one naming %q", p.Errors, tc.field)
			}
			e.wantCalls(t)
		})
	}

	t.Run("a replacement character the caller sent is kept", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		var got string
		e.requests.DenyFn = func(_ context.Context, _, _, reason string) (dsar.Request, error) {
			got = reason
			return dsar.Request{}, nil
		}
		e.do(req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/deny", role: "admin", body: `{"reason":"caf\ufffd é"}`}).ok(t, 200, nil)
		if got != "caf\ufffd é" {
			t.Errorf("reason = %q", got)
		}
	})
}

// TestIDsReachServicesCanonical: a UUID in a path is accepted in either
// case and always handed on lower-case (the sealing of identities binds
// the id as written: an upper-case id once failed to open them, a 500);
// other spellings name nothing.
func TestIDsReachServicesCanonical(t *testing.T) {
	t.Parallel()
	upper := strings.ToUpper(reqID)
	var got []string
	seen := func(ids ...string) { got = append(got, ids...) }
	e := newEnv(t)
	e.requests.RevealIdentitiesFn = func(_ context.Context, id, _ string) ([]string, error) { seen(id); return nil, nil }
	e.requests.GetFn = func(_ context.Context, id string) (dsar.Detail, error) { seen(id); return dsar.Detail{}, nil }
	e.requests.StatusFn = func(_ context.Context, id, _ string) (dsar.PublicStatus, error) {
		seen(id)
		return dsar.PublicStatus{}, nil
	}
	e.requests.RetryTaskFn = func(_ context.Context, id, task, _ string) (dsar.Request, error) {
		seen(id, task)
		return dsar.Request{}, nil
	}
	e.retention.GetHoldFn = func(_ context.Context, id string) (retention.Hold, error) { seen(id); return retention.Hold{}, nil }
	e.retention.GetRunFn = func(_ context.Context, id string) (retention.Run, error) { seen(id); return retention.Run{}, nil }
	e.consent.EventFn = func(_ context.Context, id string) (consent.Event, error) {
		seen(id)
		return consent.Event{}, errors.New("stop here")
	}
	for _, r := range []req{
		{method: "POST", path: "/v1/privacy-requests/" + upper + "/identities", role: "admin"},
		{method: "GET", path: "/v1/privacy-requests/" + upper, role: "admin"},
		{method: "GET", path: "/v1/privacy-requests/" + upper + "/status", header: map[string]string{api.StatusTokenHeader: "tok"}},
		{method: "POST", path: "/v1/privacy-requests/" + upper + "/tasks/" + strings.ToUpper(taskID) + "/retry", role: "admin"},
		{method: "GET", path: "/v1/legal-holds/" + strings.ToUpper(holdID), role: "admin"},
		{method: "GET", path: "/v1/retention/runs/" + strings.ToUpper(holdID), role: "admin"},
		{method: "GET", path: "/v1/consents/receipts/" + upper, role: "admin"},
	} {
		e.do(r)
	}
	want := []string{reqID, reqID, reqID, reqID, taskID, holdID, holdID, reqID}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ids handed on = %q, want %q", got, want)
	}
	for _, id := range []string{"{" + reqID + "}", "urn:uuid:" + reqID, strings.ReplaceAll(reqID, "-", "")} {
		e := newEnv(t)
		e.do(req{method: "GET", path: "/v1/legal-holds/" + id, role: "admin"}).problem(t, 404, "not_found")
		e.do(req{method: "POST", path: "/v1/privacy-requests/" + id + "/identities", role: "admin"}).problem(t, 404, "not_found")
		e.wantCalls(t)
	}
}

// TestRetentionRunMustStateDryRun: a run deletes data for real unless it
// is a dry run, so the body must say which; nothing, null or {} is
// refused naming dry_run and starts nothing.
func TestRetentionRunMustStateDryRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, body, ct string }{
		{"no body", "", ""},
		{"null", "null", "application/json"},
		{"an empty object", "{}", "application/json"},
		{"only a dataset", `{"dataset":"crm.contacts"}`, "application/json"},
		{"dry_run null", `{"dry_run":null}`, "application/json"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := req{method: "POST", path: "/v1/retention/runs", role: "admin", body: tc.body, contentType: tc.ct}
			res := e.do(r)
			if tc.body == "" {
				res.problem(t, 415, "unsupported_media_type")
			} else if p := res.problem(t, 400, "invalid_request"); len(p.Errors) != 1 || p.Errors[0].Field != "dry_run" {
				t.Errorf("errors = %+v, want one naming dry_run", p.Errors)
			}
			e.wantCalls(t)
		})
	}
	for _, dry := range []bool{true, false} {
		t.Run(fmt.Sprintf("dry_run %v is started as stated", dry), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			var got *bool
			e.retention.StartFn = func(_ context.Context, o retention.RunOptions) (retention.Run, error) {
				got = &o.DryRun
				return retention.Run{ID: holdID}, nil
			}
			e.do(req{method: "POST", path: "/v1/retention/runs", role: "admin", body: fmt.Sprintf(`{"dry_run":%v}`, dry)}).ok(t, 202, nil)
			if got == nil || *got != dry {
				t.Errorf("started with dry_run %v, want %v", got, dry)
			}
		})
	}
}

// TestDatabaseUnavailableIs503: the driver's ways of saying PostgreSQL is
// away answer 503 with Retry-After, not 500 "internal"; the readiness
// probe fails the same way.
func TestDatabaseUnavailableIs503(t *testing.T) {
	t.Parallel()
	causes := map[string]error{
		"connect refused":  &pgconn.ConnectError{},
		"conn closed":      fmt.Errorf("dsar: get: %w", pgconn.ErrConnClosed),
		"admin shutdown":   fmt.Errorf("get: %w", &pgconn.PgError{Code: "57P01"}),
		"cannot connect":   &pgconn.PgError{Code: "57P03"},
		"connection class": &pgconn.PgError{Code: "08006"},
		"net error":        fmt.Errorf("query: %w", &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}),
		"cut mid-answer":   fmt.Errorf("scan: %w", io.ErrUnexpectedEOF),
		"acquire deadline": fmt.Errorf("acquire: %w", context.DeadlineExceeded),
	}
	for name, cause := range causes {
		t.Run(name+" is 503", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.requests.GetFn = func(context.Context, string) (dsar.Detail, error) { return dsar.Detail{}, cause }
			res := e.do(req{method: "GET", path: "/v1/privacy-requests/" + reqID, role: "admin"})
			res.problem(t, 503, "unavailable")
			if res.header.Get("Retry-After") == "" {
				t.Error("no Retry-After")
			}
		})
	}
	t.Run("a key lookup that cannot reach the database is 503", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.keys.AuthenticateFn = func(context.Context, string) (apikey.Key, error) {
			return apikey.Key{}, fmt.Errorf("authenticate: %w", &pgconn.ConnectError{})
		}
		res := e.do(req{method: "GET", path: "/v1/legal-holds", role: "admin"})
		res.problem(t, 503, "unavailable")
	})
	t.Run("a constraint violation is still 500", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.requests.GetFn = func(context.Context, string) (dsar.Detail, error) {
			return dsar.Detail{}, &pgconn.PgError{Code: "23505"}
		}
		e.do(req{method: "GET", path: "/v1/privacy-requests/" + reqID, role: "admin"}).problem(t, 500, "internal")
	})
	t.Run("readyz fails with Retry-After", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(d *api.Deps) {
			d.Ready = func(context.Context) error { return &pgconn.ConnectError{} }
		})
		res := e.do(req{method: "GET", path: "/readyz"})
		res.problem(t, 503, "unavailable")
		if res.header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
	})
}

// cacheable are the routes that may be cached, with their own
// Cache-Control on success: public texts and keys, the SDK's assets, and
// the consent banner (revalidated). Everything else under /v1 is no-store.
var cacheable = map[string]bool{
	"/v1/consents/receipts/jwks.json": true,
	"/v1/notices/:product":            true,
	"/v1/notices/:product/:version":   true,
	"/v1/consent/banner":              true,
}

// TestEveryRouteSendsSafeHeaders walks the router's own route list: every
// answer (success or problem) carries nosniff, and every /v1 answer is
// no-store unless the route is one of the cacheable ones.
func TestEveryRouteSendsSafeHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	n := 0
	for _, rt := range e.app.GetRoutes(true) {
		if rt.Method == "HEAD" || rt.Method == "CONNECT" || rt.Method == "TRACE" || rt.Method == "OPTIONS" {
			continue
		}
		path := rt.Path
		for _, p := range rt.Params {
			v := reqID
			if p == "product" || p == "version" || p == "kind" || p == "system" || p == "token" || p == "hash" {
				v = "x"
			}
			path = strings.Replace(path, ":"+p, v, 1)
		}
		r := req{method: rt.Method, path: path, role: "admin"}
		if rt.Method == "POST" {
			r.body = "{}"
		}
		res := e.do(r)
		n++
		if got := res.header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s (%d): X-Content-Type-Options = %q", rt.Method, rt.Path, res.status, got)
		}
		cc := res.header.Get("Cache-Control")
		switch {
		case !strings.HasPrefix(rt.Path, "/v1/"):
		case cacheable[rt.Path] && res.status < 300:
			if cc == "" || cc == "no-store" {
				t.Errorf("%s %s (%d): Cache-Control = %q, want its own", rt.Method, rt.Path, res.status, cc)
			}
		case cc != "no-store":
			t.Errorf("%s %s (%d): Cache-Control = %q, want no-store", rt.Method, rt.Path, res.status, cc)
		}
	}
	if n < 50 {
		t.Errorf("only %d routes checked", n)
	}
	// Unmatched paths and problems from before routing too.
	for _, p := range []string{"/v1/nothing", "/nothing"} {
		res := e.do(req{method: "GET", path: p})
		if res.header.Get("X-Content-Type-Options") != "nosniff" || res.header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: headers %v", p, res.header)
		}
	}
}

// TestPersonalDataIsNotStored: the answers the review found cacheable
// (identities revealed, a person's status with its download link, consent
// history and state, a request's detail) are no-store and nosniff when
// they succeed.
func TestPersonalDataIsNotStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.requests.RevealIdentitiesFn = func(context.Context, string, string) ([]string, error) { return []string{"email:ann@example.com"}, nil }
	e.requests.StatusFn = func(context.Context, string, string) (dsar.PublicStatus, error) { return dsar.PublicStatus{}, nil }
	e.requests.GetFn = func(context.Context, string) (dsar.Detail, error) { return dsar.Detail{}, nil }
	e.consent.HistoryFn = func(context.Context, identity.Subject, string, int) ([]consent.Event, string, error) {
		return nil, "", nil
	}
	e.consent.CurrentFn = func(context.Context, identity.Subject) ([]consent.PurposeState, error) { return nil, nil }
	for _, r := range []req{
		{method: "POST", path: "/v1/privacy-requests/" + reqID + "/identities", role: "admin"},
		{method: "GET", path: "/v1/privacy-requests/" + reqID + "/status", header: map[string]string{api.StatusTokenHeader: "tok"}},
		{method: "GET", path: "/v1/privacy-requests/" + reqID, role: "admin"},
		{method: "GET", path: "/v1/consents/history?subject=email:ann@example.com", role: "admin"},
		{method: "GET", path: "/v1/consents?subject=email:ann@example.com", role: "admin"},
	} {
		res := e.do(r)
		res.ok(t, 200, nil)
		if res.header.Get("Cache-Control") != "no-store" || res.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: Cache-Control %q, X-Content-Type-Options %q", r.method, r.path,
				res.header.Get("Cache-Control"), res.header.Get("X-Content-Type-Options"))
		}
	}
}
