// Package logbuf batches log output into few write syscalls: one syscall
// per access-log line cost more than the consent check itself under load.
package logbuf

import (
	"io"
	"sync"
	"time"
)

// Defaults of New: lines are handed to the flusher once this much is
// buffered, and a writer waits once the flusher is this far behind.
const (
	flushAt    = 64 << 10
	maxPending = 4 << 20
)

// Writer batches log lines into few write syscalls. One syscall per
// access-log line cost more than the consent check itself under load; the
// price is that a process killed without shutdown may lose the last
// flushInterval of log lines (a panic inside a request is recovered and
// logged normally, and shutdown flushes).
//
// Write only appends to a buffer under a short lock; a goroutine of its
// own swaps the buffer out and writes it, so no request ever waits on the
// output's syscall while holding the lock the others need (a convoy that
// cost more than the formatting on a busy two-core machine). The buffering
// is bounded: when the output falls maxPending behind, writers wait for
// it rather than drop a line, since an access log must keep every line.
type Writer struct {
	mu      sync.Mutex
	drained *sync.Cond // signalled (with mu) after each write to out
	buf     []byte     // lines not yet handed to the flusher
	spare   []byte     // the flusher's buffer, reused
	out     io.Writer
	err     error // the last error of out, returned to the next Write
	kick    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	max     int
	closed  bool // after Close, Write writes through
}

// New writes to w through a buffer flushed every flushInterval, or as soon
// as 64 KiB are waiting.
func New(w io.Writer, flushInterval time.Duration) *Writer {
	return newWriter(w, flushInterval, maxPending)
}

func newWriter(w io.Writer, flushInterval time.Duration, max int) *Writer {
	b := &Writer{out: w, buf: make([]byte, 0, flushAt), spare: make([]byte, 0, flushAt),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), max: max}
	b.drained = sync.NewCond(&b.mu)
	go func() {
		defer close(b.done)
		t := time.NewTicker(flushInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-b.kick:
			case <-b.stop:
				b.flush()
				return
			}
			b.flush()
		}
	}()
	return b
}

// Write buffers p. It blocks only while the output is far behind.
func (b *Writer) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		defer b.mu.Unlock()
		return b.out.Write(p)
	}
	for len(b.buf) > 0 && len(b.buf)+len(p) > b.max && !b.closed {
		b.wake()
		b.drained.Wait()
	}
	if b.closed { // closed while waiting: the flusher is gone
		defer b.mu.Unlock()
		return b.out.Write(p)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= flushAt {
		b.wake()
	}
	err := b.err
	b.err = nil
	b.mu.Unlock()
	return len(p), err
}

// wake asks the flusher to run now; it never blocks.
func (b *Writer) wake() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// flush writes what is buffered; only the flusher goroutine calls it.
func (b *Writer) flush() {
	b.mu.Lock()
	out := b.buf
	b.buf = b.spare[:0]
	b.mu.Unlock()
	var err error
	if len(out) > 0 {
		_, err = b.out.Write(out)
	}
	b.mu.Lock()
	if err != nil {
		b.err = err
	}
	if cap(out) <= 4*flushAt { // keep one modest buffer, not a burst's
		b.spare = out[:0]
	} else {
		b.spare = make([]byte, 0, flushAt)
	}
	b.drained.Broadcast()
	b.mu.Unlock()
}

// Close flushes what is buffered and stops the flusher.
func (b *Writer) Close() error {
	close(b.stop)
	<-b.done
	b.mu.Lock()
	b.closed = true
	b.drained.Broadcast()
	b.mu.Unlock()
	return nil
}
