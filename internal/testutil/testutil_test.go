package testutil

import (
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func TestSyncBufferConcurrent(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			fmt.Fprintf(&b, "line %d\n", i)
			_ = b.String()
		})
	}
	wg.Wait()
	out := b.String()
	if n := strings.Count(out, "\n"); n != 50 {
		t.Fatalf("%d lines written, want 50:\n%s", n, out)
	}
	for i := range 50 {
		if !strings.Contains(out, fmt.Sprintf("line %d\n", i)) {
			t.Errorf("line %d lost or torn:\n%s", i, out)
		}
	}
}

func TestModuleRoot(t *testing.T) {
	root := ModuleRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "module github.com/steward-privacy/steward\n") {
		t.Fatalf("%s/go.mod is not this module's", root)
	}
}

func TestExportSchema(t *testing.T) {
	s := ExportSchema(t)
	for _, doc := range []string{`{}`, `[]`, `{"format":"steward-export/2"}`} {
		inst, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(inst); err == nil {
			t.Errorf("the schema accepts %s", doc)
		}
	}
}

// TestOnlyTestsImport checks no production file of the module imports this
// package: its helpers call t.Fatal and read the repository's files.
func TestOnlyTestsImport(t *testing.T) {
	const self = "github.com/steward-privacy/steward/internal/testutil"
	root := ModuleRoot(t)
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return nil // another package's broken file is its own test's business
		}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == self {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s imports %s; only _test.go files may", rel, self)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
