package retention_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/retention"
	"github.com/steward-privacy/steward/policies"
)

// The reference policies' promises become rules: AI jobs and generated
// content after 30 days, logs and analytics after 180, credit logs after 2
// years, payment records after 5.
func TestScheduleOfTheReferencePolicies(t *testing.T) {
	e, err := policy.Load(context.Background(), policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	s, err := retention.FromEngine(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		system, dataset string
		days            int
		action, ts      string
	}{
		{"app_db", "generation_jobs", 30, "delete", "created_at"},
		{"app_db", "job_assets", 30, "delete", "created_at"},
		{"object_store", "generated", 30, "delete", "last_modified"},
		{"object_store", "uploads", 30, "delete", "last_modified"},
		{"app_db", "visitors", 180, "anonymize", "last_seen_at"},
		{"bot_db", "tg_request_logs", 180, "anonymize", "created_at"},
		{"app_db", "credit_transactions", 731, "delete", "created_at"},
		{"bot_db", "tg_credit_transactions", 731, "delete", "created_at"},
		{"app_db", "payments", 1827, "delete", "created_at"},
		{"bot_db", "tg_payments", 1827, "delete", "created_at"},
	} {
		r, ok := s.Rule(want.system, want.dataset)
		if !ok {
			t.Errorf("%s.%s: no rule", want.system, want.dataset)
			continue
		}
		if r.Days != want.days || r.Action != want.action || r.Timestamp != want.ts || r.MaxAge != time.Duration(want.days)*24*time.Hour || r.Basis == "" {
			t.Errorf("%s.%s: %+v, want %d days %s by %s", want.system, want.dataset, r, want.days, want.action, want.ts)
		}
	}
	// Account data is kept while the account exists: no age sweep.
	for _, ds := range []string{"app_db.users", "bot_db.tg_users"} {
		if !slices.Contains(s.EventDriven, ds) {
			t.Errorf("%s is not event-driven: %v", ds, s.EventDriven)
		}
		sys, d, _ := strings.Cut(ds, ".")
		if _, ok := s.Rule(sys, d); ok {
			t.Errorf("%s has an age rule", ds)
		}
	}
	r, _ := s.Rule("app_db", "generation_jobs")
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	if got := r.Cutoff(now); !got.Equal(now.AddDate(0, 0, -30)) {
		t.Errorf("cutoff %s", got)
	}
}

// A rule that cannot be enforced is refused when the bundle is read, every
// problem at once, each naming its entry.
func TestUnenforceableRulesAreRefused(t *testing.T) {
	days := func(n int) *int { return &n }
	rules := map[string]policy.RetentionRule{
		"ai":      {Days: days(30), Action: "delete", Basis: "contract"},
		"forever": {Action: "delete", Basis: "contract"},
		"zero":    {Days: days(0), Action: "delete"},
		"shred":   {Days: days(10), Action: "shred"},
	}
	dm := &datamap.Map{Systems: map[string]datamap.System{"app": {Connector: "postgres", Datasets: map[string]datamap.Dataset{
		"ok":       {Retention: "ai", Timestamp: "created_at", Fields: map[string]datamap.Field{"created_at": {}}},
		"event":    {Retention: "forever", Fields: map[string]datamap.Field{"x": {}}},
		"no_ts":    {Retention: "ai", Fields: map[string]datamap.Field{"x": {}}},
		"bad_ts":   {Retention: "ai", Timestamp: "made_at", Fields: map[string]datamap.Field{"x": {}}},
		"unknown":  {Retention: "nope", Timestamp: "x", Fields: map[string]datamap.Field{"x": {}}},
		"zero_day": {Retention: "zero", Timestamp: "x", Fields: map[string]datamap.Field{"x": {}}},
		"shredded": {Retention: "shred", Timestamp: "x", Fields: map[string]datamap.Field{"x": {}}},
	}}}}
	_, err := retention.Derive(dm, rules)
	if err == nil {
		t.Fatal("unenforceable rules accepted")
	}
	for _, want := range []string{
		"systems.app.datasets.no_ts: rule \"ai\" keeps records 30 days, but the dataset names no timestamp field",
		"systems.app.datasets.bad_ts.timestamp: \"made_at\" is not a field",
		"systems.app.datasets.unknown.retention: rule \"nope\" is not in the retention schedule",
		"systems.app.datasets.zero_day: rule \"zero\" has a period of 0 days",
		"systems.app.datasets.shredded: rule \"shred\" has action \"shred\"",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "datasets.ok") || strings.Contains(err.Error(), "datasets.event") {
		t.Errorf("valid datasets reported: %v", err)
	}
	delete(dm.Systems["app"].Datasets, "no_ts")
	for _, k := range []string{"bad_ts", "unknown", "zero_day", "shredded"} {
		delete(dm.Systems["app"].Datasets, k)
	}
	s, err := retention.Derive(dm, rules)
	if err != nil || len(s.Rules) != 1 || s.Rules[0].Dataset != "ok" || !slices.Equal(s.EventDriven, []string{"app.event"}) {
		t.Fatalf("schedule %+v, %v", s, err)
	}
}
