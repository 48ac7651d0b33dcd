package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/exports"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/retention"
)

// failing is one endpoint per service interface, with the fake made to
// return err.
type failing struct {
	name string
	req  req
	fail func(e *env, err error)
}

var failingEndpoints = []failing{
	{"consent", req{method: "GET", path: "/v1/consents?subject=email:ann@example.com", role: "auditor"}, func(e *env, err error) {
		e.consent.CurrentFn = func(context.Context, identity.Subject) ([]consent.PurposeState, error) { return nil, err }
	}},
	{"privacy requests", req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/deny", role: "reviewer", body: `{"reason":"x"}`}, func(e *env, err error) {
		e.requests.DenyFn = func(context.Context, string, string, string) (dsar.Request, error) { return dsar.Request{}, err }
	}},
	{"public request status", req{method: "GET", path: "/v1/privacy-requests/" + reqID + "/status", header: map[string]string{"Steward-Status-Token": "tok"}}, func(e *env, err error) {
		e.requests.StatusFn = func(context.Context, string, string) (dsar.PublicStatus, error) { return dsar.PublicStatus{}, err }
	}},
	{"retention", req{method: "GET", path: "/v1/legal-holds/" + holdID, role: "auditor"}, func(e *env, err error) {
		e.retention.GetHoldFn = func(context.Context, string) (retention.Hold, error) { return retention.Hold{}, err }
	}},
	{"exports", req{method: "GET", path: "/v1/exports/some-token"}, func(e *env, err error) {
		e.exports.OpenFn = func(context.Context, string) (exports.Package, io.ReadCloser, error) {
			return exports.Package{}, nil, err
		}
	}},
	{"audit", req{method: "GET", path: "/v1/admin/audit/verify", role: "auditor"}, func(e *env, err error) {
		e.audit.VerifyFn = func(context.Context) (audit.Result, error) { return audit.Result{}, err }
	}},
	{"creem webhook", req{method: "POST", path: "/v1/webhooks/creem", body: `{}`}, nil},
}

// withWebhook wires the Creem webhook receiver as a fake returning *err.
func withWebhook(err *error) func(*api.Deps) {
	return func(d *api.Deps) {
		d.CreemWebhook = func(context.Context, []byte, string) error { return *err }
	}
}

// TestErrorMapping: every application error code a service returns becomes
// the status of the one table, for every kind of service, with the
// service's message as the detail.
func TestErrorMapping(t *testing.T) {
	t.Parallel()
	// Written out here, not read from the server, so changing the table
	// is a visible decision.
	statuses := []struct {
		code   apperr.Code
		status int
	}{
		{apperr.Invalid, 400},
		{apperr.Unauthenticated, 401},
		{apperr.Forbidden, 403},
		{apperr.NotFound, 404},
		{apperr.MethodNotAllowed, 405},
		{apperr.Conflict, 409},
		{apperr.Gone, 410},
		{apperr.TooLarge, 413},
		{apperr.UnsupportedMedia, 415},
		{apperr.RateLimited, 429},
		{apperr.Unavailable, 503},
		{apperr.Internal, 500},
	}
	for _, ep := range failingEndpoints {
		for _, st := range statuses {
			t.Run(fmt.Sprintf("%s/%s is %d", ep.name, st.code, st.status), func(t *testing.T) {
				t.Parallel()
				appErr := error(apperr.New(st.code, "message for %s", st.code))
				e := newEnv(t, withWebhook(&appErr))
				if ep.fail != nil {
					ep.fail(e, appErr)
				}
				res := e.do(ep.req)
				p := res.problem(t, st.status, string(st.code))
				want := "message for " + string(st.code)
				if st.code == apperr.Internal {
					want = "internal error; quote the request id when reporting it"
				}
				if p.Detail != want {
					t.Errorf("detail = %q, want %q", p.Detail, want)
				}
				auth := res.header.Get("WWW-Authenticate")
				if (st.code == apperr.Unauthenticated) != (auth != "") {
					t.Errorf("WWW-Authenticate = %q for %s", auth, st.code)
				}
			})
		}
	}

	t.Run("field errors are listed", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.consent.CheckFn = func(context.Context, consent.CheckInput) (policy.Decision, error) {
			return policy.Decision{}, apperr.Field("purpose", "unknown purpose; see /v1/purposes")
		}
		p := e.do(req{method: "GET", path: "/v1/consent/check?subject=email:ann@example.com&purpose=nope", role: "frontend"}).
			problem(t, 400, "invalid_request")
		if len(p.Errors) != 1 || p.Errors[0] != (apperr.FieldError{Field: "purpose", Message: "unknown purpose; see /v1/purposes"}) {
			t.Errorf("errors = %+v", p.Errors)
		}
		e.wantCalls(t, "Consent.Check")
	})

	t.Run("wrapped application error keeps its code", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.requests.GetFn = func(context.Context, string) (dsar.Detail, error) {
			return dsar.Detail{}, fmt.Errorf("dsar: load: %w", apperr.New(apperr.Conflict, "request is locked"))
		}
		p := e.do(req{method: "GET", path: "/v1/privacy-requests/" + reqID, role: "auditor"}).problem(t, 409, "conflict")
		if p.Detail != "request is locked" {
			t.Errorf("detail = %q", p.Detail)
		}
	})
}

// secretError is what an unexpected failure might say: nothing of it may
// reach the caller.
const secretError = "pq: connection to 10.9.8.7:5432 refused while loading ann@example.com"

// TestUnexpectedError: a service error that is not an application error,
// and a panic, answer 500 with "internal error" and the request id only;
// the error itself goes to the log under that request id.
func TestUnexpectedError(t *testing.T) {
	t.Parallel()
	for _, ep := range failingEndpoints {
		t.Run(ep.name+"/error is a bare internal error", func(t *testing.T) {
			t.Parallel()
			err := fmt.Errorf("load: %w", fmt.Errorf("%s", secretError))
			e := newEnv(t, withWebhook(&err))
			if ep.fail != nil {
				ep.fail(e, err)
			}
			res := e.do(ep.req)
			p := res.problem(t, 500, "internal")
			wantHidden(t, res, p)
			wantLogged(t, e, p.RequestID, "request failed", secretError)
		})
	}

	t.Run("panic is a bare internal error", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.requests.GetFn = func(context.Context, string) (dsar.Detail, error) { panic(secretError) }
		res := e.do(req{method: "GET", path: "/v1/privacy-requests/" + reqID, role: "auditor"})
		p := res.problem(t, 500, "internal")
		wantHidden(t, res, p)
		wantLogged(t, e, p.RequestID, "panic serving request", secretError)
	})

	t.Run("caller's request id is kept", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.requests.GetFn = func(context.Context, string) (dsar.Detail, error) {
			return dsar.Detail{}, fmt.Errorf("%s", secretError)
		}
		r := req{method: "GET", path: "/v1/privacy-requests/" + reqID, role: "auditor", header: map[string]string{"X-Request-ID": "support-ticket-42"}}
		p := e.do(r).problem(t, 500, "internal")
		if p.RequestID != "support-ticket-42" {
			t.Errorf("request_id = %q, want the caller's", p.RequestID)
		}
		wantLogged(t, e, "support-ticket-42", "request failed", secretError)
	})
}

func wantHidden(t *testing.T, res result, p api.Problem) {
	t.Helper()
	if p.Detail != "internal error; quote the request id when reporting it" || p.Title != "Internal error" {
		t.Errorf("title %q, detail %q: want only the generic internal error", p.Title, p.Detail)
	}
	if len(p.Errors) != 0 {
		t.Errorf("errors = %+v, want none", p.Errors)
	}
	for _, leak := range []string{"10.9.8.7", "ann@example.com", "pq:", "load:"} {
		if strings.Contains(string(res.body), leak) {
			t.Errorf("response body leaks %q: %s", leak, res.body)
		}
	}
}

// wantLogged asserts one error record with msg and the request id carries
// the error text.
func wantLogged(t *testing.T, e *env, rid, msg, text string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(e.log.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if rec["msg"] == msg && rec["request_id"] == rid && rec["level"] == "ERROR" && strings.Contains(line, text) {
			return
		}
	}
	t.Errorf("no %q error logged for request %s with %q; log:\n%s", msg, rid, text, e.log.String())
}

// TestOptionalServices: a deployment without retention, export packages or
// a Creem secret answers their endpoints with 404, whether the dependency
// is a nil interface or a nil pointer of the concrete type (what a wiring
// that holds *retention.Service passes).
func TestOptionalServices(t *testing.T) {
	t.Parallel()
	retentionEndpoints := []req{
		{method: "GET", path: "/v1/retention/plan"},
		{method: "POST", path: "/v1/retention/runs"},
		{method: "GET", path: "/v1/retention/runs"},
		{method: "GET", path: "/v1/retention/runs/" + holdID},
		{method: "GET", path: "/v1/legal-holds"},
		{method: "POST", path: "/v1/legal-holds", body: `{"reason":"x"}`},
		{method: "GET", path: "/v1/legal-holds/" + holdID},
		{method: "POST", path: "/v1/legal-holds/" + holdID + "/lift", body: `{"reason":"x"}`},
	}
	tests := []struct {
		name   string
		edit   func(*api.Deps)
		reqs   []req
		detail string
	}{
		{"no retention is not found", func(d *api.Deps) { d.Retention = nil }, retentionEndpoints, "retention is not enabled on this deployment"},
		{"nil retention service is not found", func(d *api.Deps) { d.Retention = (*retention.Service)(nil) }, retentionEndpoints, "retention is not enabled on this deployment"},
		{"no export store is not found", func(d *api.Deps) { d.Exports = nil }, []req{{method: "GET", path: "/v1/exports/tok"}}, "this deployment keeps no export packages"},
		{"nil export store is not found", func(d *api.Deps) { d.Exports = (*exports.Store)(nil) }, []req{{method: "GET", path: "/v1/exports/tok"}}, "this deployment keeps no export packages"},
		{"no creem secret is not found", func(d *api.Deps) { d.CreemWebhook = nil }, []req{{method: "POST", path: "/v1/webhooks/creem", body: `{}`}}, "no Creem webhook secret is configured"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tc.edit)
			for _, r := range tc.reqs {
				r.role = "admin"
				p := e.do(r).problem(t, 404, "not_found")
				if p.Detail != tc.detail {
					t.Errorf("%s %s: detail = %q, want %q", r.method, r.path, p.Detail, tc.detail)
				}
			}
			e.wantCalls(t)
		})
	}
}
