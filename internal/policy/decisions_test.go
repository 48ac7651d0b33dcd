package policy_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/policy"
)

func TestDecideRetention(t *testing.T) {
	t.Parallel()
	e := load(t)
	cases := []struct {
		name     string
		in       policy.RetentionInput
		action   string
		rule     string
		keepDays int // -1: none
		cites    string
	}{
		{"payments kept through their fifth year", policy.RetentionInput{Rule: "payments", AgeDays: 1826}, "keep", "within_retention_period", 1827,
			"Payment and invoice records: retained for 5 years to meet accounting and tax obligations."},
		{"payments deleted after 5 years", policy.RetentionInput{Rule: "payments", AgeDays: 2000}, "delete", "retention_period_elapsed", 1827, "5 years"},
		{"payments outlive the account", policy.RetentionInput{Rule: "payments", AgeDays: 10, AccountDeleted: true}, "keep", "within_retention_period", 1827, ""},
		{"credit logs deleted after 2 years", policy.RetentionInput{Rule: "credit_logs", AgeDays: 731}, "delete", "retention_period_elapsed", 731,
			"Credit transaction logs: retained for 2 years for dispute resolution and reconciliation."},
		{"AI content deleted at 30 days", policy.RetentionInput{Rule: "ai_content", AgeDays: 30}, "delete", "retention_period_elapsed", 30,
			"AI jobs and generated content: retained for 30 days by default"},
		{"AI content kept at 29 days", policy.RetentionInput{Rule: "ai_content", AgeDays: 29}, "keep", "within_retention_period", 30, ""},
		{"logs anonymized at 180 days", policy.RetentionInput{Rule: "logs_analytics", AgeDays: 181}, "anonymize", "retention_period_elapsed", 180,
			"retained up to 180 days before being aggregated or anonymized."},
		{"marketing preferences kept until withdrawal", policy.RetentionInput{Rule: "marketing_preferences", AgeDays: 9000}, "keep", "retained_until_event", -1,
			"Marketing preferences: kept until you unsubscribe or withdraw consent."},
		{"marketing preferences end on withdrawal", policy.RetentionInput{Rule: "marketing_preferences", Withdrawn: true}, "anonymize", "retention_event_reached", -1, ""},
		{"account data deleted with the account", policy.RetentionInput{Rule: "account", AccountDeleted: true}, "delete", "retention_event_reached", -1,
			"we will remove your personal information within 30 days"},
		{"bot prompts kept indefinitely", policy.RetentionInput{Rule: "bot_generation_history", AgeDays: 100000}, "keep", "retained_until_event", -1,
			"Stored indefinitely for service improvement and dispute resolution."},
		{"bot IPs temporary", policy.RetentionInput{Rule: "rate_limit", AgeDays: 8}, "delete", "retention_period_elapsed", 7, "Operator's choice"},
		{"legal hold keeps old payments", policy.RetentionInput{Rule: "payments", AgeDays: 9000, LegalHold: true}, "keep", "legal_hold", 1827, ""},
		{"legal hold keeps a deleted account", policy.RetentionInput{Rule: "account", AccountDeleted: true, LegalHold: true}, "keep", "legal_hold", -1, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Twice: the second answer comes from the memo and must agree.
			for i := 0; i < 2; i++ {
				d, err := e.DecideRetention(context.Background(), tc.in)
				if err != nil {
					t.Fatal(err)
				}
				if d.Action != tc.action || d.Rule != tc.rule || d.Schedule != tc.in.Rule || d.Reason == "" || d.Basis == "" {
					t.Fatalf("got %+v, want action=%s rule=%s", d, tc.action, tc.rule)
				}
				if (tc.keepDays < 0) != (d.KeepDays == nil) || (d.KeepDays != nil && *d.KeepDays != tc.keepDays) {
					t.Fatalf("keep_days = %v, want %d", d.KeepDays, tc.keepDays)
				}
				if !strings.Contains(d.Citation+" "+d.Reason, tc.cites) {
					t.Fatalf("citation %q / reason %q lacks %q", d.Citation, d.Reason, tc.cites)
				}
				if tc.in.LegalHold && !strings.Contains(d.Reason, "legal hold") {
					t.Fatalf("legal hold reason %q", d.Reason)
				}
				// A caller scribbling on the answer must not change the memo.
				if d.KeepDays != nil {
					*d.KeepDays = -99
				}
			}
		})
	}
}

// Ages on the same side of a rule's period share a memo entry and must get
// the answer the policy gives for the exact age.
func TestRetentionMemoAgreesAcrossAges(t *testing.T) {
	t.Parallel()
	e := load(t)
	ctx := context.Background()
	for _, rule := range []string{"credit_logs", "support", "marketing_preferences"} {
		for _, age := range []int{0, 1, 729, 730, 731, 732, 5000} {
			in := policy.RetentionInput{Rule: rule, AgeDays: age}
			got, err := e.DecideRetention(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := e.Eval(ctx, "retention", map[string]any{"rule": rule, "age_days": age, "legal_hold": false, "withdrawn": false, "account_deleted": false})
			if err != nil {
				t.Fatal(err)
			}
			want, _ := raw.(map[string]any)
			if got.Action != want["action"] || got.Reason != want["reason"] || got.Rule != want["rule"] {
				t.Fatalf("%s at %d days: memo %+v, policy %v", rule, age, got, want)
			}
		}
	}
}

func TestDecideRetentionUnknownRule(t *testing.T) {
	t.Parallel()
	_, err := load(t).DecideRetention(context.Background(), policy.RetentionInput{Rule: "forever"})
	if err == nil || !strings.Contains(err.Error(), `"forever"`) {
		t.Fatalf("err = %v, want one naming the rule", err)
	}
}

func TestDecideDSAR(t *testing.T) {
	t.Parallel()
	e := load(t)
	f := func(dataset, name, category, retention, purpose string) policy.DSARField {
		return policy.DSARField{System: "app_db", Dataset: dataset, Field: name, Category: category, Retention: retention, Purpose: purpose, Identity: "account_id"}
	}
	email := f("users", "email", "user.contact.email", "account", "essential")
	password := f("users", "password_hash", "user.authorization.credentials", "account", "essential")
	amount := f("payments", "amount", "user.financial.payment", "payments", "payments")
	receiptEmail := f("payments", "receipt_email", "user.contact.email", "payments", "payments")
	customer := f("payments", "stripe_customer_id", "user.unique_id", "payments", "payments")
	credit := f("credit_ledger", "delta", "user.financial.credits", "credit_logs", "payments")
	newsletter := f("newsletter", "email", "user.contact.email", "marketing_preferences", "marketing")
	logIP := f("request_logs", "ip", "system.log.ip_address", "logs_analytics", "")
	cases := []struct {
		name       string
		in         policy.DSARInput
		action     string
		strategy   string
		rule       string
		until      string
		restricted bool
		cites      string
	}{
		{"access includes email", policy.DSARInput{"access", "gdpr", email}, "include", "", "access_disclosed", "", false, "GDPR Art. 15"},
		{"access includes system logs", policy.DSARInput{"access", "ccpa", logIP}, "include", "", "access_disclosed", "", false, "§1798.110"},
		{"export masks the password hash", policy.DSARInput{"export", "gdpr", password}, "mask", "fixed", "withheld_credential", "", false, "§7024(d)"},
		{"erasure deletes", policy.DSARInput{"erasure", "gdpr", email}, "delete", "", "erasure_delete", "", false, "we erase or anonymize data within 30 days"},
		{"erasure retains payment amount", policy.DSARInput{"erasure", "gdpr", amount}, "retain", "", "erasure_exception_legal_obligation", "5 years from the record date", false, "GDPR Art. 17(3)(b)"},
		{"CCPA erasure retains payment amount", policy.DSARInput{"erasure", "ccpa", amount}, "retain", "", "erasure_exception_legal_obligation", "5 years from the record date", false, "§1798.105(d)(8)"},
		{"erasure masks payment email", policy.DSARInput{"erasure", "gdpr", receiptEmail}, "mask", "null", "erasure_exception_masked", "5 years from the record date", false, "GDPR Art. 17(3)(b)"},
		{"erasure hashes payment customer id", policy.DSARInput{"erasure", "lgpd", customer}, "mask", "keyed_hash", "erasure_exception_masked", "5 years from the record date", false, "LGPD Art. 16 I"},
		{"erasure retains credit logs", policy.DSARInput{"erasure", "gdpr", credit}, "retain", "", "erasure_exception_legal_claims", "2 years from the record date", false, "GDPR Art. 17(3)(e)"},
		{"erasure pseudonymizes the opt-out", policy.DSARInput{"erasure", "gdpr", newsletter}, "mask", "keyed_hash", "erasure_exception_masked", "the opt-out no longer needs to be honoured", false, "Art. 7(1)"},
		{"rectification applies to email", policy.DSARInput{"rectification", "gdpr", email}, "rectify", "", "rectification_applies", "", false, "GDPR Art. 16"},
		{"rectification not to logs", policy.DSARInput{"rectification", "gdpr", logIP}, "retain", "", "rectification_record_of_events", "", false, "GDPR Art. 16"},
		{"restriction restricts", policy.DSARInput{"restriction", "gdpr", email}, "retain", "", "processing_restricted", "the restriction is lifted", true, "GDPR Art. 18"},
		{"CCPA has no restriction right", policy.DSARInput{"restriction", "ccpa", email}, "retain", "", "restriction_not_a_right", "", false, "no right to restriction"},
		{"objection stops marketing", policy.DSARInput{"objection", "ccpa", newsletter}, "retain", "", "objection_direct_marketing", "the person opts back in", true, "§1798.120"},
		{"objection restricts legitimate interests", policy.DSARInput{"objection", "gdpr", logIP}, "retain", "", "objection_legitimate_interests", "the objection is decided", true, "GDPR Art. 21(1)"},
		{"analytics opt-out promised in California", policy.DSARInput{"objection", "ccpa", logIP}, "retain", "", "objection_promised_opt_out", "the person opts back in", true, "you can opt out of analytics in settings"},
		{"objection does not reach accounting", policy.DSARInput{"objection", "gdpr", amount}, "retain", "", "objection_not_applicable_basis", "", false, "GDPR Art. 21(1)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for i := 0; i < 2; i++ {
				d, err := e.DecideDSAR(context.Background(), tc.in)
				if err != nil {
					t.Fatal(err)
				}
				if d.Action != tc.action || d.Strategy != tc.strategy || d.Rule != tc.rule || d.Until != tc.until || d.Restricted != tc.restricted {
					t.Fatalf("got %+v\nwant action=%s strategy=%s rule=%s until=%q restricted=%v", d, tc.action, tc.strategy, tc.rule, tc.until, tc.restricted)
				}
				if d.Basis == "" || !strings.Contains(d.Citation, tc.cites) {
					t.Fatalf("basis %q, citation %q lacks %q", d.Basis, d.Citation, tc.cites)
				}
				if (d.Strategy == "fixed") != (d.Value != "") {
					t.Fatalf("strategy %q with value %q", d.Strategy, d.Value)
				}
			}
		})
	}
}

func TestDecideDSARUnknownRequestType(t *testing.T) {
	t.Parallel()
	_, err := load(t).DecideDSAR(context.Background(), policy.DSARInput{RequestType: "telepathy", Regime: "gdpr",
		Field: policy.DSARField{System: "app_db", Dataset: "users", Field: "email", Category: "user.contact.email"}})
	if err == nil || !strings.Contains(err.Error(), `"telepathy"`) || !strings.Contains(err.Error(), "app_db.users.email") {
		t.Fatalf("err = %v, want one naming the request type and field", err)
	}
}

func TestDeadline(t *testing.T) {
	t.Parallel()
	e := load(t)
	p := func(n int, unit string) *policy.Period { return &policy.Period{Amount: n, Unit: unit} }
	cases := []struct {
		name                               string
		regime, requestType, jurisdiction  string
		wantRegime                         string
		respond                            policy.Period
		ack                                *policy.Period
		extension                          *policy.Period
		verification, rule, cites, promise string
		promiseExtendable                  bool
	}{
		{"GDPR one month plus two", "gdpr", "erasure", "DE", "gdpr", policy.Period{1, "months"}, nil, p(2, "months"), "reasonable", "gdpr_art12_one_month", "GDPR Art. 12(3)", "we erase or anonymize data within 30 days", false},
		{"UK GDPR one month", "uk_gdpr", "access", "GB", "uk_gdpr", policy.Period{1, "months"}, nil, p(2, "months"), "reasonable", "uk_gdpr_art12_one_month", "UK GDPR Art. 12(3)", "we will respond within 30 days", true},
		{"CCPA access", "ccpa", "access", "US-CA", "ccpa", policy.Period{45, "days"}, p(10, "business_days"), p(45, "days"), "high", "ccpa_7021_45_days", "§7021", "we will respond within 30 days", true},
		{"CCPA deletion", "ccpa", "erasure", "us-ca", "ccpa", policy.Period{45, "days"}, p(10, "business_days"), p(45, "days"), "reasonable", "ccpa_7021_45_days", "§7021", "we erase or anonymize data within 30 days", false},
		{"CCPA opt-out", "ccpa", "objection", "US-CA", "ccpa", policy.Period{15, "business_days"}, nil, nil, "none", "ccpa_7026_opt_out_15_business_days", "§7026", "", true},
		{"LGPD 15 days", "lgpd", "rectification", "BR", "lgpd", policy.Period{15, "days"}, nil, nil, "reasonable", "lgpd_art19_15_days", "Art. 19", "", true},
		{"Virginia 45 days", "us_state", "erasure", "US-VA", "vcdpa", policy.Period{45, "days"}, nil, p(45, "days"), "reasonable", "vcdpa_45_days", "§59.1-577(B)", "", false},
		{"Colorado 45 days", "us_state", "access", "US-CO", "cpa", policy.Period{45, "days"}, nil, p(45, "days"), "reasonable", "cpa_45_days", "§6-1-1306(2)", "", true},
		{"Texas gets the promise", "us_state", "access", "US-TX", "default", policy.Period{30, "days"}, nil, nil, "reasonable", "customer_promise_30_days", "we will respond within 30 days", "", true},
		{"unknown regime gets the promise", "klingon", "erasure", "", "default", policy.Period{30, "days"}, nil, nil, "reasonable", "customer_promise_erasure_30_days", "we erase or anonymize data within 30 days", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for i := 0; i < 2; i++ {
				d, err := e.Deadline(context.Background(), tc.regime, tc.requestType, tc.jurisdiction)
				if err != nil {
					t.Fatal(err)
				}
				if d.Regime != tc.wantRegime || d.RespondWithin != tc.respond || d.Verification != tc.verification || d.Rule != tc.rule {
					t.Fatalf("got %+v", d)
				}
				if (tc.ack == nil) != (d.AcknowledgeWithin == nil) || (tc.ack != nil && *tc.ack != *d.AcknowledgeWithin) {
					t.Fatalf("acknowledge %+v, want %+v", d.AcknowledgeWithin, tc.ack)
				}
				if (tc.extension == nil) != (d.Extension == nil) || (tc.extension != nil && *tc.extension != d.Extension.Period) {
					t.Fatalf("extension %+v, want %+v", d.Extension, tc.extension)
				}
				if !strings.Contains(d.Citation, tc.cites) || d.VerificationCitation == "" {
					t.Fatalf("citation %q lacks %q", d.Citation, tc.cites)
				}
				if d.PromisedWithin == nil || d.PromisedWithin.Period != (policy.Period{30, "days"}) || d.PromisedWithin.Extendable != tc.promiseExtendable ||
					!strings.Contains(d.PromisedWithin.Citation, tc.promise) {
					t.Fatalf("promise %+v", d.PromisedWithin)
				}
				// A caller scribbling on the answer must not change the memo.
				d.PromisedWithin.Amount = 999
			}
		})
	}
}

func TestDeadlineUnknownRequestType(t *testing.T) {
	t.Parallel()
	_, err := load(t).Deadline(context.Background(), "gdpr", "telepathy", "DE")
	if err == nil || !strings.Contains(err.Error(), `"telepathy"`) {
		t.Fatalf("err = %v, want one naming the request type", err)
	}
}

func TestDeadlineDates(t *testing.T) {
	t.Parallel()
	e := load(t)
	ctx := context.Background()
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 10, 0, 0, 0, time.UTC) }
	get := func(regime, rt, j string) policy.DeadlineDecision {
		t.Helper()
		d, err := e.Deadline(ctx, regime, rt, j)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	// GDPR: one month after 31 January is the last day of February, not 3
	// March; the 30-day promise is later then, so the month governs.
	gdprAccess := get("gdpr", "access", "DE")
	if got := gdprAccess.Due(day(2025, time.January, 31)); !got.Equal(day(2025, time.February, 28)) {
		t.Fatalf("GDPR due from 31 Jan = %v", got)
	}
	// From 1 July, 30 days (31 July) comes before one month (1 August).
	if got := gdprAccess.Due(day(2025, time.July, 1)); !got.Equal(day(2025, time.July, 31)) {
		t.Fatalf("GDPR due from 1 Jul = %v", got)
	}
	// Extended: three months, the general promise being extendable; notice
	// by the earlier of one month and the promise.
	if got, ok := gdprAccess.ExtendedDue(day(2025, time.July, 1)); !ok || !got.Equal(day(2025, time.October, 1)) {
		t.Fatalf("GDPR extended due = %v %v", got, ok)
	}
	if got, ok := gdprAccess.ExtensionNoticeBy(day(2025, time.July, 1)); !ok || !got.Equal(day(2025, time.July, 31)) {
		t.Fatalf("GDPR notice by = %v %v", got, ok)
	}
	// Erasure: the 30-day promise names no extension, so it caps any.
	gdprErase := get("gdpr", "erasure", "DE")
	if got, ok := gdprErase.ExtendedDue(day(2025, time.July, 1)); !ok || !got.Equal(day(2025, time.July, 31)) {
		t.Fatalf("GDPR erasure extended due = %v %v", got, ok)
	}

	// CCPA: receipt confirmed within 10 business days (Friday 3 Jan 2025 ->
	// Friday 17 Jan), answered within the promise's 30 days, not 45.
	ccpa := get("ccpa", "access", "US-CA")
	if got, ok := ccpa.AcknowledgeBy(day(2025, time.January, 3)); !ok || !got.Equal(day(2025, time.January, 17)) {
		t.Fatalf("CCPA acknowledge by = %v %v", got, ok)
	}
	if got := ccpa.Due(day(2025, time.January, 3)); !got.Equal(day(2025, time.February, 2)) {
		t.Fatalf("CCPA due = %v", got)
	}
	if got, ok := ccpa.ExtendedDue(day(2025, time.January, 3)); !ok || !got.Equal(day(2025, time.April, 3)) {
		t.Fatalf("CCPA extended due = %v %v", got, ok)
	}
	// CCPA opt-out: 15 business days, no extension.
	optOut := get("ccpa", "objection", "US-CA")
	if got := optOut.Due(day(2025, time.January, 3)); !got.Equal(day(2025, time.January, 24)) {
		t.Fatalf("CCPA opt-out due = %v", got)
	}
	if _, ok := optOut.ExtendedDue(day(2025, time.January, 3)); ok {
		t.Fatal("CCPA opt-out extendable")
	}
	// LGPD: 15 days, before the promise.
	if got := get("lgpd", "access", "BR").Due(day(2025, time.January, 3)); !got.Equal(day(2025, time.January, 18)) {
		t.Fatalf("LGPD due = %v", got)
	}
}

func TestPeriodAfter(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, time.January, 31, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		p    policy.Period
		want time.Time
	}{
		{policy.Period{1, "months"}, time.Date(2024, time.February, 29, 12, 0, 0, 0, time.UTC)},
		{policy.Period{3, "months"}, time.Date(2024, time.April, 30, 12, 0, 0, 0, time.UTC)},
		{policy.Period{12, "months"}, time.Date(2025, time.January, 31, 12, 0, 0, 0, time.UTC)},
		{policy.Period{30, "days"}, time.Date(2024, time.March, 1, 12, 0, 0, 0, time.UTC)},
		{policy.Period{0, "days"}, at},
		{policy.Period{1, "business_days"}, time.Date(2024, time.February, 1, 12, 0, 0, 0, time.UTC)},
		{policy.Period{3, "business_days"}, time.Date(2024, time.February, 5, 12, 0, 0, 0, time.UTC)}, // Wed -> Mon
	}
	for _, tc := range cases {
		if got := tc.p.After(at); !got.Equal(tc.want) {
			t.Errorf("%+v after %v = %v, want %v", tc.p, at, got, tc.want)
		}
	}
}

func TestBadDecisionDataRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		edit func(m map[string][]byte)
		want string
	}{
		{"retention days not a number", func(m map[string][]byte) {
			m["data/retention.json"] = bytes.Replace(m["data/retention.json"], []byte(`"days": 1827`), []byte(`"days": "5y"`), 1)
		}, "data/retention.json"},
		{"retention action unknown", func(m map[string][]byte) {
			m["data/retention.json"] = bytes.Replace(m["data/retention.json"], []byte(`"action": "delete"`), []byte(`"action": "shred"`), 1)
		}, `rule "account": action "shred"`},
		{"retention rule without citation", func(m map[string][]byte) {
			old := `"citation": "web policy (Retention and deletion): \"AI jobs and generated content: retained for 30 days by default and can be deleted anytime from your creation history.\""`
			m["data/retention.json"] = bytes.Replace(m["data/retention.json"], []byte(old), []byte(`"citation": ""`), 1)
		}, `rule "ai_content": citation is required`},
		{"retention unknown field", func(m map[string][]byte) {
			m["data/retention.json"] = bytes.Replace(m["data/retention.json"], []byte(`"until"`), []byte(`"untill"`), 1)
		}, "untill"},
		{"retention policy that cannot decide", func(m map[string][]byte) {
			m["retention.rego"] = []byte("package steward.retention\n\nx := 1\n")
		}, "retention smoke test"},
		{"deadline with a bad unit", func(m map[string][]byte) {
			m["data/deadlines.json"] = bytes.Replace(m["data/deadlines.json"], []byte(`"unit": "months"`), []byte(`"unit": "moons"`), 1)
		}, "deadlines smoke test"},
		{"dsar policy removed", func(m map[string][]byte) {
			m["dsar.rego"] = []byte("package steward.dsar\n\nx := 1\n")
		}, "dsar smoke test"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := copyFS(t)
			raw := map[string][]byte{}
			for p, f := range m {
				raw[p] = f.Data
			}
			tc.edit(raw)
			for p, b := range raw {
				m[p].Data = b
			}
			_, err := policy.Load(context.Background(), m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want mention of %q", err, tc.want)
			}
		})
	}
}

func TestWorkflowAndRegimeFor(t *testing.T) {
	e := load(t)
	for rt, want := range map[string]bool{"access": false, "export": true, "erasure": true, "rectification": true, "restriction": false, "objection": false} {
		w, err := e.DecideWorkflow(rt, "web")
		if err != nil || w.ApprovalRequired != want || w.Reason == "" {
			t.Errorf("DecideWorkflow(%s, web) = %+v, %v; want approval %v", rt, w, err, want)
		}
		// An agent's request is reviewed whatever its type (CCPA Regs. §7063).
		if w, err := e.DecideWorkflow(rt, "agent"); err != nil || !w.ApprovalRequired || w.Rule != "approval_agent" {
			t.Errorf("DecideWorkflow(%s, agent) = %+v, %v; want approval_agent", rt, w, err)
		}
	}
	if _, err := e.DecideWorkflow("bogus", "web"); err == nil {
		t.Error("unknown request type decided")
	}
	if _, err := e.DecideWorkflow("access", "fax"); err == nil {
		t.Error("unknown channel decided")
	}
	// RegimeFor must agree with the consent policy's own mapping.
	for _, j := range []string{"DE", "de", "GB", "US-CA", "US-VA", "US", "BR", "UZ", "", "FR-75"} {
		d, err := e.DecideConsent(context.Background(), policy.ConsentInput{Purpose: "analytics", Jurisdiction: j, Product: "web"})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.RegimeFor(j); got != d.Regime {
			t.Errorf("RegimeFor(%q) = %q, consent policy says %q", j, got, d.Regime)
		}
	}
}
