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

// Clock tells the time. Connectors take one (for Retry-After dates and
// sweep cut-offs) so tests can set it; a value with a Now method, such as
// Steward's internal clock, satisfies it.
type Clock interface{ Now() time.Time }

// WallClock is the real clock, in UTC.
type WallClock struct{}

// Now returns the current time in UTC.
func (WallClock) Now() time.Time { return time.Now().UTC() }
