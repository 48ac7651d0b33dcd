package dsar_test

import (
	"context"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
)

// What the person does with their status token: follow the timeline in
// their terms, get back in on another device with an emailed code (the old
// token stops working), and withdraw the request. A wrong token or id is
// "not found" and changes nothing; every step's actor is the subject's
// keyed hash.
func TestPersonActions(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{noStart: true})
	ctx := context.Background()
	c, err := r.svc.Create(ctx, webRequest("erasure", "pia@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Request.ID
	v, err := r.svc.Verify(ctx, id, r.code("pia@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	token := v.StatusToken

	tl, err := r.svc.PersonTimeline(ctx, id, token)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range tl {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, ","); !strings.HasPrefix(got, "received,verification_sent,verified") {
		t.Fatalf("timeline %s", got)
	}
	if _, err := r.svc.PersonTimeline(ctx, id, "sts_wrong"); !isCode(err, apperr.NotFound) {
		t.Fatalf("timeline with a wrong token: %v", err)
	}

	// Another device: a code to the request's address, a wrong one counted,
	// the right one issues a new token and voids the old.
	if err := r.svc.SendAccessCode(ctx, "00000000-0000-0000-0000-000000000000", "192.0.2.10"); !isCode(err, apperr.NotFound) {
		t.Fatalf("access code for an unknown request: %v", err)
	}
	if err := r.svc.SendAccessCode(ctx, id, "192.0.2.10"); err != nil {
		t.Fatal(err)
	}
	code := r.code("pia@example.com")
	bad := "000000"
	if code == bad {
		bad = "111111"
	}
	if _, err := r.svc.VerifyAccess(ctx, id, bad); !isCode(err, apperr.Invalid) {
		t.Fatalf("wrong access code: %v", err)
	}
	if n := r.count(`SELECT count(*) FROM privacy_request_events WHERE request_id = $1 AND event = 'access_code_failed'`, id); n != 1 {
		t.Fatalf("%d access_code_failed events, want 1", n)
	}
	newToken, err := r.svc.VerifyAccess(ctx, id, code)
	if err != nil || newToken == "" || newToken == token {
		t.Fatalf("right access code: %q %v", newToken, err)
	}
	if _, err := r.svc.VerifyAccess(ctx, id, code); err == nil {
		t.Fatal("an access code worked twice")
	}
	if _, err := r.svc.Status(ctx, id, token); !isCode(err, apperr.NotFound) {
		t.Fatalf("the old token still opens the request: %v", err)
	}

	// Withdraw: a wrong token changes nothing; the right one cancels, as
	// the subject.
	before := r.snapshot(id)
	if _, err := r.svc.CancelByPerson(ctx, id, token, ""); !isCode(err, apperr.NotFound) {
		t.Fatalf("cancel with the old token: %v", err)
	}
	if _, err := r.svc.CancelByPerson(ctx, id, newToken, "bad\x00reason"); !isCode(err, apperr.Invalid) {
		t.Fatalf("cancel with a NUL in the reason: %v", err)
	}
	r.unchanged(id, before, "refused withdrawals")
	got, err := r.svc.CancelByPerson(ctx, id, newToken, "changed my mind")
	if err != nil || got.Status != dsar.Canceled {
		t.Fatalf("withdraw: %v %v", got.Status, err)
	}
	if n := r.count(`SELECT count(*) FROM privacy_request_events WHERE request_id = $1 AND to_status = 'canceled' AND actor LIKE 'subject:%'`, id); n != 1 {
		t.Fatalf("withdrawal not recorded as the subject's (%d events)", n)
	}
	if _, err := r.svc.CancelByPerson(ctx, id, newToken, ""); !isCode(err, apperr.Conflict) {
		t.Fatalf("withdraw twice: %v", err)
	}
}
