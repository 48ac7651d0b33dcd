package api_test

// Fakes of the services the API fronts, in the style of
// benbjohnson/wtf's mock package: a struct per interface whose methods call
// a function field. A method whose field is nil is not expected to be
// called: it still records the call (so "the service was not called" fails)
// and returns an error the server renders as a 500.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/exports"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/retention"
	"github.com/steward-privacy/steward/internal/testutil"
	"github.com/steward-privacy/steward/policies"
)

// calls records, in order, the service methods a request reached.
type calls struct {
	mu    sync.Mutex
	names []string
}

func (c *calls) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.names = append(c.names, name)
}

func (c *calls) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.names...)
}

func notStubbed(name string) error { return fmt.Errorf("fake: %s called but not stubbed", name) }

// engine is the real embedded policy bundle, loaded once per test binary:
// authorization is decided by the real authz.rego and roles.json.
var engine = sync.OnceValues(func() (*policy.Engine, error) {
	return policy.Load(context.Background(), policies.FS)
})

// ConsentService fakes api.ConsentService. Engine is not recorded as a call:
// it is the policy bundle, not a service operation.
type ConsentService struct {
	calls           *calls
	RecordFn        func(ctx context.Context, in consent.RecordInput) (consent.Event, error)
	CurrentFn       func(ctx context.Context, subj identity.Subject) ([]consent.PurposeState, error)
	HistoryFn       func(ctx context.Context, subj identity.Subject, cursor string, limit int) ([]consent.Event, string, error)
	CheckFn         func(ctx context.Context, in consent.CheckInput) (policy.Decision, error)
	ValidateCheckFn func(in *consent.CheckInput, field string) error
	CheckBatchFn    func(ctx context.Context, ins []consent.CheckInput) ([]policy.Decision, error)
	EventFn         func(ctx context.Context, id string) (consent.Event, error)
	EngineFn        func() *policy.Engine
}

var _ api.ConsentService = (*ConsentService)(nil)

func (s *ConsentService) Record(ctx context.Context, in consent.RecordInput) (consent.Event, error) {
	s.calls.add("Consent.Record")
	if s.RecordFn == nil {
		return consent.Event{}, notStubbed("Consent.Record")
	}
	return s.RecordFn(ctx, in)
}

func (s *ConsentService) Current(ctx context.Context, subj identity.Subject) ([]consent.PurposeState, error) {
	s.calls.add("Consent.Current")
	if s.CurrentFn == nil {
		return nil, notStubbed("Consent.Current")
	}
	return s.CurrentFn(ctx, subj)
}

func (s *ConsentService) History(ctx context.Context, subj identity.Subject, cursor string, limit int) ([]consent.Event, string, error) {
	s.calls.add("Consent.History")
	if s.HistoryFn == nil {
		return nil, "", notStubbed("Consent.History")
	}
	return s.HistoryFn(ctx, subj, cursor, limit)
}

func (s *ConsentService) Check(ctx context.Context, in consent.CheckInput) (policy.Decision, error) {
	s.calls.add("Consent.Check")
	if s.CheckFn == nil {
		return policy.Decision{}, notStubbed("Consent.Check")
	}
	return s.CheckFn(ctx, in)
}

func (s *ConsentService) ValidateCheck(in *consent.CheckInput, field string) error {
	s.calls.add("Consent.ValidateCheck")
	if s.ValidateCheckFn == nil {
		return notStubbed("Consent.ValidateCheck")
	}
	return s.ValidateCheckFn(in, field)
}

func (s *ConsentService) CheckBatch(ctx context.Context, ins []consent.CheckInput) ([]policy.Decision, error) {
	s.calls.add("Consent.CheckBatch")
	if s.CheckBatchFn == nil {
		return nil, notStubbed("Consent.CheckBatch")
	}
	return s.CheckBatchFn(ctx, ins)
}

func (s *ConsentService) Event(ctx context.Context, id string) (consent.Event, error) {
	s.calls.add("Consent.Event")
	if s.EventFn == nil {
		return consent.Event{}, notStubbed("Consent.Event")
	}
	return s.EventFn(ctx, id)
}

func (s *ConsentService) Engine() *policy.Engine { return s.EngineFn() }

// KeyAuthenticator fakes api.KeyAuthenticator.
type KeyAuthenticator struct {
	AuthenticateFn func(ctx context.Context, secret string) (apikey.Key, error)
}

func (k *KeyAuthenticator) Authenticate(ctx context.Context, secret string) (apikey.Key, error) {
	return k.AuthenticateFn(ctx, secret)
}

// Authorizer fakes api.Authorizer.
type Authorizer struct {
	AuthorizeFn func(ctx context.Context, role, action string, kinds []string) (policy.AuthzDecision, error)
}

func (a *Authorizer) Authorize(ctx context.Context, role, action string, kinds []string) (policy.AuthzDecision, error) {
	return a.AuthorizeFn(ctx, role, action, kinds)
}

// RequestService fakes api.RequestService.
type RequestService struct {
	calls                *calls
	CreateFn             func(ctx context.Context, in dsar.CreateInput) (dsar.Created, error)
	VerifyFn             func(ctx context.Context, id, code string) (dsar.VerifyResult, error)
	ResendCodeFn         func(ctx context.Context, id, ip string) error
	StatusFn             func(ctx context.Context, id, token string) (dsar.PublicStatus, error)
	ListFn               func(ctx context.Context, f dsar.Filter) ([]dsar.Request, string, error)
	GetFn                func(ctx context.Context, id string) (dsar.Detail, error)
	ReportFn             func(ctx context.Context, id string) (dsar.Report, error)
	RevealIdentitiesFn   func(ctx context.Context, id, actor string) ([]string, error)
	OpenDocumentFn       func(ctx context.Context, id, kind, actor string) (dsar.Document, error)
	RecipientsFn         func(ctx context.Context, id string) ([]dsar.Recipient, error)
	RecipientToldFn      func(ctx context.Context, id, system, actor, note string) (dsar.Recipient, error)
	ApproveFn            func(ctx context.Context, id, actor, note string) (dsar.Request, error)
	DenyFn               func(ctx context.Context, id, actor, reason string) (dsar.Request, error)
	ExtendFn             func(ctx context.Context, id, actor, reason string) (dsar.Request, error)
	CancelFn             func(ctx context.Context, id, actor, reason string) (dsar.Request, error)
	PauseFn              func(ctx context.Context, id, actor, reason string) (dsar.Request, error)
	ResumeFn             func(ctx context.Context, id, actor string) (dsar.Request, error)
	RetryPlanFn          func(ctx context.Context, id, actor string) (dsar.Request, error)
	ReplanFn             func(ctx context.Context, id, actor, note string, add []identity.Subject) (dsar.Request, error)
	RetryTaskFn          func(ctx context.Context, id, taskID, actor string) (dsar.Request, error)
	CompleteManualTaskFn func(ctx context.Context, id, taskID, actor, note string) (dsar.Request, error)
	AcknowledgeReviewFn  func(ctx context.Context, id, taskID, actor, note string) (dsar.Request, error)
	ChallengeLoginFn     func(ctx context.Context, id, token string) (dsar.VerifyResult, error)
	VerifyInvoiceFn      func(ctx context.Context, id, statusToken, ref string) (dsar.Request, error)
	ReviewDocumentFn     func(ctx context.Context, id, kind, actor, note string) (dsar.Request, error)
	ReleasePackageFn     func(ctx context.Context, id, actor, note string) (dsar.Request, error)
}

func (s *RequestService) ChallengeLogin(ctx context.Context, id, token string) (dsar.VerifyResult, error) {
	s.calls.add("Requests.ChallengeLogin")
	if s.ChallengeLoginFn == nil {
		return dsar.VerifyResult{}, notStubbed("Requests.ChallengeLogin")
	}
	return s.ChallengeLoginFn(ctx, id, token)
}

func (s *RequestService) VerifyInvoice(ctx context.Context, id, statusToken, ref string) (dsar.Request, error) {
	s.calls.add("Requests.VerifyInvoice")
	if s.VerifyInvoiceFn == nil {
		return dsar.Request{}, notStubbed("Requests.VerifyInvoice")
	}
	return s.VerifyInvoiceFn(ctx, id, statusToken, ref)
}

func (s *RequestService) ReviewDocument(ctx context.Context, id, kind, actor, note string) (dsar.Request, error) {
	s.calls.add("Requests.ReviewDocument")
	if s.ReviewDocumentFn == nil {
		return dsar.Request{}, notStubbed("Requests.ReviewDocument")
	}
	return s.ReviewDocumentFn(ctx, id, kind, actor, note)
}

func (s *RequestService) ReleasePackage(ctx context.Context, id, actor, note string) (dsar.Request, error) {
	s.calls.add("Requests.ReleasePackage")
	if s.ReleasePackageFn == nil {
		return dsar.Request{}, notStubbed("Requests.ReleasePackage")
	}
	return s.ReleasePackageFn(ctx, id, actor, note)
}

var _ api.RequestService = (*RequestService)(nil)

func (s *RequestService) Create(ctx context.Context, in dsar.CreateInput) (dsar.Created, error) {
	s.calls.add("Requests.Create")
	if s.CreateFn == nil {
		return dsar.Created{}, notStubbed("Requests.Create")
	}
	return s.CreateFn(ctx, in)
}

func (s *RequestService) Verify(ctx context.Context, id, code string) (dsar.VerifyResult, error) {
	s.calls.add("Requests.Verify")
	if s.VerifyFn == nil {
		return dsar.VerifyResult{}, notStubbed("Requests.Verify")
	}
	return s.VerifyFn(ctx, id, code)
}

func (s *RequestService) ResendCode(ctx context.Context, id, ip string) error {
	s.calls.add("Requests.ResendCode")
	if s.ResendCodeFn == nil {
		return notStubbed("Requests.ResendCode")
	}
	return s.ResendCodeFn(ctx, id, ip)
}

func (s *RequestService) Status(ctx context.Context, id, token string) (dsar.PublicStatus, error) {
	s.calls.add("Requests.Status")
	if s.StatusFn == nil {
		return dsar.PublicStatus{}, notStubbed("Requests.Status")
	}
	return s.StatusFn(ctx, id, token)
}

func (s *RequestService) List(ctx context.Context, f dsar.Filter) ([]dsar.Request, string, error) {
	s.calls.add("Requests.List")
	if s.ListFn == nil {
		return nil, "", notStubbed("Requests.List")
	}
	return s.ListFn(ctx, f)
}

func (s *RequestService) Get(ctx context.Context, id string) (dsar.Detail, error) {
	s.calls.add("Requests.Get")
	if s.GetFn == nil {
		return dsar.Detail{}, notStubbed("Requests.Get")
	}
	return s.GetFn(ctx, id)
}

func (s *RequestService) Report(ctx context.Context, id string) (dsar.Report, error) {
	s.calls.add("Requests.Report")
	if s.ReportFn == nil {
		return dsar.Report{}, notStubbed("Requests.Report")
	}
	return s.ReportFn(ctx, id)
}

func (s *RequestService) RevealIdentities(ctx context.Context, id, actor string) ([]string, error) {
	s.calls.add("Requests.RevealIdentities")
	if s.RevealIdentitiesFn == nil {
		return nil, notStubbed("Requests.RevealIdentities")
	}
	return s.RevealIdentitiesFn(ctx, id, actor)
}

func (s *RequestService) OpenDocument(ctx context.Context, id, kind, actor string) (dsar.Document, error) {
	s.calls.add("Requests.OpenDocument")
	if s.OpenDocumentFn == nil {
		return dsar.Document{}, notStubbed("Requests.OpenDocument")
	}
	return s.OpenDocumentFn(ctx, id, kind, actor)
}

func (s *RequestService) Recipients(ctx context.Context, id string) ([]dsar.Recipient, error) {
	s.calls.add("Requests.Recipients")
	if s.RecipientsFn == nil {
		return nil, notStubbed("Requests.Recipients")
	}
	return s.RecipientsFn(ctx, id)
}

func (s *RequestService) RecipientTold(ctx context.Context, id, system, actor, note string) (dsar.Recipient, error) {
	s.calls.add("Requests.RecipientTold")
	if s.RecipientToldFn == nil {
		return dsar.Recipient{}, notStubbed("Requests.RecipientTold")
	}
	return s.RecipientToldFn(ctx, id, system, actor, note)
}

func (s *RequestService) Approve(ctx context.Context, id, actor, note string) (dsar.Request, error) {
	s.calls.add("Requests.Approve")
	if s.ApproveFn == nil {
		return dsar.Request{}, notStubbed("Requests.Approve")
	}
	return s.ApproveFn(ctx, id, actor, note)
}

func (s *RequestService) Deny(ctx context.Context, id, actor, reason string) (dsar.Request, error) {
	s.calls.add("Requests.Deny")
	if s.DenyFn == nil {
		return dsar.Request{}, notStubbed("Requests.Deny")
	}
	return s.DenyFn(ctx, id, actor, reason)
}

func (s *RequestService) Extend(ctx context.Context, id, actor, reason string) (dsar.Request, error) {
	s.calls.add("Requests.Extend")
	if s.ExtendFn == nil {
		return dsar.Request{}, notStubbed("Requests.Extend")
	}
	return s.ExtendFn(ctx, id, actor, reason)
}

func (s *RequestService) Cancel(ctx context.Context, id, actor, reason string) (dsar.Request, error) {
	s.calls.add("Requests.Cancel")
	if s.CancelFn == nil {
		return dsar.Request{}, notStubbed("Requests.Cancel")
	}
	return s.CancelFn(ctx, id, actor, reason)
}

func (s *RequestService) Pause(ctx context.Context, id, actor, reason string) (dsar.Request, error) {
	s.calls.add("Requests.Pause")
	if s.PauseFn == nil {
		return dsar.Request{}, notStubbed("Requests.Pause")
	}
	return s.PauseFn(ctx, id, actor, reason)
}

func (s *RequestService) Resume(ctx context.Context, id, actor string) (dsar.Request, error) {
	s.calls.add("Requests.Resume")
	if s.ResumeFn == nil {
		return dsar.Request{}, notStubbed("Requests.Resume")
	}
	return s.ResumeFn(ctx, id, actor)
}

func (s *RequestService) RetryPlan(ctx context.Context, id, actor string) (dsar.Request, error) {
	s.calls.add("Requests.RetryPlan")
	if s.RetryPlanFn == nil {
		return dsar.Request{}, notStubbed("Requests.RetryPlan")
	}
	return s.RetryPlanFn(ctx, id, actor)
}

func (s *RequestService) Replan(ctx context.Context, id, actor, note string, add []identity.Subject) (dsar.Request, error) {
	s.calls.add("Requests.Replan")
	if s.ReplanFn == nil {
		return dsar.Request{}, notStubbed("Requests.Replan")
	}
	return s.ReplanFn(ctx, id, actor, note, add)
}

func (s *RequestService) RetryTask(ctx context.Context, id, taskID, actor string) (dsar.Request, error) {
	s.calls.add("Requests.RetryTask")
	if s.RetryTaskFn == nil {
		return dsar.Request{}, notStubbed("Requests.RetryTask")
	}
	return s.RetryTaskFn(ctx, id, taskID, actor)
}

func (s *RequestService) CompleteManualTask(ctx context.Context, id, taskID, actor, note string) (dsar.Request, error) {
	s.calls.add("Requests.CompleteManualTask")
	if s.CompleteManualTaskFn == nil {
		return dsar.Request{}, notStubbed("Requests.CompleteManualTask")
	}
	return s.CompleteManualTaskFn(ctx, id, taskID, actor, note)
}

func (s *RequestService) AcknowledgeReview(ctx context.Context, id, taskID, actor, note string) (dsar.Request, error) {
	s.calls.add("Requests.AcknowledgeReview")
	if s.AcknowledgeReviewFn == nil {
		return dsar.Request{}, notStubbed("Requests.AcknowledgeReview")
	}
	return s.AcknowledgeReviewFn(ctx, id, taskID, actor, note)
}

// ExportStore fakes api.ExportStore.
type ExportStore struct {
	calls          *calls
	OpenFn         func(ctx context.Context, token string) (exports.Package, io.ReadCloser, error)
	OpenForStaffFn func(ctx context.Context, requestID, actor string) (exports.Package, io.ReadCloser, error)
}

var _ api.ExportStore = (*ExportStore)(nil)

func (s *ExportStore) Open(ctx context.Context, token string) (exports.Package, io.ReadCloser, error) {
	s.calls.add("Exports.Open")
	if s.OpenFn == nil {
		return exports.Package{}, nil, notStubbed("Exports.Open")
	}
	return s.OpenFn(ctx, token)
}

func (s *ExportStore) OpenForStaff(ctx context.Context, requestID, actor string) (exports.Package, io.ReadCloser, error) {
	s.calls.add("Exports.OpenForStaff")
	if s.OpenForStaffFn == nil {
		return exports.Package{}, nil, notStubbed("Exports.OpenForStaff")
	}
	return s.OpenForStaffFn(ctx, requestID, actor)
}

// RetentionService fakes api.RetentionService.
type RetentionService struct {
	calls        *calls
	PlanFn       func(ctx context.Context, dataset string) ([]retention.PlanItem, error)
	StartFn      func(ctx context.Context, o retention.RunOptions) (retention.Run, error)
	ListRunsFn   func(ctx context.Context, limit int) ([]retention.Run, error)
	GetRunFn     func(ctx context.Context, id string) (retention.Run, error)
	ListHoldsFn  func(ctx context.Context, all bool) ([]retention.Hold, error)
	CreateHoldFn func(ctx context.Context, in retention.HoldInput, actor string) (retention.Hold, error)
	GetHoldFn    func(ctx context.Context, id string) (retention.Hold, error)
	LiftHoldFn   func(ctx context.Context, id, reason, actor string) (retention.Hold, error)
}

var _ api.RetentionService = (*RetentionService)(nil)

func (s *RetentionService) Plan(ctx context.Context, dataset string) ([]retention.PlanItem, error) {
	s.calls.add("Retention.Plan")
	if s.PlanFn == nil {
		return nil, notStubbed("Retention.Plan")
	}
	return s.PlanFn(ctx, dataset)
}

func (s *RetentionService) Start(ctx context.Context, o retention.RunOptions) (retention.Run, error) {
	s.calls.add("Retention.Start")
	if s.StartFn == nil {
		return retention.Run{}, notStubbed("Retention.Start")
	}
	return s.StartFn(ctx, o)
}

func (s *RetentionService) ListRuns(ctx context.Context, limit int) ([]retention.Run, error) {
	s.calls.add("Retention.ListRuns")
	if s.ListRunsFn == nil {
		return nil, notStubbed("Retention.ListRuns")
	}
	return s.ListRunsFn(ctx, limit)
}

func (s *RetentionService) GetRun(ctx context.Context, id string) (retention.Run, error) {
	s.calls.add("Retention.GetRun")
	if s.GetRunFn == nil {
		return retention.Run{}, notStubbed("Retention.GetRun")
	}
	return s.GetRunFn(ctx, id)
}

func (s *RetentionService) ListHolds(ctx context.Context, all bool) ([]retention.Hold, error) {
	s.calls.add("Retention.ListHolds")
	if s.ListHoldsFn == nil {
		return nil, notStubbed("Retention.ListHolds")
	}
	return s.ListHoldsFn(ctx, all)
}

func (s *RetentionService) CreateHold(ctx context.Context, in retention.HoldInput, actor string) (retention.Hold, error) {
	s.calls.add("Retention.CreateHold")
	if s.CreateHoldFn == nil {
		return retention.Hold{}, notStubbed("Retention.CreateHold")
	}
	return s.CreateHoldFn(ctx, in, actor)
}

func (s *RetentionService) GetHold(ctx context.Context, id string) (retention.Hold, error) {
	s.calls.add("Retention.GetHold")
	if s.GetHoldFn == nil {
		return retention.Hold{}, notStubbed("Retention.GetHold")
	}
	return s.GetHoldFn(ctx, id)
}

func (s *RetentionService) LiftHold(ctx context.Context, id, reason, actor string) (retention.Hold, error) {
	s.calls.add("Retention.LiftHold")
	if s.LiftHoldFn == nil {
		return retention.Hold{}, notStubbed("Retention.LiftHold")
	}
	return s.LiftHoldFn(ctx, id, reason, actor)
}

// AuditReader fakes api.AuditReader.
type AuditReader struct {
	calls    *calls
	ListFn   func(ctx context.Context, f audit.Filter) ([]audit.Entry, string, error)
	EachFn   func(ctx context.Context, f audit.Filter, fn func(audit.Entry) error) error
	VerifyFn func(ctx context.Context) (audit.Result, error)
}

var _ api.AuditReader = (*AuditReader)(nil)

func (a *AuditReader) List(ctx context.Context, f audit.Filter) ([]audit.Entry, string, error) {
	a.calls.add("Audit.List")
	if a.ListFn == nil {
		return nil, "", notStubbed("Audit.List")
	}
	return a.ListFn(ctx, f)
}

func (a *AuditReader) Each(ctx context.Context, f audit.Filter, fn func(audit.Entry) error) error {
	a.calls.add("Audit.Each")
	if a.EachFn == nil {
		return notStubbed("Audit.Each")
	}
	return a.EachFn(ctx, f, fn)
}

func (a *AuditReader) Verify(ctx context.Context) (audit.Result, error) {
	a.calls.add("Audit.Verify")
	if a.VerifyFn == nil {
		return audit.Result{}, notStubbed("Audit.Verify")
	}
	return a.VerifyFn(ctx)
}

// bodyLimit is the test server's body limit: room for a full consent batch,
// small enough that "too large" is cheap.
const bodyLimit = 128 << 10

// Test API keys: the secret names the role. Any other secret is refused.
func secretFor(role string) string { return "stw_test_" + role }
func keyIDFor(role string) string  { return "key_" + role }

// env is one API server in front of fresh fakes.
type env struct {
	t         *testing.T
	calls     *calls
	consent   *ConsentService
	keys      *KeyAuthenticator
	requests  *RequestService
	exports   *ExportStore
	retention *RetentionService
	audit     *AuditReader
	log       *testutil.SyncBuffer
	deps      api.Deps
	app       *fiber.App
}

// newEnv builds a server whose services are fakes and whose authorization
// is the real embedded policy. edit may change the Deps before the server
// is built (to leave a service out, or fake the authorizer).
func newEnv(t *testing.T, edit ...func(*api.Deps)) *env {
	t.Helper()
	eng, err := engine()
	if err != nil {
		t.Fatalf("load embedded policy: %v", err)
	}
	c := &calls{}
	e := &env{
		t: t, calls: c, log: &testutil.SyncBuffer{},
		consent:   &ConsentService{calls: c, EngineFn: func() *policy.Engine { return eng }},
		requests:  &RequestService{calls: c},
		exports:   &ExportStore{calls: c},
		retention: &RetentionService{calls: c},
		audit:     &AuditReader{calls: c},
	}
	e.keys = &KeyAuthenticator{AuthenticateFn: func(_ context.Context, secret string) (apikey.Key, error) {
		role, ok := strings.CutPrefix(secret, "stw_test_")
		if !ok {
			return apikey.Key{}, apikey.ErrInvalid
		}
		return apikey.Key{ID: keyIDFor(role), Role: role}, nil
	}}
	e.deps = api.Deps{
		Log:     slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Consent: e.consent, Keys: e.keys, Requests: e.requests, Exports: e.exports, Retention: e.retention, Audit: e.audit,
	}
	for _, f := range edit {
		f(&e.deps)
	}
	cfg := api.DefaultConfig()
	cfg.BodyLimit = bodyLimit
	e.app = api.New(cfg, e.deps)
	return e
}

// req describes one request. Role "" sends no Authorization header.
type req struct {
	method, path, role string
	body               string
	contentType        string // default application/json when body is set
	header             map[string]string
}

type result struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) do(r req) result {
	e.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.body != "" {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if r.role != "" {
		hr.Header.Set("Authorization", "Bearer "+secretFor(r.role))
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	res, err := e.app.Test(hr, -1)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	return result{status: res.StatusCode, header: res.Header, body: b}
}

// problem asserts the response is an RFC 9457 problem with the given status
// and code, consistent with itself and its headers, and returns it.
func (r result) problem(t *testing.T, status int, code string) api.Problem {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type = %q, want application/problem+json; body: %s", ct, r.body)
	}
	var p api.Problem
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body does not decode: %v; body: %s", err, r.body)
	}
	if p.Status != status {
		t.Errorf("problem status = %d, want %d", p.Status, status)
	}
	if string(p.Code) != code {
		t.Errorf("problem code = %q, want %q; detail: %s", p.Code, code, p.Detail)
	}
	if want := "urn:steward:problem:" + code; p.Type != want {
		t.Errorf("problem type = %q, want %q", p.Type, want)
	}
	if p.Title == "" || p.Detail == "" {
		t.Errorf("problem title %q / detail %q: want both set", p.Title, p.Detail)
	}
	if p.RequestID == "" || p.RequestID != r.header.Get("X-Request-ID") {
		t.Errorf("problem request_id = %q, X-Request-ID header = %q: want equal and set", p.RequestID, r.header.Get("X-Request-ID"))
	}
	return p
}

// ok asserts a success status and decodes the JSON body into v (if not nil).
func (r result) ok(t *testing.T, status int, v any) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body: %s", r.status, status, r.body)
	}
	if v == nil {
		return
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body does not decode: %v; body: %s", err, r.body)
	}
}

func (e *env) wantCalls(t *testing.T, want ...string) {
	t.Helper()
	got := e.calls.list()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("service calls = %q, want %q", got, want)
	}
}
