package retention_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/retention"
)

// The CLI's tables carry the fields staff read, in columns, and a subject
// hold shows the kind of identity it names, never the identity.
func TestTextTables(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 6, 3, 0, 0, 0, time.FixedZone("x", 3600))
	matched := int64(7)
	run := retention.Run{ID: "r1", At: at, Status: retention.StatusFailed, Datasets: []retention.DatasetRun{
		{System: "app_db", Dataset: "jobs", Status: "succeeded", Matched: &matched, Deleted: 5, Anonymized: 2, Note: "swept"},
		{System: "media", Dataset: "uploads", Status: "failed", LastError: "timeout"},
	}}
	exp := at.Add(24 * time.Hour)
	cases := []struct {
		name  string
		write func(*bytes.Buffer) error
		want  []string
		not   []string
	}{
		{"plan", func(b *bytes.Buffer) error {
			return retention.WritePlan(b, []retention.PlanItem{{System: "app_db", Dataset: "jobs", Rule: "ai_jobs", Period: "30d", Action: "delete", Cutoff: at, Due: 12, Held: 2, Status: "due"}})
		}, []string{"DATASET", "app_db.jobs", "ai_jobs", "2026-12-06T02:00:00Z", "12", "due"}, nil},
		{"run", func(b *bytes.Buffer) error { return retention.WriteRun(b, run) },
			[]string{"run r1  2026-12-06T02:00:00Z", "status=failed", "app_db.jobs", "swept", "media.uploads", "timeout"}, nil},
		{"runs", func(b *bytes.Buffer) error { return retention.WriteRuns(b, []retention.Run{run}) },
			[]string{"RUN", "r1", "2026-12-06T02:00:00Z", "failed"}, nil},
		{"holds", func(b *bytes.Buffer) error {
			return retention.WriteHolds(b, []retention.Hold{
				{ID: "h1", Scope: retention.ScopeSubject, SubjectKind: "email", Reason: "case 7", CreatedAt: at, Active: true},
				{ID: "h2", Scope: retention.ScopeDataset, System: "app_db", Dataset: "payments", CreatedAt: at, ExpiresAt: &exp},
				{ID: "h3", Scope: retention.ScopeCategory, Category: "user.financial", CreatedAt: at},
			})
		}, []string{"email subject", "case 7", "app_db.payments", "2026-12-07T02:00:00Z", "user.financial"}, []string{"@"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := c.write(&b); err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("lacks %q:\n%s", w, b.String())
				}
			}
			for _, n := range c.not {
				if strings.Contains(b.String(), n) {
					t.Errorf("shows %q:\n%s", n, b.String())
				}
			}
		})
	}
}
