package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/consent"
)

// newEnvWith is newEnv with the server's Config edited too (CORS origins,
// the geo header).
func newEnvWith(t *testing.T, cfg func(*api.Config), edit ...func(*api.Deps)) *env {
	t.Helper()
	e := newEnv(t, edit...)
	c := api.DefaultConfig()
	c.BodyLimit = bodyLimit
	cfg(&c)
	e.app = api.New(c, e.deps)
	return e
}

const (
	webOrigin        = "https://nano-bananapro.com" // policies/data/products.json: web's origins
	configuredOrigin = "https://shop.example"       // STEWARD_CORS_ORIGINS in these tests
	evilOrigin       = "https://evil.example"
)

func corsEnv(t *testing.T) *env {
	t.Helper()
	e := newEnvWith(t, func(c *api.Config) { c.CORSOrigins = []string{configuredOrigin} })
	e.consent.RecordFn = func(_ context.Context, in consent.RecordInput) (consent.Event, error) {
		return consent.Event{ID: "01925f3e-7c1a-7b4e-9a3d-2f6b8c1d4e5a", SubjectKind: in.Subject.Kind(), Purpose: in.Purpose, State: in.State,
			Source: in.Source, NoticeVersion: in.NoticeVersion, Product: "web", RecordedAt: time.Now()}, nil
	}
	return e
}

func visitorRecord(product string) string {
	b := `{"subject":"visitor:abcdefgh12","purpose":"analytics","state":"granted","source":"web_banner","notice_version":"2.0"`
	if product != "" {
		b += `,"product":"` + product + `"`
	}
	return b + "}"
}

// TestCORSPreflight: a browser's preflight is granted to a product's
// origins and the configured ones only, with the methods and headers the
// SDK sends, cached, varying by Origin, never with credentials; any other
// origin gets a 403 problem and no grant. No service is asked.
func TestCORSPreflight(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path, origin string
		granted            bool
	}{
		{"a product's origin is granted on the record endpoint", "/v1/consents", webOrigin, true},
		{"a product's origin is granted on the banner", "/v1/consent/banner?product=web", webOrigin, true},
		{"a configured origin is granted", "/v1/consents", configuredOrigin, true},
		{"an origin differing only in case is granted", "/v1/consents", "https://Nano-BananaPro.com", true},
		{"the check endpoint is covered too", "/v1/consent/check", webOrigin, true},
		{"another origin is refused", "/v1/consents", evilOrigin, false},
		{"another scheme is refused", "/v1/consents", "http://nano-bananapro.com", false},
		{"another port is refused", "/v1/consents", "https://nano-bananapro.com:8443", false},
		{"a subdomain is refused", "/v1/consents", "https://www.nano-bananapro.com", false},
		{"a suffix trick is refused", "/v1/consents", "https://nano-bananapro.com.evil.example", false},
		{"a sandboxed frame (null) is refused", "/v1/consents", "null", false},
		{"garbage is refused", "/v1/consents", "nano-bananapro.com", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := corsEnv(t)
			res := e.do(req{method: "OPTIONS", path: tc.path, header: map[string]string{
				"Origin": tc.origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type",
			}})
			if !strings.Contains(res.header.Get("Vary"), "Origin") {
				t.Errorf("Vary = %q, want Origin in it", res.header.Get("Vary"))
			}
			if res.header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("credentials granted: %q", res.header.Get("Access-Control-Allow-Credentials"))
			}
			if !tc.granted {
				res.problem(t, 403, "forbidden")
				if got := res.header.Get("Access-Control-Allow-Origin"); got != "" {
					t.Errorf("refused origin got Access-Control-Allow-Origin %q", got)
				}
				e.wantCalls(t)
				return
			}
			if res.status != 204 || len(res.body) != 0 {
				t.Fatalf("status %d body %q, want 204 and no body", res.status, res.body)
			}
			for h, want := range map[string]string{
				"Access-Control-Allow-Origin":  tc.origin,
				"Access-Control-Allow-Methods": "GET, POST",
				"Access-Control-Allow-Headers": "Authorization, Content-Type",
				"Access-Control-Max-Age":       "7200",
			} {
				if got := res.header.Get(h); got != want {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
			e.wantCalls(t)
		})
	}
}

// TestCORSRequests: an sdk key sent from a browser counts only on an
// origin allowed for the product it writes to; requests without an Origin
// (servers, curl) and Steward's own pages pass; other keys are not refused
// for their origin but get no grant.
func TestCORSRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, role, origin, product string
		status                      int
		grant                       bool // Access-Control-Allow-Origin echoes the origin
	}{
		{"sdk key from the product's origin records", "sdk", webOrigin, "web", 201, true},
		{"sdk key from the product's origin, product implied, records", "sdk", webOrigin, "", 201, true},
		{"sdk key from a configured origin records for any product", "sdk", configuredOrigin, "bot", 201, true},
		{"sdk key without Origin (a server) records", "sdk", "", "", 201, false},
		{"sdk key from Steward's own pages records", "sdk", "http://example.com", "", 201, false},
		{"sdk key from another site is refused", "sdk", evilOrigin, "", 403, false},
		{"sdk key from a null origin is refused", "sdk", "null", "", 403, false},
		{"sdk key from web's origin writing bot's ledger is refused", "sdk", webOrigin, "bot", 403, true},
		{"frontend key from another site is not granted", "frontend", evilOrigin, "", 201, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := corsEnv(t)
			h := map[string]string{}
			if tc.origin != "" {
				h["Origin"] = tc.origin
			}
			res := e.do(req{method: "POST", path: "/v1/consents", role: tc.role, body: visitorRecord(tc.product), header: h})
			if tc.status == 403 {
				p := res.problem(t, 403, "forbidden")
				if !strings.Contains(p.Detail, "origin") {
					t.Errorf("detail %q does not say the origin is the reason", p.Detail)
				}
				e.wantCalls(t)
			} else {
				res.ok(t, tc.status, nil)
				e.wantCalls(t, "Consent.Record")
			}
			got := res.header.Get("Access-Control-Allow-Origin")
			if tc.grant && got != tc.origin || !tc.grant && got != "" {
				t.Errorf("Access-Control-Allow-Origin = %q, grant %v", got, tc.grant)
			}
			if tc.grant && res.header.Get("Access-Control-Expose-Headers") != "X-Request-ID, RateLimit, RateLimit-Policy, Retry-After" {
				t.Errorf("Access-Control-Expose-Headers = %q", res.header.Get("Access-Control-Expose-Headers"))
			}
		})
	}

	t.Run("sdk key reading consent from another site is refused", func(t *testing.T) {
		t.Parallel()
		e := corsEnv(t)
		res := e.do(req{method: "GET", path: "/v1/consents?subject=visitor:abcdefgh12", role: "sdk", header: map[string]string{"Origin": evilOrigin}})
		res.problem(t, 403, "forbidden")
		e.wantCalls(t)
	})
	t.Run("Vary names Origin even without one", func(t *testing.T) {
		t.Parallel()
		e := corsEnv(t)
		res := e.do(req{method: "POST", path: "/v1/consents", role: "sdk", body: visitorRecord("")})
		if !strings.Contains(res.header.Get("Vary"), "Origin") {
			t.Errorf("Vary = %q", res.header.Get("Vary"))
		}
	})
}
