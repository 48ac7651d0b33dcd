package connectortest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
)

// erase checks Erase carries out the plan on the subject's records only, and
// is idempotent both ways the engine repeats it.
func (r *runner) erase(t *testing.T) {
	if !r.caps.Erase {
		t.Skip("Erase not declared")
	}
	s := r.seed(t)
	ctx := context.Background()
	others := s.others(t)
	for _, ds := range s.Datasets {
		name := ds.System + "/" + ds.Dataset
		var before []connectors.Record
		if r.caps.Access {
			before = r.accessRecords(t, ctx, s.target(ds, s.key()), accessPlan(ds))
		}

		if res, err := r.c.Erase(ctx, connectors.EraseParams{Target: unknownTarget(s, ds), Fields: ds.Fields}); err != nil {
			t.Errorf("Erase %s of an unknown subject: %v", name, err)
		} else if res.Deleted != 0 || res.Masked != 0 {
			t.Errorf("Erase %s of an unknown subject: deleted %d, masked %d", name, res.Deleted, res.Masked)
		}

		key := s.key()
		p := connectors.EraseParams{Target: s.target(ds, key), Fields: ds.Fields}
		first, err := r.c.Erase(ctx, p)
		if err != nil {
			t.Fatalf("Erase %s: %v", name, err)
		}
		allDelete, work := true, false
		for _, f := range ds.Fields {
			allDelete = allDelete && f.Action == connectors.ActionDelete
			work = work || f.Action == connectors.ActionDelete || f.Action == connectors.ActionMask
		}
		if first.Manual != "" {
			// The connector cannot erase here and asked staff to: it must
			// have changed nothing, name the work, and ask again when
			// repeated (nothing was done in between).
			r.checkManualErase(t, name, s, ds, p, first, before)
			continue
		}
		if allDelete && first.Deleted == 0 {
			t.Errorf("Erase %s: the plan deletes every field, but no record was deleted (%+v)", name, first)
		}
		if work && first.Deleted+first.Masked == 0 {
			t.Errorf("Erase %s: the plan deletes or masks fields, but nothing was deleted or masked", name)
		}
		for _, f := range ds.Fields {
			if f.Action != connectors.ActionRetain {
				continue
			}
			i := slices.IndexFunc(first.Retained, func(rt connectors.Retained) bool { return rt.Field == f.Field })
			if i < 0 {
				t.Errorf("Erase %s: retained field %q not reported in Retained", name, f.Field)
				continue
			}
			if rt := first.Retained[i]; rt.Basis != f.Basis || rt.Until != f.Until || rt.Records != ds.Records {
				t.Errorf("Erase %s: Retained %+v, want basis %q until %q records %d", name, rt, f.Basis, f.Until, ds.Records)
			}
		}

		// A new task run of the same request finds nothing left to do.
		p2 := p
		p2.IdempotencyKey = s.key()
		second, err := r.c.Erase(ctx, p2)
		if err != nil {
			t.Fatalf("second Erase %s: %v", name, err)
		}
		if second.Deleted != 0 || second.Masked != 0 {
			t.Errorf("second Erase %s: deleted %d, masked %d; want nothing left to do", name, second.Deleted, second.Masked)
		}
		var after []connectors.Record
		if r.caps.Access {
			after = r.accessRecords(t, ctx, s.target(ds, s.key()), accessPlan(ds))
		}
		// A retry of the first run (its worker died before recording the
		// result) changes nothing; it may report the first result again.
		replay, err := r.c.Erase(ctx, p)
		if err != nil {
			t.Fatalf("replayed Erase %s: %v", name, err)
		}
		if replay.Deleted != 0 || replay.Masked != 0 {
			if replay.Deleted != first.Deleted || replay.Masked != first.Masked {
				t.Errorf("replayed Erase %s: deleted %d, masked %d; want zero or the first run's %d, %d",
					name, replay.Deleted, replay.Masked, first.Deleted, first.Masked)
			}
		}
		if !r.caps.Access {
			continue
		}
		if again := r.accessRecords(t, ctx, s.target(ds, s.key()), accessPlan(ds)); canonical(t, again) != canonical(t, after) {
			t.Errorf("replayed Erase %s changed the data", name)
		}
		checkErased(t, name, ds, before, after, allDelete)
	}
	if got := s.others(t); got != others {
		t.Errorf("other subjects' records: %d before erasure, %d after", others, got)
	}
}

// checkManualErase checks an Erase that handed the work to staff: nothing
// deleted or masked, the data unchanged, and the same hand-over when asked
// again by a new task run and by a retry.
func (r *runner) checkManualErase(t *testing.T, name string, s *subject, ds Dataset, p connectors.EraseParams, first connectors.EraseResult, before []connectors.Record) {
	t.Helper()
	ctx := context.Background()
	if first.Deleted != 0 || first.Masked != 0 {
		t.Errorf("Erase %s asked staff to erase (Manual) but also reports deleted %d, masked %d", name, first.Deleted, first.Masked)
	}
	p2 := p
	p2.IdempotencyKey = s.key()
	for _, again := range []connectors.EraseParams{p2, p} {
		res, err := r.c.Erase(ctx, again)
		if err != nil {
			t.Fatalf("repeated Erase %s: %v", name, err)
		}
		if res.Manual != first.Manual || res.Deleted != 0 || res.Masked != 0 {
			t.Errorf("repeated Erase %s: %+v; want the same staff instructions and nothing done", name, res)
		}
	}
	if r.caps.Access {
		after := r.accessRecords(t, ctx, s.target(ds, s.key()), accessPlan(ds))
		if canonical(t, after) != canonical(t, before) {
			t.Errorf("Erase %s handed the work to staff but changed the data", name)
		}
	}
}

// checkErased compares what Access disclosed before and after erasure
// with the plan.
func checkErased(t *testing.T, name string, ds Dataset, before, after []connectors.Record, allDelete bool) {
	t.Helper()
	if allDelete {
		if len(after) != 0 {
			t.Errorf("Erase %s: the plan deletes every field, but %d records remain", name, len(after))
		}
		return
	}
	if len(after) != len(before) {
		t.Errorf("Erase %s: %d records before, %d after; the plan keeps the records", name, len(before), len(after))
		return
	}
	plans := map[string]connectors.FieldPlan{}
	for _, f := range ds.Fields {
		plans[f.Field] = f
	}
	for i, rec := range after {
		old := before[i]
		if rec.Key != old.Key {
			t.Errorf("Erase %s: record %q became %q", name, old.Key, rec.Key)
			continue
		}
		oldValues := map[string]any{}
		for _, fv := range old.Fields {
			oldValues[fv.Field] = fv.Value
		}
		for _, fv := range rec.Fields {
			orig, had := oldValues[fv.Field]
			if !had {
				continue
			}
			got, was := jsonValue(fv.Value), jsonValue(orig)
			fail := func(want string) {
				t.Errorf("Erase %s: record %q field %q (%s %s) reads %s, want %s", name, rec.Key, fv.Field,
					plans[fv.Field].Action, plans[fv.Field].Strategy, got, want)
			}
			p := plans[fv.Field]
			if orig == nil && p.Action == connectors.ActionMask {
				continue // nothing to hide; a connector may keep the null
			}
			switch {
			case p.Action == connectors.ActionDelete:
				if fv.Value != nil {
					fail("null")
				}
			case p.Action == connectors.ActionMask && p.Strategy == "null":
				if fv.Value != nil {
					fail("null")
				}
			case p.Action == connectors.ActionMask && p.Strategy == "fixed":
				if got != jsonValue(p.Value) {
					fail(jsonValue(p.Value))
				}
			case p.Action == connectors.ActionMask && p.Strategy == "truncate_date":
				s, _ := orig.(string)
				if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
					v, _ := fv.Value.(string)
					if !strings.HasPrefix(v, ts.Format(time.DateOnly)) || v == s {
						fail("the date part " + ts.Format(time.DateOnly))
					}
				}
			case p.Action == connectors.ActionMask:
				if orig != nil && (fv.Value == nil || got == was) {
					fail("a value other than the original")
				}
			default: // retain, and anything the plan leaves alone
				if got != was {
					fail("the original " + was)
				}
			}
		}
	}
}
