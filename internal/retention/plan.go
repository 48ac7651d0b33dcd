package retention

import (
	"context"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/apperr"
)

// PlanItem is one rule as it stands now: how many records are due, how
// many a hold keeps, and what a run would do.
type PlanItem struct {
	System    string    `json:"system"`
	Dataset   string    `json:"dataset"`
	Rule      string    `json:"rule"`
	Period    string    `json:"period"`
	Days      int       `json:"days"`
	Timestamp string    `json:"timestamp"`
	Action    string    `json:"action"`
	Basis     string    `json:"basis"`
	Cutoff    time.Time `json:"cutoff"`
	// Status: due (a run would sweep Due-Held records), clear (nothing
	// due), held (a dataset or category hold stops the sweep), manual (no
	// connector can sweep it), error (counting failed: Note says why).
	Status string `json:"status"`
	Due    int64  `json:"due"`
	Held   int64  `json:"held"`
	Note   string `json:"note,omitempty"`
}

// Plan counts, per rule, what is due now, changing nothing. A dataset
// whose count fails is reported with its error rather than failing the
// whole plan: the plan is how staff find such a dataset.
func (s *Service) Plan(ctx context.Context, dataset string) ([]PlanItem, error) {
	_, e, err := s.Schedule()
	if err != nil {
		return nil, err
	}
	run, rules, err := s.newRun(RunOptions{Dataset: dataset})
	if ae, ok := apperr.As(err); ok {
		ae.Message = "the plan cannot be made"
		return nil, ae
	}
	if err != nil {
		return nil, err
	}
	holds, err := s.activeHolds(ctx)
	if err != nil {
		return nil, err
	}
	held, err := s.heldSubjects(ctx, holds)
	if err != nil {
		return nil, err
	}
	out := make([]PlanItem, 0, len(rules))
	for _, r := range rules {
		it := PlanItem{System: r.System, Dataset: r.Dataset, Rule: r.RuleID, Period: r.Period, Days: r.Days, Timestamp: r.Timestamp,
			Action: r.Action, Basis: r.Basis, Cutoff: r.Cutoff(run.At)}
		sw, _, err := s.sweeperFor(e, r.System, r.Dataset)
		switch {
		case err != nil:
			it.Status, it.Note = "error", safeError(err)
			out = append(out, it)
			continue
		case sw == nil:
			it.Status, it.Note = StatusManual, manualNote(r)
			out = append(out, it)
			continue
		}
		res, err := sw.Sweep(ctx, connectors.SweepParams{System: r.System, Dataset: r.Dataset, Timestamp: r.Timestamp, Cutoff: it.Cutoff,
			Fields: s.fieldPlan(e, r), Held: held, DryRun: true})
		if err != nil {
			it.Status, it.Note = "error", safeError(err)
			out = append(out, it)
			continue
		}
		it.Due, it.Held, it.Status = res.Matched, res.Held, "due"
		if h := datasetHold(holds, r.System, r.Dataset, s.categories(e, r.System, r.Dataset)); h != nil {
			it.Held, it.Status, it.Note = res.Matched, StatusHeld, "legal hold "+h.ID+" ("+h.Scope+")"
		} else if res.Matched == 0 {
			it.Status = "clear"
		}
		out = append(out, it)
	}
	return out, nil
}
