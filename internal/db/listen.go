package db

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// Subscriber is told about notifications on one channel. Connected(false) is
// called whenever the listening connection is lost, and Connected(true) once it
// is listening again: notifications sent in between are lost, so a cache must
// stop serving (and forget what it holds) while disconnected.
type Subscriber interface {
	Notify(payload string)
	Connected(up bool)
}

// Listener holds one dedicated connection that LISTENs on every subscribed
// channel. It is separate from the pool because a listening connection cannot
// be shared.
type Listener struct {
	url  string
	log  *slog.Logger
	mu   sync.Mutex
	subs map[string][]Subscriber
	up   atomic.Bool
}

// NewListener returns a listener for the database at url, which must be a
// real session (a direct URL, never a transaction pooler's: there the
// LISTEN would stay on a server connection handed to other clients and
// notifications would be lost while the listener believes it is up).
func NewListener(url string, log *slog.Logger) *Listener {
	return &Listener{url: url, log: log, subs: map[string][]Subscriber{}}
}

// Subscribe registers s for channel; call before Run.
func (l *Listener) Subscribe(channel string, s Subscriber) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subs[channel] = append(l.subs[channel], s)
}

// Up reports whether the listener is currently listening.
func (l *Listener) Up() bool { return l.up.Load() }

// Run listens until ctx ends, reconnecting with backoff.
func (l *Listener) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.session(ctx)
		l.setUp(false)
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("notification listener disconnected; caches bypassed until it reconnects", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (l *Listener) session(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, l.url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	l.mu.Lock()
	channels := make([]string, 0, len(l.subs))
	for ch := range l.subs {
		channels = append(channels, ch)
	}
	l.mu.Unlock()
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	l.setUp(true)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		l.mu.Lock()
		subs := l.subs[n.Channel]
		l.mu.Unlock()
		for _, s := range subs {
			s.Notify(n.Payload)
		}
	}
}

func (l *Listener) setUp(up bool) {
	if l.up.Swap(up) == up {
		return
	}
	l.mu.Lock()
	var all []Subscriber
	for _, ss := range l.subs {
		all = append(all, ss...)
	}
	l.mu.Unlock()
	for _, s := range all {
		s.Connected(up)
	}
}
