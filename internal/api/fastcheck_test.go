package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/accesslog"
	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/testutil"
)

// TestFusedCheckMatchesChain: GET /v1/consent/check answers through its
// fused path (fastcheck.go) exactly as through the middleware chain every
// other route takes: the same status, body, headers (rate limits, CORS,
// caching, request id), service calls, metrics and log lines, for answers,
// refusals at every step, limits running out, an outage and a panic.
func TestFusedCheckMatchesChain(t *testing.T) {
	t.Parallel()
	type server struct {
		e       *env
		metrics *api.Metrics
		log     *testutil.SyncBuffer
	}
	build := func(unfused bool) server {
		sv := server{metrics: api.NewMetrics(), log: &testutil.SyncBuffer{}}
		clk := clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
		sv.e = newEnvWith(t, func(c *api.Config) {
			c.UnfusedConsentCheck = unfused
			c.CORSOrigins = []string{configuredOrigin}
			c.RateLimit = api.RateLimitConfig{Window: time.Minute, PerAddress: 20, PerRole: map[string]int{"frontend": 16, "auditor": 0, "*": 30}, Replicas: 1}
		}, func(d *api.Deps) {
			d.Metrics = sv.metrics
			d.Clock = clk
			// The production logger, at info: the access log is on.
			d.Log = slog.New(accesslog.NewJSON(sv.log, slog.LevelInfo))
		})
		sv.e.consent.CheckFn = func(_ context.Context, in consent.CheckInput) (policy.Decision, error) {
			switch in.Subject.String() {
			case "tg:503":
				return policy.Decision{}, apperr.New(apperr.Unavailable, "the database is unreachable; retry shortly")
			case "tg:500":
				panic("a handler bug")
			}
			d := policy.Decision{Allow: in.Purpose == "analytics", Reason: "granted", Rule: "stored", Regime: "gdpr",
				LegalBasis: "consent", Revision: "rev-" + in.Jurisdiction + fmt.Sprint(in.Age, in.GPC)}
			if !d.Allow {
				d.Reason = "no_consent"
			}
			if in.Subject.String() == "tg:77" {
				d.Reason, d.RestrictionID, d.RequestID = "restricted", "res-1", "req-1"
			}
			return d, nil
		}
		return sv
	}
	fused, chain := build(false), build(true)

	const q = "/v1/consent/check?subject="
	type step struct {
		name, method, path, role string
		header                   map[string]string
		times                    int // sent this many times (default 1)
	}
	steps := []step{
		{name: "an answer", path: q + "email:ann@example.com&purpose=analytics&jurisdiction=DE", role: "frontend"},
		{name: "a denial with every parameter", path: q + "tg:123456&purpose=marketing&jurisdiction=US-CA&age=15&product=bot", role: "frontend", header: map[string]string{"Sec-GPC": "1"}},
		{name: "a restriction", path: q + "tg:77&purpose=analytics", role: "frontend"},
		{name: "the caller's request id", path: q + "tg:1&purpose=analytics", role: "frontend", header: map[string]string{"X-Request-ID": "trace-1.2"}},
		{name: "a request id not plain enough to echo", path: q + "tg:1&purpose=analytics", role: "frontend", header: map[string]string{"X-Request-ID": "has space"}},
		{name: "a HEAD", method: "HEAD", path: q + "tg:1&purpose=analytics", role: "frontend"},
		{name: "a granted origin", path: q + "visitor:abcdefgh12&purpose=analytics", role: "sdk", header: map[string]string{"Origin": webOrigin}},
		{name: "a configured origin", path: q + "visitor:abcdefgh12&purpose=analytics", role: "sdk", header: map[string]string{"Origin": configuredOrigin}},
		{name: "an origin the sdk key may not use", path: q + "visitor:abcdefgh12&purpose=analytics", role: "sdk", header: map[string]string{"Origin": evilOrigin}},
		{name: "a server-side call with an Origin", path: q + "tg:1&purpose=analytics", role: "frontend", header: map[string]string{"Origin": evilOrigin}},
		{name: "the sdk key on a telegram user", path: q + "tg:1&purpose=analytics", role: "sdk"},
		{name: "a role without consent.check", path: q + "tg:1&purpose=analytics", role: "intruder"},
		{name: "a role without a rate limit", path: q + "tg:1&purpose=analytics", role: "auditor"},
		{name: "no key", path: q + "tg:1&purpose=analytics"},
		{name: "a bogus key", path: q + "tg:1&purpose=analytics", header: map[string]string{"Authorization": "Bearer stw_bogus"}},
		{name: "another scheme", path: q + "tg:1&purpose=analytics", header: map[string]string{"Authorization": "Basic Zm9vOmJhcg=="}},
		{name: "an unknown parameter", path: q + "tg:1&purpose=analytics&purpse=x", role: "frontend"},
		{name: "NUL in the subject", path: q + "tg:1%00&purpose=analytics", role: "frontend"},
		{name: "invalid UTF-8", path: q + "email:%ff@example.com&purpose=analytics", role: "frontend"},
		{name: "no purpose", path: q + "tg:1", role: "frontend"},
		{name: "no subject", path: "/v1/consent/check?purpose=analytics", role: "frontend"},
		{name: "a malformed subject", path: q + "tg:abc&purpose=analytics", role: "frontend"},
		{name: "a bad age", path: q + "tg:1&purpose=analytics&age=151", role: "frontend"},
		{name: "a trailing slash", path: "/v1/consent/check/?subject=tg:1&purpose=analytics", role: "frontend"},
		{name: "an outage", path: q + "tg:503&purpose=analytics", role: "frontend"},
		{name: "a panic", path: q + "tg:500&purpose=analytics", role: "frontend"},
		{name: "the frontend key's limit running out", path: q + "tg:2&purpose=analytics", role: "frontend", times: 4},
		{name: "the address's limit running out", path: q + "tg:2&purpose=analytics", header: map[string]string{"Authorization": "Bearer stw_guess"}, times: 22},
		{name: "a valid key from an exhausted address", path: q + "tg:3&purpose=analytics", role: "admin"},
	}
	keyLimited := false
	for _, st := range steps {
		method := st.method
		if method == "" {
			method = "GET"
		}
		for i := 0; i < max(st.times, 1); i++ {
			r := req{method: method, path: st.path, role: st.role, header: st.header}
			a, b := fused.e.do(r), chain.e.do(r)
			if diff := compareAnswers(a, b); diff != "" {
				t.Errorf("%s (#%d): fused and chain differ: %s", st.name, i+1, diff)
			}
			if a.status == 429 && strings.Contains(string(a.body), "with this API key") {
				keyLimited = true
			}
		}
	}
	if !keyLimited {
		t.Error("the frontend key's limit never ran out")
	}
	// The last steps did run out of both limits on both servers: the
	// address's only because a request whose key authenticates is refunded
	// to it (else the answers above would already have emptied it).
	for _, sv := range []server{fused, chain} {
		last := sv.e.do(req{method: "GET", path: q + "tg:4&purpose=analytics", role: "admin"})
		if last.status != 429 || last.header.Get("Retry-After") == "" || !strings.Contains(string(last.body), "from this address") {
			t.Fatalf("the address's limit did not run out: %d %s", last.status, last.body)
		}
		for _, want := range []string{`"msg":"panic serving request"`, `"msg":"request unavailable"`} {
			if !strings.Contains(sv.log.String(), want) {
				t.Errorf("the log lacks %s", want)
			}
		}
	}

	if a, b := fused.e.calls.list(), chain.e.calls.list(); !slices.Equal(a, b) || len(a) == 0 {
		t.Errorf("service calls differ:\nfused %q\nchain %q", a, b)
	}
	// The logs first: scraping the metrics is a request too.
	if a, b := logLines(t, fused.log.String()), logLines(t, chain.log.String()); !slices.Equal(a, b) || len(a) < len(steps) {
		t.Errorf("log lines differ:\nfused:\n%s\nchain:\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	if a, b := scrape(t, fused.e), scrape(t, chain.e); a != b || !strings.Contains(a, `route="/v1/consent/check",status="429"`) {
		t.Errorf("metrics differ:\nfused:\n%s\nchain:\n%s", a, b)
	}
}

// compareAnswers describes how two answers differ, "" if they do not,
// ignoring the Date header and the request ids each server made up.
func compareAnswers(a, b result) string {
	if a.status != b.status {
		return fmt.Sprintf("status %d vs %d (%s | %s)", a.status, b.status, a.body, b.body)
	}
	ab := strings.ReplaceAll(string(a.body), a.header.Get("X-Request-ID"), "RID")
	bb := strings.ReplaceAll(string(b.body), b.header.Get("X-Request-ID"), "RID")
	if ab != bb {
		return fmt.Sprintf("body %s vs %s", ab, bb)
	}
	if (a.header.Get("X-Request-ID") == "") != (b.header.Get("X-Request-ID") == "") {
		return "one has no X-Request-ID"
	}
	keys := func(h http.Header) []string {
		var ks []string
		for k, vs := range h {
			// Content-Length: a problem quotes the request id, and the two
			// servers' ids differ in length; the bodies are compared.
			if k == "Date" || k == "X-Request-Id" || k == "Content-Length" {
				continue
			}
			ks = append(ks, k+": "+strings.Join(vs, ", "))
		}
		slices.Sort(ks)
		return ks
	}
	if ka, kb := keys(a.header), keys(b.header); !slices.Equal(ka, kb) {
		return fmt.Sprintf("headers\n  %s\nvs\n  %s", strings.Join(ka, "\n  "), strings.Join(kb, "\n  "))
	}
	return ""
}

// chainRoutes are the route labels the chain gives a request it refuses
// before fiber has matched a route: "unmatched", when guard refuses the
// query or the address's limit runs out (both run for every path, known or
// not). The fused path labels them with the route itself, which is what
// they are; this one difference is expected, and mapped before comparing.
var chainRoutes = strings.NewReplacer(`route="unmatched"`, `route="/v1/consent/check"`, `"route":"unmatched"`, `"route":"/v1/consent/check"`)

// scrape is the server's request and decision metrics as /metrics exposes
// them, added up by labels after mapping the chain's route labels.
func scrape(t *testing.T, e *env) string {
	t.Helper()
	res := e.do(req{method: "GET", path: "/metrics"})
	if res.status != 200 {
		t.Fatalf("/metrics: %d", res.status)
	}
	sums := map[string]float64{}
	for _, l := range strings.Split(string(res.body), "\n") {
		if strings.HasPrefix(l, "steward_http_requests_total") || strings.HasPrefix(l, "steward_consent_decisions_total") ||
			strings.HasPrefix(l, "steward_http_request_duration_seconds_count") {
			series, value, _ := strings.Cut(chainRoutes.Replace(l), " ")
			var v float64
			if _, err := fmt.Sscan(value, &v); err != nil {
				t.Fatalf("metric line %q: %v", l, err)
			}
			sums[series] += v
		}
	}
	var out []string
	for series, v := range sums {
		out = append(out, fmt.Sprintf("%s %g", series, v))
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}

// logLines are the log's lines without what differs between two runs: the
// time, the duration, the request id and a panic's stack.
func logLines(t *testing.T, log string) []string {
	t.Helper()
	var out []string
	dec := json.NewDecoder(strings.NewReader(log))
	for {
		var m map[string]any
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("a log line is not JSON: %v", err)
		}
		for _, k := range []string{"time", "duration_us", "request_id", "stack"} {
			delete(m, k)
		}
		if st, _ := m["status"].(float64); st >= 400 {
			delete(m, "bytes_out") // a problem quotes the request id; the bodies are compared
		}
		b, _ := json.Marshal(m)
		out = append(out, chainRoutes.Replace(string(b)))
	}
	return out
}
