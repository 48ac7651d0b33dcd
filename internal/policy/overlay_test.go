package policy_test

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/policies"
)

func writeOverlay(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// An overlay replaces the embedded files it has, keeps the rest, leaves
// the embedded Rego tests out and runs its own before the bundle serves.
func TestOverlaySource(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	products, err := fs.ReadFile(policies.FS, "data/products.json")
	if err != nil {
		t.Fatal(err)
	}
	mine := string(bytes.Replace(products, []byte(`"name": "Nano Banana Pro", "contact"`), []byte(`"name": "Example Shop GmbH", "contact"`), 1))
	if mine == string(products) {
		t.Fatal("the fixture edit changed nothing")
	}
	passing := "package mine_test\n\nimport rego.v1\n\ntest_web_controller if data.steward.products.web.controller.name == \"Example Shop GmbH\"\n"

	t.Run("your files replace the embedded ones and your tests run", func(t *testing.T) {
		t.Parallel()
		dir := writeOverlay(t, map[string]string{"data/products.json": mine, "mine_test.rego": passing, ".git/config": "x"})
		src := policy.OverlaySource(policies.FS, dir)
		fsys, err := src.Open()
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]bool{"mine_test.rego": true, "consent.rego": true, "consent_test.rego": false, "dsar_test.rego": false, ".git/config": false} {
			if _, err := fs.Stat(fsys, name); (err == nil) != want {
				t.Errorf("%s in the merged bundle: %v, want %v", name, err == nil, want)
			}
		}
		h, err := policy.NewHolder(ctx, src, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		if got := h.Current().Products["web"].Controller.Name; got != "Example Shop GmbH" {
			t.Errorf("controller %q, want the overlay's", got)
		}
		if !strings.Contains(h.Source(), dir) {
			t.Errorf("source %q does not name the overlay", h.Source())
		}
	})
	t.Run("a failing test of yours refuses the bundle, naming it", func(t *testing.T) {
		t.Parallel()
		dir := writeOverlay(t, map[string]string{"mine_test.rego": passing}) // the embedded controller name: fails
		_, err := policy.NewHolder(ctx, policy.OverlaySource(policies.FS, dir), slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "test_web_controller") {
			t.Fatalf("err = %v, want the failing test named", err)
		}
	})
	t.Run("an overlay of data alone needs no tests of its own", func(t *testing.T) {
		t.Parallel()
		dir := writeOverlay(t, map[string]string{"data/products.json": mine})
		if _, err := policy.NewHolder(ctx, policy.OverlaySource(policies.FS, dir), slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		// A whole bundle on disk without tests is still refused.
		full := writeOverlay(t, map[string]string{"consent.rego": "package steward.consent\n"})
		if _, err := policy.NewHolder(ctx, policy.DirSource(full), slog.New(slog.DiscardHandler)); err == nil {
			t.Error("a bundle directory without tests (or decisions) was accepted")
		}
	})
	t.Run("bad data is refused with the file named", func(t *testing.T) {
		t.Parallel()
		dir := writeOverlay(t, map[string]string{"data/products.json": `{"web": {"name": 1}}`})
		_, err := policy.NewHolder(ctx, policy.OverlaySource(policies.FS, dir), slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), "data/products.json") {
			t.Fatalf("err = %v, want data/products.json named", err)
		}
	})
	t.Run("an empty or missing directory is refused", func(t *testing.T) {
		t.Parallel()
		for _, dir := range []string{t.TempDir(), filepath.Join(t.TempDir(), "nope")} {
			if _, err := policy.OverlaySource(policies.FS, dir).Open(); err == nil || !strings.Contains(err.Error(), dir) {
				t.Errorf("overlay %s: err = %v", dir, err)
			}
		}
	})
}
