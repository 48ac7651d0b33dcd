package retention

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/steward-privacy/steward/internal/policy"
)

// A parent's due rows are often still referenced by its children's
// (job_assets point at generation_jobs): swept at the same time, the
// parent would find them referenced and keep them until the next day's
// run. So a dataset waits while a dataset of the same run that references
// it is still being swept, the way an erasure orders its tasks children
// first.

// childWait bounds the wait: a cycle the pairwise check below misses
// (three datasets referencing each other in a ring) must not stall a run.
const childWait = time.Hour

// children are the datasets of the same system whose references point at
// system.dataset ("system.dataset" each), leaving out the dataset itself
// and datasets it references in turn (a pair that references each other
// cannot be ordered; each sweep keeps what the other still references).
func children(e *policy.Engine, system, dataset string) []string {
	sys, ok := e.DataMap.Systems[system]
	if !ok {
		return nil
	}
	refersTo := func(from, to string) bool {
		for _, r := range sys.Datasets[from].References {
			if strings.HasPrefix(r.To, system+"."+to+".") {
				return true
			}
		}
		return false
	}
	var out []string
	for did := range sys.Datasets {
		if did != dataset && refersTo(did, dataset) && !refersTo(dataset, did) {
			out = append(out, system+"."+did)
		}
	}
	return out
}

// childrenPending reports whether a dataset of the run that references
// system.dataset has not finished its sweep.
func (s *Service) childrenPending(ctx context.Context, e *policy.Engine, a SweepArgs) (bool, error) {
	kids := children(e, a.System, a.Dataset)
	if len(kids) == 0 {
		return false, nil
	}
	var n int
	err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM retention_run_datasets
		WHERE run_id = $1 AND system || '.' || dataset = ANY($2) AND status IN ('pending', 'running')`, a.RunID, kids).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("retention: children of %s.%s: %w", a.System, a.Dataset, err)
	}
	return n > 0, nil
}

// ordered puts a run's datasets children first, for a run swept one
// dataset after another (RunNow). Datasets in a cycle keep their order.
func ordered(e *policy.Engine, ds []DatasetRun) []DatasetRun {
	left := append([]DatasetRun(nil), ds...)
	out := make([]DatasetRun, 0, len(ds))
	for len(left) > 0 {
		pick := 0
		for i, d := range left {
			blocked := false
			for _, k := range children(e, d.System, d.Dataset) {
				for _, o := range left {
					if o.System+"."+o.Dataset == k {
						blocked = true
					}
				}
			}
			if !blocked {
				pick = i
				break
			}
		}
		out = append(out, left[pick])
		left = append(left[:pick], left[pick+1:]...)
	}
	return out
}
