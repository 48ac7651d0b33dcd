package consent

import "sort"

// keys returns a map's keys sorted, so every listing is stable.
func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
