package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
)

// decisionQueries holds the prepared retention, dsar and deadlines queries of
// one Engine and their memos.
type decisionQueries struct {
	retentionQ rego.PreparedEvalQuery
	dsarQ      rego.PreparedEvalQuery
	deadlineQ  rego.PreparedEvalQuery
	workflowQ  rego.PreparedEvalQuery

	// schedule is data/retention.json, decoded strictly and checked.
	schedule RetentionSchedule
	// retentionDays is each retention rule's period in days (-1: none), so
	// ages on the same side of it share one memo entry.
	retentionDays map[string]int
	// deadlineJurisdictions are the places with their own deadline law;
	// any other jurisdiction decides like "" and shares its memo entry.
	// deadlineRegimes are the regimes with their own entry; any other
	// decides like "default".
	deadlineJurisdictions map[string]bool
	deadlineRegimes       map[string]bool

	retentionMemo sync.Map            // RetentionInput -> RetentionDecision
	dsarMemo      sync.Map            // DSARInput -> DSARDecision
	deadlineMemo  sync.Map            // deadlineKey -> DeadlineDecision
	workflow      map[string]Workflow // request type -> decision, all decided at load
}

func (e *Engine) decisionQ() (*decisionQueries, error) {
	if e.decisions == nil {
		return nil, errors.New("policy: retention, dsar and deadlines decisions are not prepared (engine not made by Load)")
	}
	return e.decisions, nil
}

// prepareDecisions prepares the retention, dsar and deadlines queries.
// Called by Load after the consent and authz queries are prepared.
func (e *Engine) prepareDecisions(ctx context.Context, compiler *ast.Compiler, store storage.Store) error {
	prep := func(q string) (rego.PreparedEvalQuery, error) {
		pq, err := rego.New(rego.Query(q), rego.Compiler(compiler), rego.Store(store), rego.StoreReadAST(true)).PrepareForEval(ctx)
		if err != nil {
			return pq, fmt.Errorf("policy: prepare %s: %w", q, err)
		}
		return pq, nil
	}
	dq := &decisionQueries{}
	var err error
	if dq.retentionQ, err = prep("data.steward.retention.decision"); err != nil {
		return err
	}
	if dq.dsarQ, err = prep("data.steward.dsar.decision"); err != nil {
		return err
	}
	if dq.deadlineQ, err = prep("data.steward.deadlines.decision"); err != nil {
		return err
	}
	if dq.workflowQ, err = prep("data.steward.dsar.workflow"); err != nil {
		return err
	}
	if dq.schedule, err = decodeSchedule(e.data, e.Products); err != nil {
		return err
	}
	dq.retentionDays = make(map[string]int, len(dq.schedule.Rules))
	for id, r := range dq.schedule.Rules {
		dq.retentionDays[id] = -1
		if r.Days != nil {
			dq.retentionDays[id] = *r.Days
		}
	}
	dq.deadlineJurisdictions, dq.deadlineRegimes = map[string]bool{}, map[string]bool{}
	dl, _ := e.data["deadlines"].(map[string]any)
	jr, _ := dl["jurisdiction_regimes"].(map[string]any)
	for j := range jr {
		dq.deadlineJurisdictions[strings.ToUpper(j)] = true
	}
	regimes, _ := dl["regimes"].(map[string]any)
	if _, ok := regimes["default"]; !ok {
		return errors.New("policy: data/deadlines.json: a \"default\" regime is required")
	}
	for r := range regimes {
		dq.deadlineRegimes[r] = true
	}
	e.decisions = dq

	// Smoke-evaluate, as Load does for consent: every retention rule (fresh
	// and expired), every request type on a plain field and every regime's
	// deadline for every request type must decide, or the bundle is refused
	// at load rather than on the first request.
	for _, r := range sortedKeys(dq.retentionDays) {
		for _, in := range []RetentionInput{{Rule: r}, {Rule: r, AgeDays: max(dq.retentionDays[r], 0), Withdrawn: true, AccountDeleted: true}} {
			if _, err := e.evalRetention(ctx, dq, in); err != nil {
				return fmt.Errorf("policy: retention smoke test: %w", err)
			}
		}
	}
	for _, rt := range RequestTypes() {
		in := DSARInput{RequestType: rt, Regime: "default", Field: DSARField{Category: "user.contact.email"}}
		if _, err := e.evalDSAR(ctx, dq, in); err != nil {
			return fmt.Errorf("policy: dsar smoke test: %w", err)
		}
	}
	// There are six request types and four channels: every workflow
	// decision is made now, so a bundle that cannot decide one is refused at
	// load.
	dq.workflow = make(map[string]Workflow, len(RequestTypes())*len(channels))
	for _, rt := range RequestTypes() {
		for _, ch := range channels {
			w, err := evalWorkflow(ctx, dq, rt, ch)
			if err != nil {
				return fmt.Errorf("policy: workflow smoke test: %w", err)
			}
			dq.workflow[rt+"\x00"+ch] = w
		}
	}
	for _, r := range sortedKeys(dq.deadlineRegimes) {
		for _, rt := range RequestTypes() {
			if _, err := e.evalDeadline(ctx, dq, deadlineKey{Regime: r, RequestType: rt}); err != nil {
				return fmt.Errorf("policy: deadlines smoke test: %w", err)
			}
		}
	}
	return nil
}

// RequestTypes lists the data-subject request types the dsar and deadlines
// policies decide.
func RequestTypes() []string {
	return []string{"access", "export", "erasure", "rectification", "restriction", "objection"}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// RetentionSchedule is data/retention.json: one rule per retention promise
// of the privacy policies, with what survives an erasure and how fields are
// masked.
type RetentionSchedule struct {
	DeletionRequestDays     int                      `json:"deletion_request_days"`
	DeletionRequestCitation string                   `json:"deletion_request_citation"`
	Masking                 Masking                  `json:"masking"`
	Rules                   map[string]RetentionRule `json:"rules"`
	ControlPlane            ControlPlaneRetention    `json:"control_plane"`
}

// ControlPlaneRetention is how long Steward keeps personal data of its own:
// the same sweeps that enforce the data map's rules remove it.
type ControlPlaneRetention struct {
	// VerificationDays: a verification code goes this long after it
	// expired, a code send's rate-limit entry this long after the send.
	VerificationDays int `json:"verification_days"`
	// ClosedRequestDays: a closed request (completed, denied, canceled)
	// loses its personal data this long after it closed — contact, sealed
	// details, identities, disclosed records and files — keeping the
	// request itself (type, dates, outcome) as evidence of compliance.
	ClosedRequestDays int `json:"closed_request_days"`
	// ConsentDetailDays: a consent event's user agent and IP hash (how
	// and from where a choice was made) go this long after the event; the
	// event itself (who, which purpose, which notice, when) stays as the
	// proof of consent or refusal the ledger exists for.
	ConsentDetailDays int `json:"consent_detail_days"`
	// WebhookDeliveryDays: a sent webhook (its sealed body may name the
	// person, for endpoints allowed identities) and its attempts go this
	// long after it was queued, once delivered or given up; 0 means 30.
	WebhookDeliveryDays int    `json:"webhook_delivery_days,omitempty"`
	Citation            string `json:"citation"`
	Note                string `json:"note"`
}

// Masking is the default masking strategy per data category.
type Masking struct {
	Default    string            `json:"default"`
	FixedValue string            `json:"fixed_value"`
	ByCategory map[string]string `json:"by_category"`
}

// RetentionRule is one entry of the retention schedule.
type RetentionRule struct {
	Days    *int    `json:"days"`   // nil: no fixed period
	Period  *string `json:"period"` // the period as the policy words it, "5 years"
	Until   *string `json:"until"`  // account_deletion, withdrawal or nil
	Action  string  `json:"action"` // delete or anonymize, when retention ends
	Basis   string  `json:"basis"`
	Product string  `json:"product"` // web, bot or both
	// Rectification is how its records take a correction: applies (in
	// place), records (never rewritten: logs, ledgers) or amend (current data
	// corrected, issued documents amended by a referring document).
	Rectification string            `json:"rectification"`
	Citation      string            `json:"citation"`
	Note          string            `json:"note"`
	Mask          map[string]string `json:"mask"` // category prefix -> strategy, for anonymize and erasure
	Erasure       *ErasureException `json:"erasure"`
	// OptOut, when set, cites a policy promise that anyone may opt out of
	// this processing, whatever their law: an objection always stops it.
	OptOut string `json:"opt_out,omitempty"`
}

// ErasureException is what of a rule's records survives an erasure request.
type ErasureException struct {
	Exception      string   `json:"exception"`       // legal_obligation, legal_claims or opt_out_record
	KeepCategories []string `json:"keep_categories"` // categories still needed; the rest are masked
	Basis          string   `json:"basis"`
	Until          string   `json:"until"`
}

var (
	retentionActions   = map[string]bool{"delete": true, "anonymize": true}
	retentionUntil     = map[string]bool{"account_deletion": true, "withdrawal": true}
	retentionBases     = map[string]bool{"contract": true, "legal_obligation": true, "legitimate_interests": true, "consent": true}
	rectificationModes = map[string]bool{"applies": true, "records": true, "amend": true}
	maskStrategies     = map[string]bool{"null": true, "fixed": true, "keyed_hash": true, "pseudonym": true, "truncate_date": true}
	erasureExceptions  = map[string]bool{"legal_obligation": true, "legal_claims": true, "opt_out_record": true}
	errRetentionPrefix = "policy: data/retention.json"
)

// AllProducts is a retention rule's product when the rule applies to every
// product of the bundle.
const AllProducts = "both"

// decodeSchedule decodes data/retention.json strictly and checks every rule,
// naming the rule and field of a bad edit; a rule's product is one of
// products or AllProducts.
func decodeSchedule(data map[string]any, products map[string]Product) (RetentionSchedule, error) {
	var s RetentionSchedule
	v, ok := data["retention"]
	if !ok {
		return s, fmt.Errorf("%s is missing", errRetentionPrefix)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return s, fmt.Errorf("%s: %w", errRetentionPrefix, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%s: %w", errRetentionPrefix, err)
	}
	if s.DeletionRequestDays <= 0 || s.DeletionRequestCitation == "" {
		return s, fmt.Errorf("%s: deletion_request_days and deletion_request_citation are required", errRetentionPrefix)
	}
	if len(s.Rules) == 0 {
		return s, fmt.Errorf("%s: no retention rules", errRetentionPrefix)
	}
	if cp := s.ControlPlane; cp.VerificationDays <= 0 || cp.ClosedRequestDays <= 0 || cp.ConsentDetailDays <= 0 || cp.Citation == "" {
		return s, fmt.Errorf("%s: control_plane: verification_days, closed_request_days and consent_detail_days must be positive, with a citation", errRetentionPrefix)
	}
	checkMask := func(where string, m map[string]string) error {
		for c, st := range m {
			if !maskStrategies[st] {
				return fmt.Errorf("%s: %s: category %q: unknown masking strategy %q", errRetentionPrefix, where, c, st)
			}
		}
		return nil
	}
	if !maskStrategies[s.Masking.Default] {
		return s, fmt.Errorf("%s: masking: unknown default strategy %q", errRetentionPrefix, s.Masking.Default)
	}
	if err := checkMask("masking", s.Masking.ByCategory); err != nil {
		return s, err
	}
	for id, r := range s.Rules {
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%s: rule %q: %s", errRetentionPrefix, id, fmt.Sprintf(format, args...))
		}
		switch {
		case !identRe.MatchString(id):
			return s, bad("name must be lowercase letters, digits and _")
		case (r.Days == nil) != (r.Period == nil):
			return s, bad("days and period go together")
		case r.Days != nil && *r.Days <= 0:
			return s, bad("days must be positive")
		case r.Until != nil && !retentionUntil[*r.Until]:
			return s, bad("until %q is not account_deletion, withdrawal or null", *r.Until)
		case !retentionActions[r.Action]:
			return s, bad("action %q is not delete or anonymize", r.Action)
		case !retentionBases[r.Basis]:
			return s, bad("unknown basis %q", r.Basis)
		case r.Product != AllProducts && !hasKey(products, r.Product):
			return s, bad("product %q is not a product of data/products.json nor %q (every product)", r.Product, AllProducts)
		case !rectificationModes[r.Rectification]:
			return s, bad("rectification %q is not applies, records or amend", r.Rectification)
		case r.Citation == "":
			return s, bad("citation is required: quote the policy sentence the rule implements")
		}
		if err := checkMask(fmt.Sprintf("rule %q: mask", id), r.Mask); err != nil {
			return s, err
		}
		if x := r.Erasure; x != nil && (!erasureExceptions[x.Exception] || len(x.KeepCategories) == 0 || x.Basis == "" || x.Until == "") {
			return s, bad("erasure needs an exception (legal_obligation, legal_claims or opt_out_record), keep_categories, basis and until")
		}
	}
	return s, nil
}

// RetentionSchedule returns the loaded retention schedule (for reports and
// the retention sweeper); the zero value if the engine was not made by Load.
// It is shared: do not modify it.
func (e *Engine) RetentionSchedule() RetentionSchedule {
	dq, err := e.decisionQ()
	if err != nil {
		return RetentionSchedule{}
	}
	return dq.schedule
}

// decode turns a policy result into the typed decision through JSON: the
// result is small and only decoded on a memo miss.
func decode(rs rego.ResultSet, v any) (bool, error) {
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return false, nil
	}
	b, err := json.Marshal(rs[0].Expressions[0].Value)
	if err != nil {
		return false, err
	}
	return true, json.Unmarshal(b, v)
}

// --- retention ----------------------------------------------------------------

// RetentionInput is one record (or a dataset's oldest record) to judge
// against the retention schedule. It is comparable: it is the memo key.
type RetentionInput struct {
	Rule           string // a rule id from data/retention.json, e.g. "payments"
	AgeDays        int    // days since the record date
	LegalHold      bool
	Withdrawn      bool // the consent the record depends on was withdrawn
	AccountDeleted bool
}

// RetentionDecision is policies/retention.rego's answer.
type RetentionDecision struct {
	Action   string `json:"action"`   // keep, delete or anonymize
	Rule     string `json:"rule"`     // the clause that decided, e.g. retention_period_elapsed
	Schedule string `json:"schedule"` // the retention rule id, e.g. payments
	Basis    string `json:"basis"`    // legal basis for keeping it
	Citation string `json:"citation"` // the privacy-policy sentence the rule implements
	Reason   string `json:"reason"`
	KeepDays *int   `json:"keep_days"` // the retention period; nil when it ends on an event or never
}

func (d RetentionDecision) clone() RetentionDecision {
	if d.KeepDays != nil {
		n := *d.KeepDays
		d.KeepDays = &n
	}
	return d
}

// DecideRetention returns the decision of policies/retention.rego for in.
func (e *Engine) DecideRetention(ctx context.Context, in RetentionInput) (RetentionDecision, error) {
	dq, err := e.decisionQ()
	if err != nil {
		return RetentionDecision{}, err
	}
	// The policy reads the age only as "age >= days", so every age on the
	// same side of the rule's period decides alike and shares a memo entry.
	if days, ok := dq.retentionDays[in.Rule]; ok {
		switch {
		case days < 0:
			in.AgeDays = 0
		case in.AgeDays >= days:
			in.AgeDays = days
		default:
			in.AgeDays = 0
		}
	}
	if d, ok := dq.retentionMemo.Load(in); ok {
		return d.(RetentionDecision).clone(), nil
	}
	d, err := e.evalRetention(ctx, dq, in)
	if err != nil {
		return RetentionDecision{}, err
	}
	e.remember(&dq.retentionMemo, in, d)
	return d.clone(), nil
}

func (e *Engine) evalRetention(ctx context.Context, dq *decisionQueries, in RetentionInput) (RetentionDecision, error) {
	obj := ast.NewObject(
		ast.Item(ast.StringTerm("rule"), ast.StringTerm(in.Rule)),
		ast.Item(ast.StringTerm("age_days"), ast.IntNumberTerm(in.AgeDays)),
		ast.Item(ast.StringTerm("legal_hold"), ast.BooleanTerm(in.LegalHold)),
		ast.Item(ast.StringTerm("withdrawn"), ast.BooleanTerm(in.Withdrawn)),
		ast.Item(ast.StringTerm("account_deleted"), ast.BooleanTerm(in.AccountDeleted)),
	)
	rs, err := dq.retentionQ.Eval(ctx, rego.EvalParsedInput(obj))
	if err != nil {
		return RetentionDecision{}, fmt.Errorf("retention decision: %w", err)
	}
	var d RetentionDecision
	ok, err := decode(rs, &d)
	if err != nil {
		return RetentionDecision{}, fmt.Errorf("retention decision: %w", err)
	}
	if !ok {
		return RetentionDecision{}, fmt.Errorf("retention decision: policy has no decision for retention rule %q", in.Rule)
	}
	if d.Action == "" || d.Rule == "" || d.Reason == "" {
		return RetentionDecision{}, fmt.Errorf("retention decision: rule %q: result lacks action, rule or reason", in.Rule)
	}
	return d, nil
}

// --- dsar ------------------------------------------------------------------------

// DSARField is one field of the data map, as the planner sees it.
type DSARField struct {
	System    string
	Dataset   string
	Field     string
	Category  string // fideslang-style data category, e.g. user.contact.email
	Retention string // retention rule id
	Purpose   string
	Identity  string // the identity that reaches the field
}

// DSARInput asks what a request does to one field. It is comparable: it is
// the memo key.
type DSARInput struct {
	RequestType string // access, export, erasure, rectification, restriction, objection
	Regime      string // gdpr, uk_gdpr, ccpa, lgpd, us_state, vcdpa, cpa, default
	Field       DSARField
}

// DSARDecision is policies/dsar.rego's answer for one field.
type DSARDecision struct {
	Action     string `json:"action"`     // include, delete, mask, retain or rectify
	Strategy   string `json:"strategy"`   // for mask: null, fixed, keyed_hash, pseudonym or truncate_date
	Value      string `json:"value"`      // the replacement when Strategy is fixed
	Restricted bool   `json:"restricted"` // processing must be marked restricted
	Basis      string `json:"basis"`
	Until      string `json:"until"` // how long a retained or masked record stays, "" if not kept
	Rule       string `json:"rule"`
	Citation   string `json:"citation"`
}

// DecideDSAR returns the decision of policies/dsar.rego for in.
func (e *Engine) DecideDSAR(ctx context.Context, in DSARInput) (DSARDecision, error) {
	dq, err := e.decisionQ()
	if err != nil {
		return DSARDecision{}, err
	}
	if d, ok := dq.dsarMemo.Load(in); ok {
		return d.(DSARDecision), nil
	}
	d, err := e.evalDSAR(ctx, dq, in)
	if err != nil {
		return DSARDecision{}, err
	}
	e.remember(&dq.dsarMemo, in, d)
	return d, nil
}

func (e *Engine) evalDSAR(ctx context.Context, dq *decisionQueries, in DSARInput) (DSARDecision, error) {
	f := in.Field
	field := ast.NewObject(
		ast.Item(ast.StringTerm("system"), ast.StringTerm(f.System)),
		ast.Item(ast.StringTerm("dataset"), ast.StringTerm(f.Dataset)),
		ast.Item(ast.StringTerm("field"), ast.StringTerm(f.Field)),
		ast.Item(ast.StringTerm("category"), ast.StringTerm(f.Category)),
		ast.Item(ast.StringTerm("retention"), ast.StringTerm(f.Retention)),
		ast.Item(ast.StringTerm("purpose"), ast.StringTerm(f.Purpose)),
		ast.Item(ast.StringTerm("identity"), ast.StringTerm(f.Identity)),
	)
	obj := ast.NewObject(
		ast.Item(ast.StringTerm("request_type"), ast.StringTerm(in.RequestType)),
		ast.Item(ast.StringTerm("regime"), ast.StringTerm(in.Regime)),
		ast.Item(ast.StringTerm("field"), ast.NewTerm(field)),
	)
	rs, err := dq.dsarQ.Eval(ctx, rego.EvalParsedInput(obj))
	if err != nil {
		return DSARDecision{}, fmt.Errorf("dsar decision: %w", err)
	}
	var d DSARDecision
	ok, err := decode(rs, &d)
	if err != nil {
		return DSARDecision{}, fmt.Errorf("dsar decision: %w", err)
	}
	if !ok {
		return DSARDecision{}, fmt.Errorf("dsar decision: policy has no decision for request type %q on %s.%s.%s (category %q)",
			in.RequestType, f.System, f.Dataset, f.Field, f.Category)
	}
	if d.Action == "" || d.Rule == "" {
		return DSARDecision{}, fmt.Errorf("dsar decision: %s on %s.%s.%s: result lacks action or rule", in.RequestType, f.System, f.Dataset, f.Field)
	}
	return d, nil
}

// --- deadlines -------------------------------------------------------------------

// Period is a length of time as the law states it. Unit is "days" (calendar
// days), "business_days" (Monday to Friday; public holidays are not
// skipped, which errs early) or "months" (calendar months).
type Period struct {
	Amount int    `json:"amount"`
	Unit   string `json:"unit"`
}

// After returns the end of the period that starts at t.
func (p Period) After(t time.Time) time.Time {
	switch p.Unit {
	case "months":
		return addMonths(t, p.Amount)
	case "business_days":
		for n := p.Amount; n > 0; {
			t = t.AddDate(0, 0, 1)
			if wd := t.Weekday(); wd != time.Saturday && wd != time.Sunday {
				n--
			}
		}
		return t
	default:
		return t.AddDate(0, 0, p.Amount)
	}
}

// addMonths moves t by n calendar months, ending on the same day of the
// month or, when that month is shorter, on its last day (31 January + 1
// month = 28 or 29 February; Regulation 1182/71 Art. 3(2)(c)), not
// overflowing into the next month as time.AddDate does.
func addMonths(t time.Time, n int) time.Time {
	y, m, d := t.Date()
	last := time.Date(y, m+time.Month(n)+1, 0, 0, 0, 0, 0, t.Location()).Day()
	return time.Date(y, m+time.Month(n), min(d, last), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), t.Location())
}

// Extension is how much longer a regime allows, and by when the person must
// be told.
type Extension struct {
	Period
	NoticeWithin Period `json:"notice_within"`
}

// Promise is the privacy policies' own deadline, which binds alongside the
// law's. Extendable is false when the policy names no extension (erasure).
type Promise struct {
	Period
	Extendable bool   `json:"extendable"`
	Citation   string `json:"citation"`
}

// DeadlineDecision is policies/deadlines.rego's answer.
type DeadlineDecision struct {
	Regime               string     `json:"regime"`
	RespondWithin        Period     `json:"respond_within"`
	AcknowledgeWithin    *Period    `json:"acknowledge_within"`
	Extension            *Extension `json:"extension"`
	PromisedWithin       *Promise   `json:"promised_within"`
	Verification         string     `json:"verification"` // none, reasonable, high or account_login
	Rule                 string     `json:"rule"`
	Citation             string     `json:"citation"`
	VerificationCitation string     `json:"verification_citation"`
	// PackageReview holds an access or export package for a reviewer
	// before the person is given the link (PackageReviewReason says why).
	PackageReview       bool   `json:"package_review"`
	PackageReviewReason string `json:"package_review_reason,omitempty"`
}

func (d DeadlineDecision) clone() DeadlineDecision {
	if d.AcknowledgeWithin != nil {
		p := *d.AcknowledgeWithin
		d.AcknowledgeWithin = &p
	}
	if d.Extension != nil {
		x := *d.Extension
		d.Extension = &x
	}
	if d.PromisedWithin != nil {
		p := *d.PromisedWithin
		d.PromisedWithin = &p
	}
	return d
}

// Due is when a request received at received must be answered: the earlier
// of the law's deadline and the policies' promise.
func (d DeadlineDecision) Due(received time.Time) time.Time {
	due := d.RespondWithin.After(received)
	if d.PromisedWithin != nil {
		if p := d.PromisedWithin.After(received); p.Before(due) {
			due = p
		}
	}
	return due
}

// ExtendedDue is the latest a request may be answered once extended (with
// notice by ExtensionNoticeBy). ok is false when no extension is allowed,
// in which case it returns Due. A promise that is not extendable caps it.
func (d DeadlineDecision) ExtendedDue(received time.Time) (due time.Time, ok bool) {
	if d.Extension == nil {
		return d.Due(received), false
	}
	due = d.Extension.After(d.RespondWithin.After(received))
	if d.PromisedWithin != nil && !d.PromisedWithin.Extendable {
		if p := d.PromisedWithin.After(received); p.Before(due) {
			due = p
		}
	}
	return due, true
}

// ExtensionNoticeBy is when the person must be told of an extension: within
// the regime's notice period and, since the promise says extensions are
// explained, before the promised deadline passes. ok is false when no
// extension is allowed.
func (d DeadlineDecision) ExtensionNoticeBy(received time.Time) (by time.Time, ok bool) {
	if d.Extension == nil {
		return time.Time{}, false
	}
	by = d.Extension.NoticeWithin.After(received)
	if d.PromisedWithin != nil {
		if p := d.PromisedWithin.After(received); p.Before(by) {
			by = p
		}
	}
	return by, true
}

// AcknowledgeBy is when receipt must be confirmed; ok is false when the
// regime asks for no separate acknowledgment.
func (d DeadlineDecision) AcknowledgeBy(received time.Time) (by time.Time, ok bool) {
	if d.AcknowledgeWithin == nil {
		return time.Time{}, false
	}
	return d.AcknowledgeWithin.After(received), true
}

type deadlineKey struct {
	Regime, RequestType, Jurisdiction string
}

// Deadline returns the decision of policies/deadlines.rego: the deadline
// regime for regime (a consent regime name) and jurisdiction, and its
// periods and verification level for requestType.
func (e *Engine) Deadline(ctx context.Context, regime, requestType, jurisdiction string) (DeadlineDecision, error) {
	dq, err := e.decisionQ()
	if err != nil {
		return DeadlineDecision{}, err
	}
	// Only the jurisdictions with their own deadline law change the answer;
	// every other one decides like none and shares its memo entry.
	jurisdiction = strings.ToUpper(jurisdiction)
	if !dq.deadlineJurisdictions[jurisdiction] {
		jurisdiction = ""
	}
	if !dq.deadlineRegimes[regime] {
		regime = "default"
	}
	k := deadlineKey{Regime: regime, RequestType: requestType, Jurisdiction: jurisdiction}
	if d, ok := dq.deadlineMemo.Load(k); ok {
		return d.(DeadlineDecision).clone(), nil
	}
	d, err := e.evalDeadline(ctx, dq, k)
	if err != nil {
		return DeadlineDecision{}, err
	}
	e.remember(&dq.deadlineMemo, k, d)
	return d.clone(), nil
}

func (e *Engine) evalDeadline(ctx context.Context, dq *decisionQueries, k deadlineKey) (DeadlineDecision, error) {
	obj := ast.NewObject(
		ast.Item(ast.StringTerm("regime"), ast.StringTerm(k.Regime)),
		ast.Item(ast.StringTerm("request_type"), ast.StringTerm(k.RequestType)),
		ast.Item(ast.StringTerm("jurisdiction"), ast.StringTerm(k.Jurisdiction)),
	)
	rs, err := dq.deadlineQ.Eval(ctx, rego.EvalParsedInput(obj))
	if err != nil {
		return DeadlineDecision{}, fmt.Errorf("deadline decision: %w", err)
	}
	var d DeadlineDecision
	ok, err := decode(rs, &d)
	if err != nil {
		return DeadlineDecision{}, fmt.Errorf("deadline decision: %w", err)
	}
	if !ok {
		return DeadlineDecision{}, fmt.Errorf("deadline decision: policy has no deadline for request type %q (regime %q, jurisdiction %q)", k.RequestType, k.Regime, k.Jurisdiction)
	}
	if d.Regime == "" || d.Rule == "" {
		return DeadlineDecision{}, fmt.Errorf("deadline decision: %s under %s: result lacks regime or rule", k.RequestType, k.Regime)
	}
	periods := []*Period{&d.RespondWithin, d.AcknowledgeWithin}
	if d.Extension != nil {
		periods = append(periods, &d.Extension.Period, &d.Extension.NoticeWithin)
	}
	if d.PromisedWithin != nil {
		periods = append(periods, &d.PromisedWithin.Period)
	}
	for _, p := range periods {
		if p != nil && (!validUnits[p.Unit] || p.Amount < 0) {
			return DeadlineDecision{}, fmt.Errorf("deadline decision: %s under %s: bad period %d %q", k.RequestType, d.Regime, p.Amount, p.Unit)
		}
	}
	return d, nil
}

var validUnits = map[string]bool{"days": true, "business_days": true, "months": true}

// --- workflow --------------------------------------------------------------------

// Workflow is policies/dsar.rego's answer to how a request type is handled:
// whether a reviewer approves it before anything runs.
type Workflow struct {
	ApprovalRequired bool   `json:"approval_required"`
	Rule             string `json:"rule"`
	Reason           string `json:"reason"`
}

// channels are the ways a request arrives (dsar's channel names): the
// workflow may differ by channel (an agent's request is reviewed first).
var channels = []string{"web", "bot", "staff", "agent"}

// DecideWorkflow returns the workflow decision for a request type arriving
// through channel.
func (e *Engine) DecideWorkflow(requestType, channel string) (Workflow, error) {
	dq, err := e.decisionQ()
	if err != nil {
		return Workflow{}, err
	}
	w, ok := dq.workflow[requestType+"\x00"+channel]
	if !ok {
		return Workflow{}, fmt.Errorf("workflow decision: unknown request type %q or channel %q", requestType, channel)
	}
	return w, nil
}

func evalWorkflow(ctx context.Context, dq *decisionQueries, requestType, channel string) (Workflow, error) {
	obj := ast.NewObject(ast.Item(ast.StringTerm("request_type"), ast.StringTerm(requestType)),
		ast.Item(ast.StringTerm("channel"), ast.StringTerm(channel)))
	rs, err := dq.workflowQ.Eval(ctx, rego.EvalParsedInput(obj))
	if err != nil {
		return Workflow{}, fmt.Errorf("workflow decision: %w", err)
	}
	var w Workflow
	ok, err := decode(rs, &w)
	if err != nil {
		return Workflow{}, fmt.Errorf("workflow decision: %w", err)
	}
	if !ok || w.Rule == "" || w.Reason == "" {
		return Workflow{}, fmt.Errorf("workflow decision: policy has no complete decision for request type %q", requestType)
	}
	return w, nil
}

// RegimeFor maps a country ("DE") or subdivision ("US-CA") code to the
// regime name, as policies/consent.rego does: a subdivision wins over its
// country, anything unmapped is "default".
func (e *Engine) RegimeFor(region string) string {
	j, _ := e.data["jurisdictions"].(map[string]any)
	region = strings.ToUpper(strings.TrimSpace(region))
	if subs, ok := j["subdivisions"].(map[string]any); ok {
		if r, ok := subs[region].(string); ok {
			return r
		}
	}
	if cs, ok := j["countries"].(map[string]any); ok {
		if r, ok := cs[strings.SplitN(region, "-", 2)[0]].(string); ok {
			return r
		}
	}
	return "default"
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}
