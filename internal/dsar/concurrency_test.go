package dsar_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/dsar"
)

// TestThousandConcurrentRequests submits 1,000 access requests from 50
// goroutines at once and lets the workers run them: every one completes,
// with every task run once, and no job ever errs.
func TestThousandConcurrentRequests(t *testing.T) {
	t.Parallel()
	const requests, submitters = 1000, 50
	r := newRig(t, rigOpts{engine: loadSmallEngine(t), cfg: dsar.Config{Workers: 20}})
	ctx := context.Background()
	for i := 0; i < requests; i += 2 {
		r.seedBotUser(strconv.Itoa(7_000_000 + i)) // half of them have data
	}
	start := time.Now()
	ids := make([]string, requests)
	var wg sync.WaitGroup
	for g := 0; g < submitters; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < requests; i += submitters {
				c, err := r.svc.Create(ctx, botRequest("access", strconv.Itoa(7_000_000+i)))
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				if c.Existing {
					t.Errorf("request %d was merged with another", i)
				}
				ids[i] = c.Request.ID
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	submitted := time.Since(start)
	// A liveness bound, not a speed target: generous, since the whole suite
	// shares two cores (the figure is in the log and in make bench).
	deadline := time.Now().Add(240 * time.Second)
	for {
		done := r.count(`SELECT count(*) FROM privacy_requests WHERE status = 'completed'`)
		if done == requests {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d completed after %s", done, requests, time.Since(start))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d requests submitted in %s, all completed in %s", requests, submitted.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	if n := r.count(`SELECT count(DISTINCT id) FROM privacy_requests`); n != requests {
		t.Errorf("%d requests stored", n)
	}
	if n := r.count(`SELECT count(*) FROM privacy_request_tasks WHERE status = 'succeeded' AND run = 1 AND attempts = 1`); n != 5*requests {
		t.Errorf("%d tasks succeeded at their first attempt, want %d", n, 5*requests)
	}
	if n := r.count(`SELECT count(*) FROM privacy_requests WHERE plan_error IS NOT NULL OR failure_reason IS NOT NULL`); n != 0 {
		t.Errorf("%d requests recorded an error", n)
	}
	r.idle() // River records a job's completion in batches, after the work
	if n := r.count(`SELECT count(*) FROM river_job WHERE state <> 'completed' OR cardinality(errors) > 0`); n != 0 {
		t.Errorf("%d jobs did not complete cleanly", n)
		rows, err := r.pool.Query(ctx, `SELECT kind, state, attempt, coalesce(errors[1]->>'error', '') FROM river_job
			WHERE state <> 'completed' OR cardinality(errors) > 0 LIMIT 5`)
		if err == nil {
			for rows.Next() {
				var kind, state, msg string
				var attempt int
				_ = rows.Scan(&kind, &state, &attempt, &msg)
				t.Logf("job %s %s attempt %d: %s", kind, state, attempt, msg)
			}
			rows.Close()
		}
	}
	if n := r.count(`SELECT count(*) FROM privacy_request_events WHERE event = 'complete'`); n != requests {
		t.Errorf("%d completions in the timelines", n)
	}
	// Half the subjects had one record in each of the five datasets.
	if n := r.count(`SELECT count(*) FROM privacy_request_records`); n != 5*requests/2 {
		t.Errorf("%d records disclosed, want %d", n, 5*requests/2)
	}
	d, err := r.svc.Get(ctx, ids[0])
	if err != nil || d.Status != dsar.Completed {
		t.Errorf("first request: %s %v", d.Status, err)
	}
}
