package stripefake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func call(t *testing.T, s *Server, method, path string, form url.Values, key string) answer {
	t.Helper()
	var body io.Reader
	u := s.URL() + path
	if method == http.MethodPost {
		body = strings.NewReader(form.Encode())
	} else if len(form) > 0 {
		u += "?" + form.Encode()
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sk_test_fake")
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: body: %v", method, path, err)
	}
	return answer{resp.StatusCode, resp.Header, out}
}

func errCode(a answer) string {
	e, _ := a.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func ids(a answer) []string {
	var out []string
	data, _ := a.body["data"].([]any)
	for _, d := range data {
		out = append(out, d.(map[string]any)["id"].(string))
	}
	return out
}

func newServer(t *testing.T) *Server {
	s := New()
	t.Cleanup(s.Close)
	return s
}

func TestListPages(t *testing.T) {
	s := newServer(t)
	var all []string
	for range 5 {
		all = append(all, s.AddCustomer(Customer{Email: "p@example.com"}))
	}
	s.AddCustomer(Customer{Email: "P@example.com"})
	slices.Reverse(all) // newest first
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		f := url.Values{"email": {"p@example.com"}, "limit": {"2"}}
		if after != "" {
			f.Set("starting_after", after)
		}
		a := call(t, s, http.MethodGet, "/v1/customers", f, "")
		if a.status != 200 || a.body["object"] != "list" {
			t.Fatalf("list: %d %v", a.status, a.body)
		}
		got = append(got, ids(a)...)
		if a.body["has_more"] != true {
			break
		}
		after = got[len(got)-1]
		if pages > 5 {
			t.Fatal("no end")
		}
	}
	if !slices.Equal(got, all) {
		t.Errorf("pages %v, want %v (exact email, newest first)", got, all)
	}
	if a := call(t, s, http.MethodGet, "/v1/customers", url.Values{"limit": {"101"}}, ""); a.status != 400 {
		t.Errorf("limit 101: %d", a.status)
	}
	if a := call(t, s, http.MethodGet, "/v1/customers", url.Values{"bogus": {"1"}}, ""); a.status != 400 || errCode(a) != "parameter_unknown" {
		t.Errorf("unknown parameter: %d %v", a.status, a.body)
	}
	s.SetMaxLimit(1)
	if a := call(t, s, http.MethodGet, "/v1/customers", url.Values{"limit": {"100"}}, ""); len(ids(a)) != 1 || a.body["has_more"] != true {
		t.Errorf("max limit 1: %v", a.body)
	}
}

func TestSearch(t *testing.T) {
	s := newServer(t)
	a := s.AddCustomer(Customer{Email: "o'neil@example.com", Metadata: map[string]string{"user_id": "u1"}})
	b := s.AddCustomer(Customer{Email: "O'Neil@example.com", Metadata: map[string]string{"user_id": "u10"}})
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{`email:'o\'neil@example.com'`, []string{b, a}}, // case-insensitive, as Stripe
		{`metadata['user_id']:'U1'`, []string{a}},       // case-insensitive too
		{`email:'o\'neil@example.com' AND metadata['user_id']:'u10'`, []string{b}},
	} {
		r := call(t, s, http.MethodGet, "/v1/customers/search", url.Values{"query": {tc.query}}, "")
		if r.status != 200 || r.body["object"] != "search_result" || !slices.Equal(ids(r), tc.want) {
			t.Errorf("search %s: %d %v; want %v", tc.query, r.status, ids(r), tc.want)
		}
	}
	r := call(t, s, http.MethodGet, "/v1/customers/search", url.Values{"query": {`email:'o\'neil@example.com'`}, "limit": {"1"}}, "")
	if !slices.Equal(ids(r), []string{b}) || r.body["next_page"] == nil {
		t.Fatalf("first page %v", r.body)
	}
	r = call(t, s, http.MethodGet, "/v1/customers/search", url.Values{"query": {`email:'o\'neil@example.com'`}, "limit": {"1"}, "page": {r.body["next_page"].(string)}}, "")
	if !slices.Equal(ids(r), []string{a}) || r.body["has_more"] != false {
		t.Errorf("second page %v", r.body)
	}
	for _, bad := range []string{`email:'unterminated`, `email:"x"`, `balance:'1'`, `email:'a' OR email:'b'`, ``} {
		if r := call(t, s, http.MethodGet, "/v1/customers/search", url.Values{"query": {bad}}, ""); r.status != 400 {
			t.Errorf("query %q: %d", bad, r.status)
		}
	}
}

func TestUpdateCustomer(t *testing.T) {
	s := newServer(t)
	id := s.AddCustomer(Customer{Email: "u@example.com", Name: "U", Phone: "+1", Address: &Address{City: "Riga"},
		Shipping: &Shipping{Name: "U"}, Metadata: map[string]string{"user_id": "u1", "keep": "k"}})
	r := call(t, s, http.MethodPost, "/v1/customers/"+id, url.Values{"email": {""}, "phone": {""}, "name": {"[redacted]"},
		"address": {""}, "shipping": {""}, "metadata[user_id]": {""}}, "k1")
	if r.status != 200 {
		t.Fatalf("update: %d %v", r.status, r.body)
	}
	c, _ := s.Customer(id)
	md := c["metadata"].(map[string]any)
	if c["email"] != nil || c["phone"] != nil || c["name"] != "[redacted]" || c["address"] != nil || c["shipping"] != nil ||
		md["user_id"] != nil || md["keep"] != "k" {
		t.Errorf("after update: %v", c)
	}
	r = call(t, s, http.MethodPost, "/v1/customers/"+id, url.Values{"address[city]": {"Vilnius"}, "metadata": {""}}, "")
	c, _ = s.Customer(id)
	if r.status != 200 || c["address"].(map[string]any)["city"] != "Vilnius" || len(c["metadata"].(map[string]any)) != 0 {
		t.Errorf("address part and metadata reset: %v", c)
	}
	if r := call(t, s, http.MethodPost, "/v1/customers/"+id, url.Values{"balance": {"1"}}, ""); r.status != 400 {
		t.Errorf("unknown parameter: %d", r.status)
	}
	if r := call(t, s, http.MethodPost, "/v1/customers/cus_nope", url.Values{"email": {""}}, ""); r.status != 404 || errCode(r) != "resource_missing" {
		t.Errorf("missing customer: %d %v", r.status, r.body)
	}
}

func TestDeleteCustomer(t *testing.T) {
	s := newServer(t)
	id := s.AddCustomer(Customer{Email: "d@example.com", TaxIDs: []TaxID{{Type: "eu_vat", Value: "EE1"}}})
	pm := s.AddPaymentMethod(PaymentMethod{Customer: id})
	sub := s.AddSubscription(Subscription{Customer: id, Prices: []string{"price_1"}})
	r := call(t, s, http.MethodDelete, "/v1/customers/"+id, nil, "")
	if r.status != 200 || r.body["deleted"] != true || r.body["id"] != id {
		t.Fatalf("delete: %d %v", r.status, r.body)
	}
	if g := call(t, s, http.MethodGet, "/v1/customers/"+id, nil, ""); g.status != 200 || g.body["deleted"] != true || g.body["email"] != nil {
		t.Errorf("GET deleted: %d %v", g.status, g.body)
	}
	if g := call(t, s, http.MethodDelete, "/v1/customers/"+id, nil, ""); g.status != 404 || errCode(g) != "resource_missing" {
		t.Errorf("second delete: %d %v", g.status, g.body)
	}
	if l := call(t, s, http.MethodGet, "/v1/customers", url.Values{"email": {"d@example.com"}}, ""); len(ids(l)) != 0 {
		t.Errorf("deleted customer listed")
	}
	p, _ := s.PaymentMethod(pm)
	sb, _ := s.Subscription(sub)
	if p["customer"] != nil || sb["status"] != "canceled" || !s.Deleted(id) {
		t.Errorf("after delete: pm %v, subscription %v", p["customer"], sb["status"])
	}
	if l := call(t, s, http.MethodGet, "/v1/subscriptions", url.Values{"customer": {id}}, ""); len(ids(l)) != 0 {
		t.Errorf("canceled subscription listed without status=all")
	}
	if l := call(t, s, http.MethodGet, "/v1/subscriptions", url.Values{"customer": {id}, "status": {"all"}}, ""); !slices.Equal(ids(l), []string{sub}) {
		t.Errorf("status=all: %v", ids(l))
	}
}

func TestDetachAndCancel(t *testing.T) {
	s := newServer(t)
	c := s.AddCustomer(Customer{})
	pm := s.AddPaymentMethod(PaymentMethod{Customer: c, BillingDetails: BillingDetails{Email: "b@example.com", Name: "B"}})
	sub := s.AddSubscription(Subscription{Customer: c})
	if r := call(t, s, http.MethodPost, "/v1/payment_methods/"+pm, url.Values{"billing_details[email]": {""}, "billing_details[address]": {""}}, ""); r.status != 200 {
		t.Fatalf("update pm: %v", r.body)
	}
	if r := call(t, s, http.MethodPost, "/v1/payment_methods/"+pm+"/detach", nil, ""); r.status != 200 || r.body["customer"] != nil {
		t.Fatalf("detach: %v", r.body)
	}
	p, _ := s.PaymentMethod(pm)
	bd := p["billing_details"].(map[string]any)
	if bd["email"] != nil || bd["name"] != "B" || bd["address"] == nil {
		t.Errorf("billing details %v", bd)
	}
	if r := call(t, s, http.MethodPost, "/v1/payment_methods/"+pm+"/detach", nil, ""); r.status != 400 {
		t.Errorf("second detach: %d", r.status)
	}
	if r := call(t, s, http.MethodPost, "/v1/payment_methods/"+pm, url.Values{"billing_details[name]": {""}}, ""); r.status != 400 {
		t.Errorf("update of a detached method: %d", r.status)
	}
	if r := call(t, s, http.MethodDelete, "/v1/subscriptions/"+sub, nil, ""); r.status != 200 || r.body["status"] != "canceled" {
		t.Errorf("cancel: %v", r.body)
	}
	if r := call(t, s, http.MethodDelete, "/v1/subscriptions/"+sub, nil, ""); r.status != 400 {
		t.Errorf("second cancel: %d", r.status)
	}
}

func TestIdempotency(t *testing.T) {
	s := newServer(t)
	id := s.AddCustomer(Customer{Email: "i@example.com", Name: "I"})
	first := call(t, s, http.MethodPost, "/v1/customers/"+id, url.Values{"email": {""}}, "key-1")
	// Changed behind the key's back: a replay still answers the first
	// result and does not apply again.
	call(t, s, http.MethodPost, "/v1/customers/"+id, url.Values{"email": {"again@example.com"}}, "")
	replay := call(t, s, http.MethodPost, "/v1/customers/"+id, url.Values{"email": {""}}, "key-1")
	if replay.status != 200 || replay.header.Get("Idempotent-Replayed") != "true" || replay.body["email"] != nil {
		t.Errorf("replay: %d %v %v", replay.status, replay.header, replay.body)
	}
	if c, _ := s.Customer(id); c["email"] != "again@example.com" {
		t.Errorf("replay applied again: %v", c["email"])
	}
	if first.header.Get("Idempotent-Replayed") != "" {
		t.Error("first answer marked replayed")
	}
	other := call(t, s, http.MethodPost, "/v1/customers/"+id, url.Values{"name": {""}}, "key-1")
	if e, _ := other.body["error"].(map[string]any); other.status != 400 || e["type"] != "idempotency_error" {
		t.Errorf("key reused with other parameters: %d %v", other.status, other.body)
	}
	reqs := s.Requests()
	if len(reqs) != 4 || reqs[0].IdempotencyKey != "key-1" || !reqs[2].Replayed || reqs[1].Form.Get("email") != "again@example.com" {
		t.Errorf("requests %+v", reqs)
	}
	if w := s.Writes(); len(w) != 4 {
		t.Errorf("writes %d", len(w))
	}
}

func TestFailures(t *testing.T) {
	s := newServer(t)
	id := s.AddCustomer(Customer{})
	s.RateLimit(2, 3e9)
	for range 2 {
		r := call(t, s, http.MethodGet, "/v1/customers/"+id, nil, "")
		if r.status != 429 || r.header.Get("Retry-After") != "3" || errCode(r) != "rate_limit" {
			t.Errorf("rate limit: %d %v %v", r.status, r.header, r.body)
		}
	}
	if r := call(t, s, http.MethodGet, "/v1/customers/"+id, nil, ""); r.status != 200 {
		t.Errorf("after the failures: %d", r.status)
	}
	s.Fail(Failure{Status: 500, Type: "api_error", Message: "boom", Method: http.MethodPost, Path: "/v1/customers/"})
	if r := call(t, s, http.MethodGet, "/v1/customers/"+id, nil, ""); r.status != 200 {
		t.Errorf("GET hit a POST failure: %d", r.status)
	}
	if r := call(t, s, http.MethodPost, "/v1/customers/"+id, url.Values{"name": {"x"}}, "k"); r.status != 500 {
		t.Errorf("POST: %d", r.status)
	}
	// An injected failure is not saved under the key: the retry runs.
	if r := call(t, s, http.MethodPost, "/v1/customers/"+id, url.Values{"name": {"x"}}, "k"); r.status != 200 || r.body["name"] != "x" {
		t.Errorf("retry after an injected failure: %d %v", r.status, r.body)
	}
	s.BadRequest(1, "parameter_invalid", "nope")
	if r := call(t, s, http.MethodGet, "/v1/charges", nil, ""); r.status != 400 || errCode(r) != "parameter_invalid" {
		t.Errorf("bad request: %d %v", r.status, r.body)
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/v1/customers", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("without a key: %d", resp.StatusCode)
	}
}
