package connectors

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is the wait before retry attempt+1 of a call to a rate-limited
// API: doubling from base up to limit, up to a quarter less at random so
// that tasks limited together do not retry together (and each wait is
// still longer than the one before).
func Backoff(attempt int, base, limit time.Duration) time.Duration {
	d := min(base<<min(attempt, 10), limit)
	return d - rand.N(d/4+1)
}

// Sleep waits d, or until ctx ends (returning its error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
