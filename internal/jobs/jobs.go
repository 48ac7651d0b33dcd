// Package jobs owns Steward's durable job client: one River client per
// process, on Steward's PostgreSQL, with the queues this process works and
// the registry of every feature's workers. Features (privacy requests,
// retention sweeps) register their workers and queues here while the
// process is wired; the client is built on first use, after which the
// registry is closed. Wiring starts and stops it, once, for everyone.
//
// Jobs are inserted in the caller's transaction (InsertTx), so a job exists
// if and only if the change that asked for it committed. Every job worked
// holds a lease renewed while it runs, so a replica that dies mid-job has
// its jobs taken over by another within seconds (lease.go).
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// Config tunes the client. Zero fields take the defaults noted.
type Config struct {
	// Work runs the registered workers in this process; false makes an
	// insert-only client (a CLI command, a replica that only serves).
	Work bool

	MaxAttempts int           // attempts of a job before it is discarded (a job may set its own); 8
	RetryBase   time.Duration // first retry delay, doubled each attempt; 1s
	RetryMax    time.Duration // cap on the retry delay; 10m
	FetchPoll   time.Duration // how often idle workers look for jobs (LISTEN wakes them sooner); 100ms
	JobTimeout  time.Duration // one job's run, unless its worker says otherwise; 10m
	// RescueAfter is River's own backstop: a job running this long is
	// presumed dead and retried, lease or not; JobTimeout + 5m.
	RescueAfter time.Duration
	// Lease is how long a job's lease lasts unrenewed (see lease.go): a
	// replica that dies mid-job has its jobs taken over about Lease +
	// Lease/3 later. Renewed every Lease/3 while the job runs; 15s.
	Lease time.Duration
	// PollOnly keeps River off LISTEN (new-job wake-ups, leader
	// resignations), for a pool behind a transaction pooler, where a
	// LISTEN lasts only until the server connection is handed to another
	// client. Idle workers then find jobs by the FetchPoll poll alone, and a
	// resigned River leader is replaced within about five seconds.
	PollOnly bool
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	def(&c.RetryBase, time.Second)
	def(&c.RetryMax, 10*time.Minute)
	// LISTEN wakes idle workers on insert, but River sends no insert
	// notification within FetchCooldown (5ms) of its previous one: jobs
	// queued a few milliseconds after another (a request's tasks after its
	// planning job) are found by this poll alone (a 1s poll made such a
	// request take ~1s).
	def(&c.FetchPoll, 100*time.Millisecond)
	def(&c.JobTimeout, 10*time.Minute)
	def(&c.RescueAfter, c.JobTimeout+5*time.Minute)
	def(&c.Lease, 15*time.Second)
	return c
}

// Client is the process's job client and worker registry.
type Client struct {
	pool    *pgxpool.Pool
	cfg     Config
	log     *slog.Logger
	workers *river.Workers

	lease *leaseMiddleware

	mu     sync.Mutex
	queues map[string]river.QueueConfig
	river  *river.Client[pgx.Tx]
	err    error
	// sweeping stops the lease sweep (Stop), swept is closed when it has.
	sweeping context.CancelFunc
	swept    chan struct{}
}

// New returns a client on pool; register workers and queues, then Start.
func New(pool *pgxpool.Pool, cfg Config, log *slog.Logger) *Client {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	return &Client{pool: pool, cfg: cfg, log: log, workers: river.NewWorkers(), queues: map[string]river.QueueConfig{},
		lease: newLeaseMiddleware(pool, cfg.Lease, log.With("component", "jobs"))}
}

// errClosed is a registration after the client was built: a wiring bug,
// since River cannot learn of a worker once its client exists.
var errClosed = errors.New("jobs: register workers and queues before the client is used")

// AddWorker registers w for its job kind. It panics when called after
// the client was built (a wiring mistake, found by the first test).
func AddWorker[T river.JobArgs](c *Client, w river.Worker[T]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.river != nil {
		panic(errClosed)
	}
	river.AddWorker(c.workers, w)
}

// Queue makes this process work the named queue with up to maxWorkers
// jobs at once (when Config.Work); a queue named twice keeps the larger.
func (c *Client) Queue(name string, maxWorkers int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.river != nil {
		panic(errClosed)
	}
	if maxWorkers < 1 {
		maxWorkers = 1
	}
	if q, ok := c.queues[name]; !ok || q.MaxWorkers < maxWorkers {
		c.queues[name] = river.QueueConfig{MaxWorkers: maxWorkers}
	}
}

// retryPolicy is exponential backoff from RetryBase, capped at RetryMax.
// River's default (attempt^4 seconds) waits minutes by the fifth attempt,
// which is long for a request with a legal deadline and a rate-limited API
// that asked for seconds.
type retryPolicy struct{ base, max time.Duration }

func (p retryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	d := p.base
	for i := 1; i < job.Attempt && d < p.max; i++ {
		d *= 2
	}
	return time.Now().Add(min(d, p.max))
}

// client builds the River client on first use.
func (c *Client) client() (*river.Client[pgx.Tx], error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.river != nil || c.err != nil {
		return c.river, c.err
	}
	cfg := &river.Config{
		Logger:               c.log.With("component", "river"),
		Workers:              c.workers,
		RetryPolicy:          retryPolicy{base: c.cfg.RetryBase, max: c.cfg.RetryMax},
		MaxAttempts:          c.cfg.MaxAttempts,
		JobTimeout:           c.cfg.JobTimeout,
		RescueStuckJobsAfter: c.cfg.RescueAfter,
		FetchPollInterval:    c.cfg.FetchPoll,
		// Jobs are chained (a request's plan, then its tasks): the default
		// 100 ms between fetches would be most of a request's run time.
		FetchCooldown: 5 * time.Millisecond,
		PollOnly:      c.cfg.PollOnly,
		// Every job worked here holds a lease renewed while it runs, so a
		// dead replica's jobs are taken over in seconds (lease.go).
		Middleware: []rivertype.Middleware{c.lease},
	}
	if c.cfg.Work && len(c.queues) > 0 {
		cfg.Queues = maps.Clone(c.queues)
	}
	rc, err := river.NewClient(riverpgxv5.New(c.pool), cfg)
	if err != nil {
		c.err = fmt.Errorf("jobs: river client: %w", err)
		return nil, c.err
	}
	c.river = rc
	return rc, nil
}

// InsertTx queues a job in tx: it runs only if tx commits.
func (c *Client) InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	rc, err := c.client()
	if err != nil {
		return nil, err
	}
	return rc.InsertTx(ctx, tx, args, opts)
}

// InsertManyTx queues several jobs in tx.
func (c *Client) InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	rc, err := c.client()
	if err != nil {
		return nil, err
	}
	return rc.InsertManyTx(ctx, tx, params)
}

// Start runs the registered workers (when Config.Work) until Stop.
func (c *Client) Start(ctx context.Context) error {
	rc, err := c.client()
	if err != nil {
		return err
	}
	if !c.cfg.Work {
		return nil
	}
	if err := rc.Start(ctx); err != nil {
		return fmt.Errorf("jobs: start workers: %w", err)
	}
	// Every working replica sweeps, not only River's leader: the dead
	// replica may have been the leader.
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sweeping == nil {
		sctx, cancel := context.WithCancel(ctx)
		c.sweeping, c.swept = cancel, make(chan struct{})
		go func() {
			defer close(c.swept)
			c.lease.sweepLoop(sctx)
		}()
	}
	return nil
}

// SweepLeases takes over, once, the running jobs whose lease lapsed (a
// working client does so every Lease/3) and says how many it took.
func (c *Client) SweepLeases(ctx context.Context) (int, error) { return c.lease.sweep(ctx) }

// Stop lets running jobs finish until ctx ends, then cancels them (River
// retries a cancelled job on whichever replica takes it).
func (c *Client) Stop(ctx context.Context) error {
	c.mu.Lock()
	rc := c.river
	c.mu.Unlock()
	if rc == nil || !c.cfg.Work {
		return nil
	}
	// The sweep stops last: while this process drains its jobs, a dead
	// replica's jobs are still taken over.
	defer c.stopSweep()
	err := rc.Stop(ctx)
	if err != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		return rc.StopAndCancel(context.Background())
	}
	return err
}

func (c *Client) stopSweep() {
	c.mu.Lock()
	cancel, done := c.sweeping, c.swept
	c.sweeping = nil
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
