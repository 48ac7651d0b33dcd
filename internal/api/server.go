// Package api is Steward's HTTP API on fiber: request ids, a JSON access log
// without personal data, panic recovery, limits and timeouts, API-key
// authentication with policy-decided authorization, RFC 9457 problem
// responses, health, readiness, metrics, the OpenAPI document, and one file
// per resource. It holds no business logic: handlers decode, authorize, call a
// feature service, and encode.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clientip"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/exports"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/receipt"
	"github.com/steward-privacy/steward/internal/retention"
)

// Config holds the HTTP limits.
type Config struct {
	// BodyLimit bounds a request's body. PageBodyLimit, when larger, is the
	// limit for paths under PagePrefix instead (the pages' forms, one of
	// which uploads a document). Both are enforced from the request's
	// headers, before the body is read: a declared Content-Length over the
	// limit is refused at once with 413.
	BodyLimit     int
	PageBodyLimit int
	PagePrefix    string
	ReadTimeout   time.Duration
	WriteTimeout  time.Duration
	IdleTimeout   time.Duration
	// CORSOrigins may call the consent endpoints from browsers with the
	// publishable key for any product, besides each product's own origins
	// (STEWARD_CORS_ORIGINS).
	CORSOrigins []string
	// GeoHeader is the request header a CDN sets to the visitor's country
	// (e.g. CF-IPCountry): the consent banner's region when the page names
	// none (STEWARD_GEO_HEADER). Empty: no such header is trusted.
	GeoHeader string
	// RateLimit sets the limits per client address and per API key
	// (ratelimit.go); the zero value turns them off.
	RateLimit RateLimitConfig
	// UnfusedConsentCheck serves GET /v1/consent/check through the
	// middleware chain like every other route, instead of through its
	// fused path (fastcheck.go). Both answer alike; the chain's version is
	// what TestFusedCheckMatchesChain compares the fused one with.
	UnfusedConsentCheck bool
}

// DefaultConfig is what `steward serve` uses unless configured otherwise.
func DefaultConfig() Config {
	return Config{BodyLimit: 1 << 20, ReadTimeout: 10 * time.Second, WriteTimeout: 15 * time.Second, IdleTimeout: 60 * time.Second}
}

// Deps are the services the API fronts. Each is a small interface declared
// next to the handlers that use it, listing only what they call, so the
// handlers can be tested with fakes; the feature packages' concrete types
// satisfy them (see the assertions below).
type Deps struct {
	Log      *slog.Logger
	Consent  ConsentService
	Keys     KeyAuthenticator
	Receipts *receipt.Signer
	Metrics  *Metrics
	Audit    AuditReader
	Requests RequestService
	// Ready reports whether the service can take traffic (database reachable,
	// policies loaded); nil error means ready.
	Ready func(ctx context.Context) error
	// CreemWebhook verifies and records one Creem webhook (raw body and its
	// signature header); nil when no webhook secret is configured. It
	// returns apperr errors: unauthenticated for a bad signature, invalid
	// for a malformed event.
	CreemWebhook func(ctx context.Context, body []byte, signature string) error
	// Exports keeps export packages; nil (or a nil pointer) when the
	// deployment has none: the download endpoint answers 404.
	Exports ExportStore
	// Retention plans and runs sweeps and keeps legal holds; nil (or a nil
	// pointer): the retention endpoints answer 404.
	Retention RetentionService
	// ClientIP finds the client's address behind the trusted proxies; nil:
	// the peer's address.
	ClientIP *clientip.Resolver
	// Pages mounts server-rendered pages (the privacy center) on the app,
	// after the request-id, logging and panic middleware; nil: none.
	Pages func(fiber.Router)
	// Restrictions reads and lifts restrictions of processing; nil (or a
	// nil pointer): the restriction endpoints answer 404.
	Restrictions RestrictionService
	// Notices announces a new notice version to the people it concerns;
	// nil: the announce endpoint answers 404 (the notice texts are served
	// from the policy bundle regardless).
	Notices NoticeAnnouncer
	// Authz decides whether a key's role may perform an action; nil: the
	// policy engine the consent service currently holds decides (so a
	// reloaded bundle takes effect on the next request).
	Authz Authorizer
	// Webhooks manages outbound webhook endpoints; nil (or a nil pointer):
	// the endpoints answer 404.
	Webhooks WebhookEndpoints
	// Clock times the rate limits' buckets; nil: the real clock.
	Clock clock.Clock
}

// The feature packages' types are what `steward serve` wires in.
var (
	_ ConsentService   = (*consent.Service)(nil)
	_ KeyAuthenticator = (*apikey.Store)(nil)
	_ RequestService   = (*dsar.Service)(nil)
	_ ExportStore      = (*exports.Store)(nil)
	_ RetentionService = (*retention.Service)(nil)
	_ Authorizer       = (*policy.Engine)(nil)
)

// AuditReader reads and verifies the audit log.
type AuditReader interface {
	List(ctx context.Context, f audit.Filter) ([]audit.Entry, string, error)
	Each(ctx context.Context, f audit.Filter, fn func(audit.Entry) error) error
	Verify(ctx context.Context) (audit.Result, error)
}

type server struct {
	Deps
	cfg     Config
	origins *originCache
	limits  *rateLimits
}

// New builds the fiber app.
func New(cfg Config, d Deps) *fiber.App {
	if d.Metrics == nil {
		d.Metrics = NewMetrics()
	}
	// An interface holding a nil pointer is not nil: the optional services
	// are normalised so that "not configured" is one test, as it was when
	// these fields were pointers.
	if isNilPointer(d.Exports) {
		d.Exports = nil
	}
	if isNilPointer(d.Retention) {
		d.Retention = nil
	}
	if isNilPointer(d.Restrictions) {
		d.Restrictions = nil
	}
	if isNilPointer(d.Notices) {
		d.Notices = nil
	}
	if isNilPointer(d.Webhooks) {
		d.Webhooks = nil
	}
	if isNilPointer(d.Authz) {
		d.Authz = engineAuthorizer{d.Consent}
	}
	s := &server{Deps: d, cfg: cfg, origins: newOriginCache(cfg.CORSOrigins), limits: newRateLimits(cfg.RateLimit, d.Clock)}
	app := fiber.New(fiber.Config{
		AppName:               "steward",
		BodyLimit:             cfg.BodyLimit,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		DisableStartupMessage: true,
		JSONEncoder:           json.Marshal,
		JSONDecoder:           json.Unmarshal,
		ErrorHandler:          s.writeProblem,
		// Proxies are not trusted by default: the client IP is the peer's.
		EnableTrustedProxyCheck: true,
	})
	if !cfg.UnfusedConsentCheck {
		// The consent check runs its chain fused (fastcheck.go);
		// registered first, fiber matches it before the middleware below.
		app.Get("/v1/consent/check", s.checkConsentFused)
	}
	app.Use(s.observe)
	app.Use(s.guard) // headers on every response; query text (guard.go)
	if d.Pages != nil {
		d.Pages(app)
	}
	if cfg.PageBodyLimit > cfg.BodyLimit && cfg.PagePrefix != "" {
		// fasthttp asks per request, from the headers, how much body it
		// may read: the pages get theirs, everything else keeps the API's.
		prefix := []byte(cfg.PagePrefix)
		app.Server().HeaderReceived = func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
			if bytes.HasPrefix(h.RequestURI(), prefix) {
				return fasthttp.RequestConfig{MaxRequestBodySize: cfg.PageBodyLimit}
			}
			return fasthttp.RequestConfig{}
		}
	}

	app.Get("/healthz", s.healthz)
	app.Get("/readyz", s.readyz)
	app.Get("/metrics", s.metrics)
	app.Get("/openapi.json", s.openapi)
	// The consent SDK's script, typings and manifest (internal/sdk): public.
	app.Get("/sdk/v1/manifest.json", s.sdkManifest)
	app.Get("/sdk/v1/steward-consent.js", s.sdkLatest)
	app.Get("/sdk/v1/steward-consent.d.ts", s.sdkTypings)
	app.Get("/sdk/v1/steward-consent.:hash.js", s.sdkScript)
	// Browsers on the products' sites call the consent endpoints (cors.go);
	// fiber matches a Use prefix as a plain string prefix, so this covers
	// /v1/consent/... and /v1/consents... alike.
	app.Use("/v1/consent", s.cors)
	// Everything registered from here on is rate limited (ratelimit.go);
	// the routes above, preflights and the pages are not.
	app.Use(s.limitAddress)

	v1 := app.Group("/v1")
	// Public: anyone holding a receipt must be able to verify it.
	v1.Get("/consents/receipts/jwks.json", s.jwks)
	// A person's own request: the emailed code or the status token is the
	// credential, not an API key.
	v1.Post("/privacy-requests/:id/verify", s.verifyRequest)
	v1.Post("/privacy-requests/:id/verification-code", s.resendCode)
	v1.Get("/privacy-requests/:id/status", s.requestStatus)
	v1.Post("/privacy-requests/:id/verification/challenge-login", s.challengeLogin)
	v1.Post("/privacy-requests/:id/verification/invoice", s.verifyInvoice)
	// A person's export package: the signed, expiring link is the credential.
	v1.Get("/exports/:token", s.downloadExport)
	// Processors' webhooks: the signature over the body is the credential.
	v1.Post("/webhooks/creem", s.creemWebhook)
	// The privacy notices, every version: public like the notices themselves.
	v1.Get("/notices/:product", s.listNotices)
	v1.Get("/notices/:product/:version", s.getNotice)

	// Keyed routes authenticate and charge the key as their own first
	// handlers, not as a group middleware: a refusal is then counted and
	// logged under the route it was for, as the fused consent check does,
	// instead of under the group's mount ("/v1").
	authed := keyedRoutes{v1, []fiber.Handler{s.authenticate, s.limitKey}}
	authed.Post("/consents", s.recordConsent)
	authed.Get("/consents", s.currentConsent)
	authed.Get("/consents/history", s.consentHistory)
	authed.Get("/consents/receipts/:event_id", s.consentReceipt)
	authed.Get("/consent/banner", s.consentBanner)
	if cfg.UnfusedConsentCheck {
		authed.Get("/consent/check", s.checkConsent)
	}
	authed.Post("/consent/check", s.checkConsentBatch)
	authed.Get("/admin/audit", s.listAudit)
	authed.Get("/admin/audit/export", s.exportAudit)
	authed.Get("/admin/audit/verify", s.verifyAudit)
	authed.Post("/privacy-requests", s.createRequest)
	authed.Get("/privacy-requests", s.listRequests)
	authed.Get("/privacy-requests/:id", s.getRequest)
	authed.Get("/privacy-requests/:id/report", s.requestReport)
	authed.Get("/privacy-requests/:id/package", s.downloadRequestPackage)
	authed.Post("/privacy-requests/:id/identities", s.revealIdentities)
	authed.Get("/privacy-requests/:id/documents/:kind", s.openDocument)
	authed.Post("/privacy-requests/:id/documents/:kind/review", s.reviewDocument)
	authed.Post("/privacy-requests/:id/release-package", s.releasePackage)
	authed.Get("/privacy-requests/:id/recipients", s.listRecipients)
	authed.Post("/privacy-requests/:id/recipients/:system/told", s.recipientTold)
	authed.Post("/privacy-requests/:id/approve", s.approveRequest)
	authed.Post("/privacy-requests/:id/deny", s.denyRequest)
	authed.Post("/privacy-requests/:id/extend", s.extendRequest)
	authed.Post("/privacy-requests/:id/cancel", s.cancelRequest)
	authed.Post("/privacy-requests/:id/pause", s.pauseRequest)
	authed.Post("/privacy-requests/:id/resume", s.resumeRequest)
	authed.Post("/privacy-requests/:id/retry-planning", s.retryPlanning)
	authed.Post("/privacy-requests/:id/replan", s.replanRequest)
	authed.Post("/privacy-requests/:id/tasks/:task_id/retry", s.retryTask)
	authed.Post("/privacy-requests/:id/tasks/:task_id/complete", s.completeTask)
	authed.Post("/privacy-requests/:id/tasks/:task_id/acknowledge-review", s.acknowledgeReview)
	authed.Get("/retention/plan", s.retentionPlan)
	authed.Post("/retention/runs", s.startRetentionRun)
	authed.Get("/retention/runs", s.listRetentionRuns)
	authed.Get("/retention/runs/:id", s.getRetentionRun)
	authed.Get("/legal-holds", s.listHolds)
	authed.Post("/legal-holds", s.createHold)
	authed.Get("/legal-holds/:id", s.getHold)
	authed.Post("/legal-holds/:id/lift", s.liftHold)
	authed.Post("/notices/:product/:version/announce", s.announceNotice)
	authed.Get("/restrictions", s.listRestrictions)
	authed.Get("/restrictions/:id", s.getRestriction)
	authed.Post("/restrictions/:id/lift", s.liftRestriction)
	authed.Post("/webhooks/endpoints", s.createWebhookEndpoint)
	authed.Get("/webhooks/endpoints", s.listWebhookEndpoints)
	authed.Delete("/webhooks/endpoints/:id", s.deleteWebhookEndpoint)
	authed.Post("/webhooks/endpoints/:id/rotate-secret", s.rotateWebhookSecret)
	authed.Get("/webhooks/endpoints/:id/deliveries", s.listWebhookDeliveries)
	authed.Post("/webhooks/deliveries/:id/replay", s.replayWebhookDelivery)
	return app
}

// keyedRoutes registers routes on r with handlers pre running first.
type keyedRoutes struct {
	r   fiber.Router
	pre []fiber.Handler
}

func (k keyedRoutes) with(h fiber.Handler) []fiber.Handler { return append(slices.Clip(k.pre), h) }

// Get registers HEAD too, as fiber's Get does.
func (k keyedRoutes) Get(path string, h fiber.Handler)    { k.r.Get(path, k.with(h)...) }
func (k keyedRoutes) Post(path string, h fiber.Handler)   { k.r.Post(path, k.with(h)...) }
func (k keyedRoutes) Delete(path string, h fiber.Handler) { k.r.Delete(path, k.with(h)...) }

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// clientIP is the caller's address: behind trusted proxies, the right-most
// untrusted X-Forwarded-For entry (see internal/clientip), else the peer.
func (s *server) clientIP(c *fiber.Ctx) string {
	return s.clientAddr(c).String()
}

// clientAddr is clientIP as an address, which costs no allocation.
func (s *server) clientAddr(c *fiber.Ctx) netip.Addr {
	return s.ClientIP.Of(c.Context().RemoteIP(), c.Request().Header.Peek(fiber.HeaderXForwardedFor))
}

// isNilPointer reports whether v is nil or an interface holding a nil
// pointer.
func isNilPointer(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}
