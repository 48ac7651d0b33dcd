package jobs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/jobs"
)

type longArgs struct{ N int }

func (longArgs) Kind() string { return "jobs_test.long" }

// sleeper counts its runs and works each for d (or until its context ends).
type sleeper struct {
	river.WorkerDefaults[longArgs]
	runs, done atomic.Int64
	d          time.Duration
}

func (s *sleeper) Work(ctx context.Context, _ *river.Job[longArgs]) error {
	s.runs.Add(1)
	select {
	case <-time.After(s.d):
		s.done.Add(1)
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// Timeout keeps River's own timeout and rescuer out of the way: only the
// lease can take a job over here.
func (s *sleeper) Timeout(*river.Job[longArgs]) time.Duration { return time.Hour }

// replica is one working client on pool, as another process would run it.
func replica(t *testing.T, pool *pgxpool.Pool, lease time.Duration, w *sleeper) *jobs.Client {
	t.Helper()
	c := jobs.New(pool, jobs.Config{Work: true, FetchPoll: 20 * time.Millisecond, Lease: lease, JobTimeout: time.Hour}, nil)
	jobs.AddWorker(c, w)
	c.Queue(river.QueueDefault, 2)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Stop(ctx)
	})
	return c
}

// A job that runs for several leases on a live replica is never taken
// over by the other replica sweeping beside it: its lease is renewed.
func TestLeaseRenewedWhileJobRuns(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	const lease = 2 * time.Second
	a, b := &sleeper{d: 3 * lease}, &sleeper{d: 3 * lease}
	ca := replica(t, pool, lease, a)
	cb := replica(t, pool, lease, b)
	insert(t, pool, ca, true, longArgs{N: 1})
	waitFor(t, "the job to start", func() bool { return a.runs.Load()+b.runs.Load() == 1 })
	// Sweep explicitly too, past the first lease's end.
	for i := 0; i < 5; i++ {
		time.Sleep(lease / 2)
		if n, err := cb.SweepLeases(context.Background()); err != nil || n != 0 {
			t.Fatalf("sweep took %d live jobs over (%v)", n, err)
		}
	}
	waitFor(t, "the job recorded completed", func() bool { return jobCount(t, pool, `state = 'completed'`) == 1 })
	if runs, done := a.runs.Load()+b.runs.Load(), a.done.Load()+b.done.Load(); runs != 1 || done != 1 {
		t.Errorf("the job ran %d times (%d to the end), want once", runs, done)
	}
	if n := jobCount(t, pool, `attempt = 1 AND errors IS NULL`); n != 1 {
		t.Errorf("the job was retried or recorded an error (%d clean)", n)
	}
	var leases int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM job_leases`).Scan(&leases); err != nil || leases != 0 {
		t.Errorf("%d leases left after the job ended (%v)", leases, err)
	}
}

// A job left running by a dead process (fetched, lease lapsed, or never
// leased) goes back to the queue at the next sweep and is worked by a live
// replica, with the takeover in its errors; River's rescuer (an hour away
// here) plays no part.
func TestLeaseLapsedJobIsTakenOver(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	ctx := context.Background()
	const lease = time.Second
	w := &sleeper{d: time.Millisecond}
	c := jobs.New(pool, jobs.Config{Work: true, FetchPoll: 20 * time.Millisecond, Lease: lease, JobTimeout: time.Hour}, nil)
	jobs.AddWorker(c, w)
	c.Queue(river.QueueDefault, 2)
	insert(t, pool, c, true, longArgs{N: 1})
	insert(t, pool, c, true, longArgs{N: 2})
	insert(t, pool, c, true, longArgs{N: 3})
	// What a killed process leaves: 1 running under a lapsed lease, 2
	// running with no lease (killed between fetch and lease), 3 running
	// under a live lease (a replica still at work: left alone).
	if _, err := pool.Exec(ctx, `
		UPDATE river_job SET state = 'running', attempt = 1, attempted_at = now() - interval '1 minute'`); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO job_leases (job_id, owner, expires_at)
		SELECT id, 'dead', now() - interval '1 second' FROM river_job WHERE args->>'N' = '1'
		UNION ALL SELECT id, 'alive', now() + interval '1 hour' FROM river_job WHERE args->>'N' = '3'`); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = c.Stop(sctx)
	})
	waitFor(t, "the dead jobs completed", func() bool { return jobCount(t, pool, `state = 'completed'`) == 2 })
	if n := jobCount(t, pool, `state = 'completed' AND attempt = 2 AND errors[1]->>'error' LIKE 'job lease lapsed%'
		AND (metadata->>'steward:lease_takeovers')::int = 1`); n != 2 {
		t.Errorf("%d jobs completed as takeovers, want 2", n)
	}
	if n := jobCount(t, pool, `state = 'running' AND args->>'N' = '3'`); n != 1 || w.runs.Load() != 2 {
		t.Errorf("the live replica's job was taken over (running %d, runs %d)", n, w.runs.Load())
	}
}
