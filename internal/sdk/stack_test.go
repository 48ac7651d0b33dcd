package sdk_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/receipt"
	"github.com/steward-privacy/steward/internal/sdk"
	"github.com/steward-privacy/steward/internal/testutil"
	"github.com/steward-privacy/steward/policies"
)

// stack is Steward as `steward serve` wires its consent path (the real
// policy engine, consent service, API-key store and HTTP API over a fresh
// PostgreSQL database) on 127.0.0.1, and a product's web page on
// localhost: another origin, which the product's policy data lists, as a
// real deployment's would.
type stack struct {
	t       testing.TB
	steward string // http://127.0.0.1:port
	host    string // http://localhost:port, the product's site
	key     string // the publishable (sdk) key
	svc     *consent.Service
	holder  *policy.Holder
	overlay string
	logs    *testutil.SyncBuffer

	mu    sync.Mutex
	pages map[string]string // host path -> HTML
}

// hostNonce is the host page's CSP nonce (a fixed one: the test pages are
// not a security boundary; the CSP is what is under test).
const hostNonce = "n0nce-for-the-host-page"

// hostCSP is a strict CSP a careful product would send: scripts only by
// nonce (and what they load, 'strict-dynamic'), no inline styles, fetches
// to Steward only.
func hostCSP(steward string) string {
	return "default-src 'none'; script-src 'nonce-" + hostNonce + "' 'strict-dynamic'; style-src 'self'; img-src 'self'; " +
		"connect-src " + steward + "; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

func newStack(t testing.TB) *stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := &stack{t: t, logs: &testutil.SyncBuffer{}, pages: map[string]string{}}

	// The product's site first: its origin goes into the policy data.
	hostLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hostSrv := &http.Server{Handler: http.HandlerFunc(s.serveHost), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hostSrv.Serve(hostLn) }()
	t.Cleanup(func() { _ = hostSrv.Close() })
	s.host = fmt.Sprintf("http://localhost:%d", hostLn.Addr().(*net.TCPAddr).Port)

	s.overlay = t.TempDir()
	s.setNotice("2.0")
	s.holder, err = policy.NewHolder(ctx, policy.OverlaySource(policies.FS, s.overlay), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}

	_, pool := dbtest.New(t)
	kr := keyring.NewRandom("k1")
	log := slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cache := consent.NewCache(1000)
	cache.EnableWithoutListener()
	s.svc = consent.NewService(pool, kr, s.holder, clock.Real{}, log, cache, consent.Options{})
	keys := apikey.NewStore(pool, clock.Real{}, nil)
	roles := map[string]bool{}
	for r := range s.holder.Current().Roles {
		roles[r] = true
	}
	if _, s.key, err = keys.Create(ctx, apikey.CreateInput{Name: "sdk-test", Role: "sdk"}, roles, "system:test"); err != nil {
		t.Fatal(err)
	}
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	signer, err := receipt.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	app := api.New(api.DefaultConfig(), api.Deps{Log: log, Consent: s.svc, Keys: keys, Receipts: signer})
	s.steward = serveFiber(t, app)
	return s
}

// serveFiber runs app on a loopback port until the test ends.
func serveFiber(t testing.TB, app *fiber.App) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.ShutdownWithTimeout(5 * time.Second) })
	return "http://" + ln.Addr().String()
}

// setNotice writes the overlay's products.json: the embedded products with
// the host's origin listed for web, and web's notice at version v.
func (s *stack) setNotice(v string) {
	s.t.Helper()
	raw, err := policies.FS.ReadFile("data/products.json")
	if err != nil {
		s.t.Fatal(err)
	}
	var products map[string]map[string]any
	if err := json.Unmarshal(raw, &products); err != nil {
		s.t.Fatal(err)
	}
	products["web"]["origins"] = []string{"https://nano-bananapro.com", s.host}
	products["web"]["notice_version"] = v
	out, _ := json.MarshalIndent(products, "", "  ")
	if err := os.MkdirAll(filepath.Join(s.overlay, "data"), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.overlay, "data", "products.json"), out, 0o644); err != nil {
		s.t.Fatal(err)
	}
	// A consent may name only a registered notice version: register this
	// one, with its text, as the operator publishing it would.
	// (the overlay's when an earlier change wrote one: versions accumulate)
	raw, err = os.ReadFile(filepath.Join(s.overlay, "data", "notices.json"))
	if err != nil {
		raw, err = policies.FS.ReadFile("data/notices.json")
	}
	if err != nil {
		s.t.Fatal(err)
	}
	var notices map[string]map[string]map[string]map[string]any
	if err := json.Unmarshal(raw, &notices); err != nil {
		s.t.Fatal(err)
	}
	if _, ok := notices["web"]["versions"][v]; !ok {
		change := "minor"
		if strings.SplitN(v, ".", 2)[0] != "2" {
			change = "major"
		}
		notices["web"]["versions"][v] = map[string]any{"effective": "2026-12-01", "change": change, "summary": "Test notice " + v, "languages": []string{"en"}}
		dir := filepath.Join(s.overlay, "notices", "web", v)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "en.md"), []byte("# Privacy policy "+v+"\n\nWhat changed in "+v+".\n"), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	out, _ = json.MarshalIndent(notices, "", "  ")
	if err := os.WriteFile(filepath.Join(s.overlay, "data", "notices.json"), out, 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// changeNotice publishes a new notice version, as an operator editing the
// policy data does; the holder reloads it as the watcher would.
func (s *stack) changeNotice(v string) {
	s.t.Helper()
	s.setNotice(v)
	changed, err := s.holder.Reload(context.Background())
	if err != nil || !changed {
		s.t.Fatalf("reload with notice %s: changed %v, %v", v, changed, err)
	}
}

func (s *stack) serveHost(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/marketing.js":
		// A third-party tag a gated <script src> loads.
		w.Header().Set("Content-Type", "text/javascript")
		_, _ = io.WriteString(w, "window.marketingRan = (window.marketingRan || 0) + 1;")
		return
	case "/favicon.ico":
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	page, ok := s.pages[r.URL.Path]
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", hostCSP(s.steward))
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, page)
}

// pageOpts is one host page: the language of its <html>, and what the
// SDK's script tag says.
type pageOpts struct {
	Lang   string
	Region string // data-region; "" leaves it out
	Src    string // the script URL; default: the current build's immutable URL on Steward
	Manual bool
}

var hostPage = template.Must(template.New("host").Parse(`<!doctype html>
<html lang="{{.Lang}}">
<head>
<meta charset="utf-8">
<title>Nano Banana Pro: a product page</title>
<script nonce="{{.Nonce}}">
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => window.cspViolations.push(e.violatedDirective + " " + e.blockedURI));
window.changes = [];
// The page may load before the SDK: the DOM event needs no steward object yet.
document.addEventListener("steward:consent", (e) => window.changes.push(e.detail.allowed));
</script>
<script src="{{.Src}}" integrity="{{.Integrity}}" crossorigin="anonymous" data-key="{{.Key}}" data-product="web"{{if .Region}} data-region="{{.Region}}"{{end}}{{if .Manual}} data-manual{{end}} nonce="{{.Nonce}}" async></script>
</head>
<body>
<header><a href="#main">Skip to the content</a></header>
<main id="main">
<h1>Make pictures with Nano Banana Pro</h1>
<p>Type a prompt, pick a style, and get an image in seconds.</p>
<p><button type="button" id="privacy-settings">Privacy settings</button></p>
</main>
<footer><p>© Nano Banana Pro</p></footer>
<script nonce="{{.Nonce}}">
document.getElementById("privacy-settings").addEventListener("click", () => window.steward && steward.consent.open());
</script>
<script type="text/plain" data-consent="analytics" nonce="{{.Nonce}}">window.analyticsRan = (window.analyticsRan || 0) + 1;</script>
<script type="text/plain" data-consent="functional" nonce="{{.Nonce}}">window.functionalRan = (window.functionalRan || 0) + 1;</script>
<script type="text/plain" data-consent="marketing" src="/marketing.js"></script>
<script type="text/plain" data-consent="model_training" nonce="{{.Nonce}}">window.trainingRan = (window.trainingRan || 0) + 1;</script>
<script type="text/plain" data-consent="analytics marketing" nonce="{{.Nonce}}">window.bothRan = (window.bothRan || 0) + 1;</script>
</body>
</html>
`))

// page puts a host page at path and returns its URL.
func (s *stack) page(path string, o pageOpts) string {
	s.t.Helper()
	if o.Lang == "" {
		o.Lang = "en"
	}
	cur := sdk.Current()
	if o.Src == "" {
		o.Src = s.steward + cur.URL()
	}
	var b strings.Builder
	err := hostPage.Execute(&b, map[string]any{
		"Lang": o.Lang, "Region": o.Region, "Src": o.Src, "Manual": o.Manual,
		"Integrity": cur.Integrity, "Key": s.key, "Nonce": hostNonce,
	})
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.pages[path] = b.String()
	s.mu.Unlock()
	return s.host + path
}

// ledger is the visitor's current consent state per purpose, from the
// consent service over the database.
func (s *stack) ledger(subject string) map[string]consent.PurposeState {
	s.t.Helper()
	subj, err := identity.Parse(subject)
	if err != nil {
		s.t.Fatalf("the SDK's subject %q: %v", subject, err)
	}
	ps, err := s.svc.Current(context.Background(), subj)
	if err != nil {
		s.t.Fatal(err)
	}
	out := map[string]consent.PurposeState{}
	for _, p := range ps {
		out[p.Purpose] = p
	}
	return out
}

// history is every event recorded for the visitor, newest first.
func (s *stack) history(subject string) []consent.Event {
	s.t.Helper()
	evs, _, err := s.svc.History(context.Background(), identity.MustParse(subject), "", 200)
	if err != nil {
		s.t.Fatal(err)
	}
	return evs
}

// waitLedger polls the ledger until want (purpose -> state) holds: the SDK
// records after the visitor's click returns.
func (s *stack) waitLedger(subject string, want map[string]string) map[string]consent.PurposeState {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := s.ledger(subject)
		ok := true
		for p, st := range want {
			if got[p].State != st {
				ok = false
			}
		}
		if ok {
			return got
		}
		if time.Now().After(deadline) {
			states := map[string]string{}
			for p, st := range got {
				states[p] = st.State
			}
			s.t.Fatalf("ledger for %s: %v, want %v\nsteward logs:\n%s", subject, states, want, s.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// optionalPurposes counts the web product's purposes a visitor chooses
// (every one but the essential ones): what the banner records on a choice.
func (s *stack) optionalPurposes() int {
	e := s.holder.Current()
	n := 0
	for _, p := range e.PurposesOf("web") {
		if !e.Purposes[p].Essential {
			n++
		}
	}
	return n
}
