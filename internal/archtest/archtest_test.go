package archtest_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/internal/testutil"
)

const module = "github.com/steward-privacy/steward"

// rule forbids packages matching from to import packages matching to,
// except those whose importer is listed in allow.
type rule struct {
	name     string
	from, to func(pkg string) bool
	allow    []string
}

func under(dir string) func(string) bool {
	return func(p string) bool { return p == module+"/"+dir || strings.HasPrefix(p, module+"/"+dir+"/") }
}

func is(pkgs ...string) func(string) bool {
	return func(p string) bool { return slices.Contains(pkgs, strings.TrimPrefix(p, module+"/")) }
}

var rules = []rule{
	{name: "the connector seam (third parties write against it) imports nothing from internal/", from: under("connectors"), to: under("internal")},
	{name: "the public data map and identity packages import nothing from internal/", from: func(p string) bool { return under("datamap")(p) || under("identity")(p) }, to: under("internal")},
	{name: "retention does not import the privacy-request engine (both register jobs in internal/jobs)", from: is("internal/retention"), to: is("internal/dsar")},
	{name: "the privacy-request engine does not import retention", from: is("internal/dsar"), to: is("internal/retention")},
	{name: "only the server's wiring imports the HTTP layer", from: func(string) bool { return true }, to: under("internal/api"), allow: []string{module + "/cmd/steward"}},
	{name: "nothing imports a command", from: func(string) bool { return true }, to: under("cmd")},
}

// TestLayering checks every rule on the non-test imports of every package
// of the module (tests may use internal test helpers).
func TestLayering(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is not on the PATH: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", "./...")
	cmd.Dir = testutil.ModuleRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	imports := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 {
			imports[f[0]] = f[1:]
		}
	}
	// The list is the module's, so the rules have something to check.
	for _, want := range []string{module + "/connectors/postgres", module + "/internal/retention", module + "/internal/dsar", module + "/cmd/steward"} {
		if _, ok := imports[want]; !ok {
			t.Fatalf("go list ./... has no %s: the rules would pass vacuously", want)
		}
	}
	for _, r := range rules {
		for pkg, deps := range imports {
			if !r.from(pkg) || slices.Contains(r.allow, pkg) {
				continue
			}
			for _, d := range deps {
				if r.to(d) && d != pkg {
					t.Errorf("%s: %s imports %s", r.name, pkg, d)
				}
			}
		}
	}
}

// The rules catch what they are written for: a connector importing an
// internal package, and retention importing dsar, are reported.
func TestRulesCatchViolations(t *testing.T) {
	t.Parallel()
	cases := []struct{ from, to string }{
		{module + "/connectors/postgres", module + "/internal/clock"},
		{module + "/connectors/connectortest", module + "/internal/testutil"},
		{module + "/datamap", module + "/internal/keyring"},
		{module + "/internal/retention", module + "/internal/dsar"},
		{module + "/internal/dsar", module + "/internal/api"},
		{module + "/internal/api", module + "/cmd/steward"},
	}
	for _, c := range cases {
		caught := false
		for _, r := range rules {
			caught = caught || (r.from(c.from) && !slices.Contains(r.allow, c.from) && r.to(c.to))
		}
		if !caught {
			t.Errorf("no rule forbids %s importing %s", c.from, c.to)
		}
	}
	if r := rules[0]; r.from(module+"/internal/connect") || r.to(module+"/connectors") {
		t.Error("the seam rule matches by path prefix only, not by directory")
	}
}
