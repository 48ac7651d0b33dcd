package browsertest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/steward-privacy/steward/internal/browsertest"
)

// The harness itself: axe-core finds a real violation (an unlabelled input,
// an image without alt) and passes a clean page; TabTo walks focus the way
// a keyboard user does.
func TestHarness(t *testing.T) {
	pages := map[string]string{
		"/bad":  `<!doctype html><html><head><title>x</title></head><body><main><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><input type="text"></main></body></html>`,
		"/good": `<!doctype html><html lang="en"><head><title>ok</title></head><body><main><h1>Hi</h1><label for="a">Name</label><input id="a" name="a"><a href="#x" id="l">Next</a></main></body></html>`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(pages[r.URL.Path]))
	}))
	defer srv.Close()
	b := browsertest.Start(t)

	ctx := b.Tab(t)
	browsertest.Must(t, ctx, "open bad", chromedp.Navigate(srv.URL+"/bad"))
	rec := &recorder{TB: t}
	browsertest.Axe(rec, ctx, "/bad")
	all := strings.Join(rec.errs, "\n")
	for _, rule := range []string{"image-alt", "label", "html-has-lang"} {
		if !strings.Contains(all, rule) {
			t.Errorf("axe did not report %s on a page that breaks it; got:\n%s", rule, all)
		}
	}

	ctx = b.Tab(t)
	browsertest.Must(t, ctx, "open good", chromedp.Navigate(srv.URL+"/good"))
	browsertest.Axe(t, ctx, "/good")
	f := browsertest.TabTo(t, ctx, 5, "the link", func(f browsertest.Focused) bool { return f.ID == "l" })
	if f.Text != "Next" {
		t.Fatalf("focused link text %q", f.Text)
	}
}

// recorder collects Errorf calls instead of failing, to test a checker.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, strings.TrimSpace(fmtSprintf(format, args...)))
}

func fmtSprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
