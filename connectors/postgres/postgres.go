// Package postgres is the connector for an application's own PostgreSQL
// database: accounts, sessions, jobs, payments, whatever the data map says
// the product keeps there.
//
// It is driven entirely by the data map. A dataset's table, its identity
// columns and its references (foreign keys in the map's words) say how to
// reach every row of a person from one identity: users.email → users.id →
// generation_jobs.user_id → job_assets.job_id. At start the map is checked
// against the live schema (tables, columns, key types, foreign keys), and a
// mismatch is an error naming the map entry, because a map that silently
// misses a column misses a person's data.
//
// Safety rules, all enforced here rather than trusted to the map's author:
//   - identifiers in SQL come only from the validated map and the live
//     catalog, quoted with pgx.Identifier; every value is a bound parameter;
//   - every write runs in short transactions (one per batch) with
//     lock_timeout and statement_timeout, so the application is never
//     blocked for long;
//   - a row another kept row still references is never deleted (that would
//     fail, or cascade into rows the plan keeps); it is kept as a tombstone
//     with its personal fields erased and reported as such;
//   - erasure ends with a verification pass that re-reads the subject's rows
//     and finds nothing left to do, or the task fails;
//   - a read-only deployment opens read-only sessions, so even a bug cannot
//     write.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/datamap"
)

// Config configures one connector: one data-map system in one database
// schema.
type Config struct {
	// System is the data-map system id (e.g. "app_db").
	System string
	// DSN is the application database's connection string. The role needs
	// SELECT on the mapped tables, and UPDATE and DELETE unless ReadOnly.
	DSN string
	// Schema holds the system's tables; default "public".
	Schema string
	// ReadOnly allows only identity resolution and access: the sessions are
	// opened read-only, and erasure, rectification and restriction become
	// manual tasks.
	ReadOnly bool
	// HashKey is the per-deployment key of the keyed_hash and pseudonym
	// masks. Required unless ReadOnly. Keep it secret: with it, a masked
	// value can be matched against a guess.
	HashKey []byte
	// BatchSize is the most rows one transaction changes; default 500.
	BatchSize int
	// SubjectBatch is how many subjects one transaction of the bulk path
	// covers; default 1000.
	SubjectBatch int
	// SweepBatch is about how many rows one transaction of a retention
	// sweep's delete path deletes; default 5,000. It is larger than
	// BatchSize because such a batch is one set-based statement over a
	// range of the table (milliseconds of locks), and smaller batches
	// spend their time on commits. Larger ones sweep faster (20,000:
	// 0.76-0.84x a raw DELETE against 0.65-0.73x) but hold the database for
	// longer bursts, which the application's queries feel: with 5,000 and
	// the retention service's pacing, consent checks beside a sweep kept
	// their p99 within 2x; with 20,000 unpaced it reached 2.7x (see the
	// docs/performance.md's retention figures).
	SweepBatch int
	// LockTimeout and StatementTimeout bound every statement the connector
	// runs (defaults 2 s and 30 s): a busy row makes a batch fail and retry
	// rather than queue the application's writers behind it.
	LockTimeout      time.Duration
	StatementTimeout time.Duration
	// RestrictColumns names, per dataset, a boolean or timestamp column that
	// marks a row's processing restricted. Datasets without one have their
	// restriction recorded in Ledger.
	RestrictColumns map[string]string
	// Ledger records restrictions where the schema has no flag column. Nil
	// means such datasets cannot be restricted by the connector.
	Ledger Ledger
	// EmailCaseSensitive compares email identities in text columns exactly
	// (column = value) instead of case-insensitively (lower(column) = value,
	// the default). Set it when the application itself stores addresses
	// lower-cased and the plain index on the column should serve the
	// lookup: without an index on lower(column) (the connector logs the
	// statement that creates one at start), the default comparison reads
	// the whole table. A citext column is always compared case-insensitively,
	// and a data-map identity's match overrides this for its column.
	EmailCaseSensitive bool
	// AllowMissingForeignKeys accepts data-map references that no foreign
	// key backs (an application that does not declare them), logging each.
	AllowMissingForeignKeys bool
	// MaxConns bounds the connector's own pool; default 4.
	MaxConns int32
	// DataMap returns the current data map; the connector re-checks the
	// schema when it changes (a policy reload).
	DataMap func() *datamap.Map
	Log     *slog.Logger
}

// Ledger records a restriction of processing in Steward for datasets whose
// table has no flag column. Restrict reports whether the state changed.
type Ledger interface {
	// requestID is the privacy request that asks (Target.RequestID), so the
	// consent check can name it.
	Restrict(ctx context.Context, system, dataset string, ids []connectors.Identity, restricted bool, requestID, reason string) (changed bool, err error)
}

// Connector reaches one system's tables in one database.
type Connector struct {
	cfg  Config
	pool *pgxpool.Pool
	log  *slog.Logger

	mu    sync.Mutex
	model *model // compiled from the map last checked

	// inject, set only by tests (export_test.go), fails the next call of
	// an operation before it does anything.
	inject func(op string) error
}

// New connects, reads the schema and checks the data map against it.
func New(ctx context.Context, cfg Config) (*Connector, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: parse DSN: %w", cfg.System, err)
	}
	pc.MaxConns = cfg.MaxConns
	pc.ConnConfig.RuntimeParams["application_name"] = "steward-connector-" + cfg.System
	if cfg.ReadOnly {
		// The database enforces it: even a bug here cannot write.
		pc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres %s: connect: %w", cfg.System, err)
	}
	c := &Connector{cfg: cfg, pool: pool, log: cfg.Log}
	if _, err := c.current(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return c, nil
}

func (cfg *Config) defaults() error {
	if cfg.System == "" {
		return errors.New("postgres: Config.System is required")
	}
	if cfg.DSN == "" {
		return fmt.Errorf("postgres %s: Config.DSN is required", cfg.System)
	}
	if cfg.DataMap == nil {
		return fmt.Errorf("postgres %s: Config.DataMap is required", cfg.System)
	}
	if !cfg.ReadOnly && len(cfg.HashKey) < 16 {
		return fmt.Errorf("postgres %s: Config.HashKey of at least 16 bytes is required to mask (or set ReadOnly)", cfg.System)
	}
	if cfg.Schema == "" {
		cfg.Schema = "public"
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.SubjectBatch <= 0 {
		cfg.SubjectBatch = 1000
	}
	if cfg.SweepBatch <= 0 {
		cfg.SweepBatch = 5_000
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = 2 * time.Second
	}
	if cfg.StatementTimeout <= 0 {
		cfg.StatementTimeout = 30 * time.Second
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 4
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.RestrictColumns = maps.Clone(cfg.RestrictColumns)
	return nil
}

// Close closes the connector's pool.
func (c *Connector) Close() { c.pool.Close() }

// Capabilities: everything, except writes in read-only mode.
func (c *Connector) Capabilities() connectors.Capabilities {
	w := !c.cfg.ReadOnly
	return connectors.Capabilities{ResolveIdentities: true, Access: true, Erase: w, Rectify: w, Restrict: w}
}

// current returns the model for the current data map, compiling it (and
// re-reading the catalog) when the map changed since the last call.
func (c *Connector) current(ctx context.Context) (*model, error) {
	dm := c.cfg.DataMap()
	if dm == nil {
		return nil, connectors.Permanent(fmt.Errorf("postgres %s: no data map loaded", c.cfg.System))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.model != nil && c.model.dm == dm {
		return c.model, nil
	}
	cat, err := LoadCatalog(ctx, c.pool, c.cfg.Schema)
	if err != nil {
		return nil, classify(ctx, err)
	}
	m, warnings, err := compile(dm, cat, c.cfg)
	for _, w := range warnings {
		c.log.Warn("postgres connector: data map entry not backed by the schema", "system", c.cfg.System, "problem", w)
	}
	if err != nil {
		return nil, connectors.Permanent(err)
	}
	if problems, err := m.privilegeProblems(ctx, c.pool, c.cfg.Schema, c.cfg.ReadOnly); err != nil {
		return nil, classify(ctx, err)
	} else if len(problems) > 0 {
		return nil, connectors.Permanent(fmt.Errorf("postgres %s: the connector's database role lacks privileges (grant them, or set read_only: true for a connector that only reads; docs/connectors.md):\n  %s",
			c.cfg.System, strings.Join(problems, "\n  ")))
	}
	for _, w := range m.unindexedLower(c.cfg.EmailCaseSensitive) {
		c.log.Warn("postgres connector: identity column compared case-insensitively has no index on lower(column); each lookup reads the whole table",
			"system", c.cfg.System, "dataset", w.dataset, "column", w.column, "create_index", w.create,
			"hint", "or set match: exact on the identity (email_case_sensitive: true for every email) if the application stores the values lower-cased")
	}
	for _, r := range m.writeTriggerReports() {
		c.log.Info("postgres connector: mapped table has triggers an erasure's UPDATE or DELETE fires; what they write cannot be known from the schema",
			"system", c.cfg.System, "dataset", r.dataset, "table", r.table, "triggers", r.triggers, "fields_their_source_mentions", r.mentions)
	}
	for _, w := range m.inheritanceOverlaps() {
		c.log.Warn("postgres connector: two datasets share rows through table inheritance", "system", c.cfg.System, "problem", w)
	}
	c.model = m
	return m, nil
}

// lowerWarning is an identity column compared with lower() that no index
// on lower(column) serves.
type lowerWarning struct {
	dataset, column, create string
}

// unindexedLower lists the identity columns compared with lower() that no
// index on lower(column) serves, in dataset order, with the statement
// creating the index.
func (m *model) unindexedLower(exactEmails bool) []lowerWarning {
	var out []lowerWarning
	for _, did := range slices.Sorted(maps.Keys(m.datasets)) {
		ds := m.datasets[did]
		for _, ic := range ds.identities {
			if identityComparison(ic.col, ic.typ, ic.match, exactEmails) != compareLower || ds.table.LowerIndex(ic.col.Name) != nil {
				continue
			}
			out = append(out, lowerWarning{dataset: did, column: ds.table.Name + "." + ic.col.Name, create: CreateLowerIndex(m.schema, ds.table, ic.col.Name)})
		}
	}
	return out
}

// inheritanceOverlaps names the mapped datasets whose table inherits from
// another mapped dataset's table: a query on the parent reads the child's
// rows, so they are disclosed twice and erased under both datasets' plans.
func (m *model) inheritanceOverlaps() []string {
	byTable := map[string]string{}
	for did, ds := range m.datasets {
		byTable[ds.table.Name] = did
	}
	var out []string
	for _, did := range slices.Sorted(maps.Keys(m.datasets)) {
		ds := m.datasets[did]
		for _, p := range ds.table.Parents {
			if pid, ok := byTable[p]; ok {
				out = append(out, fmt.Sprintf("datasets.%s: table %s inherits from %s (dataset %s), and a query on %s reads %s's rows too: they are disclosed twice and erased under both datasets' plans; map one of them", did, ds.table.Name, p, pid, p, ds.table.Name))
			}
		}
	}
	return out
}

// EraseAfter implements connectors.EraseOrderer from the live foreign
// keys: a dataset whose table references dataset's table goes first.
func (c *Connector) EraseAfter(system, dataset string) []string {
	if system != c.cfg.System {
		return nil
	}
	c.mu.Lock()
	m := c.model
	c.mu.Unlock()
	if m == nil {
		return nil
	}
	// A dataset whose table a trigger of another mapped table may copy
	// rows into (an audit history) goes after that table's dataset.
	out := slices.Clone(m.after[dataset])
	for _, did := range m.triggerAfter(dataset) {
		if !slices.Contains(out, did) {
			out = append(out, did)
		}
	}
	return out
}

var _ connectors.Connector = (*Connector)(nil)
var _ connectors.EraseOrderer = (*Connector)(nil)

// privilegeProblems names, per dataset, what the connector's role may not
// do that its work needs: use the schema, read the table and, unless read
// only, update and delete its rows. The catalog is readable without these
// (pg_catalog is public), so without this check a missing GRANT would
// surface only as a failed task; it stops the connector at start instead,
// naming the GRANT.
func (m *model) privilegeProblems(ctx context.Context, q *pgxpool.Pool, schema string, readOnly bool) ([]string, error) {
	var usage bool
	if err := q.QueryRow(ctx, `SELECT has_schema_privilege($1, 'USAGE')`, schema).Scan(&usage); err != nil {
		return nil, fmt.Errorf("postgres: check privileges on schema %q: %w", schema, err)
	}
	if !usage {
		return []string{fmt.Sprintf("schema %s: no USAGE (GRANT USAGE ON SCHEMA %s TO current role)", schema, pgx.Identifier{schema}.Sanitize())}, nil
	}
	privs := []string{"SELECT"}
	if !readOnly {
		privs = append(privs, "UPDATE", "DELETE")
	}
	dids := slices.Sorted(maps.Keys(m.datasets))
	tables := make([]string, len(dids))
	for i, did := range dids {
		tables[i] = m.datasets[did].ident.Sanitize()
	}
	// One query for every table and privilege. SELECT and UPDATE may be
	// granted column by column; DELETE only on the table.
	rows, err := q.Query(ctx, `
		SELECT t.i, p.name, CASE WHEN p.name = 'DELETE' THEN has_table_privilege(t.name, p.name)
		                         ELSE has_any_column_privilege(t.name, p.name) END
		FROM unnest($1::text[]) WITH ORDINALITY AS t(name, i), unnest($2::text[]) WITH ORDINALITY AS p(name, j)
		ORDER BY t.i, p.j`, tables, privs)
	if err != nil {
		return nil, fmt.Errorf("postgres: check privileges on the mapped tables of schema %q: %w", schema, err)
	}
	missing := make([][]string, len(dids))
	for rows.Next() {
		var i int
		var priv string
		var ok bool
		if err := rows.Scan(&i, &priv, &ok); err != nil {
			rows.Close()
			return nil, fmt.Errorf("postgres: check privileges: %w", err)
		}
		if !ok {
			missing[i-1] = append(missing[i-1], priv)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: check privileges: %w", err)
	}
	var problems []string
	for i, did := range dids {
		if len(missing[i]) > 0 {
			problems = append(problems, fmt.Sprintf("datasets.%s: table %s: no %s (GRANT %s ON %s TO current role)",
				did, tables[i], strings.Join(missing[i], ", "), strings.Join(missing[i], ", "), tables[i]))
		}
	}
	return problems, nil
}
