package policy

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
)

// FieldDecision is one field's fate under a request, and why.
type FieldDecision struct {
	Field    string `json:"field"` // system.dataset.field
	Category string `json:"category"`
	DSARDecision
}

// ExplainDSAR decides every field of the data map for a request of type
// requestType under regime: what `steward policy explain` shows.
func (e *Engine) ExplainDSAR(ctx context.Context, requestType, regime string) ([]FieldDecision, error) {
	var rows []FieldDecision
	for _, f := range e.DataMap.Fields() {
		d, err := e.DecideDSAR(ctx, DSARInput{RequestType: requestType, Regime: regime, Field: DSARField{
			System: f.System, Dataset: f.Dataset, Field: f.Field, Category: f.Category, Retention: f.Retention, Purpose: f.Purpose, Identity: f.Identity,
		}})
		if err != nil {
			return nil, fmt.Errorf("%s.%s.%s: %w", f.System, f.Dataset, f.Field, err)
		}
		rows = append(rows, FieldDecision{Field: f.System + "." + f.Dataset + "." + f.Field, Category: f.Category, DSARDecision: d})
	}
	return rows, nil
}

// WriteFieldDecisions prints a line per field: its action (marked when the
// field is restricted), strategy, retention, the rule that decided and why.
func WriteFieldDecisions(w io.Writer, rows []FieldDecision) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIELD\tCATEGORY\tACTION\tSTRATEGY\tUNTIL\tRULE\tWHY")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, r := range rows {
		action := r.Action
		if r.Restricted {
			action += " (restricted)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Field, r.Category, action, dash(r.Strategy), dash(r.Until), r.Rule, r.Basis)
	}
	return tw.Flush()
}
