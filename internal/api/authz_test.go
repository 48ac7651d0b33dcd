package api_test

import (
	"context"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/exports"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/receipt"
	"github.com/steward-privacy/steward/internal/retention"
)

// TestAuthentication: every keyed endpoint refuses a request without a
// valid Bearer key with 401, before any service is asked.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		authorization string
		wantSecret    string // the secret the key store is asked about; "" when it is not asked
	}{
		{name: "missing key is unauthenticated"},
		{name: "basic credentials are unauthenticated", authorization: "Basic YWRtaW46YWRtaW4=", wantSecret: ""},
		{name: "bearer without a secret is unauthenticated", authorization: "Bearer"},
		{name: "unknown key is unauthenticated", authorization: "Bearer stw_live_nope", wantSecret: "stw_live_nope"},
		{name: "lower-case scheme with unknown key is unauthenticated", authorization: "bearer  stw_live_nope ", wantSecret: "stw_live_nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			var asked []string
			e.keys.AuthenticateFn = func(_ context.Context, secret string) (apikey.Key, error) {
				asked = append(asked, secret)
				return apikey.Key{}, apikey.ErrInvalid
			}
			r := req{method: "GET", path: "/v1/consents?subject=email:ann@example.com"}
			if tc.authorization != "" {
				r.header = map[string]string{"Authorization": tc.authorization}
			}
			res := e.do(r)
			res.problem(t, 401, "unauthenticated")
			if got := res.header.Get("WWW-Authenticate"); got != `Bearer realm="steward"` {
				t.Errorf("WWW-Authenticate = %q", got)
			}
			var want []string
			if tc.wantSecret != "" {
				want = []string{tc.wantSecret}
			}
			if !reflect.DeepEqual(asked, want) {
				t.Errorf("key store asked about %q, want %q", asked, want)
			}
			e.wantCalls(t)
		})
	}

	t.Run("key store failure is an internal error", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.keys.AuthenticateFn = func(context.Context, string) (apikey.Key, error) {
			return apikey.Key{}, errors.New("keys: database at 10.1.2.3 unreachable")
		}
		res := e.do(req{method: "GET", path: "/v1/consents?subject=email:ann@example.com", role: "admin"})
		res.problem(t, 500, "internal")
		if strings.Contains(string(res.body), "10.1.2.3") {
			t.Errorf("response leaks the error: %s", res.body)
		}
		e.wantCalls(t)
	})
}

// authzCase is one keyed endpoint: a role the policy refuses, a role it
// permits, and what the permitted call must hand the service.
type authzCase struct {
	name    string
	req     req // role filled in per run
	denied  string
	reason  string // the policy's reason, in the 403's detail
	allowed string
	status  int      // the permitted call's status
	before  []string // calls made to decide authorization itself
	call    string   // the service call a permitted request makes
	edit    func(*api.Deps)
	// stub installs the fakes the permitted request needs and returns a
	// check of what they were given.
	stub func(e *env) func(t *testing.T)
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// TestAuthorization runs each keyed endpoint as a role the real authz
// policy refuses (403, the service not called) and as one it permits (the
// service called once, with the request as parsed).
func TestAuthorization(t *testing.T) {
	t.Parallel()
	decision := policy.Decision{Allow: true, Reason: "granted", Rule: "consent", Regime: "gdpr", LegalBasis: "consent", Revision: "rev1"}
	staffReq := dsar.Request{ID: reqID, Status: "approved"}
	tests := []authzCase{
		{
			name:   "record consent",
			req:    req{method: "POST", path: "/v1/consents", body: `{"subject":"email:ann@example.com","purpose":"analytics","state":"granted","source":"web_banner","notice_version":"1.0","jurisdiction":"DE","linked_subjects":["tg:123456"]}`, header: map[string]string{"Sec-GPC": "1"}},
			denied: "auditor", reason: "role auditor may not perform consent.record",
			allowed: "frontend", status: 201, call: "Consent.Record",
			stub: func(e *env) func(*testing.T) {
				var got consent.RecordInput
				e.consent.RecordFn = func(_ context.Context, in consent.RecordInput) (consent.Event, error) {
					got = in
					return consent.Event{ID: "ev1"}, nil
				}
				return func(t *testing.T) {
					eq(t, "subject", got.Subject.String(), "email:ann@example.com")
					eq(t, "purpose/state/source/notice", []string{got.Purpose, got.State, got.Source, got.NoticeVersion, got.Jurisdiction},
						[]string{"analytics", "granted", "web_banner", "1.0", "DE"})
					eq(t, "linked", len(got.Linked), 1)
					if len(got.Linked) == 1 {
						eq(t, "linked[0]", got.Linked[0].String(), "tg:123456")
					}
					eq(t, "GPC", got.GPC, true)
					eq(t, "key id", got.KeyID, keyIDFor("frontend"))
					// A backend's own user agent is not the person's.
					eq(t, "user agent", got.UserAgent, "")
				}
			},
		},
		{
			name:   "record consent with the publishable key",
			req:    req{method: "POST", path: "/v1/consents", body: `{"subject":"visitor:abcdefgh","purpose":"analytics","state":"denied","source":"web_banner","notice_version":"1.0"}`, header: map[string]string{"User-Agent": "TestBrowser/1.0"}},
			denied: "auditor", reason: "may not perform consent.record",
			allowed: "sdk", status: 201, call: "Consent.Record",
			stub: func(e *env) func(*testing.T) {
				var got consent.RecordInput
				e.consent.RecordFn = func(_ context.Context, in consent.RecordInput) (consent.Event, error) {
					got = in
					return consent.Event{ID: "ev1"}, nil
				}
				return func(t *testing.T) {
					eq(t, "subject", got.Subject.String(), "visitor:abcdefgh")
					eq(t, "state", got.State, "denied")
					// The browser is the person: its user agent is the proof.
					eq(t, "user agent", got.UserAgent, "TestBrowser/1.0")
					if got.IP == "" {
						t.Error("IP not taken from the connection")
					}
					eq(t, "key id", got.KeyID, keyIDFor("sdk"))
				}
			},
		},
		{
			name:   "publishable key on a known person",
			req:    req{method: "GET", path: "/v1/consents?subject=email:ann@example.com"},
			denied: "sdk", reason: "only act on visitor: subjects",
			allowed: "auditor", status: 200, call: "Consent.Current",
			stub: func(e *env) func(*testing.T) {
				var got identity.Subject
				e.consent.CurrentFn = func(_ context.Context, s identity.Subject) ([]consent.PurposeState, error) {
					got = s
					return nil, nil
				}
				return func(t *testing.T) { eq(t, "subject", got.String(), "email:ann@example.com") }
			},
		},
		{
			name:   "consent history",
			req:    req{method: "GET", path: "/v1/consents/history?subject=tg:123456&cursor=c1&limit=10"},
			denied: "nobody", reason: "unknown role",
			allowed: "reviewer", status: 200, call: "Consent.History",
			stub: func(e *env) func(*testing.T) {
				var s identity.Subject
				var cursor string
				var limit int
				e.consent.HistoryFn = func(_ context.Context, subj identity.Subject, c string, l int) ([]consent.Event, string, error) {
					s, cursor, limit = subj, c, l
					return nil, "", nil
				}
				return func(t *testing.T) {
					eq(t, "subject", s.String(), "tg:123456")
					eq(t, "cursor", cursor, "c1")
					eq(t, "limit", limit, 10)
				}
			},
		},
		{
			name:   "consent check",
			req:    req{method: "GET", path: "/v1/consent/check?subject=email:ann@example.com&purpose=analytics&jurisdiction=DE&age=15&product=web", header: map[string]string{"Sec-GPC": "1"}},
			denied: "auditor", reason: "may not perform consent.check",
			allowed: "frontend", status: 200, call: "Consent.Check",
			stub: func(e *env) func(*testing.T) {
				var got consent.CheckInput
				e.consent.CheckFn = func(_ context.Context, in consent.CheckInput) (policy.Decision, error) {
					got = in
					return decision, nil
				}
				return func(t *testing.T) {
					eq(t, "subject", got.Subject.String(), "email:ann@example.com")
					eq(t, "input", []any{got.Purpose, got.Jurisdiction, got.Product, got.Age, got.GPC}, []any{"analytics", "DE", "web", 15, true})
				}
			},
		},
		{
			name:   "consent batch check",
			req:    req{method: "POST", path: "/v1/consent/check", body: `{"checks":[{"subject":"email:ann@example.com","purpose":"analytics"},{"subject":"tg:123456","purpose":"marketing","age":30}]}`},
			denied: "auditor", reason: "may not perform consent.check",
			allowed: "reviewer", status: 200,
			before: []string{"Consent.ValidateCheck", "Consent.ValidateCheck"}, call: "Consent.CheckBatch",
			stub: func(e *env) func(*testing.T) {
				var got []consent.CheckInput
				e.consent.ValidateCheckFn = func(*consent.CheckInput, string) error { return nil }
				e.consent.CheckBatchFn = func(_ context.Context, ins []consent.CheckInput) ([]policy.Decision, error) {
					got = ins
					return []policy.Decision{decision, decision}, nil
				}
				return func(t *testing.T) {
					if len(got) != 2 {
						t.Fatalf("checks = %d, want 2", len(got))
					}
					eq(t, "check 0", []any{got[0].Subject.String(), got[0].Purpose, got[0].Age}, []any{"email:ann@example.com", "analytics", -1})
					eq(t, "check 1", []any{got[1].Subject.String(), got[1].Purpose, got[1].Age}, []any{"tg:123456", "marketing", 30})
				}
			},
		},
		{
			name:   "consent receipt",
			req:    req{method: "GET", path: "/v1/consents/receipts/" + reqID},
			denied: "sdk", reason: "only act on visitor: subjects",
			allowed: "auditor", status: 200,
			before: []string{"Consent.Event"}, call: "",
			edit: func(d *api.Deps) {
				s, err := receipt.NewSigner(make([]byte, 32))
				if err != nil {
					panic(err)
				}
				d.Receipts = s
			},
			stub: func(e *env) func(*testing.T) {
				var got string
				e.consent.EventFn = func(_ context.Context, id string) (consent.Event, error) {
					got = id
					return consent.Event{ID: id, SubjectKind: "email", Purpose: "analytics", State: "granted", Product: "web", RecordedAt: time.Unix(0, 0)}, nil
				}
				return func(t *testing.T) { eq(t, "event id", got, reqID) }
			},
		},
		{
			name:   "audit log",
			req:    req{method: "GET", path: "/v1/admin/audit?action=consent.recorded&order=asc&limit=5"},
			denied: "reviewer", reason: "may not perform audit.read",
			allowed: "auditor", status: 200, call: "Audit.List",
			stub: func(e *env) func(*testing.T) {
				var got audit.Filter
				e.audit.ListFn = func(_ context.Context, f audit.Filter) ([]audit.Entry, string, error) {
					got = f
					return nil, "", nil
				}
				return func(t *testing.T) {
					eq(t, "filter", []any{got.Action, got.Limit, got.Desc}, []any{"consent.recorded", 5, false})
				}
			},
		},
		{
			name:   "audit verification",
			req:    req{method: "GET", path: "/v1/admin/audit/verify"},
			denied: "frontend", reason: "may not perform audit.verify",
			allowed: "auditor", status: 200, call: "Audit.Verify",
			stub: func(e *env) func(*testing.T) {
				e.audit.VerifyFn = func(context.Context) (audit.Result, error) { return audit.Result{OK: true}, nil }
				return func(*testing.T) {}
			},
		},
		{
			name:   "privacy request intake by a frontend",
			req:    req{method: "POST", path: "/v1/privacy-requests", body: `{"type":"erasure","subject":"tg:123456","region":"DE","identity_asserted":true}`},
			denied: "auditor", reason: "may not perform requests.create",
			allowed: "frontend", status: 201, call: "Requests.Create",
			stub: func(e *env) func(*testing.T) {
				var got dsar.CreateInput
				e.requests.CreateFn = func(_ context.Context, in dsar.CreateInput) (dsar.Created, error) {
					got = in
					return dsar.Created{Request: dsar.Request{ID: reqID}, StatusToken: "tok"}, nil
				}
				return func(t *testing.T) {
					eq(t, "type/subject/region", []string{got.Type, got.Subject.String(), got.Region}, []string{"erasure", "tg:123456", "DE"})
					eq(t, "actor", got.Actor, "key:"+keyIDFor("frontend"))
					// The frontend may vouch for identities but is not staff.
					eq(t, "asserted/can assert/staff", []bool{got.IdentityAsserted, got.CanAssert, got.IsStaff}, []bool{true, true, false})
				}
			},
		},
		{
			name:   "privacy request intake by staff",
			req:    req{method: "POST", path: "/v1/privacy-requests", body: `{"type":"access","subject":"email:ann@example.com","identity_verified":true,"note":"by post"}`},
			denied: "sdk", reason: "may not perform requests.create",
			allowed: "reviewer", status: 201, call: "Requests.Create",
			stub: func(e *env) func(*testing.T) {
				var got dsar.CreateInput
				e.requests.CreateFn = func(_ context.Context, in dsar.CreateInput) (dsar.Created, error) {
					got = in
					return dsar.Created{Request: dsar.Request{ID: reqID}}, nil
				}
				return func(t *testing.T) {
					eq(t, "note", got.Note, "by post")
					eq(t, "verified/can assert/staff", []bool{got.IdentityVerified, got.CanAssert, got.IsStaff}, []bool{true, false, true})
				}
			},
		},
		{
			name:   "privacy request list",
			req:    req{method: "GET", path: "/v1/privacy-requests?status=open&overdue=true&due_before=2026-01-31T00:00:00Z&limit=20"},
			denied: "frontend", reason: "may not perform requests.read",
			allowed: "auditor", status: 200, call: "Requests.List",
			stub: func(e *env) func(*testing.T) {
				var got dsar.Filter
				e.requests.ListFn = func(_ context.Context, f dsar.Filter) ([]dsar.Request, string, error) {
					got = f
					return nil, "", nil
				}
				return func(t *testing.T) {
					eq(t, "status/overdue/limit", []any{got.Status, got.Overdue, got.Limit}, []any{"open", true, 20})
					if got.DueBy == nil || !got.DueBy.Equal(time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)) {
						t.Errorf("due by = %v", got.DueBy)
					}
				}
			},
		},
		{
			name:   "privacy request detail",
			req:    req{method: "GET", path: "/v1/privacy-requests/" + reqID},
			denied: "frontend", reason: "may not perform requests.read",
			allowed: "auditor", status: 200, call: "Requests.Get",
			stub: func(e *env) func(*testing.T) {
				var got string
				e.requests.GetFn = func(_ context.Context, id string) (dsar.Detail, error) {
					got = id
					return dsar.Detail{Request: dsar.Request{ID: id}}, nil
				}
				return func(t *testing.T) { eq(t, "id", got, reqID) }
			},
		},
		{
			name:   "privacy request report",
			req:    req{method: "GET", path: "/v1/privacy-requests/" + reqID + "/report"},
			denied: "sdk", reason: "may not perform requests.read",
			allowed: "reviewer", status: 200, call: "Requests.Report",
			stub: func(e *env) func(*testing.T) {
				var got string
				e.requests.ReportFn = func(_ context.Context, id string) (dsar.Report, error) {
					got = id
					return dsar.Report{RequestID: id}, nil
				}
				return func(t *testing.T) { eq(t, "id", got, reqID) }
			},
		},
		{
			name:   "staff package download",
			req:    req{method: "GET", path: "/v1/privacy-requests/" + reqID + "/package"},
			denied: "auditor", reason: "role auditor may not perform requests.download_package",
			allowed: "reviewer", status: 200, call: "Exports.OpenForStaff",
			stub: func(e *env) func(*testing.T) {
				var got []string
				e.exports.OpenForStaffFn = func(_ context.Context, id, actor string) (exports.Package, io.ReadCloser, error) {
					got = []string{id, actor}
					return exports.Package{ID: "p1", RequestID: id, Size: 2, SHA256: "ab"}, io.NopCloser(strings.NewReader("PK")), nil
				}
				return func(t *testing.T) { eq(t, "id/actor", got, []string{reqID, "key:" + keyIDFor("reviewer")}) }
			},
		},
		{
			name:   "staff package download by an admin",
			req:    req{method: "GET", path: "/v1/privacy-requests/" + reqID + "/package"},
			denied: "frontend", reason: "may not perform requests.download_package",
			allowed: "admin", status: 200, call: "Exports.OpenForStaff",
			stub: func(e *env) func(*testing.T) {
				e.exports.OpenForStaffFn = func(_ context.Context, id, _ string) (exports.Package, io.ReadCloser, error) {
					return exports.Package{ID: "p1", RequestID: id, Size: 2, SHA256: "ab"}, io.NopCloser(strings.NewReader("PK")), nil
				}
				return func(*testing.T) {}
			},
		},
		{
			name:   "re-plan with added identities",
			req:    req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/replan", body: `{"identities":["email:Ann.Other@Example.com","tg:123456"],"note":"the other address"}`},
			denied: "auditor", reason: "may not perform requests.manage",
			allowed: "reviewer", status: 200, call: "Requests.Replan",
			stub: func(e *env) func(*testing.T) {
				var got []string
				e.requests.ReplanFn = func(_ context.Context, id, actor, note string, add []identity.Subject) (dsar.Request, error) {
					got = []string{id, actor, note}
					for _, a := range add {
						got = append(got, a.String())
					}
					return dsar.Request{ID: id, Status: dsar.Verified}, nil
				}
				return func(t *testing.T) {
					eq(t, "id/actor/note/identities", got, []string{reqID, "key:" + keyIDFor("reviewer"), "the other address", "email:ann.other@example.com", "tg:123456"})
				}
			},
		},
		{
			name:   "identity reveal",
			req:    req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/identities"},
			denied: "auditor", reason: "may not perform requests.manage",
			allowed: "reviewer", status: 200, call: "Requests.RevealIdentities",
			stub: func(e *env) func(*testing.T) {
				var id, actor string
				e.requests.RevealIdentitiesFn = func(_ context.Context, i, a string) ([]string, error) {
					id, actor = i, a
					return []string{"tg:123456"}, nil
				}
				return func(t *testing.T) {
					eq(t, "id/actor", []string{id, actor}, []string{reqID, "key:" + keyIDFor("reviewer")})
				}
			},
		},
		{
			name:   "recipients of a request",
			req:    req{method: "GET", path: "/v1/privacy-requests/" + reqID + "/recipients"},
			denied: "frontend", reason: "may not perform requests.read",
			allowed: "auditor", status: 200, call: "Requests.Recipients",
			stub: func(e *env) func(*testing.T) {
				e.requests.RecipientsFn = func(_ context.Context, i string) ([]dsar.Recipient, error) {
					return []dsar.Recipient{{System: "sentry", Name: "Sentry", Method: "staff", Status: "pending"}}, nil
				}
				return func(*testing.T) {}
			},
		},
		{
			name:   "a recipient told by staff",
			req:    req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/recipients/sentry/told", body: `{"note":"emailed their DPO"}`},
			denied: "auditor", reason: "may not perform requests.manage",
			allowed: "reviewer", status: 200, call: "Requests.RecipientTold",
			stub: func(e *env) func(*testing.T) {
				var got []string
				e.requests.RecipientToldFn = func(_ context.Context, i, sys, a, n string) (dsar.Recipient, error) {
					got = []string{i, sys, a, n}
					return dsar.Recipient{System: sys, Status: "done"}, nil
				}
				return func(t *testing.T) {
					eq(t, "id/system/actor/note", got, []string{reqID, "sentry", "key:" + keyIDFor("reviewer"), "emailed their DPO"})
				}
			},
		},
		{
			name:   "agent authorization document",
			req:    req{method: "GET", path: "/v1/privacy-requests/" + reqID + "/documents/agent_authorization"},
			denied: "auditor", reason: "may not perform requests.manage",
			allowed: "reviewer", status: 200, call: "Requests.OpenDocument",
			stub: func(e *env) func(*testing.T) {
				var id, kind, actor string
				e.requests.OpenDocumentFn = func(_ context.Context, i, k, a string) (dsar.Document, error) {
					id, kind, actor = i, k, a
					return dsar.Document{ContentType: "application/pdf", Content: []byte("%PDF-1.4"), SHA256: "ab"}, nil
				}
				return func(t *testing.T) {
					eq(t, "id/kind/actor", []string{id, kind, actor}, []string{reqID, "agent_authorization", "key:" + keyIDFor("reviewer")})
				}
			},
		},
		{
			name:   "approval",
			req:    req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/approve", body: `{"note":"checked ID"}`},
			denied: "frontend", reason: "may not perform requests.manage",
			allowed: "reviewer", status: 200, call: "Requests.Approve",
			stub: func(e *env) func(*testing.T) {
				var got []string
				e.requests.ApproveFn = func(_ context.Context, id, actor, note string) (dsar.Request, error) {
					got = []string{id, actor, note}
					return staffReq, nil
				}
				return func(t *testing.T) {
					eq(t, "id/actor/note", got, []string{reqID, "key:" + keyIDFor("reviewer"), "checked ID"})
				}
			},
		},
		{
			name:   "approval without a body",
			req:    req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/approve"},
			denied: "auditor", reason: "may not perform requests.manage",
			allowed: "admin", status: 200, call: "Requests.Approve",
			stub: func(e *env) func(*testing.T) {
				var got []string
				e.requests.ApproveFn = func(_ context.Context, id, actor, note string) (dsar.Request, error) {
					got = []string{id, actor, note}
					return staffReq, nil
				}
				return func(t *testing.T) { eq(t, "id/actor/note", got, []string{reqID, "key:" + keyIDFor("admin"), ""}) }
			},
		},
		{
			name:   "denial",
			req:    req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/deny", body: `{"reason":"manifestly unfounded"}`},
			denied: "auditor", reason: "may not perform requests.manage",
			allowed: "reviewer", status: 200, call: "Requests.Deny",
			stub: func(e *env) func(*testing.T) {
				var got []string
				e.requests.DenyFn = func(_ context.Context, id, actor, reason string) (dsar.Request, error) {
					got = []string{id, actor, reason}
					return staffReq, nil
				}
				return func(t *testing.T) {
					eq(t, "id/actor/reason", got, []string{reqID, "key:" + keyIDFor("reviewer"), "manifestly unfounded"})
				}
			},
		},
		{
			name:   "extension",
			req:    req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/extend", body: `{"reason":"complex"}`},
			denied: "auditor", reason: "may not perform requests.manage",
			allowed: "reviewer", status: 200, call: "Requests.Extend",
			stub: func(e *env) func(*testing.T) {
				var got []string
				e.requests.ExtendFn = func(_ context.Context, id, actor, reason string) (dsar.Request, error) {
					got = []string{id, actor, reason}
					return staffReq, nil
				}
				return func(t *testing.T) {
					eq(t, "id/actor/reason", got, []string{reqID, "key:" + keyIDFor("reviewer"), "complex"})
				}
			},
		},
		{
			name:   "cancellation",
			req:    req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/cancel", body: `{"reason":"withdrawn"}`},
			denied: "frontend", reason: "may not perform requests.manage",
			allowed: "reviewer", status: 200, call: "Requests.Cancel",
			stub: func(e *env) func(*testing.T) {
				var got []string
				e.requests.CancelFn = func(_ context.Context, id, actor, reason string) (dsar.Request, error) {
					got = []string{id, actor, reason}
					return staffReq, nil
				}
				return func(t *testing.T) {
					eq(t, "id/actor/reason", got, []string{reqID, "key:" + keyIDFor("reviewer"), "withdrawn"})
				}
			},
		},
		{
			name:   "pause",
			req:    req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/pause", body: `{"reason":"awaiting ID"}`},
			denied: "auditor", reason: "may not perform requests.manage",
			allowed: "reviewer", status: 200, call: "Requests.Pause",
			stub: func(e *env) func(*testing.T) {
				var got []string
				e.requests.PauseFn = func(_ context.Context, id, actor, reason string) (dsar.Request, error) {
					got = []string{id, actor, reason}
					return staffReq, nil
				}
				return func(t *testing.T) {
					eq(t, "id/actor/reason", got, []string{reqID, "key:" + keyIDFor("reviewer"), "awaiting ID"})
				}
			},
		},
		{
			name:   "resumption",
			req:    req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/resume"},
			denied: "auditor", reason: "may not perform requests.manage",
			allowed: "reviewer", status: 200, call: "Requests.Resume",
			stub: func(e *env) func(*testing.T) {
				var got []string
				e.requests.ResumeFn = func(_ context.Context, id, actor string) (dsar.Request, error) {
					got = []string{id, actor}
					return staffReq, nil
				}
				return func(t *testing.T) { eq(t, "id/actor", got, []string{reqID, "key:" + keyIDFor("reviewer")}) }
			},
		},
		{
			name:   "planning retry",
			req:    req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/retry-planning"},
			denied: "frontend", reason: "may not perform requests.manage",
			allowed: "admin", status: 200, call: "Requests.RetryPlan",
			stub: func(e *env) func(*testing.T) {
				var got []string
				e.requests.RetryPlanFn = func(_ context.Context, id, actor string) (dsar.Request, error) {
					got = []string{id, actor}
					return staffReq, nil
				}
				return func(t *testing.T) { eq(t, "id/actor", got, []string{reqID, "key:" + keyIDFor("admin")}) }
			},
		},
		{
			name:   "task retry",
			req:    req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/tasks/" + taskID + "/retry"},
			denied: "auditor", reason: "may not perform requests.manage",
			allowed: "reviewer", status: 200, call: "Requests.RetryTask",
			stub: func(e *env) func(*testing.T) {
				var got []string
				e.requests.RetryTaskFn = func(_ context.Context, id, task, actor string) (dsar.Request, error) {
					got = []string{id, task, actor}
					return staffReq, nil
				}
				return func(t *testing.T) {
					eq(t, "id/task/actor", got, []string{reqID, taskID, "key:" + keyIDFor("reviewer")})
				}
			},
		},
		{
			name:   "manual task completion",
			req:    req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/tasks/" + taskID + "/complete", body: `{"note":"deleted by hand"}`},
			denied: "auditor", reason: "may not perform requests.manage",
			allowed: "reviewer", status: 200, call: "Requests.CompleteManualTask",
			stub: func(e *env) func(*testing.T) {
				var got []string
				e.requests.CompleteManualTaskFn = func(_ context.Context, id, task, actor, note string) (dsar.Request, error) {
					got = []string{id, task, actor, note}
					return staffReq, nil
				}
				return func(t *testing.T) {
					eq(t, "id/task/actor/note", got, []string{reqID, taskID, "key:" + keyIDFor("reviewer"), "deleted by hand"})
				}
			},
		},
		{
			name:   "review acknowledgement",
			req:    req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/tasks/" + taskID + "/acknowledge-review", body: `{"note":"the address stays"}`},
			denied: "auditor", reason: "may not perform requests.manage",
			allowed: "reviewer", status: 200, call: "Requests.AcknowledgeReview",
			stub: func(e *env) func(*testing.T) {
				var got []string
				e.requests.AcknowledgeReviewFn = func(_ context.Context, id, task, actor, note string) (dsar.Request, error) {
					got = []string{id, task, actor, note}
					return staffReq, nil
				}
				return func(t *testing.T) {
					eq(t, "id/task/actor/note", got, []string{reqID, taskID, "key:" + keyIDFor("reviewer"), "the address stays"})
				}
			},
		},
		{
			name:   "retention plan",
			req:    req{method: "GET", path: "/v1/retention/plan?dataset=crm.contacts"},
			denied: "frontend", reason: "may not perform retention.read",
			allowed: "auditor", status: 200, call: "Retention.Plan",
			stub: func(e *env) func(*testing.T) {
				var got string
				e.retention.PlanFn = func(_ context.Context, dataset string) ([]retention.PlanItem, error) {
					got = dataset
					return nil, nil
				}
				return func(t *testing.T) { eq(t, "dataset", got, "crm.contacts") }
			},
		},
		{
			name:   "retention run",
			req:    req{method: "POST", path: "/v1/retention/runs", body: `{"dry_run":true,"dataset":"crm.contacts"}`},
			denied: "reviewer", reason: "may not perform retention.run",
			allowed: "admin", status: 202, call: "Retention.Start",
			stub: func(e *env) func(*testing.T) {
				var got retention.RunOptions
				e.retention.StartFn = func(_ context.Context, o retention.RunOptions) (retention.Run, error) {
					got = o
					return retention.Run{ID: holdID}, nil
				}
				return func(t *testing.T) {
					eq(t, "options", got, retention.RunOptions{Trigger: retention.TriggerAPI, Actor: "key:" + keyIDFor("admin"), DryRun: true, Dataset: "crm.contacts"})
				}
			},
		},
		{
			name:   "retention run list",
			req:    req{method: "GET", path: "/v1/retention/runs?limit=7"},
			denied: "sdk", reason: "may not perform retention.read",
			allowed: "reviewer", status: 200, call: "Retention.ListRuns",
			stub: func(e *env) func(*testing.T) {
				var got int
				e.retention.ListRunsFn = func(_ context.Context, limit int) ([]retention.Run, error) {
					got = limit
					return nil, nil
				}
				return func(t *testing.T) { eq(t, "limit", got, 7) }
			},
		},
		{
			name:   "retention run detail",
			req:    req{method: "GET", path: "/v1/retention/runs/" + holdID},
			denied: "frontend", reason: "may not perform retention.read",
			allowed: "auditor", status: 200, call: "Retention.GetRun",
			stub: func(e *env) func(*testing.T) {
				var got string
				e.retention.GetRunFn = func(_ context.Context, id string) (retention.Run, error) {
					got = id
					return retention.Run{ID: id}, nil
				}
				return func(t *testing.T) { eq(t, "id", got, holdID) }
			},
		},
		{
			name:   "legal hold list",
			req:    req{method: "GET", path: "/v1/legal-holds?all=true"},
			denied: "frontend", reason: "may not perform retention.read",
			allowed: "auditor", status: 200, call: "Retention.ListHolds",
			stub: func(e *env) func(*testing.T) {
				got := false
				e.retention.ListHoldsFn = func(_ context.Context, all bool) ([]retention.Hold, error) {
					got = all
					return nil, nil
				}
				return func(t *testing.T) { eq(t, "all", got, true) }
			},
		},
		{
			name:   "legal hold",
			req:    req{method: "POST", path: "/v1/legal-holds", body: `{"dataset":"crm.contacts","reason":"litigation"}`},
			denied: "auditor", reason: "may not perform holds.manage",
			allowed: "reviewer", status: 201, call: "Retention.CreateHold",
			stub: func(e *env) func(*testing.T) {
				var got retention.HoldInput
				var actor string
				e.retention.CreateHoldFn = func(_ context.Context, in retention.HoldInput, a string) (retention.Hold, error) {
					got, actor = in, a
					return retention.Hold{ID: holdID}, nil
				}
				return func(t *testing.T) {
					eq(t, "input", got, retention.HoldInput{Dataset: "crm.contacts", Reason: "litigation"})
					eq(t, "actor", actor, "key:"+keyIDFor("reviewer"))
				}
			},
		},
		{
			name:   "legal hold detail",
			req:    req{method: "GET", path: "/v1/legal-holds/" + holdID},
			denied: "sdk", reason: "may not perform retention.read",
			allowed: "auditor", status: 200, call: "Retention.GetHold",
			stub: func(e *env) func(*testing.T) {
				var got string
				e.retention.GetHoldFn = func(_ context.Context, id string) (retention.Hold, error) {
					got = id
					return retention.Hold{ID: id}, nil
				}
				return func(t *testing.T) { eq(t, "id", got, holdID) }
			},
		},
		{
			name:   "legal hold lift",
			req:    req{method: "POST", path: "/v1/legal-holds/" + holdID + "/lift", body: `{"reason":"settled"}`},
			denied: "auditor", reason: "may not perform holds.manage",
			allowed: "reviewer", status: 200, call: "Retention.LiftHold",
			stub: func(e *env) func(*testing.T) {
				var got []string
				e.retention.LiftHoldFn = func(_ context.Context, id, reason, actor string) (retention.Hold, error) {
					got = []string{id, reason, actor}
					return retention.Hold{ID: id}, nil
				}
				return func(t *testing.T) {
					eq(t, "id/reason/actor", got, []string{holdID, "settled", "key:" + keyIDFor("reviewer")})
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name+"/"+tc.denied+" is forbidden", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, editOrNot(tc.edit))
			tc.stub(e)
			r := tc.req
			r.role = tc.denied
			p := e.do(r).problem(t, 403, "forbidden")
			if !strings.Contains(p.Detail, tc.reason) {
				t.Errorf("detail = %q, want it to contain %q", p.Detail, tc.reason)
			}
			e.wantCalls(t, tc.before...)
		})
		t.Run(tc.name+"/"+tc.allowed+" is served", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, editOrNot(tc.edit))
			check := tc.stub(e)
			r := tc.req
			r.role = tc.allowed
			e.do(r).ok(t, tc.status, nil)
			want := tc.before
			if tc.call != "" {
				want = append(append([]string(nil), tc.before...), tc.call)
			}
			e.wantCalls(t, want...)
			check(t)
		})
	}
}

func editOrNot(f func(*api.Deps)) func(*api.Deps) {
	if f == nil {
		return func(*api.Deps) {}
	}
	return f
}

// TestAuthorizer: the Authz dependency, when set, decides instead of the
// policy engine; it is asked with the caller's role, the action and the
// subject kinds, and its failure is an internal error that shows nothing.
func TestAuthorizer(t *testing.T) {
	t.Parallel()
	type ask struct {
		role, action string
		kinds        []string
	}
	tests := []struct {
		name   string
		answer policy.AuthzDecision
		err    error
		status int
		code   string
		calls  []string
	}{
		{name: "refusal is forbidden", answer: policy.AuthzDecision{Allow: false, Reason: "not on Sundays"}, status: 403, code: "forbidden"},
		{name: "failure is an internal error", err: errors.New("opa: eval failed near secret rule"), status: 500, code: "internal"},
		{name: "permission reaches the service", answer: policy.AuthzDecision{Allow: true, Reason: "allowed"}, status: 200, calls: []string{"Consent.Current"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var asked []ask
			fake := &Authorizer{AuthorizeFn: func(_ context.Context, role, action string, kinds []string) (policy.AuthzDecision, error) {
				asked = append(asked, ask{role, action, kinds})
				return tc.answer, tc.err
			}}
			// "ghost" is no role the real policy knows: only the fake can allow it.
			e := newEnv(t, func(d *api.Deps) { d.Authz = fake })
			e.consent.CurrentFn = func(context.Context, identity.Subject) ([]consent.PurposeState, error) { return nil, nil }
			res := e.do(req{method: "GET", path: "/v1/consents?subject=tg:123456", role: "ghost"})
			if tc.status == 200 {
				res.ok(t, 200, nil)
			} else {
				p := res.problem(t, tc.status, tc.code)
				if tc.answer.Reason != "" && p.Detail != tc.answer.Reason {
					t.Errorf("detail = %q, want the authorizer's reason %q", p.Detail, tc.answer.Reason)
				}
				if strings.Contains(string(res.body), "secret rule") {
					t.Errorf("response leaks the authorizer's error: %s", res.body)
				}
			}
			eq(t, "authorizer asked", asked, []ask{{"ghost", "consent.read", []string{"tg"}}})
			e.wantCalls(t, tc.calls...)
		})
	}
}

// TestPublicEndpoints: the endpoints whose credential is not an API key
// (the person's code or status token, a signed export link) serve without
// one, never ask the key store, and hand the service what was sent.
func TestPublicEndpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		req    req
		status int
		call   string
		stub   func(e *env) func(t *testing.T, res result)
	}{
		{
			name: "status with its token is served", status: 200, call: "Requests.Status",
			req: req{method: "GET", path: "/v1/privacy-requests/" + reqID + "/status", header: map[string]string{"Steward-Status-Token": "tok-1"}},
			stub: func(e *env) func(*testing.T, result) {
				var got []string
				e.requests.StatusFn = func(_ context.Context, id, token string) (dsar.PublicStatus, error) {
					got = []string{id, token}
					return dsar.PublicStatus{ID: id}, nil
				}
				return func(t *testing.T, _ result) { eq(t, "id/token", got, []string{reqID, "tok-1"}) }
			},
		},
		{
			name: "verification is served", status: 200, call: "Requests.Verify",
			req: req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/verify", body: `{"code":"123456"}`},
			stub: func(e *env) func(*testing.T, result) {
				var got []string
				e.requests.VerifyFn = func(_ context.Context, id, code string) (dsar.VerifyResult, error) {
					got = []string{id, code}
					return dsar.VerifyResult{Request: dsar.Request{ID: id}, StatusToken: "new"}, nil
				}
				return func(t *testing.T, _ result) { eq(t, "id/code", got, []string{reqID, "123456"}) }
			},
		},
		{
			name: "code resend is accepted", status: 202, call: "Requests.ResendCode",
			req: req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/verification-code"},
			stub: func(e *env) func(*testing.T, result) {
				var id, ip string
				e.requests.ResendCodeFn = func(_ context.Context, i, p string) error {
					id, ip = i, p
					return nil
				}
				return func(t *testing.T, _ result) {
					eq(t, "id", id, reqID)
					if ip == "" {
						t.Error("client IP not passed")
					}
				}
			},
		},
		{
			name: "export link streams the package", status: 200, call: "Exports.Open",
			req: req{method: "GET", path: "/v1/exports/link-token"},
			stub: func(e *env) func(*testing.T, result) {
				var got string
				const zip = "PK\x03\x04 not really a zip"
				e.exports.OpenFn = func(_ context.Context, token string) (exports.Package, io.ReadCloser, error) {
					got = token
					return exports.Package{RequestID: reqID, Size: int64(len(zip)), SHA256: "abc"}, io.NopCloser(strings.NewReader(zip)), nil
				}
				return func(t *testing.T, res result) {
					eq(t, "token", got, "link-token")
					eq(t, "body", string(res.body), zip)
					eq(t, "headers", []string{res.header.Get("Content-Type"), res.header.Get("Content-Disposition"), res.header.Get("Cache-Control"), res.header.Get("Digest")},
						[]string{"application/zip", `attachment; filename="personal-data-` + reqID + `.zip"`, "no-store", "sha-256=abc"})
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.keys.AuthenticateFn = func(context.Context, string) (apikey.Key, error) {
				t.Error("key store asked on a public endpoint")
				return apikey.Key{}, apikey.ErrInvalid
			}
			check := tc.stub(e)
			res := e.do(tc.req)
			res.ok(t, tc.status, nil)
			e.wantCalls(t, tc.call)
			check(t, res)
		})
	}
}
