package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/demo"
)

// walkthrough is the shell of a document between its walkthrough markers:
// the sh blocks in order, and the lines each block's output must contain
// (its "# expect: ..." comments).
type walkthrough struct {
	blocks  []string
	expects [][]string
}

func readWalkthrough(t *testing.T, doc string) walkthrough {
	t.Helper()
	text := readDoc(t, doc)
	start := strings.Index(text, "<!-- walkthrough:start -->")
	end := strings.Index(text, "<!-- walkthrough:end -->")
	if start < 0 || end < start {
		t.Fatalf("%s has no walkthrough markers", doc)
	}
	var w walkthrough
	for _, b := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(text[start:end], -1) {
		var want []string
		for _, line := range strings.Split(b[1], "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "# expect: "); ok {
				want = append(want, v)
			}
		}
		w.blocks = append(w.blocks, b[1])
		w.expects = append(w.expects, want)
	}
	return w
}

// promised counts the outputs the walkthrough checks.
func (w walkthrough) promised() int {
	n := 0
	for _, e := range w.expects {
		n += len(e)
	}
	return n
}

// run runs every block, word for word, in one bash (variables carry over)
// in dir with env, and checks each block's output for its expected lines.
func (w walkthrough) run(t *testing.T, dir string, env []string, timeout time.Duration) {
	t.Helper()
	var script strings.Builder
	script.WriteString("set -eu\n")
	for i, b := range w.blocks {
		fmt.Fprintf(&script, "%s\necho\necho '@@block %d@@'\n", b, i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = append(env, "LC_ALL=C")
	// Its own process group, so a server it starts and leaves is stopped.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	t.Cleanup(func() {
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	})
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("walkthrough failed: %v\n%s", err, out)
	}
	rest := string(out)
	for i, want := range w.expects {
		marker := fmt.Sprintf("@@block %d@@", i)
		j := strings.Index(rest, marker)
		if j < 0 {
			t.Fatalf("block %d produced no marker; output:\n%s", i, out)
		}
		blockOut := rest[:j]
		rest = rest[j+len(marker):]
		for _, line := range want {
			if !strings.Contains(blockOut, line) {
				t.Errorf("block %d: output lacks %q:\n%s\n--- block:\n%s", i, line, blockOut, w.blocks[i])
			}
		}
	}
}

// TestOwnDatabaseWalkthrough runs docs/own-database.md word for word: a
// new user's database scanned, mapped, overlaid on the embedded bundle,
// served, and one person's access and erasure, checked in the database.
func TestOwnDatabaseWalkthrough(t *testing.T) {
	t.Parallel()
	w := readWalkthrough(t, "docs/own-database.md")
	if len(w.blocks) < 8 || w.promised() < 15 {
		t.Fatalf("walkthrough has %d blocks promising %d outputs; the check would prove little", len(w.blocks), w.promised())
	}
	dir := t.TempDir()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	// What `make build` does for the server binary.
	if out, err := exec.Command(goTool, "build", "-o", filepath.Join(dir, "bin", "steward"), "github.com/steward-privacy/steward/cmd/steward").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.CopyFS(filepath.Join(dir, "docs", "examples"), os.DirFS("../../docs/examples")); err != nil {
		t.Fatal(err)
	}
	stewardURL, _ := dbtest.New(t)
	appDB := fmt.Sprintf("own_app_%d", time.Now().UnixNano())
	admin, err := pgx.Connect(context.Background(), dbtest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	_, err = admin.Exec(context.Background(), "CREATE DATABASE "+pgx.Identifier{appDB}.Sanitize())
	_ = admin.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dropDatabase(t, appDB) })
	appURL, err := demo.WithDatabaseName(dbtest.AdminURL(), appDB)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "DATABASE_URL=" + stewardURL, "APP_DB=" + appURL,
		"STEWARD_ADDR=" + freeAddrs(t, 1)[0]}
	w.run(t, dir, env, 3*time.Minute)

	// Beyond the page's own checks: the erasure changed no row of Bob's.
	pool, err := pgx.Connect(context.Background(), appURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close(context.Background())
	var bob string
	if err := pool.QueryRow(context.Background(), `SELECT concat_ws('|', c.email, c.full_name, c.phone, string_agg(o.total_cents || ':' || o.shipping_address, ',' ORDER BY o.id))
		FROM customers c JOIN orders o ON o.customer_id = c.id WHERE c.id = 2 GROUP BY c.id`).Scan(&bob); err != nil {
		t.Fatal(err)
	}
	if want := "bob@example.com|Bob Stone|+49 40 7654321|4200:Ring 5, 20095 Hamburg"; bob != want {
		t.Errorf("Bob after Ann's erasure: %q, want %q", bob, want)
	}
}
