package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"gocloud.dev/blob"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/exports"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/leader"
	"github.com/steward-privacy/steward/internal/notify"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/receipt"
	"github.com/steward-privacy/steward/internal/retention"
	"github.com/steward-privacy/steward/policies"
)

// application is one fully wired Steward replica. Tests build two of them on
// one database to prove cross-replica behaviour.
type application struct {
	cfg      config.Config
	log      *slog.Logger
	pool     *pgxpool.Pool
	policies *policy.Holder
	listener *db.Listener
	keys     *apikey.Store
	consent  *consent.Service
	worker   *notify.Worker
	audit    *audit.Log
	sealer   *audit.Sealer
	bucket   *blob.Bucket
	files    *blob.Bucket // disclosed files and export packages, sealed (STEWARD_FILE_STORE)
	exports  *exports.Store
	retain   *retention.Service
	clock    clock.Clock
	requests *dsar.Service
	elector  *leader.Elector
	sched    gocron.Scheduler
	http     *fiber.App

	// connectors reach the systems of the data map, from the connectors
	// file; tests may add theirs before start.
	connectors      connectors.Registry
	closeConnectors func()

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func policySource(cfg config.Config) policy.Source {
	switch {
	case cfg.PolicyBundle != "":
		return policy.ArchiveSource(cfg.PolicyBundle)
	case cfg.PolicyDir != "":
		return policy.DirSource(cfg.PolicyDir)
	}
	return policy.EmbeddedSource(policies.FS)
}

func policyFS(cfg config.Config) (fs.FS, error) { return policySource(cfg).Open() }

func loadPolicy(ctx context.Context, cfg config.Config) (*policy.Engine, error) {
	fsys, err := policyFS(cfg)
	if err != nil {
		return nil, err
	}
	return policy.Load(ctx, fsys)
}

// newApplication wires a replica: migrate (under the advisory lock), load
// policy, connect, and build the HTTP app. Background loops start with start.
func newApplication(ctx context.Context, cfg config.Config, log *slog.Logger, clk clock.Clock) (*application, error) {
	if err := cfg.RequireDatabase(); err != nil {
		return nil, err
	}
	kr, err := keyring.Parse(cfg.IdentityKeys)
	if err != nil {
		return nil, fmt.Errorf("STEWARD_IDENTITY_KEYS: %w", err)
	}
	if cfg.ReceiptSigningKey == "" {
		return nil, errors.New("STEWARD_RECEIPT_SIGNING_KEY is not set (base64 of a 32-byte Ed25519 seed)")
	}
	seed, err := receipt.ParseSeed(cfg.ReceiptSigningKey)
	if err != nil {
		return nil, fmt.Errorf("STEWARD_RECEIPT_SIGNING_KEY: %w", err)
	}
	var retired []ed25519PublicKey
	for _, k := range cfg.ReceiptRetiredKeys {
		pk, err := receipt.ParsePublicKey(k)
		if err != nil {
			return nil, fmt.Errorf("STEWARD_RECEIPT_RETIRED_KEYS: %w", err)
		}
		retired = append(retired, pk)
	}
	signer, err := receipt.NewSigner(seed, retired...)
	if err != nil {
		return nil, fmt.Errorf("receipt signer: %w", err)
	}
	resendCfg := notify.ResendConfig{APIKey: cfg.ResendAPIKey, BaseURL: cfg.ResendBaseURL, AudienceID: cfg.ResendAudienceID, From: cfg.EmailFrom}
	if err := resendCfg.Validate(); err != nil {
		return nil, fmt.Errorf("resend: %w", err)
	}
	auditSigner, auditTrust, err := auditKeys(cfg)
	if err != nil {
		return nil, err
	}
	if auditSigner == nil {
		return nil, errors.New("STEWARD_AUDIT_SIGNING_KEY is not set (base64 of a 32-byte Ed25519 seed)")
	}
	bucket, err := openCheckpointBucket(ctx, cfg)
	if err != nil {
		return nil, err
	}
	holder, err := policy.NewHolder(ctx, policySource(cfg), log)
	if err != nil {
		return nil, err
	}
	engine := holder.Current()
	// A retention promise that cannot be enforced (a fixed period on a
	// dataset with no timestamp to age it by) stops Steward here.
	if _, err := retention.FromEngine(engine); err != nil {
		return nil, err
	}
	if _, err := db.MigrateUp(ctx, cfg.DatabaseURL, log); err != nil {
		return nil, err
	}
	pool, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	a := &application{cfg: cfg, log: log, pool: pool, policies: holder, bucket: bucket, clock: clk}
	a.audit = audit.New(clk, engine.Revision())
	if err := recordPolicyLoaded(ctx, pool, a.audit, engine.Revision(), holder.Source(), len(engine.Purposes)); err != nil {
		pool.Close()
		return nil, err
	}
	holder.OnLoaded = func(ctx context.Context, e *policy.Engine, source string) error {
		a.audit.SetPolicyRevision(e.Revision())
		return recordPolicyLoaded(ctx, pool, a.audit, e.Revision(), source, len(e.Purposes))
	}
	holder.OnRejected = func(ctx context.Context, source string, err error) error {
		return recordPolicyRejected(ctx, pool, a.audit, source, err)
	}
	log.Info("policy loaded", "revision", engine.Revision(), "purposes", len(engine.Purposes))
	a.sealer = newSealer(pool, cfg, auditSigner, bucket, clk, log)
	a.listener = db.NewListener(cfg.DatabaseURL, log)
	a.keys = apikey.NewStore(pool, clk, keyAudit(a.audit, "system:api"))
	cache := consent.NewCache(cfg.CacheSubjects)
	outbox := notify.NewOutbox(kr, clk, log)
	a.consent = consent.NewService(pool, kr, holder, clk, log, cache, consent.Options{Unsubscriber: outbox, OnGPC: gpcAudit(a.audit)})
	a.listener.Subscribe(consent.NotifyChannel, cache)
	a.listener.Subscribe(apikey.NotifyChannel, a.keys)
	var specs config.Connectors
	a.connectors, specs, a.closeConnectors, err = openConnectors(ctx, cfg, holder, kr, pool, clk, log)
	if err != nil {
		pool.Close()
		return nil, err
	}
	if a.files, err = openFileStore(ctx, cfg); err != nil {
		a.closeConnectors()
		pool.Close()
		return nil, err
	}
	a.exports = &exports.Store{Pool: pool, Bucket: a.files, Keys: kr, Audit: a.audit, Clock: clk}
	metrics := api.NewMetrics()
	a.retain = &retention.Service{
		Pool: pool, Keys: kr, Policies: holder, Connectors: a.connectors, Audit: a.audit, Clock: clk, Log: log.With("component", "retention"),
		Control: &retention.ControlPlane{Pool: pool, Keys: kr, Files: a.files, Exports: a.exports, Clock: clk, Log: log},
		Metrics: retention.NewMetrics(metrics.Registry), Pace: &cfg.RetentionPace,
	}
	a.requests, err = dsar.New(dsar.Deps{
		Pool: pool, Keys: kr, Policies: holder, Audit: a.audit, Outbox: outbox, Clock: clk, Log: log, Connectors: a.connectors,
		Files: a.files, Packager: a.packager(holder), Workers: a.retain.AddWorkers,
	}, dsar.Config{
		Work: true, Workers: cfg.RequestWorkers, TelegramBotToken: cfg.TelegramBotToken,
		StatusURL: cfg.StatusURL, StaffURL: cfg.StaffURL, StaffEmail: cfg.StaffEmail,
		Queues: map[string]river.QueueConfig{retention.Queue: {MaxWorkers: cfg.RetentionWorkers}},
	})
	if err != nil {
		_ = a.files.Close()
		a.closeConnectors()
		pool.Close()
		return nil, err
	}
	a.retain.Jobs = a.requests.River()
	a.worker = notify.NewWorker(pool, kr, notify.WorkerConfig{Resend: resendCfg, PollInterval: cfg.OutboxPoll}, clk, log, outboxAudit(a.audit))
	a.http = api.New(api.Config{
		BodyLimit: cfg.BodyLimit, ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout, IdleTimeout: cfg.IdleTimeout,
	}, api.Deps{
		Log: log, Consent: a.consent, Keys: a.keys, Receipts: signer, Metrics: metrics,
		Audit: audit.Reader{Pool: pool, Keys: auditTrust}, Ready: a.ready, Requests: a.requests,
		CreemWebhook: creemWebhookReceiver(specs, kr, pool, a.audit), Exports: a.exports, Retention: a.retain,
	})
	return a, nil
}

func (a *application) ready(ctx context.Context) error {
	if err := a.pool.Ping(ctx); err != nil {
		return fmt.Errorf("database unreachable")
	}
	if a.policies.Current() == nil {
		return errors.New("policies not loaded")
	}
	return nil
}

// start runs the background loops: the notification listener and the outbox worker.
func (a *application) start(ctx context.Context) {
	ctx, a.cancel = context.WithCancel(ctx)
	if a.cfg.PolicyWatch > 0 && (a.cfg.PolicyDir != "" || a.cfg.PolicyBundle != "") {
		a.wg.Add(1)
		go func() { defer a.wg.Done(); a.policies.Watch(ctx, a.cfg.PolicyWatch) }()
	}
	if err := a.requests.Start(ctx); err != nil {
		a.log.Error("privacy-request workers did not start", "err", err)
	}
	a.startScheduler()
	a.wg.Add(3)
	go func() { defer a.wg.Done(); a.listener.Run(ctx) }()
	go func() { defer a.wg.Done(); a.worker.Run(ctx) }()
	go func() { defer a.wg.Done(); a.sealer.Run(ctx) }()
}

// schedulerLockID elects the replica that runs scheduled work.
const schedulerLockID = 7_403_112_100

// startScheduler runs the staff-reminder sweep every ReminderInterval on
// whichever replica holds the scheduler lock; the others skip each run.
func (a *application) startScheduler() {
	a.elector = leader.NewElector(a.pool, schedulerLockID)
	s, err := gocron.NewScheduler(gocron.WithDistributedElector(a.elector), gocron.WithLogger(gocronLogger{a.log}), gocron.WithLocation(time.UTC))
	if err != nil {
		a.log.Error("scheduler did not start", "err", err)
		return
	}
	_, err = s.NewJob(gocron.DurationJob(a.cfg.ReminderInterval), gocron.NewTask(func(ctx context.Context) {
		n, err := a.requests.SendReminders(ctx)
		if err != nil {
			a.log.Error("staff reminders failed", "err", err)
			return
		}
		if n > 0 {
			a.log.Info("staff reminders queued", "count", n)
		}
	}), gocron.WithSingletonMode(gocron.LimitModeReschedule))
	if err != nil {
		a.log.Error("scheduler job not created", "err", err)
		return
	}
	// Expired export packages go within the hour of their link expiring
	// (first sweep an hour after start, like the reminders: an immediate
	// election would pin a pool connection for the advisory lock at once).
	_, err = s.NewJob(gocron.DurationJob(time.Hour), gocron.NewTask(func(ctx context.Context) {
		n, err := a.exports.ExpireDue(ctx)
		if err != nil {
			a.log.Error("deleting expired export packages failed", "err", err)
			return
		}
		if n > 0 {
			a.log.Info("expired export packages deleted", "count", n)
		}
	}), gocron.WithSingletonMode(gocron.LimitModeReschedule))
	if err != nil {
		a.log.Error("scheduler job not created", "err", err)
		return
	}
	if a.cfg.RetentionSchedule != "off" {
		// The cron expression was checked when the configuration loaded.
		_, err = s.NewJob(gocron.CronJob(a.cfg.RetentionSchedule, false), gocron.NewTask(a.scheduledSweep),
			gocron.WithSingletonMode(gocron.LimitModeReschedule))
		if err != nil {
			a.log.Error("scheduler job not created", "err", err)
			return
		}
	}
	s.Start()
	a.sched = s
}

// scheduledSweep starts the retention run of this scheduled moment. Only
// the elected replica gets here; should two ever fire for one moment (a
// leader change mid-minute), the run's unique moment lets one through.
func (a *application) scheduledSweep(ctx context.Context) {
	at := a.clock.Now().UTC().Truncate(time.Minute)
	r, err := a.retain.Start(ctx, retention.RunOptions{Trigger: retention.TriggerSchedule, Actor: "system:scheduler", At: at})
	switch {
	case errors.Is(err, retention.ErrAlreadyScheduled):
		a.log.Info("retention run of this moment already started elsewhere", "at", at)
	case err != nil:
		a.log.Error("retention run did not start", "err", err)
	default:
		a.log.Info("retention run started", "run", r.ID, "datasets", len(r.Datasets))
	}
}

// gocronLogger sends gocron's own messages to slog at debug level.
type gocronLogger struct{ l *slog.Logger }

func (g gocronLogger) Debug(msg string, args ...any) { g.l.Debug(msg, args...) }
func (g gocronLogger) Info(msg string, args ...any)  { g.l.Debug(msg, args...) }
func (g gocronLogger) Warn(msg string, args ...any)  { g.l.Warn(msg, args...) }
func (g gocronLogger) Error(msg string, args ...any) { g.l.Error(msg, args...) }

// waitListening blocks until the invalidation listener is up (caches on).
func (a *application) waitListening(ctx context.Context) error {
	for !a.listener.Up() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("listener did not connect: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// shutdown lets in-flight requests finish, then stops background work.
func (a *application) shutdown(timeout time.Duration) error {
	err := a.http.ShutdownWithTimeout(timeout)
	if a.sched != nil {
		_ = a.sched.Shutdown()
	}
	if a.elector != nil {
		a.elector.Close()
	}
	rctx, rcancel := context.WithTimeout(context.Background(), timeout)
	if serr := a.requests.Stop(rctx); serr != nil {
		a.log.Warn("privacy-request workers did not stop cleanly; River retries their jobs", "err", serr)
	}
	rcancel()
	if a.cancel != nil {
		a.cancel()
	}
	a.wg.Wait()
	if a.closeConnectors != nil {
		a.closeConnectors()
	}
	// Seal what this replica's last requests appended, so a clean stop
	// leaves nothing pending.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, serr := a.sealer.SealAll(sctx); serr != nil {
		a.log.Warn("final audit seal failed; another replica or the next start will seal", "err", serr)
	}
	if a.files != nil {
		_ = a.files.Close()
	}
	if a.bucket != nil {
		_ = a.bucket.Close()
	}
	a.pool.Close()
	return err
}
