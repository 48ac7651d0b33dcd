package objectstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/steward-privacy/steward/connectors"
)

// opSweep names Sweep in errors and the test hook.
const opSweep = "sweep"

// timestampField is the only age an object has: its last-modified time,
// which the store sets and nobody can backdate.
const timestampField = "last_modified"

var _ connectors.Sweeper = (*Connector)(nil)

// Sweep enforces a dataset's retention period: every object of the
// dataset last modified before p.Cutoff is deleted, a page at a time,
// except those under a held subject's prefixes. It is DeleteOlderThan
// driven by a retention rule, with the rule's plan, holds, dry run and
// resumption.
//
// An object is one value, so as in Erase a plan that deletes or masks any
// field deletes the object, and a plan that retains every field deletes
// nothing (the due objects are counted and reported as Kept). Counts are
// DeleteOlderThan's: in a versioned S3 bucket each due version is one
// (Matched, Deleted and Held alike), and delete markers count nowhere.
//
// Progress gets each page's deletes with the page's last key as the
// cursor. Objects are listed in key order and a page's keys are done with
// once its deletes returned (in a versioned bucket a key's versions are
// never split between pages), so a retry resumes after that key.
func (c *Connector) Sweep(ctx context.Context, p connectors.SweepParams) (connectors.SweepResult, error) {
	var res connectors.SweepResult
	m, err := c.enter(ctx, opSweep)
	if err != nil {
		return res, err
	}
	ds, err := m.dataset(c.cfg.System, opSweep, connectors.Target{System: p.System, Dataset: p.Dataset})
	if err != nil {
		return res, err
	}
	if p.Timestamp != "" && p.Timestamp != timestampField {
		// Objects have no other date: a rule naming one is a data-map
		// mistake, and sweeping by last-modified instead would delete by
		// a date the rule did not mean.
		return res, connectors.Permanent(fmt.Errorf("objectstore %s: %s %s: timestamp field %q is not something an object has; objects age by %q",
			c.cfg.System, opSweep, ds.id, p.Timestamp, timestampField))
	}
	if err := ds.checkPlan(c.cfg.System, opSweep, p.Fields); err != nil {
		return res, err
	}
	if p.Resume != "" && !strings.HasPrefix(p.Resume, ds.tmpl.Head()) {
		// A cursor from another dataset's sweep: starting after it would
		// skip this dataset's keys, or none, without saying so.
		return res, connectors.Permanent(fmt.Errorf("objectstore %s: %s %s: the resume cursor is not a key of the dataset", c.cfg.System, opSweep, ds.id))
	}
	if !erases(p.Fields) {
		st, err := c.sweepOlderThan(ctx, ds, ageSweep{op: opSweep, cutoff: p.Cutoff, dryRun: true, after: p.Resume})
		res.Matched, res.Kept = int64(st.matched), int64(st.matched)
		res.Note = fmt.Sprintf("The plan for dataset %s retains every field, and an object is one value that cannot lose some fields and keep others: nothing was deleted.", ds.id)
		return res, err
	}
	keep, err := c.holds(ds, p.Held)
	if err != nil {
		return res, err
	}
	s := ageSweep{op: opSweep, cutoff: p.Cutoff, keep: keep, dryRun: p.DryRun, after: p.Resume}
	if p.Progress != nil && !p.DryRun {
		// A dry run commits nothing, so it has nothing to report.
		s.progress = func(b connectors.SweepBatch) error { return p.Progress(ctx, b) }
	}
	st, err := c.sweepOlderThan(ctx, ds, s)
	res.Matched, res.Held = int64(st.matched), int64(st.held)
	res.Deleted, res.Bytes = int64(st.deleted), st.bytes
	if st.deleted > 0 {
		res.Note = c.note
	}
	return res, err
}

// holds returns a keep func protecting every key under a held subject's
// prefixes, or nil when no held subject has any in the dataset (their
// identities do not fill its template). A subject whose identities cannot
// be expanded fails the sweep: sweeping without knowing their prefixes
// could delete what the hold protects.
func (c *Connector) holds(ds *dataset, held [][]connectors.Identity) (func(string) bool, error) {
	var prefixes []string
	for _, ids := range held {
		ps, err := c.prefixes(ds, opSweep, ids)
		if err != nil {
			return nil, err
		}
		prefixes = append(prefixes, ps...)
	}
	if len(prefixes) == 0 {
		return nil, nil
	}
	slices.Sort(prefixes)
	prefixes = slices.Compact(prefixes)
	// All prefixes expand the one template, where every placeholder value
	// is one whole segment, so none is a prefix of another; a key under
	// one is then under the greatest prefix not after it, and a binary
	// search finds it however many subjects are held.
	return func(key string) bool {
		i, found := slices.BinarySearch(prefixes, key)
		return found || i > 0 && strings.HasPrefix(key, prefixes[i-1])
	}, nil
}

// ageSweep is one age sweep of a dataset, as DeleteOlderThan and Sweep
// run it.
type ageSweep struct {
	op     string
	cutoff time.Time
	// keep protects a due key (a legal hold); nil protects nothing. It is
	// asked once per key and page, about due objects of the dataset only.
	keep func(key string) bool
	// dryRun counts what is due and held and deletes nothing.
	dryRun bool
	// after is a store key the sweep starts after ("" for the start).
	after string
	// progress, if set, gets each page's deletes once they are done; an
	// error from it stops the sweep.
	progress func(connectors.SweepBatch) error
}

// ageStats count an age sweep. Objects count once per version in a
// versioned bucket; delete markers never count.
type ageStats struct {
	matched int // due (held included)
	held    int // due but protected by keep
	deleted int
	bytes   int64
}

// progressError marks a failure of the caller's progress callback, which
// is the caller's to classify, not the store's.
type progressError struct{ err error }

func (e *progressError) Error() string { return e.err.Error() }
func (e *progressError) Unwrap() error { return e.err }

// sweepOlderThan lists the dataset's whole key space (its template's head)
// once and, a page at a time, counts the objects modified before the
// cutoff, keeps those keep protects and deletes the rest (unless a dry
// run): a dry run and a real one go through the same listing and the same
// test of what is due.
func (c *Connector) sweepOlderThan(ctx context.Context, ds *dataset, s ageSweep) (ageStats, error) {
	var st ageStats
	head := ds.tmpl.Head()
	switch now := c.clock.Now(); {
	case head == "":
		return st, connectors.Permanent(fmt.Errorf("objectstore %s: %s %s: key template %q starts with a placeholder, so the sweep would list the whole bucket; give it a fixed head such as \"uploads/\"", c.cfg.System, s.op, ds.id, ds.tmpl))
	case s.cutoff.IsZero() || s.cutoff.After(now):
		return st, connectors.Permanent(fmt.Errorf("objectstore %s: %s %s: cutoff %s is not in the past", c.cfg.System, s.op, ds.id, s.cutoff.UTC().Format(time.RFC3339)))
	}
	versioned, err := c.isVersioned(ctx)
	if err != nil {
		return st, c.fail(ctx, s.op, ds.id, err)
	}
	// The key test is also what resumes on stores that cannot be asked
	// to start after a key (see walkAfter): they list from the start and
	// the keys up to s.after pass by uncounted. Deleted objects are not
	// listed again either way, so nothing is counted twice.
	due := func(_ context.Context, o object) (bool, error) {
		return o.raw > s.after && ds.tmpl.Match(o.raw) && o.mod.Before(s.cutoff), nil
	}
	protected := map[string]bool{} // per page: keep is asked once a key
	page := func(objs []object) error {
		// objs are due and the dataset's (tag checked): only now is keep
		// asked, and a held object counted.
		clear(protected)
		doomed := objs
		if s.keep != nil {
			doomed = make([]object, 0, len(objs))
		}
		for _, o := range objs {
			held := false
			if s.keep != nil {
				var seen bool
				if held, seen = protected[o.raw]; !seen {
					held = s.keep(o.raw)
					protected[o.raw] = held
				}
				if !held {
					doomed = append(doomed, o)
				}
			}
			if !o.marker {
				st.matched++
				if held {
					st.held++
				}
			}
		}
		if s.dryRun {
			return nil
		}
		var b connectors.SweepBatch
		gone, err := c.remove(ctx, doomed)
		for _, o := range gone {
			if !o.marker {
				b.Deleted++
				b.Bytes += o.size
			}
		}
		st.deleted += int(b.Deleted)
		st.bytes += b.Bytes
		if err != nil || s.progress == nil {
			return err
		}
		// Listed in key order, and a key's versions never straddle two
		// pages (walkVersions), so every key up to this one is done.
		b.Cursor = objs[len(objs)-1].raw
		if err := s.progress(b); err != nil {
			return &progressError{err}
		}
		return nil
	}
	if versioned {
		err = c.walkVersionsAfter(ctx, ds, head, s.after, due, page)
	} else {
		err = c.walkAfter(ctx, ds, head, s.after, due, page)
	}
	c.log.Info("objectstore retention sweep", "system", c.cfg.System, "dataset", ds.id, "op", s.op, "cutoff", s.cutoff.UTC().Format(time.RFC3339),
		"dry_run", s.dryRun, "resumed", s.after != "", "matched", st.matched, "deleted", st.deleted, "bytes", st.bytes, "held", st.held,
		"versioned", versioned, "failed", err != nil)
	var pe *progressError
	switch {
	case errors.As(err, &pe):
		return st, fmt.Errorf("objectstore %s: %s %s: progress: %w", c.cfg.System, s.op, ds.id, pe.err)
	case err != nil:
		return st, c.fail(ctx, s.op, ds.id, err)
	}
	return st, nil
}
