package api

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/clock"
)

// TestRateLimitBucketsBounded: an attacker rotating through 100,000
// addresses never makes the limiter hold more than MaxBuckets, and idle
// buckets are swept after a window.
func TestRateLimitBucketsBounded(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	bs := newBuckets[string](time.Minute, 500, clk)
	for i := 0; i < 100000; i++ {
		if d := bs.take(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), 10); !d.ok {
			t.Fatalf("fresh address %d refused", i)
		}
		if n := bs.len(); n > 500 {
			t.Fatalf("after %d addresses: %d buckets, want ≤ 500", i+1, n)
		}
		if i%1000 == 0 {
			clk.Advance(time.Millisecond)
		}
	}
	clk.Advance(time.Minute)
	bs.take("192.0.2.1", 10)
	if n := bs.len(); n != 1 {
		t.Fatalf("after an idle window: %d buckets, want 1", n)
	}
}

func TestRateLimitAddressBucket(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.9":          "203.0.113.9/32",
		"::ffff:203.0.113.9":   "203.0.113.9/32",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
	} {
		got := addressBucket(netip.MustParseAddr(in))
		if got.String() != want {
			t.Errorf("addressBucket(%q) = %s, want %s", in, got, want)
		}
		if n := testing.AllocsPerRun(50, func() { addressBucket(netip.MustParseAddr(in)) }); n != 0 {
			t.Errorf("addressBucket(%q) allocates %.0f times", in, n)
		}
	}
}

func TestRateLimitReplicaShare(t *testing.T) {
	r := newRateLimits(RateLimitConfig{Window: time.Minute, PerAddress: 600, PerRole: map[string]int{"sdk": 1000, "*": 7}, Replicas: 3}, nil)
	if got := r.share(600); got != 200 {
		t.Errorf("share(600) over 3 = %d", got)
	}
	if got := r.forRole("admin"); got != 3 {
		t.Errorf("admin's share of 7 over 3 = %d, want 3 (rounded up)", got)
	}
	if got := r.forRole("sdk"); got != 334 {
		t.Errorf("sdk's share = %d", got)
	}
}

func BenchmarkRateLimitTake(b *testing.B) {
	bs := newBuckets[string](time.Minute, 100000, clock.Real{})
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			bs.take(fmt.Sprintf("10.0.%d.%d", i>>8&255, i&255), 1000)
			i++
		}
	})
}
