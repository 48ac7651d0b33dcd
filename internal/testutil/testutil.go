// Package testutil holds helpers shared by the tests of several packages:
// a log buffer safe for concurrent writers, the module's root directory,
// and the published export schema.
//
// Only _test.go files import it; production code never does (a test of
// this package checks). Non-test code under connectors/ imports nothing
// from internal/ at all; connector test helpers meant for third-party
// authors live in connectors/connectortest instead.
package testutil

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// SyncBuffer is a bytes.Buffer safe for concurrent use, for collecting the
// log output of goroutines, replicas or a child process's two streams and
// asserting on it. The zero value is ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

var _ io.Writer = (*SyncBuffer)(nil)

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ModuleRoot is the directory holding the module's go.mod, found by walking
// up from the working directory (a test runs in its package's directory),
// so a test can reach repository files such as docs/ from any package.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testutil: no go.mod above the working directory")
		}
		dir = parent
	}
}

// ExportSchemaPath is the published JSON schema of an export package's
// data.json, relative to the module root.
const ExportSchemaPath = "docs/export-data.schema.json"

// ExportSchema compiles the published schema of data.json
// (ExportSchemaPath): draft 2020-12, with formats asserted.
func ExportSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join(ModuleRoot(t), filepath.FromSlash(ExportSchemaPath)))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", ExportSchemaPath, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("export-data.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("export-data.schema.json")
	if err != nil {
		t.Fatalf("%s: %v", ExportSchemaPath, err)
	}
	return s
}
