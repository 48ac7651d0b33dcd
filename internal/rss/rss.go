// Package rss measures the process's resident memory for benchmarks that
// promise a bound on it ("a 1 GiB export under 100 MiB"): Go's own
// statistics miss what the runtime has not returned and what C or the
// kernel holds, so the figure is read from /proc/self/status, as an
// operator's monitoring would see it. Linux only; elsewhere it reads 0.
package rss

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Current is the resident set (VmRSS) in bytes.
func Current() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Settle returns freed memory to the OS and resets the kernel's peak where
// allowed, so a measurement starts from the process's resting size, which
// it returns in bytes.
func Settle() int64 {
	runtime.GC()
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	return Current()
}

// Sampler records the peak resident set, sampled every 2 ms: short peaks
// between samples can be missed, so bounds are stated with margin.
type Sampler struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

// Start begins sampling.
func Start() *Sampler {
	s := &Sampler{stop: make(chan struct{}), done: make(chan struct{})}
	s.peak.Store(Current())
	go func() {
		defer close(s.done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				if v := Current(); v > s.peak.Load() {
					s.peak.Store(v)
				}
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak in bytes.
func (s *Sampler) Stop() int64 {
	close(s.stop)
	<-s.done
	return s.peak.Load()
}

// MiB converts bytes for reporting.
func MiB(b int64) float64 { return float64(b) / (1 << 20) }
