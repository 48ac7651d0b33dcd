package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob:// checkpoint and file stores
	_ "gocloud.dev/blob/fileblob"  // file:// checkpoint and file stores
	_ "gocloud.dev/blob/gcsblob"   // gs:// checkpoint and file stores
	_ "gocloud.dev/blob/s3blob"    // s3:// checkpoint and file stores

	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/notify"
	"github.com/steward-privacy/steward/internal/receipt"
)

// auditKeys builds the checkpoint signer (nil when no key is configured)
// and the set of keys verify trusts. Key ids are RFC 7638 thumbprints, so a
// verifier can match a key it was given out of band.
func auditKeys(cfg config.Config) (*audit.Signer, audit.Keys, error) {
	keys := audit.Keys{}
	var signer *audit.Signer
	if cfg.AuditSigningKey != "" {
		seed, err := receipt.ParseSeed(cfg.AuditSigningKey)
		if err != nil {
			return nil, nil, fmt.Errorf("STEWARD_AUDIT_SIGNING_KEY: %w", err)
		}
		s, err := audit.NewSigner(seed, "")
		if err != nil {
			return nil, nil, err
		}
		kid := receipt.Thumbprint(s.PublicKey())
		if signer, err = audit.NewSigner(seed, kid); err != nil {
			return nil, nil, err
		}
		keys[kid] = signer.PublicKey()
	}
	for _, k := range cfg.AuditRetiredKeys {
		pk, err := receipt.ParsePublicKey(k)
		if err != nil {
			return nil, nil, fmt.Errorf("STEWARD_AUDIT_RETIRED_KEYS: %w", err)
		}
		keys[receipt.Thumbprint(pk)] = pk
	}
	return signer, keys, nil
}

func openCheckpointBucket(ctx context.Context, cfg config.Config) (*blob.Bucket, error) {
	if cfg.AuditCheckpointBucket == "" {
		return nil, nil
	}
	b, err := blob.OpenBucket(ctx, cfg.AuditCheckpointBucket)
	if err != nil {
		return nil, fmt.Errorf("STEWARD_AUDIT_CHECKPOINT_BUCKET: %w", err)
	}
	return b, nil
}

// openFileStore opens the store of disclosed files. A relative file://
// URL ("file://./var/files") is made absolute and its directory created,
// so the default works from a fresh checkout.
func openFileStore(ctx context.Context, cfg config.Config) (*blob.Bucket, error) {
	u := cfg.FileStore
	if rest, ok := strings.CutPrefix(u, "file://./"); ok {
		path, query, _ := strings.Cut(rest, "?")
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("STEWARD_FILE_STORE: %w", err)
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return nil, fmt.Errorf("STEWARD_FILE_STORE: %w", err)
		}
		u = "file://" + filepath.ToSlash(abs)
		if query != "" {
			u += "?" + query
		}
	}
	b, err := blob.OpenBucket(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("STEWARD_FILE_STORE: %w", err)
	}
	return b, nil
}

func newSealer(pool *pgxpool.Pool, cfg config.Config, signer *audit.Signer, bucket *blob.Bucket, clk clock.Clock, log *slog.Logger) *audit.Sealer {
	return audit.NewSealer(pool, signer, bucket, audit.SealerConfig{
		CheckpointEvery: int64(cfg.AuditCheckpointEvery), CheckpointInterval: cfg.AuditCheckpointInterval,
	}, clk, log)
}

// keyAudit records API key changes, made by actor.
func keyAudit(l *audit.Log, actor string) apikey.AuditFunc {
	return func(ctx context.Context, tx pgx.Tx, action string, k apikey.Key) error {
		return l.Append(ctx, tx, audit.Record{Actor: actor, Action: action, TargetType: "api_key", TargetID: k.ID,
			Details: map[string]any{"name": k.Name, "role": k.Role}})
	}
}

// gpcAudit records the first Global Privacy Control signal of a subject,
// which is identified only by its keyed hash.
func gpcAudit(l *audit.Log) func(ctx context.Context, tx pgx.Tx, subjectHash []byte, eventIDs []string) error {
	return func(ctx context.Context, tx pgx.Tx, subjectHash []byte, eventIDs []string) error {
		h := hex.EncodeToString(subjectHash)
		return l.Append(ctx, tx, audit.Record{Actor: "subject:" + h, Action: "consent.gpc_recorded", TargetType: "subject", TargetID: h,
			Details: map[string]any{"consent_events": eventIDs}})
	}
}

// outboxAudit records a message the outbox gave up on.
func outboxAudit(l *audit.Log) notify.FinalFailure {
	return func(ctx context.Context, tx pgx.Tx, m notify.Message) error {
		return l.Append(ctx, tx, audit.Record{Actor: "system:outbox", Action: "outbox.delivery_failed", TargetType: "outbox_message",
			TargetID: strconv.FormatInt(m.ID, 10), Details: map[string]any{"kind": m.Kind, "attempts": m.Attempts, "last_error": m.LastError}})
	}
}

// recordPolicyLoaded writes the policy revision a replica starts with.
func recordPolicyLoaded(ctx context.Context, pool *pgxpool.Pool, l *audit.Log, revision, source string, purposes int) error {
	return l.Record(ctx, pool, audit.Record{Actor: "system:serve", Action: "policy.loaded", TargetType: "policy", TargetID: revision,
		Details: map[string]any{"source": source, "purposes": purposes}})
}

// auditCmd implements `steward audit verify [--from CHECKPOINT.json]`.
func auditVerify(ctx context.Context, cfg config.Config, pool *pgxpool.Pool, from []byte) (audit.Result, error) {
	_, keys, err := auditKeys(cfg)
	if err != nil {
		return audit.Result{}, err
	}
	if len(keys) == 0 {
		return audit.Result{}, errors.New("no checkpoint verification key: set STEWARD_AUDIT_SIGNING_KEY or STEWARD_AUDIT_RETIRED_KEYS")
	}
	var cp *audit.Checkpoint
	if from != nil {
		c, err := audit.ParseCheckpointDocument(from)
		if err != nil {
			return audit.Result{}, err
		}
		cp = &c
	}
	return audit.Verify(ctx, pool, keys, cp)
}

// recordPolicyRejected records a bundle that was refused on reload; the
// error names files and rules, never personal data.
func recordPolicyRejected(ctx context.Context, pool *pgxpool.Pool, l *audit.Log, source string, cause error) error {
	msg := cause.Error()
	if len(msg) > 2000 {
		msg = msg[:2000] + "…"
	}
	return l.Record(ctx, pool, audit.Record{Actor: "system:serve", Action: "policy.rejected", TargetType: "policy_source", TargetID: source,
		Details: map[string]any{"error": msg}})
}
