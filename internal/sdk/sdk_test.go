package sdk_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/steward-privacy/steward/internal/sdk"
	"github.com/steward-privacy/steward/internal/sdk/sdkbuild"
)

// gzipBudget is the promise: the SDK, gzipped, under 10 KB.
const gzipBudget = 10 * 1024

// TestDistIsFresh rebuilds the SDK from src/ with the pinned esbuild and
// fails when the committed, embedded dist/ differs: a TypeScript change
// must ship with its build (`go generate ./internal/sdk`).
func TestDistIsFresh(t *testing.T) {
	t.Parallel()
	if err := sdk.Err(); err != nil {
		t.Fatal(err)
	}
	js, err := sdkbuild.Build(".")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(js, sdk.Current().Body) {
		t.Fatalf("dist/steward-consent.js (%d bytes) is not what src/ builds to (%d bytes): run `go generate ./internal/sdk` and commit dist/", len(sdk.Current().Body), len(js))
	}
	if sdk.Current().Name != sdkbuild.ArchiveName(js) {
		t.Fatalf("the served name %s is not the build's %s", sdk.Current().Name, sdkbuild.ArchiveName(js))
	}
	src, err := os.ReadFile(sdkbuild.Typings)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(src, sdk.Typings()) {
		t.Fatal("dist/steward-consent.d.ts differs from src/steward-consent.d.ts: run `go generate ./internal/sdk`")
	}
	if _, err := os.Stat(filepath.Join("dist", "archive", sdk.Current().Name)); err != nil {
		t.Fatalf("the current build is not archived: %v", err)
	}
}

// TestSizeBudget: under 10 KB gzipped, as served.
func TestSizeBudget(t *testing.T) {
	t.Parallel()
	cur := sdk.Current()
	t.Logf("steward-consent.js: %d bytes, %d gzipped (budget %d)", len(cur.Body), len(cur.Gzip), gzipBudget)
	if len(cur.Gzip) >= gzipBudget {
		t.Fatalf("the SDK is %d bytes gzipped; the budget is %d", len(cur.Gzip), gzipBudget)
	}
}

// TestDocsNameTheCurrentBuild: the embed snippet in docs/consent-sdk.md
// names the current build's URL and integrity, so copying it works.
func TestDocsNameTheCurrentBuild(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "consent-sdk.md"))
	if err != nil {
		t.Fatal(err)
	}
	cur := sdk.Current()
	for _, want := range []string{cur.URL(), `integrity="` + cur.Integrity + `"`} {
		if !bytes.Contains(doc, []byte(want)) {
			t.Errorf("docs/consent-sdk.md's snippet lacks %s: paste the current build's (GET /sdk/v1/manifest.json)", want)
		}
	}
}
