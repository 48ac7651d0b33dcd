// Package telegramtest is a stateful stand-in for the Telegram Bot API on a
// local httptest server, so tests (and the demo deployment) can exercise
// real HTTP delivery of bot messages — token in the path, the HTML parse
// mode, flood control, outages, blocked users, lost answers — without the
// network or a bot. It records every request and every message it accepted,
// and can be told to fail the next calls.
//
// It serves the two methods Steward uses, as the Bot API documents them:
//
//	POST /bot<token>/sendMessage  {chat_id, text, parse_mode, link_preview_options, ...}
//	POST /bot<token>/getMe
//
// (GET with a query string, and form-encoded bodies, work too, as they do
// in Telegram; method names are case-insensitive.) Every answer is the Bot
// API's envelope: {"ok":true,"result":...}, or {"ok":false,"error_code":N,
// "description":"...","parameters":{"retry_after":S}} on failure.
//
// sendMessage checks what Telegram checks: the token (401 Unauthorized when
// it is not the server's), chat_id (an integer, or an @username of a
// channel; 400 "chat not found" for a chat the server was told is unknown),
// text non-empty and at most 4096 characters after entities parsing, and
// with parse_mode HTML the markup (ParseHTML: only the documented tags,
// closed in order, everything else escaped). Any chat id is accepted unless
// Block or ForgetChat says otherwise; a message sent is a Message with the
// parsed plain text and entities.
package telegramtest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Token is a well-formed bot token the server accepts unless NewServerToken
// is given another. Its bot id is 7000000001.
const Token = "7000000001:AAHsteward-test-bot-token_0123456789"

// Message is a message the server accepted.
type Message struct {
	MessageID           int64
	ChatID              int64
	HTML                string   // the text as sent (with parse_mode HTML, its markup)
	Text                string   // what the person sees: the plain text after entities parsing
	Entities            []Entity // its formatting, with links as text_link entities
	ParseMode           string
	LinkPreviewDisabled bool
}

// Links returns the URLs of the message's text_link entities, in order.
func (m Message) Links() []string {
	var out []string
	for _, e := range m.Entities {
		if e.Type == "text_link" {
			out = append(out, e.URL)
		}
	}
	return out
}

// Request is one call the server received.
type Request struct {
	Method      string         // the Bot API method as called, e.g. sendMessage
	Token       string         // the token in the path
	ContentType string         // the request's Content-Type header
	Params      map[string]any // decoded parameters (JSON body, form or query)
	Status      int            // the HTTP status answered (0 when the connection was dropped)
	Answer      map[string]any // the answer's envelope; nil when dropped
}

// String summarises a request for test failure messages; it leaves out the
// text and the token.
func (r Request) String() string {
	return fmt.Sprintf("%s chat_id=%v -> %d", r.Method, r.Params["chat_id"], r.Status)
}

// fault is one kind of injected failure.
type fault struct {
	status     int // HTTP status and error_code
	retryAfter int // for 429
	drop       bool
}

// Server is the Bot API stand-in. Its methods are safe for concurrent use.
type Server struct {
	// URL is the API base to configure (notify.TelegramConfig.APIURL):
	// requests go to URL + "/bot<token>/<method>".
	URL string

	token string
	srv   *httptest.Server

	mu       sync.Mutex
	requests []Request
	messages []Message
	nextID   int64
	faults   []fault
	blocked  map[int64]bool
	unknown  map[int64]bool
	onSend   func(Message)
}

// New starts a stand-in that accepts Token, closed when t ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := NewServer(Token)
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a stand-in outside a test (the demo deployment's bot)
// accepting token; the caller closes it.
func NewServer(token string) *Server {
	s := &Server{token: token, blocked: map[int64]bool{}, unknown: map[int64]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server, e.g. to simulate Telegram being unreachable.
func (s *Server) Close() { s.srv.Close() }

// Token is the bot token the server accepts.
func (s *Server) Token() string { return s.token }

// Requests returns a copy of every call received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Messages returns every message accepted so far, in order. A message sent
// twice (Telegram has no idempotency key) appears twice.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Message, len(s.messages))
	for i, m := range s.messages {
		m.Entities = append([]Entity(nil), m.Entities...)
		out[i] = m
	}
	return out
}

// MessagesTo returns the messages accepted for one chat, in order.
func (s *Server) MessagesTo(chatID int64) []Message {
	var out []Message
	for _, m := range s.Messages() {
		if m.ChatID == chatID {
			out = append(out, m)
		}
	}
	return out
}

// FailNext makes the next n calls fail with status without sending
// anything: 429 (flood control, retry after one second; see RateLimitNext),
// 403 ("Forbidden: bot was blocked by the user"), 400 ("Bad Request: chat
// not found"), 401, 500 ("Internal Server Error"), 502, ...
func (s *Server) FailNext(n, status int) {
	s.inject(n, fault{status: status, retryAfter: 1})
}

// RateLimitNext makes the next n calls answer 429 "Too Many Requests: retry
// after retryAfter" with parameters.retry_after, as Telegram's flood
// control does.
func (s *Server) RateLimitNext(n, retryAfter int) {
	s.inject(n, fault{status: http.StatusTooManyRequests, retryAfter: retryAfter})
}

// DropNext makes the next n sendMessage calls take effect — the message is
// recorded as sent — and then closes the connection without an answer, as
// when Telegram delivered the message but its response was lost. The
// caller cannot tell this from a request that never arrived.
func (s *Server) DropNext(n int) {
	s.inject(n, fault{drop: true})
}

func (s *Server) inject(n int, f fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// Block makes every later message to chatID fail with 403 "Forbidden: bot
// was blocked by the user", as after the person blocked the bot.
func (s *Server) Block(chatID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blocked[chatID] = true
}

// ForgetChat makes every later message to chatID fail with 400 "Bad
// Request: chat not found", as for a user who never opened the bot.
func (s *Server) ForgetChat(chatID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unknown[chatID] = true
}

// OnSend registers f to be called (outside the server's lock) with every
// message accepted; the demo deployment prints them.
func (s *Server) OnSend(f func(Message)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onSend = f
}

// descriptions are Telegram's error descriptions for the injected statuses.
var descriptions = map[int]string{
	http.StatusBadRequest:          "Bad Request: chat not found",
	http.StatusUnauthorized:        "Unauthorized",
	http.StatusForbidden:           "Forbidden: bot was blocked by the user",
	http.StatusNotFound:            "Not Found",
	http.StatusConflict:            "Conflict: terminated by other getUpdates request",
	http.StatusInternalServerError: "Internal Server Error",
	http.StatusBadGateway:          "Bad Gateway",
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	token, method, ok := splitPath(r.URL.Path)
	params, perr := readParams(r)
	rec := Request{Method: method, Token: token, ContentType: r.Header.Get("Content-Type"), Params: params}

	s.mu.Lock()
	idx := len(s.requests)
	s.requests = append(s.requests, rec)
	var f *fault
	if len(s.faults) > 0 && (!s.faults[0].drop || strings.EqualFold(method, "sendMessage")) {
		f = &s.faults[0]
		s.faults = s.faults[1:]
	}
	s.mu.Unlock()

	status, answer, sent := http.StatusOK, map[string]any(nil), (*Message)(nil)
	switch {
	case !ok || token != s.token:
		// Telegram answers a malformed token with 404 and a well-formed
		// unknown one with 401; both mean "not this bot".
		status, answer = failure(http.StatusUnauthorized, "Unauthorized", 0)
	case f != nil && !f.drop:
		desc := descriptions[f.status]
		if f.status == http.StatusTooManyRequests {
			desc = "Too Many Requests: retry after " + strconv.Itoa(f.retryAfter)
		} else if desc == "" {
			desc = http.StatusText(f.status)
		}
		status, answer = failure(f.status, desc, f.retryAfter)
	case perr != nil:
		status, answer = failure(http.StatusBadRequest, "Bad Request: "+perr.Error(), 0)
	default:
		switch strings.ToLower(method) {
		case "getme":
			status, answer = http.StatusOK, map[string]any{"ok": true, "result": s.me()}
		case "sendmessage":
			status, answer, sent = s.sendMessage(params)
		default:
			status, answer = failure(http.StatusNotFound, "Not Found", 0)
		}
	}

	if f != nil && f.drop && sent != nil {
		s.mu.Lock()
		s.requests[idx].Status = 0
		s.mu.Unlock()
		s.notify(*sent)
		// Close the connection with nothing written: the client sees EOF
		// after its request went through.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				_ = conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	s.mu.Lock()
	s.requests[idx].Status, s.requests[idx].Answer = status, answer
	s.mu.Unlock()
	if sent != nil {
		s.notify(*sent)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(answer)
}

func (s *Server) notify(m Message) {
	s.mu.Lock()
	f := s.onSend
	s.mu.Unlock()
	if f != nil {
		f(m)
	}
}

// sendMessage checks and records one message.
func (s *Server) sendMessage(p map[string]any) (int, map[string]any, *Message) {
	chatID, username, err := chatParam(p["chat_id"])
	if err != nil {
		return ret(failure(http.StatusBadRequest, "Bad Request: "+err.Error(), 0))
	}
	if username != "" {
		// Steward writes to people, never to channels; a stand-in has none.
		return ret(failure(http.StatusBadRequest, "Bad Request: chat not found", 0))
	}
	text, _ := p["text"].(string)
	if _, isString := p["text"].(string); !isString && p["text"] != nil {
		return ret(failure(http.StatusBadRequest, "Bad Request: field \"text\" must be of type String", 0))
	}
	mode, _ := p["parse_mode"].(string)
	m := Message{ChatID: chatID, HTML: text, ParseMode: mode, LinkPreviewDisabled: previewDisabled(p)}
	switch strings.ToLower(mode) {
	case "html":
		plain, entities, err := ParseHTML(text)
		if err != nil {
			return ret(failure(http.StatusBadRequest, "Bad Request: "+err.Error(), 0))
		}
		m.Text, m.Entities = plain, entities
	case "":
		m.Text = strings.TrimSpace(text)
		if m.Text == "" {
			return ret(failure(http.StatusBadRequest, "Bad Request: message text is empty", 0))
		}
		if utf16Len(m.Text) > MaxTextLength {
			return ret(failure(http.StatusBadRequest, "Bad Request: message is too long", 0))
		}
	default:
		// MarkdownV2 and Markdown exist in Telegram; Steward never uses them.
		return ret(failure(http.StatusBadRequest, "Bad Request: unsupported parse_mode", 0))
	}

	s.mu.Lock()
	switch {
	case s.blocked[chatID]:
		s.mu.Unlock()
		return ret(failure(http.StatusForbidden, "Forbidden: bot was blocked by the user", 0))
	case s.unknown[chatID]:
		s.mu.Unlock()
		return ret(failure(http.StatusBadRequest, "Bad Request: chat not found", 0))
	}
	s.nextID++
	m.MessageID = s.nextID
	s.messages = append(s.messages, m)
	s.mu.Unlock()

	result := map[string]any{
		"message_id": m.MessageID,
		"date":       time.Now().Unix(),
		"from":       s.me(),
		"chat":       map[string]any{"id": chatID, "type": "private"},
		"text":       m.Text,
	}
	if len(m.Entities) > 0 {
		result["entities"] = m.Entities
	}
	return http.StatusOK, map[string]any{"ok": true, "result": result}, &m
}

func ret(status int, answer map[string]any) (int, map[string]any, *Message) {
	return status, answer, nil
}

// me is the bot's User object, its id the token's prefix.
func (s *Server) me() map[string]any {
	id, _ := strconv.ParseInt(strings.SplitN(s.token, ":", 2)[0], 10, 64)
	return map[string]any{"id": id, "is_bot": true, "first_name": "Steward Test Bot", "username": "steward_test_bot",
		"can_join_groups": false, "can_read_all_group_messages": false, "supports_inline_queries": false}
}

func failure(code int, description string, retryAfter int) (int, map[string]any) {
	a := map[string]any{"ok": false, "error_code": code, "description": description}
	if code == http.StatusTooManyRequests {
		a["parameters"] = map[string]any{"retry_after": retryAfter}
	}
	return code, a
}

// splitPath splits "/bot<token>/<method>".
func splitPath(p string) (token, method string, ok bool) {
	rest, found := strings.CutPrefix(p, "/bot")
	if !found {
		return "", "", false
	}
	token, method, found = strings.Cut(rest, "/")
	if !found || method == "" || strings.Contains(method, "/") || !wellFormedToken(token) {
		return token, method, false
	}
	return token, method, true
}

// wellFormedToken is "<bot id>:<secret>", as BotFather issues them.
func wellFormedToken(t string) bool {
	id, secret, ok := strings.Cut(t, ":")
	if !ok || id == "" || secret == "" {
		return false
	}
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return false
	}
	for _, c := range secret {
		if !(c == '-' || c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			return false
		}
	}
	return true
}

// readParams reads a call's parameters from the query string and a JSON or
// form body, as the Bot API accepts them.
func readParams(r *http.Request) (map[string]any, error) {
	params := map[string]any{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return params, fmt.Errorf("cannot read the request body")
	}
	if len(raw) == 0 {
		return params, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		var body map[string]any
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			return params, fmt.Errorf("can't parse JSON request body")
		}
		for k, v := range body {
			params[k] = v
		}
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(raw))
		if err != nil {
			return params, fmt.Errorf("can't parse form request body")
		}
		for k, v := range form {
			params[k] = v[0]
		}
	default:
		return params, fmt.Errorf("unsupported Content-Type %q", ct)
	}
	return params, nil
}

// chatParam reads chat_id: an integer (a JSON number or a decimal string)
// or "@username".
func chatParam(v any) (int64, string, error) {
	var s string
	switch x := v.(type) {
	case nil:
		return 0, "", fmt.Errorf("chat_id is empty")
	case json.Number:
		s = x.String()
	case string:
		s = strings.TrimSpace(x)
	default:
		return 0, "", fmt.Errorf("field \"chat_id\" must be of type Integer or String")
	}
	if strings.HasPrefix(s, "@") && len(s) > 1 {
		return 0, s, nil
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id == 0 {
		return 0, "", fmt.Errorf("chat not found")
	}
	return id, "", nil
}

// previewDisabled reads link_preview_options.is_disabled (or the older
// disable_web_page_preview).
func previewDisabled(p map[string]any) bool {
	switch o := p["link_preview_options"].(type) {
	case map[string]any:
		b, _ := o["is_disabled"].(bool)
		return b
	case string: // form-encoded: a JSON-serialized object
		var x struct {
			IsDisabled bool `json:"is_disabled"`
		}
		_ = json.Unmarshal([]byte(o), &x)
		return x.IsDisabled
	}
	switch d := p["disable_web_page_preview"].(type) {
	case bool:
		return d
	case string:
		return d == "true"
	}
	return false
}
