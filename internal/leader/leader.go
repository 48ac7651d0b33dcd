// Package leader elects one replica to run scheduled work (staff reminders,
// retention sweeps) with a PostgreSQL session advisory lock: the replica
// whose connection holds the lock is the leader until that connection ends,
// which it does when the process dies, so leadership moves on by itself.
// The Elector plugs into gocron v2 as its distributed elector.
//
// The lock needs a real session: behind a transaction pooler (PgBouncer in
// transaction mode, Neon's pooled endpoint) the elector's pool must be on
// the direct URL (STEWARD_DATABASE_SESSION_URL), because through the pooler
// the lock stays on a server connection other clients share, and a second
// replica is granted it too (TestElectorThroughTransactionPoolerIsNotExclusive).
package leader

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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
		// The check failed, perhaps only because ctx ended while the
		// session still holds the lock: end the session, never hand it
		// back to the pool, where the lock would stay with an idle
		// connection and no replica could take it.
		drop(e.conn)
		e.conn = nil
	}
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("leader: acquire connection: %w", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, e.key).Scan(&got); err != nil {
		drop(conn) // the lock may have been granted before the error
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
		var unlocked bool
		if err := e.conn.QueryRow(context.Background(), `SELECT pg_advisory_unlock($1)`, e.key).Scan(&unlocked); err != nil || !unlocked {
			drop(e.conn)
		} else {
			e.conn.Release()
		}
		e.conn = nil
	}
}

// drop closes a connection's session, which releases every advisory lock
// it holds, and gives the closed connection back (the pool discards it).
func drop(c *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Conn().Close(ctx)
	c.Release()
}
