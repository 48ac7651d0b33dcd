package jobs_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/jobs"
)

type pingArgs struct{ N int }

func (pingArgs) Kind() string { return "jobs_test.ping" }

type sweepArgs struct{ N int }

func (sweepArgs) Kind() string                 { return "jobs_test.sweep" }
func (sweepArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: "other"} }

// counter counts the jobs it worked, by N.
type counter[T interface {
	river.JobArgs
	n() int
}] struct {
	river.WorkerDefaults[T]
	sum  *atomic.Int64
	fail *atomic.Int64 // fails this many times before succeeding
}

func (p pingArgs) n() int  { return p.N }
func (s sweepArgs) n() int { return s.N }

func (c *counter[T]) Work(_ context.Context, job *river.Job[T]) error {
	if c.fail != nil && c.fail.Add(-1) >= 0 {
		return errors.New("fails once")
	}
	c.sum.Add(int64(job.Args.n()))
	return nil
}

func insert(t *testing.T, pool *pgxpool.Pool, c *jobs.Client, commit bool, args river.JobArgs) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := c.InsertTx(ctx, tx, args, nil); err != nil {
		t.Fatal(err)
	}
	if commit {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func jobCount(t *testing.T, pool *pgxpool.Pool, where string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE `+where).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Two features register on one client: each one's jobs run on its own
// queue, a job exists only if its transaction committed, and a failed job
// is retried with the client's backoff.
func TestOneClientForEveryFeature(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	c := jobs.New(pool, jobs.Config{Work: true, FetchPoll: 20 * time.Millisecond, RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond}, nil)
	var pings, sweeps, failOnce atomic.Int64
	failOnce.Store(1)
	jobs.AddWorker(c, &counter[pingArgs]{sum: &pings, fail: &failOnce})
	c.Queue(river.QueueDefault, 2)
	jobs.AddWorker(c, &counter[sweepArgs]{sum: &sweeps})
	c.Queue("other", 1)
	c.Queue("other", 0) // a smaller second claim keeps the larger

	insert(t, pool, c, false, pingArgs{N: 1000}) // rolled back: never runs
	insert(t, pool, c, true, pingArgs{N: 1})
	insert(t, pool, c, true, sweepArgs{N: 10})
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	waitFor(t, "both jobs", func() bool { return pings.Load() == 1 && sweeps.Load() == 10 })
	// River records completions asynchronously, just after the work.
	waitFor(t, "both jobs recorded completed", func() bool { return jobCount(t, pool, `state = 'completed'`) == 2 })
	if n := jobCount(t, pool, `kind = 'jobs_test.ping' AND attempt = 2`); n != 1 {
		t.Errorf("the failing ping: %d completed on attempt 2, want 1 (retried once)", n)
	}
	if n := jobCount(t, pool, `kind = 'jobs_test.sweep' AND queue = 'other'`); n != 1 {
		t.Errorf("sweeps on queue other: %d, want 1", n)
	}
	if n := jobCount(t, pool, `true`); n != 2 {
		t.Errorf("jobs in the table: %d, want 2 (the rolled-back one never existed)", n)
	}
}

// An insert-only client (a CLI command) queues jobs for the replicas that
// work them and runs none itself; Start and Stop do nothing.
func TestInsertOnlyClientRunsNothing(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	c := jobs.New(pool, jobs.Config{FetchPoll: 20 * time.Millisecond}, nil)
	var pings atomic.Int64
	jobs.AddWorker(c, &counter[pingArgs]{sum: &pings})
	c.Queue(river.QueueDefault, 1)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	insert(t, pool, c, true, pingArgs{N: 1})
	time.Sleep(300 * time.Millisecond) // ample for a working client (20 ms poll)
	if pings.Load() != 0 || jobCount(t, pool, `state = 'available'`) != 1 {
		t.Errorf("an insert-only client worked a job (%d) or did not queue it", pings.Load())
	}
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Registering after the client was built is a wiring bug, stopped at once.
func TestRegisteringLatePanics(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	c := jobs.New(pool, jobs.Config{}, nil)
	jobs.AddWorker(c, &counter[pingArgs]{sum: new(atomic.Int64)})
	insert(t, pool, c, true, pingArgs{N: 1}) // builds the client
	for name, late := range map[string]func(){
		"worker": func() { jobs.AddWorker(c, &counter[sweepArgs]{sum: new(atomic.Int64)}) },
		"queue":  func() { c.Queue("late", 1) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("a %s registered after the client was built was accepted", name)
				}
			}()
			late()
		}()
	}
}
