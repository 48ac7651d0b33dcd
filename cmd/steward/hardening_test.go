package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBadInputTextAndIDsOnAWholeReplica: the two inputs the review found
// answering 500 — a NUL in a legal hold's reason (PostgreSQL refuses it)
// and an upper-case request id when revealing identities (the sealing
// bound the id as written) — are a 400 that writes nothing and a 200.
func TestBadInputTextAndIDsOnAWholeReplica(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.start()
	reviewer := e.keys["reviewer"]

	before := countRows(t, e.pool, "legal_holds")
	for _, body := range []string{`{"reason":"litigation\u0000","subject":"tg:5550100"}`, "{\"reason\":\"bad \xff\",\"subject\":\"tg:5550100\"}"} {
		res := r.do("POST", "/v1/legal-holds", reviewer, body)
		if res.status != 400 {
			t.Fatalf("hold with a bad reason: %d %s", res.status, res.body)
		}
		if p := res.problem(t); len(p.Errors) != 1 || p.Errors[0].Field != "reason" {
			t.Errorf("problem does not name reason: %s", res.body)
		}
	}
	if after := countRows(t, e.pool, "legal_holds"); after != before {
		t.Errorf("bad holds wrote %d rows", after-before)
	}

	res := r.do("POST", "/v1/privacy-requests", e.keys["frontend"],
		map[string]any{"type": "access", "subject": "tg:5550101", "region": "GB", "channel": "bot", "identity_asserted": true})
	if res.status != 201 {
		t.Fatalf("create: %d %s", res.status, res.body)
	}
	var c struct {
		Request struct {
			ID string `json:"id"`
		} `json:"request"`
	}
	res.json(t, &c)
	for _, id := range []string{c.Request.ID, strings.ToUpper(c.Request.ID)} {
		res := r.do("POST", "/v1/privacy-requests/"+id+"/identities", reviewer, nil)
		if res.status != 200 || !strings.Contains(string(res.body), "tg:5550101") {
			t.Errorf("reveal with %s: %d %s", id, res.status, res.body)
		}
		if res.header.Get("Cache-Control") != "no-store" || res.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("reveal headers: %v", res.header)
		}
	}
}

// cutProxy is a TCP proxy to PostgreSQL that a test can cut: while cut,
// it closes every connection it carries and every new one at once, as a
// database that went away would look to Steward.
type cutProxy struct {
	ln       net.Listener
	upstream string
	mu       sync.Mutex
	cut      bool
	conns    map[net.Conn]bool
}

func newCutProxy(t *testing.T, upstream string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, upstream: upstream, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { _ = ln.Close(); p.setCut(true) })
	go p.serve()
	return p
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.carry(c)
	}
}

func (p *cutProxy) carry(c net.Conn) {
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		_ = c.Close()
		return
	}
	p.mu.Unlock()
	u, err := net.DialTimeout("tcp", p.upstream, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		_, _ = c.Close(), u.Close()
		return
	}
	p.conns[c], p.conns[u] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
	<-done
	_, _ = c.Close(), u.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, u)
	p.mu.Unlock()
}

func (p *cutProxy) setCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for c := range p.conns {
			_ = c.Close()
		}
		p.conns = map[net.Conn]bool{}
	}
}

// TestOutageAnswers503AndRecovers: a replica whose database goes away
// answers 503 with Retry-After (not 500 "internal") and fails /readyz;
// when the database is back it serves again by itself, within seconds.
// The database is cut by a proxy in front of the shared server (the
// server itself is never stopped).
func TestOutageAnswers503AndRecovers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	u, err := url.Parse(e.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()
	e.cfg.DatabaseURL = u.String()
	r := e.start()
	auditor := e.keys["auditor"]

	get := func(path string) (int, http.Header, string) {
		req, _ := http.NewRequest("GET", r.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+auditor)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		res, err := client.Do(req.WithContext(ctx))
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return 0, http.Header{}, "timeout"
			}
			t.Fatalf("GET %s: %v", path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header, string(b)
	}
	paths := []string{"/v1/legal-holds", "/v1/privacy-requests", "/v1/admin/audit?limit=1"}
	for _, p := range paths {
		if st, _, b := get(p); st != 200 {
			t.Fatalf("before the outage, %s: %d %s", p, st, b)
		}
	}

	proxy.setCut(true)
	for _, p := range paths {
		st, h, b := get(p)
		if st != 503 || h.Get("Retry-After") == "" || h.Get("Content-Type") != "application/problem+json" || !strings.Contains(b, `"code":"unavailable"`) {
			t.Errorf("during the outage, %s: %d Retry-After %q %s", p, st, h.Get("Retry-After"), b)
		}
		// Every operation documents its 503: the answer must match it.
		path, _, _ := strings.Cut(p, "?")
		if err := openapiDoc(t).Validate("GET", path, st, h.Get("Content-Type"), []byte(b)); err != nil {
			t.Errorf("during the outage, %s does not match openapi.json: %v", p, err)
		}
	}
	if st, _, b := get("/readyz"); st != 503 {
		t.Errorf("readyz during the outage: %d %s", st, b)
	}

	proxy.setCut(false)
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok := true
		for _, p := range append(paths, "/readyz") {
			if st, _, _ := get(p); st != 200 {
				ok = false
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not recovered 15 s after the database came back")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if strings.Contains(r.logs.String(), `"msg":"request failed"`) {
		t.Error("the outage logged a request failure (a 500) instead of unavailable")
	}
}

// TestSilentClientsAreToldOrLeftQuietly: a client that opens a connection
// and sends nothing within the read timeout gets a 408 problem and the
// connection closed (RFC 9110: clients' pools know a 408 on a connection
// they left idle; the 400 this used to be logged as an unsolicited answer
// and could be paired with the client's next request). A keep-alive
// connection left idle after a request is closed without a word.
func TestSilentClientsAreToldOrLeftQuietly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"STEWARD_READ_TIMEOUT": "1s", "STEWARD_IDLE_TIMEOUT": "1s"})
	r := e.start()
	addr := strings.TrimPrefix(r.base, "http://")

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("a silent new connection: %v, want a 408", err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 408 || res.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(b), `"code":"request_timeout"`) {
		t.Errorf("a silent new connection: %d %s %s", res.StatusCode, res.Header.Get("Content-Type"), b)
	}
	if !res.Close {
		t.Error("the 408 does not close the connection")
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("after the 408 the connection carried %d more bytes (%v)", n, err)
	}

	ka, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ka.Close()
	_ = ka.SetDeadline(time.Now().Add(15 * time.Second))
	if _, err := ka.Write([]byte("GET /healthz HTTP/1.1\r\nHost: steward\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	kbr := bufio.NewReader(ka)
	first, err := http.ReadResponse(kbr, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, first.Body)
	first.Body.Close()
	if first.StatusCode != 200 || first.Close {
		t.Fatalf("healthz on a keep-alive connection: %d, close %v", first.StatusCode, first.Close)
	}
	began := time.Now()
	rest, err := io.ReadAll(kbr)
	if len(rest) != 0 {
		t.Errorf("an idle keep-alive connection was sent %q", rest)
	}
	if err != nil || time.Since(began) > 10*time.Second {
		t.Errorf("the idle keep-alive connection was not closed by the server: %v after %s", err, time.Since(began))
	}
}
