package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/internal/stdwebhook"
)

// OptOutReceiver is the reference bot backend's side of Steward's
// outbound webhooks: it verifies each message (Standard Webhooks) and
// keeps the bot's own tg_broadcast_optouts table in step with the consent
// ledger. The bot notice promises that broadcasts can be refused at any
// time; the bot sends broadcasts from its own table, so an opt-out
// recorded in Steward (through the privacy center, an objection under
// GDPR Art. 21(3), or the bot itself) must reach that table: a
// consent.changed for purpose "broadcast" that is withdrawn or denied
// upserts the opt-out, granted removes it. The endpoint must be registered
// with include_identities, since the bot keys the table by Telegram id.
type OptOutReceiver struct {
	Pool     *pgxpool.Pool
	Schema   string // the bot's schema ("" = the search path)
	Verifier *stdwebhook.Verifier
	Log      *slog.Logger
}

// maxWebhookBody bounds what the receiver reads.
const maxWebhookBody = 64 << 10

type consentChanged struct {
	Type string `json:"type"`
	Data struct {
		Purpose    string    `json:"purpose"`
		State      string    `json:"state"`
		Subject    string    `json:"subject"`
		RecordedAt time.Time `json:"recorded_at"`
	} `json:"data"`
}

// ServeHTTP answers 401 to a message whose signature does not verify, 400
// to one it cannot read, and 204 once the table is in step (or the event
// is none of its business).
func (o *OptOutReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxWebhookBody+1))
	if err != nil || len(body) > maxWebhookBody {
		http.Error(w, "body too large or unreadable", http.StatusBadRequest)
		return
	}
	if err := o.Verifier.VerifyRequest(r.Header, body); err != nil {
		http.Error(w, "signature does not verify", http.StatusUnauthorized)
		return
	}
	var ev consentChanged
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "unreadable event", http.StatusBadRequest)
		return
	}
	if err := o.apply(r.Context(), ev); err != nil {
		if o.Log != nil {
			o.Log.ErrorContext(r.Context(), "opt-out sync failed", "webhook_id", r.Header.Get(stdwebhook.HeaderID), "err", err)
		}
		// 5xx: Steward retries with backoff.
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// errNotTelegram: the subject is not a Telegram user (or was sent only as
// a hash): nothing for the bot to do.
var errNotTelegram = errors.New("not a telegram subject")

func tgID(subject string) (int64, error) {
	v, ok := strings.CutPrefix(subject, "tg:")
	if !ok {
		return 0, errNotTelegram
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, errNotTelegram
	}
	return id, nil
}

func (o *OptOutReceiver) table() string {
	if o.Schema == "" {
		return "tg_broadcast_optouts"
	}
	return pgx.Identifier{o.Schema, "tg_broadcast_optouts"}.Sanitize()
}

func (o *OptOutReceiver) apply(ctx context.Context, ev consentChanged) error {
	if ev.Type != "consent.changed" || ev.Data.Purpose != "broadcast" {
		return nil
	}
	id, err := tgID(ev.Data.Subject)
	if err != nil {
		return nil
	}
	at := ev.Data.RecordedAt
	if at.IsZero() {
		at = time.Now()
	}
	switch ev.Data.State {
	case "withdrawn", "denied":
		// The bot may not know the user yet (no tg_users row): the
		// foreign key refuses the row, and there is nobody to broadcast to.
		_, err = o.Pool.Exec(ctx, `INSERT INTO `+o.table()+` AS t (tg_user_id, opted_out_at, source)
			SELECT $1, $2, 'steward' WHERE EXISTS (SELECT 1 FROM `+o.tableUsers()+` WHERE tg_id = $1)
			ON CONFLICT (tg_user_id) DO UPDATE SET opted_out_at = LEAST(t.opted_out_at, EXCLUDED.opted_out_at)`, id, at)
	case "granted":
		_, err = o.Pool.Exec(ctx, `DELETE FROM `+o.table()+` WHERE tg_user_id = $1 AND opted_out_at <= $2`, id, at)
	}
	if err != nil {
		return fmt.Errorf("demo: sync opt-out: %w", err)
	}
	return nil
}

func (o *OptOutReceiver) tableUsers() string {
	if o.Schema == "" {
		return "tg_users"
	}
	return pgx.Identifier{o.Schema, "tg_users"}.Sanitize()
}
