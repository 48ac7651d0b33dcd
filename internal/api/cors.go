package api

import (
	"strings"
	"sync/atomic"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/policy"
)

// CORS for the consent endpoints the consent SDK calls from a product's
// pages with the publishable (sdk) key. Only each product's configured
// origins (policies/data/products.json "origins") and STEWARD_CORS_ORIGINS
// are granted; never credentials, since the key, not a cookie, is the
// credential. The grant only decides what a browser lets a page read: the
// refusal that protects the ledger is that an sdk key sent from any other
// origin is answered 403 (authorize and checkOrigin below).

const (
	corsMethods = "GET, POST"
	corsHeaders = "Authorization, Content-Type"
	// Chromium caps a cached preflight at two hours; the SDK's calls then
	// go out without one.
	corsMaxAge = "7200"
	// localOrigin keeps the request's parsed Origin header.
	localOrigin = "origin"
)

// originSet is who may call: per product, from one policy bundle, plus the
// configured origins, which may call for any product.
type originSet struct {
	engine     *policy.Engine
	configured map[string]bool
	byProduct  map[string]map[string]bool
}

// originCache rebuilds the set when the policy bundle is reloaded (a new
// Engine), so an origin added to products.json takes effect without a
// restart.
type originCache struct {
	configured map[string]bool
	cur        atomic.Pointer[originSet]
}

func newOriginCache(configured []string) *originCache {
	oc := &originCache{configured: map[string]bool{}}
	for _, o := range configured {
		if n, ok := parseOrigin(o); ok {
			oc.configured[n] = true
		}
	}
	return oc
}

func (oc *originCache) get(eng *policy.Engine) *originSet {
	if s := oc.cur.Load(); s != nil && s.engine == eng {
		return s
	}
	s := &originSet{engine: eng, configured: oc.configured, byProduct: map[string]map[string]bool{}}
	if eng != nil {
		for name, p := range eng.Products {
			m := map[string]bool{}
			for _, o := range p.Origins {
				if n, ok := parseOrigin(o); ok {
					m[n] = true
				}
			}
			s.byProduct[name] = m
		}
	}
	oc.cur.Store(s)
	return s
}

// allows reports whether origin may call for product ("" = for some
// product: what a preflight, which names none, can be granted on). An
// origin listed for one product does not write another product's ledger.
func (s *originSet) allows(origin, product string) bool {
	if s.configured[origin] {
		return true
	}
	// An unknown product is the handler's 400 to give, not a reason to
	// name the origin.
	if m, ok := s.byProduct[product]; ok {
		return m[origin]
	}
	for _, m := range s.byProduct {
		if m[origin] {
			return true
		}
	}
	return false
}

// parseOrigin reads an Origin header (or a configured origin) into the
// form the sets hold: scheme://host[:port], lower case, without a default
// port (browsers never send one; a configured https://a.example:443 means
// https://a.example). "null" (sandboxed frames, file: pages) and anything
// else that is not an http(s) origin is refused.
func parseOrigin(raw string) (string, bool) {
	if raw == "" || len(raw) > 512 || raw == "null" {
		return "", false
	}
	o, err := policy.NormalizeOrigin(raw)
	if err != nil {
		return "", false
	}
	switch {
	case strings.HasPrefix(o, "https://") && strings.HasSuffix(o, ":443"):
		o = strings.TrimSuffix(o, ":443")
	case strings.HasPrefix(o, "http://") && strings.HasSuffix(o, ":80"):
		o = strings.TrimSuffix(o, ":80")
	}
	// Only a host (and port) may follow the scheme (NormalizeOrigin drops
	// a trailing "/", which a configured origin may carry).
	host := o[strings.Index(o, "://")+3:]
	if host == "" || strings.ContainsAny(host, "/?#@ \t\\") {
		return "", false
	}
	return o, true
}

// requestOrigin is what a request's Origin header says about where it
// comes from.
type requestOrigin struct {
	present bool   // the header was sent (browsers send it on every CORS request and on same-origin POSTs)
	origin  string // parsed; "" when present but not an http(s) origin
	same    bool   // the page calling is served by Steward itself (the privacy center): not a CORS request
}

func originOf(c *fiber.Ctx) requestOrigin {
	if ro, ok := c.Locals(localOrigin).(requestOrigin); ok {
		return ro
	}
	raw := c.Get(fiber.HeaderOrigin)
	if raw == "" {
		return requestOrigin{}
	}
	ro := requestOrigin{present: true}
	if o, ok := parseOrigin(raw); ok {
		ro.origin = o
		// A browser sets Host to where the request goes; a page on another
		// site cannot make its Origin equal to it.
		ro.same = strings.EqualFold(o[strings.Index(o, "://")+3:], stripDefaultPort(string(c.Request().Host())))
	}
	c.Locals(localOrigin, ro)
	return ro
}

func stripDefaultPort(host string) string {
	return strings.TrimSuffix(strings.TrimSuffix(host, ":443"), ":80")
}

// cors answers preflights and grants the response to allowed origins. It
// runs before authentication: a preflight carries no key.
func (s *server) cors(c *fiber.Ctx) error {
	if c.Method() == fiber.MethodOptions && c.Get(fiber.HeaderAccessControlRequestMethod) != "" {
		c.Vary(fiber.HeaderOrigin, fiber.HeaderAccessControlRequestMethod, fiber.HeaderAccessControlRequestHeaders)
		if !s.originGranted(c) {
			return errOriginNotAllowed
		}
		c.Set(fiber.HeaderAccessControlAllowOrigin, c.Get(fiber.HeaderOrigin))
		c.Set(fiber.HeaderAccessControlAllowMethods, corsMethods)
		c.Set(fiber.HeaderAccessControlAllowHeaders, corsHeaders)
		c.Set(fiber.HeaderAccessControlMaxAge, corsMaxAge)
		return c.SendStatus(fiber.StatusNoContent)
	}
	s.corsActual(c)
	return c.Next()
}

// corsActual sets the headers of an actual (not preflight) request: cors
// and the consent check's fused path both call it.
func (s *server) corsActual(c *fiber.Ctx) {
	if h := &c.Response().Header; len(h.PeekBytes(hdrVary)) == 0 {
		// Nothing varies yet (always, on the fused path): set it, without
		// fiber's Vary reading and splitting the header first.
		h.SetCanonical(hdrVary, []byte(fiber.HeaderOrigin))
	} else {
		c.Vary(fiber.HeaderOrigin)
	}
	if s.originGranted(c) {
		c.Set(fiber.HeaderAccessControlAllowOrigin, c.Get(fiber.HeaderOrigin))
		c.Set(fiber.HeaderAccessControlExposeHeaders, corsExposeHeaders)
	}
}

// originGranted reports whether the request comes from another origin that
// may read the consent API's answers.
func (s *server) originGranted(c *fiber.Ctx) bool {
	ro := originOf(c)
	return ro.origin != "" && !ro.same && s.origins.get(s.Consent.Engine()).allows(ro.origin, "")
}

// corsExposeHeaders are the response headers a granted page's script may read.
const corsExposeHeaders = fiber.HeaderXRequestID + ", " + headerRateLimit + ", " + headerRateLimitPolicy + ", " + fiber.HeaderRetryAfter

var errOriginNotAllowed = apperr.New(apperr.Forbidden,
	"this origin may not call the consent API with a publishable key; list it in the product's origins (policies/data/products.json) or in STEWARD_CORS_ORIGINS")

// checkOrigin refuses a publishable (sdk) key sent by a browser from an
// origin not allowed for product ("" = any product). Requests without an
// Origin header (servers, curl) and Steward's own pages pass: the key is
// public, and what the origin rule protects is that no other site's
// visitors can be made to write into this product's ledger.
func (s *server) checkOrigin(c *fiber.Ctx, product string) error {
	return s.checkOriginKey(c, callerKey(c), product)
}

// checkOriginKey is checkOrigin for a key the caller holds.
func (s *server) checkOriginKey(c *fiber.Ctx, k apikey.Key, product string) error {
	if k.Role != "sdk" {
		return nil
	}
	ro := originOf(c)
	if !ro.present || ro.same {
		return nil
	}
	if ro.origin == "" || !s.origins.get(s.Consent.Engine()).allows(ro.origin, product) {
		return errOriginNotAllowed
	}
	return nil
}
