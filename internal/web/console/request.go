package console

import (
	"context"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
)

// A request: what it is, its plan per system, dataset and field, its tasks
// and timeline, and the staff actions its state allows and the member's
// role may do. Every action takes a reason or note, goes through the same
// dsar.Service method as the API, and comes back here.

type requestData struct {
	D dsar.Detail
	// Offer: the actions the request's state allows (the role is in
	// view.Can); a control is shown when both say yes.
	Offer      map[string]bool
	Report     *dsar.Report
	Revealed   []string
	Done       string // the action just done, for the flash
	HasPackage bool
	// Recipients are the request's GDPR Art. 19 notifications, each with
	// how it is told and whether it is done.
	Recipients []dsar.Recipient
}

var doneKeys = map[string]string{
	"approve": "done_approve", "deny": "done_deny", "extend": "done_extend", "pause": "done_pause", "resume": "done_resume",
	"cancel": "done_cancel", "retry-planning": "done_retry_planning", "replan": "done_replan", "retry": "done_retry",
	"complete": "done_complete", "acknowledge-review": "done_acknowledge",
	"review-document": "done_review_document", "release-package": "done_release_package", "recipient-told": "done_recipient_told",
}

func (c *Console) request(ctx *fiber.Ctx) error {
	if _, err, ok := c.allow(ctx, "request.view"); !ok {
		return err
	}
	id, ok := requestID(ctx)
	if !ok {
		return c.notFound(ctx)
	}
	v := c.newView(ctx, "request_title")
	if k, ok := doneKeys[ctx.Query("done")]; ok {
		v.Flash = T(v.Lang, k)
	}
	return c.renderRequest(ctx, v, id, fiber.StatusOK, nil)
}

// renderRequest loads the request and renders its page with v's errors
// and flash (and identities just revealed).
func (c *Console) renderRequest(ctx *fiber.Ctx, v *view, id string, status int, revealed []string) error {
	d, err := c.d.Requests.Get(ctx.UserContext(), id)
	if err != nil {
		return c.failure(ctx, err)
	}
	rd := requestData{D: d, Offer: offers(d), Revealed: revealed}
	if d.Status == dsar.Completed || d.Status == dsar.Failed {
		rep, err := c.d.Requests.Report(ctx.UserContext(), id)
		if err == nil {
			rd.Report = &rep
		} else if apperr.CodeOf(err) != apperr.NotFound {
			c.d.Log.Warn("request report", "request_id", id, "err", err)
		}
	}
	if recs, err := c.d.Requests.Recipients(ctx.UserContext(), id); err == nil {
		rd.Recipients = recs
	} else {
		// The rest of the page is still worth showing; the list is not.
		c.d.Log.Warn("request recipients", "request_id", id, "err", err)
	}
	rd.HasPackage = c.d.Packages != nil && (d.Type == "access" || d.Type == "export") && d.Status == dsar.Completed
	v.Title = T(v.Lang, "request_title_of", T(v.Lang, "type_"+d.Type))
	v.Data = rd
	return c.render(ctx, status, "request", v)
}

// offers is what the request's state allows, by the same state machine
// the service enforces (dsar.Next), so a button is never offered only to
// be refused as a conflict.
func offers(d dsar.Detail) map[string]bool {
	can := func(ev dsar.Event) bool {
		_, err := dsar.Next(d.Status, ev, d.PausedFrom)
		return err == nil
	}
	o := map[string]bool{
		"approve":        can(dsar.Approve) && (d.Status == dsar.AwaitingApproval || d.PlannedAt != nil),
		"deny":           can(dsar.Deny),
		"pause":          can(dsar.Pause),
		"resume":         can(dsar.Resume),
		"cancel":         can(dsar.Cancel),
		"replan":         can(dsar.Replan),
		"extend":         !d.Status.Final() && !d.Extended && d.ExtendableUntil != nil,
		"retry-planning": d.Status == dsar.Verified && d.PlannedAt == nil && d.PlanError != "",
		"reveal":         len(d.Identities) > 0,
		// A held package waits for a reviewer (deadlines.rego package_review).
		"release-package": d.Status == dsar.InProgress && d.PackageHeld,
		"review-document": !d.Status.Final() && agentDocumentToReview(d),
	}
	for _, t := range d.Tasks {
		if t.Status == dsar.TaskFailed && (d.Status == dsar.Failed || d.Status == dsar.InProgress) {
			o["retry"] = true
		}
		if t.Mode == dsar.ModeManual && t.Status == dsar.TaskPending && (d.Status == dsar.InProgress || d.Status == dsar.Failed) {
			o["complete"] = true
		}
		if len(t.Review) > 0 && t.ReviewAcknowledgedAt == nil {
			o["acknowledge-review"] = true
		}
	}
	return o
}

// agentDocumentToReview: the request has an agent's signed authorization
// that staff opened and nobody reviewed yet. dsar.ReviewDocument refuses a
// review of a document nobody opened (a review is of the document itself),
// so the button waits for an opening by staff; the timeline is where both
// are recorded.
func agentDocumentToReview(d dsar.Detail) bool {
	has := false
	for _, doc := range d.Documents {
		has = has || doc.Kind == dsar.DocAgentAuthorization
	}
	if !has {
		return false
	}
	opened := false
	for _, e := range d.Timeline {
		switch {
		case e.Event == "document_reviewed":
			return false
		case e.Event == "document_opened" && !strings.HasPrefix(e.Actor, "system:"):
			opened = true
		}
	}
	return opened
}

func requestID(ctx *fiber.Ctx) (string, bool) {
	id := strings.ToLower(ctx.Params("id"))
	if !dsar.ValidID(id) {
		return "", false
	}
	return strings.Clone(id), true
}

// requestAction runs one staff action on a request (approve, deny, …).
func (c *Console) requestAction(name string) fiber.Handler {
	return func(ctx *fiber.Ctx) error {
		p, err, ok := c.allow(ctx, "request."+name)
		if !ok {
			return err
		}
		id, ok := requestID(ctx)
		if !ok {
			return c.notFound(ctx)
		}
		reason := strings.TrimSpace(strings.Clone(ctx.FormValue("reason")))
		note := strings.TrimSpace(strings.Clone(ctx.FormValue("note")))
		uc, actor, r := ctx.UserContext(), p.Actor(), c.d.Requests
		var fn func(context.Context) (dsar.Request, error)
		switch name {
		case "approve":
			fn = func(ctx context.Context) (dsar.Request, error) { return r.Approve(ctx, id, actor, reason) }
		case "deny":
			fn = func(ctx context.Context) (dsar.Request, error) { return r.Deny(ctx, id, actor, reason) }
		case "extend":
			fn = func(ctx context.Context) (dsar.Request, error) { return r.Extend(ctx, id, actor, reason) }
		case "pause":
			fn = func(ctx context.Context) (dsar.Request, error) { return r.Pause(ctx, id, actor, reason) }
		case "resume":
			fn = func(ctx context.Context) (dsar.Request, error) { return r.Resume(ctx, id, actor) }
		case "cancel":
			fn = func(ctx context.Context) (dsar.Request, error) { return r.Cancel(ctx, id, actor, reason) }
		case "retry-planning":
			fn = func(ctx context.Context) (dsar.Request, error) { return r.RetryPlan(ctx, id, actor) }
		case "review-document":
			fn = func(ctx context.Context) (dsar.Request, error) {
				return r.ReviewDocument(ctx, id, dsar.DocAgentAuthorization, actor, note)
			}
		case "release-package":
			fn = func(ctx context.Context) (dsar.Request, error) { return r.ReleasePackage(ctx, id, actor, note) }
		default:
			return c.notFound(ctx)
		}
		_, err = fn(uc)
		return c.afterAction(ctx, id, name, err)
	}
}

// afterAction goes back to the request: with a flash when done, or with
// the service's reason when it refused (a conflict or a missing reason).
func (c *Console) afterAction(ctx *fiber.Ctx, id, name string, err error) error {
	if err == nil {
		return ctx.Redirect(Prefix+"/requests/"+id+"?done="+name, fiber.StatusSeeOther)
	}
	lang := c.lang(ctx)
	if msg, st, ok := serviceError(lang, err); ok {
		v := c.newView(ctx, "request_title")
		v.Errors = []string{msg}
		return c.renderRequest(ctx, v, id, st, nil)
	}
	return c.failure(ctx, err)
}

func (c *Console) taskAction(name string) fiber.Handler {
	return func(ctx *fiber.Ctx) error {
		p, err, ok := c.allow(ctx, "task."+name)
		if !ok {
			return err
		}
		id, ok := requestID(ctx)
		task := strings.ToLower(ctx.Params("task"))
		if !ok || !dsar.ValidID(task) {
			return c.notFound(ctx)
		}
		task = strings.Clone(task)
		note := strings.TrimSpace(strings.Clone(ctx.FormValue("note")))
		r := c.d.Requests
		switch name {
		case "retry":
			_, err = r.RetryTask(ctx.UserContext(), id, task, p.Actor())
		case "complete":
			_, err = r.CompleteManualTask(ctx.UserContext(), id, task, p.Actor(), note)
		case "acknowledge-review":
			_, err = r.AcknowledgeReview(ctx.UserContext(), id, task, p.Actor(), note)
		default:
			return c.notFound(ctx)
		}
		return c.afterAction(ctx, id, name, err)
	}
}

// recipientTold records that staff told a recipient of the request (GDPR
// Art. 19) Steward could not tell itself, or confirmed its reply, with a
// note saying how.
func (c *Console) recipientTold(ctx *fiber.Ctx) error {
	p, err, ok := c.allow(ctx, "recipient.told")
	if !ok {
		return err
	}
	id, ok := requestID(ctx)
	system := ctx.Params("system")
	if !ok || !datamap.ValidID(system) {
		return c.notFound(ctx)
	}
	note := strings.TrimSpace(strings.Clone(ctx.FormValue("note")))
	_, err = c.d.Requests.RecipientTold(ctx.UserContext(), id, strings.Clone(system), p.Actor(), note)
	return c.afterAction(ctx, id, "recipient-told", err)
}

// replan plans the request again, with identities staff add (one per
// line, typed like an intake subject) and a note saying why.
func (c *Console) replan(ctx *fiber.Ctx) error {
	p, err, ok := c.allow(ctx, "request.replan")
	if !ok {
		return err
	}
	id, ok := requestID(ctx)
	if !ok {
		return c.notFound(ctx)
	}
	add, perr := parseIdentities(ctx.FormValue("identities"))
	if perr != nil {
		return c.afterAction(ctx, id, "replan", perr)
	}
	_, err = c.d.Requests.Replan(ctx.UserContext(), id, p.Actor(), strings.TrimSpace(strings.Clone(ctx.FormValue("note"))), add)
	return c.afterAction(ctx, id, "replan", err)
}

// parseIdentities reads one identity per line (email:…, tg:…); blank
// lines are skipped.
func parseIdentities(s string) ([]identity.Subject, error) {
	var out []identity.Subject
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if len(out) == dsar.MaxAddedIdentities {
			return nil, apperr.Field("identities", "at most %d", dsar.MaxAddedIdentities)
		}
		subj, err := identity.Parse(line)
		if err != nil {
			return nil, apperr.Field("identities", "line %d: %v", i+1, err)
		}
		out = append(out, subj)
	}
	return out, nil
}

// revealIdentities shows the request's identities once, on this response
// only (never in a URL or a later page); dsar audits the reveal.
func (c *Console) revealIdentities(ctx *fiber.Ctx) error {
	p, err, ok := c.allow(ctx, "request.reveal")
	if !ok {
		return err
	}
	id, ok := requestID(ctx)
	if !ok {
		return c.notFound(ctx)
	}
	ids, err := c.d.Requests.RevealIdentities(ctx.UserContext(), id, p.Actor())
	if err != nil {
		return c.afterAction(ctx, id, "reveal", err)
	}
	v := c.newView(ctx, "request_title")
	v.Flash = T(v.Lang, "revealed_once")
	return c.renderRequest(ctx, v, id, fiber.StatusOK, ids)
}

// downloadPackage streams the request's export package to staff, audited
// by the export store with the member as the actor.
// openDocument serves the agent's signed authorization to a member who
// may review it; dsar records the opening on the timeline and in the audit
// log, which is also what lets the review button appear.
func (c *Console) openDocument(ctx *fiber.Ctx) error {
	p, err, ok := c.allow(ctx, "request.open-document")
	if !ok {
		return err
	}
	id, ok := requestID(ctx)
	if !ok {
		return c.notFound(ctx)
	}
	d, err := c.d.Requests.OpenDocument(ctx.UserContext(), id, dsar.DocAgentAuthorization, p.Actor())
	if err != nil {
		return c.failure(ctx, err)
	}
	ext := map[string]string{"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}[d.ContentType]
	ctx.Set(fiber.HeaderContentType, d.ContentType)
	ctx.Set(fiber.HeaderContentDisposition, `attachment; filename="agent-authorization-`+id+ext+`"`)
	ctx.Set("Referrer-Policy", "no-referrer")
	ctx.Set("Digest", "sha-256="+d.SHA256)
	return ctx.Send(d.Content)
}

func (c *Console) downloadPackage(ctx *fiber.Ctx) error {
	p, err, ok := c.allow(ctx, "request.package")
	if !ok {
		return err
	}
	id, ok := requestID(ctx)
	if !ok || c.d.Packages == nil {
		return c.notFound(ctx)
	}
	pkg, rc, err := c.d.Packages.OpenForStaff(ctx.UserContext(), id, p.Actor())
	if err != nil {
		return c.failure(ctx, err)
	}
	ctx.Set(fiber.HeaderContentType, "application/zip")
	ctx.Set(fiber.HeaderContentDisposition, `attachment; filename="personal-data-`+pkg.RequestID+`.zip"`)
	ctx.Set("Referrer-Policy", "no-referrer")
	ctx.Set("Digest", "sha-256="+pkg.SHA256)
	ctx.Context().SetBodyStream(rc, int(pkg.Size))
	return nil
}
