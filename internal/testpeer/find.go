package testpeer

import (
	"fmt"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// binDirs are the directories where `go install` puts binaries — GOBIN when
// set, else each GOPATH's bin — which are often not on PATH; a variable so a
// test can point it elsewhere.
var binDirs = func() []string {
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); d != "" {
			dirs = append(dirs, d)
		}
	}
	var gopaths []string
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		gopaths = append(gopaths, filepath.SplitList(strings.TrimSpace(string(out)))...)
	}
	gopaths = append(gopaths, filepath.SplitList(build.Default.GOPATH)...)
	if home, err := os.UserHomeDir(); err == nil {
		gopaths = append(gopaths, filepath.Join(home, "go"))
	}
	for _, d := range gopaths {
		if d != "" {
			dirs = append(dirs, filepath.Join(d, "bin"))
		}
	}
	return dirs
}

// findBinary looks for a peer's binary on PATH, then in GOBIN or each
// GOPATH's bin (where scripts/ensure-peers.sh installs it).
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range binDirs() {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH, in GOBIN or in GOPATH/bin", name)
}
