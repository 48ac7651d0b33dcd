package dsar_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/notify/telegramtest"
	"github.com/steward-privacy/steward/internal/testutil"
)

const statusPage = "https://privacy.example.com/status"

// botRig is a rig whose engine and outbox may write as the bot, with its
// logs kept.
func botRig(t *testing.T, o rigOpts) (*rig, *testutil.SyncBuffer) {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	o.log = logs
	o.cfg.TelegramBotToken = telegramtest.Token
	o.cfg.StatusURL = statusPage
	if o.engine == nil {
		o.engine = loadSmallEngine(t)
	}
	return newRig(t, o), logs
}

func botRequestIn(typ, tg, lang string) dsar.CreateInput {
	in := botRequest(typ, tg)
	in.Language = lang
	return in
}

// messagesTo delivers the outbox and returns what the bot sent to chat.
func (r *rig) messagesTo(chat string) []telegramtest.Message {
	r.t.Helper()
	id, err := strconv.ParseInt(chat, 10, 64)
	if err != nil {
		r.t.Fatal(err)
	}
	r.deliver()
	return r.bot.MessagesTo(id)
}

// assertOutboxSealed checks that no outbox row holds the chat id or a
// message text in the clear, and that delivered rows hold nothing at all.
func (r *rig) assertOutboxSealed(chat string, texts ...string) {
	r.t.Helper()
	rows, err := r.pool.Query(context.Background(), `SELECT status, payload::text, coalesce(last_error, '') FROM outbox WHERE kind = 'telegram.message'`)
	if err != nil {
		r.t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var status, payload, lastErr string
		if err := rows.Scan(&status, &payload, &lastErr); err != nil {
			r.t.Fatal(err)
		}
		n++
		for _, s := range append([]string{chat}, texts...) {
			if strings.Contains(payload+lastErr, s) {
				r.t.Errorf("outbox row (%s) holds %q in the clear: %s %s", status, s, payload, lastErr)
			}
		}
		if status == "delivered" && payload != "{}" {
			r.t.Errorf("delivered row keeps its payload: %s", payload)
		}
	}
	if n == 0 {
		r.t.Error("no Telegram message in the outbox")
	}
}

// TestBotRequestToldInTelegram follows an access request made through the
// bot, in each language: its acknowledgment and its completion with the
// download link arrive as bot messages in the request's language, and no
// email is sent.
func TestBotRequestToldInTelegram(t *testing.T) {
	t.Parallel()
	want := map[string]struct{ received, completed, download string }{
		"en": {"We have received your privacy request", "We have completed your privacy request", "download your data"},
		"ru": {"Мы получили ваш запрос", "Ваш запрос выполнен", "скачать ваши данные"},
		"uz": {"Soʻrovingiz qabul qilindi", "Soʻrovingiz bajarildi", "maʼlumotlaringizni yuklab olish"},
	}
	for i, lang := range []string{"en", "ru", "uz"} {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			tg := strconv.Itoa(5550880100 + i) // long: found in a log or row only if leaked
			expires := time.Date(2031, 5, 6, 0, 0, 0, 0, time.UTC)
			r, logs := botRig(t, rigOpts{packager: func(_ context.Context, id string) (string, time.Time, error) {
				return exportLinkBase + "sxp_tg_" + id, expires, nil
			}})
			r.seedBotUser(tg)
			ctx := context.Background()
			c, err := r.svc.Create(ctx, botRequestIn("access", tg, lang))
			if err != nil {
				t.Fatal(err)
			}
			id := c.Request.ID
			// Queued with the acknowledgment, sealed.
			r.assertOutboxSealed(tg)

			r.wait(id, dsar.Completed)
			got := r.messagesTo(tg)
			if len(got) != 2 {
				t.Fatalf("bot sent %d messages, want the acknowledgment and the completion: %+v", len(got), got)
			}
			ack, done := got[0], got[1]
			w := want[lang]
			due := c.Request.DueAt.Format("2006-01-02")
			if !strings.Contains(ack.Text, w.received) || !strings.Contains(ack.Text, id) || !strings.Contains(ack.Text, due) {
				t.Errorf("acknowledgment lacks the %s heading, the id or the due date %s:\n%s", lang, due, ack.Text)
			}
			status := statusPage + "?request=" + id
			if l := ack.Links(); len(l) != 1 || l[0] != status {
				t.Errorf("acknowledgment links %v, want the status page", l)
			}
			link := exportLinkBase + "sxp_tg_" + id
			if !strings.Contains(done.Text, w.completed) || !strings.Contains(done.Text, w.download) || !strings.Contains(done.Text, "2031-05-06") {
				t.Errorf("completion lacks the %s heading, the link text or the expiry:\n%s", lang, done.Text)
			}
			if l := done.Links(); len(l) != 2 || l[0] != link || l[1] != status {
				t.Errorf("completion links %v, want the download link then the status page", l)
			}
			if !done.LinkPreviewDisabled || done.ParseMode != "HTML" {
				t.Errorf("sent with parse mode %q, preview disabled %v", done.ParseMode, done.LinkPreviewDisabled)
			}
			if lang != "en" && strings.Contains(ack.Text, "We have received") {
				t.Errorf("%s request answered in English", lang)
			}
			if n := len(r.mail.Emails()); n != 0 {
				t.Errorf("%d emails sent for a bot request", n)
			}
			r.assertOutboxSealed(tg, link, "sxp_tg_")
			for _, s := range []string{tg, "sxp_tg_"} {
				if strings.Contains(logs.String(), s) {
					t.Errorf("logs hold %q", s)
				}
			}
			// Delivered once: running the worker again sends nothing more.
			if n := len(r.messagesTo(tg)); n != 2 {
				t.Errorf("%d messages after another run, want 2", n)
			}
		})
	}
}

// TestBotRequestExtendedThenDenied: staff's extension (with its reason) and
// denial (with the reason and the right to complain) reach a bot user in
// their language.
func TestBotRequestExtendedThenDenied(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		tg                          string
		extended, denied, complaint string
	}{
		"uz": {"5550880201", "muddati uzaytirildi", "Soʻrovingiz boʻyicha qaror", "nazorat qiluvchi organga"},
		"ru": {"5550880202", "Срок ответа на ваш запрос продлён", "Решение по вашему запросу", "подать жалобу в надзорный орган"},
		"en": {"5550880203", "We need more time", "Decision on your privacy request", "lodge a complaint with a supervisory authority"},
	}
	for lang, c := range cases {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			r, logs := botRig(t, rigOpts{noStart: true}) // the request waits, verified, for staff
			ctx := context.Background()
			created, err := r.svc.Create(ctx, botRequestIn("access", c.tg, lang))
			if err != nil {
				t.Fatal(err)
			}
			id := created.Request.ID
			const extendReason, denyReason = "Reason-Extend-Qw3: the archive is offline", "Reason-Deny-Zp9 <not> & \"manifestly unfounded\""
			ext, err := r.svc.Extend(ctx, id, "key:reviewer", extendReason)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.svc.Deny(ctx, id, "key:reviewer", denyReason); err != nil {
				t.Fatal(err)
			}
			got := r.messagesTo(c.tg)
			if len(got) != 3 {
				t.Fatalf("bot sent %d messages, want acknowledgment, extension, denial", len(got))
			}
			e, d := got[1].Text, got[2].Text
			if !strings.Contains(e, c.extended) || !strings.Contains(e, extendReason) || !strings.Contains(e, ext.DueAt.Format("2006-01-02")) {
				t.Errorf("extension lacks its heading, reason or new date %s:\n%s", ext.DueAt.Format("2006-01-02"), e)
			}
			if !strings.Contains(d, c.denied) || !strings.Contains(d, denyReason) || !strings.Contains(d, c.complaint) {
				t.Errorf("denial lacks its heading, the reason as written, or the right to complain:\n%s", d)
			}
			r.assertOutboxSealed(c.tg, "Reason-Extend-Qw3", "Reason-Deny-Zp9")
			if s := logs.String(); strings.Contains(s, c.tg) || strings.Contains(s, "Reason-") {
				t.Errorf("logs hold the chat id or a reason:\n%s", s)
			}
		})
	}
}

// TestBotRequestBlockedBotFailsForGood: a person who blocked the bot
// cannot be told; the message fails for good at once, with Telegram's
// reason and no personal data, and the request goes on.
func TestBotRequestBlockedBotFailsForGood(t *testing.T) {
	t.Parallel()
	r, _ := botRig(t, rigOpts{noStart: true})
	const tg = "5550880301"
	r.bot.Block(5550880301)
	if _, err := r.svc.Create(context.Background(), botRequestIn("erasure", tg, "ru")); err != nil {
		t.Fatal(err)
	}
	if n := len(r.messagesTo(tg)); n != 0 {
		t.Fatalf("%d messages to a chat that blocked the bot", n)
	}
	var status, lastErr string
	if err := r.pool.QueryRow(context.Background(), `SELECT status, last_error FROM outbox WHERE kind = 'telegram.message'`).Scan(&status, &lastErr); err != nil {
		t.Fatal(err)
	}
	if status != "failed" || lastErr != "telegram sendMessage: HTTP 403: Forbidden: bot was blocked by the user" {
		t.Errorf("outbox row %s %q, want failed with Telegram's reason", status, lastErr)
	}
	r.assertOutboxSealed(tg)
}

// TestTelegramRouting: with a bot token an email subject still gets email
// and nothing from the bot; without one a bot user gets nothing queued, and
// the engine said so when it started.
func TestTelegramRouting(t *testing.T) {
	t.Parallel()

	t.Run("email_subject_emailed", func(t *testing.T) {
		t.Parallel()
		r, _ := botRig(t, rigOpts{noStart: true})
		_, err := r.svc.Create(context.Background(), dsar.CreateInput{Type: "access", Subject: identity.MustParse("email:eve@example.com"),
			Region: "DE", Channel: dsar.ChannelStaff, Note: "by post", IdentityVerified: true, IsStaff: true, Actor: "key:reviewer", Language: "ru"})
		if err != nil {
			t.Fatal(err)
		}
		emails := r.deliver()
		if len(emails) != 1 || emails[0].To[0] != "eve@example.com" || !strings.Contains(emails[0].Subject, "Мы получили") {
			t.Errorf("emails = %+v, want the Russian acknowledgment to eve", emails)
		}
		if n := len(r.bot.Messages()); n != 0 {
			t.Errorf("%d bot messages for an email subject", n)
		}
	})

	t.Run("staff_entered_tg_subject_told_by_the_bot", func(t *testing.T) {
		t.Parallel()
		r, _ := botRig(t, rigOpts{noStart: true})
		_, err := r.svc.Create(context.Background(), dsar.CreateInput{Type: "access", Subject: identity.MustParse("tg:5550880401"),
			Region: "DE", Channel: dsar.ChannelStaff, Note: "asked the support chat", IdentityVerified: true, IsStaff: true, Actor: "key:reviewer"})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.messagesTo("5550880401"); len(got) != 1 || !strings.Contains(got[0].Text, "We have received your privacy request") {
			t.Errorf("messages = %+v, want the acknowledgment", got)
		}
	})

	t.Run("no_token_nothing_queued_and_warned_at_start", func(t *testing.T) {
		t.Parallel()
		logs := &testutil.SyncBuffer{}
		r := newRig(t, rigOpts{engine: loadSmallEngine(t), noStart: true, log: logs})
		if n := strings.Count(logs.String(), "no Telegram bot token"); n != 1 || !strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("start-up warning logged %d times:\n%s", n, logs)
		}
		if _, err := r.svc.Create(context.Background(), botRequest("access", "5550880501")); err != nil {
			t.Fatal(err)
		}
		if n := r.count(`SELECT count(*) FROM outbox`); n != 0 {
			t.Errorf("%d messages queued without a bot token", n)
		}
		if n := strings.Count(logs.String(), "no Telegram bot token"); n != 1 {
			t.Errorf("warning repeated per request (%d times)", n)
		}
	})
}
