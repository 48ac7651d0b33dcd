package dsar_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/recordstore"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/policies"
)

// shopMap is a shop's database: accounts found by email or user id, and
// delivery addresses found by the user id only. street is what the map
// calls the address column: the broken map names one the table does not
// have.
func shopMap(street string) string {
	return fmt.Sprintf(`version: 1
processing_purposes:
  shop_service:
    name: Run the shop and deliver orders
    legal_basis: [contract]
    citation: "2.1 Service Provision"
systems:
  shop_db:
    name: Shop database
    kind: postgres
    connector: postgres
    products: [bot]
    processor: self
    regions: [EU]
    datasets:
      users:
        description: Accounts.
        identities:
          - {field: id, type: user}
          - {field: email, type: email}
        timestamp: created_at
        purpose: shop_service
        retention: account
        fields:
          id: {category: user.unique_id}
          email: {category: user.contact.email}
          name: {category: user.name}
          created_at: {category: system.operations}
      addresses:
        description: Delivery addresses.
        identities:
          - {field: user_id, type: user}
        timestamp: created_at
        purpose: shop_service
        retention: account
        fields:
          user_id: {category: user.unique_id}
          %s: {category: user.contact.address}
          phone: {category: user.contact}
          created_at: {category: system.operations}
`, street)
}

var (
	shopOnce              sync.Once
	shopBroken, shopFixed *policy.Engine
	shopErr               error
)

// loadShopEngines: the bundle with the broken map (addresses.street_name,
// a column that does not exist) and with the corrected one.
func loadShopEngines(t testing.TB) (broken, fixed *policy.Engine) {
	t.Helper()
	shopOnce.Do(func() {
		ctx := context.Background()
		if shopBroken, shopErr = policy.Load(ctx, replaceDataMap(policies.FS, shopMap("street_name"))); shopErr != nil {
			return
		}
		shopFixed, shopErr = policy.Load(ctx, replaceDataMap(policies.FS, shopMap("street")))
	})
	if shopErr != nil {
		t.Fatal(shopErr)
	}
	if shopBroken.Revision() == shopFixed.Revision() {
		t.Fatal("the corrected bundle has the same revision")
	}
	return shopBroken, shopFixed
}

// schemaStore is the record store behaving like a database with fixed
// columns: an erasure naming a column a table does not have fails
// permanently, as PostgreSQL refuses it. After an erasure it re-reads the
// subject's records and reports Verified when no field it deleted holds a
// value any more.
type schemaStore struct {
	*recordstore.Store
	pool    *pgxpool.Pool
	columns map[string][]string // dataset -> its columns
}

func (s *schemaStore) Erase(ctx context.Context, p connectors.EraseParams) (connectors.EraseResult, error) {
	if cols, ok := s.columns[p.Target.Dataset]; ok {
		for _, f := range p.Fields {
			if !slices.Contains(cols, f.Field) {
				return connectors.EraseResult{}, connectors.Permanent(fmt.Errorf("column %q of relation %q does not exist", f.Field, p.Target.Dataset))
			}
		}
	}
	res, err := s.Store.Erase(ctx, p)
	if err != nil {
		return res, err
	}
	var deleted, types, values []string
	for _, f := range p.Fields {
		if f.Action == connectors.ActionDelete {
			deleted = append(deleted, f.Field)
		}
	}
	for _, id := range p.Target.Identities {
		types, values = append(types, id.Type), append(values, id.Value)
	}
	var left int
	if err := s.pool.QueryRow(ctx, `
		SELECT count(*) FROM recordstore_records r JOIN recordstore_record_identities i USING (system, dataset, record_key)
		WHERE r.system = $1 AND r.dataset = $2 AND i.id_type = ANY ($3) AND i.id_value = ANY ($4)
		  AND EXISTS (SELECT 1 FROM unnest($5::text[]) f WHERE r.fields->>f IS NOT NULL)`,
		p.Target.System, p.Target.Dataset, types, values, deleted).Scan(&left); err != nil {
		return res, err
	}
	res.Verified = left == 0
	return res, nil
}

// shopRig is a rig on the broken shop map, its database refusing the
// column the map gets wrong, with a person's account and address.
func shopRig(t *testing.T) *rig {
	t.Helper()
	broken, _ := loadShopEngines(t)
	ss := &schemaStore{columns: map[string][]string{
		"users":     {"id", "email", "name", "created_at"},
		"addresses": {"user_id", "street", "phone", "created_at"},
	}}
	r := newRig(t, rigOpts{engine: broken, registry: func(store *recordstore.Store, _ *policy.Engine) connectors.Registry {
		ss.Store = store
		return connectors.Registry{"shop_db": ss}
	}})
	ss.pool = r.pool
	ctx := context.Background()
	em := connectors.Identity{Type: "email", Value: "ann@example.com"}
	user := connectors.Identity{Type: "user", Value: "4711"}
	for _, err := range []error{
		r.store.Put(ctx, "shop_db", "users", "4711", []connectors.Identity{em, user},
			map[string]any{"id": "4711", "email": "ann@example.com", "name": "Ann Example", "created_at": "2026-01-02T03:04:05Z"}),
		r.store.Put(ctx, "shop_db", "addresses", "4711-a1", []connectors.Identity{user},
			map[string]any{"user_id": "4711", "street": "1 Banana Street", "phone": "+49 30 1234567", "created_at": "2026-01-02T03:04:05Z"}),
		r.store.Link(ctx, em, user),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// failedErasure runs Ann's erasure by email on the broken map until it
// fails: the account is erased, the address task fails permanently.
func (r *rig) failedErasure() string {
	r.t.Helper()
	ctx := context.Background()
	c, err := r.svc.Create(ctx, webRequest("erasure", "ann@example.com"))
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := r.svc.Verify(ctx, c.Request.ID, r.code("ann@example.com")); err != nil {
		r.t.Fatal(err)
	}
	r.wait(c.Request.ID, dsar.AwaitingApproval)
	if _, err := r.svc.Approve(ctx, c.Request.ID, "key:reviewer", "match confirmed"); err != nil {
		r.t.Fatal(err)
	}
	r.wait(c.Request.ID, dsar.Failed)
	d := r.settled(c.Request.ID)
	for _, task := range d.Tasks {
		want := dsar.TaskSucceeded
		if task.Dataset == "addresses" {
			want = dsar.TaskFailed
		}
		if task.Status != want {
			r.r().Fatalf("first run: task %s %s (%s), want %s", task.Dataset, task.Status, task.Error, want)
		}
	}
	return c.Request.ID
}

func (r *rig) r() testing.TB { return r.t }

// settled waits until no task of the request is running or queued (a
// request fails as soon as one task fails; the others still end).
func (r *rig) settled(id string) dsar.Detail {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := r.svc.Get(context.Background(), id)
		if err != nil {
			r.t.Fatal(err)
		}
		busy := false
		for _, t := range d.Tasks {
			busy = busy || t.Status == dsar.TaskRunning || (t.Status == dsar.TaskPending && t.Mode == dsar.ModeAutomated && len(t.WaitingFor) == 0)
		}
		if !busy {
			return d
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("tasks still busy: %+v", d.Tasks)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// recordFields reads a record's fields as stored (nil when it is gone).
func (r *rig) recordFields(dataset, key string) map[string]any {
	r.t.Helper()
	var fields map[string]any
	err := r.pool.QueryRow(context.Background(), `SELECT fields FROM recordstore_records WHERE system = 'shop_db' AND dataset = $1 AND record_key = $2`, dataset, key).Scan(&fields)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		r.t.Fatal(err)
	}
	return fields
}

// TestReplanFinishesAHalfDoneErasure is issue 16's recovery: an erasure
// fails half done because the data map names a column the database does
// not have; the account (and with it the email address) is already
// erased, so the address can no longer lead to the user id. The map is
// fixed, staff re-plan the failed request: a new plan revision from the
// corrected map, audited, planned with the user id resolved the first time
// (pinned to the request), which runs only what is left (the address, not
// the account again) and completes verified.
func TestReplanFinishesAHalfDoneErasure(t *testing.T) {
	t.Parallel()
	r := shopRig(t)
	ctx := context.Background()
	broken, fixed := loadShopEngines(t)
	id := r.failedErasure()

	if got := r.recordFields("addresses", "4711-a1"); got["street"] == nil || got["phone"] == nil {
		t.Fatalf("the failed task changed the address: %v", got)
	}
	rep, err := r.svc.Report(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Complete || rep.Verified {
		t.Errorf("a failed erasure is reported complete %v verified %v", rep.Complete, rep.Verified)
	}
	// Retrying the task runs the stored plan, which names the column
	// the table does not have: it fails again.
	d0, _ := r.svc.Get(ctx, id)
	var usersTask, addrTask dsar.Task
	for _, task := range d0.Tasks {
		switch task.Dataset {
		case "users":
			usersTask = task
		case "addresses":
			addrTask = task
		}
	}
	if _, err := r.svc.RetryTask(ctx, id, addrTask.ID, "key:reviewer"); err != nil {
		t.Fatal(err)
	}
	r.wait(id, dsar.Failed)
	r.settled(id)

	// The email no longer leads anywhere: the account holding it is gone,
	// and so is the link the system resolved it by.
	if _, err := r.pool.Exec(ctx, `DELETE FROM recordstore_links`); err != nil {
		t.Fatal(err)
	}
	// Re-planning before the map is fixed is allowed (and would fail
	// again); here the corrected map is deployed first.
	r.setEngine(fixed)
	why := "the data map named addresses.street_name; the column is street"
	after, err := r.svc.Replan(ctx, id, "key:reviewer", why, nil)
	if err != nil {
		t.Fatal(err)
	}
	if after.Status != dsar.Verified || after.FailureReason != "" || after.PlannedAt != nil {
		t.Errorf("after re-planning: %s %q planned %v", after.Status, after.FailureReason, after.PlannedAt)
	}
	// An erasure's new plan is approved like the first.
	r.wait(id, dsar.AwaitingApproval)
	if _, err := r.svc.Approve(ctx, id, "key:reviewer", "new plan checked"); err != nil {
		t.Fatal(err)
	}
	d := r.wait(id, dsar.Completed, dsar.Failed)
	if d.Status != dsar.Completed {
		t.Fatalf("status %s: %s", d.Status, d.FailureReason)
	}
	if d.Plan == nil || d.Plan.Revision != 2 || d.Plan.PolicyRevision != fixed.Revision() {
		t.Fatalf("plan %+v, want revision 2 under %s", d.Plan, fixed.Revision())
	}
	if !slices.Equal(d.Plan.IdentityKinds, []string{"email", "user"}) {
		t.Errorf("the new plan's identity kinds %v: the user id resolved the first time was not used", d.Plan.IdentityKinds)
	}
	sources := map[string]string{}
	for _, i := range d.Identities {
		sources[i.Kind] = i.Source
	}
	if sources["email"] != dsar.SourceGiven || sources["user"] != "shop_db" {
		t.Errorf("identities %v", sources)
	}
	// Only what was left ran: the account's task is the one from the first
	// run (same id, run and result), the address task ran again.
	for _, task := range d.Tasks {
		if task.Status != dsar.TaskSucceeded {
			t.Errorf("task %s %s", task.Dataset, task.Status)
		}
		switch task.Dataset {
		case "users":
			if task.ID != usersTask.ID || task.Run != usersTask.Run || string(task.Result) != string(usersTask.Result) {
				t.Errorf("the account's task ran again: %+v, was %+v", task, usersTask)
			}
		case "addresses":
			if task.ID != addrTask.ID || task.Run != addrTask.Run+2 {
				t.Errorf("address task %s run %d (was %s run %d)", task.ID, task.Run, addrTask.ID, addrTask.Run)
			}
			if !slices.ContainsFunc(task.Fields, func(f connectors.FieldPlan) bool { return f.Field == "street" }) {
				t.Errorf("the address task kept the old fields %+v", task.Fields)
			}
		}
	}
	if len(d.Tasks) != 2 {
		t.Errorf("%d tasks", len(d.Tasks))
	}
	if got := r.recordFields("addresses", "4711-a1"); got != nil && (got["street"] != nil || got["phone"] != nil) {
		t.Errorf("the address still holds %v", got)
	}
	rep, err = r.svc.Report(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Complete || !rep.Verified || rep.PolicyRevision != fixed.Revision() {
		t.Errorf("report complete %v verified %v policy %s", rep.Complete, rep.Verified, rep.PolicyRevision)
	}
	// Audited: who asked and why (replan), and the new plan against the old.
	var replan *dsar.TimelineEntry
	for i, e := range d.Timeline {
		if e.Event == "replan" {
			replan = &d.Timeline[i]
		}
	}
	if replan == nil || replan.From != "failed" || replan.To != "verified" || replan.Actor != "key:reviewer" || replan.Note != why {
		t.Errorf("replan entry %+v", replan)
	}
	if n := r.count(`SELECT count(*) FROM audit_pending WHERE target_id = $1 AND action = 'privacy_request.replan'
		AND actor = 'key:reviewer' AND details->>'plan_revision' = '1' AND details->>'policy_revision' = $2 AND details ? 'note_sha256'`,
		id, broken.Revision()); n != 1 {
		t.Errorf("%d audit entries of the re-plan", n)
	}
	if n := r.count(`SELECT count(*) FROM audit_pending WHERE target_id = $1 AND action = 'privacy_request.replanned'
		AND details->>'requested_by' = 'key:reviewer' AND details->>'from_plan_revision' = '1' AND details->>'plan_revision' = '2'
		AND details->>'from_policy_revision' = $2 AND details->>'policy_revision' = $3
		AND details->'kept_tasks' = '["shop_db/users"]' AND details->'rerun_tasks' = '["shop_db/addresses (was failed)"]'`,
		id, broken.Revision(), fixed.Revision()); n != 1 {
		t.Errorf("%d audit entries of the new plan", n)
	}

	// A completed request is closed: it cannot be planned again.
	_, err = r.svc.Replan(ctx, id, "key:reviewer", "", nil)
	if !isCode(err, apperr.Conflict) || !strings.Contains(err.Error(), "completed request cannot be planned again") {
		t.Errorf("re-planning a completed request: %v", err)
	}
}

// TestReplanWithoutPinnedIdentitiesWouldMissTheAddress guards the pinning
// itself: with only what the email resolves to now (nothing), a plan
// reaches the account alone, so the address would stay.
func TestReplanWithoutPinnedIdentitiesWouldMissTheAddress(t *testing.T) {
	t.Parallel()
	_, fixed := loadShopEngines(t)
	p, err := dsar.BuildPlan(context.Background(), fixed, "erasure", "gdpr", []string{"email"}, connectors.Registry{"shop_db": recordstore.New(nil, recordstore.Options{})}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range p.Tasks {
		if task.Dataset == "addresses" {
			t.Fatal("the email alone reaches the addresses: the pinning test proves nothing")
		}
	}
}

// TestReplanRefusals: only a failed request (or a paused access request
// that found nothing) is planned again; anything else is a conflict
// saying why, and changes nothing.
func TestReplanRefusals(t *testing.T) {
	t.Parallel()
	r := shopRig(t)
	ctx := context.Background()

	// Canceled: closed.
	id := r.failedErasure()
	if _, err := r.svc.Cancel(ctx, id, "key:reviewer", "the person withdrew it"); err != nil {
		t.Fatal(err)
	}
	_, err := r.svc.Replan(ctx, id, "key:reviewer", "", nil)
	if !isCode(err, apperr.Conflict) || !strings.Contains(err.Error(), "canceled request cannot be planned again") {
		t.Errorf("re-planning a canceled request: %v", err)
	}
	// Awaiting approval (nothing failed): not a re-plan's business.
	c, err := r.svc.Create(ctx, dsar.CreateInput{Type: "erasure", Subject: identity.MustParse("user:4711"), Region: "DE",
		Channel: dsar.ChannelStaff, Actor: "key:reviewer", IsStaff: true, IdentityVerified: true, Note: "by post"})
	if err != nil {
		t.Fatal(err)
	}
	r.wait(c.Request.ID, dsar.AwaitingApproval)
	_, err = r.svc.Replan(ctx, c.Request.ID, "key:reviewer", "", nil)
	if !isCode(err, apperr.Conflict) || !strings.Contains(err.Error(), "only a failed request") {
		t.Errorf("re-planning a request awaiting approval: %v", err)
	}
	d, err := r.svc.Get(ctx, c.Request.ID)
	if err != nil || d.Status != dsar.AwaitingApproval {
		t.Errorf("a refused re-plan changed the request: %s %v", d.Status, err)
	}
	// A note too long, an unknown request: refused before anything.
	if _, err := r.svc.Replan(ctx, c.Request.ID, "key:reviewer", strings.Repeat("x", 2001), nil); !isCode(err, apperr.Invalid) {
		t.Errorf("a 2001-character note: %v", err)
	}
	if _, err := r.svc.Replan(ctx, "00000000-0000-0000-0000-000000000000", "key:reviewer", "", nil); !isCode(err, apperr.NotFound) {
		t.Errorf("an unknown request: %v", err)
	}
}
