package dsar_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/jobs"
	"github.com/steward-privacy/steward/internal/rss"
)

// drainCount is how many requests BenchmarkDrainQueuedRequests queues at
// once: STEWARD_BENCH_DRAIN_N, default 10,000 (the documented figure).
func drainCount(b *testing.B) int {
	n := 10_000
	if v := os.Getenv("STEWARD_BENCH_DRAIN_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			b.Fatalf("STEWARD_BENCH_DRAIN_N=%q: want a count of at least 10", v)
		}
	}
	return n
}

// BenchmarkDrainQueuedRequests queues many access requests at once (bot
// requests verified at intake, five automated connector tasks each, as in
// BenchmarkVerifiedToCompleted) and measures how fast the engine drains
// them with its production settings (ten workers, 100 ms fetch poll), and
// the process's resident memory while it does: the queue lives in
// PostgreSQL, so the peak must not grow with the backlog. Baseline, same
// run: the same five connector calls per request made directly, with as
// many goroutines as the engine has workers. Reports requests per second
// for both, their ratio, and RSS at start and at peak in MiB.
func BenchmarkDrainQueuedRequests(b *testing.B) {
	n := drainCount(b)
	r := newRig(b, rigOpts{engine: loadSmallEngine(b), cfg: dsar.Config{Workers: 10}, jobs: jobs.Config{FetchPoll: 100 * time.Millisecond}})
	ctx := context.Background()
	tgOf := func(i int) string { return strconv.Itoa(8_000_000 + i) }

	// Seed every subject's records first, eight at a time: the seeding is
	// not what is measured.
	parallel := func(workers, count int, f func(i int) error) error {
		var next atomic.Int64
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first error
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1)) - 1
					if i >= count {
						return
					}
					if err := f(i); err != nil {
						mu.Lock()
						first = cmpErr(first, err)
						mu.Unlock()
						return
					}
				}
			}()
		}
		wg.Wait()
		return first
	}
	seedStart := time.Now()
	if err := parallel(8, n, func(i int) error {
		tg := tgOf(i)
		id := []connectors.Identity{{Type: "tg", Value: tg}}
		for _, rec := range []struct {
			dataset, key string
			fields       map[string]any
		}{
			{"tg_users", tg, map[string]any{"tg_id": tg, "username": "user" + tg, "first_name": "Ann", "language": "en", "created_at": "2026-01-02T03:04:05Z"}},
			{"tg_generations", tg + "-g1", map[string]any{"id": tg + "-g1", "tg_user_id": tg, "prompt": "a banana on the moon", "created_at": "2026-01-03T00:00:00Z"}},
			{"tg_payments", tg + "-p1", map[string]any{"id": tg + "-p1", "tg_user_id": tg, "stars_amount": 250, "created_at": "2026-01-04T00:00:00Z"}},
			{"tg_credit_transactions", tg + "-c1", map[string]any{"id": tg + "-c1", "tg_user_id": tg, "delta": 100, "created_at": "2026-01-04T00:00:00Z"}},
			{"tg_request_logs", tg + "-l1", map[string]any{"request_id": tg + "-l1", "tg_user_id": tg, "latency_ms": 42, "created_at": "2026-01-05T00:00:00Z"}},
		} {
			if err := r.store.Put(ctx, "bot_db", rec.dataset, rec.key, id, rec.fields); err != nil {
				return fmt.Errorf("seed %s: %w", rec.dataset, err)
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d subjects in %v", n, time.Since(seedStart).Round(time.Millisecond))
	// The test server runs with autovacuum off; without the statistics its
	// analyze would gather, every connector lookup scans the whole dataset
	// (seen: 10,000 requests drained at 11/s instead of ~35/s). The drain
	// below analyzes the growing engine tables every 10 s for the same
	// reason.
	analyze := func() {
		if _, err := r.pool.Exec(ctx, `ANALYZE`); err != nil {
			b.Fatal(err)
		}
	}
	analyze()

	startRSS := rss.Settle()
	sampler := rss.Start()
	b.ResetTimer()
	start := time.Now()
	// Queued at once: eight submitters, as a burst of intake would.
	if err := parallel(8, n, func(i int) error {
		_, err := r.svc.Create(ctx, dsar.CreateInput{
			Type: "access", Subject: identity.MustParse("tg:" + tgOf(i)), Region: "DE", Channel: dsar.ChannelBot,
			IdentityAsserted: true, CanAssert: true, Actor: "key:bot",
		})
		return err
	}); err != nil {
		b.Fatal(err)
	}
	queued := time.Since(start)
	deadline := start.Add(time.Duration(n) * 200 * time.Millisecond)
	lastAnalyze := time.Now()
	for {
		if time.Since(lastAnalyze) > 10*time.Second {
			analyze()
			lastAnalyze = time.Now()
		}
		var done, failed int
		if err := r.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed') FROM privacy_requests`).Scan(&done, &failed); err != nil {
			b.Fatal(err)
		}
		if failed > 0 {
			b.Fatalf("%d requests failed", failed)
		}
		if done == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d requests completed after %v", done, n, time.Since(start))
		}
		time.Sleep(100 * time.Millisecond)
	}
	drain := time.Since(start)
	b.StopTimer()
	peak := sampler.Stop()

	// Baseline: the planned tasks of one request, called directly for every
	// subject, as many at once as the engine has workers.
	var id string
	if err := r.pool.QueryRow(ctx, `SELECT id FROM privacy_requests LIMIT 1`).Scan(&id); err != nil {
		b.Fatal(err)
	}
	d, err := r.svc.Get(ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	if len(d.Tasks) != 5 {
		b.Fatalf("request planned into %d tasks, want 5", len(d.Tasks))
	}
	bareStart := time.Now()
	if err := parallel(10, n, func(i int) error {
		for _, t := range d.Tasks {
			sink := &connectortest.MemorySink{}
			if _, err := r.store.Access(ctx, connectors.AccessParams{Target: connectors.Target{System: t.System, Dataset: t.Dataset,
				Identities: []connectors.Identity{{Type: "tg", Value: tgOf(i)}}, RequestID: "bench"}, Fields: t.Fields}, sink); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	bare := time.Since(bareStart)

	engineRate := float64(n) / drain.Seconds()
	bareRate := float64(n) / bare.Seconds()
	b.ReportMetric(float64(n), "requests")
	b.ReportMetric(engineRate, "drained-req/s")
	b.ReportMetric(bareRate, "bare-req/s")
	b.ReportMetric(engineRate/bareRate, "throughput-ratio-to-bare")
	b.ReportMetric(rss.MiB(startRSS), "start-rss-MiB")
	b.ReportMetric(rss.MiB(peak), "peak-rss-MiB")
	b.ReportMetric(0, "ns/op")
	fmt.Printf("BenchmarkDrainQueuedRequests: %d access requests (5 automated tasks each) queued in %.1f s, drained in %.1f s: %.1f req/s; "+
		"the same connector calls made directly (10 goroutines): %.1f req/s; ratio %.3f (bare is %.1fx faster); RSS %.0f MiB at start, %.0f MiB peak\n",
		n, queued.Seconds(), drain.Seconds(), engineRate, bareRate, engineRate/bareRate, bareRate/engineRate, rss.MiB(startRSS), rss.MiB(peak))
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
