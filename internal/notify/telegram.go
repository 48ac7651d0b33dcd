package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// KindTelegram sends one message from the bot to a person's private chat
// with it (see TelegramMessage) through the Telegram Bot API.
const KindTelegram = "telegram.message"

// DefaultTelegramAPIURL is the Bot API's address.
const DefaultTelegramAPIURL = "https://api.telegram.org"

// TelegramConfig says how to reach the Bot API. With BotToken empty no
// Telegram message is sent: a worker keeps them pending (and the privacy
// request engine does not queue any).
type TelegramConfig struct {
	BotToken string // as BotFather issued it: "<bot id>:<secret>"
	APIURL   string // "" = DefaultTelegramAPIURL; a stand-in's URL in tests and the demo
}

// botTokenRe is the shape of a bot token. BotFather's secrets are 35
// characters; any length is accepted so test and stand-in tokens pass.
var botTokenRe = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]{1,100}$`)

// Validate reports a configuration that cannot deliver: a token that is not
// "<bot id>:<secret>", an API URL that is not absolute http(s). Call it at
// startup. Errors never repeat the token.
func (c TelegramConfig) Validate() error {
	token := strings.TrimSpace(c.BotToken)
	if token == "" {
		return nil
	}
	if !botTokenRe.MatchString(token) {
		return errors.New("telegram: the bot token must look like 123456789:AA... as BotFather issues it")
	}
	if c.APIURL != "" {
		u, err := url.Parse(c.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return errors.New("telegram: the API URL must be an absolute http(s) URL such as https://api.telegram.org")
		}
	}
	return nil
}

// TelegramMessage is a message to enqueue: one of the person-facing
// templates, rendered for Telegram in the person's language.
type TelegramMessage struct {
	// ChatID is the person's Telegram user id, which is also the id of
	// their private chat with the bot (personal data: sealed in the
	// payload). A bot can write only to people who have opened it.
	ChatID int64
	// Template is one of TemplateRequestReceived, TemplateVerificationCode,
	// TemplateRequestCompleted, TemplateRequestDenied,
	// TemplateRequestExtended (staff reminders are emails only).
	Template string
	Language string            // as Email.Language
	Data     map[string]string // the same values the email version takes; sealed
	// Key is an optional caller-chosen idempotency key (a UUID), as
	// Email.Key: a second enqueue with the same key returns
	// ErrAlreadyQueued. It deduplicates enqueueing only: Telegram itself
	// has no idempotency key (see the package documentation).
	Key string
}

// ErrInvalidTelegram wraps every refusal of a TelegramMessage at enqueue:
// a chat id that is not a person's, a template with no Telegram text,
// missing or malformed Data. The message names keys, never values.
var ErrInvalidTelegram = errors.New("outbox: invalid Telegram message")

// telegramPayload is the jsonb payload of KindTelegram: like an email's,
// only the template name is in the clear (bound into the AAD); chat id,
// language and values travel inside CT.
type telegramPayload struct {
	V        int    `json:"v"`
	Template string `json:"template"`
	KID      string `json:"kid"`
	CT       []byte `json:"ct"`
}

// sealedTelegram is what CT holds.
type sealedTelegram struct {
	ChatID int64             `json:"chat_id"`
	Lang   string            `json:"lang"`
	Data   map[string]string `json:"data"`
}

func telegramAAD(key, template string) []byte {
	return append(payloadAAD(KindTelegram, key), "\x00"+template...)
}

// EnqueueTelegram writes, inside the caller's transaction, a message that
// the bot sends to m.ChatID once tx commits; if tx rolls back nothing is
// sent. It is validated and rendered here, so a mistake is the caller's
// error rather than the worker's. It returns the message's idempotency key.
func (o *Outbox) EnqueueTelegram(ctx context.Context, tx pgx.Tx, m TelegramMessage) (string, error) {
	if m.ChatID <= 0 {
		// Group and channel ids are negative; Steward writes only to people.
		return "", fmt.Errorf("%w: the chat id must be a person's Telegram user id", ErrInvalidTelegram)
	}
	lang := NormalizeLanguage(m.Language)
	if _, err := renderTelegram(m.Template, lang, m.Data); err != nil {
		return "", err
	}
	key, err := messageKey(m.Key, ErrInvalidTelegram)
	if err != nil {
		return "", err
	}
	plain, err := json.Marshal(sealedTelegram{ChatID: m.ChatID, Lang: lang, Data: m.Data})
	if err != nil {
		return "", fmt.Errorf("outbox: encode telegram message: %w", err)
	}
	kid, ct, err := o.kr.Seal(plain, telegramAAD(key, m.Template))
	if err != nil {
		return "", fmt.Errorf("outbox: seal telegram message: %w", err)
	}
	payload, err := json.Marshal(telegramPayload{V: 1, Template: m.Template, KID: kid, CT: ct})
	if err != nil {
		return "", fmt.Errorf("outbox: encode payload: %w", err)
	}
	return o.insert(ctx, tx, KindTelegram, payload, key, m.Template)
}

// deliverTelegram opens and renders a Telegram message and sends it.
func (w *Worker) deliverTelegram(ctx context.Context, r row) *deliveryError {
	var p telegramPayload
	if err := json.Unmarshal(r.payload, &p); err != nil || p.V != 1 || len(p.CT) == 0 {
		return permanentError("outbox: unreadable %s payload", r.kind)
	}
	plain, err := w.kr.Open(p.KID, p.CT, telegramAAD(r.key, p.Template))
	if err != nil {
		// err names only the key id.
		return permanentError("outbox: cannot open payload: %v", err)
	}
	var st sealedTelegram
	if err := json.Unmarshal(plain, &st); err != nil || st.ChatID <= 0 {
		return permanentError("outbox: unreadable sealed telegram message")
	}
	text, err := renderTelegram(p.Template, st.Lang, st.Data)
	if err != nil {
		// Validated at enqueue: only a template change in between gets here.
		return permanentError("outbox: render telegram message: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return w.telegram.sendMessage(cctx, st.ChatID, text)
}

// telegramDeliverer calls one bot's sendMessage.
type telegramDeliverer struct {
	hc       *http.Client
	endpoint string // {base}/bot<token>/sendMessage: holds the token, never logged
	token    string
}

func newTelegramDeliverer(cfg TelegramConfig) (*telegramDeliverer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base := strings.TrimRight(cfg.APIURL, "/")
	if base == "" {
		base = DefaultTelegramAPIURL
	}
	token := strings.TrimSpace(cfg.BotToken)
	hc := &http.Client{
		Timeout: requestTimeout,
		// A redirect would carry the token in its path to wherever it
		// points, and turn the POST into a GET: neither is wanted.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return &telegramDeliverer{hc: hc, endpoint: base + "/bot" + token + "/sendMessage", token: token}, nil
}

// sendMessageRequest is sendMessage's JSON body.
type sendMessageRequest struct {
	ChatID             int64              `json:"chat_id"`
	Text               string             `json:"text"`
	ParseMode          string             `json:"parse_mode"`
	LinkPreviewOptions linkPreviewOptions `json:"link_preview_options"`
}

// linkPreviewOptions turns the preview off: a preview of a download link
// would have Telegram's servers fetch the person's package page.
type linkPreviewOptions struct {
	IsDisabled bool `json:"is_disabled"`
}

// maxBotResponse bounds how much of an answer is read; sendMessage's
// answer is the sent Message, a few kilobytes at most.
const maxBotResponse = 1 << 20

// sendMessage posts one message. Telegram has no idempotency key, so this
// cannot be made safe to repeat; what it can do is say whether a failure
// may have sent the message anyway (the request was written and no answer
// came), which the error then states.
func (d *telegramDeliverer) sendMessage(ctx context.Context, chatID int64, text string) *deliveryError {
	body, err := json.Marshal(sendMessageRequest{ChatID: chatID, Text: text, ParseMode: "HTML", LinkPreviewOptions: linkPreviewOptions{IsDisabled: true}})
	if err != nil {
		return permanentError("telegram sendMessage: encode: %v", err)
	}
	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			wrote.Store(true)
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, d.endpoint, bytes.NewReader(body))
	if err != nil {
		return permanentError("telegram sendMessage: %s", d.scrub(err.Error(), chatID))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.hc.Do(req)
	if err != nil {
		// url.Error repeats the URL, which holds the token.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		detail := d.scrub(err.Error(), chatID)
		if wrote.Load() {
			return &deliveryError{msg: "telegram sendMessage: outcome unknown (the request was sent, no answer came; a retry may send it twice): " + detail}
		}
		return &deliveryError{msg: "telegram sendMessage: network: " + detail}
	}
	defer resp.Body.Close()
	raw, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBotResponse))
	if isSuccess(resp.StatusCode) {
		// Telegram took the message; an unreadable answer does not unsend it.
		return nil
	}
	ans := decodeBotResponse(resp.StatusCode, raw)
	if rerr != nil && ans.Description == "" {
		ans.Description = "answer unreadable"
	}
	de := classifyTelegram(ans)
	de.msg = d.scrub(de.msg, chatID)
	return de
}

// scrub removes the token and the chat id from s, and anything that looks
// like an email address, so s can be stored and logged.
func (d *telegramDeliverer) scrub(s string, chatID int64) string {
	if d.token != "" {
		s = strings.ReplaceAll(s, d.token, "[token]")
	}
	if id := strconv.FormatInt(chatID, 10); len(id) >= 3 {
		// Short ids are not scrubbed: "403" in "HTTP 403" would go.
		s = regexp.MustCompile(`\b`+id+`\b`).ReplaceAllString(s, "[chat]")
	}
	return redact(s, "")
}

// botAnswer is what matters of a Bot API answer.
type botAnswer struct {
	OK          bool
	Code        int    // error_code, else the HTTP status
	Description string // cleaned: one line, printable, bounded
	RetryAfter  time.Duration
	MigrateTo   int64 // parameters.migrate_to_chat_id: a group became a supergroup
}

// maxRetryAfter bounds Telegram's flood-control hint: a nonsensical value
// must not park a message for years (the worker caps delays at MaxBackoff
// anyway).
const maxRetryAfter = 24 * time.Hour

// decodeBotResponse reads a Bot API answer: {"ok":false,"error_code":N,
// "description":"...","parameters":{"retry_after":S,"migrate_to_chat_id":C}}.
// An answer that is not that envelope (a proxy's HTML error page) is judged
// by its HTTP status alone, and its body is never repeated: it could be
// anything. error_code wins over the HTTP status when both are present and
// the status is an error, since Telegram documents error_code as the
// reason.
func decodeBotResponse(status int, body []byte) botAnswer {
	ans := botAnswer{Code: status}
	var env struct {
		OK          *bool           `json:"ok"`
		ErrorCode   int             `json:"error_code"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.OK == nil {
		return ans
	}
	ans.OK = *env.OK && isSuccess(status)
	if !*env.OK && env.ErrorCode >= 400 && env.ErrorCode <= 599 {
		ans.Code = env.ErrorCode
	}
	ans.Description = cleanDescription(env.Description)
	// Parameters on their own: a malformed one must not cost the
	// description and code, which decide the retry.
	var p struct {
		RetryAfter      json.Number `json:"retry_after"`
		MigrateToChatID json.Number `json:"migrate_to_chat_id"`
	}
	if len(env.Parameters) > 0 && json.Unmarshal(env.Parameters, &p) == nil {
		if s, err := p.RetryAfter.Int64(); err == nil && s > 0 {
			ans.RetryAfter = time.Duration(min(s, int64(maxRetryAfter/time.Second))) * time.Second
		}
		if c, err := p.MigrateToChatID.Int64(); err == nil {
			ans.MigrateTo = c
		}
	}
	return ans
}

// cleanDescription keeps a description to one printable line of bounded
// length: it goes into last_error and logs.
func cleanDescription(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

// classifyTelegram decides whether a failed sendMessage is worth retrying.
// 429 is flood control (wait at least retry_after); 5xx and a missing
// status are Telegram's trouble; 401, 404 and a redirect (never followed:
// it would carry the token elsewhere) mean the token or the API URL is
// wrong, which configuration fixes, not the message, so those are retried
// (until MaxAttempts) rather than failed at once. Anything else —
// 400 (chat not found, text refused), 403 (the person blocked the bot, or
// never opened it) — will be refused every time: permanent.
func classifyTelegram(a botAnswer) *deliveryError {
	detail := a.Description
	if detail == "" {
		detail = http.StatusText(a.Code)
	}
	de := &deliveryError{msg: fmt.Sprintf("telegram sendMessage: HTTP %d: %s", a.Code, detail)}
	switch {
	case a.Code == http.StatusTooManyRequests:
		de.retryAfter = a.RetryAfter
	case a.Code >= 500, a.Code == 0:
	case a.Code == http.StatusUnauthorized, a.Code == http.StatusNotFound, a.Code >= 300 && a.Code < 400:
		de.msg += " (check STEWARD_TELEGRAM_BOT_TOKEN and STEWARD_TELEGRAM_API_URL)"
	default:
		de.permanent = true
	}
	return de
}

// messageKey is a caller's idempotency key in canonical form, or a new one.
func messageKey(k string, invalid error) (string, error) {
	if strings.TrimSpace(k) == "" {
		return uuid.NewString(), nil
	}
	u, err := uuid.Parse(strings.TrimSpace(k))
	if err != nil {
		return "", fmt.Errorf("%w: key must be a UUID", invalid)
	}
	// The AAD is rebuilt from the stored uuid's text, which is always
	// lower-case and hyphenated.
	return u.String(), nil
}
