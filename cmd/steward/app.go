package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob:// checkpoint and file stores
	_ "gocloud.dev/blob/fileblob"  // file:// checkpoint and file stores
	_ "gocloud.dev/blob/gcsblob"   // gs:// checkpoint and file stores
	_ "gocloud.dev/blob/s3blob"    // s3:// checkpoint and file stores

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clientip"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/connect"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/exports"
	"github.com/steward-privacy/steward/internal/jobs"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/leader"
	"github.com/steward-privacy/steward/internal/notify"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/receipt"
	"github.com/steward-privacy/steward/internal/rekey"
	"github.com/steward-privacy/steward/internal/restrictions"
	"github.com/steward-privacy/steward/internal/retention"
	"github.com/steward-privacy/steward/internal/staff"
	"github.com/steward-privacy/steward/internal/web"
	"github.com/steward-privacy/steward/internal/web/console"
	"github.com/steward-privacy/steward/internal/webhooks"
	"github.com/steward-privacy/steward/policies"
)

// need is how much of Steward a command wires: each level includes the
// ones before it.
type need int

const (
	needStore      need = iota // migrated database, policy, audit log (keys)
	needConnectors             // + keyring, connectors, file store, exports, retention (retention, holds)
	needServer                 // + consent, privacy requests, jobs, outbox, HTTP API (serve)
)

// application is one wired Steward. Tests build two of them on one
// database to prove cross-replica behaviour.
type application struct {
	cfg   config.Config
	log   *slog.Logger
	clock clock.Clock

	pool     *pgxpool.Pool
	policies *policy.Holder
	audit    *audit.Log
	sealer   *audit.Sealer // nil without an audit signing key (CLI only)
	keys     *apikey.Store
	kr       *keyring.Keyring
	files    *blob.Bucket // disclosed files and export packages, sealed (STEWARD_FILE_STORE)
	exports  *exports.Store
	retain   *retention.Service
	// rekey moves stored identities to the active identity key, so older
	// keys can be retired; built with the keyring (needConnectors).
	rekey *rekey.Service
	// connectors reach the systems of the data map, from the connectors
	// file; tests may add theirs before start (the engine and retention
	// share this map).
	connectors connectors.Registry

	listener *db.Listener
	consent  *consent.Service

	// session is the pool for the leader elector's advisory lock: pool
	// itself, or a small pool on STEWARD_DATABASE_SESSION_URL when
	// DATABASE_URL names a transaction pooler.
	session *pgxpool.Pool

	// restrictions is the ledger of restricted processing (GDPR Art. 18):
	// connectors write it, the consent check reads it, staff lift.
	restrictions *restrictions.Ledger
	webhooks     *webhooks.Endpoints

	jobs     *jobs.Client
	requests *dsar.Service
	worker   *notify.Worker
	// console is the staff console at /console (console.go).
	console *console.Console
	http    *fiber.App

	// staff is the console's staff directory and sign-in (internal/staff),
	// built for a server (needServer); the console takes it from here.
	staff *staff.Service

	// closers undo the wiring, last first (close); stopTimeout bounds
	// the wait for running jobs (shutdown sets it).
	closers     []func()
	stopTimeout time.Duration
	cancel      context.CancelFunc
	wg          sync.WaitGroup
}

// onClose pushes f onto the closer stack.
func (a *application) onClose(f func()) { a.closers = append(a.closers, f) }

// close runs the closers, last pushed first.
func (a *application) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

func policySource(cfg config.Config) policy.Source {
	switch {
	case cfg.PolicyBundle != "":
		return policy.ArchiveSource(cfg.PolicyBundle)
	case cfg.PolicyDir != "":
		return policy.DirSource(cfg.PolicyDir)
	case cfg.PolicyOverlay != "":
		return policy.OverlaySource(policies.FS, cfg.PolicyOverlay)
	}
	return policy.EmbeddedSource(policies.FS)
}

func loadPolicy(ctx context.Context, cfg config.Config) (*policy.Engine, error) {
	fsys, err := policySource(cfg).Open()
	if err != nil {
		return nil, err
	}
	return policy.Load(ctx, fsys)
}

// build wires what n needs. On error everything built so far is closed;
// otherwise the caller closes (a server with shutdown, which also stops
// what start started).
func build(ctx context.Context, cfg config.Config, log *slog.Logger, clk clock.Clock, n need) (_ *application, err error) {
	if err := cfg.RequireDatabase(); err != nil {
		return nil, err
	}
	a := &application{cfg: cfg, log: log, clock: clk}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	// Secrets first: a missing one stops the command before it touches
	// the database.
	if n >= needConnectors {
		if a.kr, err = keyring.Parse(cfg.IdentityKeys); err != nil {
			return nil, fmt.Errorf("STEWARD_IDENTITY_KEYS: %w", err)
		}
	}
	var receipts *receipt.Signer
	resendCfg := notify.ResendConfig{APIKey: cfg.ResendAPIKey, BaseURL: cfg.ResendBaseURL, AudienceID: cfg.ResendAudienceID, From: cfg.EmailFrom}
	telegramCfg := notify.TelegramConfig{BotToken: cfg.TelegramBotToken, APIURL: cfg.TelegramAPIURL}
	if n == needServer {
		if receipts, err = receipt.LoadSigner(cfg.ReceiptSigningKey, cfg.ReceiptRetiredKeys); err != nil {
			return nil, err
		}
		if err := resendCfg.Validate(); err != nil {
			return nil, fmt.Errorf("resend: %w", err)
		}
		if err := telegramCfg.Validate(); err != nil {
			return nil, fmt.Errorf("STEWARD_TELEGRAM_BOT_TOKEN: %w", err)
		}
	}
	signer, trust, err := audit.LoadKeys(cfg.AuditSigningKey, cfg.AuditRetiredKeys)
	if err != nil {
		return nil, err
	}
	if n == needServer && signer == nil {
		return nil, errors.New("STEWARD_AUDIT_SIGNING_KEY is not set (base64 of a 32-byte Ed25519 seed)")
	}
	if a.policies, err = policy.NewHolder(ctx, policySource(cfg), log); err != nil {
		return nil, err
	}
	engine := a.policies.Current()
	// A retention promise that cannot be enforced (a fixed period on a
	// dataset with no timestamp to age it by) stops Steward here.
	if _, err := retention.FromEngine(engine); err != nil {
		return nil, err
	}
	if _, err := db.MigrateUp(ctx, cfg.SessionURL(), log); err != nil {
		return nil, err
	}
	if a.pool, err = openMain(ctx, cfg); err != nil {
		return nil, err
	}
	a.onClose(a.pool.Close)
	a.audit = audit.New(clk, engine.Revision())
	var checkpoints *blob.Bucket
	if n == needServer && cfg.AuditCheckpointBucket != "" {
		if checkpoints, err = blob.OpenBucket(ctx, cfg.AuditCheckpointBucket); err != nil {
			return nil, fmt.Errorf("STEWARD_AUDIT_CHECKPOINT_BUCKET: %w", err)
		}
		a.onClose(func() { _ = checkpoints.Close() })
	}
	if signer != nil {
		a.sealer = audit.NewSealer(a.pool, signer, checkpoints, audit.SealerConfig{
			CheckpointEvery: int64(cfg.AuditCheckpointEvery), CheckpointInterval: cfg.AuditCheckpointInterval,
		}, clk, log)
		// Seal what this process appended, so a clean stop (or a CLI
		// command with no server running) leaves nothing pending.
		a.onClose(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := a.sealer.SealAll(sctx); err != nil {
				log.Warn("final audit seal failed; another replica or the next start will seal", "err", err)
			}
		})
	}
	if n == needServer {
		if err := a.policies.AuditTo(ctx, a.pool, a.audit); err != nil {
			return nil, err
		}
		log.Info("policy loaded", "revision", engine.Revision(), "purposes", len(engine.Purposes))
	}
	a.keys = apikey.NewStore(a.pool, clk, apikey.AuditTo(a.audit))
	if n == needStore {
		return a, nil
	}

	// A key removed from STEWARD_IDENTITY_KEYS while rows still need it
	// stops Steward here, with the counts, rather than at the first read
	// of such a row; keys nothing uses any more are logged as removable.
	a.rekey = &rekey.Service{Pool: a.pool, Keys: a.kr, Audit: a.audit, Log: log.With("component", "rekey")}
	keyStatus, err := a.rekey.Check(ctx)
	if err != nil {
		return nil, err
	}

	specs, err := config.LoadConnectors(cfg.ConnectorsFile, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	a.restrictions = &restrictions.Ledger{Pool: a.pool, Keys: a.kr, Now: clk.Now, Audit: a.audit}
	reg, closeConnectors, err := connect.Open(ctx, specs, connect.Env{
		Keys: a.kr, Clock: clk, Log: log,
		DataMap: func() *datamap.Map { return a.policies.Current().DataMap },
		Ledger:  a.restrictions,
	})
	if err != nil {
		return nil, err
	}
	a.connectors = reg
	a.onClose(closeConnectors)
	if a.files, err = exports.OpenFileStore(ctx, cfg.FileStore); err != nil {
		return nil, err
	}
	a.onClose(func() { _ = a.files.Close() })
	a.exports = &exports.Store{Pool: a.pool, Bucket: a.files, Keys: a.kr, Audit: a.audit, Clock: clk}
	a.retain = &retention.Service{
		Pool: a.pool, Keys: a.kr, Policies: a.policies, Connectors: a.connectors, Audit: a.audit, Clock: clk, Log: log,
		Control: &retention.ControlPlane{Pool: a.pool, Keys: a.kr, Files: a.files, Exports: a.exports, Clock: clk, Log: log},
	}
	if n == needConnectors {
		return a, nil
	}

	metrics := api.NewMetrics()
	a.retain.Log = log.With("component", "retention")
	a.retain.Metrics = retention.NewMetrics(metrics.Registry)
	a.rekey.Gauge = rekey.NewGauge(metrics.Registry)
	a.rekey.Gauge.Set(float64(keyStatus.Remaining()))
	a.retain.Pace = &cfg.RetentionPace
	a.listener = db.NewListener(cfg.SessionURL(), log)
	a.session = a.pool
	if cfg.Pooled() {
		if a.session, err = db.OpenSession(ctx, cfg.DatabaseSessionURL); err != nil {
			return nil, fmt.Errorf("STEWARD_DATABASE_SESSION_URL: %w", err)
		}
		a.onClose(a.session.Close)
	}
	cache := consent.NewCache(cfg.CacheSubjects)
	// A restriction changed on this replica is seen by its next check at
	// once; the NOTIFY carries it to the others.
	a.restrictions.Changed = cache.Forget
	outbox := notify.NewOutbox(a.kr, clk, log)
	// Consent changes, request moves and restrictions reach subscribed
	// systems as signed webhooks, queued in the transaction that makes them.
	a.restrictions.Webhooks = outbox
	a.webhooks = &webhooks.Endpoints{Pool: a.pool, Keys: a.kr, Outbox: outbox, Audit: a.audit, Clock: clk, AllowLoopback: cfg.WebhooksAllowLoopback}
	a.consent = consent.NewService(a.pool, a.kr, a.policies, clk, log, cache, consent.Options{
		Unsubscriber: outbox, OnGPC: consent.AuditGPC(a.audit), Notifier: outbox, Audit: a.audit, PublicURL: cfg.PublicURL, Webhooks: outbox,
		// Only a server signs (CLI commands have no receipt key): a nil
		// *receipt.Signer must not become a non-nil interface.
		Signer: receiptSigner(receipts),
	})
	a.listener.Subscribe(consent.NotifyChannel, cache)
	a.listener.Subscribe(apikey.NotifyChannel, a.keys)
	// Behind a transaction pooler River polls: its LISTEN would not last.
	a.jobs = jobs.New(a.pool, jobs.Config{Work: true, Lease: cfg.JobLease, JobTimeout: cfg.JobTimeout, PollOnly: cfg.Pooled()}, log)
	a.retain.Register(a.jobs, cfg.RetentionWorkers)
	if a.requests, err = dsar.New(dsar.Deps{
		Pool: a.pool, Keys: a.kr, Policies: a.policies, Audit: a.audit, Outbox: outbox, Clock: clk, Log: log,
		Connectors: a.connectors, Files: a.files, Exports: a.exports, Jobs: a.jobs,
		Consent: a.consent, Restrictions: a.restrictions,
	}, dsar.Config{
		Workers: cfg.RequestWorkers, TelegramBotToken: cfg.TelegramBotToken, ExportLinkBase: cfg.ExportLinkBase(),
		StatusURL: cfg.StatusURL, StaffURL: cfg.StaffURL, StaffEmail: cfg.StaffEmail,
		ChallengeLoginKeys: cfg.ChallengeLoginKeys, InvoiceMaxAge: cfg.InvoiceMaxAge,
	}); err != nil {
		return nil, err
	}
	a.worker = notify.NewWorker(a.pool, a.kr, notify.WorkerConfig{Resend: resendCfg, Telegram: telegramCfg, PollInterval: cfg.OutboxPoll,
		Webhooks: notify.WebhookConfig{AllowLoopback: cfg.WebhooksAllowLoopback}}, clk, log, notify.AuditFailures(a.audit))
	var creemWebhook func(context.Context, []byte, string) error
	if secret := specs.CreemWebhookSecret(); secret != nil {
		creemWebhook = (&webhooks.Creem{Secret: secret, Keys: a.kr, Pool: a.pool, Audit: a.audit}).Receive
	}
	// Staff sign-in for the console (wired in staffcmd.go).
	if a.staff, err = newStaff(a, a.kr); err != nil {
		return nil, err
	}
	proxies, err := clientip.New(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	center, err := web.New(web.Config{
		PublicURL: cfg.PublicURL, TelegramBotToken: cfg.TelegramBotToken, ChallengeLoginURLs: cfg.ChallengeLoginURLs,
		// Derived from the identity keys, so every replica signs the same
		// CSRF tokens without another secret to configure.
		Secret: a.kr.HashValue("steward privacy center csrf v1"),
	}, web.Deps{
		Log: log.With("component", "privacy-center"), Clock: clk, Requests: a.requests, Consent: a.consent, Receipts: receipts,
		ClientIP: proxies,
		Sessions: &web.Sessions{Pool: a.pool, Keys: a.kr, Clock: clk, SendCode: func(ctx context.Context, tx pgx.Tx, email, lang, code string, ttl time.Duration) error {
			_, err := outbox.EnqueueEmail(ctx, tx, notify.Email{To: email, Template: notify.TemplateSigninCode, Language: lang,
				Data: map[string]string{"code": code, "expires_minutes": strconv.Itoa(int(ttl / time.Minute))}})
			return err
		}},
	})
	if err != nil {
		return nil, err
	}
	if err := a.buildConsole(cfg, clk, log, proxies, receipts, trust); err != nil {
		return nil, err
	}
	a.http = api.New(api.Config{
		BodyLimit: cfg.BodyLimit, PageBodyLimit: web.MaxFormBody, PagePrefix: web.Prefix + "/", ReadTimeout: cfg.ReadTimeout, WriteTimeout: cfg.WriteTimeout, IdleTimeout: cfg.IdleTimeout,
		CORSOrigins: cfg.CORSOrigins, GeoHeader: cfg.GeoHeader,
		RateLimit: api.RateLimitConfig{Window: cfg.RateLimitWindow, PerAddress: cfg.RateLimitAddress, PerRole: cfg.RateLimitKeys,
			Replicas: cfg.RateLimitReplicas, MaxBuckets: cfg.RateLimitBuckets},
	}, api.Deps{
		Log: log, Consent: a.consent, Keys: a.keys, Receipts: receipts, Metrics: metrics,
		Audit: audit.Reader{Pool: a.pool, Keys: trust}, Ready: a.ready, Requests: a.requests,
		CreemWebhook: creemWebhook, Exports: a.exports, Retention: a.retain,
		Restrictions: a.restrictions, Notices: a.consent, Webhooks: a.webhooks,
		ClientIP: proxies, Pages: func(r fiber.Router) { center.Mount(r); a.console.Mount(r) },
		Clock: clk,
	})
	return a, nil
}

// openMain opens the main pool on DATABASE_URL, of
// STEWARD_DATABASE_MAX_CONNS connections; when that names a transaction
// pooler (cfg.Pooled), without named prepared statements.
func openMain(ctx context.Context, cfg config.Config) (*pgxpool.Pool, error) {
	return db.OpenSized(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns, cfg.Pooled())
}

// receiptSigner is r as a consent.ReceiptSigner, nil when r is.
func receiptSigner(r *receipt.Signer) consent.ReceiptSigner {
	if r == nil {
		return nil
	}
	return r
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

// schedulerLockID elects the replica that runs scheduled work.
const schedulerLockID = 7_403_112_100

// start runs a server's background work: policy watch, jobs, the
// scheduler, the invalidation listener, the outbox worker and the audit
// sealer. Their stops go on the closer stack.
func (a *application) start(ctx context.Context) {
	ctx, a.cancel = context.WithCancel(ctx)
	a.onClose(func() { a.cancel(); a.wg.Wait() })
	if a.cfg.PolicyWatch > 0 && (a.cfg.PolicyDir != "" || a.cfg.PolicyBundle != "" || a.cfg.PolicyOverlay != "") {
		a.wg.Add(1)
		go func() { defer a.wg.Done(); a.policies.Watch(ctx, a.cfg.PolicyWatch) }()
	}
	if err := a.jobs.Start(ctx); err != nil {
		a.log.Error("job workers did not start", "err", err)
	} else {
		a.onClose(func() {
			sctx, cancel := context.WithTimeout(context.Background(), cmp.Or(a.stopTimeout, a.cfg.ShutdownTimeout))
			defer cancel()
			if err := a.jobs.Stop(sctx); err != nil {
				a.log.Warn("job workers did not stop cleanly; River retries their jobs", "err", err)
			}
		})
	}
	// Expired export packages go within the hour of their link expiring;
	// the first run of each task comes one interval after start (an
	// immediate election would pin a pool connection at once).
	tasks := []leader.Task{
		{Name: "staff reminders", Every: a.cfg.ReminderInterval, Run: a.requests.SendReminders},
		{Name: "expired export packages", Every: time.Hour, Run: a.exports.ExpireDue},
		{Name: "expired staff sessions", Every: time.Hour, Run: a.staff.PurgeExpired},
		// Rows under a non-active identity key move to the active one; with
		// one key configured a run returns at once.
		{Name: "identity re-encryption", Every: 15 * time.Minute, Run: a.rekey.RunOnce},
	}
	if a.cfg.RetentionSchedule != "off" {
		// The cron expression was checked when the configuration loaded.
		tasks = append(tasks, leader.Task{Name: "retention sweep", Cron: a.cfg.RetentionSchedule, Run: a.retain.RunScheduled})
	}
	if sched, err := leader.Schedule(a.session, schedulerLockID, a.log, tasks...); err != nil {
		a.log.Error("scheduler did not start", "err", err)
	} else {
		a.onClose(sched.Stop)
	}
	a.wg.Add(4)
	go func() { defer a.wg.Done(); a.keys.Run(ctx, apikey.TouchEvery, a.log) }()
	go func() { defer a.wg.Done(); a.listener.Run(ctx) }()
	go func() { defer a.wg.Done(); a.worker.Run(ctx) }()
	go func() { defer a.wg.Done(); a.sealer.Run(ctx) }()
}

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

// shutdown lets in-flight requests finish, then undoes the rest.
func (a *application) shutdown(timeout time.Duration) error {
	err := a.http.ShutdownWithTimeout(timeout)
	a.stopTimeout = timeout
	a.close()
	return err
}
