package api_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/openapitest"
	"github.com/steward-privacy/steward/internal/sdk"
)

var apiDoc = sync.OnceValues(func() (*openapitest.Doc, error) { return openapitest.Load(api.OpenAPI) })

// documented checks a response against openapi.json.
func documented(t *testing.T, method, path string, res result) {
	t.Helper()
	d, err := apiDoc()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Validate(method, path, res.status, res.header.Get("Content-Type"), res.body); err != nil {
		t.Errorf("not as documented: %v", err)
	}
}

type bannerPurpose struct {
	ID, Name, Description string
	Essential, Default    bool
	DefaultReason         string `json:"default_reason"`
	GPCApplies            bool   `json:"gpc_applies"`
	Explicit              bool   `json:"requires_explicit_consent"`
}

type banner struct {
	Product, Name, Language, Region, Regime, Model string
	RegionSource                                   string `json:"region_source"`
	GPC                                            struct{ Signal, Honoured bool }
	Notice                                         struct {
		Version string
		Major   int
		URL     string
	}
	Brand    struct{ Accent string }
	Purposes []bannerPurpose
}

func (b banner) purpose(t *testing.T, id string) bannerPurpose {
	t.Helper()
	for _, p := range b.Purposes {
		if p.ID == id {
			return p
		}
	}
	t.Fatalf("banner has no purpose %q: %+v", id, b.Purposes)
	return bannerPurpose{}
}

// TestConsentBanner: the banner tells the SDK, in the visitor's language,
// each purpose of the product and its default where the visitor is, as the
// consent policy decides it: opt-in regimes off, opt-out regimes on except
// what GPC refuses there, explicit-consent purposes always off, essential
// always on; region from the query, else the configured geo header, else
// the default regime.
func TestConsentBanner(t *testing.T) {
	t.Parallel()
	type want struct {
		lang, region, source, regime, model string
		gpcSignal, gpcHonoured              bool
		defaults                            map[string]string // purpose -> default reason
		analyticsName                       string
	}
	optIn := map[string]string{"essential": "essential", "functional": "no_consent", "analytics": "no_consent", "marketing": "no_consent", "model_training": "explicit_consent_required", "third_party_models": "explicit_consent_required"}
	tests := []struct {
		name   string
		query  string
		header map[string]string
		want   want
	}{
		{"Germany is opt-in", "?product=web&lang=en&region=DE", nil,
			want{"en", "DE", "query", "gdpr", "opt_in", false, false, optIn, "Performance and analytics"}},
		// Opt-out only for what is not consent-based: web "Marketing emails,
		// Crisp outreach, non-essential cookies | Consent" stay off until
		// granted; analytics ("Legitimate interests (you can opt out of
		// analytics in settings)") is on.
		{"California is opt-out for analytics only; consent purposes stay off", "?region=us-ca", nil,
			want{"en", "US-CA", "query", "ccpa", "opt_out", false, true, map[string]string{"essential": "essential", "functional": "no_consent", "analytics": "opt_out_default", "marketing": "no_consent", "model_training": "explicit_consent_required", "third_party_models": "explicit_consent_required"}, "Performance and analytics"}},
		{"GPC from the page turns off what it covers in California", "?region=US-CA&gpc=1", nil,
			want{"en", "US-CA", "query", "ccpa", "opt_out", true, true, map[string]string{"analytics": "opt_out_default", "marketing": "gpc_opt_out", "model_training": "gpc_opt_out"}, ""}},
		{"GPC from the browser's header counts the same", "?region=US-CA", map[string]string{"Sec-GPC": "1"},
			want{"en", "US-CA", "query", "ccpa", "opt_out", true, true, map[string]string{"marketing": "gpc_opt_out"}, ""}},
		{"GPC in Germany is shown but changes nothing", "?region=DE&gpc=1", nil,
			want{"en", "DE", "query", "gdpr", "opt_in", true, false, map[string]string{"analytics": "no_consent", "marketing": "no_consent"}, ""}},
		{"Russian from lang", "?lang=ru&region=DE", nil,
			want{"ru", "DE", "query", "gdpr", "opt_in", false, false, nil, "Производительность и аналитика"}},
		{"Uzbek from Accept-Language", "?region=DE", map[string]string{"Accept-Language": "uz-Latn-UZ,uz;q=0.9,en;q=0.5"},
			want{"uz", "DE", "query", "gdpr", "opt_in", false, false, nil, "Unumdorlik va tahlil"}},
		{"a language Steward does not speak falls back to English", "?lang=de&region=DE", map[string]string{"Accept-Language": "ru"},
			want{"en", "DE", "query", "gdpr", "opt_in", false, false, nil, "Performance and analytics"}},
		{"the CDN's geo header places the visitor", "", map[string]string{"CF-IPCountry": "US"},
			want{"en", "US", "header", "us", "opt_out", false, true, map[string]string{"analytics": "opt_out_default"}, ""}},
		{"the query wins over the geo header", "?region=FR", map[string]string{"CF-IPCountry": "US"},
			want{"en", "FR", "query", "gdpr", "opt_in", false, false, nil, ""}},
		{"an unknown geo value is the default regime", "", map[string]string{"CF-IPCountry": "XX"},
			want{"en", "", "none", "default", "opt_in", false, true, map[string]string{"analytics": "no_consent"}, ""}},
		{"nowhere is the default regime", "", nil,
			want{"en", "", "none", "default", "opt_in", false, true, optIn, ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnvWith(t, func(c *api.Config) { c.GeoHeader = "CF-IPCountry" })
			res := e.do(req{method: "GET", path: "/v1/consent/banner" + tc.query, role: "sdk", header: tc.header})
			documented(t, "GET", "/v1/consent/banner", res)
			var b banner
			res.ok(t, 200, &b)
			w := tc.want
			if b.Product != "web" || b.Name != "Nano Banana Pro" || b.Language != w.lang || b.Region != w.region || b.RegionSource != w.source ||
				b.Regime != w.regime || b.Model != w.model || b.GPC.Signal != w.gpcSignal || b.GPC.Honoured != w.gpcHonoured {
				t.Errorf("banner %+v, want %+v", b, w)
			}
			if b.Notice.Version != "2.0" || b.Notice.Major != 2 || b.Notice.URL != "https://nano-bananapro.com/privacy" || b.Brand.Accent != "#6d28d9" {
				t.Errorf("notice %+v brand %+v", b.Notice, b.Brand)
			}
			var ids []string
			for _, p := range b.Purposes {
				ids = append(ids, p.ID)
			}
			if strings.Join(ids, ",") != "essential,analytics,functional,marketing,model_training,third_party_models" {
				t.Errorf("purposes %v: want web's, essential first", ids)
			}
			for id, reason := range w.defaults {
				p := b.purpose(t, id)
				allow := reason == "essential" || reason == "opt_out_default"
				if p.DefaultReason != reason || p.Default != allow {
					t.Errorf("%s: default %v (%s), want %v (%s)", id, p.Default, p.DefaultReason, allow, reason)
				}
			}
			if w.analyticsName != "" {
				if got := b.purpose(t, "analytics").Name; got != w.analyticsName {
					t.Errorf("analytics is called %q, want %q", got, w.analyticsName)
				}
			}
			if p := b.purpose(t, "essential"); !p.Essential {
				t.Errorf("essential not marked essential")
			}
			if p := b.purpose(t, "model_training"); !p.Explicit || !p.GPCApplies {
				t.Errorf("model_training flags %+v", p)
			}
			if res.header.Get("Cache-Control") != "no-cache" || !strings.Contains(res.header.Get("Vary"), "CF-IPCountry") {
				t.Errorf("Cache-Control %q, Vary %q", res.header.Get("Cache-Control"), res.header.Get("Vary"))
			}
			e.wantCalls(t)
		})
	}

	t.Run("the bot's banner lists the bot's purposes", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		var b banner
		e.do(req{method: "GET", path: "/v1/consent/banner?product=bot", role: "frontend"}).ok(t, 200, &b)
		var ids []string
		for _, p := range b.Purposes {
			ids = append(ids, p.ID)
		}
		if b.Product != "bot" || b.Notice.Major != 1 || strings.Join(ids, ",") != "essential,analytics,broadcast,model_training" {
			t.Errorf("bot banner %+v", b)
		}
	})

	bad := []struct {
		name, path, role, field string
		status                  int
		header                  map[string]string
	}{
		{"an unknown product is a 400", "/v1/consent/banner?product=shop", "sdk", "product", 400, nil},
		{"a malformed region is a 400", "/v1/consent/banner?region=Germany", "sdk", "region", 400, nil},
		{"a malformed language is a 400", "/v1/consent/banner?lang=!!", "sdk", "lang", 400, nil},
		{"a bad gpc flag is a 400", "/v1/consent/banner?gpc=yes", "sdk", "gpc", 400, nil},
		{"an unknown parameter is a 400", "/v1/consent/banner?regoin=DE", "sdk", "regoin", 400, nil},
		{"no key is a 401", "/v1/consent/banner", "", "", 401, nil},
		{"an sdk key from another site is a 403", "/v1/consent/banner", "sdk", "", 403, map[string]string{"Origin": evilOrigin}},
		{"web's origin asking bot's banner is a 403", "/v1/consent/banner?product=bot", "sdk", "", 403, map[string]string{"Origin": webOrigin}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			res := e.do(req{method: "GET", path: tc.path, role: tc.role, header: tc.header})
			documented(t, "GET", "/v1/consent/banner", res)
			code := map[int]string{400: "invalid_request", 401: "unauthenticated", 403: "forbidden"}[tc.status]
			p := res.problem(t, tc.status, code)
			if tc.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != tc.field) {
				t.Errorf("errors %+v, want one on %s", p.Errors, tc.field)
			}
		})
	}
}

// TestSDKFiles: the script is served under its content hash, immutable,
// readable cross-origin (so SRI can be checked), gzipped on request, and
// its integrity in the manifest is the script's SHA-384; the alias
// redirects to it; unknown builds are a 404 problem. No key is needed.
func TestSDKFiles(t *testing.T) {
	t.Parallel()
	if err := sdk.Err(); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	cur := sdk.Current()

	res := e.do(req{method: "GET", path: "/sdk/v1/manifest.json"})
	documented(t, "GET", "/sdk/v1/manifest.json", res)
	var m sdk.Manifest
	res.ok(t, 200, &m)
	if m != sdk.CurrentManifest() || m.URL != cur.URL() || m.Integrity != cur.Integrity || m.GzipBytes != len(cur.Gzip) {
		t.Errorf("manifest %+v", m)
	}
	if res.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("manifest ACAO %q", res.header.Get("Access-Control-Allow-Origin"))
	}

	res = e.do(req{method: "GET", path: cur.URL()})
	documented(t, "GET", cur.URL(), res)
	res.ok(t, 200, nil)
	if !bytes.Equal(res.body, cur.Body) {
		t.Error("script body differs from the embedded build")
	}
	for h, want := range map[string]string{
		"Cache-Control":               "public, max-age=31536000, immutable",
		"Content-Type":                "text/javascript; charset=utf-8",
		"Access-Control-Allow-Origin": "*",
		"X-Content-Type-Options":      "nosniff",
		"ETag":                        `"` + cur.Hash + `"`,
	} {
		if got := res.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}

	res = e.do(req{method: "GET", path: cur.URL(), header: map[string]string{"Accept-Encoding": "gzip, br"}})
	if res.header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("Content-Encoding %q", res.header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(res.body))
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := io.ReadAll(zr); err != nil || !bytes.Equal(plain, cur.Body) {
		t.Errorf("gzipped script does not decode to the build: %v", err)
	}

	res = e.do(req{method: "GET", path: cur.URL(), header: map[string]string{"If-None-Match": `"` + cur.Hash + `"`}})
	documented(t, "GET", cur.URL(), res)
	if res.status != 304 || len(res.body) != 0 {
		t.Errorf("revalidation: %d %q", res.status, res.body)
	}

	res = e.do(req{method: "GET", path: "/sdk/v1/steward-consent.0000000000000000.js"})
	documented(t, "GET", "/sdk/v1/steward-consent.0000000000000000.js", res)
	res.problem(t, 404, "not_found")

	res = e.do(req{method: "GET", path: "/sdk/v1/steward-consent.js"})
	documented(t, "GET", "/sdk/v1/steward-consent.js", res)
	if res.status != 302 || res.header.Get("Location") != cur.URL() || res.header.Get("Cache-Control") != "public, max-age=300" {
		t.Errorf("alias: %d Location %q Cache-Control %q", res.status, res.header.Get("Location"), res.header.Get("Cache-Control"))
	}

	res = e.do(req{method: "GET", path: "/sdk/v1/steward-consent.d.ts"})
	documented(t, "GET", "/sdk/v1/steward-consent.d.ts", res)
	res.ok(t, 200, nil)
	if !strings.Contains(string(res.body), "interface StewardConsent") {
		t.Errorf("typings: %.200s", res.body)
	}
	e.wantCalls(t)

	// Every archived build is served under its own name.
	for _, name := range sdk.Builds() {
		res := e.do(req{method: "GET", path: sdk.Base + name})
		if res.status != 200 {
			t.Errorf("%s: %d", name, res.status)
		}
	}
}
