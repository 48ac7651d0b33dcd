package consent

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/policies"
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

// validJurisdiction, which replaced the regexp on the check path, accepts
// exactly what the regexp accepts.
func TestValidJurisdictionMatchesRegexp(t *testing.T) {
	cases := []string{"", "D", "DE", "de", "DEU", "US-CA", "US-", "US-C", "US-CAL", "US-CALI", "US_CA", "GB-ENG", "FR-75", "FR-7Z9", "D1", "1D", "US-ca", "US--C", "ÄB", "US-C\x00", "DE\n"}
	for i := 0; i < 2000; i++ {
		b := make([]byte, i%7)
		for j := range b {
			b[j] = "AZaz09-_\x00Ä"[(i*7+j*13)%11]
		}
		cases = append(cases, string(b))
	}
	for _, c := range cases {
		if got, want := validJurisdiction(c), jurisdictionRe.MatchString(c); got != want {
			t.Errorf("validJurisdiction(%q) = %v, regexp says %v", c, got, want)
		}
	}
}

// productOf answers as the engine's ProductOf, and a new engine (a policy
// reload) is asked afresh rather than answered from the old one's index.
func TestProductOfRemembersPerEngine(t *testing.T) {
	load := func() *policy.Engine {
		eng, err := policy.Load(context.Background(), policies.FS)
		if err != nil {
			t.Fatal(err)
		}
		return eng
	}
	a, b := load(), load()
	s := &Service{}
	for _, eng := range []*policy.Engine{a, a, b, a} {
		for _, kind := range []string{"email", "tg", "visitor", "unknown-kind"} {
			if got, want := s.productOf(eng, kind), eng.ProductOf(kind); got != want {
				t.Fatalf("productOf(%s) = %q, ProductOf %q", kind, got, want)
			}
		}
		if idx := s.products.Load(); idx == nil || idx.eng != eng || len(idx.m) != 4 {
			t.Fatalf("index not rebuilt for the engine in force: %+v", idx)
		}
	}
}
