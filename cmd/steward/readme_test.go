package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/dsar"
)

// TestREADMEWalkthrough runs the README's consent walkthrough, word for word,
// against a live replica, and checks each block's output for the lines the
// README promises ("# expect: ..."). A README that drifts from the API fails.
func TestREADMEWalkthrough(t *testing.T) {
	t.Parallel()
	readme := readDoc(t, "README.md")
	start := strings.Index(readme, "<!-- walkthrough:start -->")
	end := strings.Index(readme, "<!-- walkthrough:end -->")
	if start < 0 || end < start {
		t.Fatal("README has no walkthrough markers")
	}
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(readme[start:end], -1)
	if len(blocks) < 8 {
		t.Fatalf("walkthrough has %d sh blocks", len(blocks))
	}

	e := newEnv(t, nil)
	r := e.start()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "var"), 0o755); err != nil {
		t.Fatal(err)
	}
	demo := fmt.Sprintf("export STEWARD_URL=%s\nexport FRONTEND_KEY='%s'\nexport SDK_KEY='%s'\nexport ADMIN_KEY='%s'\nexport AUDITOR_KEY='%s'\nexport REVIEWER_KEY='%s'\n",
		r.base, e.keys["frontend"], e.keys["sdk"], e.keys["admin"], e.keys["auditor"], e.keys["reviewer"])
	writeFile(t, filepath.Join(dir, "var", "demo.env"), demo)

	// One shell for the whole walkthrough (variables carry over), with a
	// marker between blocks so each block's output can be checked alone.
	var script strings.Builder
	script.WriteString("set -eu\n")
	var expects [][]string
	for i, b := range blocks {
		var want []string
		for _, line := range strings.Split(b[1], "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "# expect: "); ok {
				want = append(want, v)
			}
		}
		expects = append(expects, want)
		fmt.Fprintf(&script, "%s\necho\necho '@@block %d@@'\n", b[1], i)
	}
	total := 0
	for _, w := range expects {
		total += len(w)
	}
	if total < 15 {
		t.Fatalf("walkthrough promises only %d outputs; the check would prove little", total)
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s", err, out)
	}
	rest := string(out)
	for i, want := range expects {
		marker := fmt.Sprintf("@@block %d@@", i)
		j := strings.Index(rest, marker)
		if j < 0 {
			t.Fatalf("block %d produced no marker; output:\n%s", i, out)
		}
		blockOut := rest[:j]
		rest = rest[j+len(marker):]
		for _, w := range want {
			if !strings.Contains(blockOut, w) {
				t.Errorf("README block %d: output lacks %q:\n%s\n--- block:\n%s", i, w, blockOut, blocks[i][1])
			}
		}
	}
}

// TestDocsConfigurationListsEveryVariable keeps the configuration table in
// docs/configuration.md complete.
func TestDocsConfigurationListsEveryVariable(t *testing.T) {
	t.Parallel()
	doc := readDoc(t, "docs/configuration.md")
	for _, v := range config.Vars {
		if !strings.Contains(doc, "| `"+v.Name+"` |") {
			t.Errorf("docs/configuration.md's table lacks %s", v.Name)
		}
	}
}

// TestDocsLifecycleDiagram keeps the state diagram in docs/privacy-requests.md
// generated from the lifecycle table.
func TestDocsLifecycleDiagram(t *testing.T) {
	t.Parallel()
	doc := readDoc(t, "docs/privacy-requests.md")
	if !strings.Contains(doc, "```mermaid\n"+dsar.Mermaid()+"```") {
		t.Fatal("docs/privacy-requests.md's lifecycle diagram differs from dsar.Mermaid(); paste its output")
	}
}

// readDoc reads a file by its path from the repository root.
func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
