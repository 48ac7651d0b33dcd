package testpeer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// StripeMockInstall is how to get the stripe-mock binary; the tests name it
// when the binary is missing.
const StripeMockInstall = "go install github.com/stripe/stripe-mock@v0.203.0"

// ErrStripeMockNotFound is returned by StartStripeMock when no stripe-mock
// binary is found.
var ErrStripeMockNotFound = errors.New("stripe-mock not found: run make test (scripts/ensure-peers.sh installs it) or " + StripeMockInstall)

// StripeMockServer is a running stripe-mock: Stripe's API simulator, which
// checks every request against Stripe's OpenAPI specification (unknown or
// malformed parameters answer 400, as Stripe would) and answers with canned
// objects. It keeps no state.
type StripeMockServer struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}  // closed when the process has exited
	out  *stripeMockLog // the simulator's output, for failure reports
	stop sync.Once
}

// URL is the simulator's base URL (http://127.0.0.1:PORT), for a Stripe
// client's backend URL.
func (s *StripeMockServer) URL() string { return s.url }

// Output is what the simulator printed so far (its request log).
func (s *StripeMockServer) Output() string { return s.out.String() }

// StripeMock starts stripe-mock for the test and stops it when the test
// ends. A missing binary fails the test, naming the command that installs
// it: a connector test that quietly did not run would hide a broken API
// call.
func StripeMock(t testing.TB) *StripeMockServer {
	t.Helper()
	s, err := StartStripeMock()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartStripeMock starts stripe-mock on loopback ports the system chooses
// (so parallel test packages never collide) and waits until it answers.
// The caller must Stop it; TestMain uses it to share one per package.
func StartStripeMock() (*StripeMockServer, error) {
	bin, err := findBinary("stripe-mock")
	if err != nil {
		return nil, ErrStripeMockNotFound
	}
	// Port 0 for both listeners: stripe-mock also serves HTTPS, on a fixed
	// port by default, which a second instance could not bind. It prints
	// the addresses it bound.
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0")
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start stripe-mock (%s): %w", bin, err)
	}
	s := &StripeMockServer{cmd: cmd, done: make(chan struct{}), out: &stripeMockLog{}}
	go func() {
		_ = cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			s.out.add(line)
			if a, ok := strings.CutPrefix(line, "Listening for HTTP at address: "); ok && !sent {
				addr <- strings.TrimSpace(a)
				sent = true
			}
		}
		// Keep draining whatever is left so the child never blocks on a
		// full pipe.
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case a := <-addr:
		s.url = "http://" + a
	case <-s.done:
		return nil, fmt.Errorf("stripe-mock exited before listening:\n%s", s.Output())
	case <-time.After(30 * time.Second):
		s.Stop()
		return nil, fmt.Errorf("stripe-mock did not report its address within 30s:\n%s", s.Output())
	}
	if err := s.wait(30 * time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// wait polls until the simulator answers an API request.
func (s *StripeMockServer) wait(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequest(http.MethodGet, s.url+"/v1/customers?limit=1", nil)
		req.Header.Set("Authorization", "Bearer sk_test_123")
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		select {
		case <-s.done:
			return fmt.Errorf("stripe-mock exited:\n%s", s.Output())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stripe-mock at %s did not answer within %v (%v):\n%s", s.url, limit, err, s.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the simulator and waits for it to exit.
func (s *StripeMockServer) Stop() {
	s.stop.Do(func() {
		select {
		case <-s.done:
			return
		default:
		}
		_ = s.cmd.Process.Kill()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
		}
	})
}

// stripeMockLog keeps the first 64 KiB of the simulator's output.
type stripeMockLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *stripeMockLog) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len()+len(line)+1 <= 64<<10 {
		l.b.WriteString(line)
		l.b.WriteByte('\n')
	}
}

func (l *stripeMockLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.TrimSpace(l.b.String())
}
