package api_test

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/consent"
)

const (
	reqID  = "0192a0b4-6d2e-7c41-8a3f-5b9e1c2d3e4f"
	taskID = "0192a0b4-6d2e-7c41-8a3f-5b9e1c2d3e50"
	holdID = "0192a0b4-6d2e-7c41-8a3f-5b9e1c2d3e51"
)

// recordBody is a valid consent record body with one field replaced or
// removed (value "-").
func recordBody(field, value string) string {
	f := map[string]string{"subject": `"email:ann@example.com"`, "purpose": `"analytics"`, "state": `"granted"`,
		"source": `"web_banner"`, "notice_version": `"1.0"`}
	if value == "-" {
		delete(f, field)
	} else {
		f[field] = value
	}
	var parts []string
	for _, k := range []string{"subject", "purpose", "state", "source", "notice_version", "linked_subjects", "colour"} {
		if v, ok := f[k]; ok {
			parts = append(parts, `"`+k+`":`+v)
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func manyChecks(n int) string {
	items := make([]string, n)
	for i := range items {
		items[i] = `{"subject":"email:ann@example.com","purpose":"analytics"}`
	}
	return `{"checks":[` + strings.Join(items, ",") + `]}`
}

// TestRequestParsing sends requests the handlers must refuse before asking
// any service: each answers 4xx with a problem naming what is wrong, and
// no fake service is called. The caller is an admin, so authorization is
// never the reason.
func TestRequestParsing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		req    req
		status int
		code   string
		field  string // the field the problem names, when it names one
		detail string // a substring of the detail, when it matters
	}{
		// Bodies: malformed, unknown fields, wrong types, missing fields.
		{name: "malformed JSON is invalid", req: req{method: "POST", path: "/v1/consents", body: `{"subject":`},
			status: 400, code: "invalid_request", detail: "malformed JSON"},
		{name: "empty body is invalid", req: req{method: "POST", path: "/v1/consents", body: " ", contentType: "application/json"},
			status: 400, code: "invalid_request", detail: "request body is empty"},
		{name: "trailing data is invalid", req: req{method: "POST", path: "/v1/privacy-requests", body: `{"type":"access"} {"x":1}`},
			status: 400, code: "invalid_request", detail: "unexpected data after the JSON object"},
		{name: "array body is invalid", req: req{method: "POST", path: "/v1/consents", body: `[]`},
			status: 400, code: "invalid_request", detail: "body must be a JSON object"},
		{name: "unknown field is invalid", req: req{method: "POST", path: "/v1/consents", body: recordBody("colour", `"red"`)},
			status: 400, code: "invalid_request", field: "colour"},
		{name: "wrong type is invalid", req: req{method: "POST", path: "/v1/consents", body: recordBody("subject", `1`)},
			status: 400, code: "invalid_request", field: "subject", detail: "must be a string"},
		{name: "array field sent as string is invalid", req: req{method: "POST", path: "/v1/consents", body: recordBody("linked_subjects", `"email:b@example.com"`)},
			status: 400, code: "invalid_request", field: "linked_subjects"},
		{name: "missing subject is invalid", req: req{method: "POST", path: "/v1/consents", body: recordBody("subject", "-")},
			status: 400, code: "invalid_request", field: "subject"},
		{name: "missing purpose is invalid", req: req{method: "POST", path: "/v1/consents", body: recordBody("purpose", "-")},
			status: 400, code: "invalid_request", field: "purpose"},
		{name: "missing state is invalid", req: req{method: "POST", path: "/v1/consents", body: recordBody("state", "-")},
			status: 400, code: "invalid_request", field: "state"},
		{name: "missing source is invalid", req: req{method: "POST", path: "/v1/consents", body: recordBody("source", "-")},
			status: 400, code: "invalid_request", field: "source"},
		{name: "missing notice version is invalid", req: req{method: "POST", path: "/v1/consents", body: recordBody("notice_version", "-")},
			status: 400, code: "invalid_request", field: "notice_version"},
		{name: "malformed subject is invalid", req: req{method: "POST", path: "/v1/consents", body: recordBody("subject", `"ann"`)},
			status: 400, code: "invalid_request", field: "subject"},
		{name: "malformed linked subject is invalid", req: req{method: "POST", path: "/v1/consents", body: recordBody("linked_subjects", `["email:b@example.com","nope"]`)},
			status: 400, code: "invalid_request", field: "linked_subjects[1]"},
		{name: "body that is not JSON is unsupported", req: req{method: "POST", path: "/v1/consents", body: recordBody("", ""), contentType: "text/plain"},
			status: 415, code: "unsupported_media_type"},
		{name: "form body is unsupported", req: req{method: "POST", path: "/v1/legal-holds", body: "reason=x", contentType: "application/x-www-form-urlencoded"},
			status: 415, code: "unsupported_media_type"},
		{name: "empty batch is invalid", req: req{method: "POST", path: "/v1/consent/check", body: `{"checks":[]}`},
			status: 400, code: "invalid_request", field: "checks"},
		{name: "oversized batch is invalid", req: req{method: "POST", path: "/v1/consent/check", body: manyChecks(consent.MaxBatch + 1)},
			status: 400, code: "invalid_request", field: "checks", detail: "at most 1000"},
		{name: "batch item without purpose is invalid", req: req{method: "POST", path: "/v1/consent/check", body: `{"checks":[{"subject":"email:ann@example.com"}]}`},
			status: 400, code: "invalid_request", field: "checks[0].purpose"},
		{name: "batch item with impossible age is invalid", req: req{method: "POST", path: "/v1/consent/check", body: `{"checks":[{"subject":"email:ann@example.com","purpose":"analytics","age":151}]}`},
			status: 400, code: "invalid_request", field: "checks[0].age"},
		{name: "batch item with age as text is invalid", req: req{method: "POST", path: "/v1/consent/check", body: `{"checks":[{"subject":"email:ann@example.com","purpose":"analytics","age":"old"}]}`},
			status: 400, code: "invalid_request", field: "checks.age"},
		{name: "request without subject is invalid", req: req{method: "POST", path: "/v1/privacy-requests", body: `{"type":"access"}`},
			status: 400, code: "invalid_request", field: "subject"},
		{name: "request with agent as text is invalid", req: req{method: "POST", path: "/v1/privacy-requests", body: `{"type":"access","subject":"email:ann@example.com","agent":"me"}`},
			status: 400, code: "invalid_request", field: "agent"},
		{name: "deny with unknown field is invalid", req: req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/deny", body: `{"why":"x"}`},
			status: 400, code: "invalid_request", field: "why"},
		{name: "approve with a text body is unsupported", req: req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/approve", body: "ok", contentType: "text/plain"},
			status: 415, code: "unsupported_media_type"},
		{name: "verify with code as number is invalid", req: req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/verify", body: `{"code":123456}`},
			status: 400, code: "invalid_request", field: "code"},
		{name: "run with dry_run as text is invalid", req: req{method: "POST", path: "/v1/retention/runs", body: `{"dry_run":"yes"}`},
			status: 400, code: "invalid_request", field: "dry_run"},
		{name: "hold with unknown field is invalid", req: req{method: "POST", path: "/v1/legal-holds", body: `{"reason":"litigation","scope":"all"}`},
			status: 400, code: "invalid_request", field: "scope"},
		{name: "hold with malformed expiry is invalid", req: req{method: "POST", path: "/v1/legal-holds", body: `{"reason":"litigation","expires_at":"tomorrow"}`},
			status: 400, code: "invalid_request", detail: "malformed JSON"},
		{name: "lift with reason as number is invalid", req: req{method: "POST", path: "/v1/legal-holds/" + holdID + "/lift", body: `{"reason":7}`},
			status: 400, code: "invalid_request", field: "reason"},

		// Ids in paths.
		{name: "receipt of a non-UUID event is invalid", req: req{method: "GET", path: "/v1/consents/receipts/42"},
			status: 400, code: "invalid_request", field: "event_id"},
		{name: "non-UUID request is not found", req: req{method: "GET", path: "/v1/privacy-requests/not-a-uuid"},
			status: 404, code: "not_found", detail: "no such privacy request"},
		{name: "request id without dashes is not found", req: req{method: "GET", path: "/v1/privacy-requests/" + strings.ReplaceAll(reqID, "-", "")},
			status: 404, code: "not_found", detail: "no such privacy request"},
		{name: "report of a non-UUID request is not found", req: req{method: "GET", path: "/v1/privacy-requests/x/report"},
			status: 404, code: "not_found", detail: "no such privacy request"},
		{name: "identities of a non-UUID request are not found", req: req{method: "POST", path: "/v1/privacy-requests/x/identities"},
			status: 404, code: "not_found", detail: "no such privacy request"},
		{name: "approving a non-UUID request is not found", req: req{method: "POST", path: "/v1/privacy-requests/x/approve"},
			status: 404, code: "not_found", detail: "no such privacy request"},
		{name: "retrying a non-UUID task is not found", req: req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/tasks/7/retry"},
			status: 404, code: "not_found", detail: "no such task"},
		{name: "completing a non-UUID task is not found", req: req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/tasks/7/complete", body: `{"note":"done"}`},
			status: 404, code: "not_found", detail: "no such task"},
		{name: "verifying a non-UUID request is not found", req: req{method: "POST", path: "/v1/privacy-requests/x/verify", body: `{"code":"123456"}`},
			status: 404, code: "not_found", detail: "no such privacy request"},
		{name: "resending for a non-UUID request is not found", req: req{method: "POST", path: "/v1/privacy-requests/x/verification-code"},
			status: 404, code: "not_found", detail: "no such privacy request"},
		{name: "status of a non-UUID request is not found", req: req{method: "GET", path: "/v1/privacy-requests/x/status", header: map[string]string{"Steward-Status-Token": "t"}},
			status: 404, code: "not_found", detail: "no such privacy request"},
		{name: "status without a token is not found", req: req{method: "GET", path: "/v1/privacy-requests/" + reqID + "/status"},
			status: 404, code: "not_found", detail: "no such privacy request"},
		{name: "non-UUID retention run is not found", req: req{method: "GET", path: "/v1/retention/runs/latest"},
			status: 404, code: "not_found", detail: "no such retention run"},
		{name: "non-UUID hold is not found", req: req{method: "GET", path: "/v1/legal-holds/h1"},
			status: 404, code: "not_found", detail: "no such hold"},
		{name: "lifting a non-UUID hold is not found", req: req{method: "POST", path: "/v1/legal-holds/h1/lift", body: `{"reason":"settled"}`},
			status: 404, code: "not_found", detail: "no such hold"},

		// Query parameters.
		{name: "current consent without subject is invalid", req: req{method: "GET", path: "/v1/consents"},
			status: 400, code: "invalid_request", field: "subject"},
		{name: "misspelt query parameter is invalid", req: req{method: "GET", path: "/v1/consents?subject=email:ann@example.com&purpse=analytics"},
			status: 400, code: "invalid_request", field: "purpse"},
		{name: "history limit that is not a number is invalid", req: req{method: "GET", path: "/v1/consents/history?subject=email:ann@example.com&limit=ten"},
			status: 400, code: "invalid_request", field: "limit"},
		{name: "check without purpose is invalid", req: req{method: "GET", path: "/v1/consent/check?subject=email:ann@example.com"},
			status: 400, code: "invalid_request", field: "purpose"},
		{name: "check with impossible age is invalid", req: req{method: "GET", path: "/v1/consent/check?subject=email:ann@example.com&purpose=analytics&age=200"},
			status: 400, code: "invalid_request", field: "age"},
		{name: "check with malformed subject is invalid", req: req{method: "GET", path: "/v1/consent/check?subject=ann&purpose=analytics"},
			status: 400, code: "invalid_request", field: "subject"},
		{name: "overdue that is not a boolean is invalid", req: req{method: "GET", path: "/v1/privacy-requests?overdue=maybe"},
			status: 400, code: "invalid_request", field: "overdue"},
		{name: "due_before that is not a time is invalid", req: req{method: "GET", path: "/v1/privacy-requests?due_before=tomorrow"},
			status: 400, code: "invalid_request", field: "due_before"},
		{name: "request page limit of zero is invalid", req: req{method: "GET", path: "/v1/privacy-requests?limit=0"},
			status: 400, code: "invalid_request", field: "limit"},
		{name: "unknown request filter is invalid", req: req{method: "GET", path: "/v1/privacy-requests?subject=email:ann@example.com"},
			status: 400, code: "invalid_request", field: "subject"},
		{name: "run page limit over 100 is invalid", req: req{method: "GET", path: "/v1/retention/runs?limit=101"},
			status: 400, code: "invalid_request", field: "limit"},
		{name: "holds all that is not a boolean is invalid", req: req{method: "GET", path: "/v1/legal-holds?all=yes"},
			status: 400, code: "invalid_request", field: "all"},
		{name: "unknown plan parameter is invalid", req: req{method: "GET", path: "/v1/retention/plan?system=crm"},
			status: 400, code: "invalid_request", field: "system"},
		{name: "audit order that is neither asc nor desc is invalid", req: req{method: "GET", path: "/v1/admin/audit?order=sideways"},
			status: 400, code: "invalid_request", field: "order"},
		{name: "audit since that is not a time is invalid", req: req{method: "GET", path: "/v1/admin/audit?since=yesterday"},
			status: 400, code: "invalid_request", field: "since"},
		{name: "audit limit that is not a number is invalid", req: req{method: "GET", path: "/v1/admin/audit?limit=all"},
			status: 400, code: "invalid_request", field: "limit"},
		{name: "audit export format that is unknown is invalid", req: req{method: "GET", path: "/v1/admin/audit/export?format=xml"},
			status: 400, code: "invalid_request", field: "format"},
		{name: "audit verify with a parameter is invalid", req: req{method: "GET", path: "/v1/admin/audit/verify?deep=1"},
			status: 400, code: "invalid_request", field: "deep"},

		// Routes.
		{name: "unknown endpoint is not found", req: req{method: "GET", path: "/v1/nothing-here"},
			status: 404, code: "not_found", detail: "/openapi.json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := tc.req
			if r.role == "" && strings.HasPrefix(r.path, "/v1/") && !public(r.path) {
				r.role = "admin"
			}
			p := e.do(r).problem(t, tc.status, tc.code)
			if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field) {
				t.Errorf("problem errors = %+v, want one naming %q", p.Errors, tc.field)
			}
			if tc.field == "" && len(p.Errors) != 0 {
				t.Errorf("problem errors = %+v, want none", p.Errors)
			}
			if !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("problem detail = %q, want it to contain %q", p.Detail, tc.detail)
			}
			e.wantCalls(t)
		})
	}
}

// public reports whether a path is one of the endpoints that take no API
// key (the caller's own request, an export link).
func public(path string) bool {
	for _, suffix := range []string{"/verify", "/verification-code", "/status"} {
		if strings.HasPrefix(path, "/v1/privacy-requests/") && strings.HasSuffix(strings.SplitN(path, "?", 2)[0], suffix) {
			return true
		}
	}
	return false
}

// TestOversizeBody sends a body over the limit. The server refuses it while
// reading the request, before routing, so app.Test reports the refusal as an
// error; the request goes over an in-memory listener instead (no network).
func TestOversizeBody(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := serveRaw(t, e, "/v1/consents", `{"subject":"`+strings.Repeat("a", bodyLimit)+`"}`)
	p := res.problem(t, 413, "payload_too_large")
	if !strings.Contains(p.Detail, "larger than this server accepts") {
		t.Errorf("detail = %q", p.Detail)
	}
	e.wantCalls(t)
}

// serveRaw serves e's app on an in-memory listener and POSTs body to path
// through it: app.Test reports a refusal made while reading the request
// (before routing) as an error instead of the response.
func serveRaw(t *testing.T, e *env, path, body string) result {
	t.Helper()
	ln := fasthttputil.NewInmemoryListener()
	served := make(chan error, 1)
	go func() { served <- e.app.Listener(ln) }()
	t.Cleanup(func() {
		if err := e.app.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	conn, err := ln.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hr, err := http.NewRequest("POST", "http://steward.test"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+secretFor("admin"))
	// The server may answer from the headers and close before the body is
	// sent: write in the background, ignoring a closed connection, and read
	// the answer the server buffered (an http.Client would report the
	// broken write instead of the response).
	go func() { _ = hr.Write(conn) }()
	res, err := http.ReadResponse(bufio.NewReader(conn), hr)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return result{status: res.StatusCode, header: res.Header, body: b}
}

// TestPageBodyLimit: when the pages may post larger bodies (a form with an
// uploaded document), the server reads up to their limit, and the API's
// own routes still refuse more than the API's.
func TestPageBodyLimit(t *testing.T) {
	t.Parallel()
	var pageGot int
	e := newEnvWith(t, func(c *api.Config) { c.PageBodyLimit, c.PagePrefix = 4*bodyLimit, "/privacy/" }, func(d *api.Deps) {
		d.Pages = func(r fiber.Router) {
			r.Post("/privacy/upload", func(c *fiber.Ctx) error {
				pageGot = len(c.Body())
				return c.SendStatus(204)
			})
		}
	})
	big := `{"subject":"` + strings.Repeat("a", 2*bodyLimit) + `"}`
	// Just over the API's limit (the server closes the connection once it
	// has answered, so a much larger body would not finish sending).
	p := serveRaw(t, e, "/v1/consents", `{"subject":"`+strings.Repeat("a", bodyLimit)+`"}`).problem(t, 413, "payload_too_large")
	if !strings.Contains(p.Detail, "larger than this server accepts") {
		t.Errorf("detail = %q", p.Detail)
	}
	e.wantCalls(t)
	if res := e.do(req{method: "POST", path: "/privacy/upload", body: big}); res.status != 204 || pageGot != len(big) {
		t.Errorf("page upload: %d, got %d bytes of %d", res.status, pageGot, len(big))
	}
}
