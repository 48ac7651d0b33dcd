package main

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/consent"
)

// BenchmarkCrossReplicaVisibility measures how long after a consent write
// commits on replica A a check on replica B (whose cache held the old state)
// sees it: the LISTEN/NOTIFY path the 100 ms promise rests on. Baseline,
// measured in the same run: the same write seen by a check on A itself.
// Reports p50 and p99 in milliseconds.
func BenchmarkCrossReplicaVisibility(b *testing.B) {
	e := newEnv(b, nil)
	a, rb := e.start(), e.start()
	ctx := context.Background()
	next := 5_000_000
	measure := func(reader *replica, n int) []time.Duration {
		var out []time.Duration
		for i := 0; i < n; i++ {
			next++
			subj := identity.MustParse(fmt.Sprintf("tg:%d", next))
			check := consent.CheckInput{Subject: subj, Purpose: "broadcast", Jurisdiction: "DE", Product: "bot", Age: -1}
			if _, err := reader.app.consent.Check(ctx, check); err != nil { // warm the reader's cache
				b.Fatal(err)
			}
			if _, err := a.app.consent.Record(ctx, consent.RecordInput{Subject: subj, Purpose: "broadcast", State: consent.Granted, Source: "bot", NoticeVersion: "1.0"}); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			for {
				d, err := reader.app.consent.Check(ctx, check)
				if err != nil {
					b.Fatal(err)
				}
				if d.Allow {
					break
				}
				if time.Since(start) > 5*time.Second {
					b.Fatal("write never became visible")
				}
				time.Sleep(100 * time.Microsecond)
			}
			out = append(out, time.Since(start))
		}
		return out
	}
	pct := func(ds []time.Duration, p float64) float64 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000
	}
	var cross []time.Duration
	for b.Loop() {
		cross = append(cross, measure(rb, 1)...)
	}
	for len(cross) < 200 {
		cross = append(cross, measure(rb, 1)...)
	}
	local := measure(a, 200)
	b.ReportMetric(pct(cross, 0.5), "cross-p50-ms")
	b.ReportMetric(pct(cross, 0.99), "cross-p99-ms")
	b.ReportMetric(pct(local, 0.5), "same-replica-p50-ms")
}
