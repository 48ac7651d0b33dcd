package console

import (
	"encoding/json"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/receipt"
	"github.com/steward-privacy/steward/internal/retention"
)

// --- consent ------------------------------------------------------------------------

type consentData struct {
	Subject string // as typed; only on the POST's own response
	Kind    string
	Current []consent.PurposeState
	History []consent.Event
	Next    string
	Looked  bool
}

// consentPage looks a subject up by POST (an identity stays out of URLs):
// its current choice per purpose and its ledger history, newest first,
// each event with its signed receipt.
func (c *Console) consentPage(ctx *fiber.Ctx) error {
	if c.d.Consent == nil {
		return c.notFound(ctx)
	}
	if _, err, ok := c.allow(ctx, "consent.view"); !ok {
		return err
	}
	v := c.newView(ctx, "consent_title")
	d := consentData{}
	v.Data = &d
	if ctx.Method() != fiber.MethodPost {
		return c.render(ctx, fiber.StatusOK, "consent", v)
	}
	d.Subject = strings.TrimSpace(strings.Clone(ctx.FormValue("subject")))
	subj, err := identity.Parse(d.Subject)
	if err != nil {
		v.Errors = []string{T(v.Lang, "field_subject") + ": " + T(v.Lang, "err_identity")}
		return c.render(ctx, fiber.StatusUnprocessableEntity, "consent", v)
	}
	// The same decision as GET /v1/consents: the subject's kind counts.
	if _, err, ok := c.allow(ctx, "consent.view", subj.Kind()); !ok {
		return err
	}
	d.Kind, d.Looked = subj.Kind(), true
	if d.Current, err = c.d.Consent.Current(ctx.UserContext(), subj); err != nil {
		return c.failure(ctx, err)
	}
	cursor := strings.Clone(ctx.FormValue("cursor"))
	if d.History, d.Next, err = c.d.Consent.History(ctx.UserContext(), subj, cursor, 50); err != nil {
		if msg, st, ok := serviceError(v.Lang, err); ok {
			v.Errors = []string{msg}
			return c.render(ctx, st, "consent", v)
		}
		return c.failure(ctx, err)
	}
	return c.render(ctx, fiber.StatusOK, "consent", v)
}

// consentReceipt downloads one event's receipt, signed, as the API's
// GET /v1/consents/receipts/{id} does (consent.receipt for the event's
// subject kind).
func (c *Console) consentReceipt(ctx *fiber.Ctx) error {
	if c.d.Consent == nil || c.d.Receipts == nil {
		return c.notFound(ctx)
	}
	if _, err, ok := c.allow(ctx, "consent.receipt"); !ok {
		return err
	}
	id := ctx.Params("event_id")
	if uuid.Validate(id) != nil {
		return c.notFound(ctx)
	}
	ev, err := c.d.Consent.Event(ctx.UserContext(), strings.Clone(id))
	if err != nil {
		return c.failure(ctx, err)
	}
	if _, err, ok := c.allow(ctx, "consent.receipt", ev.SubjectKind); !ok {
		return err
	}
	r := consent.Receipt(ctx.UserContext(), c.d.Policies.Current(), ev)
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

// --- audit --------------------------------------------------------------------------

type auditData struct {
	F       auditForm
	Entries []audit.Entry
	Next    template.URL // the next page's link (built from escaped values)
	Verify  *audit.Result
	// Checkpoints are the newest signed checkpoints, newest first.
	Checkpoints []audit.Checkpoint
}

type auditForm struct {
	Action, Actor, TargetType, TargetID, Since, Until string
}

func (f auditForm) query(cursor string) string {
	v := make([]string, 0, 7)
	add := func(k, x string) {
		if x != "" {
			v = append(v, k+"="+urlQuery(x))
		}
	}
	add("action", f.Action)
	add("actor", f.Actor)
	add("target_type", f.TargetType)
	add("target_id", f.TargetID)
	add("since", f.Since)
	add("until", f.Until)
	add("cursor", cursor)
	return strings.Join(v, "&")
}

// parseAuditForm reads the audit filters. Dates are days (the form's date
// fields) or RFC 3339 times.
func parseAuditForm(get func(string) string) (audit.Filter, auditForm, error) {
	f := auditForm{Action: get("action"), Actor: get("actor"), TargetType: get("target_type"), TargetID: get("target_id"),
		Since: get("since"), Until: get("until")}
	af := audit.Filter{Action: f.Action, Actor: f.Actor, TargetType: f.TargetType, TargetID: f.TargetID, Desc: true, Limit: 50}
	for _, x := range []struct {
		name string
		v    string
		dst  **time.Time
	}{{"since", f.Since, &af.Since}, {"until", f.Until, &af.Until}} {
		if x.v == "" {
			continue
		}
		if t, err := time.Parse("2006-01-02", x.v); err == nil {
			if x.name == "until" {
				t = t.Add(24 * time.Hour)
			}
			*x.dst = &t
			continue
		}
		t, err := audit.ParseTime(x.name, x.v)
		if err != nil {
			return af, f, err
		}
		*x.dst = t
	}
	return af, f, af.Validate()
}

func (c *Console) auditPage(ctx *fiber.Ctx) error {
	if c.d.Audit == nil {
		return c.notFound(ctx)
	}
	if _, err, ok := c.allow(ctx, "audit.view"); !ok {
		return err
	}
	return c.renderAudit(ctx, nil)
}

func (c *Console) renderAudit(ctx *fiber.Ctx, res *audit.Result) error {
	v := c.newView(ctx, "audit_title")
	get := func(k string) string { return strings.TrimSpace(strings.Clone(ctx.Query(k))) }
	f, form, err := parseAuditForm(get)
	d := &auditData{F: form, Verify: res}
	v.Data = d
	if err != nil {
		msg, st, ok := serviceError(v.Lang, err)
		if !ok {
			return c.failure(ctx, err)
		}
		v.Errors = []string{msg}
		return c.render(ctx, st, "audit", v)
	}
	f.Cursor = get("cursor")
	if !c.can(ctx, *v.Me, "audit.view") {
		return c.render(ctx, fiber.StatusOK, "audit", v)
	}
	entries, next, err := c.d.Audit.List(ctx.UserContext(), f)
	if err != nil {
		if msg, st, ok := serviceError(v.Lang, err); ok {
			v.Errors = []string{msg}
			return c.render(ctx, st, "audit", v)
		}
		return c.failure(ctx, err)
	}
	d.Entries = entries
	// The newest signed checkpoints: what an auditor compares with the
	// copies kept outside this database.
	if d.Checkpoints, err = c.d.Audit.Checkpoints(ctx.UserContext(), 20); err != nil {
		return c.failure(ctx, err)
	}
	if next != "" {
		d.Next = template.URL(Prefix + "/audit?" + form.query(next)) //nolint:gosec // every value is query-escaped
	}
	return c.render(ctx, fiber.StatusOK, "audit", v)
}

// auditVerify checks the whole chain and every checkpoint signature, and
// shows the result with the head (GET: it changes nothing).
func (c *Console) auditVerify(ctx *fiber.Ctx) error {
	if c.d.Audit == nil {
		return c.notFound(ctx)
	}
	if _, err, ok := c.allow(ctx, "audit.verify"); !ok {
		return err
	}
	r, err := c.d.Audit.Verify(ctx.UserContext())
	if err != nil {
		return c.failure(ctx, err)
	}
	return c.renderAudit(ctx, &r)
}

// --- retention ----------------------------------------------------------------------

type retentionData struct {
	Plan  []retention.PlanItem
	Runs  []retention.Run
	Holds []retention.Hold
	Run   *retention.Run
}

func (c *Console) retentionPage(ctx *fiber.Ctx) error {
	if c.d.Retention == nil {
		return c.notFound(ctx)
	}
	if _, err, ok := c.allow(ctx, "retention.view"); !ok {
		return err
	}
	v := c.newView(ctx, "retention_title")
	switch ctx.Query("done") {
	case "hold":
		v.Flash = T(v.Lang, "done_hold")
	case "lift":
		v.Flash = T(v.Lang, "done_lift")
	case "run":
		v.Flash = T(v.Lang, "done_run")
	}
	return c.renderRetention(ctx, v, fiber.StatusOK)
}

func (c *Console) renderRetention(ctx *fiber.Ctx, v *view, status int) error {
	d := &retentionData{}
	var err error
	uc := ctx.UserContext()
	if d.Plan, err = c.d.Retention.Plan(uc, ""); err != nil {
		return c.failure(ctx, err)
	}
	if d.Runs, err = c.d.Retention.ListRuns(uc, 20); err != nil {
		return c.failure(ctx, err)
	}
	if d.Holds, err = c.d.Retention.ListHolds(uc, true); err != nil {
		return c.failure(ctx, err)
	}
	v.Data = d
	return c.render(ctx, status, "retention", v)
}

func (c *Console) retentionRun(ctx *fiber.Ctx) error {
	if c.d.Retention == nil {
		return c.notFound(ctx)
	}
	p, err, ok := c.allow(ctx, "retention.run")
	if !ok {
		return err
	}
	// The form states dry_run either way: the checkbox ("1") comes before
	// a hidden "0", and the first value wins. A post that says neither
	// (a hand-made request) is refused, not read as a real run.
	var dry bool
	switch ctx.FormValue("dry_run") {
	case "1", "true":
		dry = true
	case "0", "false":
	default:
		return c.afterRetention(ctx, "run", apperr.Field("dry_run", "required: a dry run or a real one"))
	}
	_, err = c.d.Retention.Start(ctx.UserContext(), retention.RunOptions{Trigger: retention.TriggerAPI, Actor: p.Actor(),
		DryRun: dry, Dataset: strings.TrimSpace(strings.Clone(ctx.FormValue("dataset")))})
	return c.afterRetention(ctx, "run", err)
}

func (c *Console) afterRetention(ctx *fiber.Ctx, done string, err error) error {
	if err == nil {
		return ctx.Redirect(Prefix+"/retention?done="+done, fiber.StatusSeeOther)
	}
	v := c.newView(ctx, "retention_title")
	if msg, st, ok := serviceError(v.Lang, err); ok {
		v.Errors = []string{msg}
		return c.renderRetention(ctx, v, st)
	}
	return c.failure(ctx, err)
}

// placeHold places a legal hold on a subject, a dataset or a category,
// exactly one, with a reason and an optional end date.
func (c *Console) placeHold(ctx *fiber.Ctx) error {
	if c.d.Retention == nil {
		return c.notFound(ctx)
	}
	p, err, ok := c.allow(ctx, "holds.place")
	if !ok {
		return err
	}
	in, perr := parseHold(func(k string) string { return strings.TrimSpace(strings.Clone(ctx.FormValue(k))) })
	if perr != nil {
		return c.afterRetention(ctx, "hold", perr)
	}
	_, err = c.d.Retention.CreateHold(ctx.UserContext(), in, p.Actor())
	return c.afterRetention(ctx, "hold", err)
}

// parseHold reads the hold form: scope (subject, dataset or category), its
// value, the reason and an optional last day.
func parseHold(get func(string) string) (retention.HoldInput, error) {
	in := retention.HoldInput{Reason: get("reason")}
	val := get("value")
	switch get("scope") {
	case "subject":
		in.Subject = val
	case "dataset":
		in.Dataset = val
	case "category":
		in.Category = val
	default:
		return in, apperr.Field("scope", "choose subject, dataset or category")
	}
	if e := get("expires"); e != "" {
		t, err := time.Parse("2006-01-02", e)
		if err != nil {
			return in, apperr.Field("expires", "a date such as 2030-12-31")
		}
		t = t.Add(24 * time.Hour)
		in.ExpiresAt = &t
	}
	return in, nil
}

func (c *Console) liftHold(ctx *fiber.Ctx) error {
	if c.d.Retention == nil {
		return c.notFound(ctx)
	}
	p, err, ok := c.allow(ctx, "holds.lift")
	if !ok {
		return err
	}
	id := ctx.Params("id")
	if uuid.Validate(id) != nil {
		return c.notFound(ctx)
	}
	_, err = c.d.Retention.LiftHold(ctx.UserContext(), strings.Clone(id), strings.TrimSpace(strings.Clone(ctx.FormValue("reason"))), p.Actor())
	return c.afterRetention(ctx, "lift", err)
}

// --- keys ---------------------------------------------------------------------------

type keysData struct {
	Keys    []apikey.Key
	Roles   []string
	Created *apikey.Key
	Secret  string // shown once, on the response that created it
	Now     time.Time
}

func (c *Console) keysPage(ctx *fiber.Ctx) error {
	if c.d.Keys == nil {
		return c.notFound(ctx)
	}
	if _, err, ok := c.allow(ctx, "keys.view"); !ok {
		return err
	}
	v := c.newView(ctx, "keys_title")
	if ctx.Query("done") == "revoke" {
		v.Flash = T(v.Lang, "done_revoke")
	}
	return c.renderKeys(ctx, v, fiber.StatusOK, nil, "")
}

func (c *Console) roles() []string {
	var out []string
	for r := range c.d.Policies.Current().Roles {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

func (c *Console) renderKeys(ctx *fiber.Ctx, v *view, status int, created *apikey.Key, secret string) error {
	keys, err := c.d.Keys.List(ctx.UserContext())
	if err != nil {
		return c.failure(ctx, err)
	}
	v.Data = &keysData{Keys: keys, Roles: c.roles(), Created: created, Secret: secret, Now: c.d.Clock.Now()}
	return c.render(ctx, status, "keys", v)
}

func (c *Console) createKey(ctx *fiber.Ctx) error {
	if c.d.Keys == nil {
		return c.notFound(ctx)
	}
	p, err, ok := c.allow(ctx, "keys.create")
	if !ok {
		return err
	}
	roles := map[string]bool{}
	for _, r := range c.roles() {
		roles[r] = true
	}
	v := c.newView(ctx, "keys_title")
	in := apikey.CreateInput{Name: strings.TrimSpace(strings.Clone(ctx.FormValue("name"))), Role: strings.Clone(ctx.FormValue("role"))}
	if raw := strings.TrimSpace(ctx.FormValue("expires")); raw != "" {
		// A date from <input type="date">: the key expires at the start
		// of that day, UTC.
		d, perr := time.Parse(time.DateOnly, raw)
		if perr != nil {
			v.Errors = []string{T(v.Lang, "bad_expiry")}
			return c.renderKeys(ctx, v, fiber.StatusUnprocessableEntity, nil, "")
		}
		in.ExpiresAt = &d
	}
	k, secret, err := c.d.Keys.Create(ctx.UserContext(), in, roles, p.Actor())
	if err != nil {
		if msg, st, ok := serviceError(v.Lang, err); ok {
			v.Errors = []string{msg}
			return c.renderKeys(ctx, v, st, nil, "")
		}
		return c.failure(ctx, err)
	}
	v.Flash = T(v.Lang, "done_key")
	return c.renderKeys(ctx, v, fiber.StatusCreated, &k, secret)
}

func (c *Console) revokeKey(ctx *fiber.Ctx) error {
	if c.d.Keys == nil {
		return c.notFound(ctx)
	}
	p, err, ok := c.allow(ctx, "keys.revoke")
	if !ok {
		return err
	}
	id := ctx.Params("id")
	if !apikey.IDPattern.MatchString(id) {
		return c.notFound(ctx)
	}
	if _, err := c.d.Keys.Revoke(ctx.UserContext(), strings.Clone(id), p.Actor()); err != nil {
		v := c.newView(ctx, "keys_title")
		if msg, st, ok := serviceError(v.Lang, err); ok {
			v.Errors = []string{msg}
			return c.renderKeys(ctx, v, st, nil, "")
		}
		return c.failure(ctx, err)
	}
	return ctx.Redirect(Prefix+"/keys?done=revoke", fiber.StatusSeeOther)
}

// --- policy -------------------------------------------------------------------------

type policyData struct {
	Revision string
	Request  string
	Regime   string
	Types    []string
	Regimes  []string
	Fields   []policy.FieldDecision
	History  []audit.Entry // policy.loaded / policy.rejected, newest first
}

// policyPage shows the bundle in force, its recent loads and refusals
// (from the audit log), and what a request type does to every field of
// the data map under a regime (`steward policy explain`).
func (c *Console) policyPage(ctx *fiber.Ctx) error {
	if _, err, ok := c.allow(ctx, "policy.view"); !ok {
		return err
	}
	v := c.newView(ctx, "policy_title")
	e := c.d.Policies.Current()
	d := &policyData{Revision: e.Revision(), Types: policy.RequestTypes(), Regimes: c.regimes(),
		Request: ctx.Query("request", "erasure"), Regime: ctx.Query("regime", "gdpr")}
	v.Data = d
	if !slices.Contains(d.Types, d.Request) || !slices.Contains(d.Regimes, d.Regime) {
		v.Errors = []string{T(v.Lang, "err_filter")}
		return c.render(ctx, fiber.StatusUnprocessableEntity, "policy", v)
	}
	d.Request, d.Regime = strings.Clone(d.Request), strings.Clone(d.Regime)
	var err error
	if d.Fields, err = e.ExplainDSAR(ctx.UserContext(), d.Request, d.Regime); err != nil {
		return c.failure(ctx, err)
	}
	if c.d.Audit != nil && v.Can["policy.history"] {
		d.History, _, err = c.d.Audit.List(ctx.UserContext(), audit.Filter{Action: "policy.*", Desc: true, Limit: 10})
		if err != nil {
			c.d.Log.Warn("policy history", "err", err)
		}
	}
	return c.render(ctx, fiber.StatusOK, "policy", v)
}
