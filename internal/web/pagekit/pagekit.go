// Package pagekit is the page plumbing shared by the privacy center
// (internal/web) and the staff console (internal/web/console), so the two
// are secured the same way: the security headers, CSRF tokens bound to a
// random cookie, the same-origin check on POSTs, cookies, and the page
// language (?lang=, then the cookie, then Accept-Language).
//
// Each site passes its differences as options: who may frame it, its
// cookie names and path, and which responses may be cached.
package pagekit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"io/fs"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// localKey names a value kept in the request's locals.
type localKey string

// --- security headers -------------------------------------------------------------

// CSP is the Content-Security-Policy: this origin's styles, scripts and
// images (data: for logos and QR codes and nothing else), fetches to this
// origin, forms posting here, no inline script or style, and framing only
// by frameAncestors ("'none'" for no framing).
func CSP(frameAncestors string) string {
	return "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"form-action 'self'; base-uri 'none'; frame-ancestors " + frameAncestors
}

// Headers are a site's differences in SecurityHeaders.
type Headers struct {
	// Secure adds Strict-Transport-Security (the site is reached over https).
	Secure bool
	// FrameAncestors, when set and not empty for a request, are the pages
	// that may frame it (CSP frame-ancestors), and X-Frame-Options is left
	// out; otherwise no page may frame it.
	FrameAncestors func(ctx *fiber.Ctx) string
	// CORP adds Cross-Origin-Resource-Policy: same-origin.
	CORP bool
	// Cacheable reports the paths whose responses may be cached (static
	// files); every other response is no-store.
	Cacheable func(path string) bool
	// Prepare, when set, runs after the headers are set and before the
	// handler (the language choice is remembered there).
	Prepare func(ctx *fiber.Ctx)
}

// SecurityHeaders is the middleware that sets the security headers on every
// response, and no-store on every one that is not Cacheable.
func SecurityHeaders(h Headers) fiber.Handler {
	cspNone := CSP("'none'")
	return func(ctx *fiber.Ctx) error {
		framers := ""
		if h.FrameAncestors != nil {
			framers = h.FrameAncestors(ctx)
		}
		if framers != "" {
			ctx.Set("Content-Security-Policy", CSP(framers))
		} else {
			ctx.Set("Content-Security-Policy", cspNone)
			ctx.Set("X-Frame-Options", "DENY")
		}
		ctx.Set("X-Content-Type-Options", "nosniff")
		ctx.Set("Referrer-Policy", "same-origin")
		ctx.Set("Cross-Origin-Opener-Policy", "same-origin")
		if h.CORP {
			ctx.Set("Cross-Origin-Resource-Policy", "same-origin")
		}
		ctx.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()")
		if h.Secure {
			ctx.Set("Strict-Transport-Security", "max-age=31536000")
		}
		if h.Prepare != nil {
			h.Prepare(ctx)
		}
		err := ctx.Next()
		if h.Cacheable == nil || !h.Cacheable(ctx.Path()) {
			// Pages show people's requests, choices, identities and links.
			ctx.Set(fiber.HeaderCacheControl, "no-store")
		}
		return err
	}
}

// --- cookies ----------------------------------------------------------------------

// SetCookie sets an HttpOnly cookie for path; a maxAge of zero or less
// deletes it. sameSite is one of fiber's CookieSameSite* values.
func SetCookie(ctx *fiber.Ctx, name, value, path string, secure bool, maxAge time.Duration, sameSite string) {
	ck := &fiber.Cookie{
		Name: name, Value: value, Path: path, HTTPOnly: true, Secure: secure,
		SameSite: sameSite, MaxAge: int(maxAge / time.Second),
	}
	if maxAge <= 0 {
		ck.MaxAge = -1
		ck.Expires = time.Unix(1, 0)
	}
	ctx.Cookie(ck)
}

// CookieSetter sets a site's cookie with its path and attributes (a maxAge
// of zero or less deletes it).
type CookieSetter func(ctx *fiber.Ctx, name, value string, maxAge time.Duration)

// --- CSRF -------------------------------------------------------------------------

// seedLen is the length of a seed: 32 random bytes, base64url without padding.
const seedLen = 43

// CSRF makes and checks form tokens: an HMAC of a random cookie (the seed)
// and of whatever the token is bound to, so a page on another site, which
// cannot read the cookie, cannot forge one.
type CSRF struct {
	// Secret keys the HMAC.
	Secret []byte
	// Label separates one site's tokens from another's ("steward csrf v1").
	Label string
	// Cookie is the seed's cookie, set by SetCookie for TTL.
	Cookie    string
	TTL       time.Duration
	SetCookie CookieSetter
}

// Token is the form token for this browser, bound to bind (a session's
// token, say; none for a browser-only token). A browser without a seed
// gets one, set once per request.
func (c CSRF) Token(ctx *fiber.Ctx, bind ...string) string {
	seed := ctx.Cookies(c.Cookie)
	if len(seed) != seedLen {
		key := localKey("csrf:" + c.Cookie)
		if s, ok := ctx.Locals(key).(string); ok {
			seed = s
		} else {
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			seed = base64.RawURLEncoding.EncodeToString(b)
			ctx.Locals(key, seed)
			c.SetCookie(ctx, c.Cookie, seed, c.TTL)
		}
	}
	msg := c.Label + "\x00" + seed
	for _, b := range bind {
		msg += "\x00" + b
	}
	m := hmac.New(sha256.New, c.Secret)
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Check reports whether the form's csrf field is the token for the
// browser's seed cookie and bind.
func (c CSRF) Check(ctx *fiber.Ctx, bind ...string) bool {
	seed := ctx.Cookies(c.Cookie)
	got := ctx.FormValue("csrf")
	return len(seed) == seedLen && got != "" && hmac.Equal([]byte(got), []byte(c.Token(ctx, bind...)))
}

// SameOrigin: a POST whose Origin header names another site than origin
// (the public URL's) or the one it was sent to is refused (browsers send
// Origin on every cross-site POST).
func SameOrigin(ctx *fiber.Ctx, origin string) bool {
	o := ctx.Get(fiber.HeaderOrigin)
	if o == "" {
		return true
	}
	if origin != "" && strings.EqualFold(o, origin) {
		return true
	}
	return strings.EqualFold(o, ctx.Protocol()+"://"+ctx.Hostname())
}

// --- language ---------------------------------------------------------------------

// Lang chooses the page language.
type Lang struct {
	// Cookie remembers a ?lang= choice for a year, set by SetCookie.
	Cookie    string
	SetCookie CookieSetter
	// Valid reports a page language; Negotiate picks one from an
	// Accept-Language header.
	Valid     func(lang string) bool
	Negotiate func(acceptLanguage string) string
}

// Of is the page language: ?lang= (remembered), the cookie, the browser.
// It is decided once per request.
func (l Lang) Of(ctx *fiber.Ctx) string {
	key := localKey("lang:" + l.Cookie)
	if v, ok := ctx.Locals(key).(string); ok {
		return v
	}
	v := ctx.Query("lang")
	if l.Valid(v) {
		l.SetCookie(ctx, l.Cookie, v, 365*24*time.Hour)
	} else if v = ctx.Cookies(l.Cookie); !l.Valid(v) {
		v = l.Negotiate(ctx.Get(fiber.HeaderAcceptLanguage))
	}
	v = strings.Clone(v)
	ctx.Locals(key, v)
	return v
}

// --- static files -----------------------------------------------------------------

// Static is a site's static files (its script, the stylesheet), read once
// from the binary, by name.
type Static map[string]staticFile

type staticFile struct {
	body  []byte
	ctype string
}

// LoadStatic reads the files below dir in fsys (an embedded directory).
func LoadStatic(fsys fs.FS, dir string) (Static, error) {
	out := Static{}
	err := fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		ct := "application/octet-stream"
		switch {
		case strings.HasSuffix(p, ".css"):
			ct = "text/css; charset=utf-8"
		case strings.HasSuffix(p, ".js"):
			ct = "text/javascript; charset=utf-8"
		case strings.HasSuffix(p, ".svg"):
			ct = "image/svg+xml"
		}
		out[strings.TrimPrefix(p, dir+"/")] = staticFile{body: b, ctype: ct}
		return nil
	})
	return out, err
}

// Handler serves the file named by the route's :name, cacheable for an
// hour (the same for everyone), or notFound.
func (s Static) Handler(notFound fiber.Handler) fiber.Handler {
	return func(ctx *fiber.Ctx) error {
		f, ok := s[ctx.Params("name")]
		if !ok {
			return notFound(ctx)
		}
		ctx.Set(fiber.HeaderContentType, f.ctype)
		ctx.Set(fiber.HeaderCacheControl, "public, max-age=3600")
		return ctx.Send(f.body)
	}
}
