package policy_test

import (
	"bytes"
	"context"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/policies"
)

func load(t *testing.T) *policy.Engine {
	t.Helper()
	e, err := policy.Load(context.Background(), policies.FS)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return e
}

func TestRegoUnitTestsPass(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	passed, failed, err := policy.RunTests(context.Background(), policies.FS, &out, false)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	if failed != 0 || passed < 20 {
		t.Fatalf("passed %d failed %d\n%s", passed, failed, out.String())
	}
}

func TestDecideConsent(t *testing.T) {
	t.Parallel()
	e := load(t)
	granted := policy.Stored{Present: true, State: "granted", Source: "web_banner", NoticeMajor: 2}
	cases := []struct {
		name   string
		in     policy.ConsentInput
		allow  bool
		reason string
	}{
		{"essential allowed in opt-in regime", policy.ConsentInput{Purpose: "essential", Jurisdiction: "DE", Product: "web", Age: -1}, true, "essential"},
		{"EU without record denied", policy.ConsentInput{Purpose: "analytics", Jurisdiction: "DE", Product: "web", Age: -1}, false, "no_consent"},
		{"California without record allowed", policy.ConsentInput{Purpose: "analytics", Jurisdiction: "US-CA", Product: "web", Age: -1}, true, "opt_out_default"},
		{"California GPC denies marketing", policy.ConsentInput{Purpose: "marketing", Jurisdiction: "US-CA", Product: "web", Age: -1, GPC: true}, false, "gpc_opt_out"},
		{"minor denied marketing", policy.ConsentInput{Purpose: "marketing", Jurisdiction: "US-CA", Product: "web", Age: 15, Stored: granted}, false, "below_minimum_age"},
		{"adult of any age granted", policy.ConsentInput{Purpose: "marketing", Jurisdiction: "DE", Product: "web", Age: 70, Stored: granted}, true, "granted"},
		{"old notice needs reconsent", policy.ConsentInput{Purpose: "marketing", Jurisdiction: "DE", Product: "web", Age: -1, Stored: policy.Stored{Present: true, State: "granted", Source: "web_banner", NoticeMajor: 1}}, false, "reconsent_required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Twice: the second answer comes from the memo and must agree.
			for i := 0; i < 2; i++ {
				d, err := e.DecideConsent(context.Background(), tc.in)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allow != tc.allow || d.Reason != tc.reason || d.Rule == "" || d.Regime == "" || d.Revision != e.Revision() {
					t.Fatalf("got %+v, want allow=%v reason=%s", d, tc.allow, tc.reason)
				}
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	t.Parallel()
	e := load(t)
	ctx := context.Background()
	if d, _ := e.Authorize(ctx, "sdk", "consent.check", []string{"visitor"}); !d.Allow {
		t.Fatalf("sdk visitor check denied: %+v", d)
	}
	if d, _ := e.Authorize(ctx, "sdk", "consent.check", []string{"visitor", "email"}); d.Allow {
		t.Fatal("sdk allowed a non-visitor subject")
	}
	if d, _ := e.Authorize(ctx, "frontend", "keys.manage", nil); d.Allow || !strings.Contains(d.Reason, "may not") {
		t.Fatalf("frontend keys.manage: %+v", d)
	}
}

func TestRevisionTracksContent(t *testing.T) {
	t.Parallel()
	a := load(t)
	m := copyFS(t)
	m["consent.rego"].Data = append(m["consent.rego"].Data, []byte("\n# a comment changes the revision\n")...)
	b, err := policy.Load(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if a.Revision() == b.Revision() || len(a.Revision()) != 16 {
		t.Fatalf("revisions %q %q", a.Revision(), b.Revision())
	}
}

func copyFS(t *testing.T) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(policies.FS, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestBadBundleRefusedWithClearError(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		edit func(fstest.MapFS)
		want string
	}{
		{"rego syntax error", func(m fstest.MapFS) { m["consent.rego"].Data = []byte("package steward.consent\n decision := {") }, "consent.rego"},
		{"unknown regime", func(m fstest.MapFS) {
			m["data/jurisdictions.json"].Data = bytes.Replace(m["data/jurisdictions.json"].Data, []byte(`"US-CA": "ccpa"`), []byte(`"US-CA": "cppa"`), 1)
		}, `"US-CA" maps to unknown regime "cppa"`},
		{"unknown field", func(m fstest.MapFS) {
			m["data/products.json"].Data = bytes.Replace(m["data/products.json"].Data, []byte(`"minimum_age"`), []byte(`"minimum_agee"`), 1)
		}, "data/products.json"},
		{"bad notice version", func(m fstest.MapFS) {
			m["data/products.json"].Data = bytes.Replace(m["data/products.json"].Data, []byte(`"2.0"`), []byte(`"v2"`), 1)
		}, "notice_version"},
		{"missing purposes", func(m fstest.MapFS) { delete(m, "data/purposes.json") }, "data/purposes.json is missing"},
		{"two default products", func(m fstest.MapFS) {
			m["data/products.json"].Data = bytes.Replace(m["data/products.json"].Data, []byte(`"identities": ["tg"]`), []byte(`"default": true`), 1)
		}, "are all marked default"},
		{"accent without contrast", func(m fstest.MapFS) {
			m["data/products.json"].Data = bytes.Replace(m["data/products.json"].Data, []byte(`"accent": "#6d28d9"`), []byte(`"accent": "#ffdd00"`), 1)
		}, "needs 4.5:1"},
		{"logo from elsewhere", func(m fstest.MapFS) {
			m["data/products.json"].Data = bytes.Replace(m["data/products.json"].Data, []byte(`"accent": "#6d28d9"`), []byte(`"logo": "https://cdn.example/logo.png"`), 1)
		}, "brand.logo must be a data:"},
		{"origin with a path", func(m fstest.MapFS) {
			m["data/products.json"].Data = bytes.Replace(m["data/products.json"].Data, []byte(`"https://nano-bananapro.com"]`), []byte(`"https://nano-bananapro.com/app"]`), 1)
		}, "is not an origin"},
		{"translation into an unknown language", func(m fstest.MapFS) {
			m["data/purposes.json"].Data = bytes.Replace(m["data/purposes.json"].Data, []byte(`"uz": {`), []byte(`"de": {`), 1)
		}, `translation "de"`},
		{"no default product", func(m fstest.MapFS) {
			m["data/products.json"].Data = bytes.Replace(m["data/products.json"].Data, []byte(`"default": true`), []byte(`"default": false`), 1)
		}, `mark one product "default": true`},
		{"identity kind claimed twice", func(m fstest.MapFS) {
			m["data/products.json"].Data = bytes.Replace(m["data/products.json"].Data, []byte(`"default": true`), []byte(`"default": true, "identities": ["tg"]`), 1)
		}, `identity kind "tg" is claimed by both`},
		{"retention rule of an unknown product", func(m fstest.MapFS) {
			m["data/retention.json"].Data = bytes.Replace(m["data/retention.json"].Data, []byte(`"product": "bot"`), []byte(`"product": "shop"`), 1)
		}, `product "shop" is not a product of data/products.json`},
		{"decision rule removed", func(m fstest.MapFS) {
			m["consent.rego"].Data = []byte("package steward.consent\n\nx := 1\n")
		}, "consent"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := copyFS(t)
			tc.edit(m)
			_, err := policy.Load(context.Background(), m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
}

func TestNoticeMajor(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]int{"2": 2, "2.1": 2, "10.0.3": 10} {
		if got, ok := policy.NoticeMajor(v); !ok || got != want {
			t.Errorf("NoticeMajor(%q) = %d,%v", v, got, ok)
		}
	}
	for _, v := range []string{"", "v2", "2.", ".2", "1.2.3.4", "2.x"} {
		if _, ok := policy.NoticeMajor(v); ok {
			t.Errorf("NoticeMajor(%q) accepted", v)
		}
	}
}

// BenchmarkConsentDecision measures the memoized decision the check path
// uses and, in the same run, a full OPA evaluation of the same input, and
// reports how many times faster the memo is.
func BenchmarkConsentDecision(b *testing.B) {
	e, err := policy.Load(context.Background(), policies.FS)
	if err != nil {
		b.Fatal(err)
	}
	in := policy.ConsentInput{Purpose: "marketing", Jurisdiction: "US-CA", Product: "web", Age: -1, GPC: true,
		Stored: policy.Stored{Present: true, State: "granted", Source: "web_banner", NoticeMajor: 2}}
	ctx := context.Background()
	// Baseline: uncached evaluations (a different age each time defeats the memo
	// without changing the answer's cost).
	const evals = 300
	fresh, err := policy.Load(ctx, policies.FS)
	if err != nil {
		b.Fatal(err)
	}
	t0 := time.Now()
	for i := 0; i < evals; i++ {
		x := in
		x.Stored.NoticeMajor = 1000 + i
		if _, err := fresh.DecideConsent(ctx, x); err != nil {
			b.Fatal(err)
		}
	}
	evalNs := float64(time.Since(t0).Nanoseconds()) / evals
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.DecideConsent(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	memoNs := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(evalNs, "opa-eval-ns")
	b.ReportMetric(evalNs/memoNs, "x-faster-than-opa-eval")
}

func TestFailingTestsAreNamed(t *testing.T) {
	t.Parallel()
	m := copyFS(t)
	m["extra_test.rego"] = &fstest.MapFile{Data: []byte("package steward.extra_test\n\ntest_always_fails if {\n\t1 == 2\n}\n")}
	failures, err := policy.FailingTests(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	if len(failures) != 1 || !strings.Contains(failures[0], "test_always_fails") || !strings.Contains(failures[0], "extra_test.rego:3") {
		t.Fatalf("%v", failures)
	}
}

// A subject's product when a call does not say: the product that claims
// its identity kind, else the default one; a bundle of one product needs
// no default mark and names none of the reference products.
func TestProductOf(t *testing.T) {
	t.Parallel()
	e := load(t)
	for kind, want := range map[string]string{"tg": "bot", "email": "web", "user": "web", "visitor": "web"} {
		if got := e.ProductOf(kind); got != want {
			t.Errorf("ProductOf(%q) = %q, want %q", kind, got, want)
		}
	}
	m := copyFS(t)
	m["data/products.json"].Data = []byte(`{"shop": {"name": "Shop", "description": "A shop.", "minimum_age": 16, "notice_version": "1.0",
		"controller": {"name": "Shop Ltd", "contact": "privacy@shop.example"}}}`)
	for _, f := range []string{"data/purposes.json", "data/retention.json", "data/datamap.yaml"} {
		for _, r := range [][2]string{{`["web", "bot"]`, `["shop"]`}, {`"web"`, `"shop"`}, {`"bot"`, `"shop"`}, {"[web, bot]", "[shop]"}, {"[web]", "[shop]"}, {"[bot]", "[shop]"}} {
			m[f].Data = bytes.ReplaceAll(m[f].Data, []byte(r[0]), []byte(r[1]))
		}
	}
	one, err := policy.Load(context.Background(), m)
	if err != nil {
		t.Fatalf("a bundle whose only product is shop: %v", err)
	}
	if got := one.ProductOf("tg"); got != "shop" || one.DefaultProduct() != "shop" {
		t.Errorf("one product: ProductOf(tg) = %q, default %q", got, one.DefaultProduct())
	}
}
