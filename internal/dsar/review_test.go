package dsar_test

import (
	"context"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/recordstore"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/policy"
)

// reviewer is the record store, but its Access and Erase of one dataset
// also report records they left alone because others hold them too, as a
// relational connector does for a shared address.
type reviewer struct {
	connectors.Connector
	system, dataset string
}

// reviewRegistry puts every system of the data map behind a reviewer that
// reports review items for app_db's users.
func reviewRegistry(store *recordstore.Store, e *policy.Engine) connectors.Registry {
	reg := connectors.Registry{}
	for sid, c := range allSystems(store, e) {
		reg[sid] = &reviewer{Connector: c, system: "app_db", dataset: "users"}
	}
	return reg
}

var sharedAddress = connectors.Review{Dataset: "addresses", Reference: "users.address_id -> addresses.id",
	Reason: connectors.ReviewHeldByOthers, Records: 2, Holders: 3}

func (v *reviewer) Access(ctx context.Context, p connectors.AccessParams, sink connectors.Sink) (connectors.AccessResult, error) {
	res, err := v.Connector.Access(ctx, p, sink)
	if err == nil && p.System == v.system && p.Dataset == v.dataset {
		res.Review = append(res.Review, sharedAddress)
	}
	return res, err
}

func (v *reviewer) Erase(ctx context.Context, p connectors.EraseParams) (connectors.EraseResult, error) {
	res, err := v.Connector.Erase(ctx, p)
	// The record store erases but does not re-read; say it did, so the
	// report's completeness shows review items do not affect it.
	res.Verified = err == nil
	if err == nil && p.System == v.system && p.Dataset == v.dataset {
		// An item with no records says nothing and is dropped.
		res.Review = append(res.Review, sharedAddress, connectors.Review{Dataset: "x", Reason: connectors.ReviewShared})
	}
	return res, err
}

// TestReviewItemsReachStaff: a connector's review items are kept with the
// task, shown on the request and counted on the list (review=open), put
// in the timeline once per task and audited with counts only, reported,
// and told to the person in the erasure's completion email; the request
// completes all the same. Staff acknowledge them with a note, audited.
func TestReviewItemsReachStaff(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{registry: reviewRegistry})
	ctx := context.Background()
	r.seedWebUser("rev@example.com", "u-rev", "")

	c, err := r.svc.Create(ctx, webRequest("erasure", "rev@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Verify(ctx, c.Request.ID, r.code("rev@example.com")); err != nil {
		t.Fatal(err)
	}
	id := c.Request.ID
	if d := r.wait(id, dsar.AwaitingApproval, dsar.InProgress); d.Status == dsar.AwaitingApproval {
		if _, err := r.svc.Approve(ctx, id, "key:reviewer", ""); err != nil {
			t.Fatal(err)
		}
	}
	r.wait(id, dsar.InProgress, dsar.Completed)
	r.completeManual(id)
	d := r.wait(id, dsar.Completed)

	// Kept with the task and shown on the request.
	var task dsar.Task
	for _, tk := range d.Tasks {
		if len(tk.Review) > 0 {
			if task.ID != "" {
				t.Fatalf("review items on two tasks: %s and %s", task.Dataset, tk.Dataset)
			}
			task = tk
		}
	}
	if task.System != "app_db" || task.Dataset != "users" || len(task.Review) != 1 || task.Review[0] != sharedAddress {
		t.Fatalf("review items of the request: %+v on %s/%s", task.Review, task.System, task.Dataset)
	}
	if d.ReviewItems != 1 {
		t.Errorf("request review_items = %d, want 1", d.ReviewItems)
	}
	open, _, err := r.svc.List(ctx, dsar.Filter{Review: "open"})
	if err != nil || len(open) != 1 || open[0].ID != id || open[0].ReviewItems != 1 {
		t.Errorf("list review=open: %+v %v", open, err)
	}

	// One timeline event for the task, audited with counts and no values.
	if n := r.count(`SELECT count(*) FROM privacy_request_events WHERE request_id = $1 AND event = 'review_items_found'`, id); n != 1 {
		t.Errorf("%d review_items_found events, want 1", n)
	}
	var details string
	if err := r.pool.QueryRow(ctx, `SELECT details::text FROM audit_pending WHERE target_id = $1 AND action = 'privacy_request.review_items_found'`, id).Scan(&details); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"review_records": 2`, `"holders": 3`, `"reason": "held_by_others"`, task.ID} {
		if !strings.Contains(details, want) {
			t.Errorf("audit details %s lack %s", details, want)
		}
	}
	for _, secret := range []string{"rev@example.com", "u-rev", "Ann Example"} {
		if strings.Contains(details, secret) {
			t.Errorf("audit details hold personal data %q: %s", secret, details)
		}
	}

	// The report counts them, without making the erasure incomplete.
	rep, err := r.svc.Report(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ReviewRecords != 2 || rep.ReviewOpen != 1 || !rep.Complete {
		t.Errorf("report review records %d open %d complete %v", rep.ReviewRecords, rep.ReviewOpen, rep.Complete)
	}

	// The person is told in plain words.
	var told bool
	for _, m := range r.deliver() {
		if strings.Contains(m.Subject, id) && strings.Contains(m.Subject, "completed") {
			told = strings.Contains(m.Text, "2 records were not erased because other people's data is in them")
		}
	}
	if !told {
		t.Error("the completion email does not say records were left for review")
	}

	// Staff acknowledge, with a note; once only.
	if _, err := r.svc.AcknowledgeReview(ctx, id, task.ID, "key:reviewer", " "); !isCode(err, apperr.Invalid) {
		t.Errorf("acknowledge without a note: %v", err)
	}
	req, err := r.svc.AcknowledgeReview(ctx, id, task.ID, "key:reviewer", "the address stays: two other customers use it")
	if err != nil {
		t.Fatal(err)
	}
	if req.ReviewItems != 0 {
		t.Errorf("review_items after acknowledging = %d", req.ReviewItems)
	}
	if _, err := r.svc.AcknowledgeReview(ctx, id, task.ID, "key:reviewer", "again"); !isCode(err, apperr.Conflict) {
		t.Error("acknowledged twice")
	}
	if open, _, _ := r.svc.List(ctx, dsar.Filter{Review: "open"}); len(open) != 0 {
		t.Errorf("list review=open after acknowledging: %d", len(open))
	}
	d, err = r.svc.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range d.Tasks {
		if tk.ID == task.ID && (tk.ReviewAcknowledgedBy != "key:reviewer" || tk.ReviewAcknowledgedAt == nil || tk.ReviewNote == "") {
			t.Errorf("acknowledged task %+v", tk)
		}
	}
	if n := r.count(`SELECT count(*) FROM audit_pending WHERE target_id = $1 AND action = 'privacy_request.review_acknowledged'
		AND details ? 'note_sha256' AND details->>'review_items' = '1'`, id); n != 1 {
		t.Errorf("%d review_acknowledged audit events with the note's hash, want 1", n)
	}
	if _, _, err := r.svc.List(ctx, dsar.Filter{Review: "closed"}); err == nil {
		t.Error("list accepted review=closed")
	}
}

// TestAccessReviewItemsAreKept: an access task's review items are kept
// with it (the access path stores the whole result) and counted.
func TestAccessReviewItemsAreKept(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{registry: reviewRegistry})
	r.seedWebUser("acc@example.com", "u-acc", "")
	id, _ := r.verifiedWebAccess("acc@example.com")
	r.wait(id, dsar.InProgress, dsar.Completed)
	r.completeManual(id)
	d := r.wait(id, dsar.Completed)
	if d.ReviewItems != 1 {
		t.Errorf("review_items = %d, want 1", d.ReviewItems)
	}
	n := 0
	for _, tk := range d.Tasks {
		if tk.Dataset == "users" && tk.Operation == dsar.OpAccess {
			n = len(tk.Review)
		}
	}
	if n != 1 {
		t.Errorf("the users access task has %d review items, want 1", n)
	}
	if rep, err := r.svc.Report(context.Background(), id); err != nil || rep.ReviewRecords != 2 {
		t.Errorf("access report review records %d (%v)", rep.ReviewRecords, err)
	}
}
