package logbuf

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/testutil"
)

// Lines are held until the interval passes, and Close flushes the rest.
func TestFlushesOnIntervalAndClose(t *testing.T) {
	t.Parallel()
	var out testutil.SyncBuffer
	w := New(&out, 50*time.Millisecond)
	if _, err := w.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if out.String() != "" {
		t.Fatal("a line reached the output before any flush")
	}
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != "one\n" {
		if time.Now().After(deadline) {
			t.Fatalf("not flushed after the interval: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	w2 := New(&out, time.Hour)
	if _, err := w2.Write([]byte("two\n")); err != nil {
		t.Fatal(err)
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), "two\n") {
		t.Fatalf("Close did not flush: %q", out.String())
	}
	_ = w.Close()
}

// gate is an output that holds every write until it is opened.
type gate struct {
	open chan struct{}
	mu   sync.Mutex
	got  []byte
}

func (g *gate) Write(p []byte) (int, error) {
	<-g.open
	g.mu.Lock()
	defer g.mu.Unlock()
	g.got = append(g.got, p...)
	return len(p), nil
}

// A stalled output holds writers back once maxPending is buffered instead
// of growing without bound or dropping lines; when it moves again every
// line arrives, in order.
func TestBoundedWhileOutputStalls(t *testing.T) {
	t.Parallel()
	g := &gate{open: make(chan struct{})}
	w := newWriter(g, time.Millisecond, 1000)
	line := []byte(strings.Repeat("x", 99) + "\n")
	var written atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			if _, err := w.Write(line); err != nil {
				t.Error(err)
				return
			}
			written.Add(1)
		}
	}()
	// The flusher takes the first lines and blocks on the gate; then at
	// most 1000 bytes (10 lines) may wait behind it.
	time.Sleep(200 * time.Millisecond)
	if n := written.Load(); n == 100 || n > 30 {
		t.Fatalf("%d of 100 lines accepted while the output was stalled: the buffer is not bounded", n)
	}
	close(g.open)
	<-done
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if want := strings.Repeat(string(line), 100); string(g.got) != want {
		t.Fatalf("output has %d bytes, want %d in order", len(g.got), len(want))
	}
	// After Close, a late line still reaches the output.
	if _, err := w.Write([]byte("late\n")); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(g.got), "late\n") {
		t.Fatal("a line written after Close was lost")
	}
}
