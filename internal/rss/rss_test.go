package rss_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/rss"
)

// Touching 64 MiB raises the sampled peak by about that much.
func TestSamplerSeesAllocation(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Fatalf("rss reads /proc; the project's tests run on Linux, not %s", runtime.GOOS)
	}
	base := rss.Settle()
	if base <= 0 {
		t.Fatal("no resident set read from /proc/self/status")
	}
	s := rss.Start()
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	time.Sleep(20 * time.Millisecond) // let samples land while buf is live
	peak := s.Stop()
	runtime.KeepAlive(buf)
	if peak < base+48<<20 {
		t.Fatalf("peak %.1f MiB after touching 64 MiB on a base of %.1f MiB", rss.MiB(peak), rss.MiB(base))
	}
}
