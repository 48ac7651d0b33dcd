// Package browsertest drives a real Chromium for the tests of Steward's pages
// (the privacy center, the consent SDK, the staff console): one headless
// browser per test package, a fresh incognito-like browser context per test,
// axe-core (WCAG 2.1 AA) checks, keyboard helpers and screenshots.
//
// Chromium comes from Debian (`apt-get install -y chromium`) and axe-core
// from npm; scripts/ensure-peers.sh installs both when `make test` starts, so
// a missing browser is a failure here, never a skip. Only _test.go files
// import this package.
package browsertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Browser is one Chromium process shared by a test package's tests.
type Browser struct {
	alloc  context.Context
	cancel context.CancelFunc
	root   context.Context // the browser itself, started once
}

var (
	shared     *Browser
	sharedOnce sync.Once
	sharedErr  error
)

// ExecPath finds Chromium: $STEWARD_CHROMIUM, then the names Debian and
// others install it under.
func ExecPath() (string, error) {
	if p := os.Getenv("STEWARD_CHROMIUM"); p != "" {
		return p, nil
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium on PATH: run scripts/ensure-peers.sh (make test does), or set STEWARD_CHROMIUM")
}

// Start returns the package's browser, starting it on first use. The
// process ends when the test binary does (TestMain may call Close).
func Start(t testing.TB) *Browser {
	t.Helper()
	sharedOnce.Do(func() {
		path, err := ExecPath()
		if err != nil {
			sharedErr = err
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			// Tests run as root in CI containers, where Chromium's sandbox
			// cannot start; the pages under test are our own.
			chromedp.NoSandbox,
			chromedp.WindowSize(1280, 900),
			chromedp.Flag("lang", "en-US"),
			chromedp.Flag("disable-gpu", true),
		)
		alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
		root, _ := chromedp.NewContext(alloc)
		// Start the browser now, so the first test does not pay for it
		// inside its own timeout.
		if err := chromedp.Do(root, chromedp.Navigate("about:blank")); err != nil {
			cancel()
			sharedErr = fmt.Errorf("start chromium %s: %w", path, err)
			return
		}
		shared = &Browser{alloc: alloc, cancel: cancel, root: root}
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

// Close stops the browser (for TestMain; the process exit does it too).
func Close() {
	if shared != nil {
		shared.cancel()
	}
}

// Tab opens a tab in a new browser context (its own cookies and storage), so
// tests in parallel never share a session. The tab closes when the test ends.
func (b *Browser) Tab(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.root, chromedp.WithNewBrowserContext())
	// A guard against a hung browser, not a time limit on the flow: a long
	// flow (the console's reviewer signs in, works a request and checks a
	// dozen pages with axe) under -race on a loaded two-core machine took
	// over 90 s, which failed a correct test.
	ctx, cancelT := context.WithTimeout(ctx, 5*time.Minute)
	t.Cleanup(func() { cancelT(); cancel() })
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("open tab: %v", err)
	}
	return ctx
}

// Must runs actions and fails the test at the first error, naming what.
func Must(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression and decodes its result.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %q: %v", expr, err)
	}
	return v
}

// Text returns the visible text of the first element matching a CSS
// selector.
func Text(t testing.TB, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return strings.TrimSpace(s)
}

// Location is the tab's current URL.
func Location(t testing.TB, ctx context.Context) string {
	t.Helper()
	u, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatalf("location: %v", err)
	}
	return u
}

// AllowDownloads saves the tab's downloads into dir.
func AllowDownloads(t testing.TB, ctx context.Context, dir string) {
	t.Helper()
	_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior:         browser.SetDownloadBehaviorBehaviorAllow,
		BrowserContextID: chromedp.FromContext(ctx).BrowserContextID,
		DownloadPath:     dir,
	})
	if err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
}

// WaitFile waits until dir holds a complete file whose name ends in suffix
// (Chromium writes .crdownload until it finishes) and returns its path.
func WaitFile(t testing.TB, dir, suffix string, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), suffix) {
				return filepath.Join(dir, e.Name())
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no *%s downloaded into %s within %s", suffix, dir, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Focused describes document.activeElement: tag, id, name, text and its
// accessible label, for keyboard-only tests.
type Focused struct {
	Tag   string `json:"tag"`
	ID    string `json:"id"`
	Name  string `json:"name"`
	Text  string `json:"text"`
	Label string `json:"label"`
	Type  string `json:"type"`
	Href  string `json:"href"`
}

// Press sends keys (kb.Tab, kb.Enter, " ", text) to whatever has focus.
func Press(t testing.TB, ctx context.Context, keys string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.KeyEvent(keys)); err != nil {
		t.Fatalf("press %q: %v", keys, err)
	}
}

// Focus returns what has focus now.
func Focus(t testing.TB, ctx context.Context) Focused {
	t.Helper()
	return Eval[Focused](t, ctx, `(() => { const e = document.activeElement || document.body;
		const lab = e.labels && e.labels.length ? e.labels[0].innerText : (e.getAttribute('aria-label') || '');
		return {tag: e.tagName.toLowerCase(), id: e.id || '', name: e.getAttribute('name') || '',
			text: (e.innerText || e.value || '').trim().slice(0, 80), label: lab.trim(),
			type: e.getAttribute('type') || '', href: e.getAttribute('href') || ''}; })()`)
}

// TabTo presses Tab until match accepts the focused element (at most max
// presses) and returns it; it fails the test if focus never gets there,
// which is what a keyboard-only user would hit.
func TabTo(t testing.TB, ctx context.Context, max int, what string, match func(Focused) bool) Focused {
	t.Helper()
	var seen []string
	for range max {
		Press(t, ctx, kb.Tab)
		f := Focus(t, ctx)
		if match(f) {
			return f
		}
		seen = append(seen, fmt.Sprintf("%s#%s[%s]%q", f.Tag, f.ID, f.Name, f.Text))
	}
	t.Fatalf("keyboard: %s not reached in %d Tab presses; focus went %s", what, max, strings.Join(seen, " → "))
	return Focused{}
}

// Violation is one axe-core rule a page breaks.
type Violation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target []any  `json:"target"`
		HTML   string `json:"html"`
	} `json:"nodes"`
}

var (
	axeOnce sync.Once
	axeJS   string
	axeErr  error
)

// AxePath finds axe.min.js: $STEWARD_AXE_JS, then where
// scripts/ensure-peers.sh installs it.
func AxePath() (string, error) {
	if p := os.Getenv("STEWARD_AXE_JS"); p != "" {
		return p, nil
	}
	var dirs []string
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = append(dirs, filepath.Join(strings.TrimSpace(strings.SplitN(string(out), ":", 2)[0]), "share", "axe-core"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "share", "axe-core"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "node_modules", "axe-core", "axe.min.js")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("axe-core not found: run scripts/ensure-peers.sh (make test does), or set STEWARD_AXE_JS")
}

// Axe runs axe-core on the tab's current page with the WCAG 2.0/2.1 A and
// AA rules and fails the test listing every violation.
func Axe(t testing.TB, ctx context.Context, page string) {
	t.Helper()
	axeOnce.Do(func() {
		p, err := AxePath()
		if err != nil {
			axeErr = err
			return
		}
		b, err := os.ReadFile(p)
		axeJS, axeErr = string(b), err
	})
	if axeErr != nil {
		t.Fatal(axeErr)
	}
	// Injected through the DevTools protocol, so the page's own CSP (no
	// inline or foreign script) does not stand in the way.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](axeJS)); err != nil {
		t.Fatalf("inject axe-core: %v", err)
	}
	raw := Eval[string](t, ctx, `axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a','wcag2aa','wcag21a','wcag21aa']}, resultTypes: ['violations']}).then(r => JSON.stringify(r.violations))`)
	var vs []Violation
	if err := json.Unmarshal([]byte(raw), &vs); err != nil {
		t.Fatalf("axe result: %v", err)
	}
	for _, v := range vs {
		var where []string
		for _, n := range v.Nodes {
			where = append(where, fmt.Sprintf("%v %s", n.Target, trim(n.HTML, 160)))
		}
		t.Errorf("axe (WCAG 2.1 AA) on %s: %s [%s] %s\n\t%s", page, v.ID, v.Impact, v.Help, strings.Join(where, "\n\t"))
	}
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// ScreenshotDir is where Screenshot writes: $STEWARD_SCREENSHOTS (make
// screenshots points it at docs/screenshots), else var/screenshots under the
// module root.
func ScreenshotDir(moduleRoot string) string {
	if d := os.Getenv("STEWARD_SCREENSHOTS"); d != "" {
		return d
	}
	return filepath.Join(moduleRoot, "var", "screenshots")
}

// Screenshot writes a full-page PNG of the tab to dir/name.png.
func Screenshot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}
