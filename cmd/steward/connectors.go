package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/creem"
	"github.com/steward-privacy/steward/connectors/objectstore"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/connectors/stripe"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/policy"
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

// openConnectors builds the registry from the connectors file: each listed
// system must be in the data map with the same connector kind, and each
// connector checks the map against its live system before Steward serves.
func openConnectors(ctx context.Context, cfg config.Config, holder *policy.Holder, kr *keyring.Keyring, pool *pgxpool.Pool, clk clock.Clock, log *slog.Logger) (connectors.Registry, config.Connectors, func(), error) {
	specs, err := config.LoadConnectors(cfg.ConnectorsFile, os.LookupEnv)
	if err != nil {
		return nil, nil, nil, err
	}
	reg := connectors.Registry{}
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	dm := holder.Current().DataMap
	env := connectorEnv{
		kr: kr, clk: clk, log: log,
		dataMap: func() *datamap.Map { return holder.Current().DataMap },
		ledger:  &restrictions.Ledger{Pool: pool, Keys: kr, Now: clk.Now},
	}
	for _, sys := range slices.Sorted(maps.Keys(specs)) {
		spec := specs[sys]
		kind := specKind(spec)
		s, ok := dm.Systems[sys]
		if !ok {
			closeAll()
			return nil, nil, nil, fmt.Errorf("STEWARD_CONNECTORS: system %q is not in the data map", sys)
		}
		if s.Connector != kind {
			closeAll()
			return nil, nil, nil, fmt.Errorf("STEWARD_CONNECTORS: system %q has connector %q in the data map, but is configured as %s", sys, s.Connector, kind)
		}
		c, closer, err := env.open(ctx, sys, spec)
		if err != nil {
			closeAll()
			return nil, nil, nil, err
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
	return reg, specs, closeAll, nil
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

// connectorEnv is what every connector is built with.
type connectorEnv struct {
	kr      *keyring.Keyring
	clk     clock.Clock
	log     *slog.Logger
	dataMap func() *datamap.Map
	ledger  *restrictions.Ledger
}

func (e connectorEnv) open(ctx context.Context, sys string, spec config.ConnectorSpec) (connectors.Connector, func(), error) {
	switch {
	case spec.Postgres != nil:
		pg := spec.Postgres
		c, err := postgres.New(ctx, postgres.Config{
			System: sys, DSN: pg.DSN, Schema: pg.Schema, ReadOnly: pg.ReadOnly,
			HashKey:   e.kr.HashValue(maskKeyLabel),
			BatchSize: pg.BatchSize, SubjectBatch: pg.SubjectBatch, SweepBatch: pg.SweepBatch,
			LockTimeout: time.Duration(pg.LockTimeout), StatementTimeout: time.Duration(pg.StatementTimeout),
			RestrictColumns: pg.RestrictColumns, Ledger: e.ledger,
			EmailCaseInsensitive: pg.EmailCaseInsensitive, AllowMissingForeignKeys: pg.AllowMissingForeignKeys,
			MaxConns: int32(pg.MaxConns), DataMap: e.dataMap, Log: e.log,
		})
		if err != nil {
			return nil, nil, err
		}
		return c, c.Close, nil
	case spec.ObjectStore != nil:
		ob := spec.ObjectStore
		oc := objectstore.Config{
			System: sys, URL: ob.URL, DataMap: e.dataMap, Clock: e.clk, Log: e.log,
			HashKey: e.kr.HashValue(logKeyLabel), PageSize: ob.PageSize, DeleteConcurrency: ob.DeleteConcurrency,
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
			CancelSubscriptions: st.CancelSubscriptions, DataMap: e.dataMap, Clock: e.clk, Log: e.log,
		})
		if err != nil {
			return nil, nil, err
		}
		return c, c.Close, nil
	case spec.Creem != nil:
		cr := spec.Creem
		c, err := creem.New(ctx, creem.Config{
			System: sys, APIKey: cr.APIKey, BaseURL: cr.BaseURL, Store: cr.Store, SupportContact: cr.SupportContact,
			MaxRetries: cr.MaxRetries, PageSize: cr.PageSize, DataMap: e.dataMap, Clock: e.clk, Log: e.log,
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

// creemWebhookReceiver verifies a Creem webhook's signature and records the
// event in the audit log: its id and type, and the customer only as a keyed
// hash (a Creem customer id is linkable to a person). Nil when no Creem
// system has a webhook secret.
func creemWebhookReceiver(specs config.Connectors, kr *keyring.Keyring, pool *pgxpool.Pool, l *audit.Log) func(ctx context.Context, body []byte, signature string) error {
	var secret []byte
	for _, sys := range slices.Sorted(maps.Keys(specs)) {
		if cr := specs[sys].Creem; cr != nil && cr.WebhookSecret != "" {
			secret = []byte(cr.WebhookSecret)
			break
		}
	}
	if secret == nil {
		return nil
	}
	return func(ctx context.Context, body []byte, signature string) error {
		if len(body) > creem.MaxWebhookSize {
			return apperr.New(apperr.TooLarge, "webhook body larger than %d bytes", creem.MaxWebhookSize)
		}
		if err := creem.VerifyWebhook(secret, body, signature); err != nil {
			return apperr.New(apperr.Unauthenticated, "the creem-signature header does not match the body")
		}
		ev, err := creem.ParseWebhook(body)
		if err != nil {
			// The parser's messages name fields, never their values.
			return apperr.New(apperr.Invalid, "%s", err.Error())
		}
		details := map[string]any{"event_id": ev.ID, "event_type": ev.Type, "object_type": ev.ObjectType}
		target := ""
		if ev.CustomerID != "" {
			target = hex.EncodeToString(kr.HashValue("creem:" + ev.CustomerID))
		}
		return l.Record(ctx, pool, audit.Record{Actor: "system:creem", Action: "creem.webhook_received",
			TargetType: "creem_customer", TargetID: target, Details: details})
	}
}
