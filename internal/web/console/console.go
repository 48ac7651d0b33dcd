// Package console is the compliance staff's console, served at /console:
// the queue of privacy requests by due date, a request with its plan,
// tasks and timeline and the staff actions on it, a subject's consent with
// receipts, the audit log and its verification, retention plans, runs and
// legal holds, API keys, and the policy bundle in force.
//
// It shares the privacy center's look (internal/web: one stylesheet, the
// same components and languages) but not its audience: every page needs a
// staff session from internal/staff (password and a required second
// factor). Authorization is never decided here: every page and action asks
// the policy bundle's authz decision with the same action the API uses
// for the same operation, so a role sees a button exactly when the API
// would accept the call, and a refused POST is a 403 page and an audit
// entry. Actions go through the same feature services as the API, with the
// staff member as the actor ("staff:<account id>").
//
// Pages are rendered on the server and work without JavaScript, except the
// passkey ceremonies, which need the browser's WebAuthn API; one small
// same-origin script drives them. Every form carries a CSRF token bound to
// the browser and its session, every page is no-store, and the CSP allows
// no inline script.
package console

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clientip"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/exports"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/receipt"
	"github.com/steward-privacy/steward/internal/retention"
	"github.com/steward-privacy/steward/internal/staff"
	"github.com/steward-privacy/steward/internal/web"
	"github.com/steward-privacy/steward/internal/web/pagekit"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is mounted.
const Prefix = "/console"

// Staff is sign-in and sessions (*staff.Service).
type Staff interface {
	SignInPassword(ctx context.Context, email, password, ip string) (staff.Pending, error)
	Pending(ctx context.Context, pendingToken string) (staff.Pending, error)
	SignInTOTP(ctx context.Context, pendingToken, code, ip string) (staff.Session, error)
	BeginTOTPEnrolment(ctx context.Context, pendingToken string) (staff.TOTPEnrolment, error)
	FinishTOTPEnrolment(ctx context.Context, pendingToken, code, ip string) (staff.Session, error)
	BeginPasskeyEnrolment(ctx context.Context, pendingToken string) ([]byte, error)
	FinishPasskeyEnrolment(ctx context.Context, pendingToken string, response []byte, ip string) (staff.Session, error)
	BeginPasskeySignIn(ctx context.Context, pendingToken string) ([]byte, error)
	FinishPasskeySignIn(ctx context.Context, pendingToken string, response []byte, ip string) (staff.Session, error)
	OIDCStart(ctx context.Context) (redirect, state string, err error)
	OIDCCallback(ctx context.Context, state, cookieState, code, ip string) (*staff.Session, *staff.Pending, error)
	Authenticate(ctx context.Context, token string) (staff.Principal, error)
	SignOut(ctx context.Context, token string) error
	Denied(ctx context.Context, p staff.Principal, action, reason, ip string) error
}

// Requests is the staff side of privacy requests (*dsar.Service).
type Requests interface {
	List(ctx context.Context, f dsar.Filter) ([]dsar.Request, string, error)
	Get(ctx context.Context, id string) (dsar.Detail, error)
	Report(ctx context.Context, id string) (dsar.Report, error)
	RevealIdentities(ctx context.Context, id, actor string) ([]string, error)
	Approve(ctx context.Context, id, actor, note string) (dsar.Request, error)
	Deny(ctx context.Context, id, actor, reason string) (dsar.Request, error)
	Extend(ctx context.Context, id, actor, reason string) (dsar.Request, error)
	Cancel(ctx context.Context, id, actor, reason string) (dsar.Request, error)
	Pause(ctx context.Context, id, actor, reason string) (dsar.Request, error)
	Resume(ctx context.Context, id, actor string) (dsar.Request, error)
	RetryPlan(ctx context.Context, id, actor string) (dsar.Request, error)
	Replan(ctx context.Context, id, actor, note string, add []identity.Subject) (dsar.Request, error)
	RetryTask(ctx context.Context, id, taskID, actor string) (dsar.Request, error)
	CompleteManualTask(ctx context.Context, id, taskID, actor, note string) (dsar.Request, error)
	AcknowledgeReview(ctx context.Context, id, taskID, actor, note string) (dsar.Request, error)
	ReviewDocument(ctx context.Context, id, kind, actor, note string) (dsar.Request, error)
	OpenDocument(ctx context.Context, id, kind, actor string) (dsar.Document, error)
	ReleasePackage(ctx context.Context, id, actor, note string) (dsar.Request, error)
	Recipients(ctx context.Context, id string) ([]dsar.Recipient, error)
	RecipientTold(ctx context.Context, id, system, actor, note string) (dsar.Recipient, error)
}

// Packages opens a request's export package for staff (*exports.Store).
type Packages interface {
	OpenForStaff(ctx context.Context, requestID, actor string) (exports.Package, io.ReadCloser, error)
}

// Consent reads the consent ledger (*consent.Service).
type Consent interface {
	Current(ctx context.Context, subj identity.Subject) ([]consent.PurposeState, error)
	History(ctx context.Context, subj identity.Subject, cursor string, limit int) ([]consent.Event, string, error)
	Event(ctx context.Context, id string) (consent.Event, error)
}

// Receipts signs consent receipts (*receipt.Signer).
type Receipts interface {
	Sign(r receipt.Receipt) (string, error)
}

// AuditLog reads and verifies the audit log (audit.Reader).
type AuditLog interface {
	List(ctx context.Context, f audit.Filter) ([]audit.Entry, string, error)
	Verify(ctx context.Context) (audit.Result, error)
	Checkpoints(ctx context.Context, limit int) ([]audit.Checkpoint, error)
}

// Retention is retention plans, runs and legal holds (*retention.Service).
type Retention interface {
	Plan(ctx context.Context, dataset string) ([]retention.PlanItem, error)
	Start(ctx context.Context, o retention.RunOptions) (retention.Run, error)
	ListRuns(ctx context.Context, limit int) ([]retention.Run, error)
	ListHolds(ctx context.Context, all bool) ([]retention.Hold, error)
	CreateHold(ctx context.Context, in retention.HoldInput, actor string) (retention.Hold, error)
	LiftHold(ctx context.Context, id, reason, actor string) (retention.Hold, error)
}

// Keys manages API keys (*apikey.Store).
type Keys interface {
	List(ctx context.Context) ([]apikey.Key, error)
	Create(ctx context.Context, in apikey.CreateInput, roles map[string]bool, actor string) (apikey.Key, string, error)
	Revoke(ctx context.Context, id, actor string) (apikey.Key, error)
}

// Policies serves the bundle in force (*policy.Holder): it decides
// authorization, explains fields and names the revision.
type Policies interface {
	Current() *policy.Engine
}

var (
	_ Staff     = (*staff.Service)(nil)
	_ Requests  = (*dsar.Service)(nil)
	_ Packages  = (*exports.Store)(nil)
	_ Consent   = (*consent.Service)(nil)
	_ Receipts  = (*receipt.Signer)(nil)
	_ AuditLog  = audit.Reader{}
	_ Retention = (*retention.Service)(nil)
	_ Keys      = (*apikey.Store)(nil)
	_ Policies  = (*policy.Holder)(nil)
)

// Config is the console's configuration.
type Config struct {
	// PublicURL is where staff reach Steward; https makes the cookies
	// Secure, and its origin is the one POSTs must come from.
	PublicURL string
	// Secret keys the CSRF tokens (32 bytes or more); random when empty,
	// which is fine for one replica.
	Secret []byte
	// AtRiskDays marks open requests due within this many days (0: 7).
	AtRiskDays int
	// OIDC shows "Sign in with SSO" (the staff service holds the provider).
	OIDC bool
	// PageSize is the queue's page (0: 50; at most 200).
	PageSize int
}

// Deps are the services behind the pages. Staff, Requests and Policies are
// required; a nil optional service hides its page (404).
type Deps struct {
	Log       *slog.Logger
	Clock     clock.Clock
	Staff     Staff
	Requests  Requests
	Packages  Packages
	Consent   Consent
	Receipts  Receipts
	Audit     AuditLog
	Retention Retention
	Keys      Keys
	Policies  Policies
	ClientIP  *clientip.Resolver
}

// Console is the staff console.
type Console struct {
	cfg    Config
	d      Deps
	origin string
	secure bool
	pages  map[string]*template.Template
	static pagekit.Static

	headers fiber.Handler
	csrf    pagekit.CSRF
	langs   pagekit.Lang
}

// New builds the console.
func New(cfg Config, d Deps) (*Console, error) {
	if d.Staff == nil || d.Requests == nil || d.Policies == nil {
		return nil, errors.New("console: Staff, Requests and Policies are required")
	}
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
	if cfg.AtRiskDays <= 0 {
		cfg.AtRiskDays = 7
	}
	if cfg.PageSize <= 0 || cfg.PageSize > 200 {
		cfg.PageSize = 50
	}
	pages, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	st, err := pagekit.LoadStatic(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("console: static: %w", err)
	}
	u, _ := url.Parse(cfg.PublicURL)
	origin, _ := policy.NormalizeOrigin(cfg.PublicURL)
	c := &Console{cfg: cfg, d: d, origin: origin, secure: u != nil && u.Scheme == "https", pages: pages, static: st}
	// The CSP allows images from data: for the TOTP QR code and fetches
	// to this origin for the passkey options; no page may frame the
	// console.
	c.headers = pagekit.SecurityHeaders(pagekit.Headers{
		Secure: c.secure,
		CORP:   true,
		// Every page shows requests, identities, keys or the log.
		Cacheable: func(path string) bool { return strings.HasPrefix(path, Prefix+"/static/") },
		Prepare:   func(ctx *fiber.Ctx) { c.lang(ctx) },
	})
	c.csrf = pagekit.CSRF{Secret: cfg.Secret, Label: "steward console csrf v1", Cookie: cookieCSRF, TTL: 24 * time.Hour, SetCookie: c.setCookie}
	c.langs = pagekit.Lang{Cookie: cookieLang, SetCookie: c.setCookie, Valid: web.ValidLanguage, Negotiate: web.NegotiateLanguage}
	return c, nil
}

// Mount adds the console's routes to app.
func (c *Console) Mount(app fiber.Router) {
	g := app.Group(Prefix, c.headers)
	g.Get("/static/:name", c.static.Handler(c.notFound))
	g.Get("/", func(ctx *fiber.Ctx) error { return ctx.Redirect(Prefix+"/requests", fiber.StatusSeeOther) })

	g.Get("/signin", c.signinForm)
	g.Post("/signin", c.guard, c.signinPassword)
	g.Get("/signin/factor", c.factorForm)
	g.Post("/signin/totp", c.guard, c.codeStep("factor", "", c.d.Staff.SignInTOTP))
	g.Get("/signin/passkey/options", c.passkeyOptions("passkey sign-in", c.d.Staff.BeginPasskeySignIn))
	g.Post("/signin/passkey", c.guard, c.passkeyStep("factor", c.d.Staff.FinishPasskeySignIn))
	g.Get("/signin/enrol", c.enrolForm)
	g.Post("/signin/enrol/totp", c.guard, c.enrolTOTP)
	// The secret was shown once; it stays pending on the server, so a
	// failed confirmation asks for the next code from the app ("-").
	g.Post("/signin/enrol/totp/confirm", c.guard, c.codeStep("enrol", "-", c.d.Staff.FinishTOTPEnrolment))
	g.Get("/signin/enrol/passkey/options", c.passkeyOptions("passkey enrolment", c.d.Staff.BeginPasskeyEnrolment))
	g.Post("/signin/enrol/passkey", c.guard, c.passkeyStep("enrol", c.d.Staff.FinishPasskeyEnrolment))
	g.Get("/signin/oidc", c.oidcStart)
	g.Get("/signin/oidc/callback", c.oidcCallback)

	a := g.Group("", c.authed)
	a.Post("/signout", c.guard, c.signout)
	a.Get("/requests", c.queue)
	a.Post("/requests", c.guard, c.queue)
	a.Get("/requests/:id", c.request)
	a.Get("/requests/:id/package", c.downloadPackage)
	a.Get("/requests/:id/documents/agent_authorization", c.openDocument)
	a.Post("/requests/:id/identities", c.guard, c.revealIdentities)
	a.Post("/requests/:id/replan", c.guard, c.replan)
	a.Post("/requests/:id/recipients/:system/told", c.guard, c.recipientTold)
	for _, name := range []string{"approve", "deny", "extend", "pause", "resume", "cancel", "retry-planning", "review-document", "release-package"} {
		a.Post("/requests/:id/"+name, c.guard, c.requestAction(name))
	}
	for _, name := range []string{"retry", "complete", "acknowledge-review"} {
		a.Post("/requests/:id/tasks/:task/"+name, c.guard, c.taskAction(name))
	}
	a.Get("/consent", c.consentPage)
	a.Post("/consent", c.guard, c.consentPage)
	a.Get("/consent/receipts/:event_id", c.consentReceipt)
	a.Get("/audit", c.auditPage)
	a.Get("/audit/verify", c.auditVerify)
	a.Get("/retention", c.retentionPage)
	a.Post("/retention/runs", c.guard, c.retentionRun)
	a.Post("/retention/holds", c.guard, c.placeHold)
	a.Post("/retention/holds/:id/lift", c.guard, c.liftHold)
	a.Get("/keys", c.keysPage)
	a.Post("/keys", c.guard, c.createKey)
	a.Post("/keys/:id/revoke", c.guard, c.revokeKey)
	a.Get("/policy", c.policyPage)
	g.All("/*", func(ctx *fiber.Ctx) error { return c.notFound(ctx) })
}

// --- pages ------------------------------------------------------------------------

// view is what every page template gets.
type view struct {
	Lang   string
	Langs  []langLink
	Title  string
	Path   string
	CSRF   string
	Me     *staff.Principal
	Can    map[string]bool // console action -> allowed for Me's role
	Errors []string
	Flash  string
	Data   any
}

type langLink struct {
	Code, Name, Href string
	Current          bool
}

func (c *Console) newView(ctx *fiber.Ctx, titleKey string) *view {
	lang := c.lang(ctx)
	v := &view{Lang: lang, Title: T(lang, titleKey), Path: ctx.Path(), CSRF: c.csrfToken(ctx), Can: map[string]bool{}}
	if p, ok := principal(ctx); ok {
		v.Me = &p
		for _, a := range Actions {
			v.Can[a.Name] = c.can(ctx, p, a.Name)
		}
	}
	q := url.Values{}
	for _, l := range web.Languages() {
		q.Set("lang", l)
		v.Langs = append(v.Langs, langLink{Code: l, Name: web.LanguageName(l), Href: ctx.Path() + "?" + q.Encode(), Current: l == lang})
	}
	return v
}

// render writes a page.
func (c *Console) render(ctx *fiber.Ctx, status int, page string, v *view) error {
	t, ok := c.pages[page]
	if !ok {
		return fmt.Errorf("console: no page %s", page)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		c.d.Log.Error("render console page", "page", page, "err", err)
		ctx.Status(fiber.StatusInternalServerError).Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return ctx.SendString("<!doctype html><title>Error</title><p>Error")
	}
	ctx.Status(status).Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return ctx.SendString(b.String())
}

func (c *Console) message(ctx *fiber.Ctx, status int, titleKey, body string) error {
	v := c.newView(ctx, titleKey)
	v.Data = body
	return c.render(ctx, status, "message", v)
}

func (c *Console) notFound(ctx *fiber.Ctx) error {
	return c.message(ctx, fiber.StatusNotFound, "notfound_title", T(c.lang(ctx), "notfound_body"))
}

// failure turns a service error into a page. Staff see the service's own
// message for a conflict or invalid input (it says what to do); anything
// unexpected is logged and shown as a generic error.
func (c *Console) failure(ctx *fiber.Ctx, err error) error {
	lang := c.lang(ctx)
	var ae *apperr.Error
	msg := ""
	if errors.As(err, &ae) {
		msg = ae.Message
	}
	switch apperr.CodeOf(err) {
	case apperr.NotFound, apperr.Gone:
		return c.notFound(ctx)
	case apperr.RateLimited:
		return c.message(ctx, fiber.StatusTooManyRequests, "error_title", T(lang, "err_rate"))
	case apperr.Conflict:
		return c.message(ctx, fiber.StatusConflict, "error_title", T(lang, "err_not_done", msg))
	case apperr.Invalid:
		return c.message(ctx, fiber.StatusUnprocessableEntity, "error_title", T(lang, "err_not_done", msg))
	case apperr.Forbidden:
		return c.message(ctx, fiber.StatusForbidden, "forbidden_title", T(lang, "forbidden_body"))
	}
	c.d.Log.Error("console", "route", ctx.Route().Path, "err", err)
	return c.message(ctx, fiber.StatusInternalServerError, "error_title", T(lang, "err_generic"))
}

// serviceError is the message of a conflict or invalid-input error, shown
// on the page the action came from; ok is false for anything else.
func serviceError(lang string, err error) (string, int, bool) {
	var ae *apperr.Error
	if !errors.As(err, &ae) {
		return "", 0, false
	}
	switch ae.Code {
	case apperr.Conflict:
		return T(lang, "err_not_done", ae.Message), fiber.StatusConflict, true
	case apperr.Invalid:
		return T(lang, "err_not_done", ae.Message), fiber.StatusUnprocessableEntity, true
	}
	return "", 0, false
}

const (
	cookieSession = "steward_staff"
	cookiePending = "steward_staff_pending"
	cookieOIDC    = "steward_staff_oidc"
	cookieCSRF    = "steward_console_csrf"
	cookieLang    = "steward_console_lang"
	localMe       = "console.principal"
)

// lang is the page language: ?lang= (remembered), the cookie, the browser.
func (c *Console) lang(ctx *fiber.Ctx) string { return c.langs.Of(ctx) }

// setCookie sets an HttpOnly cookie for the console's paths only. Lax, not
// Strict: a link in a reminder email opens the request for a signed-in
// reviewer; every state change is a CSRF-checked POST anyway. A maxAge of
// zero or less deletes it.
func (c *Console) setCookie(ctx *fiber.Ctx, name, value string, maxAge time.Duration) {
	pagekit.SetCookie(ctx, name, value, Prefix+"/", c.secure, maxAge, fiber.CookieSameSiteLaxMode)
}

func (c *Console) clearCookie(ctx *fiber.Ctx, name string) { c.setCookie(ctx, name, "", -1) }

// --- security ---------------------------------------------------------------------

// csrfToken is the form token: an HMAC of a random browser cookie and the
// session (or pending sign-in) token, so a form from one session is
// refused in another and a page on another site cannot forge it.
func (c *Console) csrfToken(ctx *fiber.Ctx) string { return c.csrf.Token(ctx, csrfBind(ctx)) }

// csrfBind is what the form token is bound to: the session, or else the
// pending sign-in.
func csrfBind(ctx *fiber.Ctx) string {
	if bind := ctx.Cookies(cookieSession); bind != "" {
		return bind
	}
	return ctx.Cookies(cookiePending)
}

// guard protects every form POST: an Origin from this site when the
// browser sends one, and the CSRF token. A refusal of a signed-in
// member's POST is audited.
func (c *Console) guard(ctx *fiber.Ctx) error {
	if !c.sameOrigin(ctx) {
		return c.refuse(ctx, "csrf", "cross-origin post")
	}
	if !c.csrf.Check(ctx, csrfBind(ctx)) {
		return c.refuse(ctx, "csrf", "missing or wrong csrf token")
	}
	return ctx.Next()
}

// refuse answers 403, auditing it when a staff member is signed in.
func (c *Console) refuse(ctx *fiber.Ctx, action, reason string) error {
	if p, ok := principal(ctx); ok {
		if err := c.d.Staff.Denied(ctx.UserContext(), p, action, reason, c.ip(ctx)); err != nil {
			c.d.Log.Error("audit refused console action", "action", action, "err", err)
		}
	}
	lang := c.lang(ctx)
	body := T(lang, "forbidden_body")
	if action == "csrf" {
		body = T(lang, "err_csrf")
	}
	return c.message(ctx, fiber.StatusForbidden, "forbidden_title", body)
}

func (c *Console) sameOrigin(ctx *fiber.Ctx) bool { return pagekit.SameOrigin(ctx, c.origin) }

func (c *Console) ip(ctx *fiber.Ctx) string {
	return c.d.ClientIP.Of(ctx.Context().RemoteIP(), ctx.Request().Header.Peek(fiber.HeaderXForwardedFor)).String()
}

// authed requires a live staff session. An unknown or expired one goes to
// sign-in, saying so when the browser had one, and coming back afterwards.
func (c *Console) authed(ctx *fiber.Ctx) error {
	tok := ctx.Cookies(cookieSession)
	back := "?next=" + url.QueryEscape(nextPath(ctx))
	if tok == "" {
		return ctx.Redirect(Prefix+"/signin"+back, fiber.StatusSeeOther)
	}
	p, err := c.d.Staff.Authenticate(ctx.UserContext(), strings.Clone(tok))
	if errors.Is(err, staff.ErrNoSession) {
		c.clearCookie(ctx, cookieSession)
		return ctx.Redirect(Prefix+"/signin"+back+"&expired=1", fiber.StatusSeeOther)
	}
	if err != nil {
		return c.failure(ctx, fmt.Errorf("authenticate staff session: %w", err))
	}
	ctx.Locals(localMe, p)
	return ctx.Next()
}

// nextPath is where to return after sign-in: this page for a GET, the
// queue otherwise (a POST cannot be replayed).
func nextPath(ctx *fiber.Ctx) string {
	if ctx.Method() != fiber.MethodGet {
		return Prefix + "/requests"
	}
	return ctx.Path()
}

// safeNext accepts only a console path (no scheme, no host, no //).
func safeNext(s string) string {
	if !strings.HasPrefix(s, Prefix+"/") || strings.HasPrefix(s, Prefix+"/signin") ||
		strings.ContainsAny(s, "\\\r\n\t ") || strings.Contains(s, "//") || strings.Contains(s, "/..") || len(s) > 200 {
		return Prefix + "/requests"
	}
	if u, err := url.Parse(s); err != nil || u.Scheme != "" || u.Host != "" {
		return Prefix + "/requests"
	}
	return s
}

func principal(ctx *fiber.Ctx) (staff.Principal, bool) {
	p, ok := ctx.Locals(localMe).(staff.Principal)
	return p, ok
}

// can asks the authz policy whether p's role may do the console action.
// The engine in force decides (a reloaded bundle applies at once); an
// error denies.
func (c *Console) can(ctx *fiber.Ctx, p staff.Principal, action string, kinds ...string) bool {
	pa, ok := policyAction(action)
	if !ok {
		return false
	}
	d, err := c.d.Policies.Current().Authorize(ctx.UserContext(), p.Role, pa, kinds)
	if err != nil {
		c.d.Log.Error("authorize console action", "action", action, "err", err)
		return false
	}
	return d.Allow
}

// allow is the check at the top of every handler: the signed-in member's
// role may do action (on subjects of kinds), or the answer is a 403 page
// and an audit entry.
func (c *Console) allow(ctx *fiber.Ctx, action string, kinds ...string) (staff.Principal, error, bool) {
	p, ok := principal(ctx)
	if !ok {
		return p, ctx.Redirect(Prefix+"/signin", fiber.StatusSeeOther), false
	}
	if !c.can(ctx, p, action, kinds...) {
		pa, _ := policyAction(action)
		return p, c.refuse(ctx, action, "role "+p.Role+" may not perform "+pa), false
	}
	return p, nil, true
}
