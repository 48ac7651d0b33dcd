// Package logbuf batches log output into few write syscalls: one syscall
// per access-log line cost more than the consent check itself under load.
package logbuf

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// Writer batches log lines into few write syscalls. One syscall per
// access-log line cost more than the consent check itself under load; the
// price is that a process killed without shutdown may lose the last
// flushInterval of log lines (a panic inside a request is recovered and
// logged normally, and shutdown flushes).
type Writer struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

// New writes to w through a 64 KiB buffer flushed every flushInterval.
func New(w io.Writer, flushInterval time.Duration) *Writer {
	b := &Writer{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(b.done)
		t := time.NewTicker(flushInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				b.flush()
			case <-b.stop:
				b.flush()
				return
			}
		}
	}()
	return b
}

// Write buffers p.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.w.Write(p)
}

func (b *Writer) flush() {
	b.mu.Lock()
	_ = b.w.Flush()
	b.mu.Unlock()
}

// Close flushes what is buffered and stops the flusher.
func (b *Writer) Close() error {
	close(b.stop)
	<-b.done
	return nil
}
