package consent

import (
	"encoding/hex"
	"sync"
	"sync/atomic"

	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/restrictions"
)

// subjectState is what a consent check needs to know about one subject.
type subjectState struct {
	id       int64 // 0 when the subject has never been recorded
	gpcSeen  bool
	purposes map[string]policy.Stored
	// restricted is the processing restriction in force for the subject's
	// identity (internal/restrictions), nil when none.
	restricted *restrictions.Active
}

var emptyState = &subjectState{}

// Cache keeps subjects' consent state in process so a check is a map lookup.
// It is correct across replicas because every write sends a NOTIFY with the
// subject's lookup hash and every replica's listener deletes that entry; while
// the listener is down the cache is off, since notifications may be missed.
//
// A reader that loads from the database races with invalidations: the load
// may see the old row while the NOTIFY for the new one arrives before the
// reader stores what it loaded. The generation counter closes that window:
// a load only populates the cache if no invalidation happened since it began.
type Cache struct {
	mu      sync.RWMutex
	m       map[string]*subjectState
	max     int
	enabled bool
	gen     atomic.Uint64
}

// NewCache returns a cache bounded to max subjects; it starts disabled until
// the listener reports it is connected (Connected(true)).
func NewCache(max int) *Cache {
	if max <= 0 {
		max = 100_000
	}
	return &Cache{m: make(map[string]*subjectState), max: max}
}

// EnableWithoutListener turns the cache on for a single-process deployment
// or a test that runs no listener. With replicas, rely on Connected instead.
func (c *Cache) EnableWithoutListener() { c.Connected(true) }

func (c *Cache) get(key string) (*subjectState, bool) {
	c.mu.RLock()
	st, ok := c.m[key]
	c.mu.RUnlock()
	return st, ok
}

// generation returns a token to pass to put; see the type comment.
func (c *Cache) generation() uint64 { return c.gen.Load() }

func (c *Cache) put(key string, st *subjectState, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enabled || c.gen.Load() != gen {
		return
	}
	if _, exists := c.m[key]; !exists && len(c.m) >= c.max {
		for k := range c.m { // evict an arbitrary entry: cheap and good enough
			delete(c.m, k)
			break
		}
	}
	c.m[key] = st
}

func (c *Cache) invalidate(key string) {
	c.mu.Lock()
	c.gen.Add(1)
	delete(c.m, key)
	c.mu.Unlock()
}

// Notify handles a NOTIFY on the consent channel: the payload is the hex
// lookup hash of the subject that changed.
func (c *Cache) Notify(payload string) {
	b, err := hex.DecodeString(payload)
	if err != nil {
		// Unknown payload: forget everything rather than risk a stale answer.
		c.Connected(true)
		return
	}
	c.invalidate(string(b))
}

// Connected is called by the listener: on either edge everything cached is
// dropped, because notifications may have been missed.
func (c *Cache) Connected(up bool) {
	c.mu.Lock()
	c.gen.Add(1)
	c.enabled = up
	clear(c.m)
	c.mu.Unlock()
}

// Len is the number of cached subjects.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// Forget drops the cached state of the subjects stored under these lookup
// hashes (a restriction recorded or lifted on this replica); the NOTIFY of
// the same change reaches the other replicas.
func (c *Cache) Forget(hashes [][]byte) {
	for _, h := range hashes {
		c.invalidate(string(h))
	}
}
