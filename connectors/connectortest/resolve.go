package connectortest

import (
	"context"
	"slices"
	"testing"

	"github.com/steward-privacy/steward/connectors"
)

// resolve checks ResolveIdentities finds exactly the linked identities, and
// nothing for an identity nobody has.
func (r *runner) resolve(t *testing.T) {
	if !r.caps.ResolveIdentities {
		t.Skip("ResolveIdentities not declared")
	}
	s := r.seed(t)
	ctx := context.Background()
	got, err := r.c.ResolveIdentities(ctx, s.Identities)
	if err != nil {
		t.Fatalf("ResolveIdentities: %v", err)
	}
	want := map[string]bool{}
	for _, id := range s.Linked {
		want[identityKey(id)] = true
	}
	seen := map[string]bool{}
	for _, id := range got {
		k := identityKey(id)
		switch {
		case seen[k]:
			t.Errorf("ResolveIdentities returned %s twice", id)
		case slices.ContainsFunc(s.Identities, func(k connectors.Identity) bool { return identityKey(k) == identityKey(id) }):
			t.Errorf("ResolveIdentities returned the known identity %s", id)
		case !want[k]:
			// Another subject's identity here would have the engine
			// disclose or erase that subject's data.
			t.Errorf("ResolveIdentities returned %s, which is not linked to the subject", id)
		}
		seen[k] = true
	}
	for _, id := range s.Linked {
		if !seen[identityKey(id)] {
			t.Errorf("ResolveIdentities did not find linked identity %s", id)
		}
	}

	none, err := r.c.ResolveIdentities(ctx, []connectors.Identity{unknownIdentity(s.Identities[0])})
	if err != nil {
		t.Errorf("ResolveIdentities of an unknown identity: want no error, got %v", err)
	}
	if len(none) != 0 {
		t.Errorf("ResolveIdentities of an unknown identity found %d identities", len(none))
	}
}
