package postgres_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
)

// BenchmarkSweep sweeps the 1,000,000 due rows of a 2,000,000-row table
// through Sweep and, in the same run on the same table restored to the same
// state, with one hand-written DELETE … WHERE created_at < $1. It reports
// both throughputs and their ratio (target ≥ 0.5).
//
// It measures two layouts, because the walk's cost depends on where the due
// rows lie and a hand-written DELETE's does not in the same way:
//   - interleaved: every other row is due, so every block holds both kinds.
//     This is the worst case for the sweep's batches (each range is half
//     work, half rows to skip) and the case an index on created_at cannot
//     help the hand-written DELETE with (half the table is no index scan).
//   - older-half: rows were appended in time order, so the due rows fill
//     the first half of the table. It is the usual shape of an event table,
//     and the one where the walk reads the second half for nothing while
//     the hand-written DELETE (an index scan on created_at) stops early.
//
// ns/op includes rebuilding the table; rows/s, raw-rows/s and ratio are
// the figures to read (batches is the sweep's transactions).
//
// BENCH_SWEEP_BATCH sets the connector's SweepBatch (default its own,
// 5,000), to compare batch sizes.
//
// Each measurement starts alike: the table rebuilt in the same order,
// VACUUM ANALYZE and a CHECKPOINT (so neither side pays the other's
// full-page writes).
func BenchmarkSweep(b *testing.B) {
	const rows = 2_000_000
	ctx := context.Background()
	cutoff := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	layouts := []struct {
		name string
		age  string // created_at of row g, before $1 (the cutoff) for half the rows
	}{
		{"interleaved", "CASE WHEN g % 2 = 0 THEN $1::timestamptz - (g || ' seconds')::interval ELSE $1::timestamptz + (g || ' seconds')::interval END"},
		{"older-half", fmt.Sprintf("$1::timestamptz + ((g - %d) || ' seconds')::interval", rows/2+1)},
	}
	url, pool := newDB(b, "bench", "")
	dm := &datamap.Map{Systems: map[string]datamap.System{"bench": {Kind: datamap.KindPostgres, Connector: datamap.ConnectorPostgres,
		Datasets: map[string]datamap.Dataset{}}}}
	tables := map[string]string{}
	for i, l := range layouts {
		table := fmt.Sprintf("events_%d", i)
		tables[l.name] = table
		for _, sql := range []string{
			fmt.Sprintf("CREATE TABLE bench.%s (id bigint PRIMARY KEY, subject_id bigint NOT NULL, kind text, payload text, created_at timestamptz NOT NULL)", table),
			fmt.Sprintf("CREATE INDEX ON bench.%s (subject_id)", table),
			fmt.Sprintf("CREATE INDEX ON bench.%s (created_at)", table),
		} {
			if _, err := pool.Exec(ctx, sql); err != nil {
				b.Fatal(err)
			}
		}
		dm.Systems["bench"].Datasets[table] = datamap.Dataset{Table: table, Identities: []datamap.Identity{{Field: "subject_id", Type: "user"}},
			Fields: map[string]datamap.Field{"id": {}, "subject_id": {}, "kind": {}, "payload": {}, "created_at": {}}}
	}
	cfg := postgres.Config{System: "bench", DSN: url, Schema: "bench", DataMap: staticMap(dm)}
	if v := os.Getenv("BENCH_SWEEP_BATCH"); v != "" {
		if _, err := fmt.Sscan(v, &cfg.SweepBatch); err != nil {
			b.Fatalf("BENCH_SWEEP_BATCH: %v", err)
		}
	}
	c := newConnector(b, cfg)
	for _, l := range layouts {
		table := tables[l.name]
		b.Run("layout="+l.name, func(b *testing.B) {
			// restore rebuilds the table in the same physical order: putting
			// only the deleted rows back would let them land elsewhere (at
			// the end, or in another side's free space), and the two sides
			// would not walk the same table.
			restore := func() {
				for _, sql := range []string{
					"TRUNCATE bench." + table,
					fmt.Sprintf(`INSERT INTO bench.%s SELECT g, g %% 100000, 'event', md5(g::text), %s FROM generate_series(1, %d) g`, table, l.age, rows),
					"VACUUM ANALYZE bench." + table,
					"CHECKPOINT",
				} {
					var args []any
					if sql[0] == 'I' {
						args = []any{cutoff}
					}
					if _, err := pool.Exec(ctx, sql, args...); err != nil {
						b.Fatal(err)
					}
				}
			}
			var ours, raw time.Duration
			var deleted int64
			batches := 0
			for range b.N {
				restore()
				start := time.Now()
				tag, err := pool.Exec(ctx, fmt.Sprintf("DELETE FROM bench.%s WHERE created_at < $1", table), cutoff)
				if err != nil {
					b.Fatal(err)
				}
				raw += time.Since(start)
				if tag.RowsAffected() != rows/2 {
					b.Fatalf("the hand-written DELETE deleted %d rows, want %d", tag.RowsAffected(), rows/2)
				}
				restore()
				start = time.Now()
				res, err := c.Sweep(ctx, connectors.SweepParams{System: "bench", Dataset: table, Timestamp: "created_at", Cutoff: cutoff,
					Progress: func(context.Context, connectors.SweepBatch) error { batches++; return nil }})
				if err != nil {
					b.Fatal(err)
				}
				ours += time.Since(start)
				if res.Deleted != tag.RowsAffected() || res.Matched != res.Deleted {
					b.Fatalf("sweep matched %d and deleted %d, the raw DELETE %d", res.Matched, res.Deleted, tag.RowsAffected())
				}
				deleted += res.Deleted
			}
			b.ReportMetric(float64(deleted)/ours.Seconds(), "rows/s")
			b.ReportMetric(float64(deleted)/raw.Seconds(), "raw-rows/s")
			b.ReportMetric(raw.Seconds()/ours.Seconds(), "ratio")
			b.ReportMetric(float64(batches)/float64(b.N), "batches")
		})
	}
}
