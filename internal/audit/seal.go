package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob"

	"github.com/steward-privacy/steward/internal/clock"
)

// Checkpoint pins the chain at one entry: {seq, hash, time}, signed.
type Checkpoint struct {
	Seq       int64     `json:"seq"`
	Hash      HexBytes  `json:"hash"`
	At        time.Time `json:"time"`
	KeyID     string    `json:"key_id"`
	Signature []byte    `json:"signature"`
}

// SigningInput is the exact byte string a checkpoint signature covers.
func (c Checkpoint) SigningInput() []byte {
	return fmt.Appendf(nil, "steward.audit.checkpoint.v1\n%d\n%x\n%s\n", c.Seq, []byte(c.Hash), c.At.UTC().Format(time.RFC3339Nano))
}

// Signer signs checkpoints with an Ed25519 key.
type Signer struct {
	priv ed25519.PrivateKey
	kid  string
}

// NewSigner takes a 32-byte Ed25519 seed; kid names the key in checkpoints.
func NewSigner(seed []byte, kid string) (*Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit signer: seed must be %d bytes", ed25519.SeedSize)
	}
	return &Signer{priv: ed25519.NewKeyFromSeed(seed), kid: kid}, nil
}

// PublicKey is the verification key.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// KeyID names the key.
func (s *Signer) KeyID() string { return s.kid }

func (s *Signer) sign(c *Checkpoint) {
	c.KeyID = s.kid
	c.Signature = ed25519.Sign(s.priv, c.SigningInput())
}

// SealerConfig tunes sealing and checkpoints.
type SealerConfig struct {
	Batch              int           // entries sealed per transaction
	CheckpointEvery    int64         // a checkpoint at least every N entries
	CheckpointInterval time.Duration // ... and at least every M minutes when entries were added
	Poll               time.Duration // fallback when no notification arrives
}

func (c SealerConfig) withDefaults() SealerConfig {
	if c.Batch <= 0 {
		c.Batch = 2000
	}
	if c.CheckpointEvery <= 0 {
		c.CheckpointEvery = 1000
	}
	if c.CheckpointInterval <= 0 {
		c.CheckpointInterval = 5 * time.Minute
	}
	if c.Poll <= 0 {
		// Appends send no NOTIFY: at high rates every notifying commit
		// contends on PostgreSQL's notification queue lock. A short poll
		// seals within a fraction of a second instead.
		c.Poll = 200 * time.Millisecond
	}
	return c
}

// Sealer chains pending entries into the log.
type Sealer struct {
	pool   *pgxpool.Pool
	clock  clock.Clock
	log    *slog.Logger
	signer *Signer
	bucket *blob.Bucket // optional copy of every checkpoint outside the database
	cfg    SealerConfig
}

// NewSealer returns a sealer; bucket may be nil.
func NewSealer(pool *pgxpool.Pool, signer *Signer, bucket *blob.Bucket, cfg SealerConfig, clk clock.Clock, log *slog.Logger) *Sealer {
	return &Sealer{pool: pool, clock: clk, log: log, signer: signer, bucket: bucket, cfg: cfg.withDefaults()}
}

// Run seals until ctx ends.
func (s *Sealer) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for {
		if _, err := s.sealBatches(ctx, false); err != nil && ctx.Err() == nil {
			s.log.Error("audit sealing failed; will retry", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SealAll seals batches until nothing is pending and returns how many
// entries it chained. Unlike the background loop it waits for a sealer on
// another replica to finish, so when it returns everything appended before
// the call is in the chain (shutdown, CLI and tests rely on that).
func (s *Sealer) SealAll(ctx context.Context) (int, error) { return s.sealBatches(ctx, true) }

func (s *Sealer) sealBatches(ctx context.Context, wait bool) (int, error) {
	total := 0
	for {
		n, err := s.runOnce(ctx, wait)
		total += n
		if err != nil || n < s.cfg.Batch {
			return total, err
		}
	}
}

// RunOnce seals one batch in one transaction, skipping if another sealer
// holds the head right now.
func (s *Sealer) RunOnce(ctx context.Context) (int, error) { return s.runOnce(ctx, false) }

// runOnce seals one batch. Sealers on other replicas serialise on the head
// row, so exactly one extends the chain at a time; the background loop skips
// (SKIP LOCKED) rather than queue behind it.
func (s *Sealer) runOnce(ctx context.Context, wait bool) (int, error) {
	var sealed int
	var made []Checkpoint
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit seal: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	var headSeq int64
	var headHash []byte
	lockHead := `SELECT seq, hash FROM audit_head FOR UPDATE SKIP LOCKED`
	if wait {
		if _, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '30s'`); err != nil {
			return 0, fmt.Errorf("audit seal: %w", err)
		}
		lockHead = `SELECT seq, hash FROM audit_head FOR UPDATE`
	}
	err = tx.QueryRow(ctx, lockHead).Scan(&headSeq, &headHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil // another replica is sealing
	}
	if err != nil {
		return 0, fmt.Errorf("audit seal: head: %w", err)
	}
	lastCP, lastCPAt, err := lastCheckpoint(ctx, tx)
	if err != nil {
		return 0, err
	}
	rows, err := tx.Query(ctx, `
		SELECT id, at, actor, action, target_type, target_id, details::text, policy_revision
		FROM audit_pending ORDER BY id LIMIT $1`, s.cfg.Batch)
	if err != nil {
		return 0, fmt.Errorf("audit seal: pending: %w", err)
	}
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	var ids []int64
	var copyRows [][]any
	seq, prev := headSeq, headHash
	for rows.Next() {
		var id int64
		var at time.Time
		var actor, action, tt, tid, details, rev string
		if err := rows.Scan(&id, &at, &actor, &action, &tt, &tid, &details, &rev); err != nil {
			rows.Close()
			return 0, fmt.Errorf("audit seal: scan: %w", err)
		}
		seq++
		h := ComputeHash(seq, at, actor, action, tt, tid, []byte(details), rev, prev)
		copyRows = append(copyRows, []any{seq, id, at, actor, action, tt, tid, details, rev, prev, h, now})
		ids = append(ids, id)
		prev = h
		if s.signer != nil && seq-lastCP >= s.cfg.CheckpointEvery {
			made = append(made, s.newCheckpoint(seq, h, now))
			lastCP, lastCPAt = seq, now
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("audit seal: pending: %w", err)
	}
	if len(ids) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"audit_log"},
			[]string{"seq", "pending_id", "at", "actor", "action", "target_type", "target_id", "details", "policy_revision", "prev_hash", "hash", "sealed_at"},
			pgx.CopyFromRows(copyRows)); err != nil {
			return 0, fmt.Errorf("audit seal: insert: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM audit_pending WHERE id = ANY($1)`, ids); err != nil {
			return 0, fmt.Errorf("audit seal: clear pending: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE audit_head SET seq = $1, hash = $2`, seq, prev); err != nil {
			return 0, fmt.Errorf("audit seal: head: %w", err)
		}
		sealed = len(ids)
	}
	// Time-based: entries were added since the last checkpoint and the
	// interval has passed.
	if s.signer != nil && seq > lastCP && now.Sub(lastCPAt) >= s.cfg.CheckpointInterval {
		made = append(made, s.newCheckpoint(seq, prev, now))
	}
	for _, c := range made {
		if _, err := tx.Exec(ctx, `INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES ($1, $2, $3, $4, $5)`,
			c.Seq, []byte(c.Hash), c.At, c.KeyID, c.Signature); err != nil {
			return 0, fmt.Errorf("audit checkpoint: insert: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("audit seal: commit: %w", err)
	}
	for _, c := range made {
		s.export(ctx, c)
	}
	return sealed, nil
}

func (s *Sealer) newCheckpoint(seq int64, hash []byte, now time.Time) Checkpoint {
	c := Checkpoint{Seq: seq, Hash: append([]byte(nil), hash...), At: now}
	s.signer.sign(&c)
	return c
}

// lastCheckpoint returns the newest checkpoint's seq and time (zero values
// when there is none, which makes the first entry due at once).
func lastCheckpoint(ctx context.Context, tx pgx.Tx) (int64, time.Time, error) {
	var seq int64
	var at time.Time
	err := tx.QueryRow(ctx, `SELECT seq, at FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`).Scan(&seq, &at)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, time.Time{}, fmt.Errorf("audit checkpoint: %w", err)
	}
	return seq, at, nil
}

// CheckpointDocument is a checkpoint as written outside the database.
type CheckpointDocument struct {
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`
	Time      string `json:"time"`
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"`
	PublicKey string `json:"public_key"`
}

// Document renders c for export.
func (c Checkpoint) Document(pub ed25519.PublicKey) CheckpointDocument {
	return CheckpointDocument{Seq: c.Seq, Hash: hex.EncodeToString(c.Hash), Time: c.At.UTC().Format(time.RFC3339Nano),
		KeyID: c.KeyID, Signature: base64.StdEncoding.EncodeToString(c.Signature), PublicKey: base64.StdEncoding.EncodeToString(pub)}
}

// ParseCheckpointDocument reads an exported checkpoint (e.g. to verify from it).
func ParseCheckpointDocument(b []byte) (Checkpoint, error) {
	var d CheckpointDocument
	if err := json.Unmarshal(b, &d); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint document: %w", err)
	}
	h, err := hex.DecodeString(d.Hash)
	if err != nil || len(h) != 32 {
		return Checkpoint{}, errors.New("checkpoint document: hash must be 64 hex characters")
	}
	at, err := time.Parse(time.RFC3339Nano, d.Time)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint document: time: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(d.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Checkpoint{}, errors.New("checkpoint document: signature must be base64 of 64 bytes")
	}
	if d.Seq <= 0 {
		return Checkpoint{}, errors.New("checkpoint document: seq must be positive")
	}
	return Checkpoint{Seq: d.Seq, Hash: h, At: at, KeyID: d.KeyID, Signature: sig}, nil
}

// ObjectKey is where checkpoint seq is written in the bucket; zero-padded so
// listing order is seq order.
func ObjectKey(seq int64) string { return fmt.Sprintf("audit/checkpoints/%020d.json", seq) }

// export writes the checkpoint outside the database. A failure is logged,
// not fatal: the signed copy in the database still stands, and the next
// checkpoint is exported as usual.
func (s *Sealer) export(ctx context.Context, c Checkpoint) {
	if s.bucket == nil {
		return
	}
	b, _ := json.MarshalIndent(c.Document(s.signer.PublicKey()), "", "  ")
	if err := s.bucket.WriteAll(ctx, ObjectKey(c.Seq), b, &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		s.log.Error("audit checkpoint not written to object storage", "seq", c.Seq, "err", err)
		return
	}
	s.log.Info("audit checkpoint exported", "seq", c.Seq)
}
