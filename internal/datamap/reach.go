package datamap

import (
	"slices"
	"strings"
)

// ReachableFrom returns every dataset ("system.dataset") a subject reaches
// when only the given identity types of theirs are known, each with its
// shortest path (as ReachPath words it). A privacy request searches exactly
// these: a dataset keyed by a Telegram id is not searched for a person known
// only by email until identity resolution finds their Telegram id.
func (m *Map) ReachableFrom(types []string) map[string][]string {
	known := map[string]bool{}
	for _, t := range types {
		// "oauth:google" is an oauth identity.
		known[strings.SplitN(t, ":", 2)[0]] = true
	}
	g := m.graph()
	g.roots = g.roots[:0]
	for _, sid := range sortedKeys(m.Systems) {
		for _, did := range sortedKeys(m.Systems[sid].Datasets) {
			ds := m.Systems[sid].Datasets[did]
			node := sid + "." + did
			best := root{rank: -1}
			consider := func(label, typ string) {
				r, ok := identityRank[typ]
				if !ok || !known[typ] {
					return
				}
				if best.rank < 0 || r < best.rank || r == best.rank && label < best.label {
					best = root{node: node, label: label, rank: r}
				}
			}
			for _, id := range ds.Identities {
				if id.Field != "" {
					consider(node+"."+id.Field, id.Type)
				}
			}
			if phs, msg := parsePrefix(ds.Prefix); msg == "" {
				for _, ph := range phs {
					if typ, ok := placeholderIdentity(ds, ph.name); ok && typ != "" {
						consider(node+".{"+ph.name+"}", typ)
					}
				}
			}
			if best.rank >= 0 {
				g.roots = append(g.roots, best)
			}
		}
	}
	slices.SortFunc(g.roots, func(a, b root) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return strings.Compare(a.label, b.label)
	})
	via := g.reach()
	out := make(map[string][]string, len(via))
	for node := range via {
		var path []string
		for n := node; ; {
			h := via[n]
			path = append(path, h.label)
			if h.from == "" {
				break
			}
			n = h.from
		}
		slices.Reverse(path)
		out[node] = path
	}
	return out
}
