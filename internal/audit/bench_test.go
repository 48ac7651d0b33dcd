package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/db"
)

// BenchmarkAppend8Writers appends 8,000 entries per iteration from 8
// concurrent writers with the sealer running, and reports entries per second
// until all are sealed. Baseline, measured in the same run on the same
// database: as many plain one-row INSERTs from 8 writers (the commit rate
// PostgreSQL allows here). "standalone" entries are one autocommit statement
// (Log.Record); "in-tx" entries ride in an explicit transaction (BEGIN,
// INSERT, COMMIT: three round trips), as an audited change does.
func BenchmarkAppend8Writers(b *testing.B) {
	for _, mode := range []string{"standalone", "in-tx"} {
		b.Run(mode, func(b *testing.B) { benchAppend(b, mode) })
	}
}

func benchAppend(b *testing.B, mode string) {
	f := setup(b, audit.SealerConfig{}, nil)
	ctx := context.Background()
	if _, err := f.pool.Exec(ctx, `CREATE TABLE bench_plain (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, details jsonb)`); err != nil {
		b.Fatal(err)
	}
	const n = 8000
	run := func(one func() error) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += 8 {
					if err := one(); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	plain := run(func() error {
		_, err := f.pool.Exec(ctx, `INSERT INTO bench_plain (details) VALUES ('{"i":1}')`)
		return err
	})
	rec := audit.Record{Actor: "system:bench", Action: "bench.appended", TargetType: "bench", TargetID: "1", Details: map[string]any{"i": 1}}
	appendOne := func() error { return f.log.Record(ctx, f.pool, rec) }
	if mode == "in-tx" {
		appendOne = func() error {
			return db.Tx(ctx, f.pool, func(tx pgx.Tx) error { return f.log.Append(ctx, tx, rec) })
		}
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { f.sealer.Run(sctx); close(done) }()
	var target, seq int64
	iterations := 0
	for b.Loop() {
		run(appendOne)
		target += n
		for seq < target {
			_ = f.pool.QueryRow(ctx, `SELECT seq FROM audit_head`).Scan(&seq)
			time.Sleep(time.Millisecond)
		}
		iterations++
	}
	elapsed := b.Elapsed() / time.Duration(iterations)
	stop()
	<-done
	rate := float64(n) / elapsed.Seconds()
	base := float64(n) / plain.Seconds()
	b.ReportMetric(rate, "entries/s")
	b.ReportMetric(base, "plain-inserts/s")
	b.ReportMetric(rate/base, "ratio-to-plain")
}

// BenchmarkVerify verifies a 200,000-entry chain and reports entries per
// second; baseline, measured in the same run: reading the same rows without
// hashing or checking anything.
func BenchmarkVerify(b *testing.B) {
	const n = 200_000
	f := setup(b, audit.SealerConfig{Batch: 10_000, CheckpointEvery: 10_000}, nil)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = []any{now, "system:bench", "bench.appended", "bench", fmt.Sprint(i), fmt.Sprintf(`{"i": %d, "note": "a typical small details object"}`, i), "rev"}
	}
	if _, err := f.pool.CopyFrom(ctx, pgx.Identifier{"audit_pending"}, []string{"at", "actor", "action", "target_type", "target_id", "details", "policy_revision"}, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	f.seal(b)
	readStart := time.Now()
	var count int
	err := audit.Each(ctx, f.pool, audit.Filter{}, func(audit.Entry) error { count++; return nil })
	if err != nil || count != n {
		b.Fatalf("%d %v", count, err)
	}
	read := time.Since(readStart)
	b.ResetTimer()
	for b.Loop() {
		r, err := audit.Verify(ctx, f.pool, f.keys, nil)
		if err != nil || !r.OK || r.Entries != n {
			b.Fatalf("%+v %v", r, err)
		}
	}
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(n)/per.Seconds(), "entries/s")
	b.ReportMetric(float64(n)/read.Seconds(), "plain-read-entries/s")
	b.ReportMetric(read.Seconds()/per.Seconds(), "ratio-to-plain-read")
}
