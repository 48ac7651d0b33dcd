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

// TestProductRecordedAndFiltered: a request records the product it was made
// for (given, else the product that claims the identity kind, else the
// default), and the staff queue filters by it.
func TestProductRecordedAndFiltered(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{noStart: true})
	ctx := context.Background()
	bot, err := r.svc.Create(ctx, botRequest("erasure", "7200001"))
	if err != nil {
		t.Fatal(err)
	}
	in := botRequest("access", "7200002")
	in.Product = "web"
	web, err := r.svc.Create(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if bot.Request.Product != "bot" || web.Request.Product != "web" {
		t.Fatalf("products %q, %q; want bot, web", bot.Request.Product, web.Request.Product)
	}
	if got, err := r.svc.Get(ctx, web.Request.ID); err != nil || got.Product != "web" {
		t.Fatalf("read back %q, %v", got.Product, err)
	}
	for product, want := range map[string]string{"bot": bot.Request.ID, "web": web.Request.ID} {
		got, _, err := r.svc.List(ctx, dsar.Filter{Product: product})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != want {
			t.Fatalf("product %s: got %d requests", product, len(got))
		}
	}
	if _, _, err := r.svc.List(ctx, dsar.Filter{Product: "nope"}); err == nil {
		t.Fatal("unknown product accepted by the filter")
	}
	in = botRequest("export", "7200003")
	in.Product = "nope"
	if _, err := r.svc.Create(ctx, in); err == nil || !strings.Contains(err.Error(), "product") {
		t.Fatalf("unknown product at intake: %v", err)
	}
}
