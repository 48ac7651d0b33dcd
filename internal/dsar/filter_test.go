package dsar_test

import (
	"context"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/dsar"
)

// TestListByIdentityAndRegime: the staff queue finds a person's requests by
// any identity given at intake, through its keyed hash; the value itself
// is in no column of the request's tables.
func TestListByIdentityAndRegime(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{noStart: true})
	ctx := context.Background()
	a, err := r.svc.Create(ctx, botRequest("erasure", "7100001"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.svc.Create(ctx, botRequest("access", "7100002"))
	if err != nil {
		t.Fatal(err)
	}
	ids := func(rs []dsar.Request) string {
		var out []string
		for _, x := range rs {
			out = append(out, x.ID)
		}
		return strings.Join(out, ",")
	}
	t.Run("one identity finds its request only", func(t *testing.T) {
		got, _, err := r.svc.List(ctx, dsar.Filter{Identity: identity.MustParse("tg:7100001")})
		if err != nil {
			t.Fatal(err)
		}
		if ids(got) != a.Request.ID {
			t.Fatalf("got %s, want %s", ids(got), a.Request.ID)
		}
	})
	t.Run("an unknown identity finds nothing", func(t *testing.T) {
		got, _, err := r.svc.List(ctx, dsar.Filter{Identity: identity.MustParse("email:nobody@example.com")})
		if err != nil || len(got) != 0 {
			t.Fatalf("got %v, %v; want none", ids(got), err)
		}
	})
	t.Run("regime filters", func(t *testing.T) {
		got, _, err := r.svc.List(ctx, dsar.Filter{Regime: a.Request.Regime, Type: "access"})
		if err != nil {
			t.Fatal(err)
		}
		if ids(got) != b.Request.ID {
			t.Fatalf("got %s, want %s", ids(got), b.Request.ID)
		}
		if got, _, _ := r.svc.List(ctx, dsar.Filter{Regime: "no_such_regime"}); len(got) != 0 {
			t.Fatalf("unknown regime found %d", len(got))
		}
	})
	t.Run("the value is not stored in the clear", func(t *testing.T) {
		var n int
		if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM privacy_request_identities WHERE position('7100001' in encode(lookup_hash, 'escape')) > 0
			OR position('7100001' in encode(ciphertext, 'escape')) > 0`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("%d identity rows hold the value in the clear", n)
		}
	})
}
