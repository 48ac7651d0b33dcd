// Package web is the privacy center: the pages a person uses to exercise
// their rights and manage their consent, served by Steward itself.
//
// Pages are rendered on the server from templates embedded in the binary,
// in English, Russian or Uzbek, and work without JavaScript; a small script
// only enhances them (and boots the Telegram Mini App). Nothing is loaded
// from elsewhere: the Content-Security-Policy allows this origin's styles
// and scripts and nothing inline.
//
// A person is known by what they hold, never by an account: the status
// token of a request (set as a cookie when they submit or confirm it, or
// after a one-time code sent to the request's address), a consent session
// opened with a one-time email code, or Telegram's signed Mini App initData.
// Every form carries a CSRF token bound to a cookie; every POST is limited
// per client address (taken through the configured trusted proxies).
package web

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/clientip"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/receipt"
	"github.com/steward-privacy/steward/internal/web/pagekit"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the privacy center is mounted.
const Prefix = "/privacy"

// MaxFormBody bounds a form POST: an agent's request carries the signed
// authorization (at most dsar.MaxDocumentSize) and a few fields.
const MaxFormBody = dsar.MaxDocumentSize + 64<<10

// Requests is what the pages need of the privacy-request service
// (*dsar.Service).
type Requests interface {
	Create(ctx context.Context, in dsar.CreateInput) (dsar.Created, error)
	Verify(ctx context.Context, id, code string) (dsar.VerifyResult, error)
	ResendCode(ctx context.Context, id, ip string) error
	Status(ctx context.Context, id, token string) (dsar.PublicStatus, error)
	CancelByPerson(ctx context.Context, id, token, reason string) (dsar.Request, error)
	SendAccessCode(ctx context.Context, id, ip string) error
	VerifyAccess(ctx context.Context, id, code string) (string, error)
	PersonTimeline(ctx context.Context, id, token string) ([]dsar.PublicEvent, error)
	LiftRestrictionByPerson(ctx context.Context, id, token string) (int, error)
	VerifyInvoice(ctx context.Context, id, statusToken, ref string) (dsar.Request, error)
	ChallengeLogin(ctx context.Context, id, token string) (dsar.VerifyResult, error)
}

// Consent is what the pages need of the consent ledger (*consent.Service).
type Consent interface {
	Engine() *policy.Engine
	Record(ctx context.Context, in consent.RecordInput) (consent.Event, error)
	Current(ctx context.Context, subj identity.Subject) ([]consent.PurposeState, error)
	History(ctx context.Context, subj identity.Subject, cursor string, limit int) ([]consent.Event, string, error)
	Event(ctx context.Context, id string) (consent.Event, error)
}

// Receipts signs consent receipts for download (*receipt.Signer).
type Receipts interface {
	Sign(r receipt.Receipt) (string, error)
}

var (
	_ Requests = (*dsar.Service)(nil)
	_ Consent  = (*consent.Service)(nil)
)

// Config is the privacy center's configuration.
type Config struct {
	// PublicURL is where people reach Steward (https://privacy.example.com);
	// it decides whether cookies are Secure and is the origin POSTs must
	// come from.
	PublicURL string
	// Secret keys the CSRF tokens (32 bytes or more); a random one is
	// made when empty, which is fine for one replica.
	Secret []byte
	// TelegramBotToken verifies Mini App initData; empty turns the Mini
	// App off.
	TelegramBotToken string
	InitDataMaxAge   time.Duration
	// PostsPerMinute bounds form submissions per client address (0: 30).
	PostsPerMinute int
	// Challenge, when set, must accept a form before a request is made or
	// a code is sent (abuse protection).
	Challenge Challenge
	// ChallengeLoginURLs are the products' sign-in pages that start a
	// challenge login (STEWARD_CHALLENGE_LOGIN_URLS); the second-factor
	// page links there with ?request=<id>.
	ChallengeLoginURLs map[string]string
}

// Deps are the services behind the pages.
type Deps struct {
	Log      *slog.Logger
	Clock    clock.Clock
	Requests Requests
	Consent  Consent
	Receipts Receipts
	Sessions *Sessions
	// ClientIP finds the client behind the trusted proxies (nil: the peer).
	ClientIP *clientip.Resolver
}

// Center is the privacy center.
type Center struct {
	cfg     Config
	d       Deps
	origin  string // PublicURL's origin, the one POSTs may come from
	pages   map[string]*template.Template
	secure  bool
	limiter *limiter
	static  pagekit.Static
	headers fiber.Handler
	csrf    pagekit.CSRF
	langs   pagekit.Lang
}

// New builds the privacy center.
func New(cfg Config, d Deps) (*Center, error) {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Clock == nil {
		d.Clock = clock.Real{}
	}
	if len(cfg.Secret) == 0 {
		cfg.Secret = make([]byte, 32)
		_, _ = rand.Read(cfg.Secret)
	}
	if cfg.PostsPerMinute <= 0 {
		cfg.PostsPerMinute = 30
	}
	if cfg.InitDataMaxAge <= 0 {
		cfg.InitDataMaxAge = 24 * time.Hour
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	st, err := pagekit.LoadStatic(staticFS, "static")
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.PublicURL)
	origin, _ := policy.NormalizeOrigin(cfg.PublicURL)
	c := &Center{origin: origin,
		cfg: cfg, d: d, pages: pages, static: st,
		secure:  u != nil && u.Scheme == "https",
		limiter: newLimiter(cfg.PostsPerMinute, time.Minute, d.Clock),
	}
	c.headers = pagekit.SecurityHeaders(pagekit.Headers{
		Secure: c.secure,
		// No framing except by Telegram for the Mini App.
		FrameAncestors: func(ctx *fiber.Ctx) string {
			if strings.Contains(ctx.Path(), "/tg") || ctx.Cookies(cookieMiniApp) == "1" {
				return miniAppFramers
			}
			return ""
		},
		// Pages show a person's requests, choices and links; the static
		// files and the brand colour are the same for everyone.
		Cacheable: func(path string) bool {
			return strings.HasPrefix(path, Prefix+"/static/") || strings.HasSuffix(path, "/brand.css")
		},
		// A ?lang= choice is remembered even when the page redirects.
		Prepare: func(ctx *fiber.Ctx) { c.lang(ctx) },
	})
	c.csrf = pagekit.CSRF{Secret: cfg.Secret, Label: "steward csrf v1", Cookie: cookieCSRF, TTL: 12 * time.Hour, SetCookie: c.setCookie}
	c.langs = pagekit.Lang{Cookie: cookieLang, SetCookie: c.setCookie, Valid: validLang, Negotiate: negotiate}
	return c, nil
}

// Mount adds the privacy center's routes to app.
func (c *Center) Mount(app fiber.Router) {
	g := app.Group(Prefix, c.headers)
	g.Get("/static/:name", c.static.Handler(c.notFound))
	g.Get("/", c.root)
	g.Get("/status", c.statusLink)
	g.Get("/:product/", c.home)
	g.Get("/:product", func(ctx *fiber.Ctx) error { return ctx.Redirect(ctx.Path()+"/", fiber.StatusSeeOther) })
	g.Get("/:product/brand.css", c.brandCSS)
	g.Get("/:product/request", c.requestForm)
	g.Post("/:product/request", c.guard, c.submitRequest)
	g.Get("/:product/requests/:id", c.status)
	g.Get("/:product/requests/:id/verify", c.verifyForm)
	g.Post("/:product/requests/:id/verify", c.guard, c.verify)
	g.Post("/:product/requests/:id/resend", c.guard, c.resend)
	g.Post("/:product/requests/:id/invoice", c.guard, c.invoice)
	g.Get("/:product/requests/:id/challenge-login", c.challengeLoginForm)
	g.Post("/:product/requests/:id/challenge-login", c.guard, c.challengeLogin)
	g.Post("/:product/requests/:id/access", c.guard, c.sendAccess)
	g.Post("/:product/requests/:id/access/verify", c.guard, c.verifyAccess)
	g.Post("/:product/requests/:id/cancel", c.guard, c.cancel)
	g.Post("/:product/requests/:id/lift", c.guard, c.lift)
	g.Get("/:product/consent", c.consentPage)
	g.Post("/:product/consent", c.guard, c.changeConsent)
	g.Get("/:product/consent/receipts/:event_id", c.receipt)
	g.Get("/:product/signin", c.signinForm)
	g.Post("/:product/signin", c.guard, c.signinSend)
	g.Post("/:product/signin/verify", c.guard, c.signinVerify)
	g.Post("/:product/signout", c.guard, c.signout)
	g.Get("/:product/tg", c.miniApp)
	g.Post("/:product/tg/session", c.guardNoCSRF, c.miniAppSession)
	g.All("/*", func(ctx *fiber.Ctx) error { return c.notFound(ctx) })
}

// --- page plumbing -------------------------------------------------------------

// view is what every page template gets.
type view struct {
	Lang      string
	Langs     []langLink
	Title     string
	Product   string
	P         policy.Product
	Brand     bool
	CSRF      string
	Path      string
	Errors    []string
	FieldErrs map[string]string
	Flash     string
	SessionAs string
	MiniApp   bool
	Data      any
}

type langLink struct {
	Code, Name, Href string
	Current          bool
}

func (c *Center) newView(ctx *fiber.Ctx, titleKey string) *view {
	lang := c.lang(ctx)
	v := &view{Lang: lang, Title: T(lang, titleKey), Path: ctx.Path(), FieldErrs: map[string]string{}}
	if p, ok := ctx.Locals(localProduct).(string); ok {
		v.Product = p
		v.P = c.d.Consent.Engine().Products[p]
		v.Brand = v.P.Brand.Accent != ""
	}
	v.CSRF = c.csrfToken(ctx)
	v.MiniApp = ctx.Cookies(cookieMiniApp) == "1"
	q, _ := url.ParseQuery(string(ctx.Request().URI().QueryString()))
	if q == nil {
		q = url.Values{}
	}
	delete(q, "saved")
	for _, l := range languages {
		q.Set("lang", l)
		v.Langs = append(v.Langs, langLink{Code: l, Name: langNames[l], Href: ctx.Path() + "?" + q.Encode(), Current: l == lang})
	}
	return v
}

// render writes a page. Pages that show anything about a person are never
// stored by caches (headers sets no-store on every page).
func (c *Center) render(ctx *fiber.Ctx, status int, page string, v *view) error {
	t, ok := c.pages[page]
	if !ok {
		return errors.New("web: no page " + page)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		c.d.Log.Error("render page", "page", page, "err", err)
		ctx.Status(fiber.StatusInternalServerError).Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return ctx.SendString("<!doctype html><title>Error</title><p>Error")
	}
	ctx.Status(status).Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return ctx.SendString(b.String())
}

func (c *Center) message(ctx *fiber.Ctx, status int, titleKey, bodyKey string) error {
	v := c.newView(ctx, titleKey)
	v.Data = T(v.Lang, bodyKey)
	return c.render(ctx, status, "message", v)
}

func (c *Center) notFound(ctx *fiber.Ctx) error {
	return c.message(ctx, fiber.StatusNotFound, "notfound_title", "notfound_body")
}

// failure turns a service error into a page: a person never sees a stack
// trace or an English-only message, and a 5xx is logged without personal
// data.
func (c *Center) failure(ctx *fiber.Ctx, err error) error {
	switch apperr.CodeOf(err) {
	case apperr.NotFound:
		return c.notFound(ctx)
	case apperr.RateLimited:
		return c.message(ctx, fiber.StatusTooManyRequests, "error_title", "err_rate")
	case apperr.Conflict:
		return c.message(ctx, fiber.StatusConflict, "error_title", "err_conflict")
	case apperr.Invalid:
		return c.message(ctx, fiber.StatusBadRequest, "error_title", "err_generic")
	}
	c.d.Log.Error("privacy center", "route", ctx.Route().Path, "err", err)
	return c.message(ctx, fiber.StatusInternalServerError, "error_title", "err_generic")
}

const (
	localProduct  = "web.product"
	cookieLang    = "steward_lang"
	cookieCSRF    = "steward_csrf"
	cookieMiniApp = "steward_tg"
	cookieReqPre  = "steward_req_"
)

// lang is the page language: ?lang= (remembered), the cookie, the browser.
func (c *Center) lang(ctx *fiber.Ctx) string { return c.langs.Of(ctx) }

// setCookie sets an HttpOnly cookie for the center's paths (a maxAge of
// zero or less deletes it).
func (c *Center) setCookie(ctx *fiber.Ctx, name, value string, maxAge time.Duration) {
	sameSite := fiber.CookieSameSiteLaxMode
	if ctx.Cookies(cookieMiniApp) == "1" && c.secure {
		// Inside Telegram's web client the center runs in a third-party
		// iframe, where only SameSite=None cookies are sent.
		sameSite = fiber.CookieSameSiteNoneMode
	}
	pagekit.SetCookie(ctx, name, value, Prefix+"/", c.secure, maxAge, sameSite)
}

// product resolves :product against the loaded bundle.
func (c *Center) product(ctx *fiber.Ctx) (string, bool) {
	p := ctx.Params("product")
	if _, ok := c.d.Consent.Engine().Products[p]; !ok {
		return "", false
	}
	p = strings.Clone(p)
	ctx.Locals(localProduct, p)
	return p, true
}

func (c *Center) root(ctx *fiber.Ctx) error {
	return ctx.Redirect(Prefix+"/"+c.d.Consent.Engine().DefaultProduct()+"/", fiber.StatusSeeOther)
}

// statusLink is where the links in emails and bot messages point
// (STEWARD_STATUS_URL?request=<id>): the request's page in the default
// product's center.
func (c *Center) statusLink(ctx *fiber.Ctx) error {
	id := strings.ToLower(ctx.Query("request"))
	if !dsar.ValidID(id) {
		return c.notFound(ctx)
	}
	return ctx.Redirect(c.requestPath(c.d.Consent.Engine().DefaultProduct(), id), fiber.StatusSeeOther)
}

func (c *Center) home(ctx *fiber.Ctx) error {
	if _, ok := c.product(ctx); !ok {
		return c.notFound(ctx)
	}
	v := c.newView(ctx, "center")
	v.Title = T(v.Lang, "home_title", v.P.Name)
	v.Data = c.typeChoices(v.Lang)
	return c.render(ctx, fiber.StatusOK, "home", v)
}

type typeChoice struct {
	ID, Name, Desc string
	Checked        bool
}

var requestTypes = []string{"access", "export", "erasure", "rectification", "restriction", "objection"}

func (c *Center) typeChoices(lang string) []typeChoice {
	out := make([]typeChoice, len(requestTypes))
	for i, t := range requestTypes {
		out[i] = typeChoice{ID: t, Name: T(lang, "type_"+t), Desc: T(lang, "desc_"+t)}
	}
	return out
}

// brandCSS is the product's accent colour as a stylesheet: the CSP allows
// no inline style, so the colour comes from this origin like the rest.
func (c *Center) brandCSS(ctx *fiber.Ctx) error {
	if _, ok := c.product(ctx); !ok {
		return c.notFound(ctx)
	}
	accent := c.d.Consent.Engine().Products[ctx.Locals(localProduct).(string)].Brand.Accent
	if accent == "" {
		accent = "#1d4ed8"
	}
	ctx.Set(fiber.HeaderContentType, "text/css; charset=utf-8")
	ctx.Set(fiber.HeaderCacheControl, "public, max-age=300")
	// accent is checked as #rrggbb when the bundle loads.
	return ctx.SendString(":root{--accent:" + accent + "}\n")
}

// --- security -------------------------------------------------------------------

// miniAppFramers may frame the Mini App: Telegram's web clients.
const miniAppFramers = "https://web.telegram.org https://*.telegram.org"

// csrfToken is the form token for this browser: an HMAC of a random cookie,
// so a page on another site, which cannot read the cookie, cannot forge it.
func (c *Center) csrfToken(ctx *fiber.Ctx) string { return c.csrf.Token(ctx) }

// guard protects every form POST: the client's rate limit, an Origin from
// this site when the browser sends one, and the CSRF token.
func (c *Center) guard(ctx *fiber.Ctx) error {
	if _, ok := c.product(ctx); !ok {
		return c.notFound(ctx)
	}
	if !c.limiter.allow(c.ip(ctx)) {
		ctx.Set(fiber.HeaderRetryAfter, "60")
		return c.message(ctx, fiber.StatusTooManyRequests, "error_title", "err_rate")
	}
	if !c.sameOrigin(ctx) {
		return c.message(ctx, fiber.StatusForbidden, "error_title", "err_csrf")
	}
	if !c.csrf.Check(ctx) {
		return c.message(ctx, fiber.StatusForbidden, "error_title", "err_csrf")
	}
	return ctx.Next()
}

// guardNoCSRF is guard for the Mini App's first POST, made before the page
// holds any cookie; the signed initData is its credential.
func (c *Center) guardNoCSRF(ctx *fiber.Ctx) error {
	if _, ok := c.product(ctx); !ok {
		return c.notFound(ctx)
	}
	if !c.limiter.allow(c.ip(ctx)) {
		ctx.Set(fiber.HeaderRetryAfter, "60")
		return c.message(ctx, fiber.StatusTooManyRequests, "error_title", "err_rate")
	}
	if !c.sameOrigin(ctx) {
		return c.message(ctx, fiber.StatusForbidden, "error_title", "err_csrf")
	}
	return ctx.Next()
}

// sameOrigin: a POST whose Origin header names another site is refused
// (browsers send Origin on every cross-site POST).
func (c *Center) sameOrigin(ctx *fiber.Ctx) bool { return pagekit.SameOrigin(ctx, c.origin) }

// limiter is a fixed-window counter per client address, per replica: enough
// to stop one client flooding forms and code sends (the code-send limits in
// dsar hold across replicas).
type limiter struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	clk    clock.Clock
	start  time.Time
	counts map[string]int
}

func newLimiter(n int, window time.Duration, clk clock.Clock) *limiter {
	return &limiter{n: n, window: window, clk: clk, counts: map[string]int{}}
}

func (l *limiter) allow(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clk.Now()
	if now.Sub(l.start) >= l.window {
		l.start, l.counts = now, map[string]int{}
	}
	l.counts[ip]++
	return l.counts[ip] <= l.n
}

// ip is the client's address (rate limits, code-send limits, the consent
// ledger's IP hash).
func (c *Center) ip(ctx *fiber.Ctx) string {
	return c.d.ClientIP.Of(ctx.Context().RemoteIP(), ctx.Request().Header.Peek(fiber.HeaderXForwardedFor)).String()
}

// --- templates ------------------------------------------------------------------

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		out[base] = t
	}
	return out, nil
}

var funcs = template.FuncMap{
	"t": T,
	"date": func(lang string, t time.Time) string {
		return formatDate(lang, t)
	},
	"has": func(list []string, s string) bool { return slices.Contains(list, s) },
	"deref": func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	},
}

var monthNames = map[string][12]string{
	"en": {"January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"},
	"ru": {"января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября", "ноября", "декабря"},
	"uz": {"yanvar", "fevral", "mart", "aprel", "may", "iyun", "iyul", "avgust", "sentyabr", "oktyabr", "noyabr", "dekabr"},
}

// formatDate writes a date the way each language does (UTC: deadlines are
// kept in UTC).
func formatDate(lang string, t time.Time) string {
	t = t.UTC()
	m := monthNames[lang]
	if m[0] == "" {
		m = monthNames["en"]
	}
	switch lang {
	case "ru":
		return strconv.Itoa(t.Day()) + " " + m[t.Month()-1] + " " + strconv.Itoa(t.Year()) + " г."
	case "uz":
		return strconv.Itoa(t.Year()) + "-yil " + strconv.Itoa(t.Day()) + "-" + m[t.Month()-1]
	}
	return strconv.Itoa(t.Day()) + " " + m[t.Month()-1] + " " + strconv.Itoa(t.Year())
}
