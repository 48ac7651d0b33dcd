package connectortest

import (
	"context"
	"testing"

	"github.com/steward-privacy/steward/connectors"
)

// restrict checks Restrict marks every record idempotently, leaves what
// Access discloses as it was, and can be lifted.
func (r *runner) restrict(t *testing.T) {
	if !r.caps.Restrict {
		t.Skip("Restrict not declared")
	}
	s := r.seed(t)
	ctx := context.Background()
	before, others := r.snapshot(t, s), s.others(t)
	for _, ds := range s.Datasets {
		name := ds.System + "/" + ds.Dataset
		p := connectors.RestrictParams{Target: s.target(ds, s.key()), Restricted: true, Reason: "connectortest"}
		first, err := r.c.Restrict(ctx, p)
		if err != nil {
			t.Fatalf("Restrict %s: %v", name, err)
		}
		if first.Restricted != ds.Records {
			t.Errorf("Restrict %s: restricted %d records, want %d", name, first.Restricted, ds.Records)
		}
		p2 := p
		p2.IdempotencyKey = s.key()
		second, err := r.c.Restrict(ctx, p2)
		if err != nil {
			t.Fatalf("second Restrict %s: %v", name, err)
		}
		if second.Restricted != 0 {
			t.Errorf("second Restrict %s: restricted %d records; want nothing left to do", name, second.Restricted)
		}
		if _, err := r.c.Restrict(ctx, p); err != nil {
			t.Fatalf("replayed Restrict %s: %v", name, err)
		}
	}
	// Restriction limits processing; the person still sees their data.
	if after := r.snapshot(t, s); after != before {
		t.Errorf("Restrict changed what Access discloses")
	}
	for _, ds := range s.Datasets {
		p := connectors.RestrictParams{Target: s.target(ds, s.key()), Restricted: false}
		if _, err := r.c.Restrict(ctx, p); err != nil {
			t.Errorf("lifting the restriction of %s/%s: %v", ds.System, ds.Dataset, err)
		}
	}
	if got := s.others(t); got != others {
		t.Errorf("other subjects' records: %d before, %d after", others, got)
	}
}
