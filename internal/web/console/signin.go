package console

import (
	"context"
	"encoding/base64"
	"errors"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/internal/staff"
)

// Sign-in: email and password open a pending sign-in (a short-lived
// cookie); the second factor — a TOTP code or a passkey — turns it into a
// session. An account with no second factor enrols one first. Single
// sign-on, when configured, replaces the password step.

type signinData struct {
	Next    string
	Email   string
	OIDC    bool
	Notice  string
	Pending staff.Pending
	// Enrolment, shown once after "set up an authenticator app".
	QR     template.URL // data: URL of the PNG (made here, so trusted)
	Secret string
	// Failed is the error shown beside the field.
	Failed string
}

func (c *Console) signinForm(ctx *fiber.Ctx) error {
	if tok := ctx.Cookies(cookieSession); tok != "" {
		if _, err := c.d.Staff.Authenticate(ctx.UserContext(), strings.Clone(tok)); err == nil {
			return ctx.Redirect(safeNext(ctx.Query("next")), fiber.StatusSeeOther)
		}
	}
	v := c.newView(ctx, "signin_title")
	d := signinData{Next: safeNext(ctx.Query("next")), OIDC: c.cfg.OIDC}
	switch {
	case ctx.Query("expired") != "":
		d.Notice = T(v.Lang, "signin_expired")
	case ctx.Query("signedout") != "":
		d.Notice = T(v.Lang, "signin_signedout")
	case ctx.Query("timeout") != "":
		d.Notice = T(v.Lang, "signin_pending_expired")
	}
	v.Data = d
	return c.render(ctx, fiber.StatusOK, "signin", v)
}

func (c *Console) signinPassword(ctx *fiber.Ctx) error {
	email := strings.TrimSpace(ctx.FormValue("email"))
	next := safeNext(ctx.FormValue("next"))
	p, err := c.d.Staff.SignInPassword(ctx.UserContext(), strings.Clone(email), strings.Clone(ctx.FormValue("password")), c.ip(ctx))
	if err != nil {
		return c.signinFailed(ctx, "signin", err, signinData{Next: next, Email: email, OIDC: c.cfg.OIDC}, "password")
	}
	return c.pendingStarted(ctx, p, next)
}

// pendingStarted keeps the pending sign-in in its cookie and moves on to
// the second factor, or to enrolling one.
func (c *Console) pendingStarted(ctx *fiber.Ctx, p staff.Pending, next string) error {
	c.setCookie(ctx, cookiePending, p.Token, p.Expires.Sub(c.d.Clock.Now())+time.Minute)
	step := "/signin/factor"
	if p.NeedsEnrolment {
		step = "/signin/enrol"
	}
	return ctx.Redirect(Prefix+step+"?next="+urlQuery(next), fiber.StatusSeeOther)
}

// signinFailed re-renders a sign-in step with why it failed: wrong
// credentials (never which part), a lock with its end, or an expired
// pending sign-in (back to the start).
func (c *Console) signinFailed(ctx *fiber.Ctx, page string, err error, d signinData, field string) error {
	lang := c.lang(ctx)
	var locked *staff.LockedError
	switch {
	case errors.As(err, &locked) && locked.Backoff:
		// The short pause between failures: same page, say when to retry.
		v := c.newView(ctx, titleOf(page))
		d.Failed = field
		v.Errors = []string{T(lang, "err_backoff", formatTime(lang, locked.Until))}
		v.Data = d
		ctx.Set(fiber.HeaderRetryAfter, strconv.Itoa(max(1, int(locked.Until.Sub(c.d.Clock.Now()).Seconds())+1)))
		return c.render(ctx, fiber.StatusTooManyRequests, page, v)
	case errors.As(err, &locked):
		c.clearCookie(ctx, cookiePending)
		v := c.newView(ctx, "locked_title")
		v.Data = T(lang, "locked_body", formatTime(lang, locked.Until))
		return c.render(ctx, fiber.StatusLocked, "message", v)
	case errors.Is(err, staff.ErrPendingExpired) || errors.Is(err, staff.ErrNoSession) || errors.Is(err, staff.ErrWrongStep) ||
		errors.Is(err, staff.ErrSSO):
		c.clearCookie(ctx, cookiePending)
		return ctx.Redirect(Prefix+"/signin?timeout=1&next="+urlQuery(d.Next), fiber.StatusSeeOther)
	case errors.Is(err, staff.ErrBadCredentials):
		v := c.newView(ctx, titleOf(page))
		d.Failed = field
		msg := T(lang, "err_credentials")
		if field == "code" {
			msg = T(lang, "err_code")
		}
		v.Errors = []string{msg}
		v.Data = d
		return c.render(ctx, fiber.StatusUnauthorized, page, v)
	case errors.Is(err, staff.ErrUnavailable):
		return c.message(ctx, fiber.StatusNotFound, "error_title", T(lang, "err_unavailable"))
	}
	return c.failure(ctx, err)
}

func titleOf(page string) string {
	switch page {
	case "factor":
		return "factor_title"
	case "enrol":
		return "enrol_title"
	}
	return "signin_title"
}

// pending is the browser's open pending sign-in, or a redirect to start
// again.
func (c *Console) pending(ctx *fiber.Ctx) (staff.Pending, string, bool) {
	tok := ctx.Cookies(cookiePending)
	if tok == "" {
		return staff.Pending{}, "", false
	}
	tok = strings.Clone(tok)
	p, err := c.d.Staff.Pending(ctx.UserContext(), tok)
	if err != nil {
		return staff.Pending{}, tok, false
	}
	return p, tok, true
}

func (c *Console) restart(ctx *fiber.Ctx) error {
	c.clearCookie(ctx, cookiePending)
	return ctx.Redirect(Prefix+"/signin?timeout=1&next="+urlQuery(safeNext(ctx.Query("next", ctx.FormValue("next")))), fiber.StatusSeeOther)
}

func (c *Console) factorForm(ctx *fiber.Ctx) error {
	p, _, ok := c.pending(ctx)
	if !ok {
		return c.restart(ctx)
	}
	if p.NeedsEnrolment {
		return ctx.Redirect(Prefix+"/signin/enrol?next="+urlQuery(safeNext(ctx.Query("next"))), fiber.StatusSeeOther)
	}
	v := c.newView(ctx, "factor_title")
	v.Data = signinData{Next: safeNext(ctx.Query("next")), Pending: p}
	return c.render(ctx, fiber.StatusOK, "factor", v)
}

// codeStep is the handler of a second-factor step that takes a TOTP code:
// signing in with it, or confirming a new authenticator app (page
// "enrol", where secret stands for the secret shown before).
func (c *Console) codeStep(page, secret string, finish func(ctx context.Context, pendingToken, code, ip string) (staff.Session, error)) fiber.Handler {
	return func(ctx *fiber.Ctx) error {
		p, tok, ok := c.pending(ctx)
		if !ok {
			return c.restart(ctx)
		}
		next := safeNext(ctx.FormValue("next"))
		s, err := finish(ctx.UserContext(), tok, normalizeCode(ctx.FormValue("code")), c.ip(ctx))
		if err != nil {
			return c.signinFailed(ctx, page, err, signinData{Next: next, Pending: p, Secret: secret}, "code")
		}
		return c.signedIn(ctx, s, next)
	}
}

// passkeyOptions answers the navigator.credentials options of a passkey
// step of the pending sign-in (what: "passkey sign-in" or "passkey
// enrolment"), fetched by the page's script.
func (c *Console) passkeyOptions(what string, begin func(ctx context.Context, pendingToken string) ([]byte, error)) fiber.Handler {
	return func(ctx *fiber.Ctx) error {
		_, tok, ok := c.pending(ctx)
		if !ok {
			return ctx.Status(fiber.StatusUnauthorized).JSON(fiber.Map{"error": "no pending sign-in"})
		}
		b, err := begin(ctx.UserContext(), tok)
		if err != nil {
			c.d.Log.Warn(what+" options", "err", err)
			return ctx.Status(fiber.StatusConflict).JSON(fiber.Map{"error": what + " unavailable"})
		}
		ctx.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
		return ctx.Send(b)
	}
}

// passkeyStep is the handler of a passkey step on page ("factor": sign in
// with a passkey; "enrol": register one), given the browser's response.
func (c *Console) passkeyStep(page string, finish func(ctx context.Context, pendingToken string, response []byte, ip string) (staff.Session, error)) fiber.Handler {
	return func(ctx *fiber.Ctx) error {
		p, tok, ok := c.pending(ctx)
		if !ok {
			return c.restart(ctx)
		}
		next := safeNext(ctx.FormValue("next"))
		resp := ctx.FormValue("response")
		if resp == "" {
			return c.signinFailed(ctx, page, staff.ErrBadCredentials, signinData{Next: next, Pending: p}, "passkey")
		}
		s, err := finish(ctx.UserContext(), tok, []byte(resp), c.ip(ctx))
		if err != nil {
			return c.signinFailed(ctx, page, err, signinData{Next: next, Pending: p}, "passkey")
		}
		return c.signedIn(ctx, s, next)
	}
}

func (c *Console) enrolForm(ctx *fiber.Ctx) error {
	p, _, ok := c.pending(ctx)
	if !ok {
		return c.restart(ctx)
	}
	if !p.NeedsEnrolment {
		return ctx.Redirect(Prefix+"/signin/factor?next="+urlQuery(safeNext(ctx.Query("next"))), fiber.StatusSeeOther)
	}
	v := c.newView(ctx, "enrol_title")
	v.Data = signinData{Next: safeNext(ctx.Query("next")), Pending: p}
	return c.render(ctx, fiber.StatusOK, "enrol", v)
}

// enrolTOTP makes a new secret and shows it once, as a QR code and as
// text, with the field for the first code.
func (c *Console) enrolTOTP(ctx *fiber.Ctx) error {
	p, tok, ok := c.pending(ctx)
	if !ok {
		return c.restart(ctx)
	}
	next := safeNext(ctx.FormValue("next"))
	e, err := c.d.Staff.BeginTOTPEnrolment(ctx.UserContext(), tok)
	if err != nil {
		return c.signinFailed(ctx, "enrol", err, signinData{Next: next, Pending: p}, "")
	}
	v := c.newView(ctx, "enrol_title")
	d := signinData{Next: next, Pending: p, Secret: e.Secret}
	if len(e.QRPNG) > 0 {
		d.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRPNG)) //nolint:gosec // our own PNG bytes, base64-encoded

	}
	v.Data = d
	return c.render(ctx, fiber.StatusOK, "enrol", v)
}

func (c *Console) oidcStart(ctx *fiber.Ctx) error {
	if !c.cfg.OIDC {
		return c.notFound(ctx)
	}
	redirect, state, err := c.d.Staff.OIDCStart(ctx.UserContext())
	if err != nil {
		return c.failure(ctx, err)
	}
	c.setCookie(ctx, cookieOIDC, state, 10*time.Minute)
	return ctx.Redirect(redirect, fiber.StatusSeeOther)
}

func (c *Console) oidcCallback(ctx *fiber.Ctx) error {
	if !c.cfg.OIDC {
		return c.notFound(ctx)
	}
	cookieState := strings.Clone(ctx.Cookies(cookieOIDC))
	c.clearCookie(ctx, cookieOIDC)
	s, p, err := c.d.Staff.OIDCCallback(ctx.UserContext(), strings.Clone(ctx.Query("state")), cookieState, strings.Clone(ctx.Query("code")), c.ip(ctx))
	if err != nil {
		return c.signinFailed(ctx, "signin", err, signinData{Next: Prefix + "/requests", OIDC: true}, "sso")
	}
	if s != nil {
		return c.signedIn(ctx, *s, Prefix+"/requests")
	}
	if p != nil {
		return c.pendingStarted(ctx, *p, Prefix+"/requests")
	}
	return c.failure(ctx, errors.New("oidc callback: neither a session nor a pending sign-in"))
}

// signedIn sets the session cookie (until the absolute timeout; the idle
// one is the server's) and goes where the member was heading.
func (c *Console) signedIn(ctx *fiber.Ctx, s staff.Session, next string) error {
	c.clearCookie(ctx, cookiePending)
	maxAge := s.AbsoluteExpires.Sub(c.d.Clock.Now())
	if maxAge <= 0 {
		maxAge = 12 * time.Hour
	}
	c.setCookie(ctx, cookieSession, s.Token, maxAge)
	return ctx.Redirect(safeNext(next), fiber.StatusSeeOther)
}

func (c *Console) signout(ctx *fiber.Ctx) error {
	if err := c.d.Staff.SignOut(ctx.UserContext(), strings.Clone(ctx.Cookies(cookieSession))); err != nil && !errors.Is(err, staff.ErrNoSession) {
		c.d.Log.Error("sign out", "err", err)
	}
	c.clearCookie(ctx, cookieSession)
	return ctx.Redirect(Prefix+"/signin?signedout=1", fiber.StatusSeeOther)
}

// normalizeCode drops the spaces people type in the middle of a code
// ("123 456").
func normalizeCode(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\u00a0' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}
