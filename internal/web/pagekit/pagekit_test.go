package pagekit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
)

// TestCSRFTokenFormat pins the token: an HMAC of label, seed and each bound
// value, NUL-separated; changing it would refuse every open form after a
// deploy.
func TestCSRFTokenFormat(t *testing.T) {
	seed := strings.Repeat("a", seedLen)
	mac := func(msg string) string {
		m := hmac.New(sha256.New, []byte("k"))
		m.Write([]byte(msg))
		return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}
	set := func(ctx *fiber.Ctx, name, value string, maxAge time.Duration) {
		SetCookie(ctx, name, value, "/", false, maxAge, fiber.CookieSameSiteLaxMode)
	}
	c := CSRF{Secret: []byte("k"), Label: "test csrf v1", Cookie: "c", TTL: time.Hour, SetCookie: set}
	app := fiber.New()
	app.Post("/", func(ctx *fiber.Ctx) error {
		if got, want := c.Token(ctx), mac("test csrf v1\x00"+seed); got != want {
			t.Errorf("Token() = %s, want %s", got, want)
		}
		if got, want := c.Token(ctx, ""), mac("test csrf v1\x00"+seed+"\x00"); got != want {
			t.Errorf("Token(\"\") = %s, want %s", got, want)
		}
		if !c.Check(ctx, "s") || c.Check(ctx) || c.Check(ctx, "other") {
			t.Error("Check accepts only the token for its binding")
		}
		return nil
	})
	form := url.Values{"csrf": {mac("test csrf v1\x00" + seed + "\x00s")}}
	req := httptest.NewRequest("POST", "/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cookie", "c="+seed)
	if _, err := app.Test(req); err != nil {
		t.Fatal(err)
	}
}

func TestSecurityHeaders(t *testing.T) {
	app := fiber.New()
	app.Use(SecurityHeaders(Headers{
		Secure: true,
		FrameAncestors: func(ctx *fiber.Ctx) string {
			if ctx.Path() == "/framed" {
				return "https://a.example"
			}
			return ""
		},
		Cacheable: func(path string) bool { return path == "/static" },
	}))
	app.Get("/*", func(ctx *fiber.Ctx) error { return ctx.SendString("ok") })
	for path, want := range map[string][4]string{
		"/page":   {"frame-ancestors 'none'", "DENY", "no-store", ""},
		"/framed": {"frame-ancestors https://a.example", "", "no-store", ""},
		"/static": {"frame-ancestors 'none'", "DENY", "", ""},
	} {
		r, err := app.Test(httptest.NewRequest("GET", path, nil))
		if err != nil {
			t.Fatal(err)
		}
		if csp := r.Header.Get("Content-Security-Policy"); !strings.HasSuffix(csp, want[0]) || !strings.Contains(csp, "script-src 'self';") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if got := r.Header.Get("X-Frame-Options"); got != want[1] {
			t.Errorf("%s: X-Frame-Options %q, want %q", path, got, want[1])
		}
		if got := r.Header.Get("Cache-Control"); got != want[2] {
			t.Errorf("%s: Cache-Control %q, want %q", path, got, want[2])
		}
		if got := r.Header.Get("Cross-Origin-Resource-Policy"); got != want[3] {
			t.Errorf("%s: CORP %q without the option", path, got)
		}
		if r.Header.Get("Strict-Transport-Security") != "max-age=31536000" || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: HSTS or nosniff missing", path)
		}
	}
}

func TestSetCookieDeletes(t *testing.T) {
	app := fiber.New()
	app.Get("/", func(ctx *fiber.Ctx) error {
		SetCookie(ctx, "gone", "", "/p/", true, 0, fiber.CookieSameSiteLaxMode)
		return nil
	})
	r, err := app.Test(httptest.NewRequest("GET", "/", nil))
	if err != nil {
		t.Fatal(err)
	}
	ck := r.Header.Get("Set-Cookie")
	for _, want := range []string{"gone=;", "expires=Thu, 01 Jan 1970 00:00:01 GMT", "path=/p/", "HttpOnly", "secure", "SameSite=Lax"} {
		if !strings.Contains(ck, want) {
			t.Errorf("Set-Cookie %q lacks %q", ck, want)
		}
	}
}
