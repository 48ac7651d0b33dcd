package console_test

import (
	"fmt"
	"net/url"
	"testing"
)

// TestRetentionRunStatesDryRun: the console's run form states dry_run
// either way (checkbox "1" before a hidden "0"); a post that states
// neither starts nothing, as the API refuses a body without dry_run.
func TestRetentionRunStatesDryRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct {
		form   url.Values
		status int
		runs   string
	}{
		{url.Values{"dry_run": {"1", "0"}}, 303, "[true]"},             // box checked
		{url.Values{"dry_run": {"0"}}, 303, "[true false]"},            // box cleared
		{url.Values{"dataset": {"app_db.users"}}, 422, "[true false]"}, // neither: refused
		{url.Values{"dry_run": {"yes"}}, 422, "[true false]"},
	} {
		r := b.post("admin", "/console/retention/runs", tc.form)
		if r.Status != tc.status || fmt.Sprint(b.retention.runs) != tc.runs {
			t.Errorf("%v: %d, runs %v; want %d, %s", tc.form, r.Status, b.retention.runs, tc.status, tc.runs)
		}
	}
}
