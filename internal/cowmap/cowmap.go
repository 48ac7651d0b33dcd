// Package cowmap is a read-mostly map for the request path: lookups take
// no lock and hash a typed key, and the map is replaced whole (copy on
// write) when a key is added. It suits small key sets that all appear
// early — a metric's label sets, the authorization policy's memo — where a
// sync.Map hashed each key through an interface and boxed it.
package cowmap

import (
	"sync"
	"sync/atomic"
)

// Map is the zero-value-ready map. Adding a key costs a copy of the map,
// so keys must be few (hundreds, not millions).
type Map[K comparable, V any] struct {
	mu  sync.Mutex
	cur atomic.Pointer[map[K]V]
}

// Load returns k's value.
func (m *Map[K, V]) Load(k K) (V, bool) {
	if p := m.cur.Load(); p != nil {
		v, ok := (*p)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// LoadOrAdd returns k's value, making it with add on first use. add gets
// k and returns the key to keep (say, with copies of strings that point
// into a reused buffer) and the value; two callers never both add k.
func (m *Map[K, V]) LoadOrAdd(k K, add func(K) (K, V)) V {
	if v, ok := m.Load(k); ok {
		return v
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.cur.Load()
	var n int
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
		n = len(*old)
	}
	kept, v := add(k)
	next := make(map[K]V, n+1)
	if old != nil {
		for ok, ov := range *old {
			next[ok] = ov
		}
	}
	next[kept] = v
	m.cur.Store(&next)
	return v
}

// Len is the number of keys.
func (m *Map[K, V]) Len() int {
	if p := m.cur.Load(); p != nil {
		return len(*p)
	}
	return 0
}
