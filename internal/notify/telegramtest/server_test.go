package telegramtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// answer is the Bot API envelope.
type answer struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  *struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

func call(t *testing.T, s *Server, token, method string, params map[string]any) (int, answer) {
	t.Helper()
	body, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(s.URL+"/bot"+token+"/"+method, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer %q is not JSON: %v", raw, err)
	}
	if a.OK != (resp.StatusCode == http.StatusOK) || (!a.OK && a.ErrorCode != resp.StatusCode) {
		t.Errorf("envelope %+v does not match HTTP %d", a, resp.StatusCode)
	}
	return resp.StatusCode, a
}

func send(chatID any, text string) map[string]any {
	return map[string]any{"chat_id": chatID, "text": text, "parse_mode": "HTML", "link_preview_options": map[string]any{"is_disabled": true}}
}

func TestSendMessage(t *testing.T) {
	t.Parallel()

	t.Run("accepted_recorded_and_answered_with_the_message", func(t *testing.T) {
		t.Parallel()
		s := New(t)
		var seen []Message
		s.OnSend(func(m Message) { seen = append(seen, m) })
		status, a := call(t, s, Token, "sendMessage", send(777001, `<b>Hi</b> &amp; <a href="https://x.example/d?t=1">download</a>`))
		if status != http.StatusOK {
			t.Fatalf("status %d: %+v", status, a)
		}
		var res struct {
			MessageID int64 `json:"message_id"`
			Chat      struct {
				ID   int64  `json:"id"`
				Type string `json:"type"`
			} `json:"chat"`
			Text     string   `json:"text"`
			Entities []Entity `json:"entities"`
		}
		if err := json.Unmarshal(a.Result, &res); err != nil {
			t.Fatal(err)
		}
		if res.MessageID != 1 || res.Chat.ID != 777001 || res.Chat.Type != "private" || res.Text != "Hi & download" || len(res.Entities) != 2 {
			t.Errorf("result = %+v", res)
		}
		got := s.Messages()
		if len(got) != 1 || len(seen) != 1 {
			t.Fatalf("messages = %+v, seen %d", got, len(seen))
		}
		m := got[0]
		if m.ChatID != 777001 || m.Text != "Hi & download" || m.ParseMode != "HTML" || !m.LinkPreviewDisabled ||
			strings.Join(m.Links(), ",") != "https://x.example/d?t=1" {
			t.Errorf("message = %+v", m)
		}
		if n := len(s.MessagesTo(777002)); n != 0 {
			t.Errorf("%d messages to another chat", n)
		}
	})

	t.Run("string_chat_id_and_form_body_accepted", func(t *testing.T) {
		t.Parallel()
		s := New(t)
		resp, err := http.PostForm(s.URL+"/bot"+Token+"/SENDMESSAGE", url.Values{"chat_id": {"42"}, "text": {"plain"}})
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(s.MessagesTo(42)) != 1 {
			t.Errorf("status %d, messages %+v", resp.StatusCode, s.Messages())
		}
	})

	t.Run("refusals", func(t *testing.T) {
		t.Parallel()
		s := New(t)
		for name, c := range map[string]struct {
			token  string
			method string
			params map[string]any
			status int
			desc   string
		}{
			"wrong_token":     {"7000000001:AAHanother-token-of-the-same-bot_99", "sendMessage", send(1, "x"), 401, "Unauthorized"},
			"malformed_token": {"nonsense", "sendMessage", send(1, "x"), 401, "Unauthorized"},
			"unknown_method":  {Token, "sendPhotoz", send(1, "x"), 404, "Not Found"},
			"no_chat":         {Token, "sendMessage", map[string]any{"text": "x"}, 400, "chat_id is empty"},
			"bad_chat":        {Token, "sendMessage", send("ann", "x"), 400, "chat not found"},
			"channel":         {Token, "sendMessage", send("@news", "x"), 400, "chat not found"},
			"empty_text":      {Token, "sendMessage", send(1, "  "), 400, "message text is empty"},
			"bad_markup":      {Token, "sendMessage", send(1, "<p>x</p>"), 400, "can't parse entities"},
			"unescaped":       {Token, "sendMessage", send(1, "Q&A"), 400, "can't parse entities"},
			"too_long":        {Token, "sendMessage", send(1, strings.Repeat("x", 4097)), 400, "too long"},
			"plain_too_long":  {Token, "sendMessage", map[string]any{"chat_id": 1, "text": strings.Repeat("x", 4097)}, 400, "too long"},
			"markdown":        {Token, "sendMessage", map[string]any{"chat_id": 1, "text": "*x*", "parse_mode": "MarkdownV2"}, 400, "parse_mode"},
		} {
			status, a := call(t, s, c.token, c.method, c.params)
			if status != c.status || !strings.Contains(a.Description, c.desc) {
				t.Errorf("%s: %d %q, want %d containing %q", name, status, a.Description, c.status, c.desc)
			}
		}
		if n := len(s.Messages()); n != 0 {
			t.Errorf("%d messages recorded from refused calls", n)
		}
	})

	t.Run("get_me_names_the_bot_of_the_token", func(t *testing.T) {
		t.Parallel()
		s := New(t)
		status, a := call(t, s, Token, "getMe", nil)
		var me struct {
			ID    int64 `json:"id"`
			IsBot bool  `json:"is_bot"`
		}
		if err := json.Unmarshal(a.Result, &me); err != nil || status != 200 || me.ID != 7000000001 || !me.IsBot {
			t.Errorf("getMe = %d %+v (%v)", status, me, err)
		}
	})

	t.Run("injected_failures_send_nothing", func(t *testing.T) {
		t.Parallel()
		s := New(t)
		s.RateLimitNext(1, 7)
		s.FailNext(1, http.StatusInternalServerError)
		s.FailNext(1, http.StatusForbidden)
		status, a := call(t, s, Token, "sendMessage", send(5, "x"))
		if status != 429 || a.Parameters == nil || a.Parameters.RetryAfter != 7 || a.Description != "Too Many Requests: retry after 7" {
			t.Errorf("first call = %d %+v, want 429 retry after 7", status, a)
		}
		if status, a = call(t, s, Token, "sendMessage", send(5, "x")); status != 500 || a.Parameters != nil {
			t.Errorf("second call = %d %+v, want 500", status, a)
		}
		if status, a = call(t, s, Token, "sendMessage", send(5, "x")); status != 403 || a.Description != "Forbidden: bot was blocked by the user" {
			t.Errorf("third call = %d %+v, want 403 blocked", status, a)
		}
		if n := len(s.Messages()); n != 0 {
			t.Fatalf("%d messages sent through failures", n)
		}
		if status, _ = call(t, s, Token, "sendMessage", send(5, "x")); status != 200 || len(s.Messages()) != 1 {
			t.Errorf("fourth call = %d with %d messages, want sent", status, len(s.Messages()))
		}
	})

	t.Run("blocked_and_unknown_chats_refused_for_good", func(t *testing.T) {
		t.Parallel()
		s := New(t)
		s.Block(11)
		s.ForgetChat(12)
		for range 2 {
			if status, a := call(t, s, Token, "sendMessage", send(11, "x")); status != 403 || !strings.Contains(a.Description, "blocked") {
				t.Errorf("blocked chat: %d %q", status, a.Description)
			}
			if status, a := call(t, s, Token, "sendMessage", send(12, "x")); status != 400 || a.Description != "Bad Request: chat not found" {
				t.Errorf("unknown chat: %d %q", status, a.Description)
			}
		}
		if status, _ := call(t, s, Token, "sendMessage", send(13, "x")); status != 200 {
			t.Errorf("another chat: %d", status)
		}
	})

	t.Run("dropped_connection_after_receipt_sends_but_answers_nothing", func(t *testing.T) {
		t.Parallel()
		s := New(t)
		s.DropNext(1)
		// getMe does not consume the drop: only a send can be lost that way.
		if status, _ := call(t, s, Token, "getMe", nil); status != 200 {
			t.Fatalf("getMe = %d", status)
		}
		body, _ := json.Marshal(send(9, "lost answer"))
		resp, err := http.Post(s.URL+"/bot"+Token+"/sendMessage", "application/json", bytes.NewReader(body))
		if err == nil {
			_ = resp.Body.Close()
			t.Fatalf("got HTTP %d, want the connection dropped", resp.StatusCode)
		}
		if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "EOF") {
			t.Logf("dropped connection error: %v", err)
		}
		if m := s.MessagesTo(9); len(m) != 1 || m[0].Text != "lost answer" {
			t.Errorf("messages = %+v, want the message recorded as sent", m)
		}
		reqs := s.Requests()
		if last := reqs[len(reqs)-1]; last.Status != 0 || last.Answer != nil {
			t.Errorf("dropped request recorded as %v", last)
		}
		if status, _ := call(t, s, Token, "sendMessage", send(9, "next")); status != 200 || len(s.MessagesTo(9)) != 2 {
			t.Errorf("after the drop: %d, %d messages", status, len(s.MessagesTo(9)))
		}
	})
}
