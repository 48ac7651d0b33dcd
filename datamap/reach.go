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
	via := m.graphFrom(known).reach()
	out := make(map[string][]string, len(via))
	for node := range via {
		out[node] = via.path(node)
	}
	return out
}

// path is the way BFS reached node, root first.
func (v reached) path(node string) []string {
	var path []string
	for n := node; ; {
		h := v[n]
		path = append(path, h.label)
		if h.from == "" {
			break
		}
		n = h.from
	}
	slices.Reverse(path)
	return path
}
