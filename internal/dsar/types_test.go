package dsar_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/notify"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/subjects"
	"github.com/steward-privacy/steward/internal/telegram"
	"github.com/steward-privacy/steward/internal/webhooks"
	"github.com/steward-privacy/steward/policies"
)

// botRequest is a bot request whose Telegram identity the bot's backend
// asserts.
func botRequest(typ, tg string) dsar.CreateInput {
	return dsar.CreateInput{
		Type: typ, Subject: identity.MustParse("tg:" + tg), Region: "DE", Channel: dsar.ChannelBot,
		IdentityAsserted: true, CanAssert: true, Actor: "key:bot",
	}
}

// taskResults sums a count of the automated tasks' results (deleted,
// masked, updated, restricted, records).
func taskResults(t *testing.T, d dsar.Detail, key string) int {
	t.Helper()
	n := 0
	for _, task := range d.Tasks {
		if task.Mode != dsar.ModeAutomated {
			continue
		}
		if task.Status != dsar.TaskSucceeded {
			t.Errorf("task %s/%s %s", task.System, task.Dataset, task.Status)
		}
		var m map[string]any
		if err := json.Unmarshal(task.Result, &m); err != nil {
			t.Fatalf("task %s/%s result %s: %v", task.System, task.Dataset, task.Result, err)
		}
		if v, ok := m[key].(float64); ok {
			n += int(v)
		}
	}
	return n
}

var hexHash = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestErasureThroughTheBotIsApprovedThenErasesPerPlan(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	ctx := context.Background()
	r.seedBotUser("900001")
	r.seedBotUser("900002") // someone else, who must stay untouched

	c, err := r.svc.Create(ctx, botRequest("erasure", "900001"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Request.Status != dsar.Verified || c.Request.Verification != "telegram_asserted" || c.Request.VerifiedAt == nil {
		t.Fatalf("a bot request is verified at intake: %+v", c.Request)
	}
	d := r.wait(c.Request.ID, dsar.AwaitingApproval)
	if d.ApprovalRequired == nil || !*d.ApprovalRequired || d.ApprovalRule != "approval_erasure" {
		t.Errorf("approval %v rule %q", d.ApprovalRequired, d.ApprovalRule)
	}
	if d.Plan == nil {
		t.Fatal("no plan shown before approval")
	}
	retained := map[string]dsar.RetainedItem{}
	for _, it := range d.Plan.Retained {
		if it.Basis == "" {
			t.Errorf("retained %s/%s.%s without a basis", it.System, it.Dataset, it.Field)
		}
		retained[it.System+"/"+it.Dataset+"."+it.Field] = it
	}
	if it := retained["bot_db/tg_payments.stars_amount"]; it.Action != connectors.ActionRetain || !strings.Contains(it.Basis, "accounting") {
		t.Errorf("payments must be kept for accounting: %+v", it)
	}
	if it := retained["bot_db/tg_payments.tg_user_id"]; it.Action != connectors.ActionMask {
		t.Errorf("the payment's link to the person must be masked: %+v", it)
	}
	if _, ok := retained["bot_db/tg_users.username"]; ok {
		t.Error("the account itself must not be retained")
	}
	for _, task := range d.Tasks {
		if task.Status != dsar.TaskPending {
			t.Errorf("task %s/%s is %s before approval", task.System, task.Dataset, task.Status)
		}
	}
	if n, _ := r.store.Count(ctx, "bot_db", "tg_users"); n != 2 {
		t.Fatalf("something was erased before approval: %d users", n)
	}

	if _, err := r.svc.Approve(ctx, c.Request.ID, "key:reviewer", "identity match checked"); err != nil {
		t.Fatal(err)
	}
	r.wait(c.Request.ID, dsar.InProgress, dsar.Completed)
	if n := r.completeManual(c.Request.ID); n == 0 {
		t.Error("telegram, sentry and the bot's cache are manual systems")
	}
	d = r.wait(c.Request.ID, dsar.Completed)

	// Deleted: the account, the generation, the request log.
	for _, k := range [][2]string{{"tg_users", "900001"}, {"tg_generations", "900001-g1"}, {"tg_request_logs", "900001-l1"}} {
		if _, _, ok := r.record("bot_db", k[0], k[1]); ok {
			t.Errorf("%s/%s survived the erasure", k[0], k[1])
		}
	}
	// Kept with the basis, the person's id masked by a keyed hash.
	pay, _, ok := r.record("bot_db", "tg_payments", "900001-p1")
	if !ok || pay["stars_amount"] != float64(250) {
		t.Errorf("payment not kept as it was: %v", pay)
	}
	if s, _ := pay["tg_user_id"].(string); !hexHash.MatchString(s) {
		t.Errorf("payment still names the person: tg_user_id %v", pay["tg_user_id"])
	}
	ledger, _, ok := r.record("bot_db", "tg_credit_transactions", "900001-c1")
	if s, _ := ledger["tg_user_id"].(string); !ok || !hexHash.MatchString(s) || ledger["delta"] != float64(100) {
		t.Errorf("ledger entry %v", ledger)
	}
	// The other person's records are all there.
	for _, k := range [][2]string{{"tg_users", "900002"}, {"tg_generations", "900002-g1"}, {"tg_payments", "900002-p1"}, {"tg_request_logs", "900002-l1"}} {
		f, _, ok := r.record("bot_db", k[0], k[1])
		if !ok || f["tg_user_id"] == nil && f["tg_id"] == nil {
			t.Errorf("someone else's %s/%s was touched: %v", k[0], k[1], f)
		}
	}
	if got := taskResults(t, d, "deleted"); got != 3 {
		t.Errorf("deleted %d records, want 3", got)
	}
	if got := taskResults(t, d, "masked"); got != 2 {
		t.Errorf("masked %d records, want 2", got)
	}
	for _, task := range d.Tasks {
		if task.Mode == dsar.ModeAutomated {
			if n, err := r.store.Effects(ctx, task.ID+":"+strconv.Itoa(task.Run)); err != nil || n != 1 {
				t.Errorf("task %s/%s applied %d effects (%v)", task.System, task.Dataset, n, err)
			}
		}
	}

	// The same erasure again changes nothing.
	before := map[string]map[string]any{}
	for _, k := range []string{"tg_payments/900001-p1", "tg_credit_transactions/900001-c1"} {
		ds, key, _ := strings.Cut(k, "/")
		before[k], _, _ = r.record("bot_db", ds, key)
	}
	c2, err := r.svc.Create(ctx, botRequest("erasure", "900001"))
	if err != nil {
		t.Fatal(err)
	}
	if c2.Existing || c2.Request.ID == c.Request.ID {
		t.Fatal("a completed request must not absorb a new one")
	}
	r.wait(c2.Request.ID, dsar.AwaitingApproval)
	if _, err := r.svc.Approve(ctx, c2.Request.ID, "key:reviewer", ""); err != nil {
		t.Fatal(err)
	}
	r.wait(c2.Request.ID, dsar.InProgress, dsar.Completed)
	r.completeManual(c2.Request.ID)
	d2 := r.wait(c2.Request.ID, dsar.Completed)
	if del, masked := taskResults(t, d2, "deleted"), taskResults(t, d2, "masked"); del != 0 || masked != 0 {
		t.Errorf("second erasure deleted %d and masked %d", del, masked)
	}
	for k, want := range before {
		ds, key, _ := strings.Cut(k, "/")
		if got, _, _ := r.record("bot_db", ds, key); !reflect.DeepEqual(got, want) {
			t.Errorf("%s changed by the second erasure: %v -> %v", k, want, got)
		}
	}
	if n, _ := r.store.Count(ctx, "bot_db", "tg_users"); n != 1 {
		t.Errorf("%d users left, want the other person's only", n)
	}
}

func TestExportEnteredByStaffNeedsApproval(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	ctx := context.Background()
	r.seedWebUser("ann@example.com", "u-1", "")
	note := "Letter of 3 March; passport copy checked against the account name"
	c, err := r.svc.Create(ctx, dsar.CreateInput{
		Type: "export", Subject: identity.MustParse("email:ann@example.com"), Region: "FR", Channel: dsar.ChannelStaff,
		IsStaff: true, IdentityVerified: true, Note: note, Actor: "key:reviewer",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Request.Verification != "staff" || c.Request.Status != dsar.Verified {
		t.Fatalf("staff-verified request: %+v", c.Request)
	}
	d := r.wait(c.Request.ID, dsar.AwaitingApproval)
	if d.ApprovalRule != "approval_export" {
		t.Errorf("rule %q", d.ApprovalRule)
	}
	if tl := d.Timeline[0]; tl.Event != "received" || tl.Note != note || tl.Actor != "key:reviewer" {
		t.Errorf("first timeline entry %+v", tl)
	}
	if _, err := r.svc.Approve(ctx, c.Request.ID, "key:lead", "ok"); err != nil {
		t.Fatal(err)
	}
	r.wait(c.Request.ID, dsar.InProgress, dsar.Completed)
	r.completeManual(c.Request.ID)
	r.wait(c.Request.ID, dsar.Completed)
	recs, err := r.svc.Records(ctx, c.Request.ID)
	if err != nil {
		t.Fatal(err)
	}
	var email any
	for _, rec := range recs {
		if rec.Dataset == "users" && rec.Key == "u-1" {
			for _, f := range rec.Fields {
				if f.Field == "email" {
					email = f.Value
				}
			}
		}
	}
	if email != "ann@example.com" {
		t.Errorf("export did not disclose the account's email (%d records)", len(recs))
	}
	var subjects []string
	for _, e := range r.deliver() {
		if len(e.To) != 1 || e.To[0] != "ann@example.com" {
			t.Errorf("email to %v", e.To)
		}
		subjects = append(subjects, e.Subject)
	}
	// Acknowledgment and completion; no code: staff verified the person.
	if len(subjects) != 2 || !strings.Contains(subjects[1], "completed") {
		t.Errorf("emails %q", subjects)
	}
}

func TestRectificationWritesTheCorrection(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	ctx := context.Background()
	r.seedWebUser("ann@example.com", "u-1", "")
	c, err := r.svc.Create(ctx, dsar.CreateInput{
		Type: "rectification", Subject: identity.MustParse("email:ann@example.com"), Region: "DE", Channel: dsar.ChannelWeb,
		Changes: map[string]string{"user.name": "Ann Lee"}, Actor: "key:frontend", ClientIP: "198.51.100.7",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Verify(ctx, c.Request.ID, r.code("ann@example.com")); err != nil {
		t.Fatal(err)
	}
	d := r.wait(c.Request.ID, dsar.AwaitingApproval)
	if !reflect.DeepEqual(d.Changes, []string{"user.name"}) {
		t.Errorf("staff see the corrected categories, not values: %v", d.Changes)
	}
	var users *dsar.Task
	for i, task := range d.Tasks {
		if task.System == "app_db" && task.Dataset == "users" {
			users = &d.Tasks[i]
		}
	}
	if users == nil || users.Operation != dsar.OpRectify || len(users.Fields) != 1 || users.Fields[0].Field != "name" {
		t.Fatalf("rectify task on app_db/users: %+v", users)
	}
	if f, _, _ := r.record("app_db", "users", "u-1"); f["name"] != "Ann Example" {
		t.Fatalf("corrected before approval: %v", f)
	}
	if _, err := r.svc.Approve(ctx, c.Request.ID, "key:reviewer", ""); err != nil {
		t.Fatal(err)
	}
	r.wait(c.Request.ID, dsar.InProgress, dsar.Completed)
	r.completeManual(c.Request.ID)
	d = r.wait(c.Request.ID, dsar.Completed)
	f, _, _ := r.record("app_db", "users", "u-1")
	if f["name"] != "Ann Lee" || f["email"] != "ann@example.com" {
		t.Errorf("record after rectification: %v", f)
	}
	if n := taskResults(t, d, "updated"); n != 1 {
		t.Errorf("updated %d records, want 1", n)
	}
}

func TestRestrictionAndObjectionRunWithoutApproval(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	ctx := context.Background()
	r.seedBotUser("900005") // restriction
	r.seedBotUser("900006") // objection
	r.seedBotUser("900007") // neither

	run := func(typ, tg string) dsar.Detail {
		c, err := r.svc.Create(ctx, botRequest(typ, tg))
		if err != nil {
			t.Fatal(err)
		}
		d := r.wait(c.Request.ID, dsar.InProgress, dsar.Completed, dsar.AwaitingApproval)
		if d.Status == dsar.AwaitingApproval || d.ApprovalRequired == nil || *d.ApprovalRequired || d.ApprovalRule != "no_approval" {
			t.Fatalf("%s must run without approval: %s %v %q", typ, d.Status, d.ApprovalRequired, d.ApprovalRule)
		}
		r.completeManual(c.Request.ID)
		return r.wait(c.Request.ID, dsar.Completed)
	}
	d := run("restriction", "900005")
	if n := taskResults(t, d, "restricted"); n != 5 {
		t.Errorf("restriction marked %d records, want all 5", n)
	}
	for _, ds := range fiveDatasets {
		key := "900005"
		if ds != "tg_users" {
			key += map[string]string{"tg_generations": "-g1", "tg_payments": "-p1", "tg_credit_transactions": "-c1", "tg_request_logs": "-l1"}[ds]
		}
		if _, restricted, ok := r.record("bot_db", ds, key); !ok || !restricted {
			t.Errorf("%s/%s not restricted", ds, key)
		}
	}

	// An objection (GDPR Art. 21) stops processing on legitimate
	// interests: the request log, not the account the contract needs.
	d = run("objection", "900006")
	if _, restricted, _ := r.record("bot_db", "tg_request_logs", "900006-l1"); !restricted {
		t.Error("objection did not restrict the request log")
	}
	for _, k := range [][2]string{{"tg_users", "900006"}, {"tg_payments", "900006-p1"}} {
		if _, restricted, _ := r.record("bot_db", k[0], k[1]); restricted {
			t.Errorf("objection restricted %s, processed under contract", k[0])
		}
	}
	if n := taskResults(t, d, "restricted"); n != 1 {
		t.Errorf("objection marked %d records, want 1", n)
	}
	if n := r.count(`SELECT count(*) FROM recordstore_records WHERE restricted AND record_key LIKE '900007%'`); n != 0 {
		t.Errorf("%d of a bystander's records restricted", n)
	}
}

func TestAgentRequestIsConfirmedByTheSubject(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	ctx := context.Background()
	r.seedWebUser("bob@example.com", "u-2", "")
	// An erasure (a reasonable degree of certainty under Cal. Code Regs.
	// tit. 11 §7062(d)): an agent's CCPA access request also needs a second
	// factor after the code (TestVerificationLevelIsEnforced).
	c, err := r.svc.Create(ctx, dsar.CreateInput{
		Type: "erasure", Subject: identity.MustParse("email:bob@example.com"), Region: "US-CA", Channel: dsar.ChannelAgent,
		Agent: &dsar.Agent{Name: "Privacy Agents LLC", Email: "requests@agents.example.com", AuthorizationRef: "POA-2027-001"},
		Actor: "key:frontend", ClientIP: "198.51.100.8",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Request.Status != dsar.IdentityPending || c.Request.Regime != "ccpa" {
		t.Fatalf("agent request %+v", c.Request)
	}
	code := r.code("bob@example.com") // the subject, not the agent, gets the code
	if _, err := r.svc.Verify(ctx, c.Request.ID, code); err != nil {
		t.Fatal(err)
	}
	// An agent's request waits for a reviewer (CCPA Regs. §7063(a): the
	// agent's signed permission is checked).
	if w := r.wait(c.Request.ID, dsar.AwaitingApproval); w.ApprovalRule != "approval_agent" {
		t.Fatalf("approval rule %q", w.ApprovalRule)
	}
	if _, err := r.svc.Approve(ctx, c.Request.ID, "key:reviewer", "POA-2027-001 on file"); err != nil {
		t.Fatal(err)
	}
	r.wait(c.Request.ID, dsar.InProgress, dsar.Completed)
	r.completeManual(c.Request.ID)
	d := r.wait(c.Request.ID, dsar.Completed)
	if d.Agent == nil || d.Agent.AuthorizationRef != "POA-2027-001" || d.Verification != "email_code" {
		t.Errorf("agent %+v verification %q", d.Agent, d.Verification)
	}
	b, _ := json.Marshal(d)
	if strings.Contains(string(b), "Privacy Agents") || strings.Contains(string(b), "agents.example.com") {
		t.Error("the agent's name and address are sealed, not shown in the request")
	}
	// The person gets the code and the result; the agent is told the
	// request was received and completed (CCPA Regs. §7063), never the code
	// or the person's data.
	got := map[string][]string{}
	for _, e := range r.deliver() {
		if len(e.To) != 1 {
			t.Fatalf("email to %v", e.To)
		}
		got[e.To[0]] = append(got[e.To[0]], e.Subject)
		if e.To[0] == "requests@agents.example.com" {
			if strings.Contains(e.Text, code) || strings.Contains(e.Text, "ready to download") || !strings.Contains(e.Text, "authorized agent") {
				t.Errorf("the agent's email: %s", e.Text)
			}
		}
	}
	if len(got["bob@example.com"]) != 3 || len(got["requests@agents.example.com"]) != 2 || len(got) != 2 {
		t.Errorf("emails sent: %v", got)
	}
}

// An agent's uploaded authorization is stored sealed (its bytes and name
// appear nowhere in the clear), described to staff by size and hash,
// opened only through an audited call, and cleared by retention with the
// request's other personal data.
func TestAgentAuthorizationDocument(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	ctx := context.Background()
	r.seedWebUser("carol@example.com", "u-3", "")
	pdf := []byte("%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n% I, Carol Example, authorize Privacy Agents LLC\n%%EOF\n")
	c, err := r.svc.Create(ctx, dsar.CreateInput{
		Type: "access", Subject: identity.MustParse("email:carol@example.com"), Region: "US-CA", Channel: dsar.ChannelAgent,
		Agent:         &dsar.Agent{Name: "Privacy Agents LLC", Email: "requests@agents.example.com"},
		AgentDocument: &dsar.Document{Name: "carol-authorization.pdf", ContentType: "text/html", Content: pdf},
		Actor:         "system:privacy-center", ClientIP: "198.51.100.9",
	})
	if err != nil {
		t.Fatal(err)
	}
	id := c.Request.ID
	for _, q := range []string{
		`SELECT count(*) FROM privacy_request_documents WHERE position('Carol Example'::bytea IN content) > 0 OR position('carol-authorization'::bytea IN meta) > 0`,
		`SELECT count(*) FROM privacy_request_documents WHERE position('%PDF'::bytea IN content) > 0`,
	} {
		if n := r.count(q); n != 0 {
			t.Errorf("document stored in the clear: %s", q)
		}
	}
	d, err := r.svc.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(pdf)
	if len(d.Documents) != 1 || d.Documents[0].Kind != dsar.DocAgentAuthorization || d.Documents[0].Size != len(pdf) || d.Documents[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("documents %+v", d.Documents)
	}
	if d.Agent == nil || !strings.Contains(d.Agent.AuthorizationRef, hex.EncodeToString(sum[:])) {
		t.Errorf("authorization ref %+v does not name the uploaded document", d.Agent)
	}
	v, err := r.svc.Verify(ctx, id, r.code("carol@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	// A CCPA access request asks for a high degree of certainty (Cal. Code
	// Regs. tit. 11 §7062(c)): the code alone is not enough; staff's
	// review of the signed instruction is the second factor.
	if !v.Request.AwaitingSecondFactor {
		t.Fatalf("verified by the code alone: %s", v.Request.Status)
	}
	if _, err := r.svc.ReviewDocument(ctx, id, dsar.DocAgentAuthorization, "key:reviewer", "unread"); !isCode(err, apperr.Conflict) {
		t.Fatalf("reviewed before it was opened: %v", err)
	}
	if _, err := r.svc.Approve(ctx, id, "key:reviewer", "fine"); !isCode(err, apperr.Conflict) {
		t.Fatalf("approved before the authorization was opened: %v", err)
	}
	doc, err := r.svc.OpenDocument(ctx, id, dsar.DocAgentAuthorization, "key:reviewer")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(doc.Content, pdf) || doc.ContentType != "application/pdf" || doc.Name != "carol-authorization.pdf" {
		t.Errorf("opened %q %q %d bytes", doc.Name, doc.ContentType, len(doc.Content))
	}
	if n := r.count(`SELECT count(*) FROM privacy_request_events WHERE request_id = '` + id + `' AND event = 'document_opened' AND actor = 'key:reviewer'`); n != 1 {
		t.Errorf("%d document_opened events, want 1", n)
	}
	if _, err := r.svc.ReviewDocument(ctx, id, dsar.DocAgentAuthorization, "key:reviewer", "signed by Carol; scope: access"); err != nil {
		t.Fatal(err)
	}
	r.wait(id, dsar.AwaitingApproval)
	if _, err := r.svc.Approve(ctx, id, "key:reviewer", "authorization checked"); err != nil {
		t.Fatalf("approve after review: %v", err)
	}
	if _, err := r.svc.OpenDocument(ctx, id, "passport", "key:reviewer"); !isCode(err, apperr.NotFound) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := r.svc.OpenDocument(ctx, "00000000-0000-4000-8000-000000000000", dsar.DocAgentAuthorization, "key:reviewer"); !isCode(err, apperr.NotFound) {
		t.Errorf("unknown request: %v", err)
	}
	// Tampering with the sealed row (another request's document moved
	// here) is caught by the associated data, not served.
	other, err := r.svc.Create(ctx, dsar.CreateInput{
		Type: "erasure", Subject: identity.MustParse("email:carol@example.com"), Region: "US-CA", Channel: dsar.ChannelAgent,
		Agent:         &dsar.Agent{Name: "Privacy Agents LLC", Email: "requests@agents.example.com"},
		AgentDocument: &dsar.Document{Name: "b.png", Content: []byte("\x89PNG\r\n\x1a\nrest")},
		Actor:         "system:privacy-center", ClientIP: "198.51.100.9",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.pool.Exec(ctx, `UPDATE privacy_request_documents d SET content = o.content, meta = o.meta, kid = o.kid
		FROM privacy_request_documents o WHERE d.request_id = $1 AND o.request_id = $2`, id, other.Request.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.OpenDocument(ctx, id, dsar.DocAgentAuthorization, "key:reviewer"); err == nil {
		t.Error("a document moved from another request was opened")
	}
}

const botToken = "123456789:AAE-test-token-for-initdata"

func signedInitData(user int64, authDate time.Time, token string) string {
	return telegram.Sign(map[string]string{
		"user":      `{"id":` + strconv.FormatInt(user, 10) + `,"first_name":"Ann","language_code":"en"}`,
		"auth_date": strconv.FormatInt(authDate.Unix(), 10),
		"query_id":  "AAHdF6IQAAAAAN0XohDhrOrc",
	}, token)
}

func TestTelegramInitData(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{cfg: dsar.Config{TelegramBotToken: botToken}})
	ctx := context.Background()
	now := r.clk.Now()
	in := func(initData string) dsar.CreateInput {
		return dsar.CreateInput{Type: "access", Subject: identity.MustParse("tg:900010"), Region: "DE", Channel: dsar.ChannelBot,
			InitData: initData, Actor: "key:frontend"}
	}
	valid := signedInitData(900010, now.Add(-time.Minute), botToken)
	forged := valid[:len(valid)-1] + map[bool]string{true: "0", false: "1"}[!strings.HasSuffix(valid, "0")]
	refused := map[string]string{
		"forged hash":        forged,
		"another bot":        signedInitData(900010, now.Add(-time.Minute), "987654321:AAE-another-bot"),
		"stale auth_date":    signedInitData(900010, now.Add(-25*time.Hour), botToken),
		"future auth_date":   signedInitData(900010, now.Add(time.Hour), botToken),
		"another user":       signedInitData(900011, now.Add(-time.Minute), botToken),
		"garbage":            "user=%7B%7D&hash=zz",
		"asserted and empty": "",
	}
	for name, data := range refused {
		_, err := r.svc.Create(ctx, in(data))
		if !isCode(err, apperr.Invalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if n := r.count(`SELECT count(*) FROM privacy_requests`); n != 0 {
		t.Fatalf("refused initData stored %d requests", n)
	}
	if n := r.count(`SELECT count(*) FROM subjects`); n != 0 {
		t.Fatalf("refused initData stored %d subjects", n)
	}
	c, err := r.svc.Create(ctx, in(valid))
	if err != nil {
		t.Fatal(err)
	}
	if c.Request.Verification != "telegram" || c.Request.Status != dsar.Verified {
		t.Fatalf("initData request %+v", c.Request)
	}
	r.wait(c.Request.ID, dsar.InProgress, dsar.Completed)
	r.completeManual(c.Request.ID)
	r.wait(c.Request.ID, dsar.Completed)

	// Without a configured bot token, initData cannot be checked at all.
	r2 := newRig(t, rigOpts{noStart: true})
	if _, err := r2.svc.Create(ctx, in(signedInitData(900010, r2.clk.Now(), botToken))); !isCode(err, apperr.Invalid) {
		t.Errorf("no bot token: %v", err)
	}
}

// One person, two identities: an open request of a type is found under any
// identity the person is known by — one the request resolved through a
// connector, or one the consent ledger links — and returned instead of a
// second request (GDPR Art. 12(2): the controller facilitates the exercise
// of rights; answering one erasure twice, or running it twice, does not).
func TestDuplicateAcrossIdentities(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	ctx := context.Background()
	r.seedWebUser("dora@example.com", "u-9", "900901")
	web, err := r.svc.Create(ctx, dsar.CreateInput{Type: "erasure", Subject: identity.MustParse("email:dora@example.com"), Region: "DE",
		Channel: dsar.ChannelWeb, Actor: "system:privacy-center", ClientIP: "198.51.100.20"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Verify(ctx, web.Request.ID, r.code("dora@example.com")); err != nil {
		t.Fatal(err)
	}
	r.wait(web.Request.ID, dsar.AwaitingApproval) // planned: tg:900901 resolved through the user
	bot := func(typ, tg string) dsar.Created {
		t.Helper()
		c, err := r.svc.Create(ctx, dsar.CreateInput{Type: typ, Subject: identity.MustParse("tg:" + tg), Region: "DE", Channel: dsar.ChannelBot,
			IdentityAsserted: true, CanAssert: true, Actor: "key:bot"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := bot("erasure", "900901"); !c.Existing || c.Request.ID != web.Request.ID || c.StatusToken != "" {
		t.Errorf("erasure by the resolved Telegram id: existing %v id %s, want %s", c.Existing, c.Request.ID, web.Request.ID)
	}
	if c := bot("access", "900901"); c.Existing {
		t.Error("an access request was taken for the open erasure")
	}

	// Linked in the consent ledger (the bot's backend said they are one
	// person), before any request resolved anything.
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		a, err := subjects.Upsert(ctx, tx, r.kr, identity.MustParse("email:eve@example.com"), r.clk.Now())
		if err != nil {
			return err
		}
		b, err := subjects.Upsert(ctx, tx, r.kr, identity.MustParse("tg:900902"), r.clk.Now())
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO subject_links (subject_id, linked_id, created_at) VALUES ($1, $2, now())`, b.ID, a.ID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	eve, err := r.svc.Create(ctx, dsar.CreateInput{Type: "erasure", Subject: identity.MustParse("email:eve@example.com"), Region: "DE",
		Channel: dsar.ChannelWeb, Actor: "system:privacy-center", ClientIP: "198.51.100.21"})
	if err != nil {
		t.Fatal(err)
	}
	if c := bot("erasure", "900902"); !c.Existing || c.Request.ID != eve.Request.ID {
		t.Errorf("erasure by a linked Telegram id: existing %v id %s, want %s", c.Existing, c.Request.ID, eve.Request.ID)
	}
	if c := bot("erasure", "900903"); c.Existing {
		t.Error("a stranger's erasure was taken for someone else's")
	}
	if n := r.count(`SELECT count(*) FROM privacy_requests WHERE type = 'erasure'`); n != 3 {
		t.Errorf("%d erasure requests, want 3 (dora, eve, the stranger)", n)
	}
}

// GDPR Art. 19: a completed erasure is communicated to every recipient of
// the person's data, and the person may learn who they were. With the
// bundle's map, every recipient a bot erasure reaches is told by the
// request's own tasks; two recipients its data was sent to but the plan
// does not reach (patched in: tg_users → resend, crisp) are told by email
// to the processor's privacy contact (resend) or wait for staff (crisp).
func TestRecipientsAreTold(t *testing.T) {
	t.Parallel()
	raw, err := fs.ReadFile(policies.FS, "data/datamap.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := strings.Replace(string(raw), "    processor: Resend\n", "    processor: Resend\n    privacy_contact: privacy@resend.example\n", 1)
	m = strings.Replace(m, "        timestamp: created_at\n        purpose: bot_service\n        retention: account\n",
		"        timestamp: created_at\n        purpose: bot_service\n        retention: account\n        recipients: [resend, crisp, posthog]\n", 1)
	if !strings.Contains(m, "privacy_contact: privacy@resend.example") || !strings.Contains(m, "recipients: [resend, crisp, posthog]") {
		t.Fatal("the data map patch did not apply")
	}
	e, err := policy.Load(context.Background(), replaceDataMap(policies.FS, m))
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOpts{engine: e})
	ctx := context.Background()
	// PostHog's processor runs an endpoint for data-subject notices.
	eps := &webhooks.Endpoints{Pool: r.pool, Keys: r.kr, Clock: r.clk, AllowLoopback: true}
	if _, err := eps.Create(ctx, webhooks.CreateInput{URL: "http://127.0.0.1:9/notices", EventTypes: []string{notify.EventRecipientNotice},
		IncludeIdentities: true, RecipientSystem: "posthog"}, "system:test"); err != nil {
		t.Fatal(err)
	}
	// An endpoint for everything else never gets a recipient notice.
	if _, err := eps.Create(ctx, webhooks.CreateInput{URL: "http://127.0.0.1:9/all", IncludeIdentities: true}, "system:test"); err != nil {
		t.Fatal(err)
	}
	c, err := r.svc.Create(ctx, dsar.CreateInput{Type: "erasure", Subject: identity.MustParse("tg:900950"), Region: "DE", Channel: dsar.ChannelBot,
		IdentityAsserted: true, CanAssert: true, Actor: "key:bot"})
	if err != nil {
		t.Fatal(err)
	}
	id := c.Request.ID
	r.wait(id, dsar.AwaitingApproval)
	if _, err := r.svc.Approve(ctx, id, "key:reviewer", "ok"); err != nil {
		t.Fatal(err)
	}
	r.wait(id, dsar.InProgress, dsar.Completed)
	r.completeManual(id)
	r.wait(id, dsar.Completed)
	got, err := r.svc.Recipients(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]dsar.Recipient{}
	for _, rc := range got {
		by[rc.System] = rc
	}
	if rc := by["resend"]; rc.Method != "email" || rc.Status != "queued" {
		t.Errorf("resend: %+v", rc)
	}
	if rc := by["crisp"]; rc.Method != "staff" || rc.Status != "pending" {
		t.Errorf("crisp: %+v", rc)
	}
	if rc := by["posthog"]; rc.Method != "webhook" || rc.Status != "queued" {
		t.Errorf("posthog: %+v", rc)
	}
	// The notice went to PostHog's endpoint alone, sealed, naming the person
	// as PostHog was sent them; once accepted it counts as told.
	var kid, endpointURL string
	var ct []byte
	var did string
	if err := r.pool.QueryRow(ctx, `SELECT d.id::text, d.body_kid, d.body_ct, e.url FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
		WHERE d.event_type = 'recipient.notice'`).Scan(&did, &kid, &ct, &endpointURL); err != nil {
		t.Fatalf("one recipient notice delivery: %v", err)
	}
	body, err := r.kr.Open(kid, ct, notify.WebhookBodyAAD(did))
	if err != nil || endpointURL != "http://127.0.0.1:9/notices" || !strings.Contains(string(body), "tg:900950") || !strings.Contains(string(body), id) {
		t.Errorf("notice to %s: %s %v", endpointURL, body, err)
	}
	if _, err := r.pool.Exec(ctx, `UPDATE webhook_deliveries SET status = 'delivered', delivered_at = now() WHERE id = $1`, did); err != nil {
		t.Fatal(err)
	}
	if after, err := r.svc.Recipients(ctx, id); err != nil {
		t.Fatal(err)
	} else {
		for _, rc := range after {
			if rc.System == "posthog" && (rc.Status != "done" || rc.DoneAt == nil) {
				t.Errorf("posthog after its endpoint accepted: %+v", rc)
			}
		}
	}
	for _, sys := range []string{"sentry", "telegram"} {
		if rc := by[sys]; rc.Method != "manual_task" || rc.Status != "done" {
			t.Errorf("%s (reached by a manual task): %+v", sys, rc)
		}
	}
	if _, ok := by["bot_db"]; ok && by["bot_db"].Method != "connector" {
		t.Errorf("bot_db: %+v", by["bot_db"])
	}
	// The processor's email names the person as it knows them (tg), and
	// goes to its privacy contact.
	sent := false
	for _, m := range r.deliver() {
		if len(m.To) == 1 && m.To[0] == "privacy@resend.example" {
			sent = strings.Contains(m.Text, "tg:900950") && strings.Contains(m.Text, id)
		}
	}
	if !sent {
		t.Error("no notice to Resend's privacy contact naming the person and the request")
	}
	// The person sees who was told; crisp is not yet.
	st, err := r.svc.Status(ctx, id, c.StatusToken)
	if err != nil {
		t.Fatal(err)
	}
	told := map[string]bool{}
	for _, p := range st.Recipients {
		told[p.Name] = p.Told
	}
	if !told["Resend"] || told["Crisp"] || len(st.Recipients) != len(got) {
		t.Errorf("the person's view: %+v", st.Recipients)
	}
	// Staff tell Crisp: a note is required, and then it is done.
	if _, err := r.svc.RecipientTold(ctx, id, "crisp", "key:reviewer", " "); !isCode(err, apperr.Invalid) {
		t.Errorf("told without a note: %v", err)
	}
	rc, err := r.svc.RecipientTold(ctx, id, "crisp", "key:reviewer", "emailed Crisp's DPO")
	if err != nil || rc.Status != "done" || rc.DoneBy != "key:reviewer" {
		t.Fatalf("told: %+v %v", rc, err)
	}
	if _, err := r.svc.RecipientTold(ctx, id, "crisp", "key:reviewer", "again"); !isCode(err, apperr.NotFound) {
		t.Errorf("told twice: %v", err)
	}
}
