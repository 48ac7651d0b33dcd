package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/exports"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/receipt"
	"github.com/steward-privacy/steward/internal/retention"
	"github.com/steward-privacy/steward/internal/staff"
	"github.com/steward-privacy/steward/internal/web/console"
	"github.com/steward-privacy/steward/policies"
)

// Function-field fakes of the console's services: a test sets the fields
// it cares about; the rest answer something harmless.

type fakeStaff struct {
	mu     sync.Mutex
	denied []string // action|reason

	SignInPasswordFn func(email, password string) (staff.Pending, error)
	PendingFn        func(token string) (staff.Pending, error)
	SignInTOTPFn     func(token, code string) (staff.Session, error)
	AuthenticateFn   func(token string) (staff.Principal, error)
}

// A session token "tok-<role>" is a signed-in member of that role.
func principalFor(role string) staff.Principal {
	return staff.Principal{AccountID: "0f0e0d0c-0000-4000-8000-00000000000" + string('a'+rune(len(role)%6)), Email: role + "@example.com",
		Name: role, Role: role, SessionID: "s-" + role, Method: "totp"}
}

func (f *fakeStaff) SignInPassword(_ context.Context, email, password, _ string) (staff.Pending, error) {
	if f.SignInPasswordFn != nil {
		return f.SignInPasswordFn(email, password)
	}
	return staff.Pending{Token: "pending-1", TOTP: true, Expires: time.Now().Add(5 * time.Minute)}, nil
}
func (f *fakeStaff) Pending(_ context.Context, token string) (staff.Pending, error) {
	if f.PendingFn != nil {
		return f.PendingFn(token)
	}
	if token == "" {
		return staff.Pending{}, staff.ErrPendingExpired
	}
	return staff.Pending{Token: token, TOTP: true, Passkey: true, Expires: time.Now().Add(5 * time.Minute)}, nil
}
func (f *fakeStaff) SignInTOTP(_ context.Context, token, code, _ string) (staff.Session, error) {
	if f.SignInTOTPFn != nil {
		return f.SignInTOTPFn(token, code)
	}
	return staff.Session{Token: "tok-reviewer", Principal: principalFor("reviewer"), AbsoluteExpires: time.Now().Add(time.Hour)}, nil
}
func (f *fakeStaff) BeginTOTPEnrolment(context.Context, string) (staff.TOTPEnrolment, error) {
	return staff.TOTPEnrolment{Secret: "JBSWY3DPEHPK3PXP", URL: "otpauth://totp/x", QRPNG: []byte{0x89, 'P', 'N', 'G'}}, nil
}
func (f *fakeStaff) FinishTOTPEnrolment(_ context.Context, token, code, ip string) (staff.Session, error) {
	return f.SignInTOTP(context.Background(), token, code, ip)
}
func (f *fakeStaff) BeginPasskeyEnrolment(context.Context, string) ([]byte, error) {
	return []byte(`{"publicKey":{}}`), nil
}
func (f *fakeStaff) FinishPasskeyEnrolment(_ context.Context, token string, _ []byte, ip string) (staff.Session, error) {
	return f.SignInTOTP(context.Background(), token, "", ip)
}
func (f *fakeStaff) BeginPasskeySignIn(context.Context, string) ([]byte, error) {
	return []byte(`{"publicKey":{"challenge":"AAAA"}}`), nil
}
func (f *fakeStaff) FinishPasskeySignIn(_ context.Context, token string, _ []byte, ip string) (staff.Session, error) {
	return f.SignInTOTP(context.Background(), token, "", ip)
}
func (f *fakeStaff) OIDCStart(context.Context) (string, string, error) {
	return "https://idp.example.com/auth", "state-1", nil
}
func (f *fakeStaff) OIDCCallback(context.Context, string, string, string, string) (*staff.Session, *staff.Pending, error) {
	return nil, nil, staff.ErrSSO
}
func (f *fakeStaff) Authenticate(_ context.Context, token string) (staff.Principal, error) {
	if f.AuthenticateFn != nil {
		return f.AuthenticateFn(token)
	}
	role, ok := strings.CutPrefix(token, "tok-")
	if !ok {
		return staff.Principal{}, staff.ErrNoSession
	}
	return principalFor(role), nil
}
func (f *fakeStaff) SignOut(context.Context, string) error { return nil }
func (f *fakeStaff) Denied(_ context.Context, p staff.Principal, action, reason, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.denied = append(f.denied, p.Role+"|"+action+"|"+reason)
	return nil
}
func (f *fakeStaff) deniedCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.denied...)
}

const (
	reqID  = "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
	taskID = "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d"
	evID   = "11111111-2222-4333-8444-555555555555"
	holdID = "22222222-3333-4444-8555-666666666666"
	keyID  = "key_0123456789ab"
)

type actionCall struct{ Name, ID, Task, Actor, Note string }

type fakeRequests struct {
	mu     sync.Mutex
	calls  []actionCall
	ListFn func(f dsar.Filter) ([]dsar.Request, string, error)
	GetFn  func(id string) (dsar.Detail, error)
	// RecipientsFn lists a request's Art. 19 recipients (default: one
	// pending, told by staff).
	RecipientsFn func(id string) ([]dsar.Recipient, error)
	ActErr       error // returned by every action
}

func (f *fakeRequests) record(c actionCall) (dsar.Request, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, c)
	return dsar.Request{ID: c.ID}, f.ActErr
}
func (f *fakeRequests) lastCall() actionCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return actionCall{}
	}
	return f.calls[len(f.calls)-1]
}

func (f *fakeRequests) List(_ context.Context, flt dsar.Filter) ([]dsar.Request, string, error) {
	if f.ListFn != nil {
		return f.ListFn(flt)
	}
	return nil, "", nil
}
func (f *fakeRequests) Get(_ context.Context, id string) (dsar.Detail, error) {
	if f.GetFn != nil {
		return f.GetFn(id)
	}
	return detail(dsar.AwaitingApproval), nil
}
func (f *fakeRequests) Report(context.Context, string) (dsar.Report, error) {
	return dsar.Report{Complete: true, Verified: true}, nil
}
func (f *fakeRequests) RevealIdentities(_ context.Context, id, actor string) ([]string, error) {
	_, err := f.record(actionCall{Name: "reveal", ID: id, Actor: actor})
	return []string{"email:ann@example.com"}, err
}
func (f *fakeRequests) Approve(_ context.Context, id, actor, note string) (dsar.Request, error) {
	return f.record(actionCall{"approve", id, "", actor, note})
}
func (f *fakeRequests) Deny(_ context.Context, id, actor, note string) (dsar.Request, error) {
	return f.record(actionCall{"deny", id, "", actor, note})
}
func (f *fakeRequests) Extend(_ context.Context, id, actor, note string) (dsar.Request, error) {
	return f.record(actionCall{"extend", id, "", actor, note})
}
func (f *fakeRequests) Cancel(_ context.Context, id, actor, note string) (dsar.Request, error) {
	return f.record(actionCall{"cancel", id, "", actor, note})
}
func (f *fakeRequests) Pause(_ context.Context, id, actor, note string) (dsar.Request, error) {
	return f.record(actionCall{"pause", id, "", actor, note})
}
func (f *fakeRequests) Resume(_ context.Context, id, actor string) (dsar.Request, error) {
	return f.record(actionCall{"resume", id, "", actor, ""})
}
func (f *fakeRequests) RetryPlan(_ context.Context, id, actor string) (dsar.Request, error) {
	return f.record(actionCall{"retry-planning", id, "", actor, ""})
}
func (f *fakeRequests) Replan(_ context.Context, id, actor, note string, add []identity.Subject) (dsar.Request, error) {
	ids := make([]string, len(add))
	for i, s := range add {
		ids[i] = s.String()
	}
	return f.record(actionCall{"replan", id, strings.Join(ids, ","), actor, note})
}
func (f *fakeRequests) RetryTask(_ context.Context, id, task, actor string) (dsar.Request, error) {
	return f.record(actionCall{"retry", id, task, actor, ""})
}
func (f *fakeRequests) CompleteManualTask(_ context.Context, id, task, actor, note string) (dsar.Request, error) {
	return f.record(actionCall{"complete", id, task, actor, note})
}
func (f *fakeRequests) AcknowledgeReview(_ context.Context, id, task, actor, note string) (dsar.Request, error) {
	return f.record(actionCall{"acknowledge-review", id, task, actor, note})
}

func (f *fakeRequests) ReviewDocument(_ context.Context, id, kind, actor, note string) (dsar.Request, error) {
	return f.record(actionCall{"review-document", id, kind, actor, note})
}
func (f *fakeRequests) OpenDocument(_ context.Context, id, kind, actor string) (dsar.Document, error) {
	if _, err := f.record(actionCall{"open-document", id, kind, actor, ""}); err != nil {
		return dsar.Document{}, err
	}
	return dsar.Document{ContentType: "application/pdf", Content: []byte("%PDF-1.7 signed"), SHA256: "ab"}, nil
}
func (f *fakeRequests) ReleasePackage(_ context.Context, id, actor, note string) (dsar.Request, error) {
	return f.record(actionCall{"release-package", id, "", actor, note})
}
func (f *fakeRequests) Recipients(_ context.Context, id string) ([]dsar.Recipient, error) {
	if f.RecipientsFn != nil {
		return f.RecipientsFn(id)
	}
	return []dsar.Recipient{{System: "crm", Name: "CRM", Method: "staff", Status: "pending"}}, nil
}
func (f *fakeRequests) RecipientTold(_ context.Context, id, system, actor, note string) (dsar.Recipient, error) {
	_, err := f.record(actionCall{"recipient-told", id, system, actor, note})
	return dsar.Recipient{System: system, Method: "staff", Status: "done"}, err
}

// detail is a request in status st whose state offers every action the
// status allows (a failed task, a pending manual task, review items).
func detail(st dsar.Status) dsar.Detail {
	now := time.Now()
	d := dsar.Detail{Request: dsar.Request{ID: reqID, Type: "erasure", Status: st, Channel: "web", Language: "en", Region: "DE", Regime: "gdpr",
		SubjectKind: "email", ReceivedAt: now.Add(-48 * time.Hour), DueAt: now.Add(72 * time.Hour), ExtendableUntil: &now},
		Identities: []dsar.IdentityInfo{{Kind: "email", Source: "given"}},
		Tasks: []dsar.Task{
			{ID: taskID, Seq: 1, System: "app_db", Dataset: "users", Operation: "erase", Mode: dsar.ModeAutomated, Status: dsar.TaskFailed, Error: "boom"},
			{ID: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", Seq: 2, System: "crm", Operation: "erase", Mode: dsar.ModeManual, Status: dsar.TaskPending,
				Instructions: "Delete the contact in the CRM."},
		},
		Timeline: []dsar.TimelineEntry{{At: now, Event: "received", Actor: "system:api"}},
	}
	d.Tasks[0].Review = []connectors.Review{{Dataset: "orders", Reason: "shared", Records: 2}}
	return d
}

type fakePolicies struct{ e *policy.Engine }

func (f fakePolicies) Current() *policy.Engine { return f.e }

type fakePackages struct{ actor string }

func (f *fakePackages) OpenForStaff(_ context.Context, id, actor string) (exports.Package, io.ReadCloser, error) {
	f.actor = actor
	return exports.Package{RequestID: id, Size: 3, SHA256: "x"}, io.NopCloser(strings.NewReader("zip")), nil
}

type fakeConsent struct{}

func (fakeConsent) Current(context.Context, identity.Subject) ([]consent.PurposeState, error) {
	return []consent.PurposeState{{Purpose: "analytics", State: "granted"}}, nil
}
func (fakeConsent) History(context.Context, identity.Subject, string, int) ([]consent.Event, string, error) {
	return []consent.Event{{ID: evID, SubjectKind: "email", Purpose: "analytics", State: "granted", Source: "web", NoticeVersion: "1.0", RecordedAt: time.Now()}}, "", nil
}
func (fakeConsent) Event(_ context.Context, id string) (consent.Event, error) {
	return consent.Event{ID: id, SubjectKind: "email", Purpose: "analytics", State: "granted", Product: "web", NoticeVersion: "1.0", RecordedAt: time.Now()}, nil
}

type fakeReceipts struct{}

func (fakeReceipts) Sign(receipt.Receipt) (string, error) { return "eyJ.x.y", nil }

type fakeAudit struct{}

func (fakeAudit) List(context.Context, audit.Filter) ([]audit.Entry, string, error) {
	return []audit.Entry{{Seq: 1, At: time.Now(), Actor: "system:api", Action: "policy.loaded", TargetType: "policy", TargetID: "abc"}}, "", nil
}
func (fakeAudit) Checkpoints(context.Context, int) ([]audit.Checkpoint, error) {
	return []audit.Checkpoint{{Seq: 1, Hash: []byte{0xab, 0xcd}, At: time.Now(), KeyID: "audit-k1"}}, nil
}
func (fakeAudit) Verify(context.Context) (audit.Result, error) {
	return audit.Result{OK: true, Entries: 1, HeadSeq: 1, HeadHash: []byte{0xab}}, nil
}

type fakeRetention struct {
	actor string
	runs  []bool // each started run's dry_run
}

func (f *fakeRetention) Plan(context.Context, string) ([]retention.PlanItem, error) {
	return []retention.PlanItem{{System: "app_db", Dataset: "users", Rule: "r", Action: "delete", Status: "clear"}}, nil
}
func (f *fakeRetention) Start(_ context.Context, o retention.RunOptions) (retention.Run, error) {
	f.actor = o.Actor
	f.runs = append(f.runs, o.DryRun)
	return retention.Run{ID: "r1"}, nil
}
func (f *fakeRetention) ListRuns(context.Context, int) ([]retention.Run, error) { return nil, nil }
func (f *fakeRetention) ListHolds(context.Context, bool) ([]retention.Hold, error) {
	return []retention.Hold{{ID: holdID, Scope: "dataset", System: "app_db", Dataset: "users", Reason: "litigation", Active: true, CreatedAt: time.Now()}}, nil
}
func (f *fakeRetention) CreateHold(_ context.Context, in retention.HoldInput, actor string) (retention.Hold, error) {
	f.actor = actor
	return retention.Hold{ID: holdID}, nil
}
func (f *fakeRetention) LiftHold(_ context.Context, id, _, actor string) (retention.Hold, error) {
	f.actor = actor
	return retention.Hold{ID: id}, nil
}

type fakeKeys struct {
	actor   string
	created apikey.CreateInput
}

var (
	keyUsed    = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	keyExpires = time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
)

func (*fakeKeys) List(context.Context) ([]apikey.Key, error) {
	return []apikey.Key{
		{ID: keyID, Name: "bot", Role: "frontend", Prefix: "stw_ab", CreatedAt: time.Now(), LastUsedAt: &keyUsed, ExpiresAt: &keyExpires},
		{ID: "key_ba9876543210", Name: "old", Role: "sdk", Prefix: "stw_cd", CreatedAt: time.Now()},
	}, nil
}
func (f *fakeKeys) Create(_ context.Context, in apikey.CreateInput, _ map[string]bool, actor string) (apikey.Key, string, error) {
	f.actor, f.created = actor, in
	return apikey.Key{ID: keyID, Name: in.Name, Role: in.Role, ExpiresAt: in.ExpiresAt}, "stw_secret_once", nil
}
func (f *fakeKeys) Revoke(_ context.Context, id, actor string) (apikey.Key, error) {
	f.actor = actor
	return apikey.Key{ID: id}, nil
}

var (
	engineOnce sync.Once
	engine     *policy.Engine
	engineErr  error
)

// loadEngine compiles the embedded bundle once per test binary.
func loadEngine(t testing.TB) *policy.Engine {
	t.Helper()
	engineOnce.Do(func() {
		fsys, err := policy.EmbeddedSource(policies.FS).Open()
		if err != nil {
			engineErr = err
			return
		}
		engine, engineErr = policy.Load(context.Background(), fsys)
	})
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engine
}

// bundle is the console under test with its fakes.
type bundle struct {
	t         testing.TB
	app       *fiber.App
	staff     *fakeStaff
	requests  *fakeRequests
	packages  *fakePackages
	retention *fakeRetention
	keys      *fakeKeys
	clk       *clock.Fake
	engine    *policy.Engine
}

func setup(t testing.TB) *bundle {
	t.Helper()
	b := &bundle{t: t, staff: &fakeStaff{}, requests: &fakeRequests{}, packages: &fakePackages{}, retention: &fakeRetention{}, keys: &fakeKeys{},
		clk: clock.NewFake(time.Now()), engine: loadEngine(t)}
	c, err := console.New(console.Config{PublicURL: "https://privacy.example.com", Secret: []byte("0123456789abcdef0123456789abcdef")}, console.Deps{
		Clock: b.clk, Staff: b.staff, Requests: b.requests, Packages: b.packages, Consent: fakeConsent{}, Receipts: fakeReceipts{},
		Audit: fakeAudit{}, Retention: b.retention, Keys: b.keys, Policies: fakePolicies{b.engine},
	})
	if err != nil {
		t.Fatal(err)
	}
	b.app = fiber.New(fiber.Config{DisableStartupMessage: true})
	c.Mount(b.app)
	return b
}

// seed is a fixed CSRF cookie value (43 characters, like the real ones).
const seed = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

type resp struct {
	Status int
	Body   string
	Header http.Header
}

// do sends a request with the cookies given (name=value) and returns the
// response with its body.
func (b *bundle) do(method, path string, form url.Values, cookies map[string]string, hdr ...string) resp {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	for k, v := range cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	res, err := b.app.Test(req, 10_000)
	if err != nil {
		b.t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	return resp{Status: res.StatusCode, Body: string(raw), Header: res.Header}
}

// as is the cookies of a signed-in member of role.
func as(role string) map[string]string {
	return map[string]string{"steward_staff": "tok-" + role, "steward_console_csrf": seed}
}

// csrf is the form token of role's session, read from a page.
func (b *bundle) csrf(cookies map[string]string) string {
	b.t.Helper()
	// Every page of a signed-in member has the sign-out form, with the
	// token (a 403 page too).
	r := b.do("GET", "/console/requests", nil, cookies)
	m := csrfRe.FindStringSubmatch(r.Body)
	if m == nil {
		b.t.Fatalf("no csrf token on the page: %d %s", r.Status, r.Body)
	}
	return m[1]
}

// post sends a form as role with a valid CSRF token.
func (b *bundle) post(role, path string, form url.Values) resp {
	b.t.Helper()
	ck := as(role)
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", b.csrf(ck))
	return b.do("POST", path, form, ck)
}
