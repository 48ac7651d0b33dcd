package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
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

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/openapitest"
	"github.com/steward-privacy/steward/internal/testutil"
)

// env is one isolated database plus the configuration replicas share.
type env struct {
	t    testing.TB
	url  string
	pool *pgxpool.Pool
	cfg  config.Config
	keys map[string]string // role -> secret
	// vars is the environment the configuration was loaded from, for
	// CLI commands run against the same deployment.
	vars map[string]string
	// clock, if set, is the replicas' clock (default the real one).
	clock clock.Clock
	// listen, if set, is the address the next replica listens on (tests
	// that must put the public URL in the configuration before start).
	listen net.Listener
}

func randB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func newEnv(t testing.TB, extra map[string]string) *env {
	t.Helper()
	url, pool := dbtest.New(t)
	return newEnvAt(t, url, pool, extra)
}

// newEnvAt is newEnv on a migrated database the test provides (a private
// cluster the test may restart, for the database-fault tests).
func newEnvAt(t testing.TB, url string, pool *pgxpool.Pool, extra map[string]string) *env {
	t.Helper()
	vars := map[string]string{
		"DATABASE_URL":                url,
		"STEWARD_IDENTITY_KEYS":       "k1:" + randB64(32),
		"STEWARD_RECEIPT_SIGNING_KEY": randB64(32),
		"STEWARD_AUDIT_SIGNING_KEY":   randB64(32),
		"STEWARD_OUTBOX_POLL":         "1h", // tests drive the outbox with RunOnce
		// No scheduled sweeps: a suite running at 03:00 UTC must not sweep
		// the data its tests are checking. Tests fire a sweep themselves.
		"STEWARD_RETENTION_SCHEDULE": "off",
		"STEWARD_FILE_STORE":         "file://" + filepath.ToSlash(t.TempDir()),
		// Never the real Bot API from a test: a bot token in a test's
		// environment sends to a closed loopback port.
		"STEWARD_TELEGRAM_API_URL": "http://127.0.0.1:9",
		// Every test talks from 127.0.0.1 and the benchmarks far faster
		// than any client: limits that never bite, but the limiter still
		// runs. TestRateLimit sets low ones.
		"STEWARD_RATE_LIMIT_ADDRESS": "100000000",
		"STEWARD_RATE_LIMIT_KEYS":    "*:100000000",
	}
	if _, bench := t.(*testing.B); !bench {
		// The smallest pool the workers allow (10 + 2 + 2), not the
		// production 20: the suite runs several tests' replicas at once
		// against one server and its max_connections (100 by default),
		// and a burst past that is refused, which a replica answers with
		// 503 (a crash-harness run in CI saw exactly that). Benchmarks
		// keep the production size.
		vars["STEWARD_DATABASE_MAX_CONNS"] = "14"
	}
	for k, v := range extra {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, url: url, pool: pool, cfg: cfg, keys: map[string]string{}, vars: vars}
	for _, role := range []string{"sdk", "frontend", "reviewer", "admin", "auditor"} {
		var out bytes.Buffer
		if code := run(context.Background(), []string{"keys", "create", "--name", "test-" + role, "--role", role, "--quiet"}, &out, io.Discard, func(k string) string { return vars[k] }); code != 0 {
			t.Fatalf("keys create %s: exit %d", role, code)
		}
		e.keys[role] = strings.TrimSpace(out.String())
	}
	return e
}

// replica is one running Steward instance on a real loopback port.
type replica struct {
	t    testing.TB
	app  *application
	base string
	logs *testutil.SyncBuffer
	once sync.Once
}

// start runs a replica; prepare, if given, may add test-only routes before
// the server starts listening (fiber builds its routing tree at listen).
func (e *env) start(prepare ...func(*application)) *replica {
	e.t.Helper()
	cfg := e.cfg
	logs := &testutil.SyncBuffer{}
	// The production logger (logger.go): the access log the tests read is the one served.
	log := newLogger(logs, slog.LevelDebug)
	// Generous: start compiles and smoke-tests every policy, which on a
	// 2-core machine running the whole suite in parallel can take a while.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var clk clock.Clock = clock.Real{}
	if e.clock != nil {
		clk = e.clock
	}
	a, err := build(ctx, cfg, log, clk, needServer)
	if err != nil {
		e.t.Fatalf("new application: %v", err)
	}
	for _, p := range prepare {
		p(a)
	}
	return e.serve(a, logs)
}

func (e *env) serve(a *application, logs *testutil.SyncBuffer) *replica {
	e.t.Helper()
	ln := e.listen
	e.listen = nil
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			e.t.Fatal(err)
		}
	}
	a.start(context.Background())
	go func() { _ = a.http.Listener(ln) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.waitListening(ctx); err != nil {
		e.t.Fatal(err)
	}
	r := &replica{t: e.t, app: a, base: "http://" + ln.Addr().String(), logs: logs}
	e.t.Cleanup(func() { r.stop() })
	return r
}

func (r *replica) stop() {
	r.once.Do(func() {
		if err := r.app.shutdown(5 * time.Second); err != nil {
			r.t.Logf("shutdown: %v", err)
		}
	})
}

var (
	docOnce sync.Once
	doc     *openapitest.Doc
	docErr  error
	// exercised records which documented operations the tests called.
	exercised sync.Map
)

func openapiDoc(t testing.TB) *openapitest.Doc {
	docOnce.Do(func() { doc, docErr = openapitest.Load(api.OpenAPI) })
	if docErr != nil {
		t.Fatalf("openapi: %v", docErr)
	}
	return doc
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// problem decodes a problem+json body and checks its shape.
func (r resp) problem(t testing.TB) api.Problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content-type %q, want application/problem+json; body %s", ct, r.body)
	}
	var p api.Problem
	r.json(t, &p)
	if p.Status != r.status || p.Code == "" || p.Detail == "" || p.Type == "" || p.RequestID == "" {
		t.Fatalf("incomplete problem %+v", p)
	}
	return p
}

var client = &http.Client{Timeout: 20 * time.Second}

// do sends a request and validates the response against the OpenAPI
// document, so every test doubles as a contract test.
func (r *replica) do(method, path, key string, body any, headers ...string) resp {
	r.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			r.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, r.base+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		// Errorf, not Fatalf: do is called from subtests with the parent's
		// t, and FailNow on a parent from a subtest goroutine panics.
		r.t.Errorf("%s %s: %v", method, path, err)
		return resp{header: http.Header{}}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		r.t.Errorf("%s %s: read body: %v", method, path, err)
		return resp{status: res.StatusCode, header: res.Header}
	}
	if res.StatusCode >= 500 && !(path == "/readyz" && res.StatusCode == 503) {
		r.t.Errorf("%s %s: server error %d: %s", method, path, res.StatusCode, b)
	}
	if res.Header.Get("X-Request-ID") == "" {
		r.t.Errorf("%s %s: no X-Request-ID", method, path)
	}
	p := path
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	// Unknown routes and methods are, by definition, not in the document;
	// their problem bodies are checked by the tests that provoke them.
	undocumented := res.StatusCode == 404 && strings.HasPrefix(p, "/v1/nothing") || res.StatusCode == 405
	if err := openapiDoc(r.t).Validate(method, p, res.StatusCode, res.Header.Get("Content-Type"), b); err != nil && !undocumented {
		r.t.Errorf("response does not match openapi.json: %v\nbody: %s", err, b)
	}
	if op, err := openapiDoc(r.t).Operation(method, p); err == nil {
		exercised.Store(op, true)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

func countRows(t *testing.T, pool *pgxpool.Pool, table string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestMain fails the run if any documented operation was never called by a
// test: the contract check above only covers what the tests exercise.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && doc != nil && flag.Lookup("test.run").Value.String() == "" {
		var missing []string
		for _, op := range doc.Operations() {
			if _, ok := exercised.Load(op); !ok {
				missing = append(missing, op)
			}
		}
		if len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "documented operations no test exercised: %v\n", missing)
			code = 1
		}
	}
	os.Exit(code)
}

// raw sends a hand-written HTTP/1.1 request on its own connection and reads
// the response: for requests the server must refuse from their headers alone
// (an oversized Content-Length), where a client still writing the body could
// see the connection reset before it reads the answer.
func (r *replica) raw(t *testing.T, request string) resp {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}
