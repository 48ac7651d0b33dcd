package dsar_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/recordstore"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/jobs"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/notify"
	"github.com/steward-privacy/steward/internal/testutil"
)

// crashWorkerEnv carries the child worker's settings (crashWorker as JSON).
const crashWorkerEnv = "STEWARD_DSAR_CRASH_WORKER"

type crashWorker struct {
	DB   string `json:"db"`
	Keys string `json:"keys"`
	Mode string `json:"mode"` // "work": run the engine's workers until killed; "block": the same, every effect then hangs
	// Lease is the job lease (0: the default).
	Lease time.Duration `json:"lease"`
}

// slowConnector stretches every effect on both sides, so a kill lands
// mid-task: before the effect (in the hook) or, the case that matters for
// doing nothing twice, after the effect committed and before the engine
// recorded it.
type slowConnector struct {
	connectors.Connector
	after      time.Duration
	eraseAfter time.Duration // after an erasure instead, when set
}

func (c slowConnector) Erase(ctx context.Context, p connectors.EraseParams) (connectors.EraseResult, error) {
	res, err := c.Connector.Erase(ctx, p)
	time.Sleep(cmp.Or(c.eraseAfter, c.after))
	return res, err
}

func (c slowConnector) Access(ctx context.Context, p connectors.AccessParams, sink connectors.Sink) (connectors.AccessResult, error) {
	res, err := c.Connector.Access(ctx, p, sink)
	time.Sleep(c.after)
	return res, err
}

// TestCrashWorkerProcess is the worker process TestWorkersKilledMidTask
// starts (and kills): it does nothing in an ordinary test run.
func TestCrashWorkerProcess(t *testing.T) {
	spec := os.Getenv(crashWorkerEnv)
	if spec == "" {
		return
	}
	var w crashWorker
	if err := json.Unmarshal([]byte(spec), &w); err != nil || (w.Mode != "work" && w.Mode != "block") {
		t.Fatalf("bad %s: %v", crashWorkerEnv, err)
	}
	// Whatever happens to the parent, do not outlive it by much.
	time.AfterFunc(2*time.Minute, func() { os.Exit(3) })
	ctx := context.Background()
	pool, err := db.Open(ctx, w.DB)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keyring.Parse(w.Keys)
	if err != nil {
		t.Fatal(err)
	}
	e := loadSmallEngine(t)
	store := recordstore.New(pool, recordstore.Options{HashKey: []byte("test-hash-key-0123456789abcdef!!")})
	store.SetHook(func(ctx context.Context, op string, _ connectors.Target) error {
		if op == recordstore.OpErase || op == recordstore.OpAccess {
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	slow := slowConnector{Connector: store, after: 100 * time.Millisecond}
	if w.Mode == "block" {
		// Hung after an erasure's effect committed, deaf to its context:
		// only the kill ends it.
		slow.eraseAfter = time.Hour
	}
	clk := clock.Real{}
	jobClient := jobs.New(pool, jobs.Config{Work: true, FetchPoll: 50 * time.Millisecond, RetryBase: 20 * time.Millisecond, Lease: w.Lease}, nil)
	_, err = dsar.New(dsar.Deps{
		Pool: pool, Keys: kr, Policies: fixedPolicies{e}, Audit: audit.New(clk, e.Revision()), Outbox: notify.NewOutbox(kr, clk, nil),
		Clock: clk, Connectors: allSystems(slow, e), Jobs: jobClient,
	}, dsar.Config{Workers: 8, StaffEmail: staffEmail})
	if err != nil {
		t.Fatal(err)
	}
	if err := jobClient.Start(ctx); err != nil {
		t.Fatal(err)
	}
	fmt.Println("crash worker: started")
	select {} // until SIGKILL
}

// TestWorkersKilledMidTask is the issue's crash test: "stop the workers
// mid-execution and start new ones: every request completes and no task's
// effect or email happens twice". A worker process (this test binary,
// re-executed as TestCrashWorkerProcess) runs the engine against the test's
// database with connector calls stretched to ~150 ms, and is SIGKILLed while
// tasks run; an in-process engine then takes over. The jobs the dead
// process held come back when their leases lapse (a second here; River's
// rescuer, after RescueAfter, is the backstop); the connector's idempotency
// keys make a rerun of a task whose effect had committed a no-op.
func TestWorkersKilledMidTask(t *testing.T) {
	t.Parallel()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	keys := "k1:" + base64.StdEncoding.EncodeToString(secret)
	r := newRig(t, rigOpts{
		engine: loadSmallEngine(t), keys: keys, noStart: true,
		jobs: jobs.Config{JobTimeout: time.Second, RescueAfter: 2 * time.Second, Lease: time.Second},
	})
	ctx := context.Background()

	// 12 erasures (approved) and 12 access requests, entered by staff for
	// email subjects, so each ends with a completion email.
	const perType = 12
	type req struct{ id, typ, email string }
	var reqs []req
	for i := 0; i < 2*perType; i++ {
		tg := strconv.Itoa(8_000_000 + i)
		email := fmt.Sprintf("crash%d@example.com", i)
		r.seedBotUser(tg)
		if err := r.store.Link(ctx, connectors.Identity{Type: "email", Value: email}, connectors.Identity{Type: "tg", Value: tg}); err != nil {
			t.Fatal(err)
		}
		typ := "access"
		if i%2 == 0 {
			typ = "erasure"
		}
		c, err := r.svc.Create(ctx, dsar.CreateInput{
			Type: typ, Subject: identity.MustParse("email:" + email), Region: "DE", Channel: dsar.ChannelStaff,
			IsStaff: true, IdentityVerified: true, Note: "by post", Actor: "key:reviewer",
		})
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, req{c.Request.ID, typ, email})
	}

	spec, _ := json.Marshal(crashWorker{DB: r.url, Keys: keys, Mode: "work", Lease: time.Second})
	var out testutil.SyncBuffer
	var cmd *exec.Cmd
	start := func() {
		t.Helper()
		cmd = exec.Command(os.Args[0], "-test.run=^TestCrashWorkerProcess$", "-test.v")
		cmd.Env = append(os.Environ(), crashWorkerEnv+"="+string(spec))
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}
	kill := func() {
		if cmd != nil {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
			cmd = nil
		}
	}
	t.Cleanup(kill)
	start()

	// Planning needs the worker, so approval waits for it.
	deadline := time.Now().Add(60 * time.Second)
	for _, q := range reqs {
		if q.typ != "erasure" {
			continue
		}
		for {
			d, err := r.svc.Get(ctx, q.id)
			if err != nil {
				t.Fatal(err)
			}
			if d.Status == dsar.AwaitingApproval {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("erasure %s still %s; worker output:\n%s", q.id, d.Status, out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := r.svc.Approve(ctx, q.id, "key:reviewer", ""); err != nil {
			t.Fatal(err)
		}
	}

	// Kill it in the worst moment: while an erasure's effect has committed
	// in the connector and the engine has not yet recorded the task done.
	// The moment is seen by polling, so the worker may get past it before
	// the signal lands (on a loaded machine): then another worker process
	// takes over the work, and is killed in turn.
	const unackedQuery = `SELECT count(*) FROM privacy_request_tasks t
		JOIN recordstore_effects e ON e.idempotency_key = t.id::text || ':' || t.run WHERE t.status = 'running'`
	const tasks = 2 * perType * 5
	var killedAt time.Time
	for attempt := 1; ; attempt++ {
		for {
			succeeded := r.count(`SELECT count(*) FROM privacy_request_tasks WHERE status = 'succeeded'`)
			if succeeded >= tasks/4 && r.count(unackedQuery) > 0 {
				break
			}
			if time.Now().After(deadline) || succeeded == tasks {
				t.Fatalf("no moment to kill the worker: %d of %d tasks succeeded; output:\n%s", succeeded, tasks, out.String())
			}
			time.Sleep(2 * time.Millisecond)
		}
		kill()
		killedAt = time.Now()
		running := r.count(`SELECT count(*) FROM privacy_request_tasks WHERE status = 'running'`)
		pending := r.count(`SELECT count(*) FROM privacy_request_tasks WHERE status = 'pending'`)
		unacked := r.count(unackedQuery)
		t.Logf("worker %d killed with %d tasks running (%d of them erasures whose effect had committed), %d pending", attempt, running, unacked, pending)
		if unacked > 0 {
			break
		}
		if attempt == 5 {
			t.Fatal("five workers were killed, none while an erasure awaited its acknowledgment")
		}
		start()
	}
	if o := out.String(); !strings.Contains(o, "crash worker: started") || strings.Contains(o, "DATA RACE") {
		t.Fatalf("worker output:\n%s", o)
	}

	// New workers.
	sctx, cancel := context.WithCancel(ctx)
	if err := r.jobs.Start(sctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cc := context.WithTimeout(context.Background(), 10*time.Second)
		defer cc()
		_ = r.jobs.Stop(c)
		cancel()
	})
	deadline = time.Now().Add(120 * time.Second)
	for {
		done := r.count(`SELECT count(*) FROM privacy_requests WHERE status = 'completed'`)
		if done == len(reqs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests completed %s after the kill", done, len(reqs), time.Since(killedAt))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("all %d requests completed %s after the kill", len(reqs), time.Since(killedAt).Round(time.Millisecond))

	// No effect twice: one per erase task, under the task's one run.
	for _, q := range reqs {
		d, err := r.svc.Get(ctx, q.id)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Tasks) != 5 {
			t.Errorf("%s: %d tasks", q.id, len(d.Tasks))
		}
		for _, task := range d.Tasks {
			if task.Status != dsar.TaskSucceeded || task.Run != 1 {
				t.Errorf("%s task %s: %s run %d", q.typ, task.Dataset, task.Status, task.Run)
			}
			switch q.typ {
			case "erasure":
				if n, err := r.store.Effects(ctx, task.ID+":1"); err != nil || n != 1 {
					t.Errorf("erase task %s applied %d effects (%v)", task.ID, n, err)
				}
			case "access":
				if n := r.count(`SELECT count(*) FROM privacy_request_records WHERE task_id = $1`, task.ID); n != 1 {
					t.Errorf("access task %s holds %d records, want its subject's 1", task.ID, n)
				}
			}
		}
		// A rerun after the kill reports what the one application did (the
		// connector returns the stored result), not a second, empty pass.
		if q.typ == "erasure" {
			if del, masked := taskResults(t, d, "deleted"), taskResults(t, d, "masked"); del != 3 || masked != 2 {
				t.Errorf("%s: erasure reports %d deleted and %d masked, want 3 and 2", q.id, del, masked)
			}
		}
		if n := r.count(`SELECT count(*) FROM privacy_request_events WHERE request_id = $1 AND event = 'complete'`, q.id); n != 1 {
			t.Errorf("%s completed %d times", q.id, n)
		}
	}
	if n := r.count(`SELECT count(*) FROM recordstore_effects`); n != perType*5 {
		t.Errorf("%d effects recorded for %d erase tasks", n, perType*5)
	}
	// The erasures erased: every erased subject's account is gone.
	for i, q := range reqs {
		if _, _, ok := r.record("bot_db", "tg_users", strconv.Itoa(8_000_000+i)); ok == (q.typ == "erasure") {
			t.Errorf("%s of subject %d: account present %v", q.typ, i, ok)
		}
	}

	// No email twice: one acknowledgment and one completion per request.
	if n := r.count(`SELECT count(*) FROM outbox WHERE payload->>'template' = 'request_completed'`); n != len(reqs) {
		t.Errorf("%d completion emails queued for %d requests", n, len(reqs))
	}
	r.clk.Set(time.Now()) // the dead worker queued its emails on the real clock
	completed := map[string]int{}
	for _, e := range r.deliver() {
		if strings.Contains(e.Subject, "has been completed") {
			for _, q := range reqs {
				if strings.Contains(e.Subject, q.id) {
					completed[q.id]++
					if len(e.To) != 1 || e.To[0] != q.email {
						t.Errorf("completion of %s sent to %v", q.id, e.To)
					}
				}
			}
		}
	}
	for _, q := range reqs {
		if completed[q.id] != 1 {
			t.Errorf("%s: %d completion emails delivered", q.id, completed[q.id])
		}
	}
}

// TestKilledReplicaTakenOverByLease is issue 20's "recovery in seconds": a
// replica hangs in the middle of tasks (each erasure's effect committed,
// not yet recorded) while a second replica works the same database; the
// hung tasks stay the first replica's as long as it lives (its leases are
// renewed), and once it is SIGKILLed the second takes them over by their
// lapsed leases and completes every request, each effect once, the audit
// chain whole. JobTimeout is ten minutes here, so River's own rescuer
// (JobTimeout + 5m) cannot be what recovers them.
func TestKilledReplicaTakenOverByLease(t *testing.T) {
	t.Parallel()
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	keys := "k1:" + base64.StdEncoding.EncodeToString(secret)
	const lease = time.Second
	r := newRig(t, rigOpts{
		engine: loadSmallEngine(t), keys: keys, noStart: true,
		jobs: jobs.Config{JobTimeout: 10 * time.Minute, Lease: lease},
	})
	ctx := context.Background()

	const n = 6 // erasures and access requests, alternately
	type req struct{ id, typ string }
	var reqs []req
	for i := 0; i < n; i++ {
		tg := strconv.Itoa(8_100_000 + i)
		email := fmt.Sprintf("lease%d@example.com", i)
		r.seedBotUser(tg)
		if err := r.store.Link(ctx, connectors.Identity{Type: "email", Value: email}, connectors.Identity{Type: "tg", Value: tg}); err != nil {
			t.Fatal(err)
		}
		typ := "access"
		if i%2 == 0 {
			typ = "erasure"
		}
		c, err := r.svc.Create(ctx, dsar.CreateInput{
			Type: typ, Subject: identity.MustParse("email:" + email), Region: "DE", Channel: dsar.ChannelStaff,
			IsStaff: true, IdentityVerified: true, Note: "by post", Actor: "key:reviewer",
		})
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, req{c.Request.ID, typ})
	}

	spec, _ := json.Marshal(crashWorker{DB: r.url, Keys: keys, Mode: "block", Lease: lease})
	var out testutil.SyncBuffer
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWorkerProcess$", "-test.v")
	cmd.Env = append(os.Environ(), crashWorkerEnv+"="+string(spec))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
		}
	}
	t.Cleanup(kill)

	deadline := time.Now().Add(60 * time.Second)
	wait := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; worker output:\n%s", what, out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for _, q := range reqs {
		if q.typ != "erasure" {
			continue
		}
		wait("erasure "+q.id+" planned", func() bool {
			d, err := r.svc.Get(ctx, q.id)
			if err != nil {
				t.Fatal(err)
			}
			return d.Status == dsar.AwaitingApproval
		})
		if _, err := r.svc.Approve(ctx, q.id, "key:reviewer", ""); err != nil {
			t.Fatal(err)
		}
	}
	// The first replica hangs with every erasure's first effect applied
	// and unrecorded.
	const hungQuery = `SELECT t.id::text FROM privacy_request_tasks t
		JOIN recordstore_effects e ON e.idempotency_key = t.id::text || ':' || t.run
		WHERE t.status = 'running' ORDER BY t.id`
	wait("the first replica to hang mid-erasure", func() bool { return r.count(`SELECT count(*) FROM (`+hungQuery+`) h`) >= n/2 })
	rows, err := r.pool.Query(ctx, hungQuery)
	if err != nil {
		t.Fatal(err)
	}
	var hung []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		hung = append(hung, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	// The second replica starts beside the live, hung one and sweeps for
	// lapsed leases for several leases: it takes nothing over.
	sctx, cancel := context.WithCancel(ctx)
	if err := r.jobs.Start(sctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cc := context.WithTimeout(context.Background(), 10*time.Second)
		defer cc()
		_ = r.jobs.Stop(c)
		cancel()
	})
	for i := 0; i < 4; i++ {
		time.Sleep(lease)
		if took, err := r.jobs.SweepLeases(ctx); err != nil || took != 0 {
			t.Fatalf("a sweep took %d jobs of a live replica over (%v)", took, err)
		}
	}
	for _, id := range hung {
		if n := r.count(`SELECT count(*) FROM privacy_request_tasks WHERE id = $1 AND status = 'running' AND attempts = 1`, id); n != 1 {
			t.Errorf("hung task %s was claimed again while its replica lived", id)
		}
	}
	if n := r.count(`SELECT count(*) FROM river_job WHERE metadata ? 'steward:lease_takeovers'`); n != 0 {
		t.Errorf("%d jobs taken over while their replica lived", n)
	}

	kill()
	killedAt := time.Now()
	deadline = time.Now().Add(60 * time.Second) // a guard: the lease is a second
	wait("every request to complete", func() bool {
		return r.count(`SELECT count(*) FROM privacy_requests WHERE status = 'completed'`) == n
	})
	t.Logf("%d tasks hung; all %d requests completed %s after the kill (lease %s)", len(hung), n, time.Since(killedAt).Round(time.Millisecond), lease)

	// Taken over by their leases, claimed once more, effect once.
	for _, id := range hung {
		if c := r.count(`SELECT count(*) FROM river_job WHERE args->>'task_id' = $1 AND (metadata->>'steward:lease_takeovers')::int >= 1`, id); c != 1 {
			t.Errorf("hung task %s: its job was not taken over by lease", id)
		}
		if c := r.count(`SELECT count(*) FROM privacy_request_tasks WHERE id = $1 AND status = 'succeeded' AND attempts = 2`, id); c != 1 {
			t.Errorf("hung task %s: not succeeded on its second claim", id)
		}
	}
	for _, q := range reqs {
		d, err := r.svc.Get(ctx, q.id)
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range d.Tasks {
			if task.Status != dsar.TaskSucceeded || task.Run != 1 {
				t.Errorf("%s task %s: %s run %d", q.typ, task.Dataset, task.Status, task.Run)
			}
			if q.typ == "erasure" {
				if c, err := r.store.Effects(ctx, task.ID+":1"); err != nil || c != 1 {
					t.Errorf("erase task %s applied %d effects (%v)", task.ID, c, err)
				}
			}
		}
		if c := r.count(`SELECT count(*) FROM privacy_request_events WHERE request_id = $1 AND event = 'complete'`, q.id); c != 1 {
			t.Errorf("%s completed %d times", q.id, c)
		}
	}
	if c := r.count(`SELECT count(*) FROM outbox WHERE payload->>'template' = 'request_completed'`); c != n {
		t.Errorf("%d completion emails queued for %d requests", c, n)
	}
	if res, err := audit.Verify(ctx, r.pool, audit.Keys{}, nil); err != nil || !res.OK {
		t.Errorf("audit chain after the takeover: %v (%v)", res, err)
	}
}
