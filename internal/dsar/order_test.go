package dsar_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/recordstore"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/policy"
)

// orderedStore is the record store declaring an erase order as a database
// connector reading its foreign keys would (EraseAfter), and logging when
// each Erase call starts and when it ends well, by idempotency key (task
// and run).
type orderedStore struct {
	*recordstore.Store
	after map[string][]string // "system.dataset" -> datasets erased before it

	mu     sync.Mutex
	events []eraseEvent
}

type eraseEvent struct {
	end     bool
	key     string // task id:run
	dataset string
}

var _ connectors.EraseOrderer = (*orderedStore)(nil)

func (o *orderedStore) EraseAfter(system, dataset string) []string {
	return o.after[system+"."+dataset]
}

func (o *orderedStore) Erase(ctx context.Context, p connectors.EraseParams) (connectors.EraseResult, error) {
	o.log(false, p.Target)
	res, err := o.Store.Erase(ctx, p)
	if err == nil {
		o.log(true, p.Target)
	}
	return res, err
}

func (o *orderedStore) log(end bool, t connectors.Target) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, eraseEvent{end: end, key: t.IdempotencyKey, dataset: t.System + "." + t.Dataset})
}

// calls counts the Erase calls made for a dataset ("system.dataset").
func (o *orderedStore) calls(dataset string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, e := range o.events {
		if !e.end && e.dataset == dataset {
			n++
		}
	}
	return n
}

// checkOrder fails unless each automated task's last run started erasing
// after the last run of every task it waits for ended well.
func (o *orderedStore) checkOrder(t *testing.T, d dsar.Detail) {
	t.Helper()
	o.mu.Lock()
	start, end := map[string]int{}, map[string]int{}
	for i, e := range o.events {
		m := start
		if e.end {
			m = end
		}
		if _, ok := m[e.key]; !ok {
			m[e.key] = i
		}
	}
	o.mu.Unlock()
	bySeq := map[int]dsar.Task{}
	for _, tk := range d.Tasks {
		bySeq[tk.Seq] = tk
	}
	key := func(tk dsar.Task) string { return tk.ID + ":" + strconv.Itoa(tk.Run) }
	checked := 0
	for _, tk := range d.Tasks {
		if tk.Mode != dsar.ModeAutomated || len(tk.After) == 0 {
			continue
		}
		s, ok := start[key(tk)]
		if !ok {
			t.Errorf("%s/%s was never erased", tk.System, tk.Dataset)
			continue
		}
		for _, seq := range tk.After {
			p := bySeq[seq]
			if e, ok := end[key(p)]; !ok || e > s {
				t.Errorf("%s/%s started erasing before %s/%s ended", tk.System, tk.Dataset, p.System, p.Dataset)
			}
			checked++
		}
	}
	if checked == 0 {
		t.Error("no task waited for another: the order was not checked")
	}
}

// orderedRig is a rig whose every system is one orderedStore.
func orderedRig(t *testing.T, e *policy.Engine, cfg dsar.Config, after map[string][]string) (*rig, *orderedStore) {
	t.Helper()
	o := &orderedStore{after: after}
	r := newRig(t, rigOpts{engine: e, cfg: cfg, registry: func(store *recordstore.Store, e *policy.Engine) connectors.Registry {
		o.Store = store
		return allSystems(o, e)
	}})
	return r, o
}

// tasksByDataset indexes a request's tasks by "system.dataset".
func tasksByDataset(d dsar.Detail) map[string]dsar.Task {
	out := map[string]dsar.Task{}
	for _, tk := range d.Tasks {
		out[tk.System+"."+tk.Dataset] = tk
	}
	return out
}

// waitsFor fails unless the task of dataset waits for those of before.
func waitsFor(t *testing.T, ts map[string]dsar.Task, dataset string, before ...string) {
	t.Helper()
	for _, b := range before {
		if !slices.Contains(ts[dataset].After, ts[b].Seq) {
			t.Errorf("%s (after %v) does not wait for %s (seq %d)", dataset, ts[dataset].After, b, ts[b].Seq)
		}
	}
}

// An erasure across the reference data map erases every child dataset
// before its parent (sessions, generation_jobs before users; job_assets
// before generation_jobs; support_messages before support_tickets; invoices
// before payments; the bot's tables before tg_users), and completes.
func TestErasureRunsChildrenFirst(t *testing.T) {
	t.Parallel()
	r, o := orderedRig(t, loadEngine(t), dsar.Config{}, nil)
	r.seedWebUser("olga@example.com", "u-order", "900060")
	id := r.approvedErasure("900060")
	r.completeManual(id)
	d := r.wait(id, dsar.Completed)
	ts := tasksByDataset(d)
	waitsFor(t, ts, "app_db.users", "app_db.sessions", "app_db.generation_jobs", "app_db.support_tickets", "app_db.payments")
	waitsFor(t, ts, "app_db.generation_jobs", "app_db.job_assets")
	waitsFor(t, ts, "app_db.support_tickets", "app_db.support_messages")
	waitsFor(t, ts, "app_db.payments", "app_db.invoices")
	waitsFor(t, ts, "bot_db.tg_users", "bot_db.tg_generations", "bot_db.tg_payments")
	waitsFor(t, ts, "stripe.customers", "stripe.charges")
	o.checkOrder(t, d)
	for _, tk := range d.Tasks {
		if tk.Mode == dsar.ModeManual && len(tk.After) != 0 {
			t.Errorf("manual task %s waits for %v", tk.System, tk.After)
		}
		if tk.Mode == dsar.ModeAutomated && tk.Run != 1 {
			t.Errorf("%s/%s ran %d times", tk.System, tk.Dataset, tk.Run)
		}
	}
	// The plan staff approved shows the same order.
	for i, pt := range d.Plan.Tasks {
		if tk := d.Tasks[i]; !slices.Equal(pt.After, tk.After) {
			t.Errorf("task %d: plan says after %v, task %v", i+1, pt.After, tk.After)
		}
	}
}

// The connector's declared order (EraseAfter) is honoured on top of the
// data map's references.
func TestEraseOrdererEdgesAreHonoured(t *testing.T) {
	t.Parallel()
	r, o := orderedRig(t, loadSmallEngine(t), dsar.Config{}, map[string][]string{
		"bot_db.tg_payments": {"tg_credit_transactions"},
	})
	r.seedBotUser("900061")
	id := r.approvedErasure("900061")
	d := r.wait(id, dsar.Completed)
	ts := tasksByDataset(d)
	waitsFor(t, ts, "bot_db.tg_payments", "bot_db.tg_credit_transactions")
	waitsFor(t, ts, "bot_db.tg_users", "bot_db.tg_credit_transactions", "bot_db.tg_generations", "bot_db.tg_payments", "bot_db.tg_request_logs")
	o.checkOrder(t, d)
	if _, _, ok := r.record("bot_db", "tg_users", "900061"); ok {
		t.Error("the account survived the erasure")
	}
}

// A cycle between the data map and the connector's order is broken, not
// waited on forever: the request completes.
func TestEraseOrderCycleDoesNotDeadlock(t *testing.T) {
	t.Parallel()
	// tg_generations references tg_users; the connector says the opposite.
	r, o := orderedRig(t, loadSmallEngine(t), dsar.Config{}, map[string][]string{
		"bot_db.tg_generations": {"tg_users"},
	})
	r.seedBotUser("900062")
	id := r.approvedErasure("900062")
	d := r.wait(id, dsar.Completed)
	ts := tasksByDataset(d)
	// (tg_generations waits for tg_users) sorts first and wins.
	waitsFor(t, ts, "bot_db.tg_generations", "bot_db.tg_users")
	if slices.Contains(ts["bot_db.tg_users"].After, ts["bot_db.tg_generations"].Seq) {
		t.Errorf("both directions of the cycle kept: tg_users after %v", ts["bot_db.tg_users"].After)
	}
	o.checkOrder(t, d)
}

// A child that fails for good blocks its parent: the request fails with the
// child's reason, the parent stays pending and visibly waiting, and once
// staff retry the child and it succeeds, the parent runs and the request
// completes.
func TestFailedChildBlocksParentUntilRetried(t *testing.T) {
	t.Parallel()
	r, o := orderedRig(t, loadSmallEngine(t), dsar.Config{}, nil)
	ctx := context.Background()
	r.seedBotUser("900063")
	r.store.FailNext(recordstore.OpErase, 1, connectors.Permanent(errors.New("permission denied for table")))
	id := r.approvedErasure("900063")
	r.wait(id, dsar.Failed)
	r.idle() // the other children finish while the request is failed
	d, err := r.svc.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var failed dsar.Task
	for _, tk := range d.Tasks {
		if tk.Status == dsar.TaskFailed {
			failed = tk
		}
	}
	if failed.ID == "" || failed.Dataset == "tg_users" {
		t.Fatalf("failed task %+v, want a child of tg_users", failed)
	}
	if want := "task bot_db/" + failed.Dataset + " (erase) failed"; d.Status != dsar.Failed || !strings.Contains(d.FailureReason, want) {
		t.Errorf("request %s %q, want failed naming %s", d.Status, d.FailureReason, want)
	}
	parent := tasksByDataset(d)["bot_db.tg_users"]
	if parent.Status != dsar.TaskPending || parent.Attempts != 0 || !slices.Equal(parent.WaitingFor, []int{failed.Seq}) {
		t.Errorf("parent %s, %d attempts, waiting for %v; want pending, waiting for %d", parent.Status, parent.Attempts, parent.WaitingFor, failed.Seq)
	}
	if n := o.calls("bot_db.tg_users"); n != 0 {
		t.Errorf("the parent was erased %d times behind a failed child", n)
	}
	if n := r.count(`SELECT count(*) FROM river_job WHERE kind = 'dsar.task' AND args->>'task_id' = $1`, parent.ID); n != 0 {
		t.Errorf("%d jobs queued for the blocked parent", n)
	}
	for _, tk := range d.Tasks {
		if tk.Status == dsar.TaskSucceeded && len(tk.WaitingFor) != 0 {
			t.Errorf("%s waits for %v after it ran", tk.Dataset, tk.WaitingFor)
		}
	}

	if _, err := r.svc.RetryTask(ctx, id, failed.ID, "key:reviewer"); err != nil {
		t.Fatal(err)
	}
	d = r.wait(id, dsar.Completed)
	if n := o.calls("bot_db.tg_users"); n != 1 {
		t.Errorf("the parent was erased %d times, want once", n)
	}
	if p := tasksByDataset(d)["bot_db.tg_users"]; p.Status != dsar.TaskSucceeded || p.Run != 1 || len(p.WaitingFor) != 0 {
		t.Errorf("parent after retry: %s run %d waiting for %v", p.Status, p.Run, p.WaitingFor)
	}
	o.checkOrder(t, d)
}

// Children finishing at the same moment release their parent once: the
// request's row lock serialises their finishTask transactions, and only
// the last sees every child succeeded. Without the lock, each could see
// another still running and none release the parent: the request would
// hang here (a duplicate release would also be absorbed by the job's
// uniqueness, so the job count is a second check, not the only one).
func TestConcurrentChildrenReleaseParentOnce(t *testing.T) {
	t.Parallel()
	const requests, children = 4, 4
	r, o := orderedRig(t, loadSmallEngine(t), dsar.Config{Workers: requests * children}, nil)
	g := newGate(children)
	r.store.SetHook(g.hook)
	defer g.openAll()
	ctx := context.Background()
	var ids []string
	for i := range requests {
		tg := strconv.Itoa(900070 + i)
		r.seedBotUser(tg)
		c, err := r.svc.Create(ctx, botRequest("erasure", tg))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.Request.ID)
	}
	for _, id := range ids {
		r.wait(id, dsar.AwaitingApproval)
		if _, err := r.svc.Approve(ctx, id, "key:reviewer", ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range ids {
		d := r.wait(id, dsar.Completed)
		parent := tasksByDataset(d)["bot_db.tg_users"]
		if parent.Run != 1 || parent.Attempts != 1 {
			t.Errorf("parent run %d, %d attempts; want one", parent.Run, parent.Attempts)
		}
		if n := r.count(`SELECT count(*) FROM river_job WHERE kind = 'dsar.task' AND args->>'task_id' = $1`, parent.ID); n != 1 {
			t.Errorf("%d jobs for the parent, want 1", n)
		}
		if n := r.count(`SELECT count(*) FROM privacy_request_events WHERE request_id = $1 AND event = 'task_succeeded'`, id); n != children+1 {
			t.Errorf("%d tasks succeeded, want %d", n, children+1)
		}
		o.checkOrder(t, d)
	}
	if n := o.calls("bot_db.tg_users"); n != requests {
		t.Errorf("tg_users erased %d times for %d requests", n, requests)
	}
	if got := g.released(); got != requests {
		t.Errorf("%d requests' children were released together, want %d", got, requests)
	}
}

// gate holds each request's erase calls for child datasets until n of them
// are inside the connector, then lets them all go at once.
type gate struct {
	n     int
	mu    sync.Mutex
	held  map[string]int
	chans map[string]chan struct{}
	done  int
}

func newGate(n int) *gate {
	return &gate{n: n, held: map[string]int{}, chans: map[string]chan struct{}{}}
}

func (g *gate) hook(ctx context.Context, op string, t connectors.Target) error {
	if op != recordstore.OpErase || t.Dataset == "tg_users" {
		return nil
	}
	g.mu.Lock()
	ch := g.chans[t.RequestID]
	if ch == nil {
		ch = make(chan struct{})
		g.chans[t.RequestID] = ch
	}
	g.held[t.RequestID]++
	if g.held[t.RequestID] == g.n {
		close(ch)
		g.done++
	}
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) released() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.done
}

// openAll lets anything still held go (a failing test must not hang).
func (g *gate) openAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, ch := range g.chans {
		if g.held[id] < g.n {
			close(ch)
			g.held[id] = g.n
		}
	}
}

// Pausing while the children run and resuming before they end requeues
// only the children: the parent, still blocked, is not queued, and runs
// once the children's new runs succeed.
func TestResumeKeepsEraseOrder(t *testing.T) {
	t.Parallel()
	r, o := orderedRig(t, loadSmallEngine(t), dsar.Config{}, nil)
	ctx := context.Background()
	r.seedBotUser("900064")
	h := newHoldHook(recordstore.OpErase)
	r.store.SetHook(h.hook)
	defer h.open()
	id := r.approvedErasure("900064")
	h.waitEntered(t, 4) // the four children, and not the parent
	if _, err := r.svc.Pause(ctx, id, "key:reviewer", "checking the scope with the person"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Resume(ctx, id, "key:reviewer"); err != nil {
		t.Fatal(err)
	}
	d, err := r.svc.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	parent := tasksByDataset(d)["bot_db.tg_users"]
	if len(parent.WaitingFor) != 4 {
		t.Errorf("parent waits for %v after resume, want the four children", parent.WaitingFor)
	}
	if n := r.count(`SELECT count(*) FROM river_job WHERE kind = 'dsar.task' AND args->>'task_id' = $1`, parent.ID); n != 0 {
		t.Errorf("resume queued the blocked parent (%d jobs)", n)
	}
	h.open()
	d = r.wait(id, dsar.Completed)
	if n := o.calls("bot_db.tg_users"); n != 1 {
		t.Errorf("the parent was erased %d times, want once", n)
	}
	for _, tk := range d.Tasks {
		if tk.Run != 2 {
			t.Errorf("%s: run %d, want 2 (every task got a new run on resume)", tk.Dataset, tk.Run)
		}
	}
	o.checkOrder(t, d)
}
