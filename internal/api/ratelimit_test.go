package api_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clientip"
	"github.com/steward-privacy/steward/internal/clock"
)

// limitedEnv is newEnv with rate limits on, timed by a fake clock: 5
// requests a minute per address, 3 per admin key, 100 per other key.
func limitedEnv(t *testing.T, trusted ...string) (*env, *clock.Fake, *atomic.Int64) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	e := newEnv(t)
	var auths atomic.Int64
	inner := e.keys.AuthenticateFn
	e.keys.AuthenticateFn = func(ctx context.Context, secret string) (apikey.Key, error) {
		auths.Add(1)
		return inner(ctx, secret)
	}
	e.audit.VerifyFn = func(context.Context) (audit.Result, error) { return audit.Result{OK: true}, nil }
	res, err := clientip.New(trusted)
	if err != nil {
		t.Fatal(err)
	}
	e.deps.ClientIP = res
	e.deps.Clock = clk
	cfg := api.DefaultConfig()
	cfg.BodyLimit = bodyLimit
	cfg.RateLimit = api.RateLimitConfig{Window: time.Minute, PerAddress: 5, PerRole: map[string]int{"admin": 3, "*": 100}, MaxBuckets: 1000}
	e.app = api.New(cfg, e.deps)
	return e, clk, &auths
}

func TestRateLimitAddressBurstThen429WithHeaders(t *testing.T) {
	e, clk, _ := limitedEnv(t)
	for i := 0; i < 5; i++ {
		r := e.do(req{method: "GET", path: "/no-such-endpoint"})
		if r.status != 404 {
			t.Fatalf("request %d: status %d, want 404", i, r.status)
		}
		if got, want := r.header.Get("RateLimit-Policy"), `"address";q=5;w=60`; got != want {
			t.Errorf("RateLimit-Policy = %q, want %q", got, want)
		}
		if got, want := r.header.Get("RateLimit"), fmt.Sprintf(`"address";r=%d;t=%d`, 4-i, 12*(i+1)); got != want {
			t.Errorf("request %d: RateLimit = %q, want %q", i, got, want)
		}
	}
	r := e.do(req{method: "GET", path: "/no-such-endpoint"})
	r.problem(t, 429, "rate_limited")
	if got := r.header.Get("Retry-After"); got != "12" {
		t.Errorf("Retry-After = %q, want 12 (one request per 12 s)", got)
	}
	if got := r.header.Get("RateLimit"); !strings.HasPrefix(got, `"address";r=0;`) {
		t.Errorf("RateLimit on 429 = %q", got)
	}
	// Operational endpoints and the SDK's assets are not limited.
	for _, p := range []string{"/healthz", "/metrics", "/openapi.json"} {
		if r := e.do(req{method: "GET", path: p}); r.status == 429 || r.header.Get("RateLimit") != "" {
			t.Errorf("%s: status %d, RateLimit %q: want no limit", p, r.status, r.header.Get("RateLimit"))
		}
	}
	clk.Advance(11 * time.Second)
	e.do(req{method: "GET", path: "/no-such-endpoint"}).problem(t, 429, "rate_limited")
	clk.Advance(time.Second)
	if r := e.do(req{method: "GET", path: "/no-such-endpoint"}); r.status != 404 {
		t.Fatalf("after Retry-After: status %d", r.status)
	}
}

func TestRateLimitRefusedRequestChangesNothing(t *testing.T) {
	e, _, auths := limitedEnv(t)
	// Failed authentications count against the address: key guessing is
	// throttled, and the fifth guess on is refused before any lookup.
	for i := 0; i < 5; i++ {
		e.do(req{method: "GET", path: "/v1/admin/audit/verify", header: map[string]string{"Authorization": "Bearer stw_guess"}}).problem(t, 401, "unauthenticated")
	}
	for i := 0; i < 20; i++ {
		e.do(req{method: "GET", path: "/v1/admin/audit/verify", header: map[string]string{"Authorization": "Bearer stw_guess"}}).problem(t, 429, "rate_limited")
	}
	if n := auths.Load(); n != 5 {
		t.Fatalf("%d key lookups for 25 guesses, want 5", n)
	}
	e.do(req{method: "POST", path: "/v1/privacy-requests", role: "frontend", body: `{}`}).problem(t, 429, "rate_limited")
	e.wantCalls(t) // nothing reached a service
}

func TestRateLimitPerKeyIsolation(t *testing.T) {
	e, _, _ := limitedEnv(t)
	// Authenticated requests are charged to the key, not the address: 10
	// of them leave the address's 5 untouched.
	for i := 0; i < 3; i++ {
		r := e.do(req{method: "GET", path: "/v1/admin/audit/verify", role: "admin"})
		r.ok(t, 200, nil)
		if got, want := r.header.Get("RateLimit-Policy"), `"key";q=3;w=60`; got != want {
			t.Errorf("RateLimit-Policy = %q, want %q", got, want)
		}
	}
	r := e.do(req{method: "GET", path: "/v1/admin/audit/verify", role: "admin"})
	r.problem(t, 429, "rate_limited")
	if got := r.header.Get("Retry-After"); got != "20" {
		t.Errorf("Retry-After = %q, want 20", got)
	}
	for i := 0; i < 7; i++ {
		r := e.do(req{method: "GET", path: "/v1/admin/audit/verify", role: "auditor"})
		r.ok(t, 200, nil)
		if got := r.header.Get("RateLimit-Policy"); got != `"key";q=100;w=60` {
			t.Errorf("auditor RateLimit-Policy = %q", got)
		}
	}
	if r := e.do(req{method: "GET", path: "/no-such-endpoint"}); r.status != 404 || r.header.Get("RateLimit") != `"address";r=4;t=12` {
		t.Fatalf("address after 11 keyed requests: status %d, RateLimit %q", r.status, r.header.Get("RateLimit"))
	}
}

func TestRateLimitAddressThroughTrustedProxiesOnly(t *testing.T) {
	xff := func(a string) map[string]string { return map[string]string{"X-Forwarded-For": a} }
	t.Run("trusted", func(t *testing.T) {
		// app.Test's peer is 0.0.0.0: trusted here.
		e, _, _ := limitedEnv(t, "0.0.0.0/32")
		for i := 0; i < 5; i++ {
			if r := e.do(req{method: "GET", path: "/nope", header: xff("198.51.100.7, 203.0.113.1")}); r.status != 404 {
				t.Fatalf("request %d: %d", i, r.status)
			}
		}
		// The client claims another address on the left: ignored.
		e.do(req{method: "GET", path: "/nope", header: xff("192.0.2.99, 203.0.113.1")}).problem(t, 429, "rate_limited")
		// Another client behind the same proxy has its own bucket.
		if r := e.do(req{method: "GET", path: "/nope", header: xff("203.0.113.2")}); r.status != 404 {
			t.Fatalf("second client: %d", r.status)
		}
	})
	t.Run("untrusted peer", func(t *testing.T) {
		e, _, _ := limitedEnv(t)
		for i := 0; i < 5; i++ {
			e.do(req{method: "GET", path: "/nope", header: xff(fmt.Sprintf("203.0.113.%d", i))})
		}
		e.do(req{method: "GET", path: "/nope", header: xff("203.0.113.200")}).problem(t, 429, "rate_limited")
	})
}

// A keyed request carries one set of rate-limit headers, the key's (the
// address's, set first, are replaced, not repeated), and a role without a
// limit none at all (the address's are removed).
func TestRateLimitHeadersReplacedOrRemoved(t *testing.T) {
	e, _, _ := limitedEnv(t)
	cfg := api.DefaultConfig()
	cfg.BodyLimit = bodyLimit
	cfg.RateLimit = api.RateLimitConfig{Window: time.Minute, PerAddress: 5, PerRole: map[string]int{"admin": 3, "*": 0}, MaxBuckets: 1000}
	e.app = api.New(cfg, e.deps)
	r := e.do(req{method: "GET", path: "/v1/admin/audit/verify", role: "admin"})
	r.ok(t, 200, nil)
	if got := r.header.Values("RateLimit"); len(got) != 1 || got[0] != `"key";r=2;t=20` {
		t.Errorf("admin: RateLimit %q, want one key header", got)
	}
	if got := r.header.Values("RateLimit-Policy"); len(got) != 1 || got[0] != `"key";q=3;w=60` {
		t.Errorf("admin: RateLimit-Policy %q, want one key header", got)
	}
	r = e.do(req{method: "GET", path: "/v1/admin/audit/verify", role: "auditor"})
	r.ok(t, 200, nil)
	if got := r.header.Values("RateLimit"); len(got) != 0 || r.header.Get("RateLimit-Policy") != "" {
		t.Errorf("auditor without a limit: RateLimit %q, RateLimit-Policy %q", got, r.header.Get("RateLimit-Policy"))
	}
	if got := r.header.Values("X-Content-Type-Options"); len(got) != 1 || got[0] != "nosniff" {
		t.Errorf("X-Content-Type-Options %q", got)
	}
	if got := r.header.Values("Cache-Control"); len(got) != 1 || got[0] != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}
}
