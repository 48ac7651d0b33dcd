package retention

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// The plain-text tables `steward retention` and `steward holds` print; the
// same data is the API's JSON.

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// WritePlan prints the plan: per rule, what is due now and held.
func WritePlan(w io.Writer, items []PlanItem) error {
	tw := table(w)
	fmt.Fprintln(tw, "DATASET\tRULE\tKEEP\tACTION\tCUTOFF\tDUE\tHELD\tSTATUS\tNOTE")
	for _, it := range items {
		fmt.Fprintf(tw, "%s.%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", it.System, it.Dataset, it.Rule, it.Period, it.Action,
			rfc3339(it.Cutoff), it.Due, it.Held, it.Status, it.Note)
	}
	return tw.Flush()
}

// WriteRun prints one run with its per-dataset counts.
func WriteRun(w io.Writer, r Run) error {
	fmt.Fprintf(w, "run %s  %s  dry_run=%v  status=%s\n\n", r.ID, rfc3339(r.At), r.DryRun, r.Status)
	tw := table(w)
	fmt.Fprintln(tw, "DATASET\tSTATUS\tMATCHED\tDELETED\tANONYMIZED\tHELD\tKEPT\tERRORS\tMS\tNOTE")
	for _, d := range r.Datasets {
		matched := "-"
		if d.Matched != nil {
			matched = fmt.Sprint(*d.Matched)
		}
		note := d.Note
		if d.LastError != "" {
			note = strings.TrimSpace(note + " " + d.LastError)
		}
		fmt.Fprintf(tw, "%s.%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", d.System, d.Dataset, d.Status, matched, d.Deleted, d.Anonymized,
			d.Held, d.Kept, d.Errors, d.DurationMS, note)
	}
	return tw.Flush()
}

// WriteRuns prints a line per run.
func WriteRuns(w io.Writer, runs []Run) error {
	tw := table(w)
	fmt.Fprintln(tw, "RUN\tAT\tTRIGGER\tDRY RUN\tSTATUS\tDATASETS")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%d\n", r.ID, rfc3339(r.At), r.Trigger, r.DryRun, r.Status, len(r.Datasets))
	}
	return tw.Flush()
}

// WriteHolds prints a line per legal hold; a subject hold shows only the
// kind of identity it names, never the identity.
func WriteHolds(w io.Writer, hs []Hold) error {
	tw := table(w)
	fmt.Fprintln(tw, "ID\tSCOPE\tON\tACTIVE\tCREATED\tEXPIRES\tREASON")
	for _, h := range hs {
		on := h.SubjectKind + " subject"
		switch h.Scope {
		case ScopeDataset:
			on = h.System + "." + h.Dataset
		case ScopeCategory:
			on = h.Category
		}
		exp := "-"
		if h.ExpiresAt != nil {
			exp = rfc3339(*h.ExpiresAt)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\t%s\t%s\n", h.ID, h.Scope, on, h.Active, rfc3339(h.CreatedAt), exp, h.Reason)
	}
	return tw.Flush()
}
