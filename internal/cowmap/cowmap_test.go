package cowmap

import (
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// TestLoadOrAddOncePerKey: concurrent callers asking for the same keys see
// one value per key, made once, and the kept key is the one add returned.
func TestLoadOrAddOncePerKey(t *testing.T) {
	var m Map[string, *int]
	var made atomic.Int32
	var wg sync.WaitGroup
	got := make([][]*int, 8)
	for g := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				got[g] = append(got[g], m.LoadOrAdd(strconv.Itoa(i), func(k string) (string, *int) {
					made.Add(1)
					v := i
					return k, &v
				}))
			}
		}()
	}
	wg.Wait()
	if made.Load() != 100 || m.Len() != 100 {
		t.Fatalf("made %d values for %d keys, want 100 and 100", made.Load(), m.Len())
	}
	for g := range got {
		for i, v := range got[g] {
			if v != got[0][i] || *v != i {
				t.Fatalf("goroutine %d key %d: a different value (%d)", g, i, *v)
			}
		}
	}
	if _, ok := m.Load("100"); ok {
		t.Fatal("an absent key loads")
	}
}

// TestLoadAllocatesNothing is the reason for the package.
func TestLoadAllocatesNothing(t *testing.T) {
	type key struct {
		a, b string
		n    int
	}
	var m Map[key, int]
	m.LoadOrAdd(key{"x", "y", 1}, func(k key) (key, int) { return k, 7 })
	a, b := "x", "y"
	if n := testing.AllocsPerRun(100, func() {
		if v, _ := m.Load(key{a, b, 1}); v != 7 {
			t.Fatal(v)
		}
	}); n != 0 {
		t.Fatalf("Load allocates %.0f times", n)
	}
}
