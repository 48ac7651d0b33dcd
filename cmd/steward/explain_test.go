package main

import (
	"flag"
	"os"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestPolicyExplainGolden pins what an erasure under CCPA does to every
// field of the reference data map. A policy or data-map change that alters
// any field's fate shows up as a diff here; regenerate with
// `go test ./cmd/steward -run TestPolicyExplainGolden -args -update` and review it.
func TestPolicyExplainGolden(t *testing.T) {
	t.Parallel()
	code, out, errs := runCLI(t, map[string]string{}, "policy", "explain", "--request", "erasure", "--regime", "ccpa")
	if code != 0 {
		t.Fatalf("%d %s", code, errs)
	}
	// The revision changes with any edit to the bundle; the golden file is
	// about each field's decision.
	out = regexp.MustCompile(`policy revision [0-9a-f]{16}`).ReplaceAllString(out, "policy revision <revision>")
	golden := "testdata/explain_erasure_ccpa.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if out != string(want) {
		gl, ol := strings.Split(string(want), "\n"), strings.Split(out, "\n")
		for i := 0; i < len(gl) && i < len(ol); i++ {
			if gl[i] != ol[i] {
				t.Fatalf("explain output differs from %s at line %d:\nwant: %s\ngot:  %s", golden, i+1, gl[i], ol[i])
			}
		}
		t.Fatalf("explain output differs from %s in length: %d vs %d lines", golden, len(gl), len(ol))
	}
	for _, must := range []string{"app_db.invoices.", "retain", "erasure_exception_legal_obligation", "delete"} {
		if !strings.Contains(out, must) {
			t.Errorf("explain output lacks %q", must)
		}
	}
}

func TestPolicyExplainRefusesBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"policy", "explain"},
		{"policy", "explain", "--request", "delete-everything"},
		{"policy", "explain", "--request", "erasure", "--format", "xml"},
	} {
		if code, _, errs := runCLI(t, map[string]string{}, args...); code != 2 || !strings.Contains(errs, "--") {
			t.Errorf("%v: %d %q", args, code, errs)
		}
	}
}
