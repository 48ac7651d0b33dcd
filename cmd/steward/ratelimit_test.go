package main

import (
	"strings"
	"testing"
)

// TestRateLimitWholeReplica: with low limits configured, a key is refused
// with 429, Retry-After and the RateLimit headers after its allowance, other
// keys are not; guessing keys exhausts the address, after which requests
// from it are refused before authentication and change nothing; health and
// readiness stay unlimited.
func TestRateLimitWholeReplica(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{
		"STEWARD_RATE_LIMIT_ADDRESS": "5",
		"STEWARD_RATE_LIMIT_KEYS":    "admin:3,*:1000",
		"STEWARD_RATE_LIMIT_WINDOW":  "1h",
	})
	r := e.start()

	for i := 0; i < 3; i++ {
		res := r.do("GET", "/v1/admin/audit/verify", e.keys["admin"], nil)
		if res.status != 200 {
			t.Fatalf("admin request %d: %d %s", i, res.status, res.body)
		}
		if got := res.header.Get("RateLimit-Policy"); got != `"key";q=3;w=3600` {
			t.Fatalf("RateLimit-Policy = %q", got)
		}
	}
	res := r.do("GET", "/v1/admin/audit/verify", e.keys["admin"], nil)
	if res.status != 429 || res.problem(t).Code != "rate_limited" {
		t.Fatalf("fourth admin request: %d %s", res.status, res.body)
	}
	if res.header.Get("Retry-After") == "" || !strings.HasPrefix(res.header.Get("RateLimit"), `"key";r=0;`) {
		t.Fatalf("429 headers: Retry-After %q, RateLimit %q", res.header.Get("Retry-After"), res.header.Get("RateLimit"))
	}
	// Another key has its own bucket.
	if res := r.do("GET", "/v1/admin/audit/verify", e.keys["auditor"], nil); res.status != 200 {
		t.Fatalf("auditor: %d %s", res.status, res.body)
	}

	// Key guessing: five refusals, then the address is out of allowance.
	bogus := "stw_" + strings.Repeat("B", 43)
	for i := 0; i < 5; i++ {
		if res := r.do("GET", "/v1/admin/audit/verify", bogus, nil); res.status != 401 {
			t.Fatalf("guess %d: %d", i, res.status)
		}
	}
	before := countRows(t, e.pool, "consent_events")
	for i := 0; i < 20; i++ {
		res := r.do("POST", "/v1/consents", e.keys["frontend"], grant("tg:1", "analytics", "granted"))
		if res.status != 429 || res.header.Get("Retry-After") == "" || !strings.HasPrefix(res.header.Get("RateLimit"), `"address";r=0;`) {
			t.Fatalf("after guessing, request %d: %d %v %s", i, res.status, res.header, res.body)
		}
	}
	if after := countRows(t, e.pool, "consent_events"); after != before {
		t.Fatalf("refused requests wrote %d consent events", after-before)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if res := r.do("GET", p, "", nil); res.status != 200 {
			t.Fatalf("%s: %d", p, res.status)
		}
	}
}
