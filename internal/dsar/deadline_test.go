package dsar_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/dsar"
)

// The deadlines a request gets at intake, per regime, with the clock set to
// the day it arrives. Expected dates are worked out by hand here, not with
// the policy package's arithmetic:
//
//   - GDPR: one calendar month, a shorter month clamping to its last day,
//     and never later than the policies' 30-day promise.
//   - CCPA: 45 days by law, 30 by the promise; receipt confirmed within
//     10 business days (weekends skipped); extendable to 45 + 45 days.
//   - CCPA opt-out (objection): 15 business days, no extension.
//   - Erasure: the policies' 30-day erasure promise names no extension.
func TestDeadlinesPerRegime(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{noStart: true})
	ctx := context.Background()
	at := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 9, 30, 0, 0, time.UTC) }
	ptr := func(t time.Time) *time.Time { return &t }
	cases := []struct {
		name        string
		typ, region string
		received    time.Time
		regime      string
		due         time.Time
		ack         *time.Time
		extendable  *time.Time
		noticeBy    *time.Time
		rule        string
	}{
		{
			name: "GDPR access received 31 January: due 28 February", typ: "access", region: "DE",
			received: at(2027, 1, 31), regime: "gdpr", due: at(2027, 2, 28),
			// Extended: two more months from 28 February; the person is told
			// within the first month (28 February, before the 30-day promise).
			extendable: ptr(at(2027, 4, 28)), noticeBy: ptr(at(2027, 2, 28)), rule: "gdpr_art12_one_month",
		},
		{
			name: "GDPR access in a leap year: 31 January to 29 February", typ: "access", region: "FR",
			received: at(2028, 1, 31), regime: "gdpr", due: at(2028, 2, 29),
			extendable: ptr(at(2028, 4, 29)), noticeBy: ptr(at(2028, 2, 29)), rule: "gdpr_art12_one_month",
		},
		{
			name: "GDPR access in a 31-day month: the 30-day promise is earlier", typ: "access", region: "DE",
			received: at(2027, 3, 1), regime: "gdpr", due: at(2027, 3, 31),
			// Law: 1 April + 2 months = 1 June; notice within min(1 April, 31 March).
			extendable: ptr(at(2027, 6, 1)), noticeBy: ptr(at(2027, 3, 31)), rule: "gdpr_art12_one_month",
		},
		{
			name: "GDPR erasure: the 30-day erasure promise, not extendable", typ: "erasure", region: "DE",
			received: at(2027, 3, 1), regime: "gdpr", due: at(2027, 3, 31), rule: "gdpr_art12_one_month",
		},
		{
			// Wednesday 3 March 2027. Ten business days: 4, 5, 8-12, 15, 16, 17 March.
			name: "CCPA access: 30-day promise within 45 days, acknowledged in 10 business days", typ: "access", region: "US-CA",
			received: at(2027, 3, 3), regime: "ccpa", due: at(2027, 4, 2), ack: ptr(at(2027, 3, 17)),
			extendable: ptr(at(2027, 3, 3).AddDate(0, 0, 90)), noticeBy: ptr(at(2027, 4, 2)), rule: "ccpa_7021_45_days",
		},
		{
			// Friday 5 March 2027: the weekend right after receipt is skipped.
			// 8-12, 15-19 March = 10 business days.
			name: "CCPA acknowledgment over two weekends", typ: "export", region: "US-CA",
			received: at(2027, 3, 5), regime: "ccpa", due: at(2027, 4, 4), ack: ptr(at(2027, 3, 19)),
			extendable: ptr(at(2027, 3, 5).AddDate(0, 0, 90)), noticeBy: ptr(at(2027, 4, 4)), rule: "ccpa_7021_45_days",
		},
		{
			// 4, 5, 8-12, 15-19, 22, 23, 24 March = 15 business days.
			name: "CCPA opt-out: 15 business days", typ: "objection", region: "US-CA",
			received: at(2027, 3, 3), regime: "ccpa", due: at(2027, 3, 24), rule: "ccpa_7026_opt_out_15_business_days",
		},
		{
			name: "CCPA erasure: the 30-day erasure promise caps the extension too", typ: "erasure", region: "US-CA",
			received: at(2027, 3, 3), regime: "ccpa", due: at(2027, 4, 2), ack: ptr(at(2027, 3, 17)), rule: "ccpa_7021_45_days",
		},
		{
			name: "LGPD access: 15 days, acknowledged the same day", typ: "access", region: "BR",
			received: at(2027, 3, 3), regime: "lgpd", due: at(2027, 3, 18), ack: ptr(at(2027, 3, 3)), rule: "lgpd_art19_15_days",
		},
		{
			// Virginia has its own deadline law, whatever the consent regime.
			name: "Virginia: 45 days by law, the promise earlier", typ: "access", region: "US-VA",
			received: at(2027, 3, 3), regime: "vcdpa", due: at(2027, 4, 2),
			extendable: ptr(at(2027, 3, 3).AddDate(0, 0, 90)), noticeBy: ptr(at(2027, 4, 2)), rule: "vcdpa_45_days",
		},
	}
	eq := func(a, b *time.Time) bool { return a == nil && b == nil || a != nil && b != nil && a.Equal(*b) }
	for i, tc := range cases {
		r.clk.Set(tc.received)
		c, err := r.svc.Create(ctx, dsar.CreateInput{
			Type: tc.typ, Subject: identity.MustParse("tg:" + strconv.Itoa(910000+i)), Region: tc.region, Channel: dsar.ChannelStaff,
			IsStaff: true, IdentityVerified: true, Note: "received by post", Actor: "key:reviewer",
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		d, err := r.svc.Get(ctx, c.Request.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Regime != tc.regime || !d.ReceivedAt.Equal(tc.received) || !d.DueAt.Equal(tc.due) || !d.OriginalDueAt.Equal(tc.due) {
			t.Errorf("%s: regime %s received %s due %s (original %s); want %s due %s", tc.name, d.Regime, d.ReceivedAt, d.DueAt, d.OriginalDueAt, tc.regime, tc.due)
		}
		if !eq(d.AcknowledgeBy, tc.ack) {
			t.Errorf("%s: acknowledge by %v, want %v", tc.name, d.AcknowledgeBy, tc.ack)
		}
		if !eq(d.ExtendableUntil, tc.extendable) || !eq(d.ExtendNoticeBy, tc.noticeBy) {
			t.Errorf("%s: extendable until %v (notice by %v), want %v (%v)", tc.name, d.ExtendableUntil, d.ExtendNoticeBy, tc.extendable, tc.noticeBy)
		}
		audited := r.count(`SELECT count(*) FROM audit_pending WHERE target_id = $1 AND action = 'privacy_request.received' AND details->>'deadline_rule' = $2 AND details->>'due_at' = $3`,
			c.Request.ID, tc.rule, tc.due.Format(time.RFC3339))
		if audited != 1 {
			t.Errorf("%s: the intake audit event does not name rule %s and due %s", tc.name, tc.rule, tc.due.Format(time.RFC3339))
		}
		// Overdue is judged by the same clock.
		r.clk.Set(tc.due.Add(time.Second))
		if d, _ := r.svc.Get(ctx, c.Request.ID); !d.Overdue {
			t.Errorf("%s: not overdue a second after the due date", tc.name)
		}
		r.clk.Set(tc.due)
		if d, _ := r.svc.Get(ctx, c.Request.ID); d.Overdue {
			t.Errorf("%s: overdue at the due date itself", tc.name)
		}
	}
}
