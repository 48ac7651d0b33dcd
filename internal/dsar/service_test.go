package dsar_test

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/recordstore"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/exports"
	"github.com/steward-privacy/steward/internal/jobs"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/notify"
	"github.com/steward-privacy/steward/internal/notify/resendtest"
	"github.com/steward-privacy/steward/internal/notify/telegramtest"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/policies"
)

var (
	engineOnce sync.Once
	engine     *policy.Engine
	engineErr  error
)

type fixedPolicies struct{ e *policy.Engine }

func (f fixedPolicies) Current() *policy.Engine { return f.e }

// swappablePolicies is the policy holder a rig's engine sees: a test swaps
// in another bundle (a corrected data map) as an operator deploying one
// would (rig.setEngine).
type swappablePolicies struct{ p atomic.Pointer[policy.Engine] }

func (s *swappablePolicies) Current() *policy.Engine { return s.p.Load() }

func loadEngine(t testing.TB) *policy.Engine {
	engineOnce.Do(func() { engine, engineErr = policy.Load(context.Background(), policies.FS) })
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engine
}

// rig is one engine on its own database, with a record store standing in
// for every system of the data map (unless told otherwise), the Resend fake,
// the Bot API stand-in (messages go out only with cfg.TelegramBotToken) and
// an outbox worker delivering to both.
type rig struct {
	t      testing.TB
	url    string // the rig's database, for a second process
	pool   *pgxpool.Pool
	svc    *dsar.Service
	jobs   *jobs.Client
	store  *recordstore.Store
	mail   *resendtest.Server
	bot    *telegramtest.Server // accepts cfg.TelegramBotToken
	worker *notify.Worker
	clk    *clock.Fake
	kr     *keyring.Keyring
	// exports holds the packages, with rigOpts.exports.
	exports *exports.Store
	// policies is what the engine decides with; setEngine swaps it.
	policies *swappablePolicies
}

// setEngine makes e the bundle the rig's engine plans with from now on.
func (r *rig) setEngine(e *policy.Engine) { r.policies.p.Store(e) }

type rigOpts struct {
	cfg      dsar.Config
	jobs     jobs.Config // the job client's; Work is always on
	registry func(store *recordstore.Store, e *policy.Engine) connectors.Registry
	noStart  bool
	engine   *policy.Engine // default: the embedded policies
	keys     string         // keyring spec (kid:base64); default: a random key
	start    time.Time      // the fake clock's start; default: now
	files    *blob.Bucket   // the file store; default none
	packager dsar.Packager  // builds access packages; default none
	// exports keeps real packages (exportpkg, sealed in a file store) in
	// rig.exports, their links under exportLinkBase; default none.
	exports bool
	// log receives the engine's and the outbox's logs; default none.
	log io.Writer
}

// exportLinkBase is where a rig with exports puts its download links.
const exportLinkBase = "https://privacy.example.com/v1/exports/"

func allSystems(store connectors.Connector, e *policy.Engine) connectors.Registry {
	reg := connectors.Registry{}
	for sid := range e.DataMap.Systems {
		reg[sid] = store
	}
	return reg
}

func newRig(t testing.TB, o rigOpts) *rig {
	t.Helper()
	url, pool := dbtest.New(t)
	e := o.engine
	if e == nil {
		e = loadEngine(t)
	}
	start := o.start
	if start.IsZero() {
		start = time.Now()
	}
	clk := clock.NewFake(start)
	kr := keyring.NewRandom("k1")
	if o.keys != "" {
		var err error
		if kr, err = keyring.Parse(o.keys); err != nil {
			t.Fatal(err)
		}
	}
	store := recordstore.New(pool, recordstore.Options{HashKey: []byte("test-hash-key-0123456789abcdef!!")})
	if err := store.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	reg := allSystems(store, e)
	if o.registry != nil {
		reg = o.registry(store, e)
	}
	cfg := o.cfg
	jc := o.jobs
	jc.Work = true
	if jc.RetryBase == 0 {
		jc.RetryBase = 20 * time.Millisecond
	}
	if jc.FetchPoll == 0 {
		jc.FetchPoll = 50 * time.Millisecond
	}
	jobClient := jobs.New(pool, jc, nil)
	cfg.StaffEmail = "privacy-team@example.com"
	mail := resendtest.New(t)
	bot := telegramtest.NewServer(cmp.Or(cfg.TelegramBotToken, telegramtest.Token))
	t.Cleanup(bot.Close)
	var log *slog.Logger
	if o.log != nil {
		log = slog.New(slog.NewTextHandler(o.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	outbox := notify.NewOutbox(kr, clk, log)
	al := audit.New(clk, e.Revision())
	var exp *exports.Store
	if o.exports {
		bucket, err := fileblob.OpenBucket(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = bucket.Close() })
		if o.files == nil {
			o.files = bucket
		}
		exp = &exports.Store{Pool: pool, Bucket: bucket, Keys: kr, Audit: al, Clock: clk}
		cfg.ExportLinkBase = exportLinkBase
	}
	pol := &swappablePolicies{}
	pol.p.Store(e)
	svc, err := dsar.New(dsar.Deps{
		Pool: pool, Keys: kr, Policies: pol, Audit: al, Outbox: outbox, Log: log,
		Clock: clk, Connectors: reg, Files: o.files, Packager: o.packager, Exports: exp, Jobs: jobClient,
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, url: url, pool: pool, svc: svc, jobs: jobClient, store: store, mail: mail, bot: bot, clk: clk, kr: kr, exports: exp, policies: pol,
		worker: notify.NewWorker(pool, kr, notify.WorkerConfig{
			Resend:   notify.ResendConfig{APIKey: "re_test", BaseURL: mail.URL, From: "Privacy <privacy@example.com>"},
			Telegram: notify.TelegramConfig{BotToken: cfg.TelegramBotToken, APIURL: bot.URL},
		}, clk, log, nil)}
	if !o.noStart {
		ctx, cancel := context.WithCancel(context.Background())
		if err := jobClient.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			sctx, c2 := context.WithTimeout(context.Background(), 10*time.Second)
			defer c2()
			_ = jobClient.Stop(sctx)
			cancel()
		})
	}
	return r
}

// deliver runs the outbox until it is empty and returns every email sent.
func (r *rig) deliver() []resendtest.SentEmail {
	r.t.Helper()
	for {
		res, err := r.worker.RunOnce(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		if res.Delivered+res.Retried+res.Failed == 0 {
			return r.mail.Emails()
		}
	}
}

var codeRe = regexp.MustCompile(`\b\d{6}\b`)

// code delivers the outbox and reads the latest code sent to addr.
func (r *rig) code(addr string) string {
	r.t.Helper()
	emails := r.deliver()
	for i := len(emails) - 1; i >= 0; i-- {
		if len(emails[i].To) == 1 && emails[i].To[0] == addr {
			if m := codeRe.FindString(emails[i].Text); m != "" {
				return m
			}
		}
	}
	r.t.Fatalf("no code was emailed to the subject (%d emails)", len(emails))
	return ""
}

// completeManual waits for the automated tasks to end, then completes every
// pending manual task as staff would.
func (r *rig) completeManual(id string) int {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := r.svc.Get(context.Background(), id)
		if err != nil {
			r.t.Fatal(err)
		}
		busy, n := false, 0
		for _, t := range d.Tasks {
			if t.Mode == dsar.ModeAutomated && (t.Status == dsar.TaskPending || t.Status == dsar.TaskRunning) {
				busy = true
			}
		}
		if !busy || time.Now().After(deadline) {
			for _, t := range d.Tasks {
				if t.Mode == dsar.ModeManual && t.Status == dsar.TaskPending {
					if _, err := r.svc.CompleteManualTask(context.Background(), id, t.ID, "key:reviewer", "done in the vendor console"); err != nil {
						r.t.Fatal(err)
					}
					n++
				}
			}
			return n
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wait polls until the request reaches one of the statuses.
func (r *rig) wait(id string, want ...dsar.Status) dsar.Detail {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := r.svc.Get(context.Background(), id)
		if err != nil {
			r.t.Fatal(err)
		}
		for _, w := range want {
			if d.Status == w {
				return d
			}
		}
		if time.Now().After(deadline) {
			var ts, evs []string
			for _, t := range d.Tasks {
				ts = append(ts, t.System+"/"+t.Dataset+":"+t.Mode+":"+t.Status+":"+t.Error)
			}
			for _, e := range d.Timeline {
				evs = append(evs, e.Event)
			}
			r.t.Fatalf("request stuck in %s (want %v); plan error %q; tasks %v; timeline %v", d.Status, want, d.PlanError, ts, evs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *rig) seedWebUser(email, userID, tg string) {
	r.t.Helper()
	ctx := context.Background()
	s := r.store
	must := func(err error) {
		if err != nil {
			r.t.Fatal(err)
		}
	}
	em := connectors.Identity{Type: "email", Value: email}
	user := connectors.Identity{Type: "user", Value: userID}
	must(s.Put(ctx, "app_db", "users", userID, []connectors.Identity{em, user}, map[string]any{"id": userID, "email": email, "name": "Ann Example", "created_at": "2026-01-02T03:04:05Z"}))
	must(s.Put(ctx, "app_db", "credit_transactions", userID+"-tx1", []connectors.Identity{user}, map[string]any{"amount": 100, "user_id": userID}))
	must(s.Link(ctx, em, user))
	if tg != "" {
		tgID := connectors.Identity{Type: "tg", Value: tg}
		must(s.Link(ctx, user, tgID))
		must(s.Put(ctx, "bot_db", "tg_users", tg, []connectors.Identity{tgID}, map[string]any{"tg_id": tg, "username": "ann", "language": "en"}))
	}
}

func isCode(err error, code apperr.Code) bool { return apperr.CodeOf(err) == code }

func TestAccessRequestWebLifecycle(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	ctx := context.Background()
	r.seedWebUser("ann@example.com", "u-1", "777001")

	c, err := r.svc.Create(ctx, dsar.CreateInput{
		Type: "access", Subject: identity.MustParse("email:Ann@Example.com"), Region: "DE", Channel: dsar.ChannelWeb, Language: "ru",
		Actor: "key:frontend", ClientIP: "203.0.113.9",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Request.Status != dsar.IdentityPending || c.StatusToken == "" || c.Existing {
		t.Fatalf("created %+v", c)
	}
	// PostgreSQL keeps microseconds.
	dl, err := loadEngine(t).Deadline(ctx, "gdpr", "access", "DE")
	if err != nil {
		t.Fatal(err)
	}
	if want := dl.Due(r.clk.Now()).Truncate(time.Microsecond); c.Request.Regime != "gdpr" || !c.Request.DueAt.Equal(want) {
		t.Errorf("regime %s due %s, want gdpr due %s", c.Request.Regime, c.Request.DueAt, want)
	}
	// The same request again returns the first.
	again, err := r.svc.Create(ctx, dsar.CreateInput{Type: "access", Subject: identity.MustParse("email:ann@example.com"), Region: "DE", Channel: dsar.ChannelWeb, Actor: "key:frontend"})
	if err != nil || !again.Existing || again.Request.ID != c.Request.ID || again.StatusToken != "" {
		t.Fatalf("duplicate: %+v %v", again, err)
	}

	code := r.code("ann@example.com")
	wrong := "000000"
	if code == wrong {
		wrong = "000001"
	}
	if _, err := r.svc.Verify(ctx, c.Request.ID, wrong); !isCode(err, apperr.Invalid) {
		t.Fatalf("wrong code: %v", err)
	}
	st, err := r.svc.Status(ctx, c.Request.ID, c.StatusToken)
	if err != nil || st.Status != dsar.IdentityPending {
		t.Fatalf("status %+v %v", st, err)
	}
	v, err := r.svc.Verify(ctx, c.Request.ID, code)
	if err != nil {
		t.Fatal(err)
	}
	if v.StatusToken == "" || v.StatusToken == c.StatusToken {
		t.Error("status token not rotated on verification")
	}
	if _, err := r.svc.Status(ctx, c.Request.ID, c.StatusToken); !isCode(err, apperr.NotFound) {
		t.Errorf("old token still works: %v", err)
	}
	r.wait(c.Request.ID, dsar.InProgress, dsar.Completed)
	if n := r.completeManual(c.Request.ID); n == 0 {
		t.Error("the reference data map's vendor systems should need manual tasks")
	}
	d := r.wait(c.Request.ID, dsar.Completed)
	if d.ApprovalRequired == nil || *d.ApprovalRequired {
		t.Errorf("access should need no approval: %+v", d.ApprovalRequired)
	}
	kinds := map[string]string{}
	for _, i := range d.Identities {
		kinds[i.Kind] = i.Source
	}
	if kinds["email"] != "given" || kinds["user"] == "" || kinds["tg"] == "" {
		t.Errorf("identities not resolved transitively: %v", kinds)
	}
	for _, task := range d.Tasks {
		if task.Status != dsar.TaskSucceeded {
			t.Errorf("task %s/%s %s %s", task.System, task.Dataset, task.Mode, task.Status)
		}
	}
	recs, err := r.svc.Records(ctx, c.Request.ID)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, rec := range recs {
		found[rec.Dataset+"/"+rec.Key] = true
	}
	for _, want := range []string{"users/u-1", "credit_transactions/u-1-tx1", "tg_users/777001"} {
		if !found[want] {
			t.Errorf("access did not disclose %s (got %v)", want, found)
		}
	}
	// Emails: the code, the acknowledgment and the completion, in Russian.
	var templates []string
	for _, e := range r.deliver() {
		templates = append(templates, e.Subject)
	}
	if len(templates) != 3 {
		t.Errorf("emails sent: %q", templates)
	}
	// The timeline holds every transition in order.
	var events []string
	for _, e := range d.Timeline {
		events = append(events, e.Event)
	}
	want := "received ask_verification verification_sent verification_failed verification_step verify planned approve start"
	if events[len(events)-2] != "manual_task_completed" && events[len(events)-2] != "task_succeeded" {
		t.Errorf("completion not preceded by the last task: %v", events)
	}
	if !strings.HasPrefix(strings.Join(events, " "), want) || events[len(events)-1] != "complete" {
		t.Errorf("timeline %v", events)
	}
}
