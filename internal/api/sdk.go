package api

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/sdk"
)

// The consent SDK's files, public: every product page loads the script
// from here. Any origin may read them (Access-Control-Allow-Origin: *), so
// a page can load the script with crossorigin="anonymous" and an integrity
// attribute, which browsers check only on CORS-readable responses.

func publicAsset(c *fiber.Ctx) {
	c.Set(fiber.HeaderAccessControlAllowOrigin, "*")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set("Cross-Origin-Resource-Policy", "cross-origin")
}

// sdkManifest names the current build: its URL, SRI integrity and sizes.
func (s *server) sdkManifest(c *fiber.Ctx) error {
	publicAsset(c)
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.JSON(sdk.CurrentManifest())
}

// sdkLatest redirects the unversioned alias to the current build, for a
// short while: pages that want the newest SDK without editing their tag
// follow it (without an integrity attribute, which would break on the next
// upgrade).
func (s *server) sdkLatest(c *fiber.Ctx) error {
	publicAsset(c)
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.Redirect(sdk.Current().URL(), fiber.StatusFound)
}

// sdkTypings serves the TypeScript declarations of window.steward.consent.
func (s *server) sdkTypings(c *fiber.Ctx) error {
	publicAsset(c)
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	c.Set(fiber.HeaderContentType, "application/typescript; charset=utf-8")
	return c.Send(sdk.Typings())
}

// sdkScript serves a build by its content hash: immutable, cached for a
// year, gzipped for clients that accept it.
func (s *server) sdkScript(c *fiber.Ctx) error {
	script, ok := sdk.Lookup("steward-consent." + c.Params("hash") + ".js")
	if !ok {
		return apperr.New(apperr.NotFound, "no such SDK build; /sdk/v1/manifest.json names the current one")
	}
	publicAsset(c)
	c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
	c.Set(fiber.HeaderETag, `"`+script.Hash+`"`)
	c.Vary(fiber.HeaderAcceptEncoding)
	if c.Get(fiber.HeaderIfNoneMatch) == `"`+script.Hash+`"` {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
	if acceptsGzip(c.Get(fiber.HeaderAcceptEncoding)) {
		c.Set(fiber.HeaderContentEncoding, "gzip")
		return c.Send(script.Gzip)
	}
	return c.Send(script.Body)
}

// acceptsGzip reads Accept-Encoding for gzip not refused with q=0.
func acceptsGzip(h string) bool {
	for part := range strings.SplitSeq(h, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}
