package connectortest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
)

// Injector holds at most one pending failure per operation: the plumbing
// between Fixture.Inject and the connector under test. Pass its Inject
// method as Fixture.Inject, and have the connector call Next(op) at the
// start of each operation (op one of the Op constants), through a hook only
// its tests set, returning the error when there is one:
//
//	var faults connectortest.Injector
//	c.inject = faults.Next // a hook only tests set (e.g. from export_test.go)
//	connectortest.Run(t, connectortest.Fixture{Connector: c, Seed: seed, Inject: faults.Inject})
//
// A failure is handed out once: the next call of the operation fails, the
// one after runs normally. The zero value is ready to use, and an Injector
// is safe for concurrent use.
type Injector struct {
	mu      sync.Mutex
	pending map[string]error
}

// Inject makes the next Next(op) return err, replacing a failure still
// pending for op. A nil err clears it.
func (in *Injector) Inject(op string, err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if err == nil {
		delete(in.pending, op)
		return
	}
	if in.pending == nil {
		in.pending = map[string]error{}
	}
	in.pending[op] = err
}

// Next returns the failure pending for op and forgets it, or nil.
func (in *Injector) Next(op string) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	err := in.pending[op]
	delete(in.pending, op)
	return err
}

// cancelled checks every declared operation honours a cancelled context at
// once and changes nothing: the engine cancels tasks on shutdown and lease
// loss, and a task that carries on would race its retry.
func (r *runner) cancelled(t *testing.T) {
	s := r.seed(t)
	before, others := r.snapshot(t, s), s.others(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, op := range r.declared() {
		start := time.Now()
		err := r.call(ctx, op, s)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: want an error wrapping context.Canceled, got %v", op, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s with a cancelled context took %v to return", op, d)
		}
	}
	if after := r.snapshot(t, s); after != before {
		t.Errorf("operations with a cancelled context changed the subject's data")
	}
	if got := s.others(t); got != others {
		t.Errorf("other subjects' records: %d before, %d after", others, got)
	}
}

var errInjected = errors.New("connectortest: injected failure")

// errorClasses checks a failure keeps its classification on the way out of the
// connector: the engine retries a retryable one and fails the task at once
// on a permanent one.
func (r *runner) errorClasses(t *testing.T) {
	if r.f.Inject == nil {
		t.Skip("Fixture.Inject not set")
	}
	s := r.seed(t)
	ctx := context.Background()
	before, others := r.snapshot(t, s), s.others(t)
	for _, op := range r.declared() {
		r.f.Inject(op, connectors.Retryable(errInjected, time.Second))
		err := r.call(ctx, op, s)
		if !errors.Is(err, errInjected) {
			t.Errorf("%s after injecting a retryable error: want it, got %v", op, err)
		} else if retry, after := connectors.Classify(err); !retry || after != time.Second {
			t.Errorf("%s: injected retryable error (after 1s) classified retryable=%v after=%v", op, retry, after)
		}
		r.f.Inject(op, connectors.Permanent(errInjected))
		err = r.call(ctx, op, s)
		if !errors.Is(err, errInjected) {
			t.Errorf("%s after injecting a permanent error: want it, got %v", op, err)
		} else if retry, _ := connectors.Classify(err); retry {
			t.Errorf("%s: injected permanent error classified retryable", op)
		}
	}
	if after := r.snapshot(t, s); after != before {
		t.Errorf("failed operations changed the subject's data")
	}
	// An injection lasts one call.
	for _, op := range r.declared() {
		if err := r.call(ctx, op, s); err != nil {
			t.Errorf("%s after the injected failures: %v", op, err)
		}
	}
	if got := s.others(t); got != others {
		t.Errorf("other subjects' records: %d before, %d after", others, got)
	}
}
