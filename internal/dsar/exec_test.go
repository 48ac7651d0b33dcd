package dsar_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/recordstore"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/policy"
)

// approved creates a bot erasure and approves it.
func (r *rig) approvedErasure(tg string) string {
	r.t.Helper()
	ctx := context.Background()
	c, err := r.svc.Create(ctx, botRequest("erasure", tg))
	if err != nil {
		r.t.Fatal(err)
	}
	r.wait(c.Request.ID, dsar.AwaitingApproval)
	if _, err := r.svc.Approve(ctx, c.Request.ID, "key:reviewer", ""); err != nil {
		r.t.Fatal(err)
	}
	return c.Request.ID
}

// idle waits until River has nothing left to run or retry.
func (r *rig) idle() {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for r.count(`SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'cancelled', 'discarded')`) > 0 {
		if time.Now().After(deadline) {
			r.t.Fatal("River jobs still pending after 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPermanentFailureThenStaffRetry(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	ctx := context.Background()
	r.seedBotUser("900040")
	r.store.FailNext(recordstore.OpErase, 1, connectors.Permanent(errors.New("table is read-only")))
	id := r.approvedErasure("900040")
	d := r.wait(id, dsar.Failed)
	var failed []dsar.Task
	for _, task := range d.Tasks {
		if task.Status == dsar.TaskFailed {
			failed = append(failed, task)
		}
	}
	if len(failed) != 1 {
		t.Fatalf("%d tasks failed, want 1", len(failed))
	}
	f := failed[0]
	if want := "task " + f.System + "/" + f.Dataset + " (erase) failed"; !strings.Contains(d.FailureReason, want) || !strings.Contains(d.FailureReason, "read-only") {
		t.Errorf("failure reason %q does not name the task (%s)", d.FailureReason, want)
	}
	if f.Attempts != 1 || !strings.Contains(f.Error, "read-only") {
		t.Errorf("a permanent error is not retried: %d attempts, error %q", f.Attempts, f.Error)
	}
	// The other tasks still ran; the failed one did nothing.
	r.idle()
	if n, _ := r.store.Effects(ctx, f.ID+":1"); n != 0 {
		t.Errorf("the failed task applied %d effects", n)
	}
	// Retrying a task that did not fail, or of another request, is refused.
	for _, task := range d.Tasks {
		if task.Status == dsar.TaskSucceeded {
			if _, err := r.svc.RetryTask(ctx, id, task.ID, "key:reviewer"); !isCode(err, apperr.Conflict) {
				t.Errorf("retry a succeeded task: %v", err)
			}
			break
		}
	}
	if _, err := r.svc.RetryTask(ctx, id, "00000000-0000-0000-0000-000000000000", "key:reviewer"); !isCode(err, apperr.NotFound) {
		t.Errorf("retry an unknown task: %v", err)
	}

	rr, err := r.svc.RetryTask(ctx, id, f.ID, "key:reviewer")
	if err != nil {
		t.Fatal(err)
	}
	if rr.Status != dsar.InProgress || rr.FailureReason != "" {
		t.Errorf("after retry: %s %q", rr.Status, rr.FailureReason)
	}
	r.completeManual(id)
	d = r.wait(id, dsar.Completed)
	for _, task := range d.Tasks {
		if task.ID == f.ID && (task.Status != dsar.TaskSucceeded || task.Run != 2) {
			t.Errorf("retried task: %s run %d", task.Status, task.Run)
		}
	}
	if n, _ := r.store.Effects(ctx, f.ID+":2"); n != 1 {
		t.Errorf("the retried run applied %d effects, want 1", n)
	}
	ev := strings.Join(eventNames(d.Timeline), " ")
	for _, want := range []string{"task_failed", "fail", "task_retried", "retry", "complete"} {
		if !strings.Contains(" "+ev+" ", " "+want+" ") {
			t.Errorf("timeline lacks %s: %s", want, ev)
		}
	}
}

func TestRetryableErrorsAreRetriedWithoutStaff(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{engine: loadSmallEngine(t)})
	ctx := context.Background()
	r.seedBotUser("900041")
	r.store.FailNext(recordstore.OpRestrict, 2, connectors.Retryable(errors.New("connection reset by peer"), 0))
	c, err := r.svc.Create(ctx, botRequest("restriction", "900041"))
	if err != nil {
		t.Fatal(err)
	}
	d := r.wait(c.Request.ID, dsar.Completed, dsar.Failed)
	if d.Status != dsar.Completed {
		t.Fatalf("status %s: %s", d.Status, d.FailureReason)
	}
	attempts := 0
	for _, task := range d.Tasks {
		attempts += task.Attempts
		if task.Status != dsar.TaskSucceeded || task.Run != 1 {
			t.Errorf("task %s: %s run %d", task.Dataset, task.Status, task.Run)
		}
	}
	if attempts != 5+2 {
		t.Errorf("%d attempts for 5 tasks and 2 transient errors", attempts)
	}
	if n := taskResults(t, d, "restricted"); n != 5 {
		t.Errorf("restricted %d records, want 5", n)
	}
	for _, e := range d.Timeline {
		staff := !strings.HasPrefix(e.Actor, "system:") && e.Event != "received" && e.Event != "verify" && e.Event != "verification_step"
		if e.Event == "task_failed" || e.Event == "fail" || staff {
			t.Errorf("timeline entry %+v: retries need no one", e)
		}
	}
}

// holdHook blocks an operation until released (or its context ends) and
// counts the calls.
type holdHook struct {
	op      string
	calls   atomic.Int32
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	// fail is what a held call returns once released (nil: it goes on).
	fail error
}

func newHoldHook(op string) *holdHook {
	return &holdHook{op: op, entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (h *holdHook) hook(ctx context.Context, op string, _ connectors.Target) error {
	if op != h.op {
		return nil
	}
	h.calls.Add(1)
	h.entered <- struct{}{}
	select {
	case <-h.release:
		return h.fail
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *holdHook) open() { h.once.Do(func() { close(h.release) }) }

func (h *holdHook) waitEntered(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-h.entered:
		case <-time.After(20 * time.Second):
			t.Fatalf("only %d of %d calls reached the connector", i, n)
		}
	}
}

func TestPauseAndResumeInProgress(t *testing.T) {
	t.Parallel()
	// One worker: one task runs, four wait their turn.
	r := newRig(t, rigOpts{engine: loadSmallEngine(t), cfg: dsar.Config{Workers: 1}})
	ctx := context.Background()
	r.seedBotUser("900042")
	h := newHoldHook(recordstore.OpRestrict)
	r.store.SetHook(h.hook)
	defer h.open()
	c, err := r.svc.Create(ctx, botRequest("restriction", "900042"))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Request.ID
	h.waitEntered(t, 1)
	if _, err := r.svc.Pause(ctx, id, "key:reviewer", ""); !isCode(err, apperr.Invalid) {
		t.Errorf("pause without a reason: %v", err)
	}
	p, err := r.svc.Pause(ctx, id, "key:reviewer", "waiting for the person to confirm scope")
	if err != nil {
		t.Fatal(err)
	}
	if p.Status != dsar.Paused || p.PausedFrom != dsar.InProgress {
		t.Fatalf("paused: %s from %s", p.Status, p.PausedFrom)
	}
	h.open() // the running task finishes; nothing new starts
	r.idle()
	if got := h.calls.Load(); got != 1 {
		t.Errorf("%d tasks reached the connector while paused, want the 1 already running", got)
	}
	d, _ := r.svc.Get(ctx, id)
	var done int
	for _, task := range d.Tasks {
		if task.Status == dsar.TaskSucceeded {
			done++
		}
	}
	if d.Status != dsar.Paused || done != 1 {
		t.Fatalf("while paused: %s with %d tasks done", d.Status, done)
	}
	res, err := r.svc.Resume(ctx, id, "key:reviewer")
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != dsar.InProgress {
		t.Errorf("resumed to %s", res.Status)
	}
	d = r.wait(id, dsar.Completed)
	if got := h.calls.Load(); got != 5 {
		t.Errorf("%d connector calls, want 5 (one per task)", got)
	}
	for _, task := range d.Tasks {
		if task.Status != dsar.TaskSucceeded {
			t.Errorf("task %s %s", task.Dataset, task.Status)
		}
		if n, _ := r.store.Effects(ctx, task.ID+":"+strconv.Itoa(task.Run)); n != 1 {
			t.Errorf("task %s (run %d) applied %d effects", task.Dataset, task.Run, n)
		}
	}
}

// A request whose every task ends while it is paused completes on resume:
// nothing is left to run, so nothing else would ever complete it.
func TestResumeCompletesWhenTasksEndedWhilePaused(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{engine: loadSmallEngine(t)})
	ctx := context.Background()
	r.seedBotUser("900043")
	h := newHoldHook(recordstore.OpAccess)
	r.store.SetHook(h.hook)
	defer h.open()
	c, err := r.svc.Create(ctx, botRequest("access", "900043"))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Request.ID
	h.waitEntered(t, 5) // all five tasks are in the connector
	if _, err := r.svc.Pause(ctx, id, "key:reviewer", "hold"); err != nil {
		t.Fatal(err)
	}
	h.open()
	r.idle()
	d, _ := r.svc.Get(ctx, id)
	for _, task := range d.Tasks {
		if task.Status != dsar.TaskSucceeded {
			t.Fatalf("task %s %s: tasks already running finish during a pause", task.Dataset, task.Status)
		}
	}
	if d.Status != dsar.Paused {
		t.Fatalf("status %s while paused", d.Status)
	}
	if _, err := r.svc.Resume(ctx, id, "key:reviewer"); err != nil {
		t.Fatal(err)
	}
	r.wait(id, dsar.Completed)
	if n := r.count(`SELECT count(*) FROM outbox`); n != 0 {
		t.Errorf("a bot request has no email contact, yet %d emails were queued", n)
	}
}

// A task that fails for good while its request is paused fails the request
// on resume, where staff see it.
func TestResumeFailsWhenATaskFailedWhilePaused(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{engine: loadSmallEngine(t)})
	ctx := context.Background()
	r.seedBotUser("900046")
	h := newHoldHook(recordstore.OpRestrict)
	h.fail = connectors.Permanent(errors.New("permission denied for table tg_users"))
	r.store.SetHook(h.hook)
	defer h.open()
	c, err := r.svc.Create(ctx, botRequest("restriction", "900046"))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Request.ID
	h.waitEntered(t, 5)
	if _, err := r.svc.Pause(ctx, id, "key:reviewer", "hold"); err != nil {
		t.Fatal(err)
	}
	h.open()
	r.idle()
	if d, _ := r.svc.Get(ctx, id); d.Status != dsar.Paused {
		t.Fatalf("status %s while paused", d.Status)
	}
	res, err := r.svc.Resume(ctx, id, "key:reviewer")
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != dsar.Failed || !strings.Contains(res.FailureReason, "permission denied") {
		t.Fatalf("resumed to %s (%q), want failed", res.Status, res.FailureReason)
	}
	d, _ := r.svc.Get(ctx, id)
	ev := eventNames(d.Timeline)
	if ev[len(ev)-2] != "resume" || ev[len(ev)-1] != "fail" {
		t.Errorf("timeline %v", ev)
	}
	// Staff retry each task, and the request completes.
	r.store.SetHook(nil)
	for _, task := range d.Tasks {
		if _, err := r.svc.RetryTask(ctx, id, task.ID, "key:reviewer"); err != nil {
			t.Fatal(err)
		}
	}
	r.wait(id, dsar.Completed)
}

func TestCancelStopsEverything(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{engine: loadSmallEngine(t), cfg: dsar.Config{Workers: 1}})
	ctx := context.Background()
	r.seedBotUser("900044")
	h := newHoldHook(recordstore.OpRestrict)
	r.store.SetHook(h.hook)
	defer h.open()
	c, err := r.svc.Create(ctx, botRequest("restriction", "900044"))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Request.ID
	h.waitEntered(t, 1)
	x, err := r.svc.Cancel(ctx, id, "key:frontend", "the person withdrew the request")
	if err != nil {
		t.Fatal(err)
	}
	if x.Status != dsar.Canceled {
		t.Fatalf("status %s", x.Status)
	}
	h.open()
	r.idle()
	d, _ := r.svc.Get(ctx, id)
	if d.Status != dsar.Canceled {
		t.Errorf("status %s after the running task ended", d.Status)
	}
	for _, task := range d.Tasks {
		if task.Status != dsar.TaskCanceled || task.FinishedAt == nil {
			t.Errorf("task %s is %s", task.Dataset, task.Status)
		}
	}
	// Only the call already inside the connector happened.
	if got := h.calls.Load(); got != 1 {
		t.Errorf("%d connector calls after cancel, want the 1 in flight", got)
	}
	if n := r.count(`SELECT count(*) FROM recordstore_effects`); n > 1 {
		t.Errorf("%d effects applied, at most the one in flight", n)
	}
	if _, err := r.svc.Resume(ctx, id, "key:reviewer"); !isCode(err, apperr.Conflict) {
		t.Errorf("resume a canceled request: %v", err)
	}
	ev := eventNames(d.Timeline)
	if ev[len(ev)-1] != "cancel" {
		t.Errorf("timeline after cancel: %v", ev)
	}
}

func TestManualTaskCompletion(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	ctx := context.Background()
	c, err := r.svc.Create(ctx, botRequest("access", "900045"))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Request.ID
	r.wait(id, dsar.InProgress, dsar.Completed)
	r.idle()
	d, _ := r.svc.Get(ctx, id)
	var manual, automated *dsar.Task
	for i, task := range d.Tasks {
		switch {
		case task.Mode == dsar.ModeManual && manual == nil:
			manual = &d.Tasks[i]
		case task.Mode == dsar.ModeAutomated && automated == nil:
			automated = &d.Tasks[i]
		}
	}
	if manual == nil || automated == nil || manual.Instructions == "" {
		t.Fatalf("manual %+v automated %+v", manual, automated)
	}
	before := r.snapshot(id)
	for _, note := range []string{"", "   "} {
		if _, err := r.svc.CompleteManualTask(ctx, id, manual.ID, "key:reviewer", note); !isCode(err, apperr.Invalid) {
			t.Errorf("complete with note %q: %v", note, err)
		}
	}
	if _, err := r.svc.CompleteManualTask(ctx, id, automated.ID, "key:reviewer", "did it by hand"); !isCode(err, apperr.Conflict) {
		t.Errorf("complete an automated task: %v", err)
	}
	r.unchanged(id, before, "refused completions")
	if _, err := r.svc.CompleteManualTask(ctx, id, manual.ID, "key:reviewer", "Exported the chat history from the Telegram console"); err != nil {
		t.Fatal(err)
	}
	before = r.snapshot(id)
	if _, err := r.svc.CompleteManualTask(ctx, id, manual.ID, "key:other", "again"); !isCode(err, apperr.Conflict) {
		t.Errorf("complete twice: %v", err)
	}
	r.unchanged(id, before, "a second completion")
	d, _ = r.svc.Get(ctx, id)
	for _, task := range d.Tasks {
		if task.ID == manual.ID && (task.CompletedBy != "key:reviewer" || !strings.Contains(task.Note, "Telegram console") || task.FinishedAt == nil) {
			t.Errorf("completed task %+v", task)
		}
	}
	r.completeManual(id)
	r.wait(id, dsar.Completed)
	if _, err := r.svc.CompleteManualTask(ctx, id, manual.ID, "key:reviewer", "late"); !isCode(err, apperr.Conflict) {
		t.Errorf("complete a task of a completed request: %v", err)
	}
}

func TestPlanningFailureThenRetryPlan(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{engine: loadSmallEngine(t)})
	ctx := context.Background()
	r.seedBotUser("900047")
	r.store.FailNext(recordstore.OpResolve, 1, connectors.Permanent(errors.New("identity service refused the credentials")))
	c, err := r.svc.Create(ctx, botRequest("access", "900047"))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Request.ID
	deadline := time.Now().Add(20 * time.Second)
	var d dsar.Detail
	for {
		d, _ = r.svc.Get(ctx, id)
		if d.PlanError != "" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(d.PlanError, "refused the credentials") || d.Status != dsar.Verified || d.PlannedAt != nil || len(d.Tasks) != 0 {
		t.Fatalf("after planning failed: %s, plan error %q, %d tasks", d.Status, d.PlanError, len(d.Tasks))
	}
	if ev := eventNames(d.Timeline); ev[len(ev)-1] != "planning_failed" {
		t.Errorf("timeline %v", ev)
	}
	rp, err := r.svc.RetryPlan(ctx, id, "key:reviewer")
	if err != nil {
		t.Fatal(err)
	}
	if rp.PlanError != "" {
		t.Errorf("plan error kept after retry: %q", rp.PlanError)
	}
	d = r.wait(id, dsar.Completed)
	if len(d.Tasks) != 5 {
		t.Errorf("%d tasks", len(d.Tasks))
	}
	if _, err := r.svc.RetryPlan(ctx, id, "key:reviewer"); !isCode(err, apperr.Conflict) {
		t.Errorf("retry the plan of a completed request: %v", err)
	}

	// A transient failure is retried by River, no one involved.
	r.seedBotUser("900048")
	r.store.FailNext(recordstore.OpResolve, 2, connectors.Retryable(errors.New("connection refused"), 0))
	c, err = r.svc.Create(ctx, botRequest("access", "900048"))
	if err != nil {
		t.Fatal(err)
	}
	if d := r.wait(c.Request.ID, dsar.Completed); d.PlanError != "" {
		t.Errorf("plan error %q", d.PlanError)
	}
}

// manualEraser is a connector that finds the subject's records but cannot
// erase them (a processor without a deletion API): it hands the work to
// staff with exact instructions.
type manualEraser struct {
	connectors.Connector
	calls atomic.Int32
}

func (m *manualEraser) Erase(ctx context.Context, p connectors.EraseParams) (connectors.EraseResult, error) {
	m.calls.Add(1)
	return connectors.EraseResult{Manual: "Ask the processor to delete record " + p.Dataset + "-1.", Note: "the processor keeps invoices"}, nil
}

func TestEraseHandedToStaff(t *testing.T) {
	t.Parallel()
	me := &manualEraser{}
	r := newRig(t, rigOpts{registry: func(store *recordstore.Store, e *policy.Engine) connectors.Registry {
		me.Connector = store
		reg := allSystems(store, e)
		reg["bot_db"] = me
		return reg
	}})
	r.seedBotUser("900060")
	id := r.approvedErasure("900060")

	// Each bot_db erase task becomes manual and pending with the
	// connector's instructions once it runs (a parent only after staff
	// confirmed its children), and the request stays in progress until
	// staff confirm every one.
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for {
		d := r.wait(id, dsar.InProgress, dsar.Completed, dsar.Failed)
		if d.Status == dsar.Completed {
			break
		}
		if d.Status == dsar.Failed {
			t.Fatalf("request failed: %s", d.FailureReason)
		}
		if time.Now().After(deadline) {
			var ts []string
			for _, task := range d.Tasks {
				ts = append(ts, task.System+"/"+task.Dataset+":"+task.Mode+":"+task.Status)
			}
			t.Fatalf("request not completed: %v", ts)
		}
		for _, task := range d.Tasks {
			if task.Mode == dsar.ModeManual && task.Status == dsar.TaskPending {
				if _, err := r.svc.CompleteManualTask(ctx, id, task.ID, "key:reviewer", "Processor confirmed the deletion"); err != nil {
					t.Fatal(err)
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	d, err := r.svc.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, task := range d.Tasks {
		if task.System != "bot_db" || task.Operation != dsar.OpErase {
			continue
		}
		n++
		if want := "Ask the processor to delete record " + task.Dataset + "-1."; task.Instructions != want {
			t.Errorf("task %s instructions %q, want %q", task.Dataset, task.Instructions, want)
		}
		if !strings.Contains(string(task.Result), "the processor keeps invoices") {
			t.Errorf("task %s result %s lacks the connector's note", task.Dataset, task.Result)
		}
		if task.Mode != dsar.ModeManual || task.Status != dsar.TaskSucceeded || task.CompletedBy != "key:reviewer" {
			t.Errorf("handed-over task after staff completed it: %+v", task)
		}
	}
	if n < 2 {
		t.Fatalf("only %d bot_db erase tasks: the test needs a parent and children", n)
	}
	if got := r.count(`SELECT count(*) FROM privacy_request_events WHERE request_id = $1 AND event = 'task_handed_to_staff'`, id); got != n {
		t.Errorf("%d task_handed_to_staff events, want %d", got, n)
	}
	r.idle()
	if got := int(me.calls.Load()); got != n {
		t.Errorf("Erase called %d times for %d tasks: a handed-over task must not run again", got, n)
	}
}
