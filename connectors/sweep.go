package connectors

import (
	"context"
	"time"
)

// Sweeper is implemented by connectors that can enforce a retention period
// themselves: remove (or anonymize) every record of a dataset older than a
// cutoff, for all subjects at once, in batches that each commit on their
// own. The retention sweep calls it from a durable job that may run more
// than once, so a sweep must be resumable: a batch that committed is never
// counted again (its records no longer match), and Resume lets a retry skip
// ground already covered.
type Sweeper interface {
	Sweep(ctx context.Context, p SweepParams) (SweepResult, error)
}

// SweepParams describe one dataset's sweep.
type SweepParams struct {
	System  string
	Dataset string
	// Timestamp is the field a record's age is read from (for objects, the
	// object's last-modified time).
	Timestamp string
	// Cutoff: a record whose timestamp is before it is due. It is fixed
	// when the run starts, so retries of the same run sweep the same set.
	Cutoff time.Time
	// Fields is what happens to a due record: every field ActionDelete
	// deletes it; otherwise ActionMask fields are overwritten with their
	// Strategy (anonymize) and the rest are kept.
	Fields []FieldPlan
	// Held are the subjects under a legal hold (each the identities of one
	// subject): none of their records is swept, however old.
	Held [][]Identity
	// DryRun counts what is due and held, and changes nothing.
	DryRun bool
	// Resume is the Cursor of the last batch an earlier attempt of this
	// sweep reported through Progress ("" to start at the beginning).
	Resume string
	// Progress, if set, is called after each batch commits, with that
	// batch's counts (not running totals) and the cursor to resume after
	// it. An error from it stops the sweep and is returned.
	Progress func(ctx context.Context, b SweepBatch) error
}

// SweepBatch is one committed batch of a sweep.
type SweepBatch struct {
	Deleted    int64  `json:"deleted"`
	Anonymized int64  `json:"anonymized"`
	Bytes      int64  `json:"bytes,omitempty"`
	Cursor     string `json:"cursor"`
}

// SweepResult totals a sweep (of this call: an attempt that resumed counts
// only what it did itself).
type SweepResult struct {
	// Matched counts the records due when the sweep started (held ones
	// included).
	Matched int64 `json:"matched"`
	// Deleted and Anonymized count what this call changed; Bytes is the
	// content removed, for objects.
	Deleted    int64 `json:"deleted"`
	Anonymized int64 `json:"anonymized"`
	Bytes      int64 `json:"bytes,omitempty"`
	// Held counts due records kept because their subject is under a legal
	// hold.
	Held int64 `json:"held"`
	// Kept counts due records the sweep had to leave (a record the
	// application still references, a value its column cannot drop),
	// with Note saying why.
	Kept int64  `json:"kept,omitempty"`
	Note string `json:"note,omitempty"`
}
