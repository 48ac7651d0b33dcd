package connectortest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/steward-privacy/steward/connectors"
)

func TestMemorySinkConcurrent(t *testing.T) {
	s := &MemorySink{}
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			f := []connectors.FieldValue{{Field: "n", Value: i}}
			if err := s.Record(ctx, connectors.Record{Dataset: "d", Key: "k", Fields: f}); err != nil {
				t.Error(err)
			}
			f[0].Value = "changed by the caller"
			if err := s.File(ctx, connectors.File{Name: "f"}, strings.NewReader("abc")); err != nil {
				t.Error(err)
			}
			_ = s.Records()
		})
	}
	wg.Wait()
	if len(s.Records()) != 50 || len(s.Files()) != 50 || s.Bytes() != 150 {
		t.Fatalf("received %d records, %d files, %d bytes", len(s.Records()), len(s.Files()), s.Bytes())
	}
	for _, r := range s.Records() {
		if _, ok := r.Fields[0].Value.(int); !ok {
			t.Fatalf("the sink shares the caller's slice: %v", r.Fields[0].Value)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Record(cctx, connectors.Record{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Record with a cancelled context: %v", err)
	}
	s.Reset()
	if len(s.Records()) != 0 || s.Bytes() != 0 {
		t.Errorf("Reset kept data")
	}
}
