// Package db owns Steward's PostgreSQL plumbing: the pgx pool, schema
// migrations (goose, guarded by an advisory lock so replicas never race), and
// the LISTEN/NOTIFY listener that keeps in-process caches honest across
// replicas.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/steward-privacy/steward/migrations"
)

// Open connects a pool and checks the database answers.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return open(ctx, url, DefaultMaxConns, false)
}

// DefaultMaxConns is the pool size Open and OpenPooled use
// (STEWARD_DATABASE_MAX_CONNS's default).
const DefaultMaxConns = 20

// OpenSized is Open (or OpenPooled, if pooled) with a pool of at most
// maxConns connections.
func OpenSized(ctx context.Context, url string, maxConns int, pooled bool) (*pgxpool.Pool, error) {
	if maxConns < 1 {
		maxConns = DefaultMaxConns
	}
	return open(ctx, url, int32(min(maxConns, math.MaxInt32)), pooled)
}

// OpenPooled is Open for a URL that names a transaction pooler (PgBouncer
// in transaction mode, Neon's pooled endpoint): consecutive statements of
// one client connection may run on different server connections, so the
// pool must not use named prepared statements, which exist on one server
// connection only (PgBouncer before 1.21 does not track them: "prepared
// statement ... does not exist" or "... already exists"). It uses pgx's
// cache_describe mode: each query is parsed as the unnamed statement
// within its own round trip, while the parameter and result types are
// still learned once and cached, so every Go type the default mode
// accepts is accepted (exec mode would guess types from Go values and
// refuse some), at no extra round trip. default_query_exec_mode in the
// URL still wins.
func OpenPooled(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return open(ctx, url, DefaultMaxConns, true)
}

// SessionConns caps the pool OpenSession makes: the leader elector, its
// only user, holds one connection while it leads and needs one to try
// when it does not (its calls are serialised).
const SessionConns = 1

// OpenSession opens the small pool for work that needs a real session
// (the leader elector's advisory lock) on a direct, unpooled URL.
func OpenSession(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return open(ctx, url, SessionConns, false)
}

func open(ctx context.Context, url string, maxConns int32, pooled bool) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database URL: %w", err)
	}
	// pgx defaults to max(4, cores) connections; concurrent writers then
	// queue in the pool rather than overlap their commits in PostgreSQL
	// (group commit). pool_max_conns in the URL still wins.
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = maxConns
	}
	if pooled && !strings.Contains(url, "default_query_exec_mode") {
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping database: %w", err)
	}
	return pool, nil
}

// migrationLockID is the advisory lock key goose holds while migrating; every
// replica starting at once queues on it instead of racing to apply DDL.
const migrationLockID = 7_403_112_001

func provider(url string) (*goose.Provider, *sql.DB, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, nil, fmt.Errorf("parse database URL: %w", err)
	}
	sqldb := stdlib.OpenDB(*cfg)
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 600))
	if err != nil {
		sqldb.Close()
		return nil, nil, fmt.Errorf("migration lock: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqldb, migrations.FS,
		goose.WithSessionLocker(locker), goose.WithTableName("steward_schema_migrations"))
	if err != nil {
		sqldb.Close()
		return nil, nil, fmt.Errorf("migrations: %w", err)
	}
	return p, sqldb, nil
}

// MigrateUp applies every pending migration and returns how many ran. The
// migrations hold session advisory locks, so url must be a real session:
// a direct URL, never a transaction pooler's.
func MigrateUp(ctx context.Context, url string, log *slog.Logger) (int, error) {
	p, sqldb, err := provider(url)
	if err != nil {
		return 0, err
	}
	defer sqldb.Close()
	res, err := p.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("migrate up: %w", err)
	}
	for _, r := range res {
		log.Info("migration applied", "version", r.Source.Version, "file", r.Source.Path, "duration_ms", r.Duration.Milliseconds())
	}
	// The count is of Steward's own migrations; River's are logged.
	if _, err := migrateRiver(ctx, url, log); err != nil {
		return len(res), err
	}
	return len(res), nil
}

// riverLockID serializes River's migrator across replicas, as
// migrationLockID does goose's.
const riverLockID = 7_403_112_002

// migrateRiver creates or upgrades River's tables (durable jobs), right after
// our own schema, with River's own migrator so its schema always matches the
// River version compiled in. It runs under an advisory
// lock: concurrent replicas wait, then find nothing to do.
func migrateRiver(ctx context.Context, url string, log *slog.Logger) (int, error) {
	// Two connections: one holds the lock, River migrates on the other.
	pool, err := open(ctx, url, 2, false)
	if err != nil {
		return 0, fmt.Errorf("river migrate: %w", err)
	}
	defer pool.Close()
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, fmt.Errorf("river migrate: %w", err)
	}
	// River's migrations cannot share one transaction (a later one uses an
	// enum value an earlier one adds), so the lock is a session lock held on
	// one connection while River runs each migration in its own.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("river migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, riverLockID); err != nil {
		return 0, fmt.Errorf("river migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, riverLockID) //nolint:errcheck // released with the session anyway
	var n int
	res, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err == nil {
		for _, v := range res.Versions {
			log.Info("river migration applied", "version", v.Version, "name", v.Name)
		}
		n = len(res.Versions)
	}
	if err != nil {
		return 0, fmt.Errorf("river migrate: %w", err)
	}
	return n, nil
}

// MigrateDown rolls back the most recent migration.
func MigrateDown(ctx context.Context, url string, log *slog.Logger) error {
	p, sqldb, err := provider(url)
	if err != nil {
		return err
	}
	defer sqldb.Close()
	r, err := p.Down(ctx)
	if err != nil {
		if errors.Is(err, goose.ErrNoNextVersion) {
			return errors.New("migrate down: nothing to roll back")
		}
		return fmt.Errorf("migrate down: %w", err)
	}
	log.Info("migration rolled back", "version", r.Source.Version, "file", r.Source.Path)
	return nil
}

// MigrateStatus writes one line per migration: version, state, file.
func MigrateStatus(ctx context.Context, url string, w io.Writer) error {
	p, sqldb, err := provider(url)
	if err != nil {
		return err
	}
	defer sqldb.Close()
	st, err := p.Status(ctx)
	if err != nil {
		return fmt.Errorf("migrate status: %w", err)
	}
	for _, s := range st {
		applied := "pending"
		if s.State == goose.StateApplied {
			applied = "applied " + s.AppliedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%05d  %-30s  %s\n", s.Source.Version, applied, s.Source.Path)
	}
	return nil
}

// IsUniqueViolation reports whether err is a unique-constraint violation.
func IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// Querier is a pool or a transaction, for reads that run in either.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Tx runs fn in a transaction, committing when it returns nil. Store methods
// that change state use it so each public method owns its transaction.
func Tx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
