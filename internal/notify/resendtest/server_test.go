package resendtest

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/resend/resend-go/v2"
)

func client(t *testing.T, s *Server) *resend.Client {
	t.Helper()
	c := resend.NewCustomClient(http.DefaultClient, "re_test")
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL = u
	return c
}

func message(subject string) *resend.SendEmailRequest {
	return &resend.SendEmailRequest{
		From:    "Privacy <privacy@example.com>",
		To:      []string{"ann@example.com"},
		Subject: subject,
		Text:    "plain",
		Html:    "<p>html</p>",
	}
}

func TestSendEmail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("recorded_as_sent", func(t *testing.T) {
		t.Parallel()
		s := New(t)
		res, err := client(t, s).Emails.SendWithContext(ctx, message("Hello"))
		if err != nil {
			t.Fatal(err)
		}
		got := s.Emails()
		if len(got) != 1 {
			t.Fatalf("Emails = %+v, want 1", got)
		}
		e := got[0]
		if e.ID != res.Id || e.From != "Privacy <privacy@example.com>" || len(e.To) != 1 || e.To[0] != "ann@example.com" ||
			e.Subject != "Hello" || e.Text != "plain" || e.HTML != "<p>html</p>" || e.IdempotencyKey != "" {
			t.Errorf("email = %+v (response id %q)", e, res.Id)
		}
	})

	t.Run("same_key_replays_original_answer", func(t *testing.T) {
		t.Parallel()
		s := New(t)
		c := client(t, s)
		opts := &resend.SendEmailOptions{IdempotencyKey: "k-1"}
		first, err := c.Emails.SendWithOptions(ctx, message("Hello"), opts)
		if err != nil {
			t.Fatal(err)
		}
		second, err := c.Emails.SendWithOptions(ctx, message("Hello"), opts)
		if err != nil {
			t.Fatal(err)
		}
		if first.Id != second.Id {
			t.Errorf("ids %q and %q, want the original replayed", first.Id, second.Id)
		}
		if got := s.Emails(); len(got) != 1 || got[0].IdempotencyKey != "k-1" {
			t.Errorf("Emails = %+v, want one under k-1", got)
		}
		if _, err := c.Emails.SendWithOptions(ctx, message("Different"), opts); err == nil {
			t.Error("same key with a different body accepted")
		}
		if reqs := s.Requests(); reqs[len(reqs)-1].Status != http.StatusConflict {
			t.Errorf("last status = %d, want 409", reqs[len(reqs)-1].Status)
		}
		if _, err := c.Emails.SendWithOptions(ctx, message("Hello"), &resend.SendEmailOptions{IdempotencyKey: "k-2"}); err != nil {
			t.Fatal(err)
		}
		if n := len(s.Emails()); n != 2 {
			t.Errorf("%d emails, want 2 (a new key is a new email)", n)
		}
	})

	t.Run("without_key_every_send_counts", func(t *testing.T) {
		t.Parallel()
		s := New(t)
		c := client(t, s)
		for range 2 {
			if _, err := c.Emails.SendWithContext(ctx, message("Hello")); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(s.Emails()); n != 2 {
			t.Errorf("%d emails, want 2", n)
		}
	})

	t.Run("fail_next_applies_nothing", func(t *testing.T) {
		t.Parallel()
		s := New(t)
		s.FailNext(1, http.StatusServiceUnavailable)
		if _, err := client(t, s).Emails.SendWithContext(ctx, message("Hello")); err == nil {
			t.Fatal("send succeeded through an injected 503")
		}
		if n := len(s.Emails()); n != 0 {
			t.Errorf("%d emails after a refused send, want 0", n)
		}
	})

	t.Run("apply_then_fail_sends_but_answers_error", func(t *testing.T) {
		t.Parallel()
		s := New(t)
		s.ApplyThenFailNext(1, http.StatusInternalServerError)
		c := client(t, s)
		opts := &resend.SendEmailOptions{IdempotencyKey: "lost"}
		if _, err := c.Emails.SendWithOptions(ctx, message("Hello"), opts); err == nil {
			t.Fatal("lost response reported success")
		}
		if n := len(s.Emails()); n != 1 {
			t.Fatalf("%d emails, want 1 (applied before the error)", n)
		}
		res, err := c.Emails.SendWithOptions(ctx, message("Hello"), opts)
		if err != nil || res.Id != s.Emails()[0].ID || len(s.Emails()) != 1 {
			t.Errorf("retry = %+v, %v; want the stored email replayed", res, err)
		}
	})

	t.Run("invalid_refused", func(t *testing.T) {
		t.Parallel()
		s := New(t)
		c := client(t, s)
		for name, m := range map[string]*resend.SendEmailRequest{
			"no_to":      {From: "p@example.com", Subject: "s", Text: "t"},
			"no_from":    {To: []string{"a@example.com"}, Subject: "s", Text: "t"},
			"no_subject": {From: "p@example.com", To: []string{"a@example.com"}, Text: "t"},
			"no_body":    {From: "p@example.com", To: []string{"a@example.com"}, Subject: "s"},
		} {
			if _, err := c.Emails.SendWithContext(ctx, m); err == nil {
				t.Errorf("%s accepted", name)
			}
		}
		for _, r := range s.Requests() {
			if r.Status != http.StatusUnprocessableEntity {
				t.Errorf("%v, want 422", r)
			}
		}
		if n := len(s.Emails()); n != 0 {
			t.Errorf("%d emails stored", n)
		}
	})
}
