package connectortest

import (
	"context"
	"errors"
	"testing"

	"github.com/steward-privacy/steward/connectors"
)

// capabilities checks Capabilities is stable and every undeclared operation
// refuses (ErrUnsupported or a permanent error) and changes nothing.
func (r *runner) capabilities(t *testing.T) {
	if again := r.c.Capabilities(); again != r.caps {
		t.Fatalf("Capabilities changed between calls: %+v then %+v", r.caps, again)
	}
	s := r.seed(t)
	before, others := r.snapshot(t, s), s.others(t)
	for _, op := range r.undeclared() {
		err := r.call(context.Background(), op, s)
		if err == nil {
			t.Errorf("%s is not declared but succeeded", op)
			continue
		}
		if retry, _ := connectors.Classify(err); retry && !errors.Is(err, connectors.ErrUnsupported) {
			t.Errorf("%s is not declared: want ErrUnsupported or a permanent error, got retryable %v", op, err)
		}
	}
	if after := r.snapshot(t, s); after != before {
		t.Errorf("undeclared operations changed the subject's data")
	}
	if got := s.others(t); got != others {
		t.Errorf("other subjects' records: %d before, %d after", others, got)
	}
}
