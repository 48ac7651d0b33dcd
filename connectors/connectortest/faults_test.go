package connectortest_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/steward-privacy/steward/connectors/connectortest"
)

func TestInjector(t *testing.T) {
	var in connectortest.Injector // the zero value is ready
	if err := in.Next(connectortest.OpErase); err != nil {
		t.Fatalf("Next with nothing injected: %v", err)
	}
	first, second := errors.New("first"), errors.New("second")
	in.Inject(connectortest.OpErase, first)
	in.Inject(connectortest.OpErase, second)
	if err := in.Next(connectortest.OpAccess); err != nil {
		t.Errorf("a failure injected for erase reached access: %v", err)
	}
	if err := in.Next(connectortest.OpErase); err != second {
		t.Errorf("Next after two injections: %v, want the second", err)
	}
	if err := in.Next(connectortest.OpErase); err != nil {
		t.Errorf("a failure was handed out twice: %v", err)
	}
	in.Inject(connectortest.OpRestrict, first)
	in.Inject(connectortest.OpRestrict, nil)
	if err := in.Next(connectortest.OpRestrict); err != nil {
		t.Errorf("Inject(op, nil) did not clear the pending failure: %v", err)
	}

	// Concurrent callers: each injected failure is handed out exactly once.
	ops := []string{connectortest.OpResolve, connectortest.OpAccess, connectortest.OpErase, connectortest.OpRectify, connectortest.OpRestrict}
	for _, op := range ops {
		in.Inject(op, first)
	}
	var mu sync.Mutex
	got := 0
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			if in.Next(ops[i%len(ops)]) != nil {
				mu.Lock()
				got++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got != len(ops) {
		t.Errorf("%d failures handed out, want %d", got, len(ops))
	}
}

func ExampleInjector() {
	var faults connectortest.Injector
	faults.Inject(connectortest.OpErase, errors.New("disk full"))
	fmt.Println(faults.Next(connectortest.OpAccess))
	fmt.Println(faults.Next(connectortest.OpErase))
	fmt.Println(faults.Next(connectortest.OpErase))
	// Output:
	// <nil>
	// disk full
	// <nil>
}
