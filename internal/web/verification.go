package web

import (
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
)

// The second-factor page: after the emailed code, where the policy asks for
// more certainty than a code gives (deadlines.rego "verification": "high"
// for a CCPA access or export, Cal. Code Regs. tit. 11 §7062(c)), the
// person completes it with a method the product offers — a recent invoice
// when a payment connector can check it, signing in to their account
// (challenge login) when the product configures a login URL — as the web
// notice promises: "We will verify identity (challenge login, recent
// invoice, signed instruction, etc.)". Nothing needs JavaScript.

type secondFactorData struct {
	Invoice    string // the invoice form's action, "" when not offered
	SignIn     string // the product's challenge-login page, "" when not offered
	Reference  string // what the person typed, shown back after an error
	NoneOffer  bool   // no method here: staff will be in touch
	StatusPath string
}

// secondFactorView builds the page for a request awaiting a second factor.
func (c *Center) secondFactorView(ctx *fiber.Ctx, product, id string, st dsar.PublicStatus) *view {
	v := c.newView(ctx, "second_factor_title")
	d := secondFactorData{StatusPath: c.requestPath(product, id)}
	if slices.Contains(st.SecondFactors, dsar.MethodRecentInvoice) {
		d.Invoice = c.requestPath(product, id) + "/invoice"
	}
	if u := c.cfg.ChallengeLoginURLs[product]; u != "" && slices.Contains(st.SecondFactors, dsar.MethodChallengeLogin) {
		d.SignIn = u + "?" + url.Values{"request": {id}}.Encode()
	}
	d.NoneOffer = d.Invoice == "" && d.SignIn == ""
	v.Data = d
	return v
}

// invoiceReference is a plausible invoice or payment reference, or "".
func invoiceReference(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 100 {
		return ""
	}
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_/#.", r)) {
			return ""
		}
	}
	return s
}

// invoice takes the person's invoice or payment reference.
func (c *Center) invoice(ctx *fiber.Ctx) error {
	product := ctx.Locals(localProduct).(string)
	id, ok := requestID(ctx)
	if !ok {
		return c.notFound(ctx)
	}
	token := c.token(ctx, id)
	st, err := c.d.Requests.Status(ctx.UserContext(), id, token)
	if err != nil {
		return c.failure(ctx, err)
	}
	if !st.AwaitingSecondFactor {
		return ctx.Redirect(c.requestPath(product, id), fiber.StatusSeeOther)
	}
	v := c.secondFactorView(ctx, product, id, st)
	d := v.Data.(secondFactorData)
	raw := ctx.FormValue("reference")
	d.Reference = strings.TrimSpace(raw)
	if len(d.Reference) > 100 {
		d.Reference = d.Reference[:100]
	}
	v.Data = d
	fail := func(key string) error {
		v.FieldErrs["reference"] = T(v.Lang, key)
		v.Errors = []string{v.FieldErrs["reference"]}
		return c.render(ctx, fiber.StatusUnprocessableEntity, "second_factor", v)
	}
	ref := invoiceReference(raw)
	if ref == "" {
		return fail("err_invoice")
	}
	if _, err := c.d.Requests.VerifyInvoice(ctx.UserContext(), id, token, ref); err != nil {
		switch apperr.CodeOf(err) {
		case apperr.Invalid:
			return fail("err_invoice_wrong")
		case apperr.RateLimited:
			return fail("err_invoice_voided")
		case apperr.Unavailable:
			return fail("err_invoice_unavailable")
		}
		return c.failure(ctx, err)
	}
	return ctx.Redirect(c.requestPath(product, id), fiber.StatusSeeOther)
}

// challengeLoginForm is where the product's signed-in page sends the person
// back with a token (?token=…): a page that confirms with a POST, so the
// token is spent by a form with a CSRF token, never by following a link.
func (c *Center) challengeLoginForm(ctx *fiber.Ctx) error {
	product, ok := c.product(ctx)
	id, idOK := requestID(ctx)
	tok := ctx.Query("token")
	if !ok || !idOK || tok == "" || len(tok) > 2048 {
		return c.notFound(ctx)
	}
	v := c.newView(ctx, "challenge_title")
	v.Data = map[string]string{"Action": c.requestPath(product, id) + "/challenge-login", "Token": strings.Clone(tok)}
	return c.render(ctx, fiber.StatusOK, "challenge_login", v)
}

func (c *Center) challengeLogin(ctx *fiber.Ctx) error {
	product := ctx.Locals(localProduct).(string)
	id, ok := requestID(ctx)
	if !ok {
		return c.notFound(ctx)
	}
	tok := ctx.FormValue("token")
	if tok == "" || len(tok) > 2048 {
		return c.message(ctx, fiber.StatusUnprocessableEntity, "error_title", "err_challenge_login")
	}
	res, err := c.d.Requests.ChallengeLogin(ctx.UserContext(), id, strings.Clone(tok))
	if err != nil {
		if apperr.CodeOf(err) == apperr.Invalid {
			return c.message(ctx, fiber.StatusUnprocessableEntity, "error_title", "err_challenge_login")
		}
		return c.failure(ctx, err)
	}
	c.setCookie(ctx, cookieReqPre+id, res.StatusToken, 120*24*time.Hour)
	return ctx.Redirect(c.requestPath(product, id), fiber.StatusSeeOther)
}
