package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/jobs"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/policy"
)

// Queue is the River queue sweeps run on, apart from the privacy
// requests' default queue: a long sweep never delays a person's request.
const Queue = "retention"

// Triggers of a run.
const (
	TriggerSchedule = "schedule"
	TriggerAPI      = "api"
	TriggerCLI      = "cli"
)

// Dataset statuses in a run.
const (
	StatusPending   = "pending"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusHeld      = "held"   // a dataset or category hold stopped the sweep
	StatusManual    = "manual" // no connector can sweep it: staff must
)

// Policies gives the policy engine in force.
type Policies interface{ Current() *policy.Engine }

// Service enforces the retention schedule: it plans and runs sweeps, keeps
// legal holds, and records every run.
type Service struct {
	Pool       *pgxpool.Pool
	Keys       *keyring.Keyring
	Policies   Policies
	Connectors connectors.Registry
	Audit      *audit.Log
	Clock      clock.Clock
	Log        *slog.Logger
	// Jobs queues the sweep jobs (set by Register, which adds the sweep
	// worker to it). Nil: runs go in the calling process only (RunNow).
	Jobs *jobs.Client
	// Control sweeps Steward's own data; nil leaves it out.
	Control *ControlPlane
	Metrics *Metrics
	// Pace is how long a sweep rests after each batch, as a multiple of
	// the time the batch took: 2 keeps a sweep to about a third of one
	// database connection's time, 0 never rests (a maintenance window).
	// Nil: 2, which kept consent checks' p99 within 2x of their p99
	// without a sweep, even uncached (see docs/performance.md).
	Pace *float64
	// MaxAttempts is how often a dataset's job is tried before its run
	// records it failed (River retries with backoff); default 5.
	MaxAttempts int
}

func (s *Service) pace() float64 {
	if s.Pace == nil {
		return 2
	}
	return max(*s.Pace, 0)
}

func (s *Service) maxAttempts() int {
	if s.MaxAttempts > 0 {
		return s.MaxAttempts
	}
	return 5
}

// Schedule is the rules in force: the data map's, then Steward's own.
func (s *Service) Schedule() (Schedule, *policy.Engine, error) {
	e := s.Policies.Current()
	sched, err := FromEngine(e)
	if err != nil {
		return Schedule{}, nil, err
	}
	if s.Control != nil {
		sched.Rules = append(sched.Rules, s.Control.Rules(e.RetentionSchedule().ControlPlane)...)
	}
	return sched, e, nil
}

func (s *Service) knownDataset(system, dataset string) bool {
	e := s.Policies.Current()
	if sys, ok := e.DataMap.Systems[system]; ok {
		_, ok := sys.Datasets[dataset]
		return ok
	}
	return system == ControlSystem && s.Control != nil && slices.Contains(controlDatasets, dataset)
}

func (s *Service) exampleDataset() string {
	e := s.Policies.Current()
	for _, sid := range slices.Sorted(maps.Keys(e.DataMap.Systems)) {
		for _, did := range slices.Sorted(maps.Keys(e.DataMap.Systems[sid].Datasets)) {
			return sid + "." + did
		}
	}
	return "app_db.users"
}

// knownCategory: some dataset holds data of category c or below it. A
// hold on a category no dataset holds would protect nothing, silently.
func (s *Service) knownCategory(c string) bool {
	if c == "" {
		return false
	}
	under := func(cat string) bool { return cat == c || strings.HasPrefix(cat, c+".") }
	if s.Control != nil && slices.ContainsFunc(controlCategories, under) {
		return true
	}
	for _, sys := range s.Policies.Current().DataMap.Systems {
		for _, ds := range sys.Datasets {
			for _, f := range ds.Fields {
				if under(f.Category) {
					return true
				}
			}
		}
	}
	return false
}

// categories are the data categories of a dataset's fields.
func (s *Service) categories(e *policy.Engine, system, dataset string) []string {
	if system == ControlSystem {
		return controlCategories
	}
	ds := e.DataMap.Systems[system].Datasets[dataset]
	var out []string
	for _, f := range ds.Fields {
		out = append(out, f.Category)
	}
	return out
}

// SweepArgs is the durable job of one dataset of one run.
type SweepArgs struct {
	RunID   string `json:"run_id"`
	System  string `json:"system"`
	Dataset string `json:"dataset"`
}

// Kind names the job.
func (SweepArgs) Kind() string { return "retention.sweep" }

// InsertOpts puts sweeps on their own queue.
func (SweepArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: Queue} }

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	s *Service
}

func (w *sweepWorker) Work(ctx context.Context, job *river.Job[SweepArgs]) error {
	wait, err := w.s.waitForChildren(ctx, job.Args)
	if err != nil {
		return err
	}
	if wait {
		return river.JobSnooze(time.Second)
	}
	return w.s.sweepDataset(ctx, job.Args, job.Attempt >= job.MaxAttempts)
}

// waitForChildren: the dataset's children in the run are still being
// swept, and the run is not so old that a cycle must be stalling it.
func (s *Service) waitForChildren(ctx context.Context, a SweepArgs) (bool, error) {
	var at time.Time
	if err := s.Pool.QueryRow(ctx, `SELECT at FROM retention_runs WHERE id = $1`, a.RunID).Scan(&at); err != nil {
		return false, nil // sweepDataset reports a missing run
	}
	if s.Clock.Now().Sub(at) > childWait {
		return false, nil
	}
	return s.childrenPending(ctx, s.Policies.Current(), a)
}

// Timeout: a sweep of a large table takes long, and each batch commits on
// its own; the job's deadline is the connector's timeouts, not River's.
func (w *sweepWorker) Timeout(*river.Job[SweepArgs]) time.Duration { return 6 * time.Hour }

// Register adds the sweep worker and the retention queue to the process's
// job client, working up to workers datasets at once per replica; Start
// then queues its runs' datasets there.
func (s *Service) Register(j *jobs.Client, workers int) {
	s.Jobs = j
	jobs.AddWorker(j, &sweepWorker{s: s})
	j.Queue(Queue, workers)
}

// RunOptions start a run.
type RunOptions struct {
	Trigger string
	Actor   string
	DryRun  bool
	// Dataset limits the run to one dataset ("system.dataset").
	Dataset string
	// At is the run's now (the scheduled moment); zero: the clock's now.
	At time.Time
}

// Run is one retention run and its datasets.
type Run struct {
	ID             string       `json:"id"`
	Trigger        string       `json:"trigger"`
	Actor          string       `json:"actor"`
	DryRun         bool         `json:"dry_run"`
	Dataset        string       `json:"dataset,omitempty"`
	At             time.Time    `json:"at"`
	Status         string       `json:"status"`
	FinishedAt     *time.Time   `json:"finished_at,omitempty"`
	PolicyRevision string       `json:"policy_revision"`
	Datasets       []DatasetRun `json:"datasets"`
}

// DatasetRun is what a run did to one dataset.
type DatasetRun struct {
	System     string     `json:"system"`
	Dataset    string     `json:"dataset"`
	Rule       string     `json:"rule"`
	Action     string     `json:"action"`
	Basis      string     `json:"basis"`
	Cutoff     time.Time  `json:"cutoff"`
	Status     string     `json:"status"`
	Matched    *int64     `json:"matched"`
	Deleted    int64      `json:"deleted"`
	Anonymized int64      `json:"anonymized"`
	Bytes      int64      `json:"bytes"`
	Held       int64      `json:"held"`
	Kept       int64      `json:"kept"`
	Errors     int        `json:"errors"`
	LastError  string     `json:"last_error,omitempty"`
	Note       string     `json:"note,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	DurationMS int64      `json:"duration_ms"`
}

// ErrAlreadyScheduled is returned when another replica (or an earlier
// firing) already started the scheduled run of that moment.
var ErrAlreadyScheduled = errors.New("retention: the run of this scheduled moment exists")

// Start records a run and queues a job per dataset (in one transaction):
// the datasets are swept by whichever replicas work the retention queue.
func (s *Service) Start(ctx context.Context, o RunOptions) (Run, error) {
	if s.Jobs == nil {
		return Run{}, errors.New("retention: no job client: use RunNow")
	}
	run, rules, err := s.newRun(o)
	if err != nil {
		return Run{}, err
	}
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if err := s.insertRun(ctx, tx, &run, rules); err != nil {
			return err
		}
		var jobs []river.InsertManyParams
		for _, d := range run.Datasets {
			jobs = append(jobs, river.InsertManyParams{Args: SweepArgs{RunID: run.ID, System: d.System, Dataset: d.Dataset},
				InsertOpts: &river.InsertOpts{Queue: Queue, MaxAttempts: s.maxAttempts()}})
		}
		if len(jobs) == 0 {
			return nil
		}
		if _, err := s.Jobs.InsertManyTx(ctx, tx, jobs); err != nil {
			return fmt.Errorf("retention: queue sweeps: %w", err)
		}
		return nil
	})
	if err != nil {
		return Run{}, err
	}
	if len(run.Datasets) == 0 {
		if err := s.finishRun(ctx, run.ID); err != nil {
			return Run{}, err
		}
	}
	return s.GetRun(ctx, run.ID)
}

// RunNow runs every dataset of a new run in this process, one after
// another, and returns the finished run: the CLI's `retention run`, which
// needs no server. Each dataset gets the job's attempts in a row.
func (s *Service) RunNow(ctx context.Context, o RunOptions) (Run, error) {
	run, rules, err := s.newRun(o)
	if err != nil {
		return Run{}, err
	}
	if err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error { return s.insertRun(ctx, tx, &run, rules) }); err != nil {
		return Run{}, err
	}
	for _, d := range ordered(s.Policies.Current(), run.Datasets) {
		for attempt := 1; ; attempt++ {
			err := s.sweepDataset(ctx, SweepArgs{RunID: run.ID, System: d.System, Dataset: d.Dataset}, attempt >= s.maxAttempts())
			if err == nil || attempt >= s.maxAttempts() || permanent(err) {
				break
			}
			// A short pause, doubling, as River's retries would (a lock
			// the application holds, a store that asked to slow down).
			if err := connectors.Sleep(ctx, connectors.Backoff(attempt, 500*time.Millisecond, 8*time.Second)); err != nil {
				return Run{}, err
			}
		}
	}
	if len(run.Datasets) == 0 {
		if err := s.finishRun(ctx, run.ID); err != nil {
			return Run{}, err
		}
	}
	return s.GetRun(ctx, run.ID)
}

// newRun picks the rules of a run.
func (s *Service) newRun(o RunOptions) (Run, []Rule, error) {
	sched, e, err := s.Schedule()
	if err != nil {
		return Run{}, nil, err
	}
	at := o.At
	if at.IsZero() {
		at = s.Clock.Now()
	}
	at = at.UTC().Truncate(time.Microsecond) // what PostgreSQL keeps
	rules := sched.Rules
	if o.Dataset != "" {
		sys, ds, _ := strings.Cut(o.Dataset, ".")
		r, ok := sched.Rule(sys, ds)
		if !ok {
			msg := fmt.Sprintf("%q has no retention period to enforce", clip(o.Dataset))
			if s.knownDataset(sys, ds) {
				msg += " (it is kept until an event, such as account deletion, not for a fixed period)"
			} else {
				msg += " (not a dataset of the data map or of Steward; see the plan for the rules)"
			}
			return Run{}, nil, &apperr.Error{Code: apperr.Invalid, Message: "the run cannot start",
				Fields: []apperr.FieldError{{Field: "dataset", Message: msg}}}
		}
		rules = []Rule{r}
	}
	return Run{ID: uuid.NewString(), Trigger: o.Trigger, Actor: o.Actor, DryRun: o.DryRun, Dataset: o.Dataset, At: at,
		Status: StatusRunning, PolicyRevision: e.Revision()}, rules, nil
}

func (s *Service) insertRun(ctx context.Context, tx pgx.Tx, run *Run, rules []Rule) error {
	_, err := tx.Exec(ctx, `INSERT INTO retention_runs (id, trigger, actor, dry_run, only_dataset, at, status, policy_revision)
		VALUES ($1, $2, $3, $4, NULLIF($5, ''), $6, 'running', $7)`, run.ID, run.Trigger, run.Actor, run.DryRun, run.Dataset, run.At, run.PolicyRevision)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" && pe.ConstraintName == "retention_runs_scheduled" {
		return ErrAlreadyScheduled
	}
	if err != nil {
		return fmt.Errorf("retention: insert run: %w", err)
	}
	for _, r := range rules {
		cutoff := r.Cutoff(run.At)
		if _, err := tx.Exec(ctx, `INSERT INTO retention_run_datasets (run_id, system, dataset, rule, action, basis, cutoff, status)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending')`, run.ID, r.System, r.Dataset, r.RuleID, r.Action, r.Basis, cutoff); err != nil {
			return fmt.Errorf("retention: insert run dataset: %w", err)
		}
		run.Datasets = append(run.Datasets, DatasetRun{System: r.System, Dataset: r.Dataset, Rule: r.RuleID, Action: r.Action,
			Basis: r.Basis, Cutoff: cutoff, Status: StatusPending})
	}
	return s.Audit.Append(ctx, tx, audit.Record{Actor: run.Actor, Action: "retention.run_started", TargetType: "retention_run", TargetID: run.ID,
		Details: map[string]any{"trigger": run.Trigger, "dry_run": run.DryRun, "datasets": len(rules), "at": run.At.Format(time.RFC3339Nano)}})
}

// sweepDataset is one attempt at one dataset of a run. Counts are added
// batch by batch as the connector commits them, so an attempt that fails
// half way leaves the counts of what it did, and the next attempt resumes
// at the cursor and adds only its own.
func (s *Service) sweepDataset(ctx context.Context, a SweepArgs, last bool) error {
	var d DatasetRun
	var runAt time.Time
	var dryRun bool
	var cursor string
	err := s.Pool.QueryRow(ctx, `SELECT d.rule, d.action, d.basis, d.cutoff, d.status, d.deleted, d.anonymized, d.cursor, d.duration_ms, r.at, r.dry_run
		FROM retention_run_datasets d JOIN retention_runs r ON r.id = d.run_id
		WHERE d.run_id = $1 AND d.system = $2 AND d.dataset = $3`, a.RunID, a.System, a.Dataset).
		Scan(&d.Rule, &d.Action, &d.Basis, &d.Cutoff, &d.Status, &d.Deleted, &d.Anonymized, &cursor, &d.DurationMS, &runAt, &dryRun)
	if errors.Is(err, pgx.ErrNoRows) {
		return river.JobCancel(fmt.Errorf("retention: run %s has no dataset %s.%s", a.RunID, a.System, a.Dataset))
	}
	if err != nil {
		return fmt.Errorf("retention: read run dataset: %w", err)
	}
	switch d.Status {
	case StatusSucceeded, StatusFailed, StatusHeld, StatusManual:
		return nil // an earlier attempt finished it
	}
	before := d.Deleted + d.Anonymized
	started := s.Clock.Now()
	if _, err := s.Pool.Exec(ctx, `UPDATE retention_run_datasets SET status = 'running', started_at = COALESCE(started_at, $4)
		WHERE run_id = $1 AND system = $2 AND dataset = $3`, a.RunID, a.System, a.Dataset, started); err != nil {
		return fmt.Errorf("retention: mark running: %w", err)
	}
	out, err := s.sweep(ctx, a, d, dryRun, cursor)
	elapsed := s.Clock.Now().Sub(started).Milliseconds()
	if err != nil {
		status := StatusRunning
		if last || permanent(err) {
			status = StatusFailed
		}
		s.logger().WarnContext(ctx, "retention sweep attempt failed", "run", a.RunID, "system", a.System, "dataset", a.Dataset, "final", status == StatusFailed, "err", err)
		if _, uerr := s.Pool.Exec(context.WithoutCancel(ctx), `UPDATE retention_run_datasets SET status = $4, errors = errors + 1, last_error = $5,
			duration_ms = duration_ms + $6, finished_at = CASE WHEN $4 = 'failed' THEN $7::timestamptz END
			WHERE run_id = $1 AND system = $2 AND dataset = $3`, a.RunID, a.System, a.Dataset, status, safeError(err), elapsed, s.Clock.Now()); uerr != nil {
			return errors.Join(err, uerr)
		}
		s.Metrics.failed(a.System, a.Dataset)
		if status == StatusFailed {
			if ferr := s.recordDataset(context.WithoutCancel(ctx), a); ferr != nil {
				return errors.Join(err, ferr)
			}
			return river.JobCancel(err)
		}
		return err
	}
	// Matched is what was due when the sweep began: what this attempt found
	// plus what earlier attempts had already removed.
	matched := out.res.Matched + before
	if _, err := s.Pool.Exec(ctx, `UPDATE retention_run_datasets SET status = $4, matched = $5, held = $6, kept = $7, note = NULLIF($8, ''),
		finished_at = $9, duration_ms = duration_ms + $10, last_error = NULL
		WHERE run_id = $1 AND system = $2 AND dataset = $3`, a.RunID, a.System, a.Dataset, out.status, matched, out.res.Held, out.res.Kept,
		out.note, s.Clock.Now(), elapsed); err != nil {
		return fmt.Errorf("retention: record sweep: %w", err)
	}
	s.Metrics.swept(a.System, a.Dataset, out.status, out.res, time.Duration(d.DurationMS+elapsed)*time.Millisecond, dryRun)
	return s.recordDataset(ctx, a)
}

// outcome is one sweep attempt's result.
type outcome struct {
	status string
	res    connectors.SweepResult
	note   string
}

func (s *Service) sweep(ctx context.Context, a SweepArgs, d DatasetRun, dryRun bool, cursor string) (outcome, error) {
	e := s.Policies.Current()
	holds, err := s.activeHolds(ctx)
	if err != nil {
		return outcome{}, err
	}
	sw, rule, err := s.sweeperFor(e, a.System, a.Dataset)
	if err != nil {
		return outcome{}, connectors.Permanent(err)
	}
	if sw == nil {
		return outcome{status: StatusManual, note: manualNote(rule)}, nil
	}
	p := connectors.SweepParams{System: a.System, Dataset: a.Dataset, Timestamp: rule.Timestamp, Cutoff: d.Cutoff,
		Fields: s.fieldPlan(e, rule), DryRun: dryRun, Resume: cursor}
	if h := datasetHold(holds, a.System, a.Dataset, s.categories(e, a.System, a.Dataset)); h != nil {
		// Held as a whole: count what is due, touch nothing.
		p.DryRun, p.Resume = true, ""
		res, err := sw.Sweep(ctx, p)
		if err != nil {
			return outcome{}, err
		}
		res.Held, res.Deleted, res.Anonymized = res.Matched, 0, 0
		return outcome{status: StatusHeld, res: res, note: "legal hold " + h.ID + " (" + h.Scope + ")"}, nil
	}
	if p.Held, err = s.heldSubjects(ctx, holds); err != nil {
		return outcome{}, err
	}
	if !dryRun {
		last := time.Now()
		p.Progress = func(ctx context.Context, b connectors.SweepBatch) error {
			// Rest in proportion to the batch just done, so the database
			// the application uses keeps most of its capacity for it.
			if err := connectors.Sleep(ctx, time.Duration(float64(time.Since(last))*s.pace())); err != nil {
				return err
			}
			defer func() { last = time.Now() }()
			_, err := s.Pool.Exec(ctx, `UPDATE retention_run_datasets SET deleted = deleted + $4, anonymized = anonymized + $5, bytes = bytes + $6, cursor = $7
				WHERE run_id = $1 AND system = $2 AND dataset = $3`, a.RunID, a.System, a.Dataset, b.Deleted, b.Anonymized, b.Bytes, b.Cursor)
			if err != nil {
				return fmt.Errorf("retention: record batch: %w", err)
			}
			s.Metrics.batch(a.System, a.Dataset, b)
			return nil
		}
	}
	res, err := sw.Sweep(ctx, p)
	if err != nil {
		return outcome{}, err
	}
	return outcome{status: StatusSucceeded, res: res, note: res.Note}, nil
}

// sweeperFor is the connector that sweeps system.dataset (nil when none
// can: the dataset is recorded as manual work) and its rule.
func (s *Service) sweeperFor(e *policy.Engine, system, dataset string) (connectors.Sweeper, Rule, error) {
	sched, _, err := s.Schedule()
	if err != nil {
		return nil, Rule{}, err
	}
	rule, ok := sched.Rule(system, dataset)
	if !ok {
		return nil, Rule{}, fmt.Errorf("retention: %s.%s has no fixed retention period in policy revision %s", system, dataset, e.Revision())
	}
	if system == ControlSystem {
		if s.Control == nil {
			return nil, rule, errNoControl
		}
		return s.Control, rule, nil
	}
	c, ok := s.Connectors[system]
	if !ok {
		return nil, rule, nil
	}
	sw, _ := c.(connectors.Sweeper)
	return sw, rule, nil
}

func manualNote(r Rule) string {
	switch r.Connector {
	case "stripe":
		return fmt.Sprintf("Stripe has no deletion by age: staff delete or redact %s older than %s in the Stripe dashboard, or record that Stripe keeps them under its own legal obligations", r.Dataset, r.Period)
	case "creem":
		return fmt.Sprintf("Creem has no deletion API: staff ask Creem support to delete %s older than %s", r.Dataset, r.Period)
	}
	return fmt.Sprintf("no connector sweeps %s.%s: staff remove records older than %s by hand", r.System, r.Dataset, r.Period)
}

// fieldPlan is what happens to a due record: every field deleted, or, to
// anonymize, every personal field masked with the rule's strategy for its
// category (else the schedule's), the rest kept.
func (s *Service) fieldPlan(e *policy.Engine, r Rule) []connectors.FieldPlan {
	if r.System == ControlSystem {
		return nil
	}
	ds := e.DataMap.Systems[r.System].Datasets[r.Dataset]
	masking := e.RetentionSchedule().Masking
	var out []connectors.FieldPlan
	for _, name := range slices.Sorted(maps.Keys(ds.Fields)) {
		f := ds.Fields[name]
		fp := connectors.FieldPlan{Field: name, Category: f.Category, Basis: r.Basis}
		switch {
		case r.Action == ActionDelete:
			fp.Action = connectors.ActionDelete
		case !personal(f):
			fp.Action = connectors.ActionInclude
		default:
			fp.Action, fp.Strategy = connectors.ActionMask, strategyFor(f.Category, r.Mask, masking)
			if fp.Strategy == connectors.StrategyFixed {
				fp.Value = masking.FixedValue
			}
		}
		out = append(out, fp)
	}
	return out
}

// personal: a field about a person (the user.* categories), which
// anonymization must mask; system fields (timestamps, status) stay.
func personal(f datamap.Field) bool {
	return strings.HasPrefix(f.Category, "user.") || f.Category == "user"
}

// strategyFor is the longest matching category prefix of the rule's mask
// table, then of the schedule's, then the schedule's default.
func strategyFor(category string, rule map[string]string, m policy.Masking) string {
	for _, table := range []map[string]string{rule, m.ByCategory} {
		best, strategy := -1, ""
		for prefix, st := range table {
			if (category == prefix || strings.HasPrefix(category, prefix+".")) && len(prefix) > best {
				best, strategy = len(prefix), st
			}
		}
		if best >= 0 {
			return strategy
		}
	}
	return m.Default
}

// heldSubjects are the subjects of subject holds with every identity the
// connectors link to them: a hold placed on an email protects the rows
// keyed by the account id it leads to.
func (s *Service) heldSubjects(ctx context.Context, holds []Hold) ([][]connectors.Identity, error) {
	var out [][]connectors.Identity
	for _, h := range holds {
		if h.subject == nil {
			continue
		}
		linked, err := s.Connectors.Resolve(ctx, s.logger(), []identity.Subject{*h.subject})
		if err != nil {
			return nil, fmt.Errorf("retention: resolve the subject of hold %s: %w", h.ID, err)
		}
		ids := []connectors.Identity{connectors.IdentityOf(*h.subject)}
		for _, l := range linked {
			ids = append(ids, connectors.IdentityOf(l.Subject))
		}
		out = append(out, ids)
	}
	return out, nil
}

// recordDataset writes the dataset's audit event once it is final, then
// finishes the run if it was the last.
func (s *Service) recordDataset(ctx context.Context, a SweepArgs) error {
	// Only this dataset's row: the whole run is read once, when it ends.
	ds, err := s.datasetRuns(ctx, `WHERE run_id = $1 AND system = $2 AND dataset = $3`, a.RunID, a.System, a.Dataset)
	if err != nil {
		return err
	}
	if len(ds) == 0 {
		return fmt.Errorf("retention: run %s lost dataset %s.%s", a.RunID, a.System, a.Dataset)
	}
	d := ds[0]
	var dryRun bool
	if err := s.Pool.QueryRow(ctx, `SELECT dry_run FROM retention_runs WHERE id = $1`, a.RunID).Scan(&dryRun); err != nil {
		return fmt.Errorf("retention: read run: %w", err)
	}
	s.logger().InfoContext(ctx, "retention sweep", "run", a.RunID, "system", d.System, "dataset", d.Dataset, "status", d.Status, "dry_run", dryRun,
		"cutoff", d.Cutoff.Format(time.RFC3339), "matched", d.Matched, "deleted", d.Deleted, "anonymized", d.Anonymized, "held", d.Held,
		"kept", d.Kept, "errors", d.Errors, "duration_ms", d.DurationMS)
	details := map[string]any{"dataset": d.System + "." + d.Dataset, "rule": d.Rule, "action": d.Action, "status": d.Status, "dry_run": dryRun,
		"cutoff": d.Cutoff.Format(time.RFC3339), "matched": d.Matched, "deleted": d.Deleted, "anonymized": d.Anonymized, "bytes": d.Bytes,
		"held": d.Held, "kept": d.Kept, "errors": d.Errors, "duration_ms": d.DurationMS}
	if d.LastError != "" {
		details["error"] = d.LastError
	}
	if err := s.Audit.Record(ctx, s.Pool, audit.Record{Actor: "system:retention", Action: "retention.swept", TargetType: "retention_run",
		TargetID: a.RunID, Details: details}); err != nil {
		return err
	}
	return s.finishRun(ctx, a.RunID)
}

// finishRun closes a run whose datasets are all final (exactly once: the
// update is conditional) with an audit event of its totals.
func (s *Service) finishRun(ctx context.Context, id string) error {
	now := s.Clock.Now()
	tag, err := s.Pool.Exec(ctx, `UPDATE retention_runs SET finished_at = $2,
			status = CASE WHEN EXISTS (SELECT 1 FROM retention_run_datasets WHERE run_id = $1 AND status = 'failed') THEN 'failed' ELSE 'completed' END
		WHERE id = $1 AND status = 'running'
		  AND NOT EXISTS (SELECT 1 FROM retention_run_datasets WHERE run_id = $1 AND status IN ('pending', 'running'))`, id, now)
	if err != nil {
		return fmt.Errorf("retention: finish run: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return nil
	}
	r, err := s.GetRun(ctx, id)
	if err != nil {
		return err
	}
	t := totals(r)
	s.Metrics.finished(r)
	s.logger().InfoContext(ctx, "retention run finished", "run", id, "status", r.Status, "dry_run", r.DryRun, "datasets", len(r.Datasets),
		"deleted", t["deleted"], "anonymized", t["anonymized"], "held", t["held"], "failed", t["failed"])
	return s.Audit.Record(ctx, s.Pool, audit.Record{Actor: "system:retention", Action: "retention.run_completed", TargetType: "retention_run",
		TargetID: id, Details: map[string]any{"status": r.Status, "dry_run": r.DryRun, "datasets": len(r.Datasets), "totals": t}})
}

func totals(r Run) map[string]int64 {
	t := map[string]int64{}
	for _, d := range r.Datasets {
		if d.Matched != nil {
			t["matched"] += *d.Matched
		}
		t["deleted"] += d.Deleted
		t["anonymized"] += d.Anonymized
		t["held"] += d.Held
		t["kept"] += d.Kept
		t[d.Status]++
	}
	return t
}

// GetRun returns a run and its datasets.
func (s *Service) GetRun(ctx context.Context, id string) (Run, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Run{}, apperr.New(apperr.NotFound, "no such retention run")
	}
	runs, err := s.runs(ctx, `WHERE id = $1`, id)
	if err != nil {
		return Run{}, err
	}
	if len(runs) == 0 {
		return Run{}, apperr.New(apperr.NotFound, "no such retention run")
	}
	return runs[0], nil
}

// ListRuns returns the latest runs, newest first.
func (s *Service) ListRuns(ctx context.Context, limit int) ([]Run, error) {
	if limit <= 0 || limit > 100 {
		limit = 20
	}
	return s.runs(ctx, `ORDER BY at DESC, id DESC LIMIT $1`, limit)
}

func (s *Service) runs(ctx context.Context, where string, args ...any) ([]Run, error) {
	rows, err := s.Pool.Query(ctx, `SELECT id::text, trigger, actor, dry_run, COALESCE(only_dataset, ''), at, status, finished_at, policy_revision
		FROM retention_runs `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("retention: read runs: %w", err)
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) {
		var x Run
		err := r.Scan(&x.ID, &x.Trigger, &x.Actor, &x.DryRun, &x.Dataset, &x.At, &x.Status, &x.FinishedAt, &x.PolicyRevision)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("retention: read runs: %w", err)
	}
	for i := range runs {
		if runs[i].Datasets, err = s.datasetRuns(ctx, `WHERE run_id = $1 ORDER BY system, dataset`, runs[i].ID); err != nil {
			return nil, err
		}
		if runs[i].Datasets == nil {
			runs[i].Datasets = []DatasetRun{}
		}
	}
	return runs, nil
}

// datasetRuns reads rows of retention_run_datasets.
func (s *Service) datasetRuns(ctx context.Context, where string, args ...any) ([]DatasetRun, error) {
	rows, err := s.Pool.Query(ctx, `SELECT system, dataset, rule, action, basis, cutoff, status, matched, deleted, anonymized, bytes, held, kept,
			errors, COALESCE(last_error, ''), COALESCE(note, ''), started_at, finished_at, duration_ms
		FROM retention_run_datasets `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("retention: read run datasets: %w", err)
	}
	ds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DatasetRun, error) {
		var d DatasetRun
		err := r.Scan(&d.System, &d.Dataset, &d.Rule, &d.Action, &d.Basis, &d.Cutoff, &d.Status, &d.Matched, &d.Deleted, &d.Anonymized,
			&d.Bytes, &d.Held, &d.Kept, &d.Errors, &d.LastError, &d.Note, &d.StartedAt, &d.FinishedAt, &d.DurationMS)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("retention: read run datasets: %w", err)
	}
	return ds, nil
}

// permanent: the connector said trying again cannot help. (A cancelled
// context is not: the process is stopping, and River runs the job again.)
func permanent(err error) bool {
	var ce *connectors.Error
	return errors.As(err, &ce) && !ce.Retryable
}

// safeError is an error for the run record and audit log: connectors keep
// personal data out of their messages; this bounds the length.
func safeError(err error) string {
	msg := err.Error()
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	return strings.ToValidUTF8(msg, "?")
}

func (s *Service) logger() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

// RunScheduled starts the run of the present scheduled moment (the clock's
// minute) and returns how many datasets it queued. Only the elected
// replica calls it; should two ever fire for one moment (a leader change
// mid-minute), the run's unique moment lets one through and the other
// returns 0.
func (s *Service) RunScheduled(ctx context.Context) (int, error) {
	at := s.Clock.Now().UTC().Truncate(time.Minute)
	r, err := s.Start(ctx, RunOptions{Trigger: TriggerSchedule, Actor: "system:scheduler", At: at})
	switch {
	case errors.Is(err, ErrAlreadyScheduled):
		s.logger().Info("retention run of this moment already started elsewhere", "at", at)
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("retention run did not start: %w", err)
	}
	s.logger().Info("retention run started", "run", r.ID, "datasets", len(r.Datasets))
	return len(r.Datasets), nil
}
