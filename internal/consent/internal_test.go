package consent

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/policy"
)

var cursorCases = []string{
	encodeCursor(time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC), "0190b6f4-0000-7000-8000-000000000000"),
	"",
	"bm9wZQ",
	"!!!",
	"MTIzNC5ub3QtYS11dWlk",
	"LTEuMDE5MGI2ZjQtMDAwMC03MDAwLTgwMDAtMDAwMDAwMDAwMDAw",
}

func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 22, 10, 0, 0, 123456000, time.UTC)
	id := "0190b6f4-0000-7000-8000-000000000001"
	ts, gotID, err := decodeCursor(encodeCursor(at, id))
	if err != nil || !ts.Equal(at) || *gotID != id {
		t.Fatalf("%v %v %v", ts, gotID, err)
	}
	for _, bad := range cursorCases[2:] {
		if _, _, err := decodeCursor(bad); err == nil {
			t.Errorf("decodeCursor(%q) accepted", bad)
		}
	}
}

func FuzzDecodeCursor(f *testing.F) {
	for _, c := range cursorCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, c string) {
		ts, id, err := decodeCursor(c)
		if err != nil || ts == nil {
			return
		}
		// Anything accepted re-encodes to a cursor that decodes the same.
		ts2, id2, err := decodeCursor(encodeCursor(*ts, *id))
		if err != nil || !ts2.Equal(*ts) || *id2 != *id {
			t.Fatalf("%q: re-encode mismatch", c)
		}
	})
}

func TestCacheRefusesAStaleLoad(t *testing.T) {
	t.Parallel()
	c := NewCache(10)
	c.EnableWithoutListener()
	key := "k"
	stale := &subjectState{id: 1, purposes: map[string]policy.Stored{}}
	// A reader starts loading, an invalidation for the subject arrives, then
	// the reader tries to store what it loaded: the cache must refuse it.
	gen := c.generation()
	c.Notify(hex.EncodeToString([]byte(key)))
	c.put(key, stale, gen)
	if _, ok := c.get(key); ok {
		t.Fatal("stale load cached after an invalidation")
	}
	c.put(key, stale, c.generation())
	if _, ok := c.get(key); !ok {
		t.Fatal("fresh load not cached")
	}
	c.Notify(hex.EncodeToString([]byte(key)))
	if _, ok := c.get(key); ok {
		t.Fatal("notify did not invalidate")
	}
}

func TestCacheIsOffWhileTheListenerIsDown(t *testing.T) {
	t.Parallel()
	c := NewCache(10)
	c.put("k", emptyState, c.generation())
	if c.Len() != 0 {
		t.Fatal("cache used before the listener connected")
	}
	c.Connected(true)
	c.put("k", emptyState, c.generation())
	c.Connected(false)
	if c.Len() != 0 {
		t.Fatal("cache kept entries after the listener dropped")
	}
	c.put("k", emptyState, c.generation())
	if c.Len() != 0 {
		t.Fatal("cache filled while the listener is down")
	}
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()
	c := NewCache(3)
	c.EnableWithoutListener()
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		c.put(k, emptyState, c.generation())
	}
	if c.Len() != 3 {
		t.Fatalf("len %d", c.Len())
	}
}
