package stripe_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	stripego "github.com/stripe/stripe-go/v84"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/stripe"
	"github.com/steward-privacy/steward/connectors/stripe/stripefake"
)

func resolve(c connectors.Connector, ids ...connectors.Identity) error {
	_, err := c.ResolveIdentities(context.Background(), ids)
	return err
}

// A rate limit that persists comes out retryable with Stripe's
// Retry-After, after the connector's own retries waited that long.
func TestRateLimitPersists(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	c, sl := newConnector(t, f.URL(), nil)
	cus := f.AddCustomer(stripefake.Customer{Email: "rl@example.com"})
	f.ResetRequests()
	f.RateLimit(100, 7*time.Second)

	err := resolve(c, id("stripe", cus))
	retry, after := connectors.Classify(err)
	if !retry || after != 7*time.Second {
		t.Fatalf("error %v classified retryable=%v after=%v; want retryable after 7s", err, retry, after)
	}
	var ae *stripe.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusTooManyRequests || ae.Code != "rate_limit" {
		t.Errorf("error %v does not carry Stripe's answer", err)
	}
	var se *stripego.Error
	if !errors.As(err, &se) || se.HTTPStatusCode != 429 {
		t.Errorf("error does not unwrap to stripe-go's error: %v", err)
	}
	if got := sl.get(); !slices.Equal(got, []time.Duration{7 * time.Second, 7 * time.Second, 7 * time.Second}) {
		t.Errorf("waits %v; want Retry-After three times", got)
	}
	if n := len(f.Requests()); n != 4 {
		t.Errorf("%d requests; want 1 + 3 retries", n)
	}
}

// A short rate limit is ridden out; a long Retry-After is handed to the
// engine at once instead of holding the worker.
func TestRateLimitRetries(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	c, sl := newConnector(t, f.URL(), nil)
	cus := f.AddCustomer(stripefake.Customer{Email: "rl@example.com"})

	f.RateLimit(2, time.Second)
	got, err := c.ResolveIdentities(context.Background(), []connectors.Identity{id("stripe", cus)})
	if err != nil || len(got) != 1 {
		t.Fatalf("after a short rate limit: %v, %v", got, err)
	}
	if w := sl.get(); !slices.Equal(w, []time.Duration{time.Second, time.Second}) {
		t.Errorf("waits %v", w)
	}

	sl.waits = nil
	f.ClearFailures()
	f.RateLimit(1, 10*time.Minute)
	err = resolve(c, id("stripe", cus))
	if retry, after := connectors.Classify(err); !retry || after != 10*time.Minute {
		t.Errorf("long Retry-After: %v retryable=%v after=%v", err, retry, after)
	}
	if w := sl.get(); len(w) != 0 {
		t.Errorf("waited %v for a long Retry-After", w)
	}

	// Without Retry-After the backoff grows.
	f.ClearFailures()
	f.RateLimit(3, 0)
	if err := resolve(c, id("stripe", cus)); err != nil {
		t.Fatal(err)
	}
	w := sl.get()
	if len(w) != 3 || !(w[0] < w[1] && w[1] < w[2]) || w[0] <= 0 || w[2] > 8*time.Second {
		t.Errorf("backoff waits %v; want three growing waits", w)
	}
}

func TestServerErrors(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	c, _ := newConnector(t, f.URL(), nil)
	cus := f.AddCustomer(stripefake.Customer{Email: "se@example.com"})

	f.ServerError(1)
	if err := resolve(c, id("stripe", cus)); err != nil {
		t.Errorf("one 500 was not retried: %v", err)
	}
	f.ServerError(10)
	err := resolve(c, id("stripe", cus))
	if retry, after := connectors.Classify(err); !retry || after != 0 || !strings.Contains(err.Error(), "HTTP 500") {
		t.Errorf("persistent 500: %v retryable=%v after=%v", err, retry, after)
	}
	f.ClearFailures()

	f.Fail(stripefake.Failure{Status: http.StatusConflict, Type: "invalid_request_error", Code: "lock_timeout",
		Message: "This object cannot be accessed right now because another API request or Stripe process is currently accessing it.", Times: 10})
	if retry, _ := connectors.Classify(resolve(c, id("stripe", cus))); !retry {
		t.Error("a lock timeout is not retryable")
	}
	f.ClearFailures()
}

// Any other answer is permanent at once, with Stripe's message and code.
func TestBadRequestPermanent(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	c, sl := newConnector(t, f.URL(), nil)
	f.ResetRequests()
	f.BadRequest(1, "parameter_invalid_string", "Invalid search query: something Stripe did not like")
	err := resolve(c, id("email", "bad@example.com"))
	if retry, _ := connectors.Classify(err); retry || err == nil {
		t.Fatalf("400: %v classified retryable", err)
	}
	for _, want := range []string{"HTTP 400", "code parameter_invalid_string", "Invalid search query: something Stripe did not like"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if n := len(f.Requests()); n != 1 || len(sl.get()) != 0 {
		t.Errorf("%d requests, waits %v; a 400 is not retried", n, sl.get())
	}

	// A wrong key is permanent too.
	f.Fail(stripefake.Failure{Status: http.StatusUnauthorized, Type: "invalid_request_error", Message: "Invalid API Key provided: sk_test_***"})
	if retry, _ := connectors.Classify(resolve(c, id("email", "bad@example.com"))); retry {
		t.Error("401 classified retryable")
	}
}

// Network failures are retried, then come out retryable.
func TestNetworkErrors(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	}))
	t.Cleanup(slow.Close)
	c, sl := newConnector(t, slow.URL, func(cfg *stripe.Config) {
		cfg.HTTPClient = &http.Client{Timeout: 50 * time.Millisecond}
		cfg.MaxRetries = 2
	})
	err := resolve(c, id("stripe", "cus_Timeout1"))
	if retry, _ := connectors.Classify(err); !retry || err == nil {
		t.Errorf("timeout: %v not retryable", err)
	}
	if n := len(sl.get()); n != 2 {
		t.Errorf("%d retries; want 2", n)
	}

	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	c, _ = newConnector(t, closed.URL, func(cfg *stripe.Config) { cfg.MaxRetries = -1 })
	if retry, _ := connectors.Classify(resolve(c, id("stripe", "cus_Refused1"))); !retry {
		t.Error("connection refused not retryable")
	}
}

// Cancelling during a retry wait returns at once, wrapping
// context.Canceled.
func TestCancelledWhileRetrying(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	c, _ := newConnector(t, f.URL(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	stripe.SetSleep(c, func(context.Context, time.Duration) error {
		cancel()
		return ctx.Err()
	})
	f.RateLimit(100, time.Second)
	start := time.Now()
	_, err := c.ResolveIdentities(ctx, []connectors.Identity{id("stripe", "cus_Cancel1")})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v; want context.Canceled", err)
	}
	if retry, _ := connectors.Classify(err); retry {
		t.Error("cancellation classified retryable")
	}
	if time.Since(start) > 5*time.Second {
		t.Error("took too long")
	}
}

// Every write carries a key derived from the task's: a retried request and
// a retried task send the same key (Stripe applies the write once), a new
// task run another.
func TestIdempotencyKeys(t *testing.T) {
	f := stripefake.New()
	t.Cleanup(f.Close)
	c, _ := newConnector(t, f.URL(), nil)
	p := seedPerson(f)
	plan := []connectors.FieldPlan{retain("id"), del("email")}
	updates := func() []string {
		var out []string
		for _, r := range f.Writes() {
			if r.Method == http.MethodPost && r.Path == "/v1/customers/"+p.a {
				out = append(out, r.IdempotencyKey)
			}
		}
		return out
	}

	// The update fails every time: the task fails, retryable.
	f.ResetRequests()
	f.Fail(stripefake.Failure{Status: 500, Type: "api_error", Message: "boom", Method: http.MethodPost, Path: "/v1/customers/", Times: 100})
	_, err := c.Erase(context.Background(), connectors.EraseParams{Target: target("customers", "task-1", id("stripe", p.a)), Fields: plan})
	if retry, _ := connectors.Classify(err); !retry {
		t.Fatalf("erase with failing updates: %v", err)
	}
	first := updates()
	if len(first) != 4 || first[0] == "" || len(slices.Compact(slices.Clone(first))) != 1 {
		t.Fatalf("keys of the retried update: %q; want one key four times", first)
	}
	if !strings.HasPrefix(first[0], "steward-customer.update-") {
		t.Errorf("key %q", first[0])
	}

	// The engine retries the task: same key, and this time it goes through.
	f.ClearFailures()
	f.ResetRequests()
	res := erase(t, c, "customers", "task-1", []connectors.Identity{id("stripe", p.a)}, plan)
	if got := updates(); res.Masked != 1 || len(got) != 1 || got[0] != first[0] {
		t.Errorf("retried task: %+v, keys %q; want the first run's key %q", res, got, first[0])
	}
	if a, _ := f.Customer(p.a); a["email"] != nil {
		t.Errorf("email %v", a["email"])
	}

	// A new task run of the same request gets keys of its own: the same
	// change to customer b, failing under task-2, then through task-3.
	keysOf := func(id string) []string {
		var out []string
		for _, r := range f.Writes() {
			if r.Path == "/v1/customers/"+id {
				out = append(out, r.IdempotencyKey)
			}
		}
		return out
	}
	f.ResetRequests()
	f.Fail(stripefake.Failure{Status: 500, Type: "api_error", Message: "boom", Method: http.MethodPost, Path: "/v1/customers/", Times: 4})
	if _, err := c.Erase(context.Background(), connectors.EraseParams{Target: target("customers", "task-2", id("stripe", p.b)), Fields: plan}); err == nil {
		t.Fatal("erase with failing updates succeeded")
	}
	k2 := keysOf(p.b)
	f.ResetRequests()
	erase(t, c, "customers", "task-3", []connectors.Identity{id("stripe", p.b)}, plan)
	k3 := keysOf(p.b)
	if len(k2) != 4 || len(k3) != 1 || k3[0] == k2[0] || k3[0] == first[0] {
		t.Errorf("keys of task-2 %q, task-3 %q; want a new key for the new run", k2, k3)
	}
}
