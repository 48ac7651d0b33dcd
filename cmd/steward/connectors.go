package main

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/datamap"
	"github.com/steward-privacy/steward/internal/identity"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/restrictions"
)

// maskKeyLabel derives the connectors' masking key from the identity
// keyring, so a deployment has one secret to keep rather than two. After a
// key rotation new keyed hashes differ from old ones; masking stays
// idempotent because a masked value is recognised by its form, not its key.
const maskKeyLabel = "steward/connectors/mask-key/v1"

// openConnectors builds the registry from the connectors file: each listed
// system must be in the data map with the same connector kind, and each
// connector checks the map against its live schema before Steward serves.
func openConnectors(ctx context.Context, cfg config.Config, holder *policy.Holder, kr *identity.Keyring, pool *pgxpool.Pool, clk clock.Clock, log *slog.Logger) (connectors.Registry, func(), error) {
	specs, err := config.LoadConnectors(cfg.ConnectorsFile, os.LookupEnv)
	if err != nil {
		return nil, nil, err
	}
	reg := connectors.Registry{}
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	dm := holder.Current().DataMap
	currentMap := func() *datamap.Map { return holder.Current().DataMap }
	ledger := &restrictions.Ledger{Pool: pool, Keys: kr, Now: clk.Now}
	for _, sys := range slices.Sorted(maps.Keys(specs)) {
		spec := specs[sys]
		s, ok := dm.Systems[sys]
		if !ok {
			closeAll()
			return nil, nil, fmt.Errorf("STEWARD_CONNECTORS: system %q is not in the data map", sys)
		}
		if s.Connector != datamap.ConnectorPostgres {
			closeAll()
			return nil, nil, fmt.Errorf("STEWARD_CONNECTORS: system %q has connector %q in the data map, but is configured as postgres", sys, s.Connector)
		}
		pg := spec.Postgres
		c, err := postgres.New(ctx, postgres.Config{
			System: sys, DSN: pg.DSN, Schema: pg.Schema, ReadOnly: pg.ReadOnly,
			HashKey:   kr.HashValue(maskKeyLabel),
			BatchSize: pg.BatchSize, SubjectBatch: pg.SubjectBatch,
			LockTimeout: time.Duration(pg.LockTimeout), StatementTimeout: time.Duration(pg.StatementTimeout),
			RestrictColumns: pg.RestrictColumns, Ledger: ledger,
			EmailCaseInsensitive: pg.EmailCaseInsensitive, AllowMissingForeignKeys: pg.AllowMissingForeignKeys,
			MaxConns: int32(pg.MaxConns), DataMap: currentMap, Log: log,
		})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		closers = append(closers, c.Close)
		reg[sys] = c
		log.Info("connector ready", "system", sys, "kind", "postgres", "read_only", pg.ReadOnly)
	}
	for _, sys := range slices.Sorted(maps.Keys(dm.Systems)) {
		if s := dm.Systems[sys]; s.Connector != datamap.ConnectorManual && reg[sys] == nil {
			log.Warn("no connector configured: this system's work becomes manual tasks", "system", sys, "connector", s.Connector)
		}
	}
	return reg, closeAll, nil
}
