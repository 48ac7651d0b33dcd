package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/notify/resendtest"
	"github.com/steward-privacy/steward/internal/receipt"
)

func TestAuthenticationAndAuthorization(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.start()
	q := "/v1/consent/check?subject=tg:1&purpose=analytics"
	cases := []struct {
		name   string
		method string
		path   string
		key    string
		body   any
		status int
		code   string
	}{
		{"missing key", "GET", q, "", nil, 401, "unauthenticated"},
		{"malformed key", "GET", q, "not-a-key", nil, 401, "unauthenticated"},
		{"unknown key", "GET", q, "stw_" + strings.Repeat("A", 43), nil, 401, "unauthenticated"},
		{"sdk on a non-visitor subject", "GET", q, e.keys["sdk"], nil, 403, "forbidden"},
		{"sdk recording for a telegram user", "POST", "/v1/consents", e.keys["sdk"], grant("tg:1", "analytics", "granted"), 403, "forbidden"},
		{"sdk linking a visitor to an email", "POST", "/v1/consents", e.keys["sdk"], grant("visitor:abcdefgh1", "analytics", "granted", "linked_subjects", []string{"email:a@b.co"}), 403, "forbidden"},
		{"reviewer may not record", "POST", "/v1/consents", e.keys["reviewer"], grant("tg:1", "analytics", "granted"), 403, "forbidden"},
		{"auditor may not check", "GET", q, e.keys["auditor"], nil, 403, "forbidden"},
	}
	before := countRows(t, e.pool, "consent_events")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := r.do(tc.method, tc.path, tc.key, tc.body)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
			}
			p := res.problem(t)
			if string(p.Code) != tc.code {
				t.Fatalf("code %s, want %s", p.Code, tc.code)
			}
			if tc.status == 401 && !strings.HasPrefix(res.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatal("401 without WWW-Authenticate: Bearer")
			}
		})
	}
	if after := countRows(t, e.pool, "consent_events"); after != before {
		t.Fatalf("refused requests wrote %d events", after-before)
	}
	t.Run("sdk may act on visitors", func(t *testing.T) {
		r.record(e.keys["sdk"], grant("visitor:v0123456789", "analytics", "granted"), "User-Agent", "Mozilla/5.0 test")
		if c := r.check(e.keys["sdk"], "visitor:v0123456789", "analytics", "DE"); !c.Allow {
			t.Fatalf("%+v", c)
		}
		// The browser's own user agent is its proof; the IP only as a keyed hash.
		var ua string
		var ipHash []byte
		if err := e.pool.QueryRow(context.Background(), `SELECT user_agent, ip_hash FROM consent_events WHERE subject_kind = 'visitor'`).Scan(&ua, &ipHash); err != nil {
			t.Fatal(err)
		}
		if ua != "Mozilla/5.0 test" || len(ipHash) != 32 {
			t.Fatalf("proof ua=%q ip_hash=%x", ua, ipHash)
		}
	})
}

func TestBadInputIsA4xxProblemAndWritesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"STEWARD_BODY_LIMIT": "65536"})
	r := e.start()
	fk := e.keys["frontend"]
	huge := `{"subject":"tg:1","purpose":"analytics","state":"granted","source":"bot","notice_version":"1.0","user_agent":"` + strings.Repeat("x", 70000) + `"}`
	tooMany := make([]map[string]any, 1001)
	for i := range tooMany {
		tooMany[i] = map[string]any{"subject": "tg:1", "purpose": "analytics"}
	}
	cases := []struct {
		name   string
		method string
		path   string
		body   any
		ctype  string
		status int
		field  string
	}{
		{"malformed JSON", "POST", "/v1/consents", `{"subject":`, "", 400, ""},
		{"not an object", "POST", "/v1/consents", `[1,2]`, "", 400, ""},
		{"trailing data", "POST", "/v1/consents", `{"subject":"tg:1"} {}`, "", 400, ""},
		{"unknown field", "POST", "/v1/consents", grant("tg:1", "analytics", "granted", "colour", "red"), "", 400, "colour"},
		{"wrong type", "POST", "/v1/consents", grant("tg:1", "analytics", "granted", "notice_version", 2), "", 400, "notice_version"},
		{"bad subject syntax", "POST", "/v1/consents", grant("telegram:1", "analytics", "granted"), "", 400, "subject"},
		{"bad telegram id", "POST", "/v1/consents", grant("tg:-5", "analytics", "granted"), "", 400, "subject"},
		{"bad email", "POST", "/v1/consents", grant("email:no-at-sign", "analytics", "granted"), "", 400, "subject"},
		{"unknown purpose", "POST", "/v1/consents", grant("tg:1", "telepathy", "granted"), "", 400, "purpose"},
		{"essential cannot be refused", "POST", "/v1/consents", grant("tg:1", "essential", "denied"), "", 400, "purpose"},
		{"unknown state", "POST", "/v1/consents", grant("tg:1", "analytics", "maybe"), "", 400, "state"},
		{"unknown source", "POST", "/v1/consents", grant("tg:1", "analytics", "granted", "source", "fax"), "", 400, "source"},
		{"gpc source is Steward's", "POST", "/v1/consents", grant("tg:1", "analytics", "granted", "source", "gpc"), "", 400, "source"},
		{"missing notice version", "POST", "/v1/consents", grant("tg:1", "analytics", "granted", "notice_version", ""), "", 400, "notice_version"},
		{"bad jurisdiction", "POST", "/v1/consents", grant("tg:1", "analytics", "granted", "jurisdiction", "Germany"), "", 400, "jurisdiction"},
		{"bad ip", "POST", "/v1/consents", grant("tg:1", "analytics", "granted", "ip", "999.1.1.1"), "", 400, "ip"},
		{"unknown product", "POST", "/v1/consents", grant("tg:1", "analytics", "granted", "product", "tv"), "", 400, "product"},
		{"wrong content type", "POST", "/v1/consents", `subject=tg:1`, "application/x-www-form-urlencoded", 415, ""},
		{"check: unknown purpose", "GET", "/v1/consent/check?subject=tg:1&purpose=telepathy", nil, "", 400, "purpose"},
		{"check: missing subject", "GET", "/v1/consent/check?purpose=analytics", nil, "", 400, "subject"},
		{"check: unknown parameter", "GET", "/v1/consent/check?subject=tg:1&purpose=analytics&purpse=x", nil, "", 400, "purpse"},
		{"check: bad age", "GET", "/v1/consent/check?subject=tg:1&purpose=analytics&age=old", nil, "", 400, "age"},
		{"batch: over the limit", "POST", "/v1/consent/check", map[string]any{"checks": tooMany}, "", 400, "checks"},
		{"batch: empty", "POST", "/v1/consent/check", map[string]any{"checks": []any{}}, "", 400, "checks"},
		{"batch: bad item names its index", "POST", "/v1/consent/check", map[string]any{"checks": []map[string]any{{"subject": "tg:1", "purpose": "analytics"}, {"subject": "tg:x", "purpose": "analytics"}}}, "", 400, "checks[1].subject"},
		{"history: bad cursor", "GET", "/v1/consents/history?subject=tg:1&cursor=bm9wZQ", nil, "", 400, "cursor"},
		{"history: limit out of range", "GET", "/v1/consents/history?subject=tg:1&limit=5000", nil, "", 400, "limit"},
		{"receipt: not a uuid", "GET", "/v1/consents/receipts/12345", nil, "", 400, "event_id"},
		{"receipt: unknown event", "GET", "/v1/consents/receipts/0190b6f4-0000-7000-8000-000000000000", nil, "", 404, ""},
		{"unknown route", "GET", "/v1/nothing-here", nil, "", 404, ""},
		{"wrong method", "DELETE", "/v1/consents", nil, "", 405, ""},
	}
	before := countRows(t, e.pool, "consent_events") + countRows(t, e.pool, "subjects")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var headers []string
			if tc.ctype != "" {
				headers = []string{"Content-Type", tc.ctype}
			}
			res := r.do(tc.method, tc.path, fk, tc.body, headers...)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d: %s", res.status, tc.status, res.body)
			}
			p := res.problem(t)
			if tc.field != "" {
				found := false
				for _, fe := range p.Errors {
					found = found || fe.Field == tc.field
				}
				if !found {
					t.Fatalf("problem does not name field %q: %s", tc.field, res.body)
				}
			}
		})
	}
	t.Run("oversized body", func(t *testing.T) {
		// Declared over the limit: refused from the headers, before the body.
		res := r.raw(t, "POST /v1/consents HTTP/1.1\r\nHost: steward\r\nAuthorization: Bearer "+fk+
			"\r\nContent-Type: application/json\r\nContent-Length: "+strconv.Itoa(len(huge))+"\r\n\r\n")
		if res.status != 413 {
			t.Fatalf("status %d: %s", res.status, res.body)
		}
		if p := res.problem(t); p.Code != "payload_too_large" {
			t.Fatalf("%+v", p)
		}
		if err := openapiDoc(t).Validate("POST", "/v1/consents", res.status, res.header.Get("Content-Type"), res.body); err != nil {
			t.Fatal(err)
		}
	})
	if after := countRows(t, e.pool, "consent_events") + countRows(t, e.pool, "subjects"); after != before {
		t.Fatalf("bad input wrote %d rows", after-before)
	}
}

func TestConsentReceiptVerifiesAgainstPublishedKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.start()
	ev := r.record(e.keys["frontend"], grant("email:rita@example.org", "marketing", "granted", "ip", "203.0.113.9", "user_agent", "Mozilla/5.0"))
	res := r.do("GET", "/v1/consents/receipts/"+ev.ID, e.keys["auditor"], nil)
	if res.status != 200 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	var out struct {
		Receipt json.RawMessage `json:"receipt"`
		JWS     string          `json:"jws"`
	}
	res.json(t, &out)
	jres := r.do("GET", "/v1/consents/receipts/jwks.json", "", nil)
	set, err := receipt.ParseJWKS(jres.body)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := receipt.Verify(out.JWS, set)
	if err != nil {
		t.Fatalf("receipt does not verify: %v", err)
	}
	var signed, shown map[string]any
	_ = json.Unmarshal(payload, &signed)
	_ = json.Unmarshal(out.Receipt, &shown)
	for _, section := range []string{"header", "processing", "parties", "event"} {
		if signed[section] == nil {
			t.Fatalf("signed receipt lacks %s section: %s", section, payload)
		}
	}
	if s1, _ := json.Marshal(signed); string(s1) != func() string { b, _ := json.Marshal(shown); return string(b) }() {
		t.Fatal("the receipt shown differs from the one signed")
	}
	if strings.Contains(string(payload), "rita@example.org") || strings.Contains(string(payload), "203.0.113.9") {
		t.Fatal("receipt contains raw personal data")
	}
	// A receipt for someone else's kind of subject is not the sdk's to read.
	if res := r.do("GET", "/v1/consents/receipts/"+ev.ID, e.keys["sdk"], nil); res.status != 403 {
		t.Fatalf("sdk read an email subject's receipt: %d", res.status)
	}
}

func TestMarketingWithdrawalUnsubscribesInResend(t *testing.T) {
	t.Parallel()
	fake := resendtest.New(t)
	e := newEnv(t, map[string]string{"STEWARD_RESEND_API_KEY": "re_test", "STEWARD_RESEND_BASE_URL": fake.URL, "STEWARD_RESEND_AUDIENCE_ID": "aud_1"})
	r := e.start()
	fk := e.keys["frontend"]
	fake.AddContact("aud_1", "lena@example.com", false)
	// The web backend knows user:42 is lena@example.com and says so once.
	r.record(fk, grant("user:42", "marketing", "granted", "linked_subjects", []string{"email:Lena@Example.com"}))
	if n := countRows(t, e.pool, "outbox"); n != 0 {
		t.Fatalf("a grant queued %d messages", n)
	}
	r.record(fk, grant("user:42", "marketing", "withdrawn", "source", "web_settings"))
	var payload string
	if err := e.pool.QueryRow(context.Background(), `SELECT payload::text FROM outbox`).Scan(&payload); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.ToLower(payload), "lena") {
		t.Fatal("outbox payload holds the email in the clear")
	}
	res, err := r.app.worker.RunOnce(context.Background())
	if err != nil || res.Delivered != 1 {
		t.Fatalf("worker: %+v %v", res, err)
	}
	c, ok := fake.Contact("aud_1", "lena@example.com")
	if !ok || !c.Unsubscribed {
		t.Fatalf("contact not unsubscribed in Resend: %+v", c)
	}
	for _, req := range fake.Requests() {
		if req.IdempotencyKey == "" {
			t.Fatalf("request without idempotency key: %v", req)
		}
	}
	if strings.Contains(r.logs.String(), "lena") {
		t.Fatal("logs contain the email")
	}
}

func TestOutboxKeepsMessagesWithoutResendKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.start()
	fk := e.keys["frontend"]
	r.record(fk, grant("email:kept@example.com", "marketing", "granted"))
	r.record(fk, grant("email:kept@example.com", "marketing", "withdrawn"))
	res, err := r.app.worker.RunOnce(context.Background())
	if err != nil || res.Kept != 1 || res.Delivered != 0 {
		t.Fatalf("%+v %v", res, err)
	}
	var status string
	if err := e.pool.QueryRow(context.Background(), `SELECT status FROM outbox`).Scan(&status); err != nil || status != "pending" {
		t.Fatalf("status %q %v", status, err)
	}
	if !strings.Contains(r.logs.String(), "STEWARD_RESEND_API_KEY") {
		t.Fatal("the log does not say messages are kept for lack of a key")
	}
}

func TestOperationalEndpointsAndObservability(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.start()
	fk := e.keys["frontend"]
	r.record(fk, grant("email:obs@example.com", "analytics", "granted", "ip", "198.51.100.7"))
	r.check(fk, "email:obs@example.com", "analytics", "DE")
	r.check(fk, "tg:8046152973", "analytics", "DE")

	if res := r.do("GET", "/healthz", "", nil); res.status != 200 {
		t.Fatal(res.status)
	}
	res := r.do("GET", "/readyz", "", nil)
	if res.status != 200 || !strings.Contains(string(res.body), r.app.policies.Current().Revision()) {
		t.Fatalf("readyz %d %s", res.status, res.body)
	}
	if res := r.do("GET", "/openapi.json", "", nil); res.status != 200 || !strings.Contains(string(res.body), `"openapi"`) {
		t.Fatalf("openapi %d", res.status)
	}
	m := string(r.do("GET", "/metrics", "", nil).body)
	for _, want := range []string{
		`steward_http_requests_total{method="GET",route="/v1/consent/check",status="200"} 2`,
		`steward_consent_decisions_total{reason="granted",result="allow"} 1`,
		`steward_consent_decisions_total{reason="no_consent",result="deny"} 1`,
		`steward_http_request_duration_seconds_count{method="POST",route="/v1/consents"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s in:\n%s", want, grepLines(m, "steward_"))
		}
	}
	logs := r.logs.String()
	if !strings.Contains(logs, `"route":"/v1/consent/check"`) || !strings.Contains(logs, `"request_id"`) {
		t.Fatalf("access log missing: %s", logs)
	}
	// A ten-digit id: a short one like 31337 turned up by chance inside a
	// duration or a port number and failed CI once.
	for _, pii := range []string{"obs@example.com", "8046152973", "198.51.100.7"} {
		if strings.Contains(logs, pii) {
			t.Errorf("log contains personal data %q", pii)
		}
	}

	t.Run("a caller's request id is echoed", func(t *testing.T) {
		res := r.do("GET", "/healthz", "", nil, "X-Request-ID", "trace-abc.123")
		if res.header.Get("X-Request-ID") != "trace-abc.123" {
			t.Fatal(res.header.Get("X-Request-ID"))
		}
	})
	t.Run("readiness fails when the database is gone", func(t *testing.T) {
		e2 := newEnv(t, nil)
		r2 := e2.start()
		r2.app.pool.Close()
		res := r2.do("GET", "/readyz", "", nil)
		if res.status != 503 || res.problem(t).Code != "unavailable" {
			t.Fatalf("%d %s", res.status, res.body)
		}
	})
}

func TestPanicIsRecoveredAsProblem(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.start(func(a *application) {
		a.http.Get("/test/panic", func(*fiber.Ctx) error { panic("boom: secret detail") })
	})
	res, err := client.Get(r.base + "/test/panic")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var p map[string]any
	_ = json.NewDecoder(res.Body).Decode(&p)
	if res.StatusCode != 500 || p["code"] != "internal" || strings.Contains(p["detail"].(string), "boom") {
		t.Fatalf("%d %v", res.StatusCode, p)
	}
	if !strings.Contains(r.logs.String(), "boom: secret detail") {
		t.Fatal("panic not logged")
	}
	// The server is still serving.
	if res := r.do("GET", "/healthz", "", nil); res.status != 200 {
		t.Fatal(res.status)
	}
}

func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	started := make(chan struct{})
	r := e.start(func(a *application) {
		a.http.Get("/test/slow", func(c *fiber.Ctx) error {
			close(started)
			time.Sleep(400 * time.Millisecond)
			return c.SendString("finished")
		})
	})
	var wg sync.WaitGroup
	var status int
	var body string
	wg.Add(1)
	go func() {
		defer wg.Done()
		res, err := client.Get(r.base + "/test/slow")
		if err != nil {
			t.Error(err)
			return
		}
		defer res.Body.Close()
		b := make([]byte, 64)
		n, _ := res.Body.Read(b)
		status, body = res.StatusCode, string(b[:n])
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("slow request never started")
	}
	r.stop()
	wg.Wait()
	if status != 200 || body != "finished" {
		t.Fatalf("in-flight request got %d %q", status, body)
	}
	if _, err := (&http.Client{Timeout: time.Second}).Get(r.base + "/healthz"); err == nil {
		t.Fatal("server still accepts connections after shutdown")
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	for name, val := range map[string]string{"STEWARD_BODY_LIMIT": "-1", "STEWARD_READ_TIMEOUT": "soon", "STEWARD_LOG_LEVEL": "loud"} {
		_, err := config.Load(func(k string) string {
			if k == name {
				return val
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%s: %v", name, val, err)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
