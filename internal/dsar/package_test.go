package dsar_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/dsar"
)

func TestAccessEndsWithPackageAndLink(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	var built atomic.Value // the request id the packager saw
	expires := time.Date(2026, 12, 9, 0, 0, 0, 0, time.UTC)
	r := newRig(t, rigOpts{packager: func(ctx context.Context, requestID string) (string, time.Time, error) {
		if calls.Add(1) == 1 {
			// The first attempt fails (the store was down): the job is
			// retried and the request must not complete meanwhile.
			return "", time.Time{}, errors.New("export store unavailable")
		}
		built.Store(requestID)
		return "https://privacy.example.com/v1/exports/sxp_test", expires, nil
	}})
	ctx := context.Background()
	r.seedWebUser("pia@example.com", "u-pkg", "")
	c, err := r.svc.Create(ctx, webRequest("access", "pia@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.svc.Verify(ctx, c.Request.ID, r.code("pia@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	r.wait(c.Request.ID, dsar.InProgress, dsar.Completed)
	r.completeManual(c.Request.ID)
	d := r.wait(c.Request.ID, dsar.Completed)
	if calls.Load() != 2 || built.Load() != c.Request.ID {
		t.Fatalf("packager called %d times for %v", calls.Load(), built.Load())
	}
	var queued, ready, completed int
	for i, e := range d.Timeline {
		switch e.Event {
		case "package_queued":
			queued = i + 1
		case "package_ready":
			ready = i + 1
		}
		if e.To == string(dsar.Completed) {
			completed = i + 1
		}
	}
	if queued == 0 || ready == 0 || completed == 0 || !(queued < ready && ready < completed) {
		t.Errorf("timeline order: package_queued %d, package_ready %d, completed %d", queued, ready, completed)
	}
	var mail string
	for _, m := range r.deliver() {
		if strings.Contains(m.Subject, c.Request.ID) && strings.Contains(m.Text, "sxp_test") {
			mail = m.Text
		}
	}
	if mail == "" || !strings.Contains(mail, "2026-12-09") {
		t.Errorf("completion email with the link and its expiry not sent: %q", mail)
	}
	r.idle()
	if calls.Load() != 2 {
		t.Errorf("packager called %d times after completion", calls.Load())
	}
	// The person (holding the status token) finds the link on the status
	// page too — a Telegram user has no email — until it expires.
	st, err := r.svc.Status(ctx, c.Request.ID, v.StatusToken)
	if err != nil || st.DownloadURL != "https://privacy.example.com/v1/exports/sxp_test" || st.DownloadExpires == nil || !st.DownloadExpires.Equal(expires) {
		t.Fatalf("status %+v, %v", st, err)
	}
	if n := r.count(`SELECT count(*) FROM privacy_requests WHERE id = $1 AND package_link::text LIKE '%sxp_test%'`, c.Request.ID); n != 0 {
		t.Error("the package link is stored in the clear")
	}
	r.clk.Advance(expires.Sub(r.clk.Now()) + time.Second)
	if st, err := r.svc.Status(ctx, c.Request.ID, v.StatusToken); err != nil || st.DownloadURL != "" {
		t.Errorf("status after the link expired: %+v, %v", st, err)
	}
}

func TestErasureDoesNotPackage(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	r := newRig(t, rigOpts{packager: func(context.Context, string) (string, time.Time, error) {
		calls.Add(1)
		return "https://x.example/y", time.Now(), nil
	}})
	r.seedBotUser("900080")
	id := r.approvedErasure("900080")
	r.wait(id, dsar.InProgress, dsar.Completed)
	r.completeManual(id)
	r.wait(id, dsar.Completed)
	if calls.Load() != 0 {
		t.Errorf("an erasure was packaged %d times", calls.Load())
	}
}
