package config

import (
	"strings"
	"testing"
	"time"
)

// The retention schedule is a five-field cron expression in UTC, or off;
// anything else stops the service at start with the variable named.
func TestRetentionSchedule(t *testing.T) {
	load := func(v string) (Config, error) {
		return Load(func(k string) string {
			if k == "STEWARD_RETENTION_SCHEDULE" {
				return v
			}
			return ""
		})
	}
	c, err := load("")
	if err != nil || c.RetentionSchedule != "0 3 * * *" || c.RetentionWorkers != 2 {
		t.Errorf("default: %q workers %d, %v", c.RetentionSchedule, c.RetentionWorkers, err)
	}
	for _, ok := range []string{"off", "15 2 * * *", "0 */6 * * 1-5", "@daily"} {
		if c, err := load(ok); err != nil || c.RetentionSchedule != ok {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"daily", "0 3 * *", "61 3 * * *", "0 3 * * * *", "@every 1h", "CRON_TZ=Europe/Berlin 0 3 * * *", "0 25 * * *"} {
		_, err := load(bad)
		if err == nil || !strings.Contains(err.Error(), "STEWARD_RETENTION_SCHEDULE") {
			t.Errorf("%q: want an error naming the variable, got %v", bad, err)
		}
	}
	if _, err := Load(func(k string) string {
		if k == "STEWARD_RETENTION_WORKERS" {
			return "0"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "STEWARD_RETENTION_WORKERS") {
		t.Errorf("zero workers: %v", err)
	}
}

// FuzzRetentionSchedule: any value loads or is refused with the variable
// named; never a panic, never an accepted value gocron would reject.
func FuzzRetentionSchedule(f *testing.F) {
	for _, s := range []string{"0 3 * * *", "off", "@daily", "daily", "61 3 * * *", "*/0 * * * *", "0 3 * * * *"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		c, err := Load(func(k string) string {
			if k == "STEWARD_RETENTION_SCHEDULE" {
				return v
			}
			return ""
		})
		if err != nil {
			if !strings.Contains(err.Error(), "STEWARD_RETENTION_SCHEDULE") {
				t.Fatalf("%q: error does not name the variable: %v", v, err)
			}
			return
		}
		want := strings.TrimSpace(v)
		if want == "" {
			want = "0 3 * * *"
		}
		if c.RetentionSchedule != want {
			t.Fatalf("%q loaded as %q", v, c.RetentionSchedule)
		}
	})
}

func TestExportLinkBase(t *testing.T) {
	t.Parallel()
	cfg, err := Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ExportURL != "" {
		t.Fatalf("STEWARD_EXPORT_URL unset reads %q", cfg.ExportURL)
	}
	for _, c := range []struct{ configured, addr, want string }{
		{"", "127.0.0.1:8080", "http://127.0.0.1:8080/v1/exports/"},
		{"", ":9090", "http://127.0.0.1:9090/v1/exports/"},
		{"", "0.0.0.0:8080", "http://127.0.0.1:8080/v1/exports/"},
		{"https://privacy.example.com/v1/exports", "127.0.0.1:8080", "https://privacy.example.com/v1/exports/"},
		{"https://privacy.example.com/dl/", "", "https://privacy.example.com/dl/"},
	} {
		if got := (Config{ExportURL: c.configured, Addr: c.addr}).ExportLinkBase(); got != c.want {
			t.Errorf("ExportLinkBase(%q, %q) = %q, want %q", c.configured, c.addr, got, c.want)
		}
	}
	if _, err := Load(func(k string) string {
		if k == "STEWARD_EXPORT_URL" {
			return "ftp://x"
		}
		return ""
	}); err == nil || !strings.Contains(err.Error(), "STEWARD_EXPORT_URL") {
		t.Errorf("a non-http export URL: %v", err)
	}
}

func TestPolicySourcesExclusive(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2]string{{"STEWARD_POLICY_DIR", "STEWARD_POLICY_OVERLAY"}, {"STEWARD_POLICY_BUNDLE", "STEWARD_POLICY_OVERLAY"}, {"STEWARD_POLICY_DIR", "STEWARD_POLICY_BUNDLE"}} {
		_, err := Load(func(k string) string {
			if k == pair[0] || k == pair[1] {
				return "/x"
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), "set one at most") {
			t.Errorf("%s with %s: %v", pair[0], pair[1], err)
		}
	}
	c, err := Load(func(k string) string {
		if k == "STEWARD_POLICY_OVERLAY" {
			return "/srv/mine"
		}
		return ""
	})
	if err != nil || c.PolicyOverlay != "/srv/mine" {
		t.Errorf("overlay alone: %+v %v", c.PolicyOverlay, err)
	}
}

// The rate limits have defaults, parse role:n lists, and a bad value names
// its variable.
func TestRateLimits(t *testing.T) {
	load := func(vars map[string]string) (Config, error) {
		return Load(func(k string) string { return vars[k] })
	}
	c, err := load(nil)
	if err != nil || c.RateLimitWindow != time.Minute || c.RateLimitAddress != 600 || c.RateLimitReplicas != 1 || c.RateLimitBuckets != 100000 ||
		c.RateLimitKeys["sdk"] != 60000 || c.RateLimitKeys["frontend"] != 120000 || c.RateLimitKeys["*"] != 1200 {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	c, err = load(map[string]string{"STEWARD_RATE_LIMIT_KEYS": "admin:10, *:0", "STEWARD_RATE_LIMIT_WINDOW": "0", "STEWARD_RATE_LIMIT_ADDRESS": "0", "STEWARD_RATE_LIMIT_REPLICAS": "3"})
	if err != nil || len(c.RateLimitKeys) != 2 || c.RateLimitKeys["admin"] != 10 || c.RateLimitKeys["*"] != 0 || c.RateLimitWindow != 0 || c.RateLimitAddress != 0 || c.RateLimitReplicas != 3 {
		t.Fatalf("set: %+v, %v", c, err)
	}
	for name, bad := range map[string]string{
		"STEWARD_RATE_LIMIT_WINDOW": "10ms", "STEWARD_RATE_LIMIT_ADDRESS": "-1", "STEWARD_RATE_LIMIT_KEYS": "admin=10",
		"STEWARD_RATE_LIMIT_REPLICAS": "0", "STEWARD_RATE_LIMIT_BUCKETS": "many",
	} {
		if _, err := load(map[string]string{name: bad}); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: want an error naming it, got %v", name, bad, err)
		}
	}
}

// The main pool's size defaults to 20, is set by STEWARD_DATABASE_MAX_CONNS,
// and must leave the job workers room: fewer connections than workers + 2
// is refused, naming the variable.
func TestDatabaseMaxConns(t *testing.T) {
	load := func(vars map[string]string) (Config, error) {
		return Load(func(k string) string { return vars[k] })
	}
	if c, err := load(nil); err != nil || c.DatabaseMaxConns != 20 {
		t.Fatalf("default: %d %v", c.DatabaseMaxConns, err)
	}
	if c, err := load(map[string]string{"STEWARD_DATABASE_MAX_CONNS": "8", "STEWARD_REQUEST_WORKERS": "4"}); err != nil || c.DatabaseMaxConns != 8 {
		t.Fatalf("set: %d %v", c.DatabaseMaxConns, err)
	}
	for _, vars := range []map[string]string{
		{"STEWARD_DATABASE_MAX_CONNS": "0"},
		{"STEWARD_DATABASE_MAX_CONNS": "many"},
		{"STEWARD_DATABASE_MAX_CONNS": "13"}, // 10 request + 2 retention workers + 2
		{"STEWARD_DATABASE_MAX_CONNS": "20", "STEWARD_REQUEST_WORKERS": "30"},
	} {
		if _, err := load(vars); err == nil || !strings.Contains(err.Error(), "STEWARD_DATABASE_MAX_CONNS") {
			t.Errorf("%v: want an error naming STEWARD_DATABASE_MAX_CONNS, got %v", vars, err)
		}
	}
	if _, err := load(map[string]string{"STEWARD_DATABASE_MAX_CONNS": "14"}); err != nil {
		t.Errorf("exactly the workers + 2: %v", err)
	}
}

// A session URL declares DATABASE_URL a pooler; a bad one stops Steward
// with the variable named and without echoing a password; Neon's pooled
// host without a session URL (or as one) is refused.
func TestDatabaseSessionURL(t *testing.T) {
	load := func(vars map[string]string) (Config, error) {
		return Load(func(k string) string { return vars[k] })
	}
	const pooled, direct = "postgres://app:pw@pooler:6432/steward", "postgres://app:pw@db:5432/steward"
	c, err := load(map[string]string{"DATABASE_URL": direct})
	if err != nil || c.Pooled() || c.SessionURL() != direct {
		t.Errorf("unset: pooled %v session %q, %v", c.Pooled(), c.SessionURL(), err)
	}
	c, err = load(map[string]string{"DATABASE_URL": pooled, "STEWARD_DATABASE_SESSION_URL": direct})
	if err != nil || !c.Pooled() || c.SessionURL() != direct || c.DatabaseURL != pooled {
		t.Errorf("set: pooled %v session %q, %v", c.Pooled(), c.SessionURL(), err)
	}
	for name, tc := range map[string]struct {
		vars map[string]string
		want string
	}{
		"malformed session URL":             {map[string]string{"DATABASE_URL": pooled, "STEWARD_DATABASE_SESSION_URL": "postgres://app:s3cret@db:notaport/x"}, "STEWARD_DATABASE_SESSION_URL: want a PostgreSQL URL"},
		"session URL is DATABASE_URL":       {map[string]string{"DATABASE_URL": pooled, "STEWARD_DATABASE_SESSION_URL": pooled}, "STEWARD_DATABASE_SESSION_URL: is DATABASE_URL"},
		"Neon pooler without a session URL": {map[string]string{"DATABASE_URL": "postgres://u:p@ep-cool-river-123456-pooler.eu-central-1.aws.neon.tech/neondb?sslmode=require"}, "DATABASE_URL names Neon's pooled endpoint"},
		"Neon pooler as the session URL":    {map[string]string{"DATABASE_URL": "postgres://u:p@ep-cool-river-123456-pooler.eu-central-1.aws.neon.tech/neondb", "STEWARD_DATABASE_SESSION_URL": "postgres://u:p@ep-cool-river-123456-pooler.eu-central-1.aws.neon.tech/neondb?sslmode=require"}, "STEWARD_DATABASE_SESSION_URL: names Neon's pooled endpoint"},
	} {
		_, err := load(tc.vars)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", name, tc.want, err)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: error shows the password: %v", name, err)
		}
	}
	// Neon's direct host with its pooled one: accepted.
	if _, err := load(map[string]string{
		"DATABASE_URL":                 "postgres://u:p@ep-cool-river-123456-pooler.eu-central-1.aws.neon.tech/neondb",
		"STEWARD_DATABASE_SESSION_URL": "postgres://u:p@ep-cool-river-123456.eu-central-1.aws.neon.tech/neondb",
	}); err != nil {
		t.Errorf("Neon pooled + direct: %v", err)
	}
}
