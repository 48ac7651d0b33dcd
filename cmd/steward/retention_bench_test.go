package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/refapp"
	"github.com/steward-privacy/steward/internal/retention"
)

// BenchmarkConsentCheckDuringSweep: consent-check latency over HTTP while
// a retention sweep deletes 1,000,000 expired rows from the application
// database on the same PostgreSQL server (and the same two cores), against
// the same load with no sweep, measured in the same run. cache=on is the
// production configuration (checks answered from the in-process cache
// after their first); cache=off (STEWARD_CACHE_SUBJECTS=1) makes every
// check read the database the sweep is writing to: the worst case.
// Target: p99 during the sweep within 2x of p99 without. Reports both
// p99s, the ratio and how long the sweep took.
func BenchmarkConsentCheckDuringSweep(b *testing.B) {
	// BENCH_SWEEP_BATCH sets the connector's sweep_batch (default: the
	// connector's own, 5,000), to see what larger batches cost the checks.
	sweepBatch := 0
	if v := os.Getenv("BENCH_SWEEP_BATCH"); v != "" {
		if _, err := fmt.Sscan(v, &sweepBatch); err != nil {
			b.Fatalf("BENCH_SWEEP_BATCH: %v", err)
		}
	}
	for _, cache := range []string{"on", "off"} {
		b.Run("cache="+cache, func(b *testing.B) {
			size := "100000"
			if cache == "off" {
				size = "1"
			}
			benchConsentDuringSweep(b, size, sweepBatch)
		})
	}
}

func benchConsentDuringSweep(b *testing.B, cacheSubjects string, sweepBatch int) {
	ctx := context.Background()
	vars := map[string]string{"STEWARD_CACHE_SUBJECTS": cacheSubjects, "STEWARD_LOG_LEVEL": "warn"}
	if v := os.Getenv("STEWARD_RETENTION_PACE"); v != "" {
		vars["STEWARD_RETENTION_PACE"] = v // to try another pace
	}
	e := newEnv(b, vars)
	if err := refapp.CreateSchema(ctx, e.pool, "app", refapp.Web); err != nil {
		b.Fatal(err)
	}
	const rows = 1_000_000
	if _, err := e.pool.Exec(ctx, `INSERT INTO app.generation_jobs (prompt, model, status, created_at)
		SELECT 'prompt ' || i, 'model-x', 'succeeded', now() - interval '400 days' + i * interval '1 second'
		FROM generate_series(1, $1) AS i`, rows); err != nil {
		b.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, `VACUUM ANALYZE app.generation_jobs`); err != nil {
		b.Fatal(err)
	}
	file := filepath.Join(b.TempDir(), "connectors.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("app_db:\n  postgres: {dsn: %q, schema: app, sweep_batch: %d}\n", e.url, sweepBatch)), 0o600); err != nil {
		b.Fatal(err)
	}
	e.cfg.ConnectorsFile = file
	r := e.start()
	key := e.keys["frontend"]
	const subjects = 500
	for i := range subjects {
		if _, err := r.app.consent.Record(ctx, consent.RecordInput{Subject: identity.MustParse(fmt.Sprintf("tg:%d", 7_000_000+i)),
			Purpose: "broadcast", State: consent.Granted, Source: "bot", NoticeVersion: "1.0"}); err != nil {
			b.Fatal(err)
		}
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	// load sends checks at a steady rate (an open model: a request goes
	// out on schedule whether or not earlier ones have returned, and its
	// latency counts from its scheduled moment, so a stall is not hidden)
	// until stop closes, and returns every latency. The rate is a fraction
	// of what this machine serves flat out, as a production service runs.
	const rate = 1500
	load := func(stop <-chan struct{}) []time.Duration {
		var mu sync.Mutex
		var all []time.Duration
		var wg sync.WaitGroup
		var n atomic.Int64
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				wg.Wait()
				return all
			case due := <-tick.C:
				wg.Add(1)
				go func() {
					defer wg.Done()
					i := n.Add(1) % subjects
					req, _ := http.NewRequest("GET", fmt.Sprintf("%s/v1/consent/check?subject=tg:%d&purpose=broadcast&jurisdiction=DE&product=bot", r.base, 7_000_000+i), nil)
					req.Header.Set("Authorization", "Bearer "+key)
					res, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_ = res.Body.Close()
					if res.StatusCode != 200 {
						b.Errorf("check: %d", res.StatusCode)
						return
					}
					took := time.Since(due)
					mu.Lock()
					all = append(all, took)
					mu.Unlock()
				}()
			}
		}
	}
	p99 := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[int(0.99*float64(len(ds)-1))].Microseconds()) / 1000
	}
	for b.Loop() {
		// Warm-up, then the baseline for as long as the sweep will take.
		stop := make(chan struct{})
		time.AfterFunc(2*time.Second, func() { close(stop) })
		load(stop)

		stop = make(chan struct{})
		var sweepTook time.Duration
		var run retention.Run
		var sweepErr error
		go func() {
			start := time.Now()
			run, sweepErr = r.app.retain.RunNow(ctx, retention.RunOptions{Trigger: retention.TriggerCLI, Actor: "system:bench", Dataset: "app_db.generation_jobs"})
			sweepTook = time.Since(start)
			close(stop)
		}()
		during := load(stop)
		if sweepErr != nil {
			b.Fatal(sweepErr)
		}
		if d := run.Datasets[0]; d.Deleted != rows {
			b.Fatalf("sweep deleted %d of %d rows (%s)", d.Deleted, rows, d.LastError)
		}
		stop = make(chan struct{})
		time.AfterFunc(sweepTook, func() { close(stop) })
		without := load(stop)

		pd, pw := p99(during), p99(without)
		b.ReportMetric(pw, "p99-no-sweep-ms")
		b.ReportMetric(pd, "p99-during-sweep-ms")
		b.ReportMetric(pd/pw, "ratio")
		b.ReportMetric(sweepTook.Seconds(), "sweep-s")
		b.ReportMetric(float64(len(during))/sweepTook.Seconds(), "checks/s-during")
		b.ReportMetric(float64(len(without))/sweepTook.Seconds(), "checks/s-no-sweep")
		// The next iteration needs rows to sweep again.
		if _, err := e.pool.Exec(ctx, `INSERT INTO app.generation_jobs (prompt, model, status, created_at)
			SELECT 'prompt ' || i, 'model-x', 'succeeded', now() - interval '400 days' + i * interval '1 second'
			FROM generate_series(1, $1) AS i`, rows); err != nil {
			b.Fatal(err)
		}
		if _, err := e.pool.Exec(ctx, `VACUUM ANALYZE app.generation_jobs`); err != nil {
			b.Fatal(err)
		}
	}
}
