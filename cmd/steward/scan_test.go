package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/refapp"
)

// TestDatamapScan runs `steward datamap scan` against the reference web
// schema: the draft is the connector package's golden file, byte for byte.
func TestDatamapScan(t *testing.T) {
	t.Parallel()
	url, pool := dbtest.New(t)
	if err := refapp.CreateSchema(context.Background(), pool, "app", refapp.Web); err != nil {
		t.Fatal(err)
	}
	golden, err := os.ReadFile("../../connectors/postgres/testdata/scan_web.golden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}

	t.Run("writes the draft to standard output", func(t *testing.T) {
		code, out, errs := runCLI(t, env, "datamap", "scan", "--postgres", url, "--schema", "app")
		if code != 0 || out != string(golden) {
			t.Fatalf("%d %q\n%s", code, errs, out)
		}
	})
	t.Run("--out writes a new file and never overwrites one", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "draft.yaml")
		code, out, errs := runCLI(t, env, "datamap", "scan", "--postgres", url, "--schema", "app", "--system", "app_db", "--out", path)
		if code != 0 || !strings.Contains(out, "wrote a draft data map of 23 tables") {
			t.Fatalf("%d %q %q", code, out, errs)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != string(golden) {
			t.Fatalf("%v\n%s", err, b)
		}
		code, _, errs = runCLI(t, env, "datamap", "scan", "--postgres", url, "--schema", "app", "--out", path)
		if code != 1 || !strings.Contains(errs, "already exists") {
			t.Fatalf("%d %q", code, errs)
		}
		if b, _ := os.ReadFile(path); string(b) != string(golden) {
			t.Fatal("the existing file was changed")
		}
	})
	t.Run("--system and --name name the system", func(t *testing.T) {
		code, out, errs := runCLI(t, env, "datamap", "scan", "--postgres", url, "--schema", "app", "--system", "web_db", "--name", "Web database")
		if code != 0 || !strings.Contains(out, "\n  web_db:\n    name: \"Web database\"\n") || !strings.Contains(out, "to: web_db.users.id}") {
			t.Fatalf("%d %q\n%s", code, errs, out)
		}
	})
	t.Run("a schema with no tables is an error", func(t *testing.T) {
		code, out, errs := runCLI(t, env, "datamap", "scan", "--postgres", url, "--schema", "nope")
		if code != 1 || out != "" || !strings.Contains(errs, `steward datamap: schema "nope" has no tables`) {
			t.Fatalf("%d %q %q", code, out, errs)
		}
	})
	t.Run("an unreachable database fails fast without leaking the password", func(t *testing.T) {
		start := time.Now()
		code, out, errs := runCLI(t, env, "datamap", "scan", "--postgres", "postgres://postgres:s3cret@127.0.0.1:1/app?sslmode=disable")
		if code != 1 || out != "" || !strings.Contains(errs, "steward datamap: connect to the database to scan") || strings.Contains(errs, "s3cret") {
			t.Fatalf("%d %q %q", code, out, errs)
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Fatalf("took %v", d)
		}
	})
	t.Run("a malformed DSN is an error", func(t *testing.T) {
		code, _, errs := runCLI(t, env, "datamap", "scan", "--postgres", "postgres://postgres:s3cret@127.0.0.1:notaport/app")
		if code != 1 || !strings.Contains(errs, "steward datamap: --postgres:") || strings.Contains(errs, "s3cret") {
			t.Fatalf("%d %q", code, errs)
		}
	})
	t.Run("--help prints the scan's own usage and flags", func(t *testing.T) {
		for _, args := range [][]string{
			{"datamap", "scan", "--help"},
			{"datamap", "scan", "-h"},
			{"datamap", "scan", "--postgres", url, "--help"},
			{"datamap", "scan", "help"},
			{"datamap", "--help"},
		} {
			code, out, errs := runCLI(t, env, args...)
			if code != 0 || errs != "" {
				t.Errorf("%v: exit %d, stderr %q", args, code, errs)
			}
			for _, want := range []string{"Usage: steward datamap scan --postgres DSN", "-postgres", "-schema", "-system", "-name", "-out",
				"the schema whose tables to scan", `(default "public")`, "never overwritten"} {
				if !strings.Contains(out, want) {
					t.Errorf("%v: the help does not say %q:\n%s", args, want, out)
				}
			}
			// Only the scan's usage, not the general one.
			if strings.Contains(out, "steward serve") || strings.Contains(out, "steward migrate") {
				t.Errorf("%v: the general usage was printed:\n%s", args, out)
			}
		}
	})
	t.Run("usage errors", func(t *testing.T) {
		for _, args := range [][]string{
			{"datamap"},
			{"datamap", "draw"},
			{"datamap", "scan"},
			{"datamap", "scan", "--postgres", url, "extra"},
			{"datamap", "scan", "--postgres", url, "--system", "App DB"},
			{"datamap", "scan", "--postgres", url, "--schema", ""},
			{"datamap", "scan", "--nope"},
		} {
			if code, out, errs := runCLI(t, env, args...); code != 2 || out != "" || !strings.Contains(errs, "steward datamap: ") || !strings.Contains(errs, "Usage:") {
				t.Errorf("%v: %d %q %q", args, code, out, errs)
			}
		}
	})
}
