package creem_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/creem"
	"github.com/steward-privacy/steward/connectors/creem/creemfake"
	"github.com/steward-privacy/steward/internal/clock"
)

func resolve(c *creem.Connector, email string) error {
	_, err := c.ResolveIdentities(context.Background(), []connectors.Identity{id("email", email)})
	return err
}

func TestErrorClassification(t *testing.T) {
	const email = "pat@example.com"
	cases := []struct {
		name       string
		failures   []creemfake.Failure // each once, in order
		maxRetries int
		retryable  bool
		after      time.Duration
		ok         bool            // the call succeeds after the failures
		requests   int             // requests the fake sees
		sleeps     []time.Duration // exact waits; nil to check only the count
		nSleeps    int
		message    string // in the error
	}{
		{
			name:      "429 with a long Retry-After is handed to the engine at once",
			failures:  []creemfake.Failure{{Status: 429, RetryAfter: "60"}},
			retryable: true, after: 60 * time.Second, requests: 1, sleeps: []time.Duration{},
			message: "rate_limit_exceeded",
		},
		{
			name:     "429 with a short Retry-After is waited out, then succeeds",
			failures: []creemfake.Failure{{Status: 429, RetryAfter: "3"}},
			ok:       true, requests: 2, sleeps: []time.Duration{3 * time.Second},
		},
		{
			name:       "429 every time: retryable with the hint after the retries",
			failures:   []creemfake.Failure{{Status: 429, RetryAfter: "2"}, {Status: 429, RetryAfter: "2"}, {Status: 429, RetryAfter: "2"}},
			maxRetries: 2, retryable: true, after: 2 * time.Second, requests: 3,
			sleeps: []time.Duration{2 * time.Second, 2 * time.Second},
		},
		{
			name:       "500 every time: retryable after bounded retries with backoff",
			failures:   []creemfake.Failure{{Status: 500}, {Status: 500}, {Status: 500}, {Status: 500}},
			maxRetries: 3, retryable: true, requests: 4, nSleeps: 3, message: "HTTP 500",
		},
		{
			name:     "503 once, then success",
			failures: []creemfake.Failure{{Status: 503}},
			ok:       true, requests: 2, nSleeps: 1,
		},
		{
			name:     "401 is permanent, with Creem's message, not retried",
			failures: []creemfake.Failure{{Status: 401, Message: "Invalid API key provided"}},
			requests: 1, sleeps: []time.Duration{}, message: "HTTP 401: Invalid API key provided (trace_id ",
		},
		{
			name:     "400 is permanent, with Creem's message",
			failures: []creemfake.Failure{{Status: 400, Message: "email must be an email"}},
			requests: 1, sleeps: []time.Duration{}, message: "email must be an email",
		},
		{
			name:     "403 is permanent",
			failures: []creemfake.Failure{{Status: 403}},
			requests: 1, sleeps: []time.Duration{}, message: "HTTP 403",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *creem.Config) { c.MaxRetries = tc.maxRetries })
			seedPerson(e.fake, email, "Pat", 0, 0)
			for _, f := range tc.failures {
				e.fake.FailNext(1, f)
			}
			err := resolve(e.c, email)
			if tc.ok {
				if err != nil {
					t.Fatalf("want success after the failures, got %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("want an error")
				}
				retry, after := connectors.Classify(err)
				if retry != tc.retryable || (tc.retryable && after != tc.after) {
					t.Errorf("classified retryable=%v after=%v; want %v %v (%v)", retry, after, tc.retryable, tc.after, err)
				}
				if !strings.Contains(err.Error(), tc.message) {
					t.Errorf("error %q lacks %q", err, tc.message)
				}
				if strings.Contains(err.Error(), email) {
					t.Errorf("error carries the email: %v", err)
				}
			}
			if n := len(e.fake.Requests()); n != tc.requests {
				t.Errorf("%d requests, want %d", n, tc.requests)
			}
			got := e.sleeps.all()
			if tc.sleeps != nil && !slices.Equal(got, tc.sleeps) && !(len(got) == 0 && len(tc.sleeps) == 0) {
				t.Errorf("waits %v, want %v", got, tc.sleeps)
			}
			if tc.sleeps == nil && len(got) != tc.nSleeps {
				t.Errorf("%d waits (%v), want %d", len(got), got, tc.nSleeps)
			}
			for _, d := range got {
				if d <= 0 || d > 5*time.Second {
					t.Errorf("wait %v out of bounds", d)
				}
			}
			if strings.Contains(e.logs.String(), email) {
				t.Errorf("logs carry the email:\n%s", e.logs)
			}
		})
	}
}

// TestErrorsDuringListing: a failure on page 2 of a listing keeps its
// class.
func TestErrorsDuringListing(t *testing.T) {
	e := newEnv(t, func(c *creem.Config) { c.PageSize = 2; c.MaxRetries = -1 })
	p := seedPerson(e.fake, "pat@example.com", "Pat", 0, 5)
	fields := plan(t, "transactions", connectors.ActionInclude)
	access := func() (int, error) {
		sink := &connectortest.MemorySink{}
		_, err := e.c.Access(context.Background(), connectors.AccessParams{Target: target("transactions", id("email", p.email)), Fields: fields}, sink)
		return len(sink.Records()), err
	}
	// The first listing page passes; the second fails.
	e.fake.FailNext(1, creemfake.Failure{Path: "/v1/transactions/search", Delay: time.Millisecond})
	e.fake.FailNext(1, creemfake.Failure{Path: "/v1/transactions/search", Status: 502})
	n, err := access()
	if retry, _ := connectors.Classify(err); err == nil || !retry {
		t.Errorf("502 on page 2: want retryable, got %v", err)
	}
	if n != 2 {
		t.Errorf("records streamed before the failure: %d, want 2 (page 1)", n)
	}
	e.fake.FailNext(1, creemfake.Failure{Path: "/v1/transactions/search", Status: 400, Message: "page_size must not be greater than 100"})
	_, err = access()
	if retry, _ := connectors.Classify(err); err == nil || retry || !strings.Contains(err.Error(), "page_size must not be greater than 100") {
		t.Errorf("400: want permanent with the message, got %v", err)
	}
	if n, err := access(); err != nil || n != 5 {
		t.Errorf("after the failures: %d records, %v", n, err)
	}
}

func TestWrongAPIKey(t *testing.T) {
	e := newEnv(t, func(c *creem.Config) { c.APIKey = "creem_test_wrong" })
	err := resolve(e.c, "pat@example.com")
	if retry, _ := connectors.Classify(err); err == nil || retry || !strings.Contains(err.Error(), "HTTP 403") {
		t.Errorf("wrong key: want a permanent 403, got %v", err)
	}
}

func TestNetworkErrors(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		e := newEnv(t, func(c *creem.Config) { c.MaxRetries = 2 })
		e.fake.Close()
		err := resolve(e.c, "pat@example.com")
		if retry, _ := connectors.Classify(err); err == nil || !retry {
			t.Errorf("want retryable, got %v", err)
		}
		if strings.Contains(err.Error(), "pat@example.com") || strings.Contains(err.Error(), "pat%40example.com") {
			t.Errorf("error carries the email (from the URL): %v", err)
		}
		if n := len(e.sleeps.all()); n != 2 {
			t.Errorf("%d waits, want 2 retries", n)
		}
	})
	t.Run("client timeout", func(t *testing.T) {
		e := newEnv(t, func(c *creem.Config) {
			c.MaxRetries = -1
			c.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond}
		})
		e.fake.FailNext(1, creemfake.Failure{Delay: 5 * time.Second})
		start := time.Now()
		err := resolve(e.c, "pat@example.com")
		if retry, _ := connectors.Classify(err); err == nil || !retry || errors.Is(err, context.Canceled) {
			t.Errorf("timeout: want retryable, got %v", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("timeout took %v", d)
		}
	})
}

func TestCancellation(t *testing.T) {
	t.Run("during a request", func(t *testing.T) {
		e := newEnv(t, nil)
		e.fake.FailNext(1, creemfake.Failure{Delay: 10 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err := e.c.ResolveIdentities(ctx, []connectors.Identity{id("email", "pat@example.com")})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("want context.Canceled, got %v", err)
		}
		if retry, _ := connectors.Classify(err); retry {
			t.Errorf("a cancelled call classified retryable: %v", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("cancellation took %v", d)
		}
	})
	t.Run("during the backoff", func(t *testing.T) {
		e := newEnv(t, func(c *creem.Config) { c.MaxRetries = 5 })
		creem.SetSleep(e.c, func(ctx context.Context, d time.Duration) error {
			<-ctx.Done() // a wait that only cancellation ends
			return ctx.Err()
		})
		e.fake.FailNext(10, creemfake.Failure{Status: 503})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := e.c.ResolveIdentities(ctx, []connectors.Identity{id("email", "pat@example.com")})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("want context.Canceled, got %v", err)
		}
		if n := len(e.fake.Requests()); n != 1 {
			t.Errorf("%d requests after cancelling in the backoff, want 1", n)
		}
	})
	t.Run("already cancelled: no request", func(t *testing.T) {
		e := newEnv(t, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := e.c.Access(ctx, connectors.AccessParams{Target: target("customers", id("email", "pat@example.com")),
			Fields: plan(t, "customers", connectors.ActionInclude)}, &connectortest.MemorySink{})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("want context.Canceled, got %v", err)
		}
		if n := len(e.fake.Requests()); n != 0 {
			t.Errorf("%d requests", n)
		}
	})
}

// TestUnexpectedAnswers: answers that are not Creem's fail permanently, and
// a 404 that is not Creem's error (a wrong base URL, a proxy) is never
// taken for "no such customer", which would have Erase report nothing to
// do.
func TestUnexpectedAnswers(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc
		retry   bool
	}{
		{"404 without Creem's body", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "404 page not found", http.StatusNotFound)
		}, false},
		{"200 that is not JSON", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "<html>maintenance</html>")
		}, false},
		{"200 with trailing data", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"id":"cust_1","email":"pat@example.com"} {}`)
		}, false},
		{"a redirect is not followed", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://evil.example/steal", http.StatusFound)
		}, false},
		{"502 without a body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
		}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			e := newEnv(t, func(c *creem.Config) { c.BaseURL = srv.URL; c.MaxRetries = -1 })
			err := resolve(e.c, "pat@example.com")
			if err == nil {
				t.Fatal("want an error")
			}
			if retry, _ := connectors.Classify(err); retry != tc.retry {
				t.Errorf("retryable=%v, want %v: %v", retry, tc.retry, err)
			}
		})
	}

	t.Run("a page whose next page does not advance", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/v1/customers" {
				fmt.Fprint(w, `{"id":"cust_1","email":"pat@example.com"}`)
				return
			}
			fmt.Fprint(w, `{"items":[{"id":"tran_1","customer":"cust_1"}],"pagination":{"current_page":1,"next_page":1}}`)
		}))
		defer srv.Close()
		e := newEnv(t, func(c *creem.Config) { c.BaseURL = srv.URL })
		_, err := e.c.Access(context.Background(), connectors.AccessParams{Target: target("transactions", id("email", "pat@example.com")),
			Fields: plan(t, "transactions", connectors.ActionInclude)}, &connectortest.MemorySink{})
		if retry, _ := connectors.Classify(err); err == nil || retry {
			t.Errorf("want a permanent error, got %v", err)
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	fc := clock.NewFake(now)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	cases := []struct {
		h    http.Header
		want time.Duration
	}{
		{h("Retry-After", "45"), 45 * time.Second},
		{h("Retry-After", "0"), 0},
		{h("Retry-After", "-3"), 0},
		{h("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)), 90 * time.Second},
		{h("Retry-After", now.Add(-time.Minute).Format(http.TimeFormat)), 0},
		{h("Retry-After", "soon"), 0},
		{h("Retry-After", "99999999"), 24 * time.Hour},
		{h("X-RateLimit-Reset", fmt.Sprint(now.Add(30*time.Second).Unix())), 30 * time.Second},
		{h("Retry-After", "5", "X-RateLimit-Reset", fmt.Sprint(now.Add(30*time.Second).Unix())), 5 * time.Second},
		{h(), 0},
	}
	for _, tc := range cases {
		if got := creem.ParseRetryAfter(tc.h, fc.Now()); got != tc.want {
			t.Errorf("%v: got %v, want %v", tc.h, got, tc.want)
		}
	}

	// The connector reads the date against its clock.
	e := newEnv(t, func(c *creem.Config) { c.Clock = fc; c.MaxRetries = -1 })
	e.fake.FailNext(1, creemfake.Failure{Status: 429, RetryAfter: now.Add(2 * time.Minute).Format(http.TimeFormat)})
	err := resolve(e.c, "pat@example.com")
	if retry, after := connectors.Classify(err); !retry || after != 2*time.Minute {
		t.Errorf("HTTP-date Retry-After: retry=%v after=%v (%v)", retry, after, err)
	}
}

func TestNewChecksConfig(t *testing.T) {
	m := staticMap(dataMap(t))
	cases := []struct {
		name string
		cfg  creem.Config
	}{
		{"no system", creem.Config{APIKey: "k", DataMap: m}},
		{"no key", creem.Config{System: "creem", DataMap: m}},
		{"no data map", creem.Config{System: "creem", APIKey: "k"}},
		{"plain http to a remote host", creem.Config{System: "creem", APIKey: "k", DataMap: m, BaseURL: "http://api.creem.io"}},
		{"credentials in the URL", creem.Config{System: "creem", APIKey: "k", DataMap: m, BaseURL: "https://u:p@api.creem.io"}},
		{"not a URL", creem.Config{System: "creem", APIKey: "k", DataMap: m, BaseURL: "api.creem.io"}},
		{"system not in the map", creem.Config{System: "paddle", APIKey: "k", DataMap: m}},
		{"system of another kind", creem.Config{System: "app_db", APIKey: "k", DataMap: m}},
	}
	for _, tc := range cases {
		if c, err := creem.New(context.Background(), tc.cfg); err == nil {
			c.Close()
			t.Errorf("%s: New accepted %+v", tc.name, tc.cfg)
		}
	}
	c, err := creem.New(context.Background(), creem.Config{System: "creem", APIKey: "k", DataMap: m})
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c.Close()
}
