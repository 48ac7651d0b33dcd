package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/api"
)

// BenchmarkCenterPages measures the privacy center's server time through
// the whole stack (fiber, the request service, PostgreSQL, templates), each
// page against a baseline measured in the same run on the same server:
//
//   - the status page of a request (cookie token; the request, its
//     timeline, progress and links rendered in the person's language)
//     against GET /v1/privacy-requests/{id}/status, the same lookup
//     answered as JSON;
//   - the request form (six types, every ISO country and US state, named
//     and collated in the page's language) against the center's static
//     stylesheet, which is what serving any page costs without rendering.
//
// Reports µs per page for each and the ratios (x-json, x-static).
func BenchmarkCenterPages(b *testing.B) {
	e := newEnv(b, map[string]string{"STEWARD_TELEGRAM_BOT_TOKEN": testBotToken})
	r := e.start()
	res := r.do("POST", "/v1/privacy-requests", e.keys["frontend"], map[string]any{
		"type": "access", "subject": "tg:7770001", "region": "DE", "channel": "bot", "identity_asserted": true, "language": "ru"})
	if res.status != 201 {
		b.Fatalf("create: %d %s", res.status, res.body)
	}
	var c createdReq
	res.json(b, &c)
	id := c.Request.ID
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 10 * time.Second}
	get := func(path string, hdr ...string) {
		req, err := http.NewRequest("GET", r.base+path, nil)
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d %.200s", path, resp.StatusCode, body)
		}
	}
	cookie := fmt.Sprintf("steward_req_%s=%s; steward_lang=ru", id, c.StatusToken)
	pages := []struct {
		name     string
		page     func()
		baseline func()
	}{
		{"status", func() { get("/privacy/bot/requests/"+id, "Cookie", cookie) },
			func() { get("/v1/privacy-requests/"+id+"/status", api.StatusTokenHeader, c.StatusToken) }},
		{"form", func() { get("/privacy/web/request?lang=uz") },
			func() { get("/privacy/static/site.css") }},
	}
	// The status page must really show the request (not a sign-in page).
	{
		req, _ := http.NewRequest("GET", r.base+"/privacy/bot/requests/"+id, nil)
		req.Header.Set("Cookie", cookie)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if !strings.Contains(string(body), `class="state state-`) {
			b.Fatalf("status page does not show the request: %s", body)
		}
	}
	const rounds, per = 5, 200
	took := map[string]time.Duration{}
	for _, p := range pages {
		for range 50 { // warm: connections, template and collator caches
			p.page()
			p.baseline()
		}
	}
	for b.Loop() {
		for _, p := range pages {
			for range rounds {
				start := time.Now()
				for range per {
					p.page()
				}
				took[p.name] += time.Since(start)
				start = time.Now()
				for range per {
					p.baseline()
				}
				took[p.name+"-base"] += time.Since(start)
			}
		}
	}
	n := float64(b.N * rounds * per)
	us := func(d time.Duration) float64 { return float64(d.Microseconds()) / n }
	b.ReportMetric(us(took["status"]), "status-µs")
	b.ReportMetric(us(took["status-base"]), "status-json-µs")
	b.ReportMetric(us(took["status"])/us(took["status-base"]), "x-json")
	b.ReportMetric(us(took["form"]), "form-µs")
	b.ReportMetric(us(took["form-base"]), "static-µs")
	b.ReportMetric(us(took["form"])/us(took["form-base"]), "x-static")
}
