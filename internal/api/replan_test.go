package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
)

// TestReplanAFailedRequest: staff re-plan a failed request after the data
// map was fixed; the note reaches the engine as the reason, the request
// comes back as the engine left it (verified, to be planned again), and
// the engine's refusal of a closed request is a 409 problem with its
// message. Roles without requests.manage are refused before the engine is
// asked.
func TestReplanAFailedRequest(t *testing.T) {
	t.Parallel()
	path := "/v1/privacy-requests/" + reqID + "/replan"
	t.Run("a reviewer re-plans", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		var gotID, gotActor, gotNote string
		e.requests.ReplanFn = func(_ context.Context, id, actor, note string, add []identity.Subject) (dsar.Request, error) {
			gotID, gotActor, gotNote = id, actor, note
			if len(add) != 0 {
				t.Errorf("added %v", add)
			}
			return dsar.Request{ID: id, Type: "erasure", Status: dsar.Verified}, nil
		}
		var r dsar.Request
		e.do(req{method: "POST", path: path, role: "reviewer", body: `{"note":"the map named addresses.street_name; the column is street"}`}).ok(t, 200, &r)
		if r.Status != dsar.Verified || gotID != reqID || !strings.HasPrefix(gotActor, "key:") || gotNote != "the map named addresses.street_name; the column is street" {
			t.Errorf("request %+v; engine asked with %q %q %q", r, gotID, gotActor, gotNote)
		}
		e.wantCalls(t, "Requests.Replan")
	})
	t.Run("a completed request is a conflict", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.requests.ReplanFn = func(context.Context, string, string, string, []identity.Subject) (dsar.Request, error) {
			return dsar.Request{}, apperr.New(apperr.Conflict, "a completed request cannot be planned again: it is closed (open a new request instead)")
		}
		p := e.do(req{method: "POST", path: path, role: "reviewer", body: `{"note":"again"}`}).problem(t, 409, "conflict")
		if !strings.Contains(p.Detail, "completed request cannot be planned again") {
			t.Errorf("detail %q", p.Detail)
		}
		e.wantCalls(t, "Requests.Replan")
	})
	for _, role := range []string{"auditor", "frontend"} {
		t.Run(role+" may not", func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.do(req{method: "POST", path: path, role: role, body: `{"note":"again"}`}).problem(t, 403, "forbidden")
			e.wantCalls(t)
		})
	}
}
