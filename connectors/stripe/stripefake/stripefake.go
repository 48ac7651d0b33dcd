// Package stripefake is a small, stateful, in-memory stand-in for the parts
// of the Stripe API the Stripe connector uses, for tests.
//
// stripe-mock (Stripe's own simulator) checks that every request is valid
// Stripe API, but it answers with canned objects and keeps no state: it
// cannot show that an erasure cleared a customer's email, that a detached
// card is gone, or that another customer was left alone. This fake keeps
// state, so tests can seed people, run the connector and inspect what
// changed. It follows Stripe's wire format where the connector depends on it:
// form-encoded parameters (empty string unsets a field, metadata[key]=""
// removes a key), list envelopes paged with starting_after, the search
// envelope paged with page tokens, Idempotency-Key replay, Stripe's error
// body, DELETE of a customer leaving a deleted stub. It refuses parameters it
// does not know, as Stripe does, so a connector bug shows up as a 400 rather
// than a silently ignored write.
//
// Failures can be injected (429 with Retry-After, 500, 400 with a Stripe
// error body) to test retries and error classification.
package stripefake

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is a fake Stripe API on a loopback port.
type Server struct {
	srv *httptest.Server

	mu       sync.Mutex
	seq      int
	objs     map[string]*entry
	idem     map[string]idemResult
	fails    []*Failure
	reqs     []Request
	maxLimit int
}

type entry struct {
	seq     int
	typ     string // Stripe object type: customer, charge, checkout.session, ...
	data    map[string]any
	deleted bool
}

type idemResult struct {
	fingerprint string
	status      int
	body        []byte
}

// Request is one request the server received, for assertions.
type Request struct {
	Method string
	Path   string
	// Form holds the query (GET, DELETE) or body (POST) parameters.
	Form           url.Values
	IdempotencyKey string
	// Status is the status answered.
	Status int
	// Replayed says the answer was an idempotent replay of an earlier one.
	Replayed bool
}

// Failure makes matching requests fail before the server looks at them.
type Failure struct {
	// Status is the HTTP status: 429, 500, 400, ...
	Status int
	// RetryAfter, when set, is sent as the Retry-After header (seconds or an
	// HTTP date, as given).
	RetryAfter string
	// Type, Code and Message fill Stripe's error body.
	Type, Code, Message string
	// Times is how many requests fail; 0 means 1.
	Times int
	// Method and Path, when set, restrict the failure to requests with that
	// method and a path with that prefix.
	Method, Path string
}

// New starts a server; it stops when the test ends (Close).
func New() *Server {
	s := &Server{objs: map[string]*entry{}, idem: map[string]idemResult{}, maxLimit: 100}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// NewAt starts a server listening on addr (host:port; port 0 picks a free
// one), for a process that serves the fake to others, such as
// `steward demo peers`. Close stops it.
func NewAt(addr string) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("stripefake: listen on %s: %w", addr, err)
	}
	s := &Server{objs: map[string]*entry{}, idem: map[string]idemResult{}, maxLimit: 100}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	_ = s.srv.Listener.Close()
	s.srv.Listener = l
	s.srv.Start()
	return s, nil
}

// URL is the server's base URL, for the connector's BaseURL.
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// SetMaxLimit caps the page size the server answers with (Stripe's cap is
// 100), so tests can exercise pagination with a few objects.
func (s *Server) SetMaxLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 1 {
		n = 1
	}
	s.maxLimit = n
}

// Fail injects a failure.
func (s *Server) Fail(f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.Times <= 0 {
		f.Times = 1
	}
	s.fails = append(s.fails, &f)
}

// RateLimit makes the next n requests answer 429 with Retry-After (whole
// seconds; none when retryAfter is 0).
func (s *Server) RateLimit(n int, retryAfter time.Duration) {
	f := Failure{Status: http.StatusTooManyRequests, Type: "invalid_request_error", Code: "rate_limit",
		Message: "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.", Times: n}
	if retryAfter > 0 {
		f.RetryAfter = strconv.Itoa(int(retryAfter / time.Second))
	}
	s.Fail(f)
}

// ServerError makes the next n requests answer 500.
func (s *Server) ServerError(n int) {
	s.Fail(Failure{Status: http.StatusInternalServerError, Type: "api_error",
		Message: "An unknown error occurred", Times: n})
}

// BadRequest makes the next n requests answer 400 with code and message.
func (s *Server) BadRequest(n int, code, message string) {
	s.Fail(Failure{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: code, Message: message, Times: n})
}

// ClearFailures drops failures not yet used.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = nil
}

// Requests returns the requests received so far.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.reqs))
	for i, r := range s.reqs {
		r.Form = cloneValues(r.Form)
		out[i] = r
	}
	return out
}

// ResetRequests forgets the requests received so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reqs = nil
}

// Writes returns the POST and DELETE requests received so far.
func (s *Server) Writes() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Method != http.MethodGet {
			out = append(out, r)
		}
	}
	return out
}

// Object returns a copy of the object with id as its JSON decodes (a
// deleted customer reads as Stripe's deleted stub).
func (s *Server) Object(id string) (map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.objs[id]
	if e == nil {
		return nil, false
	}
	return s.view(e), true
}

// Customer returns a copy of the customer id; ok is false for an unknown
// id. A deleted customer is its stub {"id", "object", "deleted": true}.
func (s *Server) Customer(id string) (map[string]any, bool) { return s.typed(id, "customer") }

// PaymentMethod returns a copy of the payment method id.
func (s *Server) PaymentMethod(id string) (map[string]any, bool) {
	return s.typed(id, "payment_method")
}

// Subscription returns a copy of the subscription id.
func (s *Server) Subscription(id string) (map[string]any, bool) {
	return s.typed(id, "subscription")
}

func (s *Server) typed(id, typ string) (map[string]any, bool) {
	o, ok := s.Object(id)
	if !ok || o["object"] != typ {
		return nil, false
	}
	return o, true
}

// Deleted reports whether the object id was deleted (a customer or tax id).
func (s *Server) Deleted(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.objs[id]
	return e != nil && e.deleted
}

// Objects returns a copy of every object, deleted ones as their stubs,
// sorted by id: a test digests the part that belongs to other people.
func (s *Server) Objects() []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.objs))
	for id := range s.objs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]map[string]any, len(ids))
	for i, id := range ids {
		out[i] = s.view(s.objs[id])
	}
	return out
}

// view is what a GET of e answers, as a deep copy.
func (s *Server) view(e *entry) map[string]any {
	if e.deleted {
		return map[string]any{"id": e.data["id"], "object": e.typ, "deleted": true}
	}
	return deepCopy(e.data).(map[string]any)
}

// ---- serving

type apiError struct {
	status     int
	typ, code  string
	msg, param string
}

func (e *apiError) body() map[string]any {
	b := map[string]any{"type": e.typ, "message": e.msg}
	if e.code != "" {
		b["code"] = e.code
	}
	if e.param != "" {
		b["param"] = e.param
	}
	return map[string]any{"error": b}
}

func invalid(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", msg: fmt.Sprintf(format, args...)}
}

func unknownParam(p string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "parameter_unknown",
		msg: "Received unknown parameter: " + p, param: p}
}

func missing(kind, id string) *apiError {
	return &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "resource_missing",
		msg: fmt.Sprintf("No such %s: '%s'", kind, id), param: "id"}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rec := Request{Method: r.Method, Path: r.URL.Path, IdempotencyKey: r.Header.Get("Idempotency-Key")}
	status, body, replayed, header := s.handle(r, &rec)
	rec.Status, rec.Replayed = status, replayed
	s.mu.Lock()
	s.reqs = append(s.reqs, rec)
	n := len(s.reqs)
	s.mu.Unlock()
	for k, v := range header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", fmt.Sprintf("req_fake%08d", n))
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) handle(r *http.Request, rec *Request) (status int, body []byte, replayed bool, header http.Header) {
	header = http.Header{}
	fail := func(e *apiError) (int, []byte, bool, http.Header) {
		b, _ := json.Marshal(e.body())
		return e.status, b, false, header
	}
	if r.Method == http.MethodPost && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return fail(invalid("Request's `Content-Type` header was empty. Expected: `application/x-www-form-urlencoded`."))
	}
	if err := r.ParseForm(); err != nil {
		return fail(invalid("Invalid request body: %v", err))
	}
	rec.Form = cloneValues(r.Form)
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") || len(r.Header.Get("Authorization")) <= len("Bearer ") {
		return fail(&apiError{status: http.StatusUnauthorized, typ: "invalid_request_error", msg: "You did not provide an API key."})
	}
	if f := s.takeFailure(r); f != nil {
		if f.RetryAfter != "" {
			header.Set("Retry-After", f.RetryAfter)
		}
		return fail(&apiError{status: f.Status, typ: f.Type, code: f.Code, msg: f.Message})
	}

	key := r.Header.Get("Idempotency-Key")
	write := r.Method == http.MethodPost || r.Method == http.MethodDelete
	fp := r.Method + " " + r.URL.Path + "?" + r.Form.Encode()
	s.mu.Lock()
	defer s.mu.Unlock()
	if write && key != "" {
		if prev, ok := s.idem[key]; ok {
			if prev.fingerprint != fp {
				return fail(&apiError{status: http.StatusBadRequest, typ: "idempotency_error",
					msg: "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '" + key + "' if you meant to execute a different request."})
			}
			return prev.status, prev.body, true, header
		}
	}
	out, aerr := s.route(r)
	if aerr != nil {
		status, body = aerr.status, mustJSON(aerr.body())
	} else {
		status, body = http.StatusOK, mustJSON(out)
	}
	// Stripe saves the result of a request that began executing, errors
	// included, and replays it for the same key.
	if write && key != "" {
		s.idem[key] = idemResult{fingerprint: fp, status: status, body: body}
	}
	return status, body, false, header
}

func (s *Server) takeFailure(r *http.Request) *Failure {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.fails {
		if f.Method != "" && f.Method != r.Method {
			continue
		}
		if f.Path != "" && !strings.HasPrefix(r.URL.Path, f.Path) {
			continue
		}
		f.Times--
		if f.Times <= 0 {
			s.fails = slices.Delete(s.fails, i, i+1)
		}
		return f
	}
	return nil
}

// route dispatches a request; s.mu is held.
func (s *Server) route(r *http.Request) (any, *apiError) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 2 || parts[0] != "v1" {
		return nil, &apiError{status: http.StatusNotFound, typ: "invalid_request_error", msg: "Unrecognized request URL (" + r.Method + ": " + r.URL.Path + ")."}
	}
	parts = parts[1:]
	f := r.Form
	m := r.Method
	switch {
	case m == http.MethodGet && match(parts, "customers"):
		return s.list(f, "customer", "/v1/customers", []string{"email"}, func(e *entry) bool {
			email := f.Get("email")
			return email == "" || e.data["email"] == email
		})
	case m == http.MethodGet && match(parts, "customers", "search"):
		return s.searchCustomers(f)
	case m == http.MethodGet && match(parts, "customers", "*"):
		return s.retrieve(f, parts[1], "customer")
	case m == http.MethodPost && match(parts, "customers", "*"):
		return s.updateCustomer(f, parts[1])
	case m == http.MethodDelete && match(parts, "customers", "*"):
		return s.deleteCustomer(f, parts[1])
	case m == http.MethodGet && match(parts, "customers", "*", "tax_ids"):
		if err := s.liveCustomer(parts[1]); err != nil {
			return nil, err
		}
		return s.list(f, "tax_id", r.URL.Path, nil, func(e *entry) bool { return ownerOf(e) == parts[1] })
	case m == http.MethodDelete && match(parts, "customers", "*", "tax_ids", "*"):
		return s.deleteTaxID(f, parts[1], parts[3])
	case m == http.MethodGet && match(parts, "payment_methods"):
		return s.list(f, "payment_method", "/v1/payment_methods", []string{"customer", "type"}, func(e *entry) bool {
			return (f.Get("customer") == "" || e.data["customer"] == f.Get("customer")) &&
				(f.Get("type") == "" || e.data["type"] == f.Get("type"))
		})
	case m == http.MethodGet && match(parts, "payment_methods", "*"):
		return s.retrieve(f, parts[1], "payment_method")
	case m == http.MethodPost && match(parts, "payment_methods", "*"):
		return s.updatePaymentMethod(f, parts[1])
	case m == http.MethodPost && match(parts, "payment_methods", "*", "detach"):
		return s.detach(f, parts[1])
	case m == http.MethodGet && match(parts, "charges"):
		return s.listBy(f, "charge", "/v1/charges", "customer")
	case m == http.MethodGet && match(parts, "payment_intents"):
		return s.listBy(f, "payment_intent", "/v1/payment_intents", "customer")
	case m == http.MethodGet && match(parts, "invoices"):
		return s.listBy(f, "invoice", "/v1/invoices", "customer")
	case m == http.MethodGet && match(parts, "checkout", "sessions"):
		return s.listBy(f, "checkout.session", "/v1/checkout/sessions", "customer")
	case m == http.MethodGet && match(parts, "refunds"):
		return s.listBy(f, "refund", "/v1/refunds", "charge")
	case m == http.MethodGet && match(parts, "disputes"):
		return s.listBy(f, "dispute", "/v1/disputes", "charge")
	case m == http.MethodGet && match(parts, "subscriptions"):
		return s.listSubscriptions(f)
	case m == http.MethodGet && match(parts, "subscriptions", "*"):
		return s.retrieve(f, parts[1], "subscription")
	case m == http.MethodDelete && match(parts, "subscriptions", "*"):
		return s.cancelSubscription(f, parts[1])
	}
	return nil, &apiError{status: http.StatusNotFound, typ: "invalid_request_error", msg: "Unrecognized request URL (" + m + ": " + r.URL.Path + ")."}
}

func match(parts []string, pattern ...string) bool {
	if len(parts) != len(pattern) {
		return false
	}
	for i, p := range pattern {
		if p != "*" && p != parts[i] {
			return false
		}
		if p == "*" && parts[i] == "" {
			return false
		}
	}
	return true
}

// checkParams refuses parameters outside allowed; a name ending in "["
// allows every key with that prefix (metadata[...], expand[...]).
func checkParams(f url.Values, allowed ...string) *apiError {
	allowed = append(allowed, "expand[")
	for k := range f {
		ok := false
		for _, a := range allowed {
			if k == a || strings.HasSuffix(a, "[") && strings.HasPrefix(k, a) {
				ok = true
				break
			}
		}
		if !ok {
			return unknownParam(k)
		}
	}
	return nil
}

// ordered returns the live objects of typ that keep passes, newest first,
// as Stripe lists them.
func (s *Server) ordered(typ string, keep func(*entry) bool) []*entry {
	var out []*entry
	for _, e := range s.objs {
		if e.typ == typ && !e.deleted && keep(e) {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq > out[j].seq })
	return out
}

func (s *Server) limit(f url.Values) (int, *apiError) {
	n := 10
	if v := f.Get("limit"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 100 {
			return 0, &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "parameter_invalid_integer",
				msg: "This value must be greater than or equal to 1 and less than or equal to 100.", param: "limit"}
		}
	}
	return min(n, s.maxLimit), nil
}

func (s *Server) list(f url.Values, typ, path string, filters []string, keep func(*entry) bool) (any, *apiError) {
	if err := checkParams(f, append([]string{"limit", "starting_after", "ending_before"}, filters...)...); err != nil {
		return nil, err
	}
	n, aerr := s.limit(f)
	if aerr != nil {
		return nil, aerr
	}
	all := s.ordered(typ, keep)
	start := 0
	if after := f.Get("starting_after"); after != "" {
		i := slices.IndexFunc(all, func(e *entry) bool { return e.data["id"] == after })
		if i < 0 {
			return nil, missing(typ, after)
		}
		start = i + 1
	} else if before := f.Get("ending_before"); before != "" {
		i := slices.IndexFunc(all, func(e *entry) bool { return e.data["id"] == before })
		if i < 0 {
			return nil, missing(typ, before)
		}
		all, start = all[:i], max(0, i-n)
	}
	end := min(len(all), start+n)
	data := make([]any, 0, end-start)
	for _, e := range all[start:end] {
		data = append(data, s.view(e))
	}
	return map[string]any{"object": "list", "data": data, "has_more": end < len(all), "url": path}, nil
}

func (s *Server) listBy(f url.Values, typ, path, by string) (any, *apiError) {
	return s.list(f, typ, path, []string{by}, func(e *entry) bool {
		v := f.Get(by)
		return v == "" || e.data[by] == v
	})
}

func (s *Server) listSubscriptions(f url.Values) (any, *apiError) {
	status := f.Get("status")
	return s.list(f, "subscription", "/v1/subscriptions", []string{"customer", "status"}, func(e *entry) bool {
		if c := f.Get("customer"); c != "" && e.data["customer"] != c {
			return false
		}
		st, _ := e.data["status"].(string)
		switch status {
		case "":
			// Stripe lists subscriptions that have not been canceled unless
			// asked for status=all.
			return st != "canceled"
		case "all":
			return true
		default:
			return st == status
		}
	})
}

func (s *Server) retrieve(f url.Values, id, typ string) (any, *apiError) {
	if err := checkParams(f); err != nil {
		return nil, err
	}
	e := s.objs[id]
	if e == nil || e.typ != typ {
		return nil, missing(typ, id)
	}
	if e.deleted && typ != "customer" {
		return nil, missing(typ, id)
	}
	return s.view(e), nil
}

func (s *Server) liveCustomer(id string) *apiError {
	e := s.objs[id]
	if e == nil || e.typ != "customer" || e.deleted {
		return missing("customer", id)
	}
	return nil
}

func ownerOf(e *entry) string {
	c, _ := e.data["customer"].(string)
	return c
}

// ---- customers

func (s *Server) updateCustomer(f url.Values, id string) (any, *apiError) {
	if err := s.liveCustomer(id); err != nil {
		return nil, err
	}
	if err := checkParams(f, "email", "name", "phone", "description", "address", "address[", "shipping", "shipping[",
		"metadata", "metadata["); err != nil {
		return nil, err
	}
	c := s.objs[id].data
	for _, k := range []string{"email", "name", "phone", "description"} {
		if f.Has(k) {
			c[k] = nullIfEmpty(f.Get(k))
		}
	}
	if err := setAddress(c, "address", f); err != nil {
		return nil, err
	}
	if f.Has("shipping") {
		if f.Get("shipping") != "" {
			return nil, invalid("Invalid object")
		}
		c["shipping"] = nil
	}
	if hasPrefix(f, "shipping[") {
		sh, _ := c["shipping"].(map[string]any)
		if sh == nil {
			sh = map[string]any{"name": nil, "phone": nil, "address": nil}
		}
		for _, k := range []string{"name", "phone"} {
			if f.Has("shipping[" + k + "]") {
				sh[k] = nullIfEmpty(f.Get("shipping[" + k + "]"))
			}
		}
		sub := url.Values{}
		for k, v := range f {
			if rest, ok := strings.CutPrefix(k, "shipping[address]"); ok {
				sub["address"+rest] = v
			}
		}
		if err := setAddress(sh, "address", sub); err != nil {
			return nil, err
		}
		c["shipping"] = sh
	}
	if err := setMetadata(c, f); err != nil {
		return nil, err
	}
	return s.view(s.objs[id]), nil
}

func (s *Server) deleteCustomer(f url.Values, id string) (any, *apiError) {
	if err := checkParams(f); err != nil {
		return nil, err
	}
	if err := s.liveCustomer(id); err != nil {
		return nil, err
	}
	e := s.objs[id]
	e.deleted = true
	// Deleting a customer cancels its subscriptions and removes its saved
	// payment methods and tax ids.
	for _, o := range s.objs {
		if ownerOf(o) != id || o.deleted {
			continue
		}
		switch o.typ {
		case "subscription":
			if o.data["status"] != "canceled" {
				o.data["status"] = "canceled"
				o.data["canceled_at"] = s.now()
				o.data["ended_at"] = s.now()
			}
		case "payment_method":
			o.data["customer"] = nil
		case "tax_id":
			o.deleted = true
		}
	}
	return map[string]any{"id": id, "object": "customer", "deleted": true}, nil
}

func (s *Server) deleteTaxID(f url.Values, customer, id string) (any, *apiError) {
	if err := checkParams(f); err != nil {
		return nil, err
	}
	if err := s.liveCustomer(customer); err != nil {
		return nil, err
	}
	e := s.objs[id]
	if e == nil || e.typ != "tax_id" || e.deleted || ownerOf(e) != customer {
		return nil, missing("tax_id", id)
	}
	e.deleted = true
	return map[string]any{"id": id, "object": "tax_id", "deleted": true}, nil
}

// searchCustomers answers the customer search with the subset of Stripe's
// query language the connector uses: clauses field:'value' joined by AND,
// on email, name, phone and metadata['key'], matched without regard to
// case.
func (s *Server) searchCustomers(f url.Values) (any, *apiError) {
	if err := checkParams(f, "query", "limit", "page"); err != nil {
		return nil, err
	}
	clauses, err := ParseQuery(f.Get("query"))
	if err != nil {
		return nil, &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "parameter_invalid_string",
			msg: "Invalid search query: " + err.Error(), param: "query"}
	}
	n, aerr := s.limit(f)
	if aerr != nil {
		return nil, aerr
	}
	all := s.ordered("customer", func(e *entry) bool {
		for _, c := range clauses {
			if !c.matches(e.data) {
				return false
			}
		}
		return true
	})
	start := 0
	if p := f.Get("page"); p != "" {
		i, err := strconv.Atoi(strings.TrimPrefix(p, "page_"))
		if err != nil || i < 0 {
			return nil, invalid("Invalid page token")
		}
		start = min(i, len(all))
	}
	end := min(len(all), start+n)
	data := make([]any, 0, end-start)
	for _, e := range all[start:end] {
		data = append(data, s.view(e))
	}
	var next any
	if end < len(all) {
		next = "page_" + strconv.Itoa(end)
	}
	return map[string]any{"object": "search_result", "data": data, "has_more": end < len(all),
		"next_page": next, "url": "/v1/customers/search", "total_count": len(all)}, nil
}

// Clause is one field:'value' term of a search query.
type Clause struct {
	Field string // email, name, phone, or metadata['key'] as "metadata.key"
	Value string
}

// matches compares without regard to case, for every field: Stripe's
// search is not a reliable exact match, so the fake is no more exact than
// it, and a client that needs exact matches must check them itself.
func (c Clause) matches(o map[string]any) bool {
	if key, ok := strings.CutPrefix(c.Field, "metadata."); ok {
		md, _ := o["metadata"].(map[string]any)
		v, _ := md[key].(string)
		return strings.EqualFold(v, c.Value)
	}
	v, _ := o[c.Field].(string)
	return strings.EqualFold(v, c.Value)
}

// ParseQuery parses the subset of Stripe's search query language the fake
// understands: field:'value' clauses (a backslash escapes the next
// character inside quotes) joined by AND.
func ParseQuery(q string) ([]Clause, error) {
	var out []Clause
	rest := strings.TrimSpace(q)
	if rest == "" {
		return nil, fmt.Errorf("empty query")
	}
	for {
		var c Clause
		switch {
		case strings.HasPrefix(rest, "metadata['"):
			rest = rest[len("metadata['"):]
			end := strings.Index(rest, "']")
			if end < 0 {
				return nil, fmt.Errorf("unterminated metadata key")
			}
			c.Field, rest = "metadata."+rest[:end], rest[end+2:]
		default:
			end := strings.IndexByte(rest, ':')
			if end < 0 {
				return nil, fmt.Errorf("expected field:'value'")
			}
			c.Field, rest = rest[:end], rest[end:]
			switch c.Field {
			case "email", "name", "phone":
			default:
				return nil, fmt.Errorf("field %q is not searchable here", c.Field)
			}
		}
		if !strings.HasPrefix(rest, ":'") {
			return nil, fmt.Errorf("expected :'value' after %s", c.Field)
		}
		rest = rest[2:]
		var b strings.Builder
		closed := false
		for i := 0; i < len(rest); i++ {
			ch := rest[i]
			if ch == '\\' && i+1 < len(rest) {
				i++
				b.WriteByte(rest[i])
				continue
			}
			if ch == '\'' {
				rest, closed = rest[i+1:], true
				break
			}
			b.WriteByte(ch)
		}
		if !closed {
			return nil, fmt.Errorf("unterminated string")
		}
		c.Value = b.String()
		out = append(out, c)
		rest = strings.TrimSpace(rest)
		if rest == "" {
			return out, nil
		}
		after, ok := strings.CutPrefix(rest, "AND ")
		if !ok {
			return nil, fmt.Errorf("expected AND between clauses")
		}
		rest = strings.TrimSpace(after)
	}
}

// ---- payment methods and subscriptions

func (s *Server) updatePaymentMethod(f url.Values, id string) (any, *apiError) {
	e := s.objs[id]
	if e == nil || e.typ != "payment_method" {
		return nil, missing("payment_method", id)
	}
	if err := checkParams(f, "billing_details[", "metadata", "metadata["); err != nil {
		return nil, err
	}
	if e.data["customer"] == nil {
		return nil, invalid("You must save this PaymentMethod to a customer before you can update it.")
	}
	bd, _ := e.data["billing_details"].(map[string]any)
	if bd == nil {
		bd = map[string]any{"address": emptyAddress(), "email": nil, "name": nil, "phone": nil}
		e.data["billing_details"] = bd
	}
	for _, k := range []string{"email", "name", "phone"} {
		if f.Has("billing_details[" + k + "]") {
			bd[k] = nullIfEmpty(f.Get("billing_details[" + k + "]"))
		}
	}
	sub := url.Values{}
	for k, v := range f {
		if rest, ok := strings.CutPrefix(k, "billing_details[address]"); ok {
			sub["address"+rest] = v
		}
	}
	if err := setAddress(bd, "address", sub); err != nil {
		return nil, err
	}
	// A payment method's billing address reads as an object of nulls, never
	// null itself.
	if bd["address"] == nil {
		bd["address"] = emptyAddress()
	}
	if err := setMetadata(e.data, f); err != nil {
		return nil, err
	}
	return s.view(e), nil
}

func (s *Server) detach(f url.Values, id string) (any, *apiError) {
	if err := checkParams(f); err != nil {
		return nil, err
	}
	e := s.objs[id]
	if e == nil || e.typ != "payment_method" {
		return nil, missing("payment_method", id)
	}
	if e.data["customer"] == nil {
		return nil, &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: "payment_method_unexpected_state",
			msg: "The payment method you provided is not attached to a customer so detachment is impossible."}
	}
	e.data["customer"] = nil
	return s.view(e), nil
}

func (s *Server) cancelSubscription(f url.Values, id string) (any, *apiError) {
	if err := checkParams(f, "invoice_now", "prorate", "cancellation_details["); err != nil {
		return nil, err
	}
	e := s.objs[id]
	if e == nil || e.typ != "subscription" {
		return nil, missing("subscription", id)
	}
	if e.data["status"] == "canceled" {
		return nil, invalid("A canceled subscription can only update its cancellation_details and metadata.")
	}
	e.data["status"] = "canceled"
	e.data["canceled_at"] = s.now()
	e.data["ended_at"] = s.now()
	return s.view(e), nil
}

// ---- helpers

func setAddress(o map[string]any, key string, f url.Values) *apiError {
	if f.Has(key) {
		if f.Get(key) != "" {
			return invalid("Invalid object")
		}
		o[key] = nil
	}
	prefix := key + "["
	if !hasPrefix(f, prefix) {
		return nil
	}
	a, _ := o[key].(map[string]any)
	if a == nil {
		a = emptyAddress()
	}
	for k, v := range f {
		part, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		part = strings.TrimSuffix(part, "]")
		if _, known := a[part]; !known {
			return unknownParam(k)
		}
		a[part] = nullIfEmpty(v[0])
	}
	o[key] = a
	return nil
}

func setMetadata(o map[string]any, f url.Values) *apiError {
	md, _ := o["metadata"].(map[string]any)
	if md == nil {
		md = map[string]any{}
	}
	if f.Has("metadata") {
		if f.Get("metadata") != "" {
			return invalid("Invalid object")
		}
		md = map[string]any{}
	}
	for k, v := range f {
		key, ok := strings.CutPrefix(k, "metadata[")
		if !ok {
			continue
		}
		key = strings.TrimSuffix(key, "]")
		if v[0] == "" {
			delete(md, key)
		} else {
			md[key] = v[0]
		}
	}
	o["metadata"] = md
	return nil
}

func hasPrefix(f url.Values, prefix string) bool {
	for k := range f {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

func emptyAddress() map[string]any {
	return map[string]any{"city": nil, "country": nil, "line1": nil, "line2": nil, "postal_code": nil, "state": nil}
}

func nullIfEmpty(v string) any {
	if v == "" {
		return nil
	}
	return v
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// deepCopy copies a decoded-JSON value.
func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = deepCopy(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = deepCopy(x)
		}
		return out
	default:
		return v
	}
}

// now is the fake's time: a fixed epoch advancing one second per object, so
// objects sort by creation and runs are repeatable.
func (s *Server) now() int64 { return 1_767_225_600 + int64(s.seq) }
