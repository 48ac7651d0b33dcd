package dsar_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/notify/resendtest"
)

const staffEmail = "privacy-team@example.com"

func staffEmails(all []resendtest.SentEmail) []resendtest.SentEmail {
	var out []resendtest.SentEmail
	for _, e := range all {
		if len(e.To) == 1 && e.To[0] == staffEmail {
			out = append(out, e)
		}
	}
	return out
}

func TestRemindersAreSentOncePerMark(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{noStart: true})
	ctx := context.Background()
	c, err := r.svc.Create(ctx, webRequest("access", "kim@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	id, due := c.Request.ID, c.Request.DueAt
	send := func(when string, want int) {
		t.Helper()
		n, err := r.svc.SendReminders(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s: %d reminders sent, want %d", when, n, want)
		}
	}
	send("at intake", 0)
	r.clk.Set(due.Add(-7*24*time.Hour - time.Minute))
	send("just over 7 days before", 0)
	r.clk.Set(due.Add(-6 * 24 * time.Hour))
	send("6 days before", 1)
	send("6 days before, again", 0)
	r.clk.Set(due.Add(-2 * 24 * time.Hour))
	send("2 days before", 0)
	r.clk.Set(due.Add(-12 * time.Hour))
	send("12 hours before", 1)
	send("12 hours before, again", 0)
	r.clk.Set(due)
	send("at the due time", 0)
	r.clk.Set(due.Add(time.Minute))
	send("past due", 1)
	send("past due, again", 0)
	r.clk.Advance(10 * 24 * time.Hour)
	send("long past due", 0)

	staff := staffEmails(r.deliver())
	if len(staff) != 3 {
		t.Fatalf("%d staff emails, want 3", len(staff))
	}
	for i, when := range []string{"due in 7 days", "due tomorrow", "overdue"} {
		e := staff[i]
		if !strings.Contains(e.Subject, id) || !strings.Contains(e.Subject, when) || !strings.Contains(e.Text, due.Format("2006-01-02")) {
			t.Errorf("reminder %d: %q", i+1, e.Subject)
		}
	}
	d, _ := r.svc.Get(ctx, id)
	var reminded int
	for _, e := range d.Timeline {
		if e.Event == "reminder_sent" {
			reminded++
		}
	}
	if reminded != 3 {
		t.Errorf("%d reminders in the timeline", reminded)
	}

	// A request first seen past every mark gets the most urgent reminder
	// only; a closed one gets none.
	late, err := r.svc.Create(ctx, webRequest("access", "lee@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	closed, err := r.svc.Create(ctx, webRequest("access", "max@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Cancel(ctx, closed.Request.ID, "key:reviewer", "withdrawn"); err != nil {
		t.Fatal(err)
	}
	r.clk.Set(late.Request.DueAt.Add(time.Hour))
	send("a new request, already overdue", 1)
	send("again", 0)
	staff = staffEmails(r.deliver())
	if len(staff) != 4 || !strings.Contains(staff[3].Subject, late.Request.ID) || !strings.Contains(staff[3].Subject, "overdue") {
		t.Errorf("reminder for the late request: %d staff emails", len(staff))
	}
	if n := r.count(`SELECT count(*) FROM privacy_request_reminders WHERE request_id = $1`, late.Request.ID); n != 3 {
		t.Errorf("the skipped marks are recorded as sent: %d rows", n)
	}
	if n := r.count(`SELECT count(*) FROM privacy_request_reminders WHERE request_id = $1`, closed.Request.ID); n != 0 {
		t.Errorf("a canceled request was reminded about")
	}
}

func TestExtensionRestartsReminders(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{noStart: true})
	ctx := context.Background()
	c, err := r.svc.Create(ctx, webRequest("access", "nia@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	r.clk.Set(c.Request.DueAt.Add(-6 * 24 * time.Hour))
	if n, err := r.svc.SendReminders(ctx); err != nil || n != 1 {
		t.Fatalf("%d, %v", n, err)
	}
	x, err := r.svc.Extend(ctx, c.Request.ID, "key:reviewer", "complex")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.svc.SendReminders(ctx); err != nil || n != 0 {
		t.Fatalf("right after extending, %d sent (%v)", n, err)
	}
	r.clk.Set(x.DueAt.Add(-6 * 24 * time.Hour))
	if n, err := r.svc.SendReminders(ctx); err != nil || n != 1 {
		t.Fatalf("7 days before the new date, %d sent (%v)", n, err)
	}
}

func TestConcurrentReminderRunsSendEachOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{noStart: true})
	ctx := context.Background()
	const requests, runners = 8, 4
	var due time.Time
	for i := 0; i < requests; i++ {
		c, err := r.svc.Create(ctx, webRequest("access", fmt.Sprintf("p%d@example.com", i)))
		if err != nil {
			t.Fatal(err)
		}
		due = c.Request.DueAt
	}
	total := 0
	for _, at := range []time.Duration{-6 * 24 * time.Hour, -12 * time.Hour, time.Minute} {
		r.clk.Set(due.Add(at))
		var wg sync.WaitGroup
		var mu sync.Mutex
		sent := 0
		for range runners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n, err := r.svc.SendReminders(ctx)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				sent += n
				mu.Unlock()
			}()
		}
		wg.Wait()
		if sent != requests {
			t.Errorf("%d runners at due%+v sent %d reminders for %d requests", runners, at, sent, requests)
		}
		total += sent
	}
	staff := staffEmails(r.deliver())
	if len(staff) != total || total != 3*requests {
		t.Errorf("%d staff emails delivered, %d counted; want %d", len(staff), total, 3*requests)
	}
	seen := map[string]bool{}
	for _, e := range staff {
		if seen[e.Subject] {
			t.Errorf("sent twice: %q", e.Subject)
		}
		seen[e.Subject] = true
	}
}
