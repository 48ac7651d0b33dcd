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
	"time"

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

func TestPairedAlternatesAndTakesTheMedian(t *testing.T) {
	var p Paired
	var order []string
	// The path takes 2, 4 and 8 units against the baseline's 2: ratios 1,
	// 0.5 and 0.25, median 0.5.
	costs := []time.Duration{2, 4, 8}
	i := 0
	p.Rounds(3, 10, func(n int) time.Duration {
		order = append(order, "path")
		c := costs[i]
		i++
		return c * time.Millisecond
	}, func(n int) time.Duration {
		order = append(order, "base")
		return 2 * time.Millisecond
	})
	if got := strings.Join(order, ","); got != "base,path,path,base,base,path" {
		t.Errorf("order %s: the rounds must alternate which goes first", got)
	}
	if r := p.Ratio(); r != 0.5 {
		t.Errorf("Ratio() = %v, want the median 0.5", r)
	}
	if p.Ops != 30 || p.Took != 14*time.Millisecond || p.BaseTook != 6*time.Millisecond {
		t.Errorf("totals %+v", p)
	}
	if path, base := p.Rates(); path != 30/0.014 || base != 30/0.006 {
		t.Errorf("Rates() = %v, %v", path, base)
	}
}
