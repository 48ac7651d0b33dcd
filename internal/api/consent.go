package api

import (
	"cmp"
	"context"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/receipt"
)

// ConsentService records and reads consent and decides checks
// (*consent.Service).
type ConsentService interface {
	Record(ctx context.Context, in consent.RecordInput) (consent.Event, error)
	Current(ctx context.Context, subj identity.Subject) ([]consent.PurposeState, error)
	History(ctx context.Context, subj identity.Subject, cursor string, limit int) ([]consent.Event, string, error)
	Check(ctx context.Context, in consent.CheckInput) (policy.Decision, error)
	// ValidateCheck checks one batch item before any is decided; field
	// prefixes the names of the fields it reports.
	ValidateCheck(in *consent.CheckInput, field string) error
	CheckBatch(ctx context.Context, ins []consent.CheckInput) ([]policy.Decision, error)
	Event(ctx context.Context, id string) (consent.Event, error)
	// Engine is the policy bundle in force: receipts name its purposes,
	// products and regimes, readiness reports its revision, and (unless
	// Deps.Authz is set) it authorizes.
	Engine() *policy.Engine
}

func parseSubject(field, raw string) (identity.Subject, error) {
	if raw == "" {
		return identity.Subject{}, apperr.Field(field, "required, as type:value (e.g. tg:123456 or email:ann@example.com)")
	}
	s, err := identity.Parse(strings.Clone(raw))
	if err != nil {
		return identity.Subject{}, apperr.Field(field, "%s", strings.TrimPrefix(err.Error(), "invalid subject: "))
	}
	return s, nil
}

func gpcHeader(c *fiber.Ctx) bool { return strings.TrimSpace(c.Get("Sec-GPC")) == "1" }

type recordRequest struct {
	Subject        string   `json:"subject"`
	Purpose        string   `json:"purpose"`
	State          string   `json:"state"`
	Source         string   `json:"source"`
	NoticeVersion  string   `json:"notice_version"`
	Jurisdiction   string   `json:"jurisdiction"`
	Language       string   `json:"language"`
	Product        string   `json:"product"`
	UserAgent      string   `json:"user_agent"`
	IP             string   `json:"ip"`
	LinkedSubjects []string `json:"linked_subjects"`
}

type recordResponse struct {
	Event      consent.Event `json:"event"`
	ReceiptURL string        `json:"receipt_url"`
}

func (s *server) recordConsent(c *fiber.Ctx) error {
	var req recordRequest
	if err := jsonBody(c, &req); err != nil {
		return err
	}
	subj, err := parseSubject("subject", req.Subject)
	if err != nil {
		return err
	}
	for name, v := range map[string]string{"purpose": req.Purpose, "state": req.State, "source": req.Source, "notice_version": req.NoticeVersion} {
		if v == "" {
			return apperr.Field(name, "required")
		}
	}
	kinds := []string{subj.Kind()}
	linked := make([]identity.Subject, 0, len(req.LinkedSubjects))
	for i, raw := range req.LinkedSubjects {
		l, err := parseSubject("linked_subjects["+strconv.Itoa(i)+"]", raw)
		if err != nil {
			return err
		}
		linked = append(linked, l)
		kinds = append(kinds, l.Kind())
	}
	if err := s.authorize(c, "consent.record", kinds...); err != nil {
		return err
	}
	// A site's visitors record into the products that list the site only.
	if err := s.checkOrigin(c, cmp.Or(req.Product, s.Consent.Engine().ProductOf(subj.Kind()))); err != nil {
		return err
	}
	key := callerKey(c)
	in := consent.RecordInput{
		Subject: subj, Purpose: req.Purpose, State: req.State, Source: req.Source, NoticeVersion: req.NoticeVersion,
		Jurisdiction: req.Jurisdiction, Language: req.Language, Product: req.Product, GPC: gpcHeader(c),
		UserAgent: req.UserAgent, IP: req.IP, KeyID: key.ID, Linked: linked,
	}
	// A browser calling with the publishable key is the person themselves:
	// its own user agent and address are the proof. A backend must pass the
	// person's, or its own would be recorded as if it were theirs.
	if key.Role == "sdk" {
		if in.UserAgent == "" {
			in.UserAgent = strings.Clone(c.Get(fiber.HeaderUserAgent))
		}
		if in.IP == "" {
			in.IP = s.clientIP(c)
		}
	}
	ev, err := s.Consent.Record(c.UserContext(), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(recordResponse{Event: ev, ReceiptURL: "/v1/consents/receipts/" + ev.ID})
}

type currentResponse struct {
	Subject  string                 `json:"subject"`
	Purposes []consent.PurposeState `json:"purposes"`
}

func (s *server) currentConsent(c *fiber.Ctx) error {
	if err := checkQuery(c, "subject"); err != nil {
		return err
	}
	subj, err := parseSubject("subject", c.Query("subject"))
	if err != nil {
		return err
	}
	if err := s.authorize(c, "consent.read", subj.Kind()); err != nil {
		return err
	}
	ps, err := s.Consent.Current(c.UserContext(), subj)
	if err != nil {
		return err
	}
	return c.JSON(currentResponse{Subject: subj.String(), Purposes: ps})
}

type historyResponse struct {
	Subject    string          `json:"subject"`
	Events     []consent.Event `json:"events"`
	NextCursor *string         `json:"next_cursor"`
}

func (s *server) consentHistory(c *fiber.Ctx) error {
	if err := checkQuery(c, "subject", "cursor", "limit"); err != nil {
		return err
	}
	subj, err := parseSubject("subject", c.Query("subject"))
	if err != nil {
		return err
	}
	limit := 50
	if l := c.Query("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			return apperr.Field("limit", "must be a whole number between 1 and 200")
		}
		limit = n
	}
	if err := s.authorize(c, "consent.read", subj.Kind()); err != nil {
		return err
	}
	evs, next, err := s.Consent.History(c.UserContext(), subj, strings.Clone(c.Query("cursor")), limit)
	if err != nil {
		return err
	}
	resp := historyResponse{Subject: subj.String(), Events: evs}
	if resp.Events == nil {
		resp.Events = []consent.Event{}
	}
	if next != "" {
		resp.NextCursor = &next
	}
	return c.JSON(resp)
}

type checkResult struct {
	Allow          bool   `json:"allow"`
	Reason         string `json:"reason"`
	Rule           string `json:"rule"`
	Regime         string `json:"regime"`
	LegalBasis     string `json:"legal_basis"`
	PolicyRevision string `json:"policy_revision"`
	// RestrictionID and RequestID name the restriction in force and the
	// privacy request that set it (reason "restricted").
	RestrictionID string `json:"restriction_id,omitempty"`
	RequestID     string `json:"request_id,omitempty"`
}

func parseAge(field, raw string) (int, error) {
	if raw == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 0 || n > 150 {
		return 0, apperr.Field(field, "must be a whole number of years between 0 and 150")
	}
	return n, nil
}

func (s *server) checkConsent(c *fiber.Ctx) error {
	return s.checkConsentAs(c, callerKey(c))
}

// checkConsentAs answers GET /v1/consent/check for key k, authenticated
// by the caller (the chain's authenticate, or the fused path).
func (s *server) checkConsentAs(c *fiber.Ctx, k apikey.Key) error {
	if err := checkQuery(c, "subject", "purpose", "jurisdiction", "age", "product"); err != nil {
		return err
	}
	subj, err := parseSubject("subject", c.Query("subject"))
	if err != nil {
		return err
	}
	purpose := c.Query("purpose")
	if purpose == "" {
		return apperr.Field("purpose", "required")
	}
	age, err := parseAge("age", c.Query("age"))
	if err != nil {
		return err
	}
	kinds := [1]string{subj.Kind()}
	if err := s.authorizeKey(c, k, "consent.check", kinds[:]); err != nil {
		return err
	}
	// Copies: the decision memo keeps its input, and fiber's query strings
	// point into a buffer that is reused after the handler returns.
	in := consent.CheckInput{
		Subject: subj, Purpose: strings.Clone(purpose), Jurisdiction: strings.Clone(c.Query("jurisdiction")),
		Product: strings.Clone(c.Query("product")), Age: age, GPC: gpcHeader(c),
	}
	d, err := s.Consent.Check(c.UserContext(), in)
	if err != nil {
		return err
	}
	s.Metrics.observeDecision(d.Allow, d.Reason)
	res := checkResult{Allow: d.Allow, Reason: d.Reason, Rule: d.Rule, Regime: d.Regime, LegalBasis: d.LegalBasis, PolicyRevision: d.Revision,
		RestrictionID: d.RestrictionID, RequestID: d.RequestID}
	// Copied into the response's pooled buffer (SetBody): fiber's Send
	// would keep a reference to buf, which would then live on the heap.
	var buf [320]byte
	if b, ok := res.appendJSON(buf[:0]); ok {
		c.Response().Header.SetContentType(fiber.MIMEApplicationJSON)
		c.Response().SetBody(b)
		return nil
	}
	return c.JSON(res)
}

// jsonPlain marks the bytes encoding/json writes as themselves in a string:
// printable ASCII other than the quote, the backslash and the three it
// escapes for HTML.
var jsonPlain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSON appends r as encoding/json would encode it, without
// reflection: the answer to the most frequent call. It reports false, and
// the caller encodes with encoding/json, if a value needs escaping.
func (r *checkResult) appendJSON(b []byte) ([]byte, bool) {
	str := func(key, v string, omitEmpty bool) bool {
		if omitEmpty && v == "" {
			return true
		}
		for i := 0; i < len(v); i++ {
			if !jsonPlain[v[i]] {
				return false
			}
		}
		b = append(b, `,"`...)
		b = append(b, key...)
		b = append(b, `":"`...)
		b = append(b, v...)
		b = append(b, '"')
		return true
	}
	b = append(b, `{"allow":`...)
	b = strconv.AppendBool(b, r.Allow)
	ok := str("reason", r.Reason, false) && str("rule", r.Rule, false) && str("regime", r.Regime, false) &&
		str("legal_basis", r.LegalBasis, false) && str("policy_revision", r.PolicyRevision, false) &&
		str("restriction_id", r.RestrictionID, true) && str("request_id", r.RequestID, true)
	return append(b, '}'), ok
}

type batchItem struct {
	Subject      string `json:"subject"`
	Purpose      string `json:"purpose"`
	Jurisdiction string `json:"jurisdiction"`
	Age          *int   `json:"age"`
	Product      string `json:"product"`
}

type batchRequest struct {
	Checks []batchItem `json:"checks"`
}

type batchResult struct {
	Allow         bool   `json:"allow"`
	Reason        string `json:"reason"`
	Rule          string `json:"rule"`
	Regime        string `json:"regime"`
	LegalBasis    string `json:"legal_basis"`
	RestrictionID string `json:"restriction_id,omitempty"`
	RequestID     string `json:"request_id,omitempty"`
}

type batchResponse struct {
	PolicyRevision string        `json:"policy_revision"`
	Results        []batchResult `json:"results"`
}

func (s *server) checkConsentBatch(c *fiber.Ctx) error {
	var req batchRequest
	if err := jsonBody(c, &req); err != nil {
		return err
	}
	if len(req.Checks) == 0 {
		return apperr.Field("checks", "required: between 1 and %d checks", consent.MaxBatch)
	}
	if len(req.Checks) > consent.MaxBatch {
		return apperr.Field("checks", "at most %d checks per batch, got %d", consent.MaxBatch, len(req.Checks))
	}
	ins := make([]consent.CheckInput, len(req.Checks))
	kinds := make([]string, 0, 4)
	gpc := gpcHeader(c)
	for i, it := range req.Checks {
		prefix := "checks[" + strconv.Itoa(i) + "]."
		subj, err := parseSubject(prefix+"subject", it.Subject)
		if err != nil {
			return err
		}
		if it.Purpose == "" {
			return apperr.Field(prefix+"purpose", "required")
		}
		age := -1
		if it.Age != nil {
			if *it.Age < 0 || *it.Age > 150 {
				return apperr.Field(prefix+"age", "must be a whole number of years between 0 and 150")
			}
			age = *it.Age
		}
		ins[i] = consent.CheckInput{Subject: subj, Purpose: it.Purpose, Jurisdiction: it.Jurisdiction, Product: it.Product, Age: age, GPC: gpc}
		if err := s.Consent.ValidateCheck(&ins[i], prefix); err != nil {
			return err
		}
		kinds = appendUnique(kinds, subj.Kind())
	}
	if err := s.authorize(c, "consent.check", kinds...); err != nil {
		return err
	}
	ds, err := s.Consent.CheckBatch(c.UserContext(), ins)
	if err != nil {
		return err
	}
	// Validation guarantees at least one check; all were decided by one engine.
	resp := batchResponse{PolicyRevision: ds[0].Revision, Results: make([]batchResult, len(ds))}
	for i, d := range ds {
		s.Metrics.observeDecision(d.Allow, d.Reason)
		resp.Results[i] = batchResult{Allow: d.Allow, Reason: d.Reason, Rule: d.Rule, Regime: d.Regime, LegalBasis: d.LegalBasis,
			RestrictionID: d.RestrictionID, RequestID: d.RequestID}
	}
	return c.JSON(resp)
}

func appendUnique(xs []string, x string) []string {
	for _, y := range xs {
		if y == x {
			return xs
		}
	}
	return append(xs, x)
}

type receiptResponse struct {
	Receipt receipt.Receipt `json:"receipt"`
	JWS     string          `json:"jws"`
	JWKSURL string          `json:"jwks_url"`
}

func (s *server) consentReceipt(c *fiber.Ctx) error {
	id, ok := canonicalID(c.Params("event_id"))
	if !ok {
		return apperr.Field("event_id", "must be a UUID")
	}
	ev, err := s.Consent.Event(c.UserContext(), id)
	if err != nil {
		return err
	}
	if err := s.authorize(c, "consent.receipt", ev.SubjectKind); err != nil {
		return err
	}
	r := consent.Receipt(c.UserContext(), s.Consent.Engine(), ev)
	jws, err := s.Receipts.Sign(r)
	if err != nil {
		return err
	}
	return c.JSON(receiptResponse{Receipt: r, JWS: jws, JWKSURL: "/v1/consents/receipts/jwks.json"})
}

func (s *server) jwks(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.JSON(s.Receipts.JWKS())
}
