package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const stewardModule = "github.com/steward-privacy/steward"

// notInServer are the packages made for tests and the demo deployment:
// the steward binary must link none of them. A path is matched when it
// contains one of these; see also the "fake" suffix in TestServerBinaryImports.
var notInServer = []string{
	"/stripefake", "/creemfake", "resendtest", "telegramtest",
	stewardModule + "/internal/demo", stewardModule + "/internal/refapp", stewardModule + "/internal/testpeer",
	stewardModule + "/internal/testutil", stewardModule + "/internal/db/dbtest", stewardModule + "/internal/openapitest",
	// The consent SDK is built by `go generate` and embedded prebuilt: its
	// bundler never ships.
	stewardModule + "/internal/sdk/sdkbuild", "github.com/evanw/esbuild",
}

// Third-party packages in the server's graph that the rules below would
// otherwise reject, and why they are there. Nothing of this module may be
// added here.
var (
	// testingImporters may import package testing.
	testingImporters = map[string]string{
		"github.com/gofiber/fiber/v2/utils":          "fiber, the HTTP server, keeps its AssertEqual(testing.TB, ...) helper in its utils package",
		"github.com/open-policy-agent/opa/v1/tester": "OPA's Rego test runner, which `steward policy test` runs",
	}
	// fakesAllowed may be linked although their paths say fake.
	fakesAllowed = map[string]string{
		"github.com/Azure/azure-sdk-for-go/sdk/azcore/internal/pollers/fake": "azcore/runtime's poller for Azure's fake servers, linked by the Azure SDK the object store connector uses",
	}
)

// TestServerBinaryImports: the steward server binary links no fake, no
// demo or test helper package and, but for the third-party importers
// listed in testingImporters, not package testing; the demo's fakes live
// in cmd/steward-demo (internal/demo), which does link them.
func TestServerBinaryImports(t *testing.T) {
	t.Parallel()
	server := listDeps(t, stewardModule+"/cmd/steward")
	// The list is the real one, not empty or some other package's.
	for _, want := range []string{stewardModule + "/cmd/steward", stewardModule + "/internal/api", stewardModule + "/internal/dsar"} {
		if _, ok := server[want]; !ok {
			t.Fatalf("go list -deps of cmd/steward has no %s: the check would pass vacuously", want)
		}
	}
	for pkg, imports := range server {
		if slices.Contains(imports, "testing") {
			if _, ok := testingImporters[pkg]; !ok || strings.HasPrefix(pkg, stewardModule) {
				t.Errorf("the steward binary links package testing through %s", pkg)
			}
		}
		if _, ok := fakesAllowed[pkg]; ok && !strings.HasPrefix(pkg, stewardModule) {
			continue
		}
		if strings.HasSuffix(pkg, "fake") || slices.ContainsFunc(notInServer, func(bad string) bool { return strings.Contains(pkg, bad) }) {
			t.Errorf("the steward binary links %s (imported by %s)", pkg, importers(server, pkg))
		}
	}

	demoBin := listDeps(t, stewardModule+"/cmd/steward-demo")
	for _, want := range []string{stewardModule + "/internal/demo", stewardModule + "/connectors/stripe/stripefake", stewardModule + "/connectors/creem/creemfake"} {
		if _, ok := demoBin[want]; !ok {
			t.Errorf("go list -deps of cmd/steward-demo has no %s", want)
		}
	}
}

// listDeps is `go list -deps` of pkg (its build, not its tests): every
// package it links, each with the packages it imports.
func listDeps(t *testing.T, pkg string) map[string][]string {
	t.Helper()
	// go test puts its own GOROOT/bin first on the PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is not on the PATH: %v", err)
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", pkg)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, stderr)
	}
	deps := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) > 0 {
			deps[f[0]] = f[1:]
		}
	}
	return deps
}

// importers lists the packages of deps that import pkg.
func importers(deps map[string][]string, pkg string) string {
	var by []string
	for p, imports := range deps {
		if slices.Contains(imports, pkg) {
			by = append(by, p)
		}
	}
	slices.Sort(by)
	return strings.Join(by, ", ")
}
