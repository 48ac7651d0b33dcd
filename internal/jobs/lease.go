package jobs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Leases are how a crashed replica's jobs come back within seconds.
//
// River has no job heartbeat: a job whose process died stays "running"
// until River's rescuer finds it, and the rescuer may only rescue a job
// that has run longer than its timeout (RescueStuckJobsAfter >= JobTimeout),
// runs every 30 s, and only on the elected leader (which may be the dead
// process, ~15 s to re-elect). With a JobTimeout long enough for a slow
// connector that is a quarter of an hour.
//
// So every job worked here holds a lease in job_leases: taken before the
// worker runs, renewed every Lease/3 while it runs, deleted when it
// returns. Every worker replica sweeps every Lease/3 for running jobs whose
// lease lapsed (or that never got one: the process died between River's
// fetch and the lease) and hands them back to the queue, where any replica
// (the restarted one too) takes them. A crash costs at most about
// Lease + Lease/3 + FetchPoll; a live job, however long, is never taken
// over, because its lease keeps being renewed.
//
// A worker that cannot renew (its database connection is gone) stops
// itself before its lease can lapse (the fence, at 3/4 of Lease after the
// last renewal began), so a job is never worked by two live replicas at
// once; the one that lost it only keeps running the code that does not
// check its context. Work must still be idempotent: a process can die
// after an effect and before recording it, which is what the connectors'
// idempotency keys are for.

// ErrLeaseLost cancels a job's context when its lease could not be
// renewed in time or was taken over: another replica works the job now.
var ErrLeaseLost = errors.New("jobs: job lease lost; another replica takes the job over")

// leaseMiddleware holds a lease on every job this process works.
type leaseMiddleware struct {
	river.MiddlewareDefaults
	pool  *pgxpool.Pool
	ttl   time.Duration
	owner string // this process, for the lease rows it holds
	log   *slog.Logger
}

var _ rivertype.WorkerMiddleware = (*leaseMiddleware)(nil)

func newLeaseMiddleware(pool *pgxpool.Pool, ttl time.Duration, log *slog.Logger) *leaseMiddleware {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand does not fail
	return &leaseMiddleware{pool: pool, ttl: ttl, owner: hex.EncodeToString(b), log: log}
}

// fenceAfter is how long after a renewal began the worker may still
// assume it holds the lease: a quarter of the lease is margin for the
// renewal's own latency and for the sweeper's clock.
func (m *leaseMiddleware) fenceAfter() time.Duration { return m.ttl * 3 / 4 }

func (m *leaseMiddleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	// One token per attempt: a takeover's renewal must not succeed for
	// the attempt it replaced.
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	owner := m.owner + ":" + hex.EncodeToString(b)
	began := time.Now()
	if _, err := m.pool.Exec(ctx, `
		INSERT INTO job_leases (job_id, owner, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
		ON CONFLICT (job_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at`,
		job.ID, owner, m.ttl.Milliseconds()); err != nil {
		return fmt.Errorf("jobs: take lease on job %d: %w", job.ID, err)
	}
	wctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.keep(wctx, job, owner, began, cancel, stop)
	}()
	err := doInner(wctx)
	close(stop)
	wg.Wait()
	if cause := context.Cause(wctx); errors.Is(cause, ErrLeaseLost) {
		// err stays what the work said: if it finished anyway, the
		// replica that took over finds nothing left to do.
		m.log.WarnContext(ctx, "job lease lost while working", "job_id", job.ID, "kind", job.Kind, "err", err)
	}
	// Released even when the job's context is done (shutdown, timeout):
	// a lease left behind would only delay nothing (the job is no longer
	// running), but the row would linger until the sweep.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer rcancel()
	if _, rerr := m.pool.Exec(rctx, `DELETE FROM job_leases WHERE job_id = $1 AND owner = $2`, job.ID, owner); rerr != nil {
		m.log.WarnContext(ctx, "releasing a job lease failed", "job_id", job.ID, "err", rerr)
	}
	return err
}

// keep renews the lease until stop, and cancels the job when it cannot.
func (m *leaseMiddleware) keep(ctx context.Context, job *rivertype.JobRow, owner string, began time.Time, cancel context.CancelCauseFunc, stop <-chan struct{}) {
	fence := time.AfterFunc(m.fenceAfter()-time.Since(began), func() { cancel(ErrLeaseLost) })
	defer fence.Stop()
	tick := time.NewTicker(m.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t0 := time.Now()
		tag, err := m.pool.Exec(ctx, `UPDATE job_leases SET expires_at = now() + $3 * interval '1 millisecond' WHERE job_id = $1 AND owner = $2`,
			job.ID, owner, m.ttl.Milliseconds())
		switch {
		case err != nil:
			// Retried on the next tick; the fence ends the job if the
			// database stays out of reach.
			m.log.WarnContext(ctx, "renewing a job lease failed", "job_id", job.ID, "kind", job.Kind, "err", err)
		case tag.RowsAffected() == 0:
			cancel(ErrLeaseLost)
			return
		default:
			fence.Reset(m.fenceAfter() - time.Since(t0))
		}
	}
}

// sweepQuery hands running jobs whose lease lapsed back to the queue, as
// River's rescuer would (an error appended; retried while attempts remain,
// discarded after), and drops their leases. A running job without a lease
// is one whose process died before taking it; twice the lease is ample
// for a live worker to take it (the rows are written milliseconds apart).
// SKIP LOCKED lets every replica sweep at once without waiting on each
// other.
const sweepQuery = `
WITH lapsed AS (
	SELECT j.id FROM river_job j LEFT JOIN job_leases l ON l.job_id = j.id
	WHERE j.state = 'running'
	  AND (l.expires_at < now() OR (l.job_id IS NULL AND j.attempted_at < now() - 2 * $1 * interval '1 millisecond'))
	ORDER BY j.id LIMIT 1000
	FOR UPDATE OF j SKIP LOCKED
), freed AS (
	DELETE FROM job_leases WHERE job_id IN (SELECT id FROM lapsed)
)
UPDATE river_job j SET
	state = CASE WHEN j.attempt < j.max_attempts THEN 'available' ELSE 'discarded' END::river_job_state,
	scheduled_at = now(),
	finalized_at = CASE WHEN j.attempt < j.max_attempts THEN NULL ELSE now() END,
	errors = array_append(j.errors, jsonb_build_object('at', now(), 'attempt', j.attempt, 'error', $2::text, 'trace', '')),
	metadata = j.metadata || jsonb_build_object('steward:lease_takeovers',
		coalesce((j.metadata ->> 'steward:lease_takeovers')::int, 0) + 1)
FROM lapsed WHERE j.id = lapsed.id
RETURNING j.id, j.kind, j.attempt, j.state::text`

// takeoverError is what a taken-over job's errors record.
const takeoverError = "job lease lapsed: its worker is presumed dead; taken over"

// sweep runs sweepQuery once and drops leases left by jobs that ended
// without releasing them.
func (m *leaseMiddleware) sweep(ctx context.Context) (int, error) {
	rows, err := m.pool.Query(ctx, sweepQuery, m.ttl.Milliseconds(), takeoverError)
	if err != nil {
		return 0, fmt.Errorf("jobs: sweep lapsed leases: %w", err)
	}
	n := 0
	for rows.Next() {
		var id int64
		var kind, state string
		var attempt int
		if err := rows.Scan(&id, &kind, &attempt, &state); err != nil {
			rows.Close()
			return n, fmt.Errorf("jobs: sweep lapsed leases: %w", err)
		}
		n++
		m.log.WarnContext(ctx, "job's lease lapsed; taken over from a dead worker", "job_id", id, "kind", kind, "attempt", attempt, "state", state)
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("jobs: sweep lapsed leases: %w", err)
	}
	if _, err := m.pool.Exec(ctx, `
		DELETE FROM job_leases l WHERE l.expires_at < now() - interval '1 minute'
		AND NOT EXISTS (SELECT 1 FROM river_job j WHERE j.id = l.job_id AND j.state = 'running')`); err != nil {
		return n, fmt.Errorf("jobs: drop stale leases: %w", err)
	}
	return n, nil
}

// sweepLoop sweeps every Lease/3 until ctx ends.
func (m *leaseMiddleware) sweepLoop(ctx context.Context) {
	tick := time.NewTicker(m.ttl / 3)
	defer tick.Stop()
	for {
		if _, err := m.sweep(ctx); err != nil && ctx.Err() == nil {
			m.log.WarnContext(ctx, "sweeping job leases failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
