package retention

import (
	"context"
	"slices"
	"testing"

	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/policies"
)

// A run swept dataset by dataset goes children first: job_assets (which
// reference generation_jobs) before generation_jobs, which references
// visitors, before visitors; unrelated datasets keep their order.
func TestOrderedChildrenFirst(t *testing.T) {
	e, err := policy.Load(context.Background(), policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	if kids := children(e, "app_db", "generation_jobs"); !slices.Contains(kids, "app_db.job_assets") {
		t.Fatalf("children of generation_jobs: %v", kids)
	}
	in := []DatasetRun{{System: "app_db", Dataset: "visitors"}, {System: "app_db", Dataset: "generation_jobs"},
		{System: "bot_db", Dataset: "tg_request_logs"}, {System: "app_db", Dataset: "job_assets"}}
	var got []string
	for _, d := range ordered(e, in) {
		got = append(got, d.Dataset)
	}
	pos := func(ds string) int { return slices.Index(got, ds) }
	if len(got) != 4 || pos("job_assets") > pos("generation_jobs") || pos("generation_jobs") > pos("visitors") {
		t.Errorf("order: %v", got)
	}
}
