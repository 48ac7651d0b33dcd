package web

import (
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/receipt"
)

// "My consent": sign in with a one-time email code (or Telegram in the Mini
// App), see each purpose of the product with its current state and the
// notice version it was given under, change or withdraw it in one action,
// and download signed receipts.

const (
	cookieSession = "steward_session"
	cookieSignin  = "steward_signin"
)

// session is the signed-in person, if any, for this product.
func (c *Center) session(ctx *fiber.Ctx, product string) (Session, bool, error) {
	if c.d.Sessions == nil {
		return Session{}, false, nil
	}
	s, ok, err := c.d.Sessions.Lookup(ctx.UserContext(), ctx.Cookies(cookieSession))
	if err != nil || !ok || s.Product != product {
		return Session{}, false, err
	}
	return s, true, nil
}

func (c *Center) signinForm(ctx *fiber.Ctx) error {
	product, ok := c.product(ctx)
	if !ok || c.d.Sessions == nil {
		return c.notFound(ctx)
	}
	if _, ok, _ := c.session(ctx, product); ok {
		return ctx.Redirect(Prefix+"/"+product+"/consent", fiber.StatusSeeOther)
	}
	v := c.newView(ctx, "signin_title")
	v.Data = signinData{Pending: ctx.Cookies(cookieSignin) != "" && ctx.Query("sent") == "1", Base: Prefix + "/" + product}
	if ctx.Query("sent") == "1" {
		v.Flash = T(v.Lang, "signin_sent")
	}
	return c.render(ctx, fiber.StatusOK, "signin", v)
}

type signinData struct {
	Pending bool
	Email   string
	Base    string
}

func (c *Center) signinSend(ctx *fiber.Ctx) error {
	product := ctx.Locals(localProduct).(string)
	if c.d.Sessions == nil {
		return c.notFound(ctx)
	}
	v := c.newView(ctx, "signin_title")
	email := strings.TrimSpace(ctx.FormValue("email"))
	if !validEmail(email) {
		v.FieldErrs["email"] = T(v.Lang, "err_email")
		v.Errors = []string{v.FieldErrs["email"]}
		v.Data = signinData{Email: strings.Clone(email), Base: Prefix + "/" + product}
		return c.render(ctx, fiber.StatusUnprocessableEntity, "signin", v)
	}
	if c.cfg.Challenge != nil {
		if err := c.cfg.Challenge.Verify(ctx.UserContext(), ctx.FormValue(c.cfg.Challenge.Field()), c.ip(ctx)); err != nil {
			v.FieldErrs["challenge"] = T(v.Lang, "err_challenge")
			v.Errors = []string{v.FieldErrs["challenge"]}
			v.Data = signinData{Email: strings.Clone(email), Base: Prefix + "/" + product}
			return c.render(ctx, fiber.StatusUnprocessableEntity, "signin", v)
		}
	}
	id, err := c.d.Sessions.StartEmail(ctx.UserContext(), strings.Clone(email), product, v.Lang, c.ip(ctx))
	if err != nil {
		return c.failure(ctx, err)
	}
	c.setCookie(ctx, cookieSignin, id, time.Hour)
	return ctx.Redirect(Prefix+"/"+product+"/signin?sent=1", fiber.StatusSeeOther)
}

func (c *Center) signinVerify(ctx *fiber.Ctx) error {
	product := ctx.Locals(localProduct).(string)
	if c.d.Sessions == nil {
		return c.notFound(ctx)
	}
	v := c.newView(ctx, "signin_title")
	v.Data = signinData{Pending: true, Base: Prefix + "/" + product}
	code := strings.TrimSpace(ctx.FormValue("code"))
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		v.FieldErrs["code"] = T(v.Lang, "err_code")
		v.Errors = []string{v.FieldErrs["code"]}
		return c.render(ctx, fiber.StatusUnprocessableEntity, "signin", v)
	}
	token, err := c.d.Sessions.FinishEmail(ctx.UserContext(), strings.Clone(ctx.Cookies(cookieSignin)), code)
	if err != nil {
		if msg, ok := codeError(v.Lang, err); ok {
			v.FieldErrs["code"] = msg
			v.Errors = []string{msg}
			return c.render(ctx, fiber.StatusUnprocessableEntity, "signin", v)
		}
		return c.failure(ctx, err)
	}
	c.setCookie(ctx, cookieSignin, "", -1)
	c.setCookie(ctx, cookieSession, token, 2*time.Hour)
	return ctx.Redirect(Prefix+"/"+product+"/consent", fiber.StatusSeeOther)
}

func (c *Center) signout(ctx *fiber.Ctx) error {
	product := ctx.Locals(localProduct).(string)
	if c.d.Sessions != nil {
		if err := c.d.Sessions.End(ctx.UserContext(), ctx.Cookies(cookieSession)); err != nil {
			return c.failure(ctx, err)
		}
	}
	c.setCookie(ctx, cookieSession, "", -1)
	return ctx.Redirect(Prefix+"/"+product+"/", fiber.StatusSeeOther)
}

type purposeRow struct {
	ID, Name, Desc string
	Essential      bool
	State          string // granted|denied|withdrawn|none
	StateText      string
	Notice         string
	Since          *time.Time
	GPC            bool
}

type historyRow struct {
	ID, Purpose, State, Notice string
	At                         time.Time
}

type consentData struct {
	Purposes []purposeRow
	History  []historyRow
	As       string
	Base     string
	JWKS     string
	Saved    string
}

func (c *Center) consentPage(ctx *fiber.Ctx) error {
	product, ok := c.product(ctx)
	if !ok || c.d.Sessions == nil {
		return c.notFound(ctx)
	}
	s, ok, err := c.session(ctx, product)
	if err != nil {
		return c.failure(ctx, err)
	}
	if !ok {
		return ctx.Redirect(Prefix+"/"+product+"/signin", fiber.StatusSeeOther)
	}
	v := c.newView(ctx, "consent_title")
	d, err := c.consentData(ctx, v.Lang, product, s)
	if err != nil {
		return c.failure(ctx, err)
	}
	if id := ctx.Query("saved"); id != "" {
		if _, err := uuid.Parse(id); err == nil {
			v.Flash = T(v.Lang, "consent_saved")
			d.Saved = strings.Clone(id)
		}
	}
	v.SessionAs = d.As
	v.Data = d
	return c.render(ctx, fiber.StatusOK, "consent", v)
}

// masked shows who is signed in without writing the address out in full
// (screens are shared and screenshotted).
func masked(s identity.Subject) string {
	if s.Type == identity.Telegram {
		return "Telegram " + s.Value
	}
	local, domain, ok := strings.Cut(s.Value, "@")
	if !ok || local == "" {
		return "***"
	}
	return local[:1] + "***@" + domain
}

func (c *Center) consentData(ctx *fiber.Ctx, lang, product string, s Session) (consentData, error) {
	eng := c.d.Consent.Engine()
	states, err := c.d.Consent.Current(ctx.UserContext(), s.Subject)
	if err != nil {
		return consentData{}, err
	}
	byPurpose := map[string]consent.PurposeState{}
	for _, st := range states {
		byPurpose[st.Purpose] = st
	}
	d := consentData{As: masked(s.Subject), Base: Prefix + "/" + product, JWKS: "/v1/consents/receipts/jwks.json"}
	for _, id := range eng.PurposesOf(product) {
		p := eng.Purposes[id]
		t := p.Text(lang)
		row := purposeRow{ID: id, Name: t.Name, Desc: t.Description, Essential: p.Essential, State: "none"}
		if st, ok := byPurpose[id]; ok && st.State != "" {
			row.State, row.Notice, row.GPC = st.State, st.NoticeVersion, st.GPC
			row.Since = st.UpdatedAt
		}
		switch row.State {
		case "granted":
			row.StateText = T(lang, "consent_on")
		case "denied", "withdrawn":
			row.StateText = T(lang, "consent_off")
		default:
			row.StateText = T(lang, "consent_none")
		}
		d.Purposes = append(d.Purposes, row)
	}
	hist, _, err := c.d.Consent.History(ctx.UserContext(), s.Subject, "", 50)
	if err != nil {
		return consentData{}, err
	}
	for _, e := range hist {
		if e.Product != product {
			continue
		}
		name := e.Purpose
		if p, ok := eng.Purposes[e.Purpose]; ok {
			name = p.Text(lang).Name
		}
		d.History = append(d.History, historyRow{ID: e.ID, Purpose: name, State: e.State, Notice: e.NoticeVersion, At: e.RecordedAt})
	}
	return d, nil
}

// changeConsent records one choice: allow, refuse or withdraw one purpose.
// Withdrawing is one button, like allowing.
func (c *Center) changeConsent(ctx *fiber.Ctx) error {
	product := ctx.Locals(localProduct).(string)
	s, ok, err := c.session(ctx, product)
	if err != nil {
		return c.failure(ctx, err)
	}
	if !ok {
		return ctx.Redirect(Prefix+"/"+product+"/signin", fiber.StatusSeeOther)
	}
	eng := c.d.Consent.Engine()
	purpose := ctx.FormValue("purpose")
	p, known := eng.Purposes[purpose]
	state := ctx.FormValue("state")
	if !known || p.Essential || !slices.Contains(p.Products, product) || (state != "granted" && state != "withdrawn" && state != "denied") {
		return c.message(ctx, fiber.StatusUnprocessableEntity, "error_title", "err_generic")
	}
	source := "web_settings"
	if s.Subject.Type == identity.Telegram {
		source = "bot"
	}
	ev, err := c.d.Consent.Record(ctx.UserContext(), consent.RecordInput{
		Subject: s.Subject, Purpose: strings.Clone(purpose), State: strings.Clone(state), Source: source,
		NoticeVersion: eng.Products[product].NoticeVersion, Language: c.lang(ctx), Product: product,
		GPC: strings.TrimSpace(ctx.Get("Sec-GPC")) == "1", UserAgent: truncate(ctx.Get(fiber.HeaderUserAgent), 512),
		IP: c.ip(ctx), KeyID: "",
	})
	if err != nil {
		return c.failure(ctx, err)
	}
	return ctx.Redirect(Prefix+"/"+product+"/consent?saved="+ev.ID+"#receipt-"+ev.ID, fiber.StatusSeeOther)
}

func truncate(s string, n int) string {
	s = strings.Clone(s)
	if len(s) > n {
		return s[:n]
	}
	return s
}

// receipt downloads the signed receipt of one of the person's own events.
func (c *Center) receipt(ctx *fiber.Ctx) error {
	product, ok := c.product(ctx)
	if !ok || c.d.Sessions == nil || c.d.Receipts == nil {
		return c.notFound(ctx)
	}
	s, ok, err := c.session(ctx, product)
	if err != nil {
		return c.failure(ctx, err)
	}
	id := ctx.Params("event_id")
	if !ok || uuid.Validate(id) != nil {
		return c.notFound(ctx)
	}
	ev, err := c.d.Consent.Event(ctx.UserContext(), strings.Clone(id))
	if err != nil {
		return c.failure(ctx, err)
	}
	// Only the person's own events: the same keyed hash as their subject.
	if !c.ownEvent(ctx, s, ev) {
		return c.notFound(ctx)
	}
	r := consent.Receipt(ctx.UserContext(), c.d.Consent.Engine(), ev)
	jws, err := c.d.Receipts.Sign(r)
	if err != nil {
		return c.failure(ctx, err)
	}
	body, err := json.MarshalIndent(struct {
		Receipt receipt.Receipt `json:"receipt"`
		JWS     string          `json:"jws"`
		JWKSURL string          `json:"jwks_url"`
	}{r, jws, "/v1/consents/receipts/jwks.json"}, "", "  ")
	if err != nil {
		return c.failure(ctx, err)
	}
	ctx.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSONCharsetUTF8)
	ctx.Set(fiber.HeaderContentDisposition, `attachment; filename="consent-receipt-`+ev.ID+`.json"`)
	return ctx.Send(body)
}

// ownEvent: an event is the person's when its subject's keyed hash is one
// of theirs (under any key of the ring, so rotation keeps old receipts).
func (c *Center) ownEvent(_ *fiber.Ctx, s Session, ev consent.Event) bool {
	for _, h := range c.d.Sessions.Keys.Hashes(s.Subject) {
		if hex.EncodeToString(h) == ev.SubjectHash {
			return true
		}
	}
	return false
}
