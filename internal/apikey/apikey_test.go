package apikey_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/db/dbtest"
)

var roles = map[string]bool{"frontend": true, "admin": true}

func setup(t *testing.T) (*apikey.Store, *clock.Fake, *pgxpool.Pool) {
	t.Helper()
	_, pool := dbtest.New(t)
	clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	s := apikey.NewStore(pool, clk, apikey.AuditTo(audit.New(clk, "rev-test")))
	s.Connected(true) // cache on, as when the listener is up
	return s, clk, pool
}

func get(t *testing.T, s *apikey.Store, id string) apikey.Key {
	t.Helper()
	ks, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if k.ID == id {
			return k
		}
	}
	t.Fatalf("key %s not listed", id)
	return apikey.Key{}
}

func TestExpiredKeyFailsLikeRevoked(t *testing.T) {
	s, clk, _ := setup(t)
	ctx := context.Background()
	exp := clk.Now().Add(time.Hour)
	k, secret, err := s.Create(ctx, apikey.CreateInput{Name: "short", Role: "frontend", ExpiresAt: &exp}, roles, "system:cli")
	if err != nil {
		t.Fatal(err)
	}
	if k.ExpiresAt == nil || !k.ExpiresAt.Equal(exp) || !get(t, s, k.ID).ExpiresAt.Equal(exp) {
		t.Fatalf("expiry not kept: %+v", k)
	}
	if _, err := s.Authenticate(ctx, secret); err != nil { // loads the cache
		t.Fatalf("before expiry: %v", err)
	}
	clk.Advance(time.Hour)
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, apikey.ErrInvalid) {
		t.Fatalf("expired key from the cache: %v", err)
	}
	s.Notify("") // and from the database
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, apikey.ErrInvalid) {
		t.Fatalf("expired key from the database: %v", err)
	}

	past := clk.Now().Add(-time.Second)
	_, _, err = s.Create(ctx, apikey.CreateInput{Name: "past", Role: "frontend", ExpiresAt: &past}, roles, "system:cli")
	if ae, ok := apperr.As(err); !ok || ae.Code != apperr.Invalid {
		t.Fatalf("expiry in the past: %v", err)
	}
}

func TestLastUseRecordedAndThrottled(t *testing.T) {
	s, clk, _ := setup(t)
	ctx := context.Background()
	k, secret, err := s.Create(ctx, apikey.CreateInput{Name: "busy", Role: "frontend"}, roles, "system:cli")
	if err != nil {
		t.Fatal(err)
	}
	if get(t, s, k.ID).LastUsedAt != nil {
		t.Fatal("new key has a last use")
	}
	first := clk.Now()
	for range 50 {
		if _, err := s.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing is written on the request path.
	if get(t, s, k.ID).LastUsedAt != nil {
		t.Fatal("last use written before Flush")
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if lu := get(t, s, k.ID).LastUsedAt; lu == nil || !lu.Equal(first) {
		t.Fatalf("last use = %v, want %v", lu, first)
	}

	// Within a minute: nothing queued, nothing written.
	clk.Advance(30 * time.Second)
	if _, err := s.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if lu := get(t, s, k.ID).LastUsedAt; !lu.Equal(first) {
		t.Fatalf("throttled use written: last use %v, want %v", lu, first)
	}

	// A minute after the recorded use: written again.
	clk.Advance(31 * time.Second)
	second := clk.Now()
	if _, err := s.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if lu := get(t, s, k.ID).LastUsedAt; lu == nil || !lu.Equal(second) {
		t.Fatalf("last use = %v, want %v", lu, second)
	}
}

func TestChangesAuditedWithTheActor(t *testing.T) {
	s, _, pool := setup(t)
	ctx := context.Background()
	const actor = "staff:0b9c4f3e-6d1a-4c55-9f0e-2a7b8c9d0e1f"
	k, secret, err := s.Create(ctx, apikey.CreateInput{Name: "ops", Role: "admin"}, roles, actor)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, k.ID, actor); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, apikey.ErrInvalid) {
		t.Fatalf("revoked key: %v", err)
	}
	if _, err := s.Revoke(ctx, "not-a-key", actor); err == nil {
		t.Fatal("bad id accepted")
	}
	// Entries wait in audit_pending until a sealer chains them.
	rows, err := pool.Query(ctx, `SELECT action, actor FROM audit_pending WHERE target_type = 'api_key' AND target_id = $1`, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var action, who string
		if err := rows.Scan(&action, &who); err != nil {
			t.Fatal(err)
		}
		got[action] = who
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got["key.created"] != actor || got["key.revoked"] != actor {
		t.Fatalf("audit actors: %v", got)
	}
}

// TestBogusKeysCostOneLookupPerSecret: 600 authentications with three
// bogus secrets ask the database three times within NegativeTTL, once more
// each after it; a revoked key is refused before and after it is
// remembered, and the cache never holds a valid key's refusal.
func TestBogusKeysCostOneLookupPerSecret(t *testing.T) {
	s, clk, _ := setup(t)
	ctx := context.Background()
	bogus := []string{"stw_bogus-one", "stw_bogus-two", "stw_bogus-three"}
	for i := 0; i < 600; i++ {
		if _, err := s.Authenticate(ctx, bogus[i%len(bogus)]); !errors.Is(err, apikey.ErrInvalid) {
			t.Fatalf("bogus key %d: %v", i, err)
		}
	}
	if n := s.Lookups(); n != int64(len(bogus)) {
		t.Fatalf("600 bogus authentications made %d lookups, want %d (one per distinct secret)", n, len(bogus))
	}
	clk.Advance(apikey.NegativeTTL)
	for i := 0; i < 60; i++ {
		_, _ = s.Authenticate(ctx, bogus[i%len(bogus)])
	}
	if n := s.Lookups(); n != int64(2*len(bogus)) {
		t.Fatalf("after the TTL: %d lookups, want %d", n, 2*len(bogus))
	}

	// Revoked, then remembered as unknown: refused both times.
	k, secret, err := s.Create(ctx, apikey.CreateInput{Name: "soon-revoked", Role: "frontend"}, roles, "system:cli")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secret); err != nil {
		t.Fatalf("fresh key: %v", err)
	}
	if _, err := s.Revoke(ctx, k.ID, "system:cli"); err != nil {
		t.Fatal(err)
	}
	before := s.Lookups()
	for i := 0; i < 10; i++ {
		if _, err := s.Authenticate(ctx, secret); !errors.Is(err, apikey.ErrInvalid) {
			t.Fatalf("revoked key, attempt %d: %v", i, err)
		}
	}
	if n := s.Lookups() - before; n != 1 {
		t.Fatalf("revoked key: %d lookups for 10 attempts, want 1", n)
	}
	clk.Advance(apikey.NegativeTTL)
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, apikey.ErrInvalid) {
		t.Fatalf("revoked key after the TTL: %v", err)
	}

	// Malformed secrets never reach the database at all.
	before = s.Lookups()
	for i := 0; i < 100; i++ {
		_, _ = s.Authenticate(ctx, "not-a-key")
	}
	if n := s.Lookups() - before; n != 0 {
		t.Fatalf("malformed secrets: %d lookups", n)
	}
}

// TestRecentSecretsNeedTheWholeSecret: a key used again is recognised
// without hashing its secret anew (no allocation at all), yet a secret
// that differs in one character, or is cut short, is refused; revoking one
// key refuses it at once and leaves the other working.
func TestRecentSecretsNeedTheWholeSecret(t *testing.T) {
	s, _, _ := setup(t)
	ctx := context.Background()
	a, secretA, err := s.Create(ctx, apikey.CreateInput{Name: "a", Role: "frontend"}, roles, "system:cli")
	if err != nil {
		t.Fatal(err)
	}
	_, secretB, err := s.Create(ctx, apikey.CreateInput{Name: "b", Role: "admin"}, roles, "system:cli")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		for secret, role := range map[string]string{secretA: "frontend", secretB: "admin"} {
			if k, err := s.Authenticate(ctx, secret); err != nil || k.Role != role {
				t.Fatalf("round %d: %+v %v", i, k, err)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := s.Authenticate(ctx, secretA); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("a recent key's authentication allocates %.0f times", n)
	}
	last := secretA[len(secretA)-1]
	flipped := secretA[:len(secretA)-1] + string(rune(last^1))
	for _, wrong := range []string{flipped, secretA[:len(secretA)-1], secretA + "x", "x" + secretA[1:]} {
		if _, err := s.Authenticate(ctx, wrong); !errors.Is(err, apikey.ErrInvalid) {
			t.Fatalf("secret %q accepted: %v", wrong, err)
		}
	}
	if _, err := s.Revoke(ctx, a.ID, "system:cli"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secretA); !errors.Is(err, apikey.ErrInvalid) {
		t.Fatalf("revoked key still accepted: %v", err)
	}
	if k, err := s.Authenticate(ctx, secretB); err != nil || k.Role != "admin" {
		t.Fatalf("the other key after a revocation: %+v %v", k, err)
	}
}
