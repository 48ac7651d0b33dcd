package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob"

	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/db/dbtest"
)

type fixture struct {
	pool   *pgxpool.Pool
	log    *audit.Log
	sealer *audit.Sealer
	keys   audit.Keys
	signer *audit.Signer
}

func setup(t testing.TB, cfg audit.SealerConfig, bucket *blob.Bucket) *fixture {
	t.Helper()
	_, pool := dbtest.New(t)
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	signer, err := audit.NewSigner(seed, "audit-1")
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.Real{}
	return &fixture{
		pool:   pool,
		log:    audit.New(clk, "rev-test"),
		sealer: audit.NewSealer(pool, signer, bucket, cfg, clk, slog.New(slog.DiscardHandler)),
		keys:   audit.Keys{"audit-1": signer.PublicKey()},
		signer: signer,
	}
}

func (f *fixture) append(t testing.TB, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		err := db.Tx(context.Background(), f.pool, func(tx pgx.Tx) error {
			return f.log.Append(context.Background(), tx, audit.Record{
				Actor: "system:test", Action: "test.appended", TargetType: "thing", TargetID: fmt.Sprint(i),
				Details: map[string]any{"i": i, "note": "hello"},
			})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) seal(t testing.TB) {
	t.Helper()
	if _, err := f.sealer.SealAll(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) verify(t testing.TB) audit.Result {
	t.Helper()
	r, err := audit.Verify(context.Background(), f.pool, f.keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestConcurrentWritersMakeOneUnbrokenChain(t *testing.T) {
	t.Parallel()
	f := setup(t, audit.SealerConfig{CheckpointEvery: 1000}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	var sealers sync.WaitGroup
	// Two sealers run throughout, as two replicas would.
	for i := 0; i < 2; i++ {
		sealers.Add(1)
		go func() {
			defer sealers.Done()
			for ctx.Err() == nil {
				if _, err := f.sealer.SealAll(ctx); err != nil && ctx.Err() == nil {
					t.Error(err)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	var writers sync.WaitGroup
	for w := 0; w < 8; w++ {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := 0; i < 1000; i++ {
				err := db.Tx(context.Background(), f.pool, func(tx pgx.Tx) error {
					return f.log.Append(context.Background(), tx, audit.Record{
						Actor: "system:writer", Action: "test.appended", TargetType: "writer", TargetID: fmt.Sprint(w),
						Details: map[string]any{"i": i},
					})
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	writers.Wait()
	cancel()
	sealers.Wait()
	f.seal(t)
	r := f.verify(t)
	if !r.OK || r.Entries != 8000 || r.HeadSeq != 8000 || r.Pending != 0 || r.Checkpoints < 7 {
		t.Fatalf("verify: %+v", r)
	}
	if !strings.HasPrefix(r.String(), "OK 8000 entries, head 8000 ") {
		t.Fatal(r.String())
	}
}

func TestRolledBackChangeLeavesNoEntry(t *testing.T) {
	t.Parallel()
	f := setup(t, audit.SealerConfig{}, nil)
	boom := errors.New("the change failed")
	err := db.Tx(context.Background(), f.pool, func(tx pgx.Tx) error {
		if err := f.log.Append(context.Background(), tx, audit.Record{Actor: "system:test", Action: "test.appended", TargetType: "t", TargetID: "1"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	f.seal(t)
	if r := f.verify(t); !r.OK || r.Entries != 0 || r.Pending != 0 {
		t.Fatalf("%+v", r)
	}
}

func TestAppendRefusesMalformedRecords(t *testing.T) {
	t.Parallel()
	f := setup(t, audit.SealerConfig{}, nil)
	for _, r := range []audit.Record{
		{Actor: "system:test", Action: "NotDotted", TargetType: "t", TargetID: "1"},
		{Actor: "ann@example.com", Action: "test.appended", TargetType: "t", TargetID: "1"},
		{Actor: "system:test", Action: "test.appended", TargetType: "", TargetID: "1"},
		{Actor: "system:test", Action: "test.appended", TargetType: "t", TargetID: "1", Details: []int{1}},
		// A staff actor is a canonical lower-case uuid, nothing else.
		{Actor: "staff:", Action: "test.appended", TargetType: "t", TargetID: "1"},
		{Actor: "staff:ann@example.com", Action: "test.appended", TargetType: "t", TargetID: "1"},
		{Actor: "staff:0F8FAD5B-D9CB-469F-A165-70867728950E", Action: "test.appended", TargetType: "t", TargetID: "1"},
		{Actor: "staff:0f8fad5bd9cb469fa16570867728950e", Action: "test.appended", TargetType: "t", TargetID: "1"},
		{Actor: "staff:{0f8fad5b-d9cb-469f-a165-70867728950e}", Action: "test.appended", TargetType: "t", TargetID: "1"},
	} {
		err := db.Tx(context.Background(), f.pool, func(tx pgx.Tx) error { return f.log.Append(context.Background(), tx, r) })
		if err == nil {
			t.Errorf("accepted %+v", r)
		}
	}
}

func TestAppendAcceptsEveryActorKind(t *testing.T) {
	t.Parallel()
	f := setup(t, audit.SealerConfig{}, nil)
	for _, actor := range []string{
		"key:key_0123abcd", "staff:0f8fad5b-d9cb-469f-a165-70867728950e",
		"subject:" + strings.Repeat("ab", 32), "system:staff",
	} {
		err := db.Tx(context.Background(), f.pool, func(tx pgx.Tx) error {
			return f.log.Append(context.Background(), tx, audit.Record{Actor: actor, Action: "test.appended", TargetType: "t", TargetID: "1"})
		})
		if err != nil {
			t.Errorf("%s: %v", actor, err)
		}
	}
	f.seal(t)
	var n int
	if err := f.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE actor LIKE 'staff:%'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("staff entries in the chain: %d %v", n, err)
	}
}

func TestDatabaseRefusesChange(t *testing.T) {
	t.Parallel()
	f := setup(t, audit.SealerConfig{CheckpointEvery: 1}, nil)
	f.append(t, 3)
	f.seal(t)
	ctx := context.Background()
	for _, stmt := range []string{
		`UPDATE audit_log SET details = '{"x":1}' WHERE seq = 1`,
		`DELETE FROM audit_log WHERE seq = 1`,
		`TRUNCATE audit_log CASCADE`,
		`UPDATE audit_checkpoints SET seq = 99`,
		`DELETE FROM audit_checkpoints`,
		`UPDATE audit_head SET seq = 1, hash = '\x00'`,
		`DELETE FROM audit_head`,
	} {
		if _, err := f.pool.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s: %v", stmt, err)
		}
	}
	// An entry still waiting to be sealed cannot be edited or dropped either.
	err := db.Tx(ctx, f.pool, func(tx pgx.Tx) error {
		return f.log.Append(ctx, tx, audit.Record{Actor: "system:test", Action: "test.appended", TargetType: "t", TargetID: "p"})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{`UPDATE audit_pending SET actor = 'system:x'`, `DELETE FROM audit_pending`} {
		if _, err := f.pool.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%s: %v", stmt, err)
		}
	}
}

// tamper runs SQL with the append-only triggers disabled, as an attacker
// with table-owner rights would.
func tamper(t *testing.T, f *fixture, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	err := db.Tx(ctx, f.pool, func(tx pgx.Tx) error {
		for _, s := range append(append([]string{"ALTER TABLE audit_log DISABLE TRIGGER USER", "ALTER TABLE audit_checkpoints DISABLE TRIGGER USER", "ALTER TABLE audit_head DISABLE TRIGGER USER"}, stmts...),
			"ALTER TABLE audit_log ENABLE TRIGGER USER", "ALTER TABLE audit_checkpoints ENABLE TRIGGER USER", "ALTER TABLE audit_head ENABLE TRIGGER USER") {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestTamperingIsDetectedAtTheRightSeq(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		stmts  []string
		seq    int64
		reason string
	}{
		{"edit a details field", []string{`UPDATE audit_log SET details = '{"i": 4, "note": "changed"}' WHERE seq = 5`}, 5, "hash mismatch"},
		{"edit the actor", []string{`UPDATE audit_log SET actor = 'system:someone_else' WHERE seq = 12`}, 12, "hash mismatch"},
		{"delete a row", []string{`DELETE FROM audit_log WHERE seq = 7`}, 7, "gap"},
		{"reorder two rows", []string{
			`UPDATE audit_log SET seq = 1000003 WHERE seq = 3`, `UPDATE audit_log SET seq = 3 WHERE seq = 4`, `UPDATE audit_log SET seq = 4 WHERE seq = 1000003`,
		}, 3, "prev_hash"},
		{"rewrite a row and its hash", []string{`UPDATE audit_log SET target_id = 'x', hash = sha256(hash) WHERE seq = 9`}, 9, "hash mismatch"},
		{"delete the newest rows", []string{`DELETE FROM audit_log WHERE seq > 18`}, 19, "missing"},
		{"delete the newest rows and move the head back", []string{
			`DELETE FROM audit_log WHERE seq > 18`, `UPDATE audit_head SET seq = 18, hash = (SELECT hash FROM audit_log WHERE seq = 18)`,
		}, 19, "checkpoint pins"},
		{"forge a checkpoint", []string{`UPDATE audit_checkpoints SET signature = sha512(signature) WHERE seq = 10`}, 10, "signature invalid"},
		{"move a checkpoint", []string{`UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_log WHERE seq = 9) WHERE seq = 10`}, 10, "signature invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, audit.SealerConfig{CheckpointEvery: 5}, nil)
			f.append(t, 20)
			f.seal(t)
			if r := f.verify(t); !r.OK || r.Entries != 20 || r.Checkpoints != 4 {
				t.Fatalf("before tampering: %+v", r)
			}
			tamper(t, f, tc.stmts...)
			r := f.verify(t)
			if r.OK || r.BrokenSeq != tc.seq || !strings.Contains(r.Reason, tc.reason) {
				t.Fatalf("got %q (%+v), want seq %d with %q", r.String(), r, tc.seq, tc.reason)
			}
		})
	}
}

func TestVerifyFromATrustedCheckpoint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bucket, err := blob.OpenBucket(context.Background(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	f := setup(t, audit.SealerConfig{CheckpointEvery: 10}, bucket)
	f.append(t, 25)
	f.seal(t)
	// The copy outside the database is a complete, verifiable checkpoint.
	b, err := bucket.ReadAll(context.Background(), audit.ObjectKey(20))
	if err != nil {
		t.Fatalf("checkpoint 20 not exported: %v", err)
	}
	cp, err := audit.ParseCheckpointDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(f.signer.PublicKey(), cp.SigningInput(), cp.Signature) {
		t.Fatal("exported checkpoint does not verify")
	}
	r, err := audit.Verify(context.Background(), f.pool, f.keys, &cp)
	if err != nil || !r.OK || r.Entries != 5 || r.HeadSeq != 25 {
		t.Fatalf("%+v %v", r, err)
	}
	// Tampering before the trusted point is out of scope; after it, caught.
	tamper(t, f, `UPDATE audit_log SET target_id = 'x' WHERE seq = 22`)
	if r, _ := audit.Verify(context.Background(), f.pool, f.keys, &cp); r.OK || r.BrokenSeq != 22 {
		t.Fatalf("%+v", r)
	}
	// A forged trusted checkpoint is refused.
	forged := cp
	forged.Hash = make([]byte, 32)
	if r, _ := audit.Verify(context.Background(), f.pool, f.keys, &forged); r.OK || !strings.Contains(r.Reason, "signature invalid") {
		t.Fatalf("%+v", r)
	}
}

func TestCheckpointByTime(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	seed := make([]byte, 32)
	signer, _ := audit.NewSigner(seed, "k")
	clk := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	l := audit.New(clk, "r")
	s := audit.NewSealer(pool, signer, nil, audit.SealerConfig{CheckpointEvery: 1000, CheckpointInterval: time.Minute}, clk, slog.New(slog.DiscardHandler))
	add := func() {
		if err := db.Tx(context.Background(), pool, func(tx pgx.Tx) error {
			return l.Append(context.Background(), tx, audit.Record{Actor: "system:t", Action: "t.x", TargetType: "t", TargetID: "1"})
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SealAll(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	count := func() (n int) {
		_ = pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_checkpoints`).Scan(&n)
		return n
	}
	add() // the first entry is checkpointed at once: there was none before
	add()
	if count() != 1 {
		t.Fatalf("checkpoints = %d", count())
	}
	clk.Advance(2 * time.Minute)
	add()
	if count() != 2 {
		t.Fatalf("after the interval: %d", count())
	}
	// The reader lists them newest first, each verifying under the key
	// that signed it (what the console's audit page shows).
	cps, err := audit.Reader{Pool: pool}.Checkpoints(context.Background(), 10)
	if err != nil || len(cps) != 2 || cps[0].Seq <= cps[1].Seq || cps[0].KeyID != "k" || len(cps[0].Hash) != 32 {
		t.Fatalf("checkpoints %+v %v", cps, err)
	}
	for _, c := range cps {
		if !ed25519.Verify(signer.PublicKey(), c.SigningInput(), c.Signature) {
			t.Errorf("checkpoint %d does not verify", c.Seq)
		}
	}
}
