package api

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
)

// Privacy requests: intake (frontends and staff), the person's own status,
// verification and code resend (public: the code and the status token are
// the credentials), and the staff workflow.

// RequestService takes in and works privacy requests (*dsar.Service).
type RequestService interface {
	Create(ctx context.Context, in dsar.CreateInput) (dsar.Created, error)
	Verify(ctx context.Context, id, code string) (dsar.VerifyResult, error)
	ResendCode(ctx context.Context, id, ip string) error
	Status(ctx context.Context, id, token string) (dsar.PublicStatus, error)
	List(ctx context.Context, f dsar.Filter) ([]dsar.Request, string, error)
	Get(ctx context.Context, id string) (dsar.Detail, error)
	Report(ctx context.Context, id string) (dsar.Report, error)
	RevealIdentities(ctx context.Context, id, actor string) ([]string, error)
	OpenDocument(ctx context.Context, id, kind, actor string) (dsar.Document, error)
	Recipients(ctx context.Context, id string) ([]dsar.Recipient, error)
	RecipientTold(ctx context.Context, id, system, actor, note string) (dsar.Recipient, error)
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
	// Verification beyond the code and the package review (verification.go).
	ChallengeLogin(ctx context.Context, id, token string) (dsar.VerifyResult, error)
	VerifyInvoice(ctx context.Context, id, statusToken, ref string) (dsar.Request, error)
	ReviewDocument(ctx context.Context, id, kind, actor, note string) (dsar.Request, error)
	ReleasePackage(ctx context.Context, id, actor, note string) (dsar.Request, error)
}

// Request and task ids are canonical UUIDs; anything else names no request,
// and is refused as the service would refuse it, without asking it.
var (
	errNoRequest = apperr.New(apperr.NotFound, "no such privacy request")
	errNoTask    = apperr.New(apperr.NotFound, "no such task")
)

// canonicalID returns a UUID in its one canonical form (36 characters,
// lower case), accepting either case: PostgreSQL's uuid type matches any
// case, but the identities' sealing binds the request id as written, so an
// upper-case id that found the row failed to open its identities (a 500).
// Every id taken from a path goes through here, so no other spelling
// (braces, urn:uuid:, no hyphens) reaches a service.
func canonicalID(id string) (string, bool) {
	if !dsar.ValidID(id) {
		return "", false
	}
	return strings.ToLower(id), true // ToLower allocates: no fiber buffer kept
}

// requestID is the :id path parameter in canonical form.
func requestID(c *fiber.Ctx) (string, error) {
	id, ok := canonicalID(c.Params("id"))
	if !ok {
		return "", errNoRequest
	}
	return id, nil
}

// taskID is the :task_id path parameter in canonical form.
func taskID(c *fiber.Ctx) (string, error) {
	id, ok := canonicalID(c.Params("task_id"))
	if !ok {
		return "", errNoTask
	}
	return id, nil
}

type createRequestBody struct {
	Type             string            `json:"type"`
	Subject          string            `json:"subject"`
	Region           string            `json:"region"`
	Channel          string            `json:"channel"`
	Language         string            `json:"language"`
	Product          string            `json:"product"`
	Changes          map[string]string `json:"changes"`
	InitData         string            `json:"init_data"`
	IdentityAsserted bool              `json:"identity_asserted"`
	IdentityVerified bool              `json:"identity_verified"`
	Note             string            `json:"note"`
	Agent            *dsar.Agent       `json:"agent"`
	// VerificationLevel: the level a reviewer who verified the person
	// reached; ChallengeLoginToken: the product's sign-in vouches.
	VerificationLevel   string `json:"verification_level"`
	ChallengeLoginToken string `json:"challenge_login_token"`
}

type createdResponse struct {
	Request     dsar.Request `json:"request"`
	StatusToken string       `json:"status_token,omitempty"`
	Existing    bool         `json:"existing"`
}

// allowed reports whether the caller's role may do action, without failing.
func (s *server) allowed(c *fiber.Ctx, action string) (bool, error) {
	err := s.authorize(c, action)
	if err == nil {
		return true, nil
	}
	if apperr.CodeOf(err) == apperr.Forbidden {
		return false, nil
	}
	return false, err
}

func (s *server) createRequest(c *fiber.Ctx) error {
	var b createRequestBody
	if err := jsonBody(c, &b); err != nil {
		return err
	}
	subj, err := parseSubject("subject", b.Subject)
	if err != nil {
		return err
	}
	if err := s.authorize(c, "requests.create", subj.Kind()); err != nil {
		return err
	}
	canAssert, err := s.allowed(c, "requests.assert_identity")
	if err != nil {
		return err
	}
	isStaff, err := s.allowed(c, "requests.manage")
	if err != nil {
		return err
	}
	out, err := s.Requests.Create(c.UserContext(), dsar.CreateInput{
		Type: b.Type, Subject: subj, Region: b.Region, Channel: b.Channel, Language: b.Language, Product: b.Product, Changes: b.Changes,
		InitData: b.InitData, IdentityAsserted: b.IdentityAsserted, IdentityVerified: b.IdentityVerified, Note: b.Note, Agent: b.Agent,
		VerificationLevel: b.VerificationLevel, ChallengeLoginToken: b.ChallengeLoginToken,
		Actor: "key:" + callerKey(c).ID, ClientIP: s.clientIP(c), CanAssert: canAssert, IsStaff: isStaff,
	})
	if err != nil {
		return err
	}
	status := fiber.StatusCreated
	if out.Existing {
		status = fiber.StatusOK
	}
	return c.Status(status).JSON(createdResponse{Request: out.Request, StatusToken: out.StatusToken, Existing: out.Existing})
}

type verifyBody struct {
	Code string `json:"code"`
}

type verifiedResponse struct {
	Request     dsar.Request `json:"request"`
	StatusToken string       `json:"status_token"`
}

func (s *server) verifyRequest(c *fiber.Ctx) error {
	var b verifyBody
	if err := jsonBody(c, &b); err != nil {
		return err
	}
	id, err := requestID(c)
	if err != nil {
		return err
	}
	v, err := s.Requests.Verify(c.UserContext(), id, b.Code)
	if err != nil {
		return err
	}
	return c.JSON(verifiedResponse{Request: v.Request, StatusToken: v.StatusToken})
}

func (s *server) resendCode(c *fiber.Ctx) error {
	id, err := requestID(c)
	if err != nil {
		return err
	}
	if err := s.Requests.ResendCode(c.UserContext(), id, s.clientIP(c)); err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"sent": true})
}

// StatusTokenHeader carries the person's status token.
const StatusTokenHeader = "Steward-Status-Token"

func (s *server) requestStatus(c *fiber.Ctx) error {
	// A wrong id and a missing token look like a wrong token: not found.
	id, err := requestID(c)
	if err != nil {
		return err
	}
	token := c.Get(StatusTokenHeader)
	if token == "" {
		return errNoRequest
	}
	st, err := s.Requests.Status(c.UserContext(), id, strings.Clone(token))
	if err != nil {
		return err
	}
	return c.JSON(st)
}

type requestPage struct {
	Items      []dsar.Request `json:"items"`
	NextCursor *string        `json:"next_cursor"`
}

func (s *server) listRequests(c *fiber.Ctx) error {
	if err := checkQuery(c, "status", "type", "channel", "product", "overdue", "review", "due_before", "limit", "cursor"); err != nil {
		return err
	}
	if err := s.authorize(c, "requests.read"); err != nil {
		return err
	}
	f := dsar.Filter{Status: strings.Clone(c.Query("status")), Type: strings.Clone(c.Query("type")),
		Channel: strings.Clone(c.Query("channel")), Product: strings.Clone(c.Query("product")), Cursor: strings.Clone(c.Query("cursor"))}
	switch v := c.Query("review"); v {
	case "":
	case "open":
		f.Review = "open"
	default:
		return apperr.Field("review", "must be open")
	}
	switch c.Query("overdue") {
	case "", "false":
	case "true":
		f.Overdue = true
	default:
		return apperr.Field("overdue", "must be true or false")
	}
	if v := c.Query("due_before"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return apperr.Field("due_before", "must be an RFC 3339 time")
		}
		f.DueBy = &t
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return apperr.Field("limit", "must be a whole number between 1 and 200")
		}
		f.Limit = n
	}
	items, next, err := s.Requests.List(c.UserContext(), f)
	if err != nil {
		return err
	}
	page := requestPage{Items: items}
	if next != "" {
		page.NextCursor = &next
	}
	return c.JSON(page)
}

func (s *server) getRequest(c *fiber.Ctx) error {
	if err := s.authorize(c, "requests.read"); err != nil {
		return err
	}
	id, err := requestID(c)
	if err != nil {
		return err
	}
	d, err := s.Requests.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(d)
}

// requestReport is the account of what a request did, per system: the
// erasure proof staff hand on.
func (s *server) requestReport(c *fiber.Ctx) error {
	if err := s.authorize(c, "requests.read"); err != nil {
		return err
	}
	id, err := requestID(c)
	if err != nil {
		return err
	}
	rep, err := s.Requests.Report(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(rep)
}

func (s *server) revealIdentities(c *fiber.Ctx) error {
	if err := s.authorize(c, "requests.manage"); err != nil {
		return err
	}
	id, err := requestID(c)
	if err != nil {
		return err
	}
	ids, err := s.Requests.RevealIdentities(c.UserContext(), id, "key:"+callerKey(c).ID)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"identities": ids})
}

// openDocument serves a document uploaded with a request (an agent's
// signed authorization) to staff. Opening it is audited by the service;
// the file is personal data, so it is never cached, and its media type was
// detected from its content at upload, so nosniff holds it to that.
func (s *server) openDocument(c *fiber.Ctx) error {
	if err := s.authorize(c, "requests.manage"); err != nil {
		return err
	}
	id, err := requestID(c)
	if err != nil {
		return err
	}
	if c.Params("kind") != dsar.DocAgentAuthorization {
		return apperr.New(apperr.NotFound, "this request has no such document")
	}
	d, err := s.Requests.OpenDocument(c.UserContext(), id, dsar.DocAgentAuthorization, "key:"+callerKey(c).ID)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, d.ContentType)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+dsar.DocAgentAuthorization+documentExt[d.ContentType]+`"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set("Digest", "sha-256="+d.SHA256)
	return c.Send(d.Content)
}

var documentExt = map[string]string{"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}

type reasonBody struct {
	Reason string `json:"reason"`
	Note   string `json:"note"`
}

// optionalBody decodes a JSON body if one was sent: approve and resume take
// an optional note, so an empty body is fine.
func optionalBody(c *fiber.Ctx, v any) error {
	if len(strings.TrimSpace(string(c.Body()))) == 0 {
		return nil
	}
	return jsonBody(c, v)
}

// staffAction runs one staff action on a request.
func (s *server) staffAction(c *fiber.Ctx, fn func(id, actor string, b reasonBody) (dsar.Request, error)) error {
	var b reasonBody
	if err := optionalBody(c, &b); err != nil {
		return err
	}
	if err := s.authorize(c, "requests.manage"); err != nil {
		return err
	}
	id, err := requestID(c)
	if err != nil {
		return err
	}
	r, err := fn(id, "key:"+callerKey(c).ID, b)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

func (s *server) approveRequest(c *fiber.Ctx) error {
	return s.staffAction(c, func(id, actor string, b reasonBody) (dsar.Request, error) {
		return s.Requests.Approve(c.UserContext(), id, actor, b.Note)
	})
}

func (s *server) denyRequest(c *fiber.Ctx) error {
	return s.staffAction(c, func(id, actor string, b reasonBody) (dsar.Request, error) {
		return s.Requests.Deny(c.UserContext(), id, actor, b.Reason)
	})
}

func (s *server) extendRequest(c *fiber.Ctx) error {
	return s.staffAction(c, func(id, actor string, b reasonBody) (dsar.Request, error) {
		return s.Requests.Extend(c.UserContext(), id, actor, b.Reason)
	})
}

func (s *server) cancelRequest(c *fiber.Ctx) error {
	return s.staffAction(c, func(id, actor string, b reasonBody) (dsar.Request, error) {
		return s.Requests.Cancel(c.UserContext(), id, actor, b.Reason)
	})
}

func (s *server) pauseRequest(c *fiber.Ctx) error {
	return s.staffAction(c, func(id, actor string, b reasonBody) (dsar.Request, error) {
		return s.Requests.Pause(c.UserContext(), id, actor, b.Reason)
	})
}

func (s *server) resumeRequest(c *fiber.Ctx) error {
	return s.staffAction(c, func(id, actor string, _ reasonBody) (dsar.Request, error) {
		return s.Requests.Resume(c.UserContext(), id, actor)
	})
}

func (s *server) retryPlanning(c *fiber.Ctx) error {
	return s.staffAction(c, func(id, actor string, _ reasonBody) (dsar.Request, error) {
		return s.Requests.RetryPlan(c.UserContext(), id, actor)
	})
}

type replanBody struct {
	Identities []string `json:"identities"`
	Note       string   `json:"note"`
}

// replanRequest plans a request again (dsar.Service.Replan): a failed
// request (or one in progress with a failed task) after the data map or a
// connector was fixed, or a paused access or export request that found
// nothing; with the identities staff add (typed like an intake subject:
// email:…, tg:…) and a note saying why. The identities the request already
// has stay pinned to it.
func (s *server) replanRequest(c *fiber.Ctx) error {
	var b replanBody
	if err := optionalBody(c, &b); err != nil {
		return err
	}
	if err := s.authorize(c, "requests.manage"); err != nil {
		return err
	}
	id, err := requestID(c)
	if err != nil {
		return err
	}
	if len(b.Identities) > dsar.MaxAddedIdentities {
		return apperr.Field("identities", "at most %d", dsar.MaxAddedIdentities)
	}
	add := make([]identity.Subject, 0, len(b.Identities))
	for i, raw := range b.Identities {
		subj, err := parseSubject("identities["+strconv.Itoa(i)+"]", raw)
		if err != nil {
			return err
		}
		add = append(add, subj)
	}
	r, err := s.Requests.Replan(c.UserContext(), id, "key:"+callerKey(c).ID, b.Note, add)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

func (s *server) retryTask(c *fiber.Ctx) error {
	return s.staffAction(c, func(id, actor string, _ reasonBody) (dsar.Request, error) {
		task, err := taskID(c)
		if err != nil {
			return dsar.Request{}, err
		}
		return s.Requests.RetryTask(c.UserContext(), id, task, actor)
	})
}

func (s *server) completeTask(c *fiber.Ctx) error {
	return s.staffAction(c, func(id, actor string, b reasonBody) (dsar.Request, error) {
		task, err := taskID(c)
		if err != nil {
			return dsar.Request{}, err
		}
		return s.Requests.CompleteManualTask(c.UserContext(), id, task, actor, b.Note)
	})
}

// listRecipients lists who a rectification, erasure or restriction was
// communicated to (GDPR Art. 19) and how.
func (s *server) listRecipients(c *fiber.Ctx) error {
	if err := s.authorize(c, "requests.read"); err != nil {
		return err
	}
	id, err := requestID(c)
	if err != nil {
		return err
	}
	out, err := s.Requests.Recipients(c.UserContext(), id)
	if err != nil {
		return err
	}
	if out == nil {
		out = []dsar.Recipient{}
	}
	return c.JSON(fiber.Map{"recipients": out})
}

// recipientTold records that staff told a recipient Steward could not
// tell itself, or confirmed its reply: note required.
func (s *server) recipientTold(c *fiber.Ctx) error {
	var b reasonBody
	if err := optionalBody(c, &b); err != nil {
		return err
	}
	if err := s.authorize(c, "requests.manage"); err != nil {
		return err
	}
	id, err := requestID(c)
	if err != nil {
		return err
	}
	system := c.Params("system")
	if !datamap.ValidID(system) {
		return apperr.New(apperr.NotFound, "no pending notice to this recipient")
	}
	r, err := s.Requests.RecipientTold(c.UserContext(), id, strings.Clone(system), "key:"+callerKey(c).ID, b.Note)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

// acknowledgeReview records that staff looked at a task's review items
// (records the request reached but left alone because they are not the
// person's alone) and what they decided: note required.
func (s *server) acknowledgeReview(c *fiber.Ctx) error {
	return s.staffAction(c, func(id, actor string, b reasonBody) (dsar.Request, error) {
		task, err := taskID(c)
		if err != nil {
			return dsar.Request{}, err
		}
		return s.Requests.AcknowledgeReview(c.UserContext(), id, task, actor, b.Note)
	})
}
