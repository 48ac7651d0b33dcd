package api

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/steward-privacy/steward/internal/apperr"
)

// noStore is the default Cache-Control of every /v1 answer. Most of them
// carry personal data or a secret (identities, a status with its download
// link, consent history, a new key or webhook secret), and a list of which
// ones do goes stale the day an endpoint is added; so nothing under /v1 is
// stored by a browser or proxy unless its handler says otherwise. The
// handlers that do are public and the same for everyone: the receipts'
// JWKS and the notices (public, max-age=300), and the consent banner
// (no-cache, revalidated). Outside /v1, the SDK's assets set their own
// caching and /openapi.json, /healthz and /readyz are left to defaults
// (none of them carries personal data).
const noStore = "no-store"

// The headers guard sets, as canonical bytes: fasthttp's Set normalises
// the name on every call, and every response carries these.
var (
	hdrNosniff   = [2][]byte{fasthttp.AppendNormalizedHeaderKey(nil, fiber.HeaderXContentTypeOptions), []byte("nosniff")}
	hdrNoStore   = [2][]byte{fasthttp.AppendNormalizedHeaderKey(nil, fiber.HeaderCacheControl), []byte(noStore)}
	hdrRequestID = fasthttp.AppendNormalizedHeaderKey(nil, fiber.HeaderXRequestID)
	hdrVary      = fasthttp.AppendNormalizedHeaderKey(nil, fiber.HeaderVary)
)

// guard sets the headers every response carries and refuses query values a
// store could not keep as sent. It runs inside observe, before any route,
// so errors and unmatched routes get the headers too; a handler's own
// c.Set (the export download, the SDK's assets) still wins, as it comes
// later.
func (s *server) guard(c *fiber.Ctx) error {
	if err := guardRequest(c); err != nil {
		return err
	}
	return c.Next()
}

// guardRequest is guard's work, which the consent check's fused path also
// does.
func guardRequest(c *fiber.Ctx) error {
	// Every body is served with the type it declares: JSON is never sniffed
	// into HTML.
	h := &c.Response().Header
	h.SetCanonical(hdrNosniff[0], hdrNosniff[1])
	if p := c.Path(); p == "/v1" || strings.HasPrefix(p, "/v1/") {
		h.SetCanonical(hdrNoStore[0], hdrNoStore[1])
		return checkQueryText(c)
	}
	return nil
}

// checkQueryText refuses a query value (or name) holding NUL or invalid
// UTF-8, naming the parameter, as decodeStrict does for bodies: PostgreSQL
// refuses NUL in text, and a subject or cursor altered on the way is a
// different question.
func checkQueryText(c *fiber.Ctx) error {
	var bad string
	c.Context().QueryArgs().VisitAll(func(k, v []byte) {
		if bad != "" {
			return
		}
		if !bytesTextOK(k) {
			bad = "query"
		} else if !bytesTextOK(v) {
			bad = string(k)
			if len(bad) > 40 {
				bad = bad[:40] + "…"
			}
		}
	})
	if bad != "" {
		return apperr.Field(bad, "must be UTF-8 text without NUL characters")
	}
	return nil
}

func bytesTextOK(b []byte) bool { return bytes.IndexByte(b, 0) < 0 && utf8.Valid(b) }
