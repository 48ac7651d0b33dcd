package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
)

// TestVerificationEndpoints: the second factors the web notice names ("We
// will verify identity (challenge login, recent invoice, signed instruction,
// etc.)") and the package review (Cal. Code Regs. tit. 11 §7062(c)): the
// person's calls are public (the token, or the status token with the
// invoice, are the credentials), staff's need requests.manage, and bad input
// is a problem that reaches no service.
func TestVerificationEndpoints(t *testing.T) {
	t.Parallel()
	base := "/v1/privacy-requests/" + reqID

	t.Run("staff actions need requests.manage", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, path, body, call string
			stub                   func(e *env, got *[]string)
		}{
			{"review the signed instruction", base + "/documents/agent_authorization/review", `{"note":"signature checked"}`, "Requests.ReviewDocument",
				func(e *env, got *[]string) {
					e.requests.ReviewDocumentFn = func(_ context.Context, id, kind, actor, note string) (dsar.Request, error) {
						*got = []string{id, kind, actor, note}
						return dsar.Request{ID: id, VerificationLevel: "high"}, nil
					}
				}},
			{"release a held package", base + "/release-package", `{"note":"signature checked"}`, "Requests.ReleasePackage",
				func(e *env, got *[]string) {
					e.requests.ReleasePackageFn = func(_ context.Context, id, actor, note string) (dsar.Request, error) {
						*got = []string{id, "agent_authorization", actor, note}
						return dsar.Request{ID: id, Status: dsar.Completed}, nil
					}
				}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t)
				var got []string
				tc.stub(e, &got)
				p := e.do(req{method: "POST", path: tc.path, body: tc.body, role: "auditor"}).problem(t, 403, "forbidden")
				if !strings.Contains(p.Detail, "requests.manage") {
					t.Errorf("detail %q", p.Detail)
				}
				e.do(req{method: "POST", path: tc.path, body: tc.body, role: "reviewer"}).ok(t, 200, nil)
				e.wantCalls(t, tc.call)
				eq(t, "id/kind/actor/note", got, []string{reqID, "agent_authorization", "key:" + keyIDFor("reviewer"), "signature checked"})
			})
		}
		e := newEnv(t)
		e.do(req{method: "POST", path: base + "/documents/passport/review", body: `{"note":"x"}`, role: "reviewer"}).problem(t, 404, "not_found")
		e.wantCalls(t)
	})

	t.Run("challenge login is public", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		var got []string
		e.requests.ChallengeLoginFn = func(_ context.Context, id, token string) (dsar.VerifyResult, error) {
			got = []string{id, token}
			return dsar.VerifyResult{Request: dsar.Request{ID: id, Status: dsar.Verified}, StatusToken: "sts_new"}, nil
		}
		var out struct {
			StatusToken string `json:"status_token"`
		}
		e.do(req{method: "POST", path: base + "/verification/challenge-login", body: `{"token":"a.b.c"}`}).ok(t, 200, &out)
		eq(t, "id/token", got, []string{reqID, "a.b.c"})
		eq(t, "status token", out.StatusToken, "sts_new")
		e.requests.ChallengeLoginFn = func(context.Context, string, string) (dsar.VerifyResult, error) {
			return dsar.VerifyResult{}, apperr.Field("token", "the token's signature does not verify")
		}
		e.do(req{method: "POST", path: base + "/verification/challenge-login", body: `{"token":"a.b.x"}`}).problem(t, 400, "invalid_request")
		e.do(req{method: "POST", path: base + "/verification/challenge-login", body: `{"token":"a.b.c","extra":1}`}).problem(t, 400, "invalid_request")
	})

	t.Run("recent invoice needs the status token", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		var got []string
		e.requests.VerifyInvoiceFn = func(_ context.Context, id, token, ref string) (dsar.Request, error) {
			got = []string{id, token, ref}
			return dsar.Request{ID: id, Status: dsar.Verified, VerificationLevel: "high"}, nil
		}
		path := base + "/verification/invoice"
		tok := map[string]string{"Steward-Status-Token": "sts_1"}
		e.do(req{method: "POST", path: path, body: `{"reference":"in_123"}`}).problem(t, 404, "not_found")
		e.do(req{method: "POST", path: path, body: `{"reference":" "}`, header: tok}).problem(t, 400, "invalid_request")
		e.do(req{method: "POST", path: "/v1/privacy-requests/nope/verification/invoice", body: `{"reference":"in_1"}`, header: tok}).problem(t, 404, "not_found")
		e.wantCalls(t)
		e.do(req{method: "POST", path: path, body: `{"reference":"in_123"}`, header: tok}).ok(t, 200, nil)
		eq(t, "id/token/ref", got, []string{reqID, "sts_1", "in_123"})
	})

	t.Run("intake passes the level and the token", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		var got dsar.CreateInput
		e.requests.CreateFn = func(_ context.Context, in dsar.CreateInput) (dsar.Created, error) {
			got = in
			return dsar.Created{Request: dsar.Request{ID: reqID}}, nil
		}
		e.do(req{method: "POST", path: "/v1/privacy-requests", role: "frontend",
			body: `{"type":"access","subject":"email:ann@example.com","region":"US-CA","channel":"web","challenge_login_token":"a.b.c"}`}).ok(t, 201, nil)
		eq(t, "token", got.ChallengeLoginToken, "a.b.c")
		e.do(req{method: "POST", path: "/v1/privacy-requests", role: "reviewer",
			body: `{"type":"access","subject":"email:ann@example.com","region":"US-CA","channel":"staff","note":"letter","identity_verified":true,"verification_level":"high"}`}).ok(t, 201, nil)
		eq(t, "level", got.VerificationLevel, "high")
	})
}
