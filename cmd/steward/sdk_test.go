package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/internal/sdk"
)

// TestConsentSDKEndpoints: `steward serve` serves the consent SDK (script
// by content hash, alias, typings, manifest) and the banner data, reads
// STEWARD_CORS_ORIGINS and STEWARD_GEO_HEADER, and answers the SDK's CORS
// preflights only for allowed origins; every response as openapi.json
// documents it. (The SDK itself is driven in a browser in internal/sdk.)
func TestConsentSDKEndpoints(t *testing.T) {
	t.Parallel()
	e := newEnv(t, map[string]string{"STEWARD_CORS_ORIGINS": "https://shop.example", "STEWARD_GEO_HEADER": "CF-IPCountry"})
	r := e.start()
	sdkKey := e.keys["sdk"]

	var m sdk.Manifest
	res := r.do("GET", "/sdk/v1/manifest.json", "", nil)
	res.json(t, &m)
	if res.status != 200 || m.Integrity != sdk.Current().Integrity || m.URL != sdk.Current().URL() {
		t.Fatalf("manifest %d %+v", res.status, m)
	}
	if res = r.do("GET", m.URL, "", nil); res.status != 200 || res.header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Errorf("script: %d %q", res.status, res.header.Get("Cache-Control"))
	}
	if res = r.do("GET", m.URL, "", nil, "If-None-Match", `"`+m.Hash+`"`); res.status != 304 {
		t.Errorf("revalidated script: %d", res.status)
	}
	if res = r.do("GET", "/sdk/v1/steward-consent.ffffffffffffffff.js", "", nil); res.status != 404 {
		t.Errorf("unknown build: %d", res.status)
	}
	if res = r.do("GET", m.TypingsURL, "", nil); res.status != 200 || !strings.Contains(string(res.body), "StewardConsent") {
		t.Errorf("typings: %d", res.status)
	}
	// The alias redirects; the harness's client would follow it.
	res = r.noRedirect(t, "GET", m.LatestURL, nil)
	if res.status != 302 || res.header.Get("Location") != m.URL {
		t.Errorf("alias: %d to %q", res.status, res.header.Get("Location"))
	}

	var b struct {
		Region, RegionSource, Regime string
		Purposes                     []struct{ ID string }
	}
	res = r.do("GET", "/v1/consent/banner?region=DE&lang=ru", sdkKey, nil, "Origin", "https://nano-bananapro.com")
	res.json(t, &b)
	if res.status != 200 || b.Region != "DE" || b.Regime != "gdpr" || len(b.Purposes) != 6 ||
		res.header.Get("Access-Control-Allow-Origin") != "https://nano-bananapro.com" {
		t.Errorf("banner: %d %+v %q", res.status, b, res.header.Get("Access-Control-Allow-Origin"))
	}
	res = r.do("GET", "/v1/consent/banner", sdkKey, nil, "CF-IPCountry", "us")
	var geo map[string]any
	res.json(t, &geo)
	if geo["region"] != "US" || geo["region_source"] != "header" || geo["regime"] != "us" {
		t.Errorf("STEWARD_GEO_HEADER not used: %v", geo)
	}
	if res = r.do("GET", "/v1/consent/banner?region=nowhere", sdkKey, nil); res.status != 400 {
		t.Errorf("bad region: %d", res.status)
	}
	res = r.do("GET", "/v1/consent/banner", sdkKey, nil, "Origin", "https://evil.example")
	if p := res.problem(t); p.Status != 403 {
		t.Errorf("banner from another site: %d", p.Status)
	}

	// Preflights: the product's origin and STEWARD_CORS_ORIGINS, nothing else.
	for origin, want := range map[string]int{"https://nano-bananapro.com": 204, "https://shop.example": 204, "https://evil.example": 403} {
		res := r.noRedirect(t, "OPTIONS", "/v1/consents", map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type",
		})
		granted := res.header.Get("Access-Control-Allow-Origin") == origin
		if res.status != want || granted != (want == 204) {
			t.Errorf("preflight from %s: %d, granted %v", origin, res.status, granted)
		}
	}
	body := map[string]string{"subject": "visitor:sdk-contract-1", "purpose": "analytics", "state": "granted", "source": "web_banner", "notice_version": "2.0"}
	res = r.do("POST", "/v1/consents", sdkKey, body, "Origin", "https://shop.example")
	if res.status != 201 || res.header.Get("Access-Control-Allow-Origin") != "https://shop.example" {
		t.Errorf("record from a configured origin: %d %q", res.status, res.header.Get("Access-Control-Allow-Origin"))
	}
	res = r.do("POST", "/v1/consents", sdkKey, body, "Origin", "https://evil.example")
	if p := res.problem(t); p.Status != 403 {
		t.Errorf("record from another site: %d", p.Status)
	}
}

// noRedirect sends one request without following redirects and checks the
// response against openapi.json where the operation is documented
// (preflights are described in its introduction, not as operations).
func (r *replica) noRedirect(t *testing.T, method, path string, headers map[string]string) resp {
	t.Helper()
	req, err := http.NewRequest(method, r.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	c := &http.Client{Timeout: client.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if op, err := openapiDoc(t).Operation(method, path); err == nil {
		if err := openapiDoc(t).Validate(method, path, res.StatusCode, res.Header.Get("Content-Type"), b); err != nil {
			t.Errorf("response does not match openapi.json: %v", err)
		}
		exercised.Store(op, true)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}
