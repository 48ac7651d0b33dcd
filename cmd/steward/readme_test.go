package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/dsar"
)

// TestREADMEWalkthrough runs the README's consent walkthrough, word for word,
// against a live replica, and checks each block's output for the lines the
// README promises ("# expect: ..."). A README that drifts from the API fails.
func TestREADMEWalkthrough(t *testing.T) {
	t.Parallel()
	w := readWalkthrough(t, "README.md")
	if len(w.blocks) < 8 || w.promised() < 15 {
		t.Fatalf("walkthrough has %d blocks promising %d outputs; the check would prove little", len(w.blocks), w.promised())
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
	w.run(t, dir, os.Environ(), 2*time.Minute)
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
