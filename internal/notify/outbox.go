// Package notify carries changes to outside systems through a transactional
// outbox. A message is written in the same database transaction as the change
// that causes it, so it exists exactly when the change does and survives the
// far side being down; a Worker then delivers it with retries and exponential
// backoff with jitter, up to MaxAttempts. There are four kinds:
//
//   - KindResendUnsubscribe marks a contact unsubscribed in Resend when
//     marketing consent is withdrawn (EnqueueUnsubscribe).
//   - KindEmail sends a transactional email — a privacy request's
//     acknowledgment, verification code, outcome or extension, or a deadline
//     reminder to staff — in English, Russian or Uzbek (EnqueueEmail). Its
//     idempotency key goes to Resend as the Idempotency-Key header, and Resend
//     answers a repeat within 24 hours with the original response instead of
//     sending again: a crash between sending and recording the delivery, or a
//     lost response, does not email anyone twice, and a rolled-back
//     transaction emails no one.
//   - KindTelegram sends the same person-facing messages from the bot to a
//     person who asked through it, rendered for Telegram's HTML parse mode
//     (EnqueueTelegram, TelegramConfig).
//   - KindWebhook sends an outbound webhook — a consent change, a privacy
//     request's move, a restriction — to each endpoint staff registered,
//     signed per the Standard Webhooks specification (EnqueueWebhook,
//     ReplayWebhook, webhook.go). It needs no credentials and is delivered
//     whether or not Resend and Telegram are configured.
//
// Payloads never hold personal data in the clear: an email address or a
// Telegram chat id, and a message's language and template values (which may
// include a verification code or a download link), are sealed with the
// identity keyring, bound to the message kind, idempotency key and template,
// and erased from the row once delivered. Errors and logs are redacted too:
// addresses, chat ids and the bot token never appear in last_error or a log
// line.
//
// An email is rendered from the same sealed values on every attempt, so
// Resend sees an identical request each time. Changing a template's text
// while emails are queued can make a retry differ from an attempt Resend
// already accepted; Resend refuses that with 409, which is retried until
// MaxAttempts and then recorded as a failure rather than sent twice.
//
// # Telegram and "nothing sent twice"
//
// The Bot API has no idempotency key: a sendMessage that reached Telegram
// cannot be told apart from one that did not except by its answer. What the
// outbox guarantees without one:
//
//   - Two workers (replicas) never send the same message: a worker holds
//     the row locked (SELECT ... FOR UPDATE SKIP LOCKED) in its own
//     transaction for the whole send, and the others skip it.
//   - A message recorded as delivered is never sent again: the row leaves
//     'pending' in the transaction that holds the lock, and workers only
//     take pending rows.
//   - A message Telegram refused is not sent: 429 (flood control) waits at
//     least the answer's parameters.retry_after and tries again; 5xx and
//     network errors before the request was written are retried; 400 (chat
//     not found, text refused) and 403 (the person blocked the bot or never
//     opened it) fail the message for good at once, recorded with
//     Telegram's description and without the chat id or text, and reported
//     to the FinalFailure hook (an audit entry).
//
// The one window left is between Telegram accepting the message and the
// worker committing 'delivered': the answer is lost (the connection drops
// after the request was written, the request times out, a gateway answers
// 5xx for a message Telegram did take), the process dies, or its database
// connection does (which releases the lock, so another replica may take the
// row while the first is still sending). The worker cannot know whether
// the person got the message, and it sends it again: a duplicate is
// possible there, a loss is not. That is a choice: these messages carry
// what the law requires the person be told (the denial and the right to
// complain, an extension and its reason, where to download their data),
// and an identical second message does no harm. A failure after the
// request was written is recorded as "outcome unknown" so the operator can
// see where a duplicate may have come from; a shutdown in mid-send leaves
// the message pending for the next start, with the same caveat.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/keyring"
)

// KindResendUnsubscribe marks a contact unsubscribed in the Resend audience.
const KindResendUnsubscribe = "resend.contact.unsubscribe"

// Outbox writes messages inside callers' transactions.
type Outbox struct {
	kr  *keyring.Keyring
	clk clock.Clock
	log *slog.Logger
}

// NewOutbox returns an Outbox that seals personal data with kr.
func NewOutbox(kr *keyring.Keyring, clk clock.Clock, log *slog.Logger) *Outbox {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Outbox{kr: kr, clk: clk, log: log}
}

// unsubscribePayload is the jsonb payload of KindResendUnsubscribe. The email
// is only ever stored sealed; []byte marshals as standard base64.
type unsubscribePayload struct {
	V        int    `json:"v"`
	EmailKID string `json:"email_kid"`
	EmailCT  []byte `json:"email_ct"`
}

// payloadAAD binds a sealed value to its message: a ciphertext copied into
// another row (or another kind of message) no longer opens.
func payloadAAD(kind, idempotencyKey string) []byte {
	return []byte("steward outbox v1\x00" + kind + "\x00" + idempotencyKey)
}

// EnqueueUnsubscribe writes, inside the caller's transaction, a message to
// mark email unsubscribed in Resend. It becomes visible to workers only when
// tx commits, and disappears with it if tx rolls back.
func (o *Outbox) EnqueueUnsubscribe(ctx context.Context, tx pgx.Tx, email string) error {
	email = strings.TrimSpace(email)
	if email == "" || !strings.Contains(email, "@") {
		// Never echo the value: it is personal data.
		return errors.New("outbox: unsubscribe needs an email address")
	}
	key := uuid.NewString()
	kid, ct, err := o.kr.Seal([]byte(email), payloadAAD(KindResendUnsubscribe, key))
	if err != nil {
		return fmt.Errorf("outbox: seal email: %w", err)
	}
	payload, err := json.Marshal(unsubscribePayload{V: 1, EmailKID: kid, EmailCT: ct})
	if err != nil {
		return fmt.Errorf("outbox: encode payload: %w", err)
	}
	now := o.clk.Now()
	var id int64
	err = tx.QueryRow(ctx, `
		INSERT INTO outbox (kind, payload, idempotency_key, status, attempts, next_attempt_at, created_at)
		VALUES ($1, $2, $3, 'pending', 0, $4, $4)
		RETURNING id`, KindResendUnsubscribe, payload, key, now).Scan(&id)
	if err != nil {
		return fmt.Errorf("outbox: insert: %w", err)
	}
	o.log.InfoContext(ctx, "outbox message queued", "outbox_kind", KindResendUnsubscribe, "outbox_id", id)
	return nil
}

// WorkerConfig tunes delivery. Zero fields take the defaults noted.
type WorkerConfig struct {
	Resend       ResendConfig
	Telegram     TelegramConfig
	Webhooks     WebhookConfig // outbound webhooks are always delivered
	BatchSize    int           // messages per RunOnce; default 10
	PollInterval time.Duration // between polls in Run; default 1s
	BaseBackoff  time.Duration // first retry delay; default 5s
	MaxBackoff   time.Duration // cap on the retry delay; default 1h
	MaxAttempts  int           // attempts before a message fails for good; default 12
}

func (c WorkerConfig) withDefaults() WorkerConfig {
	if c.BatchSize <= 0 {
		c.BatchSize = 10
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.BaseBackoff <= 0 {
		c.BaseBackoff = 5 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = time.Hour
	}
	if c.MaxBackoff < c.BaseBackoff {
		c.MaxBackoff = c.BaseBackoff
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 12
	}
	return c
}

// Message describes an outbox message to a FinalFailure hook. It has no
// payload, so nothing personal reaches audit entries.
type Message struct {
	ID             int64
	Kind           string
	IdempotencyKey string
	Attempts       int
	LastError      string // redacted
}

// FinalFailure is called inside the transaction that marks a message failed
// for good, so whatever it records (an audit entry) commits with the failure
// or not at all. If it returns an error the message stays pending and is
// retried after a backoff.
type FinalFailure func(ctx context.Context, tx pgx.Tx, m Message) error

// RunResult counts what one RunOnce did.
type RunResult struct {
	Delivered int // sent and acknowledged
	Retried   int // attempt failed, rescheduled with backoff
	Failed    int // failed for good (permanent error or attempts exhausted)
	Kept      int // pending and not attempted because delivery (of their kind) is not configured
}

// Worker delivers due outbox messages. Several workers (replicas) may run at
// once: each message is locked while it is delivered and skipped by the rest.
type Worker struct {
	pool   *pgxpool.Pool
	kr     *keyring.Keyring
	cfg    WorkerConfig
	clk    clock.Clock
	log    *slog.Logger
	onFail FinalFailure

	resend    *resendDeliverer // nil: not configured, its kinds are kept
	configErr error            // why resend is nil when a key was given
	telegram  *telegramDeliverer
	webhooks  *webhookDeliverer // never nil: webhooks need no credentials
	warned    atomic.Bool       // the keep-warning is logged once per worker

	// held are the kinds this configuration cannot deliver (an unsubscribe
	// without an audience, an email without a sender, a Telegram message
	// without a bot token). They are kept pending while the other kinds
	// flow.
	held      []*heldKind
	heldKinds []string
}

// heldKind is a message kind kept back for want of configuration.
type heldKind struct {
	kind   string
	via    string // "Resend" or "Telegram", for the log
	why    error
	warned atomic.Bool // logged once per worker
}

// resendKinds are the kinds delivered through Resend.
var resendKinds = []string{KindResendUnsubscribe, KindEmail}

// NewWorker returns a worker. Without cfg.Resend.APIKey and
// cfg.Telegram.BotToken it delivers nothing and keeps messages; a key or
// token whose configuration is unusable (see ResendConfig.Validate,
// TelegramConfig.Validate) is treated the same, with an error logged. A kind
// that lacks its own piece of configuration — AudienceID for unsubscribes,
// From for emails, a bot token for Telegram messages, the Resend key for
// both Resend kinds when only Telegram is configured — is kept pending with
// an error logged once, while the other kinds are delivered (use
// ResendConfig.ValidateKind at startup to refuse that instead).
func NewWorker(pool *pgxpool.Pool, kr *keyring.Keyring, cfg WorkerConfig, clk clock.Clock, log *slog.Logger, onFail FinalFailure) *Worker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Worker{pool: pool, kr: kr, cfg: cfg.withDefaults(), clk: clk, log: log, onFail: onFail, webhooks: newWebhookDeliverer(cfg.Webhooks)}
	if strings.TrimSpace(cfg.Resend.APIKey) != "" {
		w.resend, w.configErr = newResendDeliverer(cfg.Resend)
	}
	var telegramErr error
	if strings.TrimSpace(cfg.Telegram.BotToken) != "" {
		w.telegram, telegramErr = newTelegramDeliverer(cfg.Telegram)
	}
	hold := func(kind, via string, why error) {
		w.held = append(w.held, &heldKind{kind: kind, via: via, why: why})
		w.heldKinds = append(w.heldKinds, kind)
	}
	if w.resend == nil && w.telegram == nil {
		// RunOnce keeps everything and says so once.
		if w.configErr == nil {
			w.configErr = telegramErr
		}
		// Webhooks still flow: they need neither Resend nor Telegram.
		w.heldKinds = append(append([]string{}, resendKinds...), KindTelegram)
		return w
	}
	for _, kind := range resendKinds {
		switch {
		case w.resend == nil && w.configErr != nil:
			hold(kind, "Resend", w.configErr)
		case w.resend == nil:
			hold(kind, "Resend", errors.New("resend: no API key is set (STEWARD_RESEND_API_KEY)"))
		default:
			if err := cfg.Resend.ValidateKind(kind); err != nil {
				hold(kind, "Resend", err)
			}
		}
	}
	if w.telegram == nil {
		if telegramErr == nil {
			telegramErr = errors.New("telegram: no bot token is set (STEWARD_TELEGRAM_BOT_TOKEN)")
		}
		hold(KindTelegram, "Telegram", telegramErr)
	}
	return w
}

// Pending counts messages not yet delivered or failed, due or not.
func (w *Worker) Pending(ctx context.Context) (int, error) {
	var n int
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE status = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("outbox: count pending: %w", err)
	}
	return n, nil
}

// Run calls RunOnce every PollInterval until ctx is done. After a full batch
// it goes again at once, so a backlog drains at delivery speed rather than
// one batch per interval.
func (w *Worker) Run(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		res, err := w.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			w.log.ErrorContext(ctx, "outbox worker run failed", "err", err)
		}
		next := w.cfg.PollInterval
		if err == nil && res.Delivered+res.Retried+res.Failed >= w.cfg.BatchSize {
			next = 0
		}
		timer.Reset(next)
	}
}

// RunOnce delivers up to BatchSize due messages, each in its own transaction
// that holds the row (SELECT ... FOR UPDATE SKIP LOCKED) while it is sent, so
// concurrent workers never send the same message and one message's failure
// never undoes another's success.
func (w *Worker) RunOnce(ctx context.Context) (RunResult, error) {
	var res RunResult
	if w.resend == nil && w.telegram == nil {
		n, err := w.pendingHeld(ctx)
		if err != nil {
			return res, err
		}
		res.Kept = n
		if n > 0 && !w.warned.Swap(true) {
			if w.configErr != nil {
				w.log.ErrorContext(ctx, "outbox messages are being kept: delivery is misconfigured", "pending", n, "err", w.configErr)
			} else {
				w.log.WarnContext(ctx, "outbox messages are being kept until STEWARD_RESEND_API_KEY is set (and STEWARD_TELEGRAM_BOT_TOKEN, for Telegram messages)", "pending", n)
			}
		}
	} else if len(w.held) > 0 {
		n, err := w.keepHeld(ctx)
		if err != nil {
			return res, err
		}
		res.Kept = n
	}
	// seen stops a message rescheduled by this run from being taken again in
	// the same run, whatever the backoff settings.
	seen := []int64{}
	var errs []error
	for range w.cfg.BatchSize {
		id, out, err := w.deliverNext(ctx, seen)
		if err != nil {
			if id == 0 || ctx.Err() != nil {
				return res, errors.Join(append(errs, err)...)
			}
			errs = append(errs, err)
		}
		if id == 0 {
			break
		}
		seen = append(seen, id)
		switch out {
		case outcomeDelivered:
			res.Delivered++
		case outcomeRetried:
			res.Retried++
		case outcomeFailed:
			res.Failed++
		}
	}
	return res, errors.Join(errs...)
}

// pendingHeld counts pending messages other than webhooks (which are
// delivered with or without Resend and Telegram).
func (w *Worker) pendingHeld(ctx context.Context) (int, error) {
	var n int
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE status = 'pending' AND kind <> $1`, KindWebhook).Scan(&n); err != nil {
		return 0, fmt.Errorf("outbox: count pending: %w", err)
	}
	return n, nil
}

// keepHeld counts the pending messages of held kinds and logs, once per kind,
// why they are not being delivered.
func (w *Worker) keepHeld(ctx context.Context) (int, error) {
	rows, err := w.pool.Query(ctx, `
		SELECT kind, count(*) FROM outbox WHERE status = 'pending' AND kind = ANY($1) GROUP BY kind`, w.heldKinds)
	if err != nil {
		return 0, fmt.Errorf("outbox: count held: %w", err)
	}
	counts := map[string]int{}
	var total int
	for rows.Next() {
		var kind string
		var n int
		if err := rows.Scan(&kind, &n); err != nil {
			rows.Close()
			return 0, fmt.Errorf("outbox: count held: %w", err)
		}
		counts[kind] = n
		total += n
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("outbox: count held: %w", err)
	}
	for _, h := range w.held {
		if n := counts[h.kind]; n > 0 && !h.warned.Swap(true) {
			w.log.ErrorContext(ctx, "outbox messages are being kept: "+h.via+" is not configured for this kind",
				"outbox_kind", h.kind, "pending", n, "err", h.why)
		}
	}
	return total, nil
}

type outcome int

const (
	outcomeNone outcome = iota
	outcomeDelivered
	outcomeRetried
	outcomeFailed
)

// row is a locked outbox message.
type row struct {
	id       int64
	kind     string
	payload  []byte
	key      string
	attempts int
}

// deliverNext locks, sends and records one due message. It returns id 0 when
// nothing is due; with a non-zero id and an error, the message was handled
// (its state is recorded) but something beside delivery went wrong.
func (w *Worker) deliverNext(ctx context.Context, seen []int64) (int64, outcome, error) {
	tx, err := w.pool.Begin(ctx)
	if err != nil {
		return 0, outcomeNone, fmt.Errorf("outbox: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit

	var r row
	err = tx.QueryRow(ctx, `
		SELECT id, kind, payload, idempotency_key::text, attempts
		FROM outbox
		WHERE status = 'pending' AND next_attempt_at <= $1 AND id <> ALL(coalesce($2::bigint[], '{}'))
		  AND kind <> ALL(coalesce($3::text[], '{}'))
		ORDER BY next_attempt_at, id
		LIMIT 1
		FOR UPDATE SKIP LOCKED`, w.clk.Now(), seen, w.heldKinds).Scan(&r.id, &r.kind, &r.payload, &r.key, &r.attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, outcomeNone, nil
	}
	if err != nil {
		return 0, outcomeNone, fmt.Errorf("outbox: select due: %w", err)
	}

	var derr *deliveryError
	if r.kind == KindWebhook {
		// Records the attempt in tx, so it commits with the outcome.
		derr = w.deliverWebhook(ctx, tx, r)
	} else {
		derr = w.deliver(ctx, r)
	}
	if ctx.Err() != nil {
		// Shutting down mid-send is not the message's fault: leave it as it
		// was. The idempotency key covers an email that did reach Resend; a
		// Telegram message that did may be sent again (see the package
		// documentation).
		return 0, outcomeNone, ctx.Err()
	}
	attempts := r.attempts + 1
	now := w.clk.Now()
	log := w.log.With("outbox_id", r.id, "outbox_kind", r.kind, "attempts", attempts)

	if derr == nil {
		// The payload is no longer needed once delivered: erase the sealed
		// address (and an email's values) rather than keep personal data for
		// no purpose.
		_, err = tx.Exec(ctx, `
			UPDATE outbox SET status = 'delivered', attempts = $2, delivered_at = $3,
			       last_error = NULL, payload = '{}'::jsonb
			WHERE id = $1`, r.id, attempts, now)
		if err != nil {
			return 0, outcomeNone, fmt.Errorf("outbox: mark delivered: %w", err)
		}
		if err := tx.Commit(ctx); err != nil {
			// Left pending: it will be sent again, under the same idempotency
			// key for Resend; a Telegram message may arrive twice.
			return 0, outcomeNone, fmt.Errorf("outbox: commit delivered: %w", err)
		}
		log.InfoContext(ctx, "outbox message delivered")
		return r.id, outcomeDelivered, nil
	}

	if derr.permanent || attempts >= w.cfg.MaxAttempts {
		if r.kind == KindWebhook {
			if err := failWebhook(ctx, tx, r); err != nil {
				return 0, outcomeNone, err
			}
		}
		hookErr := w.markFailed(ctx, tx, r, attempts, now, derr.msg)
		if hookErr == nil {
			log.ErrorContext(ctx, "outbox message failed for good", "err", derr.msg, "permanent", derr.permanent)
			return r.id, outcomeFailed, nil
		}
		// The failure could not be recorded with its audit trail: back off
		// and try again later rather than lose either.
		_ = tx.Rollback(ctx)
		msg := derr.msg + "; recording the final failure failed"
		if err := w.reschedule(ctx, r.id, attempts, w.backoff(r.attempts, 0), msg); err != nil {
			return 0, outcomeNone, errors.Join(hookErr, err)
		}
		log.ErrorContext(ctx, "outbox final failure not recorded; will retry", "err", hookErr)
		return r.id, outcomeRetried, hookErr
	}

	delay := w.backoff(r.attempts, derr.retryAfter)
	_, err = tx.Exec(ctx, `
		UPDATE outbox SET attempts = $2, next_attempt_at = $3, last_error = $4 WHERE id = $1`,
		r.id, attempts, now.Add(delay), derr.msg)
	if err != nil {
		return 0, outcomeNone, fmt.Errorf("outbox: reschedule: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, outcomeNone, fmt.Errorf("outbox: commit reschedule: %w", err)
	}
	log.WarnContext(ctx, "outbox delivery failed; will retry", "err", derr.msg, "retry_in", delay.Round(time.Millisecond).String())
	return r.id, outcomeRetried, nil
}

// markFailed records the final failure and calls the hook in the same
// transaction, committing both or neither.
func (w *Worker) markFailed(ctx context.Context, tx pgx.Tx, r row, attempts int, now time.Time, msg string) error {
	_, err := tx.Exec(ctx, `
		UPDATE outbox SET status = 'failed', attempts = $2, failed_at = $3, last_error = $4
		WHERE id = $1`, r.id, attempts, now, msg)
	if err != nil {
		return fmt.Errorf("outbox: mark failed: %w", err)
	}
	if w.onFail != nil {
		m := Message{ID: r.id, Kind: r.kind, IdempotencyKey: r.key, Attempts: attempts, LastError: msg}
		if err := w.onFail(ctx, tx, m); err != nil {
			return fmt.Errorf("outbox: final failure hook: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("outbox: commit failed: %w", err)
	}
	return nil
}

// reschedule records a failed attempt outside the original transaction (used
// after that transaction had to be rolled back).
func (w *Worker) reschedule(ctx context.Context, id int64, attempts int, delay time.Duration, msg string) error {
	_, err := w.pool.Exec(ctx, `
		UPDATE outbox SET attempts = $2, next_attempt_at = $3, last_error = $4
		WHERE id = $1 AND status = 'pending'`, id, attempts, w.clk.Now().Add(delay), msg)
	if err != nil {
		return fmt.Errorf("outbox: reschedule: %w", err)
	}
	return nil
}

// deliver opens the payload and performs the message. Problems with the row
// itself (unknown kind, undecryptable payload) are permanent: retrying cannot
// fix them.
func (w *Worker) deliver(ctx context.Context, r row) *deliveryError {
	switch r.kind {
	case KindResendUnsubscribe:
		var p unsubscribePayload
		if err := json.Unmarshal(r.payload, &p); err != nil || p.V != 1 || len(p.EmailCT) == 0 {
			return permanentError("outbox: unreadable %s payload", r.kind)
		}
		email, err := w.kr.Open(p.EmailKID, p.EmailCT, payloadAAD(r.kind, r.key))
		if err != nil {
			// Most likely the key was removed from the keyring before the
			// outbox drained. err names only the key id.
			return permanentError("outbox: cannot open payload: %v", err)
		}
		cctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		return w.resend.unsubscribe(cctx, string(email), r.key)
	case KindEmail:
		return w.deliverEmail(ctx, r)
	case KindTelegram:
		return w.deliverTelegram(ctx, r)
	default:
		return permanentError("outbox: unknown message kind %q", r.kind)
	}
}

// jitter is the ± fraction applied to each delay, so replicas (and messages
// that failed together during an outage) do not all retry in the same instant.
const jitter = 0.2

// backoff is min(MaxBackoff, BaseBackoff·2^prior) ± 20%, where prior is the
// number of attempts before the one that just failed; never less than the
// far side's hint (Resend's Retry-After, Telegram's retry_after), and never
// above MaxBackoff.
func (w *Worker) backoff(prior int, retryAfter time.Duration) time.Duration {
	return backoffDelay(w.cfg.BaseBackoff, w.cfg.MaxBackoff, prior, retryAfter, rand.Float64())
}

// backoffDelay is backoff with its random draw u ∈ [0,1) passed in, so tests
// can pin it.
func backoffDelay(base, limit time.Duration, prior int, retryAfter time.Duration, u float64) time.Duration {
	d := base
	for i := 0; i < prior && d < limit; i++ {
		d *= 2 // doubling until the cap avoids overflowing 2^prior
	}
	d = min(d, limit)
	d = time.Duration(float64(d) * (1 - jitter + 2*jitter*u))
	d = max(d, retryAfter, time.Millisecond)
	return min(d, limit)
}
