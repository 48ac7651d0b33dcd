package connectors

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"

	"github.com/steward-privacy/steward/identity"
)

// IdentityOf is a parsed identity in the seam's form.
func IdentityOf(s identity.Subject) Identity {
	return Identity{Type: string(s.Type), Value: s.Value, Provider: s.Provider}
}

// Subject parses what a connector found, normalizing it as if the person
// had typed it; a malformed value is refused, not stored.
func (i Identity) Subject() (identity.Subject, error) {
	raw := i.Type + ":" + i.Value
	if i.Type == string(identity.OAuth) {
		raw = i.Type + ":" + i.Provider + ":" + i.Value
	}
	return identity.Parse(raw)
}

// Linked is an identity a connector found for a subject, and the system it
// came from.
type Linked struct {
	Subject identity.Subject
	Source  string
}

// Resolve asks every connector of the registry that can for identities
// linked to the known ones, round after round, until none is new: an email
// finds the account id, the account id the Telegram id and the Stripe
// customer. It returns only the new ones. Privacy requests and legal holds
// (whose subject's records a retention sweep must find) both use it.
func (r Registry) Resolve(ctx context.Context, log *slog.Logger, known []identity.Subject) ([]Linked, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	seen := map[string]bool{}
	for _, k := range known {
		seen[k.String()] = true
	}
	// One connector may serve several systems (one database, one account):
	// ask each instance once per round, named after its first system.
	var systems []string
	asked := map[Connector]bool{}
	for _, sid := range slices.Sorted(maps.Keys(r)) {
		c := r[sid]
		if !c.Capabilities().ResolveIdentities {
			continue
		}
		if reflect.TypeOf(c).Comparable() {
			if asked[c] {
				continue
			}
			asked[c] = true
		}
		systems = append(systems, sid)
	}
	var found []Linked
	for round := 0; round < 5; round++ {
		ids := make([]Identity, 0, len(known)+len(found))
		for _, k := range known {
			ids = append(ids, IdentityOf(k))
		}
		for _, f := range found {
			ids = append(ids, IdentityOf(f.Subject))
		}
		added := false
		for _, sid := range systems {
			linked, err := r[sid].ResolveIdentities(ctx, ids)
			if err != nil {
				return nil, fmt.Errorf("resolve identities in %s: %w", sid, err)
			}
			for _, l := range linked {
				subj, err := l.Subject()
				if err != nil {
					log.WarnContext(ctx, "connector returned an identity that does not parse; ignored", "system", sid, "kind", l.Type)
					continue
				}
				if seen[subj.String()] {
					continue
				}
				seen[subj.String()] = true
				found = append(found, Linked{Subject: subj, Source: sid})
				added = true
			}
		}
		if !added {
			break
		}
	}
	return found, nil
}
