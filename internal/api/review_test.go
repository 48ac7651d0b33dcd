package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
)

// TestReviewItems: the list takes review=open (and refuses anything else
// without asking the service), the detail carries each task's review items
// and the open count, and staff acknowledge a task's items with a note.
func TestReviewItems(t *testing.T) {
	t.Parallel()
	t.Run("list filter", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		var got dsar.Filter
		e.requests.ListFn = func(_ context.Context, f dsar.Filter) ([]dsar.Request, string, error) {
			got = f
			return []dsar.Request{{ID: reqID, ReviewItems: 2}}, "", nil
		}
		res := e.do(req{method: "GET", path: "/v1/privacy-requests?review=open", role: "auditor"})
		var page struct {
			Items []map[string]any `json:"items"`
		}
		res.ok(t, 200, &page)
		if got.Review != "open" || len(page.Items) != 1 || page.Items[0]["review_items"] != float64(2) {
			t.Errorf("filter %+v, page %+v", got, page)
		}
		e.do(req{method: "GET", path: "/v1/privacy-requests?review=closed", role: "auditor"}).problem(t, 400, "invalid_request")
		e.wantCalls(t, "Requests.List")
	})
	t.Run("detail", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		item := connectors.Review{Dataset: "addresses", Reference: "orders.address_id -> addresses.id", Reason: connectors.ReviewHeldByOthers, Records: 3, Holders: 5}
		e.requests.GetFn = func(_ context.Context, id string) (dsar.Detail, error) {
			return dsar.Detail{Request: dsar.Request{ID: id, ReviewItems: 1}, Tasks: []dsar.Task{{ID: taskID, Review: []connectors.Review{item}}}}, nil
		}
		var d struct {
			ReviewItems int `json:"review_items"`
			Tasks       []struct {
				Review []connectors.Review `json:"review"`
			} `json:"tasks"`
		}
		e.do(req{method: "GET", path: "/v1/privacy-requests/" + reqID, role: "auditor"}).ok(t, 200, &d)
		if d.ReviewItems != 1 || len(d.Tasks) != 1 || len(d.Tasks[0].Review) != 1 || d.Tasks[0].Review[0] != item {
			t.Errorf("detail %+v", d)
		}
	})
	t.Run("acknowledge", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		var got []string
		e.requests.AcknowledgeReviewFn = func(_ context.Context, id, task, actor, note string) (dsar.Request, error) {
			got = []string{id, task, actor, note}
			if strings.TrimSpace(note) == "" {
				return dsar.Request{}, apperr.Field("note", "required: what was decided about the records")
			}
			return dsar.Request{ID: id}, nil
		}
		path := "/v1/privacy-requests/" + reqID + "/tasks/" + taskID + "/acknowledge-review"
		var r map[string]any
		e.do(req{method: "POST", path: path, role: "reviewer", body: `{"note":"address stays: shared"}`}).ok(t, 200, &r)
		b, _ := json.Marshal(got)
		if want := `["` + reqID + `","` + taskID + `","key:` + keyIDFor("reviewer") + `","address stays: shared"]`; string(b) != want {
			t.Errorf("called with %s, want %s", b, want)
		}
		e.do(req{method: "POST", path: path, role: "reviewer", body: `{"note":""}`}).problem(t, 400, "invalid_request")
		e.do(req{method: "POST", path: path, role: "auditor", body: `{"note":"x"}`}).problem(t, 403, "forbidden")
		e.do(req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/tasks/7/acknowledge-review", role: "reviewer", body: `{"note":"x"}`}).problem(t, 404, "not_found")
		e.wantCalls(t, "Requests.AcknowledgeReview", "Requests.AcknowledgeReview")
	})
}
