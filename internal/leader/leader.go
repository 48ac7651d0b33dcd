// Package leader elects one replica to run scheduled work (staff reminders,
// retention sweeps) with a PostgreSQL session advisory lock: the replica
// whose connection holds the lock is the leader until that connection ends,
// which it does when the process dies, so leadership moves on by itself.
// The Elector plugs into gocron v2 as its distributed elector.
package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotLeader is returned by IsLeader on every replica but one.
var ErrNotLeader = errors.New("leader: another replica holds the lock")

// Elector holds (or tries to take) one advisory lock on a connection of
// its own.
type Elector struct {
	pool *pgxpool.Pool
	key  int64

	mu   sync.Mutex
	conn *pgxpool.Conn // non-nil while leader
}

// NewElector returns an elector for the lock key; replicas that schedule
// the same work use the same key.
func NewElector(pool *pgxpool.Pool, key int64) *Elector { return &Elector{pool: pool, key: key} }

// IsLeader reports nil when this replica holds the lock, taking it if it is
// free. gocron calls it before every run.
func (e *Elector) IsLeader(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		// Still ours only while the session lives.
		if _, err := e.conn.Exec(ctx, `SELECT 1`); err == nil {
			return nil
		}
		e.conn.Release()
		e.conn = nil
	}
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("leader: acquire connection: %w", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, e.key).Scan(&got); err != nil {
		conn.Release()
		return fmt.Errorf("leader: try lock: %w", err)
	}
	if !got {
		conn.Release()
		return ErrNotLeader
	}
	e.conn = conn
	return nil
}

// Close gives up leadership.
func (e *Elector) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn != nil {
		_, _ = e.conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, e.key)
		e.conn.Release()
		e.conn = nil
	}
}
