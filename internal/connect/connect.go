// Package connect opens the connectors the connectors file
// (STEWARD_CONNECTORS) lists: each system must be in the data map with the
// same connector kind, and each connector checks the map against its live
// system before Steward serves. It is the one place that knows every
// connector kind Steward ships.
package connect

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/creem"
	"github.com/steward-privacy/steward/connectors/objectstore"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/connectors/stripe"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/restrictions"
)

// maskKeyLabel derives the connectors' masking key from the identity
// keyring, so a deployment has one secret to keep rather than two. After a
// key rotation new keyed hashes differ from old ones; masking stays
// idempotent because a masked value is recognised by its form, not its key.
const maskKeyLabel = "steward/connectors/mask-key/v1"

// logKeyLabel derives the key of the hashes connectors log in place of
// personal values (object keys hold user ids), stable across restarts so
// log lines of one object can be correlated.
const logKeyLabel = "steward/connectors/log-key/v1"

// Env is what every connector is built with.
type Env struct {
	Keys    *keyring.Keyring // derives the masking and log-hash keys
	Clock   clock.Clock
	Log     *slog.Logger
	DataMap func() *datamap.Map // the map in force now (policy reloads replace it)
	// Ledger records restrictions for systems with no column to mark them.
	Ledger *restrictions.Ledger
}

// Open builds the registry of the systems specs lists, and a function that
// closes every connector it opened.
func Open(ctx context.Context, specs config.Connectors, env Env) (connectors.Registry, func(), error) {
	reg := connectors.Registry{}
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	dm, log := env.DataMap(), env.Log
	for _, sys := range slices.Sorted(maps.Keys(specs)) {
		spec := specs[sys]
		kind := specKind(spec)
		s, ok := dm.Systems[sys]
		if !ok {
			closeAll()
			return nil, nil, fmt.Errorf("STEWARD_CONNECTORS: system %q is not in the data map", sys)
		}
		if s.Connector != kind {
			closeAll()
			return nil, nil, fmt.Errorf("STEWARD_CONNECTORS: system %q has connector %q in the data map, but is configured as %s", sys, s.Connector, kind)
		}
		c, closer, err := env.open(ctx, sys, spec)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		closers = append(closers, closer)
		reg[sys] = c
		log.Info("connector ready", "system", sys, "kind", kind)
	}
	for _, sys := range slices.Sorted(maps.Keys(dm.Systems)) {
		if s := dm.Systems[sys]; s.Connector != datamap.ConnectorManual && reg[sys] == nil {
			log.Warn("no connector configured: this system's work becomes manual tasks", "system", sys, "connector", s.Connector)
		}
	}
	return reg, closeAll, nil
}

// specKind is the data-map connector name of the kind spec sets (the
// parser guarantees exactly one).
func specKind(spec config.ConnectorSpec) string {
	switch {
	case spec.ObjectStore != nil:
		return datamap.ConnectorObjectStore
	case spec.Stripe != nil:
		return datamap.ConnectorStripe
	case spec.Creem != nil:
		return datamap.ConnectorCreem
	default:
		return datamap.ConnectorPostgres
	}
}

func (e Env) open(ctx context.Context, sys string, spec config.ConnectorSpec) (connectors.Connector, func(), error) {
	switch {
	case spec.Postgres != nil:
		pg := spec.Postgres
		c, err := postgres.New(ctx, postgres.Config{
			System: sys, DSN: pg.DSN, Schema: pg.Schema, ReadOnly: pg.ReadOnly,
			HashKey:   e.Keys.HashValue(maskKeyLabel),
			BatchSize: pg.BatchSize, SubjectBatch: pg.SubjectBatch, SweepBatch: pg.SweepBatch,
			LockTimeout: time.Duration(pg.LockTimeout), StatementTimeout: time.Duration(pg.StatementTimeout),
			RestrictColumns: pg.RestrictColumns, Ledger: e.Ledger,
			EmailCaseSensitive: pg.EmailCaseSensitive, AllowMissingForeignKeys: pg.AllowMissingForeignKeys,
			MaxConns: int32(pg.MaxConns), DataMap: e.DataMap, Log: e.Log,
		})
		if err != nil {
			return nil, nil, err
		}
		return c, c.Close, nil
	case spec.ObjectStore != nil:
		ob := spec.ObjectStore
		oc := objectstore.Config{
			System: sys, URL: ob.URL, DataMap: e.DataMap, Clock: e.Clock, Log: e.Log,
			HashKey: e.Keys.HashValue(logKeyLabel), PageSize: ob.PageSize, DeleteConcurrency: ob.DeleteConcurrency,
		}
		var bucket *blob.Bucket
		if ob.S3 != nil {
			var err error
			if bucket, err = openS3Bucket(ctx, ob.S3); err != nil {
				return nil, nil, fmt.Errorf("STEWARD_CONNECTORS: system %q: %w", sys, err)
			}
			oc.URL, oc.Bucket = "", bucket
		}
		c, err := objectstore.New(ctx, oc)
		if err != nil {
			if bucket != nil {
				_ = bucket.Close()
			}
			return nil, nil, err
		}
		return c, func() {
			_ = c.Close()
			if bucket != nil {
				_ = bucket.Close()
			}
		}, nil
	case spec.Stripe != nil:
		st := spec.Stripe
		c, err := stripe.New(ctx, stripe.Config{
			System: sys, APIKey: st.APIKey, BaseURL: st.BaseURL, MaxRetries: st.MaxRetries,
			CancelSubscriptions: st.CancelSubscriptions, DataMap: e.DataMap, Clock: e.Clock, Log: e.Log,
		})
		if err != nil {
			return nil, nil, err
		}
		return c, c.Close, nil
	case spec.Creem != nil:
		cr := spec.Creem
		c, err := creem.New(ctx, creem.Config{
			System: sys, APIKey: cr.APIKey, BaseURL: cr.BaseURL, Store: cr.Store, SupportContact: cr.SupportContact,
			MaxRetries: cr.MaxRetries, PageSize: cr.PageSize, DataMap: e.DataMap, Clock: e.Clock, Log: e.Log,
		})
		if err != nil {
			return nil, nil, err
		}
		return c, c.Close, nil
	default:
		return nil, nil, fmt.Errorf("STEWARD_CONNECTORS: system %q: the %s connector is not available in this build", sys, specKind(spec))
	}
}

// openS3Bucket opens an S3-compatible bucket with static keys (or, without
// them, the AWS SDK's default credential chain).
func openS3Bucket(ctx context.Context, spec *config.S3Spec) (*blob.Bucket, error) {
	var cfg aws.Config
	if spec.AccessKeyID != "" {
		cfg = aws.Config{Credentials: credentials.NewStaticCredentialsProvider(spec.AccessKeyID, spec.SecretAccessKey, "")}
	} else {
		var err error
		if cfg, err = awsconfig.LoadDefaultConfig(ctx); err != nil {
			return nil, fmt.Errorf("aws configuration: %w", err)
		}
	}
	cfg.Region = spec.Region
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if spec.Endpoint != "" {
		cfg.BaseEndpoint = aws.String(spec.Endpoint)
		// S3-compatible servers verify checksums only when asked to, and
		// some refuse the SDK's default trailing checksums.
		cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = spec.PathStyle })
	return s3blob.OpenBucketV2(ctx, client, spec.Bucket, &s3blob.Options{RequestChecksumCalculation: cfg.RequestChecksumCalculation})
}
