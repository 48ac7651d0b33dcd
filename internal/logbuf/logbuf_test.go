package logbuf_test

import (
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/logbuf"
	"github.com/steward-privacy/steward/internal/testutil"
)

// Lines are held until the interval passes, and Close flushes the rest.
func TestFlushesOnIntervalAndClose(t *testing.T) {
	t.Parallel()
	var out testutil.SyncBuffer
	w := logbuf.New(&out, 50*time.Millisecond)
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
	w2 := logbuf.New(&out, time.Hour)
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
