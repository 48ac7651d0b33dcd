package creemfake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors/creem/creemfake"
)

func get(t *testing.T, s *creemfake.Server, key, path string, q url.Values) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL()+path+"?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%s: body %q is not a JSON object", path, b)
	}
	return resp.StatusCode, resp.Header, body
}

func TestFake(t *testing.T) {
	s := creemfake.New("key")
	defer s.Close()
	ann := s.AddCustomer(creemfake.Customer{Email: "ann@example.com", Name: "Ann"})
	bob := s.AddCustomer(creemfake.Customer{Email: "bob@example.com", Name: "Bob"})
	var txns []string
	for range 5 {
		txns = append(txns, s.AddTransaction(creemfake.Transaction{Customer: ann}))
	}
	s.AddTransaction(creemfake.Transaction{Customer: bob})
	sub := s.AddSubscription(creemfake.Subscription{Customer: ann})

	// The key is required: Creem answers 403 without a valid one.
	if st, _, body := get(t, s, "", "/v1/customers", url.Values{"email": {"ann@example.com"}}); st != 403 || body["status"] != 403.0 || body["trace_id"] == nil {
		t.Errorf("no key: %d %v", st, body)
	}
	if st, _, _ := get(t, s, "other", "/v1/customers", url.Values{"email": {"ann@example.com"}}); st != 403 {
		t.Errorf("wrong key: %d", st)
	}

	st, _, body := get(t, s, "key", "/v1/customers", url.Values{"email": {"ann@example.com"}})
	if st != 200 || body["id"] != ann || body["object"] != "customer" || body["name"] != "Ann" {
		t.Errorf("by email: %d %v", st, body)
	}
	if st, _, body := get(t, s, "key", "/v1/customers", url.Values{"customer_id": {bob}}); st != 200 || body["email"] != "bob@example.com" {
		t.Errorf("by id: %d %v", st, body)
	}
	st, _, body = get(t, s, "key", "/v1/customers", url.Values{"email": {"ANN@example.com"}})
	if msg, _ := body["message"].([]any); st != 404 || len(msg) != 1 || msg[0] != "Customer not found" {
		t.Errorf("other case: %d %v", st, body)
	}
	s.SetQuirks(creemfake.Quirks{CaseInsensitiveEmail: true})
	if st, _, body := get(t, s, "key", "/v1/customers", url.Values{"email": {"ANN@example.com"}}); st != 200 || body["id"] != ann {
		t.Errorf("case-insensitive quirk: %d %v", st, body)
	}
	s.SetQuirks(creemfake.Quirks{})

	// Pagination: 5 of Ann's transactions, pages of 2.
	var got []string
	for page := 1; ; page++ {
		st, _, body := get(t, s, "key", "/v1/transactions/search", url.Values{"customer_id": {ann}, "page_number": {itoa(page)}, "page_size": {"2"}})
		if st != 200 {
			t.Fatalf("page %d: %d %v", page, st, body)
		}
		for _, it := range body["items"].([]any) {
			m := it.(map[string]any)
			if m["customer"] != ann || m["object"] != "transaction" {
				t.Errorf("item %v", m)
			}
			got = append(got, m["id"].(string))
		}
		p := body["pagination"].(map[string]any)
		if p["total_records"] != 5.0 || p["total_pages"] != 3.0 || p["current_page"] != float64(page) {
			t.Errorf("pagination %v", p)
		}
		if p["next_page"] == nil {
			break
		}
		if p["next_page"] != float64(page+1) {
			t.Fatalf("next_page %v", p["next_page"])
		}
	}
	if strings.Join(got, ",") != strings.Join(txns, ",") {
		t.Errorf("transactions %v, want %v", got, txns)
	}

	st, _, body = get(t, s, "key", "/v1/customers/"+ann+"/subscriptions", nil)
	items, _ := body["items"].([]any)
	if st != 200 || len(items) != 1 {
		t.Fatalf("subscriptions: %d %v", st, body)
	}
	if it := items[0].(map[string]any); it["id"] != sub || it["customer"].(map[string]any)["id"] != ann {
		t.Errorf("subscription %v", it)
	}
	if st, _, _ := get(t, s, "key", "/v1/customers/cust_nobody/subscriptions", nil); st != 404 {
		t.Errorf("unknown customer's subscriptions: %d", st)
	}

	// Failure injection: the next two matching requests, then normal.
	s.FailNext(2, creemfake.Failure{Status: 429, RetryAfter: "7", Path: "/v1/customers"})
	st, h, body := get(t, s, "key", "/v1/customers", url.Values{"customer_id": {ann}})
	if e, _ := body["error"].(map[string]any); st != 429 || h.Get("Retry-After") != "7" || e["code"] != "rate_limit_exceeded" || e["retry_after"] != 7.0 {
		t.Errorf("429: %d %v %v", st, h, body)
	}
	if st, _, _ := get(t, s, "key", "/v1/transactions/search", nil); st != 200 {
		t.Errorf("a request outside the failure's path failed: %d", st)
	}
	if st, _, _ := get(t, s, "key", "/v1/customers", url.Values{"customer_id": {ann}}); st != 429 {
		t.Errorf("second failure: %d", st)
	}
	if st, _, _ := get(t, s, "key", "/v1/customers", url.Values{"customer_id": {ann}}); st != 200 {
		t.Errorf("after the failures: %d", st)
	}
	s.FailNext(1, creemfake.Failure{Status: 400, Message: "bad page"})
	st, _, body = get(t, s, "key", "/v1/transactions/search", nil)
	if msg, _ := body["message"].([]any); st != 400 || len(msg) != 1 || msg[0] != "bad page" || body["error"] != "Bad Request" {
		t.Errorf("400: %d %v", st, body)
	}

	reqs := s.Requests()
	if len(reqs) == 0 || reqs[len(reqs)-1].Status != 400 || reqs[0].Status != 403 {
		t.Errorf("request log %+v", reqs)
	}

	// Digest ignores the excepted customer's data, not anyone else's.
	d := s.Digest(ann)
	s.Delete(txns[0])
	if s.Digest(ann) != d {
		t.Error("deleting Ann's transaction changed the digest without Ann")
	}
	s.AddTransaction(creemfake.Transaction{Customer: bob, CreatedAt: time.Now()})
	if s.Digest(ann) == d {
		t.Error("a new transaction of Bob's did not change the digest")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
