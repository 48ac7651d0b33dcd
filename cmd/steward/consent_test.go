package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/consent"
)

type checkResp struct {
	Allow          bool   `json:"allow"`
	Reason         string `json:"reason"`
	Rule           string `json:"rule"`
	Regime         string `json:"regime"`
	PolicyRevision string `json:"policy_revision"`
}

func (r *replica) check(key, subject, purpose, jurisdiction string, extra ...string) checkResp {
	r.t.Helper()
	q := url.Values{"subject": {subject}, "purpose": {purpose}}
	if jurisdiction != "" {
		q.Set("jurisdiction", jurisdiction)
	}
	var headers []string
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i] == "Sec-GPC" {
			headers = append(headers, extra[i], extra[i+1])
		} else {
			q.Set(extra[i], extra[i+1])
		}
	}
	res := r.do("GET", "/v1/consent/check?"+q.Encode(), key, nil, headers...)
	if res.status != 200 {
		r.t.Fatalf("check %s %s: %d %s", subject, purpose, res.status, res.body)
	}
	var c checkResp
	res.json(r.t, &c)
	return c
}

func (r *replica) record(key string, body map[string]any, headers ...string) consent.Event {
	r.t.Helper()
	res := r.do("POST", "/v1/consents", key, body, headers...)
	if res.status != 201 {
		r.t.Fatalf("record: %d %s", res.status, res.body)
	}
	var out struct {
		Event      consent.Event `json:"event"`
		ReceiptURL string        `json:"receipt_url"`
	}
	res.json(r.t, &out)
	if out.Event.ID == "" || out.ReceiptURL != "/v1/consents/receipts/"+out.Event.ID {
		r.t.Fatalf("record response %s", res.body)
	}
	return out.Event
}

func grant(subject, purpose, state string, more ...any) map[string]any {
	b := map[string]any{"subject": subject, "purpose": purpose, "state": state, "source": "web_banner", "notice_version": "2.0", "jurisdiction": "DE", "language": "en"}
	for i := 0; i+1 < len(more); i += 2 {
		b[more[i].(string)] = more[i+1]
	}
	return b
}

func TestConsentPolicyRulesThroughTheAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.start()
	fk := e.keys["frontend"]

	t.Run("essential is always allowed", func(t *testing.T) {
		c := r.check(fk, "tg:1001", "essential", "DE")
		if !c.Allow || c.Reason != "essential" || c.PolicyRevision != r.app.policies.Current().Revision() {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("EU, UK and BR are opt-in: no record denies", func(t *testing.T) {
		for _, j := range []string{"DE", "FR", "GB", "BR"} {
			if c := r.check(fk, "email:nobody@example.com", "analytics", j); c.Allow || c.Reason != "no_consent" {
				t.Fatalf("%s: %+v", j, c)
			}
		}
	})
	t.Run("a grant allows and a one-call withdrawal denies again", func(t *testing.T) {
		r.record(fk, grant("email:Ann@Example.COM", "analytics", "granted"))
		// Emails are normalized: another spelling of the same mailbox sees it.
		if c := r.check(fk, "email:ann@example.com", "analytics", "DE"); !c.Allow || c.Reason != "granted" || c.Rule != "stored_grant" {
			t.Fatalf("after grant: %+v", c)
		}
		r.record(fk, grant("email:ann@example.com", "analytics", "withdrawn", "source", "web_settings"))
		if c := r.check(fk, "email:ann@example.com", "analytics", "DE"); c.Allow || c.Reason != "withdrawn" {
			t.Fatalf("after withdrawal: %+v", c)
		}
	})
	t.Run("California is opt-out for analytics, not for consent purposes", func(t *testing.T) {
		// Web: "Improve experience, analyze usage ... | Legitimate interests
		// (you can opt out of analytics in settings)".
		if c := r.check(fk, "user:ca-1", "analytics", "US-CA"); !c.Allow || c.Reason != "opt_out_default" || c.Regime != "ccpa" {
			t.Fatalf("%+v", c)
		}
		// Web: "Marketing emails, Crisp outreach, non-essential cookies |
		// Consent"; bot 2.3: broadcasts "if you've consented to receive
		// them". No record, no marketing or broadcast, in the US too.
		for _, q := range [][3]string{{"user:ca-1", "marketing", "US-CA"}, {"user:us-1", "marketing", "US"}, {"tg:9001", "broadcast", "US-TX"}, {"user:ca-1", "functional", "US-CA"}} {
			if c := r.check(fk, q[0], q[1], q[2]); c.Allow || c.Reason != "no_consent" || c.Rule != "consent_required_everywhere" {
				t.Fatalf("%v: %+v", q, c)
			}
		}
	})
	t.Run("third-party models need explicit consent", func(t *testing.T) {
		// Web: "we do not call other third-party models without your consent".
		if c := r.check(fk, "user:ai-1", "third_party_models", "US-CA"); c.Allow || c.Reason != "explicit_consent_required" {
			t.Fatalf("%+v", c)
		}
		r.record(fk, grant("user:ai-1", "third_party_models", "granted", "source", "web_settings"))
		if c := r.check(fk, "user:ai-1", "third_party_models", "DE"); !c.Allow {
			t.Fatalf("after consent: %+v", c)
		}
	})
	t.Run("a purpose the product does not have is a 400 on check and on record", func(t *testing.T) {
		for _, q := range [][2]string{{"tg:4242", "marketing"}, {"visitor:web-visitor-1", "broadcast"}} {
			res := r.do("GET", "/v1/consent/check?"+url.Values{"subject": {q[0]}, "purpose": {q[1]}}.Encode(), fk, nil)
			if res.status != 400 || res.problem(t).Errors[0].Field != "purpose" {
				t.Fatalf("check %v: %d %s", q, res.status, res.body)
			}
			res = r.do("POST", "/v1/consents", fk, grant(q[0], q[1], "granted", "notice_version", map[bool]string{true: "1.0", false: "2.0"}[strings.HasPrefix(q[0], "tg:")]))
			if res.status != 400 || res.problem(t).Errors[0].Field != "purpose" {
				t.Fatalf("record %v: %d %s", q, res.status, res.body)
			}
		}
		res := r.do("POST", "/v1/consent/check", fk, map[string]any{"checks": []map[string]any{{"subject": "tg:1", "purpose": "essential"}, {"subject": "tg:1", "purpose": "marketing"}}})
		if res.status != 400 || res.problem(t).Errors[0].Field != "checks[1].purpose" {
			t.Fatalf("batch: %d %s", res.status, res.body)
		}
	})
	t.Run("GPC on the check denies marketing and is recorded once", func(t *testing.T) {
		c := r.check(fk, "user:ca-2", "marketing", "US-CA", "Sec-GPC", "1")
		if c.Allow || c.Reason != "gpc_opt_out" {
			t.Fatalf("%+v", c)
		}
		// Analytics is not sale/share: GPC leaves it alone.
		if c := r.check(fk, "user:ca-2", "analytics", "US-CA", "Sec-GPC", "1"); !c.Allow {
			t.Fatalf("analytics under GPC: %+v", c)
		}
		// The stored signal keeps denying without the header.
		if c := r.check(fk, "user:ca-2", "marketing", "US-CA"); c.Allow || c.Reason != "gpc_opt_out" {
			t.Fatalf("stored GPC: %+v", c)
		}
		var n int
		if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM consent_events WHERE source = 'gpc'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		gpcPurposes := 0
		for _, p := range r.app.policies.Current().Purposes {
			if p.GPCApplies && slices.Contains(p.Products, "web") {
				gpcPurposes++
			}
		}
		if n != gpcPurposes {
			t.Fatalf("gpc events = %d, want one per GPC purpose (%d), recorded once", n, gpcPurposes)
		}
	})
	t.Run("a grant made with GPC on is an informed opt-in", func(t *testing.T) {
		r.record(fk, grant("user:ca-3", "marketing", "granted", "jurisdiction", "US-CA", "source", "web_settings"), "Sec-GPC", "1")
		if c := r.check(fk, "user:ca-3", "marketing", "US-CA", "Sec-GPC", "1"); !c.Allow || c.Reason != "granted" {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("minors never get marketing or model training", func(t *testing.T) {
		for _, p := range []string{"marketing", "model_training"} {
			r.record(fk, grant("user:teen-1", p, "granted", "jurisdiction", "US-CA"))
			if c := r.check(fk, "user:teen-1", p, "US-CA", "age", "15"); c.Allow || c.Reason != "below_minimum_age" {
				t.Fatalf("%s web age 15: %+v", p, c)
			}
		}
		// The bot's minimum is 13 (bot 7: "not directed to individuals under
		// the age of 13"): a 14-year-old who consented gets broadcasts, a
		// 12-year-old never, whatever they chose.
		r.record(fk, grant("tg:4242", "broadcast", "granted", "source", "bot", "notice_version", "1.0"))
		if c := r.check(fk, "tg:4242", "broadcast", "US-CA", "age", "14"); !c.Allow {
			t.Fatalf("bot age 14: %+v", c)
		}
		if c := r.check(fk, "tg:4242", "broadcast", "US-CA", "age", "12"); c.Allow || c.Reason != "below_minimum_age" {
			t.Fatalf("bot age 12: %+v", c)
		}
		// Every consent-based purpose, not only some (web: "Our services
		// target users aged 16 or older").
		for _, p := range []string{"functional", "third_party_models"} {
			r.record(fk, grant("user:teen-1", p, "granted"))
			if c := r.check(fk, "user:teen-1", p, "DE", "age", "15"); c.Allow || c.Reason != "below_minimum_age" {
				t.Fatalf("%s web age 15: %+v", p, c)
			}
		}
	})
	t.Run("a consent must name a known version of the product's notice", func(t *testing.T) {
		// Consent is informed only against the text the person was shown
		// (GDPR Art. 7(1), 4(11)): a version the registry does not hold
		// proves nothing.
		for _, v := range []string{"1.4", "2.1", "3.0"} {
			res := r.do("POST", "/v1/consents", fk, grant("user:old-notice", "analytics", "granted", "notice_version", v))
			if res.status != 400 || res.problem(t).Errors[0].Field != "notice_version" {
				t.Fatalf("%s: %d %s", v, res.status, res.body)
			}
		}
		// The bot's notice is 1.0, not the web's 2.0.
		res := r.do("POST", "/v1/consents", fk, grant("tg:31", "broadcast", "granted", "source", "bot", "notice_version", "2.0"))
		if res.status != 400 || res.problem(t).Errors[0].Field != "notice_version" {
			t.Fatalf("bot 2.0: %d %s", res.status, res.body)
		}
	})
	t.Run("model training needs explicit consent even where opt-out", func(t *testing.T) {
		if c := r.check(fk, "user:mt", "model_training", "US-CA"); c.Allow || c.Reason != "explicit_consent_required" {
			t.Fatalf("%+v", c)
		}
	})
}

func TestConsentStateAndHistory(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.start()
	fk := e.keys["frontend"]
	subj := "tg:777"
	var ids []string
	for i, st := range []string{"granted", "withdrawn", "granted", "denied", "granted"} {
		ev := r.record(fk, map[string]any{"subject": subj, "purpose": "broadcast", "state": st, "source": "bot", "notice_version": "1.0", "language": []string{"uz", "ru", "en"}[i%3]})
		if ev.Product != "bot" {
			t.Fatalf("tg subject recorded under product %q", ev.Product)
		}
		ids = append(ids, ev.ID)
	}
	r.record(fk, map[string]any{"subject": subj, "purpose": "analytics", "state": "denied", "source": "bot", "notice_version": "1.0"})

	res := r.do("GET", "/v1/consents?subject="+subj, fk, nil)
	var cur struct {
		Subject  string                 `json:"subject"`
		Purposes []consent.PurposeState `json:"purposes"`
	}
	res.json(t, &cur)
	got := map[string]string{}
	for _, p := range cur.Purposes {
		got[p.Purpose] = p.State
	}
	if got["broadcast"] != "granted" || got["analytics"] != "denied" || got["marketing"] != "none" || len(got) != len(r.app.policies.Current().Purposes) {
		t.Fatalf("current = %v", got)
	}

	// History, newest first, two at a time, following the cursor.
	var seen []string
	cursor := ""
	for page := 0; page < 10; page++ {
		q := url.Values{"subject": {subj}, "limit": {"2"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		res := r.do("GET", "/v1/consents/history?"+q.Encode(), fk, nil)
		var h struct {
			Events     []consent.Event `json:"events"`
			NextCursor *string         `json:"next_cursor"`
		}
		res.json(t, &h)
		for _, ev := range h.Events {
			seen = append(seen, ev.ID)
		}
		if h.NextCursor == nil {
			break
		}
		cursor = *h.NextCursor
	}
	if len(seen) != 6 {
		t.Fatalf("history returned %d events, want 6", len(seen))
	}
	// The five broadcast events come back in reverse order of recording.
	var bc []string
	for _, id := range seen {
		for _, x := range ids {
			if id == x {
				bc = append(bc, id)
			}
		}
	}
	for i := range ids {
		if bc[i] != ids[len(ids)-1-i] {
			t.Fatalf("history order %v, want reverse of %v", bc, ids)
		}
	}
}

func TestBatchCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.start()
	fk := e.keys["frontend"]
	r.record(fk, grant("tg:55", "broadcast", "granted", "source", "bot", "notice_version", "1.0"))
	checks := []map[string]any{
		{"subject": "tg:55", "purpose": "broadcast", "jurisdiction": "DE"},
		{"subject": "tg:56", "purpose": "broadcast", "jurisdiction": "DE"},
		{"subject": "tg:55", "purpose": "essential"},
		{"subject": "visitor:abcdef123456", "purpose": "analytics", "jurisdiction": "US-CA"},
		{"subject": "user:kid", "purpose": "marketing", "jurisdiction": "US-CA", "age": 10},
	}
	res := r.do("POST", "/v1/consent/check", fk, map[string]any{"checks": checks})
	if res.status != 200 {
		t.Fatalf("%d %s", res.status, res.body)
	}
	var out struct {
		PolicyRevision string      `json:"policy_revision"`
		Results        []checkResp `json:"results"`
	}
	res.json(t, &out)
	want := []struct {
		allow  bool
		reason string
	}{{true, "granted"}, {false, "no_consent"}, {true, "essential"}, {true, "opt_out_default"}, {false, "below_minimum_age"}}
	if len(out.Results) != len(want) || out.PolicyRevision == "" {
		t.Fatalf("%s", res.body)
	}
	for i, w := range want {
		if out.Results[i].Allow != w.allow || out.Results[i].Reason != w.reason {
			t.Errorf("result %d = %+v, want %v %s", i, out.Results[i], w.allow, w.reason)
		}
	}

	t.Run("a thousand checks are accepted", func(t *testing.T) {
		many := make([]map[string]any, consent.MaxBatch)
		for i := range many {
			many[i] = map[string]any{"subject": fmt.Sprintf("tg:%d", 10000+i%300), "purpose": "broadcast", "jurisdiction": "DE"}
		}
		res := r.do("POST", "/v1/consent/check", fk, map[string]any{"checks": many})
		var out struct {
			Results []checkResp `json:"results"`
		}
		res.json(t, &out)
		if res.status != 200 || len(out.Results) != consent.MaxBatch {
			t.Fatalf("%d, %d results", res.status, len(out.Results))
		}
	})
	t.Run("GPC in a batch is recorded once per subject", func(t *testing.T) {
		before := countRows(t, e.pool, "consent_events")
		batch := map[string]any{"checks": []map[string]any{
			{"subject": "visitor:gpcbatch0001", "purpose": "marketing", "jurisdiction": "US-CA"},
			{"subject": "visitor:gpcbatch0001", "purpose": "marketing", "jurisdiction": "US-CA"},
		}}
		res := r.do("POST", "/v1/consent/check", fk, batch, "Sec-GPC", "1")
		var out struct {
			Results []checkResp `json:"results"`
		}
		res.json(t, &out)
		for _, c := range out.Results {
			if c.Allow || c.Reason != "gpc_opt_out" {
				t.Fatalf("%+v", out.Results)
			}
		}
		// One per GPC purpose of the visitor's product (web: marketing,
		// model_training); the bot's broadcasts are not the web's to refuse.
		if added := countRows(t, e.pool, "consent_events") - before; added != 2 {
			t.Fatalf("gpc events added = %d, want 2 (one per web GPC purpose)", added)
		}
	})
}

func TestCrossReplicaInvalidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a, b := e.start(), e.start()
	fk := e.keys["frontend"]
	subj := "tg:90210"

	// B answers from its cache after the first check.
	if c := b.check(fk, subj, "broadcast", "DE"); c.Allow {
		t.Fatalf("before grant: %+v", c)
	}
	if b.app.consent.Cache().Len() == 0 {
		t.Fatal("replica B did not cache the subject; the test would not prove invalidation")
	}
	start := time.Now()
	a.record(fk, grant(subj, "broadcast", "granted", "source", "bot", "notice_version", "1.0"))
	// Read-your-writes on the writing replica: no waiting.
	if c := a.check(fk, subj, "broadcast", "DE"); !c.Allow {
		t.Fatalf("replica A does not see its own write: %+v", c)
	}
	// B sees it once the NOTIFY arrives; there is no TTL that could explain it.
	var seenAfter time.Duration
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if c := b.check(fk, subj, "broadcast", "DE"); c.Allow {
			seenAfter = time.Since(start)
			break
		}
	}
	if seenAfter == 0 {
		t.Fatal("replica B never saw the write made on replica A")
	}
	t.Logf("replica B saw replica A's write after %v (includes the write itself)", seenAfter)

	// And the other way round, for a withdrawal.
	b.record(fk, grant(subj, "broadcast", "withdrawn", "source", "bot", "notice_version", "1.0"))
	ok := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if c := a.check(fk, subj, "broadcast", "DE"); !c.Allow && c.Reason == "withdrawn" {
			ok = true
			break
		}
	}
	if !ok {
		t.Fatal("replica A never saw the withdrawal made on replica B")
	}

	t.Run("a revoked key stops working on every replica", func(t *testing.T) {
		vars := map[string]string{"DATABASE_URL": e.url}
		keyRevokedEverywhere(t, vars, "temp", func(id string) {
			var out strings.Builder
			if code := run(context.Background(), []string{"keys", "revoke", id}, &out, &out, func(k string) string { return vars[k] }); code != 0 {
				t.Fatal(out.String())
			}
		}, a, b)
	})
}

// keyRevokedEverywhere creates a frontend key named name through the CLI,
// checks every replica accepts it, revokes it with revoke (on whichever
// replica or path the caller tests) and waits until every replica refuses
// it: the revocation must reach the other replicas' key caches.
func keyRevokedEverywhere(t *testing.T, vars map[string]string, name string, revoke func(id string), replicas ...*replica) {
	t.Helper()
	var out strings.Builder
	if code := run(context.Background(), []string{"keys", "create", "--name", name, "--role", "frontend", "--quiet"}, &out, &out, func(k string) string { return vars[k] }); code != 0 {
		t.Fatal(out.String())
	}
	secret := strings.TrimSpace(out.String())
	for _, r := range replicas {
		if res := r.do("GET", "/v1/consents?subject=tg:1", secret, nil); res.status != 200 {
			t.Fatalf("fresh key refused: %d", res.status)
		}
	}
	ks, err := replicas[0].app.keys.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, k := range ks {
		if k.Name == name {
			id = k.ID
		}
	}
	revoke(id)
	for _, r := range replicas {
		refused := false
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			if r.do("GET", "/v1/consents?subject=tg:1", secret, nil).status == 401 {
				refused = true
				break
			}
		}
		if !refused {
			t.Fatalf("replica %s still accepts a revoked key", r.base)
		}
	}
}
