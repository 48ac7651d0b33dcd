package connectortest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/steward-privacy/steward/connectors"
)

// MemorySink is a connectors.Sink that keeps what it receives in memory, for
// tests. It is safe for concurrent use: a connector may stream records from
// several goroutines.
type MemorySink struct {
	mu      sync.Mutex
	records []connectors.Record
	files   []SunkFile
	bytes   int64
}

// SunkFile is a file a MemorySink received, with its whole content.
type SunkFile struct {
	connectors.File
	Content []byte
}

var _ connectors.Sink = (*MemorySink)(nil)

// Record keeps a copy of r. It honours ctx the way a real sink (an archive
// being written to object storage) would.
func (s *MemorySink) Record(ctx context.Context, r connectors.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.Fields = slices.Clone(r.Fields)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, r)
	return nil
}

// File reads content to the end and keeps it.
func (s *MemorySink) File(ctx context.Context, f connectors.File, content io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := io.ReadAll(content)
	if err != nil {
		return fmt.Errorf("memory sink: read file content: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files = append(s.files, SunkFile{File: f, Content: b})
	s.bytes += int64(len(b))
	return nil
}

// Records returns a copy of the records received so far, in arrival order.
func (s *MemorySink) Records() []connectors.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]connectors.Record, len(s.records))
	for i, r := range s.records {
		r.Fields = slices.Clone(r.Fields)
		out[i] = r
	}
	return out
}

// Files returns a copy of the files received so far, in arrival order.
func (s *MemorySink) Files() []SunkFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SunkFile, len(s.files))
	for i, f := range s.files {
		f.Content = slices.Clone(f.Content)
		out[i] = f
	}
	return out
}

// Bytes is the total size of the file contents received.
func (s *MemorySink) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Reset forgets everything received.
func (s *MemorySink) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records, s.files, s.bytes = nil, nil, 0
}

// failingSink refuses everything with errSink: Access must pass the error on.
var errSink = errors.New("connectortest: sink failed")

type failingSink struct{}

func (failingSink) Record(context.Context, connectors.Record) error { return errSink }
func (failingSink) File(context.Context, connectors.File, io.Reader) error {
	return errSink
}
