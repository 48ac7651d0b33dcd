// Package creemfake is a small, stateful, in-memory fake of the parts of
// Creem's API the Creem connector uses, for tests (the connector's own and
// Steward's end-to-end tests). It serves, with Creem's JSON shapes,
// pagination and error bodies as its documentation gives them
// (https://docs.creem.io/api-reference):
//
//	GET /v1/customers?customer_id=… | ?email=…         one customer, or 404
//	GET /v1/customers/{id}/subscriptions?page_number=&page_size=
//	GET /v1/transactions/search?customer_id=&page_number=&page_size=
//
// Every request must carry the store's key in the x-api-key header; without
// it (or with another) the answer is 403 Forbidden, which is what Creem's
// error documentation gives for a missing or invalid key.
//
// Where Creem's documentation is silent the fake chooses, and says so:
// lists are in insertion order (Quirks.NewestFirst reverses them); page_size defaults to 10 (documented) and is
// capped at 100 (not documented); emails match exactly unless
// Quirks.CaseInsensitiveEmail is set.
package creemfake

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Customer is a Creem customer. Zero fields get defaults when added.
type Customer struct {
	ID        string // cust_…; generated when empty
	Email     string
	Name      string
	Country   string // ISO alpha-2
	CreatedAt time.Time
}

// Subscription is a Creem subscription of a customer.
type Subscription struct {
	ID               string // sub_…; generated when empty
	Customer         string // the customer's id; required
	Product          string // prod_…; generated when empty
	ProductName      string
	Price            int64 // cents
	Currency         string
	Status           string // default "active"
	CurrentPeriodEnd time.Time
	CreatedAt        time.Time
}

// Transaction is a Creem transaction (a payment or an invoice of a
// subscription).
type Transaction struct {
	ID           string // tran_…; generated when empty
	Customer     string // the customer's id; required
	Subscription string // sub_…, optional
	Amount       int64  // cents
	TaxAmount    int64
	TaxCountry   string
	Currency     string // default "EUR"
	Type         string // "payment" or "invoice"; default "payment"
	Status       string // default "paid"
	CreatedAt    time.Time
}

// Request is one request the fake received.
type Request struct {
	Method string
	Path   string
	Query  url.Values
	Status int // what the fake answered
}

// Failure is an injected failure.
type Failure struct {
	// Status is the HTTP status to answer with (429, 500, 401, 400, ...).
	// Zero with a Delay only delays the request, then serves it.
	Status int
	// RetryAfter, if set, is sent as the Retry-After header.
	RetryAfter string
	// Message is Creem's error message; default the status text.
	Message string
	// Path, if set, limits the failure to requests whose path starts with
	// it; other requests are served and do not count.
	Path string
	// Delay holds the request this long first (or until the client gives
	// up), to test timeouts and cancellation.
	Delay time.Duration
}

// Quirks make the fake misbehave in ways the real API might, to test the
// connector's defences.
type Quirks struct {
	// CaseInsensitiveEmail matches ?email= ignoring case.
	CaseInsensitiveEmail bool
	// IgnoreCustomerFilter makes /v1/transactions/search ignore
	// customer_id and list every transaction of the store.
	IgnoreCustomerFilter bool
	// NewestFirst lists in reverse insertion order (Creem documents no
	// order).
	NewestFirst bool
}

// Server is the fake. It is safe for concurrent use.
type Server struct {
	apiKey string
	srv    *httptest.Server

	mu          sync.Mutex
	clock       time.Time // default CreatedAt, advancing a minute per object
	customers   []*Customer
	subs        []*Subscription
	txns        []*Transaction
	requests    []Request
	failures    []pending
	quirks      Quirks
	maxPageSize int
}

type pending struct {
	f    Failure
	left int
}

// New starts a fake serving the store whose API key is apiKey. Close it
// when done.
func New(apiKey string) *Server {
	s := &Server{apiKey: apiKey, maxPageSize: 100, clock: time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// NewAt starts a fake of the store whose API key is apiKey, listening on
// addr (host:port; port 0 picks a free one), for a process that serves the
// fake to others, such as `steward demo peers`. Close it when done.
func NewAt(apiKey, addr string) (*Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("creemfake: listen on %s: %w", addr, err)
	}
	s := &Server{apiKey: apiKey, maxPageSize: 100, clock: time.Date(2025, 1, 1, 9, 0, 0, 0, time.UTC)}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	_ = s.srv.Listener.Close()
	s.srv.Listener = l
	s.srv.Start()
	return s, nil
}

// URL is the fake's base URL, for the connector's Config.BaseURL.
func (s *Server) URL() string { return s.srv.URL }

// Close shuts the fake down.
func (s *Server) Close() { s.srv.Close() }

// SetQuirks sets the fake's misbehaviour.
func (s *Server) SetQuirks(q Quirks) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.quirks = q
}

// AddCustomer adds a customer and returns its id.
func (s *Server) AddCustomer(c Customer) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.ID == "" {
		c.ID = newID("cust_")
	}
	if c.Country == "" {
		c.Country = "NL"
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = s.tick()
	}
	if s.customer(c.ID) != nil {
		panic("creemfake: duplicate customer id " + c.ID)
	}
	s.customers = append(s.customers, &c)
	return c.ID
}

// AddSubscription adds a subscription of an existing customer and returns
// its id.
func (s *Server) AddSubscription(sub Subscription) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.customer(sub.Customer) == nil {
		panic("creemfake: AddSubscription: unknown customer " + sub.Customer)
	}
	if sub.ID == "" {
		sub.ID = newID("sub_")
	}
	if sub.Product == "" {
		sub.Product = newID("prod_")
	}
	if sub.ProductName == "" {
		sub.ProductName = "Pro monthly"
	}
	if sub.Price == 0 {
		sub.Price = 1000
	}
	if sub.Currency == "" {
		sub.Currency = "EUR"
	}
	if sub.Status == "" {
		sub.Status = "active"
	}
	if sub.CreatedAt.IsZero() {
		sub.CreatedAt = s.tick()
	}
	if sub.CurrentPeriodEnd.IsZero() {
		sub.CurrentPeriodEnd = sub.CreatedAt.AddDate(0, 1, 0)
	}
	s.subs = append(s.subs, &sub)
	return sub.ID
}

// AddTransaction adds a transaction of an existing customer and returns its
// id.
func (s *Server) AddTransaction(t Transaction) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.customer(t.Customer) == nil {
		panic("creemfake: AddTransaction: unknown customer " + t.Customer)
	}
	if t.ID == "" {
		t.ID = newID("tran_")
	}
	if t.Amount == 0 {
		t.Amount = 1000
	}
	if t.Currency == "" {
		t.Currency = "EUR"
	}
	if t.Type == "" {
		t.Type = "payment"
	}
	if t.Status == "" {
		t.Status = "paid"
	}
	if t.TaxCountry == "" {
		t.TaxCountry = "NL"
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.tick()
	}
	s.txns = append(s.txns, &t)
	return t.ID
}

// Delete removes the object with id (a customer, subscription or
// transaction), as Creem's support would on request, and says whether it
// existed. Deleting a customer leaves its subscriptions and transactions.
func (s *Server) Delete(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.customers) + len(s.subs) + len(s.txns)
	s.customers = slices.DeleteFunc(s.customers, func(c *Customer) bool { return c.ID == id })
	s.subs = slices.DeleteFunc(s.subs, func(x *Subscription) bool { return x.ID == id })
	s.txns = slices.DeleteFunc(s.txns, func(x *Transaction) bool { return x.ID == id })
	return len(s.customers)+len(s.subs)+len(s.txns) < n
}

// Digest is a digest of every object the store holds except those of the
// given customers (the customers themselves, their subscriptions and
// transactions): a test checks an operation on one person left everyone
// else's data as it was.
func (s *Server) Digest(exceptCustomers ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	skip := func(id string) bool { return slices.Contains(exceptCustomers, id) }
	var objs []any
	for _, c := range s.customers {
		if !skip(c.ID) {
			objs = append(objs, s.customerJSON(c))
		}
	}
	for _, x := range s.subs {
		if !skip(x.Customer) {
			objs = append(objs, s.subscriptionJSON(x))
		}
	}
	for _, x := range s.txns {
		if !skip(x.Customer) {
			objs = append(objs, transactionJSON(x))
		}
	}
	b, err := json.Marshal(objs)
	if err != nil {
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// FailNext makes the next n requests (those matching f.Path, if set) fail
// as f says. Failures queue: a second FailNext applies after the first is
// used up.
func (s *Server) FailNext(n int, f Failure) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, pending{f: f, left: n})
}

// Requests returns the requests received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.requests))
	for i, r := range s.requests {
		r.Query = cloneValues(r.Query)
		out[i] = r
	}
	return out
}

// ResetRequests forgets the requests received so far.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	status := s.handle(w, r)
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: cloneValues(r.URL.Query()), Status: status})
	s.mu.Unlock()
}

// handle serves one request and returns the status it answered.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) int {
	if f, ok := s.takeFailure(r.URL.Path); ok {
		if f.Delay > 0 {
			if !sleep(r.Context(), f.Delay) {
				return 499 // the client went away; nothing is written
			}
		}
		if f.Status != 0 {
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			return writeError(w, f.Status, f.Message)
		}
	}
	if r.Header.Get("x-api-key") != s.apiKey || s.apiKey == "" {
		return writeError(w, http.StatusForbidden, "")
	}
	if r.Method != http.MethodGet {
		return writeError(w, http.StatusNotFound, fmt.Sprintf("Cannot %s %s", r.Method, r.URL.Path))
	}
	q := r.URL.Query()
	switch p := r.URL.Path; {
	case p == "/v1/customers":
		return s.getCustomer(w, q)
	case strings.HasPrefix(p, "/v1/customers/") && strings.HasSuffix(p, "/subscriptions"):
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/v1/customers/"), "/subscriptions")
		return s.customerSubscriptions(w, id, q)
	case p == "/v1/transactions/search":
		return s.searchTransactions(w, q)
	}
	return writeError(w, http.StatusNotFound, fmt.Sprintf("Cannot GET %s", r.URL.Path))
}

func (s *Server) takeFailure(path string) (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.failures {
		p := &s.failures[i]
		if p.f.Path != "" && !strings.HasPrefix(path, p.f.Path) {
			continue
		}
		f := p.f
		if p.left--; p.left == 0 {
			s.failures = slices.Delete(s.failures, i, i+1)
		}
		return f, true
	}
	return Failure{}, false
}

func (s *Server) getCustomer(w http.ResponseWriter, q url.Values) int {
	id, email := q.Get("customer_id"), q.Get("email")
	if (id == "") == (email == "") {
		return writeError(w, http.StatusBadRequest, "Either customer_id or email must be provided")
	}
	s.mu.Lock()
	var found *Customer
	for _, c := range s.customers {
		if id != "" && c.ID == id ||
			email != "" && (c.Email == email || s.quirks.CaseInsensitiveEmail && strings.EqualFold(c.Email, email)) {
			found = c
			break
		}
	}
	var body map[string]any
	if found != nil {
		body = s.customerJSON(found)
	}
	s.mu.Unlock()
	if found == nil {
		return writeError(w, http.StatusNotFound, "Customer not found")
	}
	return writeJSON(w, http.StatusOK, body)
}

func (s *Server) customerSubscriptions(w http.ResponseWriter, id string, q url.Values) int {
	number, size, msg := s.pageParams(q)
	if msg != "" {
		return writeError(w, http.StatusBadRequest, msg)
	}
	s.mu.Lock()
	if s.customer(id) == nil {
		s.mu.Unlock()
		return writeError(w, http.StatusNotFound, "Customer not found")
	}
	var items []any
	for _, x := range s.subs {
		if x.Customer == id {
			items = append(items, s.subscriptionJSON(x))
		}
	}
	if s.quirks.NewestFirst {
		slices.Reverse(items)
	}
	s.mu.Unlock()
	return writeJSON(w, http.StatusOK, paginate(items, number, size))
}

func (s *Server) searchTransactions(w http.ResponseWriter, q url.Values) int {
	number, size, msg := s.pageParams(q)
	if msg != "" {
		return writeError(w, http.StatusBadRequest, msg)
	}
	id := q.Get("customer_id")
	s.mu.Lock()
	var items []any
	for _, x := range s.txns {
		if id == "" || x.Customer == id || s.quirks.IgnoreCustomerFilter {
			items = append(items, transactionJSON(x))
		}
	}
	if s.quirks.NewestFirst {
		slices.Reverse(items)
	}
	s.mu.Unlock()
	return writeJSON(w, http.StatusOK, paginate(items, number, size))
}

// pageParams reads page_number (default 1) and page_size (default 10,
// capped at the fake's maximum).
func (s *Server) pageParams(q url.Values) (number, size int, msg string) {
	number, size = 1, 10
	if v := q.Get("page_number"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, "page_number must be a positive number"
		}
		number = n
	}
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, "page_size must be a positive number"
		}
		size = n
	}
	s.mu.Lock()
	size = min(size, s.maxPageSize)
	s.mu.Unlock()
	return number, size, ""
}

// paginate is Creem's list shape: {"items": [...], "pagination":
// {"total_records", "total_pages", "current_page", "next_page",
// "prev_page"}}, next_page and prev_page null at the ends.
func paginate(all []any, number, size int) map[string]any {
	total := len(all)
	pages := (total + size - 1) / size
	lo := min((number-1)*size, total)
	hi := min(lo+size, total)
	items := all[lo:hi]
	if items == nil {
		items = []any{}
	}
	var next, prev any
	if number < pages {
		next = number + 1
	}
	if number > 1 {
		prev = number - 1
	}
	return map[string]any{
		"items": items,
		"pagination": map[string]any{
			"total_records": total, "total_pages": pages, "current_page": number,
			"next_page": next, "prev_page": prev,
		},
	}
}

func (s *Server) customer(id string) *Customer {
	for _, c := range s.customers {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// tick is the next default creation time.
func (s *Server) tick() time.Time {
	s.clock = s.clock.Add(time.Minute)
	return s.clock
}

const stamp = "2006-01-02T15:04:05.000Z07:00"

// customerJSON is Creem's customer object.
func (s *Server) customerJSON(c *Customer) map[string]any {
	return map[string]any{
		"id": c.ID, "mode": "test", "object": "customer",
		"email": c.Email, "name": c.Name, "country": c.Country,
		"created_at": c.CreatedAt.UTC().Format(stamp), "updated_at": c.CreatedAt.UTC().Format(stamp),
	}
}

// subscriptionJSON is Creem's subscription object as the list endpoints
// return it: product and customer expanded.
func (s *Server) subscriptionJSON(x *Subscription) map[string]any {
	var cust any = x.Customer
	if c := s.customer(x.Customer); c != nil {
		cust = s.customerJSON(c)
	}
	created := x.CreatedAt.UTC().Format(stamp)
	return map[string]any{
		"id": x.ID, "mode": "test", "object": "subscription",
		"product": map[string]any{
			"id": x.Product, "mode": "test", "object": "product", "name": x.ProductName,
			"price": x.Price, "currency": x.Currency, "billing_type": "recurring",
			"billing_period": "every-month", "status": "active", "tax_mode": "exclusive",
			"tax_category": "saas", "created_at": created, "updated_at": created,
		},
		"customer":                  cust,
		"items":                     []any{},
		"collection_method":         "charge_automatically",
		"status":                    x.Status,
		"current_period_start_date": x.CurrentPeriodEnd.AddDate(0, -1, 0).UTC().Format(stamp),
		"current_period_end_date":   x.CurrentPeriodEnd.UTC().Format(stamp),
		"canceled_at":               nil,
		"created_at":                created,
		"updated_at":                created,
	}
}

// transactionJSON is Creem's transaction object: customer, order and
// subscription as ids, times as Unix milliseconds.
func transactionJSON(x *Transaction) map[string]any {
	var sub any
	if x.Subscription != "" {
		sub = x.Subscription
	}
	return map[string]any{
		"id": x.ID, "mode": "test", "object": "transaction",
		"amount": x.Amount, "amount_paid": x.Amount + x.TaxAmount, "discount_amount": 0,
		"currency": x.Currency, "type": x.Type, "tax_country": x.TaxCountry, "tax_amount": x.TaxAmount,
		"status": x.Status, "refunded_amount": 0, "order": "ord_" + strings.TrimPrefix(x.ID, "tran_"),
		"subscription": sub, "customer": x.Customer, "description": "Payment",
		"created_at": x.CreatedAt.UnixMilli(),
	}
}

// writeError writes Creem's documented error body: {"trace_id", "status",
// "error", "message": [...], "timestamp"}; 403 has no message, and 429 has
// the rate-limit page's {"error": {"code", "message", "retry_after"}}.
func writeError(w http.ResponseWriter, status int, message string) int {
	if status == http.StatusTooManyRequests {
		if message == "" {
			message = "Rate limit exceeded."
		}
		body := map[string]any{"error": map[string]any{"code": "rate_limit_exceeded", "message": message}}
		if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err == nil {
			body["error"].(map[string]any)["retry_after"] = ra
		}
		return writeJSON(w, status, body)
	}
	body := map[string]any{
		"trace_id": newUUID(), "status": status, "error": http.StatusText(status),
		"timestamp": time.Now().UnixMilli(),
	}
	if status != http.StatusForbidden || message != "" {
		if message == "" {
			message = http.StatusText(status)
		}
		body["message"] = []string{message}
	}
	return writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) int {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return status
}

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// newID is prefix and 22 random base-62 characters, the shape of Creem's
// ids (cust_1OcIK1GEuVvXZwD19tjq2z).
func newID(prefix string) string {
	b := make([]byte, 22)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return prefix + string(b)
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
