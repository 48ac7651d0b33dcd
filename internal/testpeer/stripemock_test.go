package testpeer

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func stripeGet(t *testing.T, base, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sk_test_123")
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Two simulators run side by side (test packages run in parallel), each
// validating requests against Stripe's specification, and Stop ends them.
func TestStripeMock(t *testing.T) {
	a, b := StripeMock(t), StripeMock(t)
	if a.URL() == b.URL() {
		t.Fatalf("two simulators share %s", a.URL())
	}
	for _, s := range []*StripeMockServer{a, b} {
		u, err := url.Parse(s.URL())
		if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Port() == "0" {
			t.Fatalf("URL %q: want http://127.0.0.1:PORT", s.URL())
		}
		if code, body := stripeGet(t, s.URL(), "/v1/customers?limit=1"); code != http.StatusOK || !isList(body) {
			t.Errorf("GET /v1/customers: %d %s", code, body)
		}
		// It validates: a parameter Stripe does not know is refused.
		if code, body := stripeGet(t, s.URL(), "/v1/customers?no_such_param=1"); code != http.StatusBadRequest {
			t.Errorf("GET /v1/customers?no_such_param=1: %d %s; want 400", code, body)
		}
	}
	if !strings.Contains(a.Output(), "Listening for HTTP") {
		t.Errorf("Output does not have the simulator's log: %q", a.Output())
	}

	a.Stop()
	a.Stop() // idempotent
	select {
	case <-a.done:
	default:
		t.Fatal("Stop returned with the process still running")
	}
	client := &http.Client{Timeout: 2 * time.Second}
	if resp, err := client.Get(a.URL() + "/v1/customers"); err == nil {
		resp.Body.Close()
		t.Errorf("stopped simulator still answers")
	}
	// b is unaffected.
	if code, _ := stripeGet(t, b.URL(), "/v1/customers?limit=1"); code != http.StatusOK {
		t.Errorf("the other simulator answers %d after the first stopped", code)
	}
}

// Without the binary, starting fails naming the install command; with it
// in a GOPATH's bin (not on PATH), it is found there.
func TestStripeMockNotFound(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	orig := binDirs
	t.Cleanup(func() { binDirs = orig })
	binDirs = func() []string { return []string{filepath.Join(dir, "bin")} }

	s, err := StartStripeMock()
	if err == nil {
		s.Stop()
		t.Fatal("StartStripeMock found a binary in an empty environment")
	}
	want := "stripe-mock not found: run make test (scripts/ensure-peers.sh installs it) or go install github.com/stripe/stripe-mock@v0.203.0"
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}

	bin := filepath.Join(dir, "bin", "stripe-mock")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := findBinary("stripe-mock"); err != nil || p != bin {
		t.Errorf("findBinary = %q, %v; want %s", p, err, bin)
	}
}

func isList(body string) bool {
	var v struct {
		Object string `json:"object"`
	}
	return json.Unmarshal([]byte(body), &v) == nil && v.Object == "list"
}
