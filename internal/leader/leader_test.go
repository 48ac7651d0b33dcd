package leader_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-co-op/gocron/v2"
	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/leader"
)

func TestOneLeaderAtATime(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	ctx := context.Background()
	const key = 7_403_113_001
	a, b := leader.NewElector(pool, key), leader.NewElector(pool, key)
	defer a.Close()
	defer b.Close()

	if err := a.IsLeader(ctx); err != nil {
		t.Fatalf("first elector: %v", err)
	}
	for i := 0; i < 3; i++ {
		if err := b.IsLeader(ctx); !errors.Is(err, leader.ErrNotLeader) {
			t.Fatalf("second elector while the first leads: %v", err)
		}
		if err := a.IsLeader(ctx); err != nil {
			t.Fatalf("the leader asked again: %v", err)
		}
	}
	// Another key is another election.
	other := leader.NewElector(pool, key+1)
	defer other.Close()
	if err := other.IsLeader(ctx); err != nil {
		t.Errorf("an elector for another key: %v", err)
	}

	a.Close()
	if err := b.IsLeader(ctx); err != nil {
		t.Fatalf("after the leader closed: %v", err)
	}
	if err := a.IsLeader(ctx); !errors.Is(err, leader.ErrNotLeader) {
		t.Fatalf("the old leader after handing over: %v", err)
	}
	a.Close() // closing a non-leader is harmless
	if err := b.IsLeader(ctx); err != nil {
		t.Fatalf("leader after a non-leader closed: %v", err)
	}
}

// A leader whose database session dies (its process crashed, its
// connection was cut) stops being leader, and another takes over.
func TestLeadershipEndsWithTheSession(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	ctx := context.Background()
	const key = 7_403_113_011
	a, b := leader.NewElector(pool, key), leader.NewElector(pool, key)
	defer a.Close()
	defer b.Close()
	if err := a.IsLeader(ctx); err != nil {
		t.Fatal(err)
	}
	var terminated bool
	// An advisory lock on a bigint key shows in pg_locks as (classid, objid)
	// = (high, low 32 bits).
	err := pool.QueryRow(ctx, `
		SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND classid = ($1::bigint >> 32)::oid AND objid = ($1::bigint & 4294967295)::oid AND granted`,
		int64(key)).Scan(&terminated)
	if err != nil || !terminated {
		t.Fatalf("terminate the leader's session: %v %v", terminated, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := b.IsLeader(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, leader.ErrNotLeader) || time.Now().After(deadline) {
			t.Fatalf("after the leader's session ended: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := a.IsLeader(ctx); !errors.Is(err, leader.ErrNotLeader) {
		t.Errorf("the old leader, its session gone: %v", err)
	}
}

// Two replicas schedule the same job with gocron: only the leader runs it,
// and when the leader goes, the other replica carries on.
func TestGocronRunsJobsOnTheLeaderOnly(t *testing.T) {
	t.Parallel()
	_, pool := dbtest.New(t)
	const key = 7_403_113_021
	var runs [2]atomic.Int64
	electors := [2]*leader.Elector{leader.NewElector(pool, key), leader.NewElector(pool, key)}
	scheds := [2]gocron.Scheduler{}
	for i := range scheds {
		s, err := gocron.NewScheduler(gocron.WithDistributedElector(electors[i]))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.NewJob(gocron.DurationJob(50*time.Millisecond), gocron.NewTask(func() { runs[i].Add(1) })); err != nil {
			t.Fatal(err)
		}
		scheds[i] = s
		defer electors[i].Close()
		defer func() { _ = s.Shutdown() }()
	}
	for _, s := range scheds {
		s.Start()
	}
	time.Sleep(time.Second)
	r0, r1 := runs[0].Load(), runs[1].Load()
	if (r0 == 0) == (r1 == 0) {
		t.Fatalf("runs over 1 s: replica 0 %d, replica 1 %d; want exactly one replica running the job", r0, r1)
	}
	if max(r0, r1) < 10 {
		t.Errorf("the leader ran the 50 ms job %d times in 1 s", max(r0, r1))
	}
	lead, follow := 0, 1
	if r1 > 0 {
		lead, follow = 1, 0
	}
	// The leader stops: the follower takes over; the old leader runs no more.
	if err := scheds[lead].Shutdown(); err != nil {
		t.Fatal(err)
	}
	electors[lead].Close()
	stopped := runs[lead].Load()
	before := runs[follow].Load()
	time.Sleep(time.Second)
	if got := runs[follow].Load() - before; got < 5 {
		t.Errorf("the follower ran the job %d times in the second after the leader left", got)
	}
	if runs[lead].Load() != stopped {
		t.Error("the old leader kept running the job")
	}
}

// lockFree asks from a session of its own whether anyone holds the lock.
func lockFree(t *testing.T, url string, key int64) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got {
		// Let go before hanging up: a closed session's backend releases its
		// locks only as it exits, a moment later, and an election right
		// after this probe would find the probe holding the lock.
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

// A leader asked with a context that is already done (a scheduler shutting
// down) cannot confirm its lock and stops leading; the lock must go with
// it, not stay behind on a connection returned to the pool, where no
// replica could ever take it again.
func TestFailedCheckDoesNotStrandTheLock(t *testing.T) {
	t.Parallel()
	url, pool := dbtest.New(t)
	ctx := context.Background()
	const key = 7_403_113_031
	a := leader.NewElector(pool, key)
	if err := a.IsLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if lockFree(t, url, key) {
		t.Fatal("the leader's lock is not held")
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := a.IsLeader(done); err == nil {
		t.Fatal("a leader that cannot reach the database must not report leading")
	}
	a.Close()
	// A closed session's backend lets go of its locks as it exits, a moment
	// after the client hung up.
	for deadline := time.Now().Add(3 * time.Second); !lockFree(t, url, key); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the lock outlived the elector that gave it up (stranded on a pooled connection)")
		}
	}
	// And a new election works with the same pool.
	b := leader.NewElector(pool, key)
	defer b.Close()
	if err := b.IsLeader(ctx); err != nil {
		t.Fatalf("a new elector: %v", err)
	}
}
