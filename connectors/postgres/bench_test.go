package postgres_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
)

// BenchmarkBulkErase erases 10,000 subjects (100,000 rows) from a
// 1,000,000-row table through the bulk path and, in the same run on the same
// table restored to the same state, with one hand-written DELETE … WHERE
// subject_id = ANY($1). It reports both throughputs and their ratio (target
// ≥ 0.5). Each measurement starts from the same state (the erased rows put
// back, then VACUUM ANALYZE), so neither finds the other's pages cached or
// dead rows in its index.
func BenchmarkBulkErase(b *testing.B) {
	const rows, subjects, erased = 1_000_000, 100_000, 10_000
	ctx := context.Background()
	url, pool := newDB(b, "bench", fmt.Sprintf(`CREATE TABLE events (id bigint PRIMARY KEY, subject_id bigint NOT NULL, kind text, payload text, created_at timestamptz NOT NULL);
		INSERT INTO events SELECT g, g %% %[1]d, 'event', md5(g::text), now() - (g || ' seconds')::interval FROM generate_series(1, %[2]d) g;
		CREATE INDEX ON events (subject_id); ANALYZE events;`, subjects, rows))
	dm := &datamap.Map{Systems: map[string]datamap.System{"bench": {Kind: datamap.KindPostgres, Connector: datamap.ConnectorPostgres,
		Datasets: map[string]datamap.Dataset{"events": {Table: "events", Identities: []datamap.Identity{{Field: "subject_id", Type: "user"}},
			Fields: map[string]datamap.Field{"id": {}, "subject_id": {}, "kind": {}, "payload": {}, "created_at": {}}}}}}}
	var ids []int64
	var subs [][]connectors.Identity
	for i := range erased {
		n := int64(i*(subjects/erased) + 1)
		ids = append(ids, n)
		subs = append(subs, []connectors.Identity{{Type: "user", Value: strconv.FormatInt(n, 10)}})
	}
	// restore puts the erased subjects' rows back (row g belongs to subject
	// g % subjects) and vacuums, so every measurement starts alike.
	restore := func() {
		if _, err := pool.Exec(ctx, fmt.Sprintf(`INSERT INTO bench.events
			SELECT s + k * %[1]d, s, 'event', md5((s + k * %[1]d)::text), now()
			FROM unnest($1::bigint[]) s, generate_series(0, %[2]d) k ON CONFLICT DO NOTHING`, subjects, rows/subjects-1), ids); err != nil {
			b.Fatal(err)
		}
		if _, err := pool.Exec(ctx, "VACUUM ANALYZE bench.events"); err != nil {
			b.Fatal(err)
		}
	}
	fields := plan(connectors.ActionDelete, "id", "subject_id", "kind", "payload", "created_at")
	for _, batch := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("subject_batch=%d", batch), func(b *testing.B) {
			c := newConnector(b, postgres.Config{System: "bench", DSN: url, Schema: "bench", DataMap: staticMap(dm), SubjectBatch: batch})
			var ours, raw time.Duration
			var deleted int64
			for range b.N {
				restore()
				start := time.Now()
				tag, err := pool.Exec(ctx, "DELETE FROM bench.events WHERE subject_id = ANY($1)", ids)
				if err != nil {
					b.Fatal(err)
				}
				raw += time.Since(start)
				restore()
				start = time.Now()
				res, err := c.EraseMany(ctx, postgres.BulkEraseParams{System: "bench", Dataset: "events", Subjects: subs, Fields: fields})
				if err != nil {
					b.Fatal(err)
				}
				ours += time.Since(start)
				if int64(res.Deleted) != tag.RowsAffected() || !res.Verified {
					b.Fatalf("bulk erase deleted %d (verified %v), the raw DELETE %d", res.Deleted, res.Verified, tag.RowsAffected())
				}
				deleted += tag.RowsAffected()
			}
			b.ReportMetric(float64(deleted)/ours.Seconds(), "rows/s")
			b.ReportMetric(float64(deleted)/raw.Seconds(), "raw-rows/s")
			b.ReportMetric(raw.Seconds()/ours.Seconds(), "ratio")
		})
	}
}

// countingSink counts what Access streams, keeping nothing.
type countingSink struct{ n int }

func (s *countingSink) Record(context.Context, connectors.Record) error { s.n++; return nil }
func (s *countingSink) File(_ context.Context, _ connectors.File, r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// BenchmarkAccessSixTables discloses one person's rows in six related
// tables of the reference web database (10,000 people): users, accounts,
// sessions, generation_jobs, job_assets (reached through the jobs),
// payments. Baseline in the same run: six hand-written queries by the
// person's user id, already known. Reports p50 and p99 (target p50 < 20 ms).
func BenchmarkAccessSixTables(b *testing.B) {
	ref := newReference(b, 10_000)
	c := ref.connector(b, "app_db", "app", nil)
	ctx := context.Background()
	datasets := []string{"users", "accounts", "sessions", "generation_jobs", "job_assets", "payments"}
	plans := map[string][]connectors.FieldPlan{}
	for _, d := range datasets {
		var fields []string
		for f := range ref.dm.Systems["app_db"].Datasets[d].Fields {
			fields = append(fields, f)
		}
		slices.Sort(fields)
		plans[d] = plan(connectors.ActionInclude, fields...)
	}
	raw := []string{
		"SELECT * FROM app.users WHERE id = $1",
		"SELECT * FROM app.accounts WHERE user_id = $1",
		"SELECT * FROM app.sessions WHERE user_id = $1",
		"SELECT * FROM app.generation_jobs WHERE user_id = $1",
		"SELECT a.* FROM app.job_assets a JOIN app.generation_jobs j ON j.id = a.job_id WHERE j.user_id = $1",
		"SELECT * FROM app.payments WHERE user_id = $1",
	}
	var ours, base []time.Duration
	b.ResetTimer()
	for i := range b.N {
		p := ref.web[(i*7919)%len(ref.web)]
		ids := []connectors.Identity{id("email", p.Email), id("user", p.UserID)}
		start := time.Now()
		sink := &countingSink{}
		for _, d := range datasets {
			if _, err := c.Access(ctx, connectors.AccessParams{Target: connectors.Target{System: "app_db", Dataset: d, Identities: ids}, Fields: plans[d]}, sink); err != nil {
				b.Fatal(err)
			}
		}
		ours = append(ours, time.Since(start))
		start = time.Now()
		n := 0
		for _, q := range raw {
			rows, err := ref.pool.Query(ctx, q, p.UserID)
			if err != nil {
				b.Fatal(err)
			}
			for rows.Next() {
				if _, err := rows.Values(); err != nil {
					b.Fatal(err)
				}
				n++
			}
			rows.Close()
		}
		base = append(base, time.Since(start))
		if n != sink.n {
			b.Fatalf("connector disclosed %d rows, hand-written queries %d", sink.n, n)
		}
	}
	b.StopTimer()
	pct := func(d []time.Duration, q float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(ours, 0.5), "p50-ms")
	b.ReportMetric(pct(ours, 0.99), "p99-ms")
	b.ReportMetric(pct(base, 0.5), "raw-p50-ms")
	b.ReportMetric(pct(ours, 0.5)/pct(base, 0.5), "x-raw")
}
