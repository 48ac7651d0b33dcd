package consent_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/notify"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/receipt"
	"github.com/steward-privacy/steward/internal/restrictions"
	"github.com/steward-privacy/steward/policies"
)

// engines serves a policy engine tests can swap (a reload).
type engines struct{ e atomic.Pointer[policy.Engine] }

func (h *engines) Current() *policy.Engine { return h.e.Load() }

// sent records what the service queued, without an outbox.
type sent struct {
	mu       sync.Mutex
	emails   []notify.Email
	telegram []notify.TelegramMessage
}

func (s *sent) EnqueueEmail(_ context.Context, _ pgx.Tx, e notify.Email) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emails = append(s.emails, e)
	return e.Key, nil
}

func (s *sent) EnqueueTelegram(_ context.Context, _ pgx.Tx, m notify.TelegramMessage) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.telegram = append(s.telegram, m)
	return m.Key, nil
}

type bundle struct {
	svc     *consent.Service
	pool    *pgxpool.Pool
	ledger  *restrictions.Ledger
	engines *engines
	sent    *sent
	signer  *receipt.Signer
}

func setup(t *testing.T) bundle {
	t.Helper()
	_, pool := dbtest.New(t)
	seed := make([]byte, 32)
	_, _ = rand.Read(seed)
	kr, err := keyring.Parse("k1:" + base64.StdEncoding.EncodeToString(seed))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policy.Load(context.Background(), policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	h := &engines{}
	h.e.Store(eng)
	signer, err := receipt.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.Real{}
	al := audit.New(clk, eng.Revision())
	cache := consent.NewCache(100)
	cache.EnableWithoutListener()
	ledger := &restrictions.Ledger{Pool: pool, Keys: kr, Now: clk.Now, Audit: al, Changed: cache.Forget}
	s := &sent{}
	svc := consent.NewService(pool, kr, h, clk, slog.New(slog.DiscardHandler), cache, consent.Options{
		Notifier: s, Audit: al, Signer: signer, PublicURL: "https://steward.example.com/",
	})
	return bundle{svc: svc, pool: pool, ledger: ledger, engines: h, sent: s, signer: signer}
}

func subject(t *testing.T, s string) identity.Subject {
	t.Helper()
	subj, err := identity.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return subj
}

func (b bundle) record(t *testing.T, in consent.RecordInput) consent.Event {
	t.Helper()
	if in.Source == "" {
		in.Source = "web_settings"
	}
	if in.NoticeVersion == "" {
		in.NoticeVersion = "2.0"
	}
	ev, err := b.svc.Record(context.Background(), in)
	if err != nil {
		t.Fatalf("record %+v: %v", in, err)
	}
	return ev
}

func (b bundle) check(t *testing.T, subj identity.Subject, purpose, jurisdiction string) policy.Decision {
	t.Helper()
	d, err := b.svc.Check(context.Background(), consent.CheckInput{Subject: subj, Purpose: purpose, Jurisdiction: jurisdiction, Age: -1})
	if err != nil {
		t.Fatalf("check %s: %v", purpose, err)
	}
	return d
}

// GDPR Art. 18(2): "such personal data shall, with the exception of
// storage, only be processed with the data subject's consent ..."; bot 6.4
// "Right to Restriction: Limit how we use your data." The check answers
// restricted, naming the request, until the restriction is lifted.
func TestRestrictionTakesEffectInTheCheck(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ann := subject(t, "email:ann@example.com")
	b.record(t, consent.RecordInput{Subject: ann, Purpose: "marketing", State: consent.Granted, Jurisdiction: "DE"})
	if d := b.check(t, ann, "marketing", "DE"); !d.Allow {
		t.Fatalf("before: %+v", d)
	}
	if changed, err := b.ledger.RestrictSubjects(ctx, "req-restrict-1", []identity.Subject{ann}); err != nil || !changed {
		t.Fatalf("restrict: %v %v", changed, err)
	}
	d := b.check(t, ann, "marketing", "DE")
	if d.Allow || d.Reason != "restricted" || d.Rule != "processing_restricted" || d.RequestID != "req-restrict-1" || d.RestrictionID == "" {
		t.Fatalf("restricted: %+v", d)
	}
	if d := b.check(t, ann, "essential", "DE"); !d.Allow {
		t.Fatalf("essential under restriction: %+v", d)
	}
	rs, err := b.ledger.List(ctx, ann, true)
	if err != nil || len(rs) != 1 || rs[0].ID != d.RestrictionID || rs[0].RequestID != "req-restrict-1" || !rs[0].Active {
		t.Fatalf("list: %+v %v", rs, err)
	}
	if _, err := b.ledger.Lift(ctx, d.RestrictionID, "key:k1", " "); err == nil {
		t.Fatal("lift without a reason accepted")
	}
	r, err := b.ledger.Lift(ctx, d.RestrictionID, "key:k1", "accuracy verified with the person")
	if err != nil || r.Active || r.LiftedBy != "key:k1" || r.LiftReason != "accuracy verified with the person" {
		t.Fatalf("lift: %+v %v", r, err)
	}
	if _, err := b.ledger.Lift(ctx, d.RestrictionID, "key:k1", "again"); err == nil {
		t.Fatal("lifted twice")
	}
	if d := b.check(t, ann, "marketing", "DE"); !d.Allow || d.Reason != "granted" {
		t.Fatalf("after lift: %+v", d)
	}
	var n int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_pending WHERE action = 'restriction.lifted' AND target_id = $1`, r.ID).Scan(&n); err != nil || n != 1 {
		t.Fatalf("audit entries %d %v", n, err)
	}
	// Restricted again and lifted by the person's own request.
	if _, err := b.ledger.RestrictSubjects(ctx, "req-restrict-2", []identity.Subject{ann}); err != nil {
		t.Fatal(err)
	}
	if d := b.check(t, ann, "marketing", "DE"); d.Reason != "restricted" || d.RequestID != "req-restrict-2" {
		t.Fatalf("restricted again: %+v", d)
	}
	lifted, err := b.ledger.LiftSubjects(ctx, []identity.Subject{ann}, "system:dsar", "the person asked to lift it")
	if err != nil || len(lifted) != 1 {
		t.Fatalf("lift by request: %+v %v", lifted, err)
	}
	if d := b.check(t, ann, "marketing", "DE"); !d.Allow {
		t.Fatalf("after the person's lift: %+v", d)
	}
}

// Web (Policy updates): "For major changes we will also notify you via
// email or in-product messaging"; a consent given under an older major
// version asks again (reconsent_required), and the announcement reaches each
// person on their channel, once.
func TestNoticeMajorChangeAsksAgainAndTellsPeople(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	user := subject(t, "user:42")
	visitor := subject(t, "visitor:abcdefgh")
	b.record(t, consent.RecordInput{Subject: user, Purpose: "marketing", State: consent.Granted, Jurisdiction: "DE", Language: "ru",
		Linked: []identity.Subject{subject(t, "email:lena@example.com")}})
	b.record(t, consent.RecordInput{Subject: visitor, Purpose: "analytics", State: consent.Granted, Jurisdiction: "DE"})
	b.record(t, consent.RecordInput{Subject: subject(t, "email:no@example.com"), Purpose: "marketing", State: consent.Denied, Jurisdiction: "DE"})
	// Everyone consented under the current version: nobody to tell.
	if a, err := b.svc.AnnounceNotice(ctx, "web", "2.0", "key:k1"); err != nil || a.Subjects != 0 || len(b.sent.emails) != 0 {
		t.Fatalf("announcing 2.0: %+v %v", a, err)
	}
	// The operator publishes 3.0, a major change.
	b.engines.e.Store(loadWith(t, map[string]string{
		"data/notices.json": strings.Replace(read(t, "data/notices.json"), `"versions": {
      "2.0": {`, `"versions": {
      "3.0": {"effective": "2026-06-01", "change": "major", "summary": "New processors.", "languages": ["en"]},
      "2.0": {`, 1),
		"notices/web/3.0/en.md": "Privacy Policy 3.0",
		"data/products.json":    strings.Replace(read(t, "data/products.json"), `"notice_version": "2.0"`, `"notice_version": "3.0"`, 1),
	}))
	if d := b.check(t, user, "marketing", "DE"); d.Allow || d.Reason != "reconsent_required" {
		t.Fatalf("after 3.0: %+v", d)
	}
	a, err := b.svc.AnnounceNotice(ctx, "web", "3.0", "key:k1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Subjects != 2 || a.Emails != 1 || a.Telegrams != 0 || a.Unreachable != 1 {
		t.Fatalf("announcement %+v", a)
	}
	e := b.sent.emails[0]
	if e.To != "lena@example.com" || e.Template != notify.TemplateNoticeChanged || e.Language != "ru" || e.Data["version"] != "3.0" ||
		e.Data["notice_url"] != "https://steward.example.com/v1/notices/web/3.0?lang=ru" {
		t.Fatalf("email %+v", e)
	}
	if _, err := b.svc.AnnounceNotice(ctx, "web", "3.0", "key:k1"); err == nil {
		t.Fatal("announced twice")
	}
	// Consent under the new notice allows again.
	b.record(t, consent.RecordInput{Subject: user, Purpose: "marketing", State: consent.Granted, Jurisdiction: "DE", NoticeVersion: "3.0"})
	if d := b.check(t, user, "marketing", "DE"); !d.Allow {
		t.Fatalf("after re-consent: %+v", d)
	}
	// A version the registry does not know is refused.
	if _, err := b.svc.Record(ctx, consent.RecordInput{Subject: user, Purpose: "marketing", State: consent.Granted, Source: "api", NoticeVersion: "2.5"}); err == nil {
		t.Fatal("recorded under an unknown notice version")
	}
}

func read(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(policies.FS, name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// loadWith loads the embedded bundle with some files replaced.
func loadWith(t *testing.T, files map[string]string) *policy.Engine {
	t.Helper()
	m := fstest.MapFS{}
	err := fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(policies.FS, p)
		m[p] = &fstest.MapFile{Data: b}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, s := range files {
		m[p] = &fstest.MapFile{Data: []byte(s)}
	}
	e, err := policy.Load(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// GDPR Art. 15 (web "Access ... personal data", bot 6.4 "Right to Access"):
// Steward's own ledger is part of the access package, with receipts that
// verify against the published keys.
func TestSubjectExportHasHistoryAndSignedReceipts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tg := subject(t, "tg:777")
	b.record(t, consent.RecordInput{Subject: tg, Purpose: "broadcast", State: consent.Granted, Source: "bot", NoticeVersion: "1.0", UserAgent: "TelegramBot"})
	b.record(t, consent.RecordInput{Subject: tg, Purpose: "broadcast", State: consent.Withdrawn, Source: "bot", NoticeVersion: "1.0"})
	x, err := b.svc.SubjectExport(context.Background(), []identity.Subject{tg, subject(t, "email:nobody@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Current) != 2 || len(x.Events) != 2 || x.Events[0].Event.State != consent.Granted || x.Events[1].Event.State != consent.Withdrawn {
		t.Fatalf("export %+v", x)
	}
	for _, ev := range x.Events {
		if _, err := receipt.Verify(ev.JWS, b.signer.JWKS()); err != nil {
			t.Fatalf("receipt of %s does not verify: %v", ev.Event.ID, err)
		}
	}
}

// Erasure (GDPR Art. 17; web "we erase or anonymize data within 30 days";
// bot 4.3 "we will remove your personal information within 30 days") of
// Steward's own ledger: the identity is crypto-shredded, user agent and IP
// hash go, grants go; refusals stay under the keyed hash as proof of the
// opt-out (Art. 21(3): no more direct marketing), so a later check still
// refuses.
func TestForgetShredsIdentityAndKeepsOptOutProof(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	ann := subject(t, "email:ann@example.com")
	user := subject(t, "user:ann")
	b.record(t, consent.RecordInput{Subject: ann, Purpose: "analytics", State: consent.Granted, Jurisdiction: "DE", UserAgent: "Firefox", IP: "192.0.2.1"})
	b.record(t, consent.RecordInput{Subject: ann, Purpose: "marketing", State: consent.Granted, Jurisdiction: "DE", UserAgent: "Firefox", IP: "192.0.2.1"})
	b.record(t, consent.RecordInput{Subject: ann, Purpose: "marketing", State: consent.Withdrawn, Jurisdiction: "DE", UserAgent: "Firefox", IP: "192.0.2.1",
		Linked: []identity.Subject{user}})
	res, err := b.svc.Forget(ctx, nil, []identity.Subject{ann, user}, "system:dsar")
	if err != nil {
		t.Fatal(err)
	}
	if res.Subjects != 2 || res.GrantsDeleted != 2 || res.RefusalsKept != 1 {
		t.Fatalf("forget %+v", res)
	}
	if d := b.check(t, ann, "marketing", "DE"); d.Allow || d.Reason != "withdrawn" {
		t.Fatalf("the opt-out must outlive erasure: %+v", d)
	}
	if d := b.check(t, ann, "analytics", "DE"); d.Allow || d.Reason != "no_consent" {
		t.Fatalf("the grant must be gone: %+v", d)
	}
	var sealed, ua, links int
	if err := b.pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM subjects WHERE length(ciphertext) > 0),
		(SELECT count(*) FROM consent_events WHERE user_agent IS NOT NULL OR ip_hash IS NOT NULL),
		(SELECT count(*) FROM subject_links)`).Scan(&sealed, &ua, &links); err != nil {
		t.Fatal(err)
	}
	if sealed != 0 || ua != 0 || links != 0 {
		t.Fatalf("left: sealed identities %d, events with UA/IP %d, links %d", sealed, ua, links)
	}
	// The ledger is still append-only outside Forget.
	if _, err := b.pool.Exec(ctx, `UPDATE consent_events SET user_agent = NULL`); err == nil {
		t.Fatal("consent_events accepted an update outside Forget")
	}
	if _, err := b.pool.Exec(ctx, `DELETE FROM consent_events`); err == nil {
		t.Fatal("consent_events accepted a delete outside Forget")
	}
	var audited int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM audit_pending WHERE action = 'consent.forgotten'`).Scan(&audited); err != nil || audited != 2 {
		t.Fatalf("audited %d %v", audited, err)
	}
	// Forgetting twice changes nothing; the person may come back.
	if res, err := b.svc.Forget(ctx, nil, []identity.Subject{ann}, "system:dsar"); err != nil || res.Subjects != 0 || res.GrantsDeleted != 0 {
		t.Fatalf("second forget %+v %v", res, err)
	}
	b.record(t, consent.RecordInput{Subject: ann, Purpose: "marketing", State: consent.Granted, Jurisdiction: "DE"})
	if d := b.check(t, ann, "marketing", "DE"); !d.Allow {
		t.Fatalf("a new grant after erasure: %+v", d)
	}
}

// A purpose the product does not have is not a "no": it is the caller's
// mistake, refused on record and on check (issue 19).
func TestPurposeNotOfferedIsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	tg := subject(t, "tg:5")
	if _, err := b.svc.Check(ctx, consent.CheckInput{Subject: tg, Purpose: "marketing", Age: -1}); err == nil || !strings.Contains(err.Error(), "not a purpose of the bot product") {
		t.Fatalf("check: %v", err)
	}
	if _, err := b.svc.Record(ctx, consent.RecordInput{Subject: subject(t, "visitor:abcdefgh"), Purpose: "broadcast", State: consent.Granted, Source: "web_banner", NoticeVersion: "2.0"}); err == nil {
		t.Fatal("recorded broadcasts for a web visitor")
	}
}
