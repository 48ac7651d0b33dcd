package testpeer

import (
	"fmt"
	"go/build"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// gopaths are the GOPATHs whose bin holds what `go install` put there; a
// variable so a test can point it elsewhere.
var gopaths = func() []string {
	var dirs []string
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = append(dirs, filepath.SplitList(strings.TrimSpace(string(out)))...)
	}
	dirs = append(dirs, filepath.SplitList(build.Default.GOPATH)...)
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go"))
	}
	return dirs
}

// findBinary looks for a peer's binary on PATH, then in each GOPATH's bin
// (where .ci/run's go install puts it, often not on PATH).
func findBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range gopaths() {
		if d == "" {
			continue
		}
		p := filepath.Join(d, "bin", name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or in GOPATH/bin", name)
}
