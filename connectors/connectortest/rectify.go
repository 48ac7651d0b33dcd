package connectortest

import (
	"context"
	"testing"

	"github.com/steward-privacy/steward/connectors"
)

// rectify checks Rectify applies the corrections of each dataset with
// Rectify set, idempotently.
func (r *runner) rectify(t *testing.T) {
	if !r.caps.Rectify {
		t.Skip("Rectify not declared")
	}
	s := r.seed(t)
	ctx := context.Background()
	others := s.others(t)
	tested := false
	for _, ds := range s.Datasets {
		if ds.Rectify == nil {
			continue
		}
		tested = true
		name := ds.System + "/" + ds.Dataset
		p := connectors.RectifyParams{Target: s.target(ds, s.key()), Changes: ds.Rectify}
		first, err := r.c.Rectify(ctx, p)
		if err != nil {
			t.Fatalf("Rectify %s: %v", name, err)
		}
		if first.Updated != ds.Records {
			t.Errorf("Rectify %s: updated %d records, want %d", name, first.Updated, ds.Records)
		}
		var after string
		if r.caps.Access {
			recs := r.accessRecords(t, ctx, s.target(ds, s.key()), accessPlan(ds))
			for _, rec := range recs {
				for _, fv := range rec.Fields {
					if want, ok := ds.Rectify[fv.Field]; ok && fv.Value != want {
						t.Errorf("Rectify %s: record %q field %q reads %s, want %q", name, rec.Key, fv.Field, jsonValue(fv.Value), want)
					}
				}
			}
			after = canonical(t, recs)
		}
		p2 := p
		p2.IdempotencyKey = s.key()
		second, err := r.c.Rectify(ctx, p2)
		if err != nil {
			t.Fatalf("second Rectify %s: %v", name, err)
		}
		if second.Updated != 0 {
			t.Errorf("second Rectify %s: updated %d records; want nothing left to do", name, second.Updated)
		}
		if _, err := r.c.Rectify(ctx, p); err != nil {
			t.Fatalf("replayed Rectify %s: %v", name, err)
		}
		if r.caps.Access {
			if again := canonical(t, r.accessRecords(t, ctx, s.target(ds, s.key()), accessPlan(ds))); again != after {
				t.Errorf("repeated Rectify %s changed the data again", name)
			}
		}
	}
	if !tested {
		t.Skip("no dataset of the subject has Rectify set")
	}
	if got := s.others(t); got != others {
		t.Errorf("other subjects' records: %d before, %d after", others, got)
	}
}
