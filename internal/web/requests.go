package web

import (
	"errors"
	"html/template"
	"io"
	"net/mail"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/text/collate"
	"golang.org/x/text/language"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
)

// Privacy requests: the form, the code, the status page, withdrawal, and
// getting back in on another device.

// rectifiable are the data a person may ask to correct from the form; the
// map and the connectors decide where each lives.
var rectifiable = []string{"user.name", "user.contact.email", "user.contact.phone", "user.contact.address", "user.demographic.language"}

var (
	regionCodesOnce sync.Once
	regionCodes     []string
)

// allRegions lists every ISO 3166-1 country and the US states a law names.
func (c *Center) allRegions() []string {
	regionCodesOnce.Do(func() {
		for a := 'A'; a <= 'Z'; a++ {
			for b := 'A'; b <= 'Z'; b++ {
				r, err := language.ParseRegion(string([]rune{a, b}))
				if err == nil && r.IsCountry() && r.String() == string([]rune{a, b}) {
					regionCodes = append(regionCodes, r.String())
				}
			}
		}
	})
	out := slices.Clone(regionCodes)
	for sub := range c.d.Consent.Engine().Jurisdictions.Subdivisions {
		out = append(out, sub)
	}
	return out
}

var usStates = map[string]string{"CA": "California", "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "IA": "Iowa",
	"IN": "Indiana", "KY": "Kentucky", "MD": "Maryland", "MN": "Minnesota", "MT": "Montana", "NE": "Nebraska",
	"NH": "New Hampshire", "NJ": "New Jersey", "OR": "Oregon", "RI": "Rhode Island", "TN": "Tennessee", "TX": "Texas", "VA": "Virginia"}

// regionOptions is the region list in lang as <option> elements, sorted
// the way the language sorts, with selected marked. Naming, collating and
// escaping some 270 regions was most of what the form cost, so the list is
// rendered once per language and bundle revision (the US states a law names
// come from the bundle) and kept as HTML.
func (c *Center) regionOptions(lang, selected string) template.HTML {
	key := lang + "\x00" + c.d.Consent.Engine().Revision()
	cached, ok := regionCache.Load(key)
	if !ok {
		codes := c.allRegions()
		type named struct{ code, name string }
		list := make([]named, 0, len(codes))
		for _, code := range codes {
			name := regionName(lang, code)
			if country, sub, ok := strings.Cut(code, "-"); ok && country == "US" && usStates[sub] != "" {
				name = regionName(lang, "US") + " — " + usStates[sub]
			}
			list = append(list, named{code, name})
		}
		col := collate.New(language.MustParse(lang))
		sort.SliceStable(list, func(i, j int) bool { return col.CompareString(list[i].name, list[j].name) < 0 })
		var b strings.Builder
		for _, r := range list {
			// Codes are [A-Z0-9-] (allRegions); names are escaped.
			b.WriteString(`<option value="` + r.code + `">` + template.HTMLEscapeString(r.name) + "</option>")
		}
		cached, _ = regionCache.LoadOrStore(key, b.String())
	}
	html := cached.(string)
	if selected != "" {
		// Replaced only where it matches an option exactly, so a value
		// that is not a region code changes nothing.
		html = strings.Replace(html, `value="`+selected+`">`, `value="`+selected+`" selected>`, 1)
	}
	return template.HTML(html) //nolint:gosec // built above from checked codes and escaped names
}

// regionCache holds rendered region lists by language and bundle revision:
// a handful of entries per revision, and revisions change rarely.
var regionCache sync.Map

// defaultRegion guesses where the person lives from the browser's language
// region (ru-RU → RU), a preselection they can change.
func defaultRegion(acceptLanguage string) string {
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil {
		return ""
	}
	for _, t := range tags {
		if r, conf := t.Region(); conf == language.Exact {
			return r.String()
		}
	}
	return ""
}

type requestForm struct {
	// Telegram is the signed-in Telegram account (Mini App): no email, no
	// code; Telegram vouched for the user.
	Telegram string
	Types    []typeChoice
	Email    string
	Regions  template.HTML // <option>s
	Fields   []changeField
	Changes  []changeRow
	// Agent is the authorized agent's variant of the form: the agent's
	// details and the signed authorization, uploaded; the email is the
	// person's, who confirms the request with the code.
	Agent      bool
	AgentName  string
	AgentEmail string
	MaxMB      int
}

type changeField struct{ ID, Name string }

type changeRow struct {
	Field, Value string
	N            int
}

func (c *Center) requestForm(ctx *fiber.Ctx) error {
	if _, ok := c.product(ctx); !ok {
		return c.notFound(ctx)
	}
	v := c.newView(ctx, "form_title")
	f := c.formData(v.Lang, ctx.Query("type"), "", defaultRegion(ctx.Get(fiber.HeaderAcceptLanguage)), nil)
	if s, ok := c.telegramSession(ctx); ok {
		f.Telegram = s.Subject.Value
	} else if ctx.Query("agent") == "1" {
		f.Agent = true
		v.Title = T(v.Lang, "agent_form_title")
	}
	v.Data = f
	return c.render(ctx, fiber.StatusOK, "request", v)
}

func (c *Center) formData(lang, typ, email, region string, changes []changeRow) requestForm {
	f := requestForm{Types: c.typeChoices(lang), Email: email, Regions: c.regionOptions(lang, region), MaxMB: dsar.MaxDocumentSize >> 20}
	for i := range f.Types {
		f.Types[i].Checked = f.Types[i].ID == typ
	}
	for _, id := range rectifiable {
		f.Fields = append(f.Fields, changeField{ID: id, Name: T(lang, "cat_"+id)})
	}
	for i := range 3 {
		r := changeRow{N: i + 1}
		if i < len(changes) {
			r.Field, r.Value = changes[i].Field, changes[i].Value
		}
		f.Changes = append(f.Changes, r)
	}
	return f
}

// submitRequest validates the form in the page's language, then makes the
// request; the status token goes into a cookie for this request only.
func (c *Center) submitRequest(ctx *fiber.Ctx) error {
	product := ctx.Locals(localProduct).(string)
	v := c.newView(ctx, "form_title")
	tg, isTG := c.telegramSession(ctx)
	typ := strings.TrimSpace(ctx.FormValue("type"))
	email := strings.TrimSpace(ctx.FormValue("email"))
	region := strings.ToUpper(strings.TrimSpace(ctx.FormValue("region")))
	var rows []changeRow
	changes := map[string]string{}
	for i := 1; i <= 3; i++ {
		fld, val := ctx.FormValue("change_field_"+strconv.Itoa(i)), strings.TrimSpace(ctx.FormValue("change_value_"+strconv.Itoa(i)))
		rows = append(rows, changeRow{Field: strings.Clone(fld), Value: strings.Clone(val)})
		if typ != "rectification" || fld == "" && val == "" {
			continue
		}
		if !slices.Contains(rectifiable, fld) || val == "" {
			v.FieldErrs["changes"] = T(v.Lang, "err_changes")
			continue
		}
		if len(val) > 500 || !utf8.ValidString(val) || strings.ContainsRune(val, 0) {
			v.FieldErrs["changes"] = T(v.Lang, "err_change_value")
			continue
		}
		changes[fld] = strings.Clone(val)
	}
	if !slices.Contains(requestTypes, typ) {
		v.FieldErrs["type"] = T(v.Lang, "err_type")
	}
	if !isTG && !validEmail(email) {
		v.FieldErrs["email"] = T(v.Lang, "err_email")
	}
	if !slices.Contains(c.allRegions(), region) {
		v.FieldErrs["region"] = T(v.Lang, "err_region")
	}
	if typ == "rectification" && len(changes) == 0 && v.FieldErrs["changes"] == "" {
		v.FieldErrs["changes"] = T(v.Lang, "err_changes")
	}
	asAgent := !isTG && ctx.FormValue("agent") == "1"
	var agent *dsar.Agent
	var doc *dsar.Document
	if asAgent {
		v.Title = T(v.Lang, "agent_form_title")
		agent, doc = c.agentFields(ctx, v)
	}
	if len(v.FieldErrs) == 0 && c.cfg.Challenge != nil {
		if err := c.cfg.Challenge.Verify(ctx.UserContext(), ctx.FormValue(c.cfg.Challenge.Field()), c.ip(ctx)); err != nil {
			v.FieldErrs["challenge"] = T(v.Lang, "err_challenge")
		}
	}
	if len(v.FieldErrs) > 0 {
		for _, k := range []string{"type", "agent_name", "agent_email", "authorization", "email", "region", "changes", "challenge"} {
			if m := v.FieldErrs[k]; m != "" {
				v.Errors = append(v.Errors, m)
			}
		}
		f := c.formData(v.Lang, typ, strings.Clone(email), region, rows)
		if isTG {
			f.Telegram = tg.Subject.Value
		}
		if asAgent {
			f.Agent, f.AgentName, f.AgentEmail = true, strings.Clone(ctx.FormValue("agent_name")), strings.Clone(ctx.FormValue("agent_email"))
		}
		v.Data = f
		return c.render(ctx, fiber.StatusUnprocessableEntity, "request", v)
	}
	if isTG {
		return c.createRequest(ctx, product, dsar.CreateInput{
			Type: typ, Subject: tg.Subject, Region: region, Channel: dsar.ChannelBot, Language: v.Lang, Changes: nilIfEmpty(changes),
			IdentityAsserted: true, CanAssert: true, Actor: "system:privacy-center", ClientIP: c.ip(ctx),
		})
	}
	subj, err := identity.Parse("email:" + email)
	if err != nil {
		v.FieldErrs["email"] = T(v.Lang, "err_email")
		v.Errors = []string{v.FieldErrs["email"]}
		v.Data = c.formData(v.Lang, typ, strings.Clone(email), region, rows)
		return c.render(ctx, fiber.StatusUnprocessableEntity, "request", v)
	}
	in := dsar.CreateInput{
		Type: typ, Subject: subj, Region: region, Channel: dsar.ChannelWeb, Language: v.Lang, Changes: nilIfEmpty(changes),
		Actor: "system:privacy-center", ClientIP: c.ip(ctx),
	}
	if asAgent {
		in.Channel, in.Agent, in.AgentDocument = dsar.ChannelAgent, agent, doc
	}
	return c.createRequest(ctx, product, in)
}

// agentFields reads and checks the agent's part of the form: their name
// and address, and the signed authorization as a file (PDF, PNG or JPEG,
// recognised by its content; at most dsar.MaxDocumentSize).
func (c *Center) agentFields(ctx *fiber.Ctx, v *view) (*dsar.Agent, *dsar.Document) {
	name := strings.TrimSpace(ctx.FormValue("agent_name"))
	email := strings.TrimSpace(ctx.FormValue("agent_email"))
	if name == "" || len(name) > 200 || !utf8.ValidString(name) || strings.ContainsRune(name, 0) {
		v.FieldErrs["agent_name"] = T(v.Lang, "err_agent_name")
	}
	if !validEmail(email) {
		v.FieldErrs["agent_email"] = T(v.Lang, "err_agent_email")
	}
	doc, err := readDocument(ctx, "authorization")
	if err != nil {
		v.FieldErrs["authorization"] = T(v.Lang, "err_agent_document", dsar.MaxDocumentSize>>20)
	}
	return &dsar.Agent{Name: strings.Clone(name), Email: strings.Clone(email)}, doc
}

var errBadDocument = errors.New("web: the document is missing, too large or not a PDF, PNG or JPEG")

// readDocument reads an uploaded file, refusing what is not a document
// staff can open safely.
func readDocument(ctx *fiber.Ctx, field string) (*dsar.Document, error) {
	fh, err := ctx.FormFile(field)
	if err != nil || fh.Size <= 0 || fh.Size > dsar.MaxDocumentSize {
		return nil, errBadDocument
	}
	f, err := fh.Open()
	if err != nil {
		return nil, errBadDocument
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, dsar.MaxDocumentSize+1))
	if err != nil || len(b) == 0 || len(b) > dsar.MaxDocumentSize || dsar.DetectDocument(b) == "" {
		return nil, errBadDocument
	}
	return &dsar.Document{Name: strings.Clone(fh.Filename), Content: b}, nil
}

func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// createRequest makes the request and keeps its status token in a cookie
// for this request only. An open request of the same type for the same
// person is returned instead of a new one (no token: the browser that made
// it holds it, or the person gets back in with a code).
func (c *Center) createRequest(ctx *fiber.Ctx, product string, in dsar.CreateInput) error {
	in.Product = product // the privacy center's product, checked against the bundle by the route
	out, err := c.d.Requests.Create(ctx.UserContext(), in)
	if err != nil {
		return c.failure(ctx, err)
	}
	if out.StatusToken != "" {
		c.setCookie(ctx, cookieReqPre+out.Request.ID, out.StatusToken, 120*24*time.Hour)
	}
	if out.Request.Status == dsar.IdentityPending {
		return ctx.Redirect(c.requestPath(product, out.Request.ID)+"/verify", fiber.StatusSeeOther)
	}
	return ctx.Redirect(c.requestPath(product, out.Request.ID), fiber.StatusSeeOther)
}

// telegramSession is the Mini App's signed-in Telegram user, if any.
func (c *Center) telegramSession(ctx *fiber.Ctx) (Session, bool) {
	p, _ := ctx.Locals(localProduct).(string)
	s, ok, err := c.session(ctx, p)
	if err != nil || !ok || s.Subject.Type != identity.Telegram {
		return Session{}, false
	}
	return s, true
}

// validEmail accepts a bare address (no display name), as the identity
// package will.
func validEmail(s string) bool {
	if len(s) > 254 || !utf8.ValidString(s) || strings.ContainsAny(s, " <>\x00") {
		return false
	}
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && strings.Contains(s[strings.LastIndexByte(s, '@'):], ".")
}

func (c *Center) requestPath(product, id string) string {
	return Prefix + "/" + product + "/requests/" + id
}

// requestID is the :id parameter when it is a request id.
func requestID(ctx *fiber.Ctx) (string, bool) {
	id := strings.ToLower(ctx.Params("id"))
	if !dsar.ValidID(id) {
		return "", false
	}
	return strings.Clone(id), true
}

func (c *Center) token(ctx *fiber.Ctx, id string) string {
	return strings.Clone(ctx.Cookies(cookieReqPre + id))
}

func (c *Center) verifyForm(ctx *fiber.Ctx) error {
	product, ok := c.product(ctx)
	id, idOK := requestID(ctx)
	if !ok || !idOK {
		return c.notFound(ctx)
	}
	st, err := c.d.Requests.Status(ctx.UserContext(), id, c.token(ctx, id))
	if err != nil {
		return c.failure(ctx, err)
	}
	if st.Status != dsar.IdentityPending {
		return ctx.Redirect(c.requestPath(product, id), fiber.StatusSeeOther)
	}
	if st.AwaitingSecondFactor {
		return c.render(ctx, fiber.StatusOK, "second_factor", c.secondFactorView(ctx, product, id, st))
	}
	v := c.newView(ctx, "verify_title")
	if ctx.Query("resent") == "1" {
		v.Flash = T(v.Lang, "verify_resent")
	}
	v.Data = map[string]string{"Action": c.requestPath(product, id) + "/verify", "Resend": c.requestPath(product, id) + "/resend"}
	return c.render(ctx, fiber.StatusOK, "verify", v)
}

// codeError is the person's words for a code the service refused.
func codeError(lang string, err error) (string, bool) {
	ae, ok := apperr.As(err)
	if !ok {
		return "", false
	}
	switch {
	case ae.Code == apperr.RateLimited:
		return T(lang, "err_code_voided"), true
	case ae.Code == apperr.Invalid && len(ae.Fields) == 1 && ae.Fields[0].Field == "code":
		return T(lang, "err_code_wrong"), true
	}
	return "", false
}

func (c *Center) verify(ctx *fiber.Ctx) error {
	product := ctx.Locals(localProduct).(string)
	id, ok := requestID(ctx)
	if !ok {
		return c.notFound(ctx)
	}
	// Only the browser that made the request (or holds its token) may
	// confirm it here; anyone else has nothing to confirm.
	if _, err := c.d.Requests.Status(ctx.UserContext(), id, c.token(ctx, id)); err != nil {
		return c.failure(ctx, err)
	}
	v := c.newView(ctx, "verify_title")
	v.Data = map[string]string{"Action": c.requestPath(product, id) + "/verify", "Resend": c.requestPath(product, id) + "/resend"}
	code := strings.TrimSpace(ctx.FormValue("code"))
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		v.FieldErrs["code"] = T(v.Lang, "err_code")
		v.Errors = []string{v.FieldErrs["code"]}
		return c.render(ctx, fiber.StatusUnprocessableEntity, "verify", v)
	}
	res, err := c.d.Requests.Verify(ctx.UserContext(), id, code)
	if err != nil {
		if msg, ok := codeError(v.Lang, err); ok {
			v.FieldErrs["code"] = msg
			v.Errors = []string{msg}
			return c.render(ctx, fiber.StatusUnprocessableEntity, "verify", v)
		}
		return c.failure(ctx, err)
	}
	c.setCookie(ctx, cookieReqPre+id, res.StatusToken, 120*24*time.Hour)
	return ctx.Redirect(c.requestPath(product, id), fiber.StatusSeeOther)
}

func (c *Center) resend(ctx *fiber.Ctx) error {
	product := ctx.Locals(localProduct).(string)
	id, ok := requestID(ctx)
	if !ok {
		return c.notFound(ctx)
	}
	if _, err := c.d.Requests.Status(ctx.UserContext(), id, c.token(ctx, id)); err != nil {
		return c.failure(ctx, err)
	}
	if err := c.d.Requests.ResendCode(ctx.UserContext(), id, c.ip(ctx)); err != nil {
		return c.failure(ctx, err)
	}
	return ctx.Redirect(c.requestPath(product, id)+"/verify?resent=1", fiber.StatusSeeOther)
}

type statusData struct {
	S        dsar.PublicStatus
	State    string
	Timeline []timelineRow
	Open     bool
	Base     string
	// Liftable: a completed restriction the person may end themselves.
	Liftable bool
}

type timelineRow struct {
	At   time.Time
	Text string
}

// status shows a request to whoever holds its token; without one, it offers
// a one-time code to the request's address (the link in every email leads
// here with only the id).
func (c *Center) status(ctx *fiber.Ctx) error {
	product, ok := c.product(ctx)
	id, idOK := requestID(ctx)
	if !ok || !idOK {
		return c.notFound(ctx)
	}
	token := c.token(ctx, id)
	if token == "" {
		return c.accessPage(ctx, product, id, "")
	}
	st, err := c.d.Requests.Status(ctx.UserContext(), id, token)
	if apperr.CodeOf(err) == apperr.NotFound {
		// A token from before a re-verification on another device.
		return c.accessPage(ctx, product, id, "")
	}
	if err != nil {
		return c.failure(ctx, err)
	}
	if st.Status == dsar.IdentityPending {
		return ctx.Redirect(c.requestPath(product, id)+"/verify", fiber.StatusSeeOther)
	}
	v := c.newView(ctx, "status_title")
	events, err := c.d.Requests.PersonTimeline(ctx.UserContext(), id, token)
	if err != nil {
		return c.failure(ctx, err)
	}
	d := statusData{S: st, State: T(v.Lang, "st_"+string(st.Status)), Base: c.requestPath(product, id),
		Open: st.Status != dsar.Completed && st.Status != dsar.Denied && st.Status != dsar.Canceled}
	d.Liftable = st.Type == "restriction" && st.Status == dsar.Completed
	for _, e := range events {
		d.Timeline = append(d.Timeline, timelineRow{At: e.At, Text: T(v.Lang, "ev_"+e.Kind)})
		d.Liftable = d.Liftable && e.Kind != "restriction_lifted"
	}
	v.Title = T(v.Lang, "type_"+st.Type)
	if st.Status == dsar.Canceled && ctx.Query("withdrawn") == "1" {
		// Right after the person's own withdrawal (post/redirect/get).
		v.Flash = T(v.Lang, "status_canceled")
	}
	if ctx.Query("lifted") == "1" && !d.Liftable && st.Type == "restriction" {
		v.Flash = T(v.Lang, "status_lifted")
	}
	v.Data = d
	return c.render(ctx, fiber.StatusOK, "status", v)
}

func (c *Center) accessPage(ctx *fiber.Ctx, product, id, flash string) error {
	v := c.newView(ctx, "access_title")
	v.Flash = flash
	v.Data = map[string]string{"Send": c.requestPath(product, id) + "/access", "Verify": c.requestPath(product, id) + "/access/verify"}
	return c.render(ctx, fiber.StatusOK, "access", v)
}

func (c *Center) sendAccess(ctx *fiber.Ctx) error {
	product := ctx.Locals(localProduct).(string)
	id, ok := requestID(ctx)
	if !ok {
		return c.notFound(ctx)
	}
	err := c.d.Requests.SendAccessCode(ctx.UserContext(), id, c.ip(ctx))
	switch apperr.CodeOf(err) {
	case apperr.NotFound, apperr.Conflict:
		// Say the same whether or not the request exists.
		err = nil
	case apperr.RateLimited:
		return c.message(ctx, fiber.StatusTooManyRequests, "error_title", "err_rate")
	}
	if err != nil {
		return c.failure(ctx, err)
	}
	return c.accessPage(ctx, product, id, T(c.lang(ctx), "access_sent"))
}

func (c *Center) verifyAccess(ctx *fiber.Ctx) error {
	product := ctx.Locals(localProduct).(string)
	id, ok := requestID(ctx)
	if !ok {
		return c.notFound(ctx)
	}
	v := c.newView(ctx, "access_title")
	v.Data = map[string]string{"Send": c.requestPath(product, id) + "/access", "Verify": c.requestPath(product, id) + "/access/verify"}
	code := strings.TrimSpace(ctx.FormValue("code"))
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		v.FieldErrs["code"] = T(v.Lang, "err_code")
		v.Errors = []string{v.FieldErrs["code"]}
		return c.render(ctx, fiber.StatusUnprocessableEntity, "access", v)
	}
	token, err := c.d.Requests.VerifyAccess(ctx.UserContext(), id, code)
	if err != nil {
		msg, ok := codeError(v.Lang, err)
		if !ok && (apperr.CodeOf(err) == apperr.NotFound || apperr.CodeOf(err) == apperr.Conflict) {
			msg, ok = T(v.Lang, "err_code_wrong"), true
		}
		if ok {
			v.FieldErrs["code"] = msg
			v.Errors = []string{msg}
			return c.render(ctx, fiber.StatusUnprocessableEntity, "access", v)
		}
		return c.failure(ctx, err)
	}
	c.setCookie(ctx, cookieReqPre+id, token, 120*24*time.Hour)
	return ctx.Redirect(c.requestPath(product, id), fiber.StatusSeeOther)
}

// lift ends the person's own restriction, on their word.
func (c *Center) lift(ctx *fiber.Ctx) error {
	product := ctx.Locals(localProduct).(string)
	id, ok := requestID(ctx)
	if !ok {
		return c.notFound(ctx)
	}
	if _, err := c.d.Requests.LiftRestrictionByPerson(ctx.UserContext(), id, c.token(ctx, id)); err != nil {
		return c.failure(ctx, err)
	}
	return ctx.Redirect(c.requestPath(product, id)+"?lifted=1", fiber.StatusSeeOther)
}

func (c *Center) cancel(ctx *fiber.Ctx) error {
	product := ctx.Locals(localProduct).(string)
	id, ok := requestID(ctx)
	if !ok {
		return c.notFound(ctx)
	}
	reason := strings.TrimSpace(ctx.FormValue("reason"))
	if len(reason) > 500 || !utf8.ValidString(reason) || strings.ContainsRune(reason, 0) {
		return c.message(ctx, fiber.StatusUnprocessableEntity, "error_title", "err_reason")
	}
	if _, err := c.d.Requests.CancelByPerson(ctx.UserContext(), id, c.token(ctx, id), strings.Clone(reason)); err != nil {
		return c.failure(ctx, err)
	}
	return ctx.Redirect(c.requestPath(product, id)+"?withdrawn=1", fiber.StatusSeeOther)
}
