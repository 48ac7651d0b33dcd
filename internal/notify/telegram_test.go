package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/notify/telegramtest"
)

// testChat is a Telegram user id long enough that finding it in a log or a
// row cannot be a coincidence.
const testChat int64 = 5550001234

// tgConfig is a worker config that delivers Telegram messages to bot (and
// nothing through Resend).
func (e *env) tgConfig(bot *telegramtest.Server) WorkerConfig {
	return WorkerConfig{
		Telegram:    TelegramConfig{BotToken: bot.Token(), APIURL: bot.URL},
		BaseBackoff: 10 * time.Second,
		MaxBackoff:  time.Hour,
	}
}

// deniedMessage is a refusal to chat with values that must never appear in
// the clear in the database or the logs.
func deniedMessage(chat int64, lang string) TelegramMessage {
	return TelegramMessage{
		ChatID:   chat,
		Template: TemplateRequestDenied,
		Language: lang,
		Data: map[string]string{
			"request_id":   "REQ-9917",
			"request_type": "erasure",
			"reason":       "Unverifiable-Reason-Text-Kq7",
			"authority":    "the Example Data Protection Authority",
			"status_url":   "https://privacy.example.com/status/REQ-9917?t=tok-Zx81",
		},
	}
}

func (e *env) enqueueTelegram(t *testing.T, m TelegramMessage) (int64, string) {
	t.Helper()
	ctx := context.Background()
	var id int64
	var key string
	err := db.Tx(ctx, e.pool, func(tx pgx.Tx) error {
		var err error
		if key, err = e.ob.EnqueueTelegram(ctx, tx, m); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT id FROM outbox WHERE idempotency_key = $1`, key).Scan(&id)
	})
	if err != nil {
		t.Fatalf("enqueue telegram: %v", err)
	}
	return id, key
}

// assertNoPersonalData checks that s holds neither the chat id nor any of
// the message's values.
func assertNoPersonalData(t *testing.T, where, s string, m TelegramMessage) {
	t.Helper()
	if strings.Contains(s, strconv.FormatInt(m.ChatID, 10)) {
		t.Errorf("%s holds the chat id: %q", where, s)
	}
	for k, v := range m.Data {
		if k == "request_type" || k == "authority" {
			continue // not personal: one of six words, a regulator's name
		}
		if strings.Contains(s, v) {
			t.Errorf("%s holds %s in the clear: %q", where, k, s)
		}
	}
}

func TestEnqueueTelegram(t *testing.T) {
	t.Parallel()

	t.Run("sealed_in_the_row_and_not_logged", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		m := deniedMessage(testChat, "ru")
		id, _ := e.enqueueTelegram(t, m)
		r := e.row(t, id)
		if r.Status != "pending" || r.Attempts != 0 || !r.NextAttemptAt.Equal(e.clk.Now()) {
			t.Errorf("row = %+v, want pending, due now", r)
		}
		assertNoPersonalData(t, "payload", r.Payload, m)
		if !strings.Contains(r.Payload, `"template": "request_denied"`) {
			t.Errorf("payload %s does not name its template", r.Payload)
		}
		var kind string
		if err := e.pool.QueryRow(context.Background(), `SELECT kind FROM outbox WHERE id = $1`, id).Scan(&kind); err != nil || kind != KindTelegram {
			t.Errorf("kind = %q (%v), want %s", kind, err, KindTelegram)
		}
		logs := e.logs.String()
		if !strings.Contains(logs, "outbox_kind="+KindTelegram) {
			t.Errorf("queue log missing:\n%s", logs)
		}
		assertNoPersonalData(t, "logs", logs, m)
	})

	t.Run("refusals_name_no_value_and_write_nothing", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		ctx := context.Background()
		for name, m := range map[string]TelegramMessage{
			"group_chat":     func() TelegramMessage { m := deniedMessage(-1001234567890, "en"); return m }(),
			"no_chat":        deniedMessage(0, "en"),
			"staff_reminder": {ChatID: testChat, Template: TemplateStaffReminder, Data: sampleData(TemplateStaffReminder)},
			"missing_key":    func() TelegramMessage { m := deniedMessage(testChat, "en"); delete(m.Data, "reason"); return m }(),
			"bad_key":        func() TelegramMessage { m := deniedMessage(testChat, "en"); m.Key = "nope"; return m }(),
		} {
			err := db.Tx(ctx, e.pool, func(tx pgx.Tx) error {
				_, err := e.ob.EnqueueTelegram(ctx, tx, m)
				if err != nil {
					// The refusal leaves the caller's transaction usable.
					if _, err := tx.Exec(ctx, `SELECT 1`); err != nil {
						t.Errorf("%s: transaction unusable: %v", name, err)
					}
				}
				return err
			})
			if !errors.Is(err, ErrInvalidTelegram) {
				t.Errorf("%s: err = %v, want ErrInvalidTelegram", name, err)
				continue
			}
			assertNoPersonalData(t, name+" error", err.Error(), m)
		}
		if n := e.countRows(t); n != 0 {
			t.Errorf("%d rows written for refused messages", n)
		}
	})

	t.Run("caller_key_makes_enqueue_idempotent", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		ctx := context.Background()
		m := deniedMessage(testChat, "en")
		m.Key = uuid.NewString()
		_, key := e.enqueueTelegram(t, m)
		err := db.Tx(ctx, e.pool, func(tx pgx.Tx) error {
			again, err := e.ob.EnqueueTelegram(ctx, tx, m)
			if !errors.Is(err, ErrAlreadyQueued) || again != key {
				t.Errorf("second enqueue = %q, %v; want %q and ErrAlreadyQueued", again, err, key)
			}
			return nil
		})
		if err != nil || e.countRows(t) != 1 {
			t.Fatalf("%v; %d rows, want 1", err, e.countRows(t))
		}
	})
}

func TestTelegramDelivery(t *testing.T) {
	t.Parallel()

	t.Run("sent_once_in_its_language_and_erased", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		bot := telegramtest.New(t)
		m := deniedMessage(testChat, "uz-Latn")
		id, _ := e.enqueueTelegram(t, m)
		w := NewWorker(e.pool, e.kr, e.tgConfig(bot), e.clk, e.log, nil)

		if res := runOnce(t, w); res != (RunResult{Delivered: 1}) {
			t.Fatalf("RunOnce = %+v, want 1 delivered", res)
		}
		got := bot.Messages()
		if len(got) != 1 {
			t.Fatalf("bot sent %d messages, want 1", len(got))
		}
		want, _ := renderTelegram(m.Template, "uz", m.Data)
		s := got[0]
		if s.ChatID != testChat || s.HTML != want || s.ParseMode != "HTML" || !s.LinkPreviewDisabled {
			t.Errorf("sent %+v, want the Uzbek rendering to the chat, HTML, no preview", s)
		}
		for _, p := range []string{"Soʻrovingiz boʻyicha qaror", "Unverifiable-Reason-Text-Kq7", "nazorat qiluvchi organga", "sudga murojaat qilish"} {
			if !strings.Contains(s.Text, p) {
				t.Errorf("message lacks %q:\n%s", p, s.Text)
			}
		}
		if l := s.Links(); len(l) != 1 || l[0] != m.Data["status_url"] {
			t.Errorf("links = %v, want the status link", l)
		}
		reqs := bot.Requests()
		if len(reqs) != 1 || reqs[0].Method != "sendMessage" || reqs[0].Token != telegramtest.Token || reqs[0].ContentType != "application/json" {
			t.Errorf("requests = %v, want one JSON sendMessage with the token", reqs)
		}
		r := e.row(t, id)
		if r.Status != "delivered" || r.Attempts != 1 || r.LastError != nil || r.Payload != "{}" {
			t.Errorf("row = %+v, want delivered after 1 attempt with the payload erased", r)
		}
		if res := runOnce(t, w); res != (RunResult{}) || len(bot.Messages()) != 1 {
			t.Errorf("second RunOnce = %+v with %d messages: a delivered message went again", res, len(bot.Messages()))
		}
		logs := e.logs.String()
		assertNoPersonalData(t, "logs", logs, m)
		if strings.Contains(logs, telegramtest.Token) {
			t.Error("logs hold the bot token")
		}
	})

	t.Run("rate_limited_waits_retry_after_then_sends_once", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		bot := telegramtest.New(t)
		id, _ := e.enqueueTelegram(t, deniedMessage(testChat, "ru"))
		cfg := e.tgConfig(bot)
		cfg.BaseBackoff = 10 * time.Millisecond
		w := NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil)
		bot.RateLimitNext(1, 37)

		if res := runOnce(t, w); res != (RunResult{Retried: 1}) {
			t.Fatalf("RunOnce = %+v, want retried", res)
		}
		r := e.row(t, id)
		if d := r.NextAttemptAt.Sub(e.clk.Now()); d < 37*time.Second {
			t.Errorf("retry in %v, want at least retry_after (37s)", d)
		}
		if r.LastError == nil || !strings.Contains(*r.LastError, "429") || !strings.Contains(*r.LastError, "retry after 37") {
			t.Errorf("last_error = %v, want the 429", r.LastError)
		}
		e.clk.Advance(36 * time.Second)
		if res := runOnce(t, w); res != (RunResult{}) {
			t.Fatalf("RunOnce before retry_after = %+v, want nothing", res)
		}
		e.clk.Set(r.NextAttemptAt)
		if res := runOnce(t, w); res != (RunResult{Delivered: 1}) {
			t.Fatalf("RunOnce after retry_after = %+v, want delivered", res)
		}
		if n := len(bot.MessagesTo(testChat)); n != 1 {
			t.Errorf("%d messages, want exactly 1", n)
		}
		if n := len(bot.Requests()); n != 2 {
			t.Errorf("%d requests, want 2 (the 429, the send)", n)
		}
	})

	t.Run("server_error_retried_with_backoff", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		bot := telegramtest.New(t)
		id, _ := e.enqueueTelegram(t, deniedMessage(testChat, "en"))
		w := NewWorker(e.pool, e.kr, e.tgConfig(bot), e.clk, e.log, nil)
		bot.FailNext(2, http.StatusInternalServerError)
		var last time.Duration
		for i := range 2 {
			if res := runOnce(t, w); res != (RunResult{Retried: 1}) {
				t.Fatalf("attempt %d: RunOnce = %+v, want retried", i+1, res)
			}
			r := e.row(t, id)
			d := r.NextAttemptAt.Sub(e.clk.Now())
			if d <= last || r.LastError == nil || !strings.Contains(*r.LastError, "HTTP 500") {
				t.Fatalf("attempt %d: backoff %v after %v, last_error %v", i+1, d, last, r.LastError)
			}
			last = d
			e.clk.Set(r.NextAttemptAt)
		}
		if res := runOnce(t, w); res != (RunResult{Delivered: 1}) || len(bot.Messages()) != 1 {
			t.Fatalf("RunOnce = %+v with %d messages, want delivered once", res, len(bot.Messages()))
		}
	})

	t.Run("blocked_bot_fails_for_good_without_personal_data", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		bot := telegramtest.New(t)
		bot.Block(testChat)
		m := deniedMessage(testChat, "en")
		id, key := e.enqueueTelegram(t, m)
		fr := &failRecorder{}
		w := NewWorker(e.pool, e.kr, e.tgConfig(bot), e.clk, e.log, fr.hook(t))

		if res := runOnce(t, w); res != (RunResult{Failed: 1}) {
			t.Fatalf("RunOnce = %+v, want failed", res)
		}
		r := e.row(t, id)
		if r.Status != "failed" || r.Attempts != 1 || r.LastError == nil ||
			*r.LastError != "telegram sendMessage: HTTP 403: Forbidden: bot was blocked by the user" {
			t.Fatalf("row = %+v, want failed at once with Telegram's description", r)
		}
		assertNoPersonalData(t, "payload", r.Payload, m)
		calls := fr.Calls()
		if len(calls) != 1 || calls[0] != (Message{ID: id, Kind: KindTelegram, IdempotencyKey: key, Attempts: 1, LastError: *r.LastError}) {
			t.Errorf("hook calls = %+v", calls)
		}
		if n := len(bot.Messages()); n != 0 {
			t.Errorf("%d messages sent to a chat that blocked the bot", n)
		}
		e.clk.Advance(24 * time.Hour)
		if res := runOnce(t, w); res != (RunResult{}) || len(bot.Requests()) != 1 {
			t.Errorf("RunOnce later = %+v after %d requests: a failed message was tried again", res, len(bot.Requests()))
		}
		assertNoPersonalData(t, "logs", e.logs.String(), m)
	})

	t.Run("chat_not_found_fails_for_good", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		bot := telegramtest.New(t)
		bot.ForgetChat(testChat)
		id, _ := e.enqueueTelegram(t, deniedMessage(testChat, "en"))
		w := NewWorker(e.pool, e.kr, e.tgConfig(bot), e.clk, e.log, nil)
		if res := runOnce(t, w); res != (RunResult{Failed: 1}) {
			t.Fatalf("RunOnce = %+v, want failed", res)
		}
		if r := e.row(t, id); r.LastError == nil || !strings.Contains(*r.LastError, "HTTP 400: Bad Request: chat not found") {
			t.Errorf("last_error = %v", r.LastError)
		}
	})

	t.Run("wrong_token_retried_and_never_recorded", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		bot := telegramtest.New(t)
		id, _ := e.enqueueTelegram(t, deniedMessage(testChat, "en"))
		cfg := e.tgConfig(bot)
		const other = "7000000001:AAHanother-token-of-the-same-bot_99"
		cfg.Telegram.BotToken = other
		w := NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil)
		if res := runOnce(t, w); res != (RunResult{Retried: 1}) {
			t.Fatalf("RunOnce = %+v, want retried (configuration, not the message, is wrong)", res)
		}
		r := e.row(t, id)
		if r.LastError == nil || !strings.Contains(*r.LastError, "HTTP 401") || !strings.Contains(*r.LastError, "STEWARD_TELEGRAM_BOT_TOKEN") {
			t.Errorf("last_error = %v", r.LastError)
		}
		if strings.Contains(*r.LastError+e.logs.String(), other) {
			t.Error("the token is in last_error or the logs")
		}
	})

	t.Run("network_error_retried_without_the_token", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		down := telegramtest.New(t)
		down.Close()
		id, _ := e.enqueueTelegram(t, deniedMessage(testChat, "en"))
		w := NewWorker(e.pool, e.kr, e.tgConfig(down), e.clk, e.log, nil)
		if res := runOnce(t, w); res != (RunResult{Retried: 1}) {
			t.Fatalf("RunOnce = %+v, want retried", res)
		}
		r := e.row(t, id)
		if r.LastError == nil || !strings.Contains(*r.LastError, "network") || strings.Contains(*r.LastError, "outcome unknown") {
			t.Fatalf("last_error = %v, want a network error before sending", r.LastError)
		}
		if strings.Contains(*r.LastError+e.logs.String(), telegramtest.Token) {
			t.Errorf("the token leaked: %s", *r.LastError)
		}
	})

	t.Run("lost_answer_is_outcome_unknown_and_sent_again", func(t *testing.T) {
		t.Parallel()
		// The documented window: Telegram took the message, the answer was
		// lost. The worker cannot know, says so, and sends again.
		e := newEnv(t)
		bot := telegramtest.New(t)
		id, _ := e.enqueueTelegram(t, deniedMessage(testChat, "en"))
		w := NewWorker(e.pool, e.kr, e.tgConfig(bot), e.clk, e.log, nil)
		bot.DropNext(1)
		if res := runOnce(t, w); res != (RunResult{Retried: 1}) {
			t.Fatalf("RunOnce = %+v, want retried", res)
		}
		r := e.row(t, id)
		if r.LastError == nil || !strings.Contains(*r.LastError, "outcome unknown") {
			t.Fatalf("last_error = %v, want the outcome called unknown", r.LastError)
		}
		if !strings.Contains(e.logs.String(), "outcome unknown") {
			t.Error("the operator is not told a duplicate may follow")
		}
		e.clk.Set(r.NextAttemptAt)
		if res := runOnce(t, w); res != (RunResult{Delivered: 1}) {
			t.Fatalf("RunOnce = %+v, want delivered", res)
		}
		if n := len(bot.MessagesTo(testChat)); n != 2 {
			t.Errorf("%d messages, want 2: the lost answer's message and the retry", n)
		}
	})

	t.Run("concurrent_workers_send_each_message_once", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		bot := telegramtest.New(t)
		const n = 40
		for i := range n {
			e.enqueueTelegram(t, deniedMessage(testChat+int64(i), "en"))
		}
		cfg := e.tgConfig(bot)
		cfg.BatchSize = 3
		workers := []*Worker{
			NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil),
			NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil),
			NewWorker(e.pool, e.kr, cfg, e.clk, e.log, nil),
		}
		var (
			wg        sync.WaitGroup
			mu        sync.Mutex
			delivered = map[int]int{}
			start     = make(chan struct{})
		)
		for i, w := range workers {
			wg.Go(func() {
				<-start
				for {
					res, err := w.RunOnce(context.Background())
					if err != nil {
						t.Errorf("RunOnce: %v", err)
						return
					}
					mu.Lock()
					delivered[i] += res.Delivered
					mu.Unlock()
					if res.Delivered+res.Retried+res.Failed == 0 {
						return
					}
				}
			})
		}
		close(start)
		wg.Wait()
		total := 0
		for _, d := range delivered {
			total += d
		}
		if total != n {
			t.Errorf("delivered %d (per worker %v), want %d", total, delivered, n)
		}
		if got := len(bot.Messages()); got != n {
			t.Errorf("bot sent %d messages, want %d", got, n)
		}
		for i := range n {
			if c := len(bot.MessagesTo(testChat + int64(i))); c != 1 {
				t.Errorf("chat %d got %d messages, want 1", i, c)
			}
		}
		if res := runOnce(t, workers[0]); res != (RunResult{}) {
			t.Errorf("left over: %+v", res)
		}
	})

	t.Run("undecryptable_payload_failed_for_good", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		bot := telegramtest.New(t)
		id, _ := e.enqueueTelegram(t, deniedMessage(testChat, "en"))
		w := NewWorker(e.pool, keyring.NewRandom("k2"), e.tgConfig(bot), e.clk, e.log, nil)
		if res := runOnce(t, w); res != (RunResult{Failed: 1}) {
			t.Fatalf("RunOnce = %+v, want failed", res)
		}
		if r := e.row(t, id); r.Status != "failed" || len(bot.Requests()) != 0 {
			t.Errorf("row %+v after %d requests", r, len(bot.Requests()))
		}
	})
}

func TestTelegramConfiguration(t *testing.T) {
	t.Parallel()

	t.Run("telegram_only_sends_messages_and_keeps_emails", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		bot := telegramtest.New(t)
		eid, _ := e.enqueueEmail(t, receivedEmail("jo@example.com", "en"))
		e.enqueueTelegram(t, deniedMessage(testChat, "en"))
		w := NewWorker(e.pool, e.kr, e.tgConfig(bot), e.clk, e.log, nil)
		if res := runOnce(t, w); res != (RunResult{Delivered: 1, Kept: 1}) {
			t.Fatalf("RunOnce = %+v, want the message delivered and the email kept", res)
		}
		if res := runOnce(t, w); res != (RunResult{Kept: 1}) {
			t.Fatalf("RunOnce = %+v, want 1 kept", res)
		}
		if r := e.row(t, eid); r.Status != "pending" || r.Attempts != 0 {
			t.Errorf("email row = %+v, want untouched", r)
		}
		if n := strings.Count(e.logs.String(), "Resend is not configured for this kind"); n != 1 {
			t.Errorf("keep error logged %d times, want once:\n%s", n, e.logs.String())
		}
	})

	t.Run("resend_only_keeps_telegram_messages", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		id, _ := e.enqueueTelegram(t, deniedMessage(testChat, "en"))
		e.enqueueEmail(t, receivedEmail("jo@example.com", "en"))
		w := NewWorker(e.pool, e.kr, e.emailConfig(), e.clk, e.log, nil)
		if res := runOnce(t, w); res != (RunResult{Delivered: 1, Kept: 1}) {
			t.Fatalf("RunOnce = %+v, want the email delivered and the message kept", res)
		}
		if r := e.row(t, id); r.Status != "pending" || r.Attempts != 0 {
			t.Errorf("telegram row = %+v, want untouched", r)
		}
		logs := e.logs.String()
		if n := strings.Count(logs, "Telegram is not configured for this kind"); n != 1 || !strings.Contains(logs, "STEWARD_TELEGRAM_BOT_TOKEN") {
			t.Errorf("keep error logged %d times, want once naming the variable:\n%s", n, logs)
		}
	})

	t.Run("validate", func(t *testing.T) {
		t.Parallel()
		for name, c := range map[string]struct {
			cfg TelegramConfig
			ok  bool
		}{
			"none":          {TelegramConfig{}, true},
			"token":         {TelegramConfig{BotToken: telegramtest.Token}, true},
			"token_and_url": {TelegramConfig{BotToken: telegramtest.Token, APIURL: "http://127.0.0.1:9/"}, true},
			"no_bot_id":     {TelegramConfig{BotToken: "AAHsteward-test-bot-token_0123456789"}, false},
			"short_secret":  {TelegramConfig{BotToken: "123456:TEST-bot-token"}, true},
			"no_secret":     {TelegramConfig{BotToken: "123:"}, false},
			"space":         {TelegramConfig{BotToken: "123:AAH token"}, false},
			"bad_url":       {TelegramConfig{BotToken: telegramtest.Token, APIURL: "api.telegram.org"}, false},
			"ftp_url":       {TelegramConfig{BotToken: telegramtest.Token, APIURL: "ftp://api.telegram.org"}, false},
		} {
			err := c.cfg.Validate()
			if (err == nil) != c.ok {
				t.Errorf("%s: Validate = %v, want ok=%v", name, err, c.ok)
			}
			if err != nil && strings.Contains(err.Error(), "AAH") {
				t.Errorf("%s: error repeats the token: %v", name, err)
			}
		}
	})

	t.Run("invalid_token_keeps_messages_and_says_why", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.enqueueTelegram(t, deniedMessage(testChat, "en"))
		w := NewWorker(e.pool, e.kr, WorkerConfig{Telegram: TelegramConfig{BotToken: "not a token"}}, e.clk, e.log, nil)
		if res := runOnce(t, w); res != (RunResult{Kept: 1}) {
			t.Fatalf("RunOnce = %+v, want kept", res)
		}
		if logs := e.logs.String(); !strings.Contains(logs, "misconfigured") || !strings.Contains(logs, "BotFather") {
			t.Errorf("logs do not say why:\n%s", logs)
		}
	})
}

type decodeCase struct {
	name   string
	status int
	body   string
	want   botAnswer
	// permanent and retryAfter are classifyTelegram's verdict.
	permanent  bool
	retryAfter time.Duration
}

func decodeCases() []decodeCase {
	return []decodeCase{
		{"ok", 200, `{"ok":true,"result":{"message_id":1}}`, botAnswer{OK: true, Code: 200}, false, 0},
		{"flood", 429, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 12","parameters":{"retry_after":12}}`,
			botAnswer{Code: 429, Description: "Too Many Requests: retry after 12", RetryAfter: 12 * time.Second}, false, 12 * time.Second},
		{"flood_absurd_wait", 429, `{"ok":false,"error_code":429,"description":"x","parameters":{"retry_after":99999999999}}`,
			botAnswer{Code: 429, Description: "x", RetryAfter: maxRetryAfter}, false, maxRetryAfter},
		{"flood_negative_wait", 429, `{"ok":false,"error_code":429,"description":"x","parameters":{"retry_after":-5}}`,
			botAnswer{Code: 429, Description: "x"}, false, 0},
		{"blocked", 403, `{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}`,
			botAnswer{Code: 403, Description: "Forbidden: bot was blocked by the user"}, true, 0},
		{"chat_not_found", 400, `{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`,
			botAnswer{Code: 400, Description: "Bad Request: chat not found"}, true, 0},
		{"migrated", 400, `{"ok":false,"error_code":400,"description":"Bad Request: group chat was upgraded to a supergroup chat","parameters":{"migrate_to_chat_id":-1001234567890}}`,
			botAnswer{Code: 400, Description: "Bad Request: group chat was upgraded to a supergroup chat", MigrateTo: -1001234567890}, true, 0},
		{"unauthorized", 401, `{"ok":false,"error_code":401,"description":"Unauthorized"}`, botAnswer{Code: 401, Description: "Unauthorized"}, false, 0},
		{"not_found", 404, `{"ok":false,"error_code":404,"description":"Not Found"}`, botAnswer{Code: 404, Description: "Not Found"}, false, 0},
		{"server_error", 500, `{"ok":false,"error_code":500,"description":"Internal Server Error"}`, botAnswer{Code: 500, Description: "Internal Server Error"}, false, 0},
		{"redirect", 301, ``, botAnswer{Code: 301}, false, 0},
		{"proxy_page", 502, `<html><body>Bad Gateway for ann@example.com</body></html>`, botAnswer{Code: 502}, false, 0},
		{"empty_body", 503, ``, botAnswer{Code: 503}, false, 0},
		{"error_code_wins", 400, `{"ok":false,"error_code":403,"description":"Forbidden: user is deactivated"}`,
			botAnswer{Code: 403, Description: "Forbidden: user is deactivated"}, true, 0},
		{"silly_error_code", 400, `{"ok":false,"error_code":7,"description":"x"}`, botAnswer{Code: 400, Description: "x"}, true, 0},
		{"multiline_description", 400, `{"ok":false,"error_code":400,"description":"Bad Request:\n\ttext\u0000 is empty"}`,
			botAnswer{Code: 400, Description: "Bad Request: text is empty"}, true, 0},
		{"ok_false_with_200", 200, `{"ok":false,"error_code":400,"description":"odd"}`, botAnswer{Code: 400, Description: "odd"}, true, 0},
		{"string_retry_after", 429, `{"ok":false,"error_code":429,"parameters":{"retry_after":"3"}}`, botAnswer{Code: 429, RetryAfter: 3 * time.Second}, false, 3 * time.Second},
		{"malformed_parameters", 429, `{"ok":false,"error_code":429,"description":"slow down","parameters":{"retry_after":true}}`,
			botAnswer{Code: 429, Description: "slow down"}, false, 0},
	}
}

func TestDecodeBotResponse(t *testing.T) {
	t.Parallel()
	for _, c := range decodeCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := decodeBotResponse(c.status, []byte(c.body))
			if got != c.want {
				t.Errorf("decode = %+v, want %+v", got, c.want)
			}
			if got.OK {
				return
			}
			de := classifyTelegram(got)
			if de.permanent != c.permanent || de.retryAfter != c.retryAfter {
				t.Errorf("classify = permanent %v, retry after %v; want %v, %v", de.permanent, de.retryAfter, c.permanent, c.retryAfter)
			}
			if !strings.HasPrefix(de.msg, fmt.Sprintf("telegram sendMessage: HTTP %d: ", got.Code)) || strings.Contains(de.msg, "ann@") {
				t.Errorf("message %q", de.msg)
			}
		})
	}
}

// FuzzDecodeBotResponse feeds arbitrary answers to the decoder: it never
// panics, its description is one bounded printable line, a wait is never
// negative nor beyond the cap, and a failure is never classified as both
// permanent and rate-limited.
func FuzzDecodeBotResponse(f *testing.F) {
	for _, c := range decodeCases() {
		f.Add(c.status, []byte(c.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		a := decodeBotResponse(status, body)
		if a.RetryAfter < 0 || a.RetryAfter > maxRetryAfter {
			t.Errorf("retry after %v", a.RetryAfter)
		}
		if len(a.Description) > 200+len("…") || strings.ContainsAny(a.Description, "\n\r\t\x00") {
			t.Errorf("description %q", a.Description)
		}
		if a.OK && (status < 200 || status > 299) {
			t.Errorf("ok with HTTP %d", status)
		}
		if again := decodeBotResponse(status, body); again != a {
			t.Error("not deterministic")
		}
		if !a.OK {
			de := classifyTelegram(a)
			if de.permanent && de.retryAfter != 0 {
				t.Errorf("permanent with a wait: %+v", de)
			}
		}
	})
}
