package leader_test

import (
	"context"
	"testing"

	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/leader"
	"github.com/steward-privacy/steward/internal/testpeer"
)

// TestElectorThroughTransactionPoolerIsNotExclusive shows why the elector
// runs on STEWARD_DATABASE_SESSION_URL behind a pooler: through PgBouncer
// in transaction mode (one server connection, so the outcome is certain)
// the session lock one replica takes stays on the shared server
// connection, and advisory locks are re-entrant, so a second replica is
// granted it too: two leaders. TestOneLeaderAtATime is the same pair on a
// direct pool, where the second is refused.
func TestElectorThroughTransactionPoolerIsNotExclusive(t *testing.T) {
	t.Parallel()
	url, _ := dbtest.New(t)
	pgb := testpeer.StartPgBouncerT(t, url, testpeer.PgBouncerConfig{PoolSize: 1})
	pooled, err := pgb.URL(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pool, err := db.OpenPooled(ctx, pooled)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	const key = 7_403_113_101
	a, b := leader.NewElector(pool, key), leader.NewElector(pool, key)
	defer a.Close()
	defer b.Close()
	if err := a.IsLeader(ctx); err != nil {
		t.Fatalf("first elector: %v", err)
	}
	if err := b.IsLeader(ctx); err != nil {
		t.Fatalf("second elector refused through the pooler (%v): the pooler no longer shares the session, and this test no longer shows the hazard", err)
	}
	t.Log("through a transaction pooler both electors lead: the elector needs a direct session")
}
