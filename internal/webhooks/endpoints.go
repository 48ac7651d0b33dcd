package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/notify"
	"github.com/steward-privacy/steward/internal/stdwebhook"
)

// RotationOverlap is how long a replaced secret keeps signing next to the
// new one, so a subscriber can deploy the new secret without losing a
// message.
const RotationOverlap = 24 * time.Hour

// Endpoint is a registered subscriber. Secret is set only in the answer to
// Create and RotateSecret: it is stored sealed and never shown again.
type Endpoint struct {
	ID                      string     `json:"id"`
	URL                     string     `json:"url"`
	Description             string     `json:"description"`
	EventTypes              []string   `json:"event_types"`
	IncludeIdentities       bool       `json:"include_identities"`
	RecipientSystem         string     `json:"recipient_system,omitempty"`
	AllowLoopback           bool       `json:"allow_loopback"`
	Enabled                 bool       `json:"enabled"`
	DisabledReason          string     `json:"disabled_reason,omitempty"`
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
	CreatedAt               time.Time  `json:"created_at"`
	UpdatedAt               time.Time  `json:"updated_at"`
	Secret                  string     `json:"secret,omitempty"`
}

// CreateInput registers an endpoint.
type CreateInput struct {
	URL         string   `json:"url"`
	Description string   `json:"description"`
	EventTypes  []string `json:"event_types"`
	// IncludeIdentities sends consent.changed with the subject's identity
	// (e.g. "tg:42") rather than only its keyed hash: for a system that
	// already holds that identity and must act on it (the bot backend
	// keeping its broadcast opt-outs).
	IncludeIdentities bool `json:"include_identities"`
	// RecipientSystem is the data-map system this endpoint's owner runs as
	// a processor: it receives recipient.notice for that system (GDPR
	// Art. 19) and no other system's.
	RecipientSystem string `json:"recipient_system"`
}

// Delivery is one event sent (or being sent) to one endpoint.
type Delivery struct {
	ID            string     `json:"id"`
	EndpointID    string     `json:"endpoint_id"`
	MessageID     string     `json:"message_id"`
	EventType     string     `json:"event_type"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	Replays       int        `json:"replays"`
	CreatedAt     time.Time  `json:"created_at"`
	LastAttemptAt *time.Time `json:"last_attempt_at,omitempty"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"`
	AttemptLog    []Attempt  `json:"attempt_log"`
}

// Attempt is one try: what came back, how long it took, what went wrong.
type Attempt struct {
	AttemptedAt     time.Time `json:"attempted_at"`
	StatusCode      *int      `json:"status_code,omitempty"`
	LatencyMS       int       `json:"latency_ms"`
	Error           string    `json:"error,omitempty"`
	ResponseExcerpt string    `json:"response_excerpt,omitempty"`
}

// Endpoints manages outbound webhook endpoints.
type Endpoints struct {
	Pool   *pgxpool.Pool
	Keys   *keyring.Keyring
	Outbox *notify.Outbox
	Audit  *audit.Log
	Clock  clock.Clock
	// AllowLoopback accepts http:// URLs on loopback (tests and the demo,
	// STEWARD_WEBHOOKS_ALLOW_LOOPBACK); otherwise only https:// to a
	// non-private host is accepted.
	AllowLoopback bool
}

func (s *Endpoints) now() time.Time { return s.Clock.Now().UTC().Truncate(time.Microsecond) }

// ErrNotFound: no such endpoint or delivery.
var ErrNotFound = apperr.New(apperr.NotFound, "webhook endpoint not found")

var errDeliveryNotFound = apperr.New(apperr.NotFound, "webhook delivery not found")

// validateURL accepts https:// to a host that is not a private or
// loopback literal, and http(s):// to loopback when allowLoopback. A host
// name is checked again, on the address actually dialled, at every send.
func validateURL(raw string, allowLoopback bool) (string, bool, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", false, apperr.Field("url", "must be an absolute https:// URL")
	}
	if u.User != nil {
		return "", false, apperr.Field("url", "must not carry credentials; the signature authenticates Steward")
	}
	if u.Fragment != "" {
		return "", false, apperr.Field("url", "must not have a fragment")
	}
	if len(raw) > 2048 {
		return "", false, apperr.Field("url", "at most 2048 characters")
	}
	host := u.Hostname()
	loopback := host == "localhost" || strings.HasSuffix(host, ".localhost")
	if ip, err := netip.ParseAddr(host); err == nil {
		loopback = ip.Unmap().IsLoopback()
		if !loopback && !notify.AllowedWebhookAddr(ip, false) {
			return "", false, apperr.Field("url", "must not point at a private, link-local or reserved address")
		}
	}
	switch {
	case loopback && !allowLoopback:
		return "", false, apperr.Field("url", "loopback endpoints are refused (STEWARD_WEBHOOKS_ALLOW_LOOPBACK is off)")
	case loopback:
		if u.Scheme != "http" && u.Scheme != "https" {
			return "", false, apperr.Field("url", "must be an http(s):// URL")
		}
	case u.Scheme != "https":
		return "", false, apperr.Field("url", "must be https:// (http:// is accepted only for loopback in development)")
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil && strings.Contains(u.Host, ":") && !strings.HasPrefix(u.Host, "[") {
		return "", false, apperr.Field("url", "has a malformed host")
	}
	return u.String(), loopback, nil
}

func validateTypes(types []string) ([]string, error) {
	out := []string{}
	for _, t := range types {
		if !slices.Contains(notify.WebhookEventTypes, t) {
			return nil, apperr.Field("event_types", "unknown event type %q; known: %s", t, strings.Join(notify.WebhookEventTypes, ", "))
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// Create registers an endpoint and returns it with its secret, the only
// time the secret is shown.
func (s *Endpoints) Create(ctx context.Context, in CreateInput, actor string) (Endpoint, error) {
	u, loopback, err := validateURL(in.URL, s.AllowLoopback)
	if err != nil {
		return Endpoint{}, err
	}
	types, err := validateTypes(in.EventTypes)
	if err != nil {
		return Endpoint{}, err
	}
	if len(in.Description) > 500 {
		return Endpoint{}, apperr.Field("description", "at most 500 characters")
	}
	if in.RecipientSystem != "" && !datamap.ValidID(in.RecipientSystem) {
		return Endpoint{}, apperr.Field("recipient_system", "a data-map system id (lower case letters, digits and _)")
	}
	secret, err := stdwebhook.NewSecret()
	if err != nil {
		return Endpoint{}, err
	}
	id := uuid.NewString()
	kid, ct, err := s.Keys.Seal([]byte(secret), notify.WebhookSecretAAD(id, "current"))
	if err != nil {
		return Endpoint{}, fmt.Errorf("webhooks: seal secret: %w", err)
	}
	now := s.now()
	e := Endpoint{ID: id, URL: u, Description: in.Description, EventTypes: types, IncludeIdentities: in.IncludeIdentities, RecipientSystem: in.RecipientSystem,
		AllowLoopback: loopback, Enabled: true, CreatedAt: now, UpdatedAt: now, Secret: secret}
	err = db.Tx(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO webhook_endpoints (id, url, description, event_types, include_identities, allow_loopback, enabled,
			       secret_kid, secret_ct, created_by, created_at, updated_at, recipient_system)
			VALUES ($1, $2, $3, $4, $5, $6, true, $7, $8, $9, $10, $10, NULLIF($11, ''))`,
			id, u, in.Description, types, in.IncludeIdentities, loopback, kid, ct, actor, now, in.RecipientSystem); err != nil {
			return fmt.Errorf("webhooks: insert endpoint: %w", err)
		}
		// The URL is an operator's system, not personal data, but it may
		// carry a token in its query: the audit entry names the host only.
		return s.audit(ctx, tx, actor, "webhook.endpoint_created", id, map[string]any{
			"host": hostOf(u), "event_types": types, "include_identities": in.IncludeIdentities})
	})
	if err != nil {
		return Endpoint{}, err
	}
	return e, nil
}

func hostOf(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
}

func (s *Endpoints) audit(ctx context.Context, tx pgx.Tx, actor, action, id string, details map[string]any) error {
	if s.Audit == nil {
		return nil
	}
	if details == nil {
		details = map[string]any{}
	}
	if err := s.Audit.Append(ctx, tx, audit.Record{Actor: actor, Action: action, TargetType: "webhook_endpoint", TargetID: id, Details: details}); err != nil {
		return fmt.Errorf("webhooks: audit: %w", err)
	}
	return nil
}

const endpointCols = `id::text, url, description, event_types, include_identities, allow_loopback, enabled,
	coalesce(disabled_reason, ''), prev_expires_at, created_at, updated_at, coalesce(recipient_system, '')`

func scanEndpoint(r pgx.Row, now time.Time) (Endpoint, error) {
	var e Endpoint
	err := r.Scan(&e.ID, &e.URL, &e.Description, &e.EventTypes, &e.IncludeIdentities, &e.AllowLoopback, &e.Enabled,
		&e.DisabledReason, &e.PreviousSecretExpiresAt, &e.CreatedAt, &e.UpdatedAt, &e.RecipientSystem)
	if e.PreviousSecretExpiresAt != nil && !now.Before(*e.PreviousSecretExpiresAt) {
		e.PreviousSecretExpiresAt = nil
	}
	if e.EventTypes == nil {
		e.EventTypes = []string{}
	}
	return e, err
}

// List returns the endpoints not deleted, oldest first.
func (s *Endpoints) List(ctx context.Context) ([]Endpoint, error) {
	rows, err := s.Pool.Query(ctx, `SELECT `+endpointCols+` FROM webhook_endpoints WHERE deleted_at IS NULL ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("webhooks: list endpoints: %w", err)
	}
	defer rows.Close()
	now := s.now()
	out := []Endpoint{}
	for rows.Next() {
		e, err := scanEndpoint(rows, now)
		if err != nil {
			return nil, fmt.Errorf("webhooks: list endpoints: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: list endpoints: %w", err)
	}
	return out, nil
}

// Delete stops all sending to an endpoint. The row stays, marked deleted,
// so its delivery log can still be read.
func (s *Endpoints) Delete(ctx context.Context, id, actor string) error {
	if _, err := uuid.Parse(id); err != nil {
		return ErrNotFound
	}
	return db.Tx(ctx, s.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET enabled = false, deleted_at = $2, updated_at = $2,
			secret_ct = '\x'::bytea, prev_secret_ct = NULL, prev_secret_kid = NULL, prev_expires_at = NULL
			WHERE id = $1 AND deleted_at IS NULL`, id, s.now())
		if err != nil {
			return fmt.Errorf("webhooks: delete endpoint: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		return s.audit(ctx, tx, actor, "webhook.endpoint_deleted", id, nil)
	})
}

// RotateSecret gives an endpoint a new secret, returned once; the old one
// keeps signing for RotationOverlap (each message carries both
// signatures meanwhile).
func (s *Endpoints) RotateSecret(ctx context.Context, id, actor string) (Endpoint, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Endpoint{}, ErrNotFound
	}
	secret, err := stdwebhook.NewSecret()
	if err != nil {
		return Endpoint{}, err
	}
	now := s.now()
	var e Endpoint
	err = db.Tx(ctx, s.Pool, func(tx pgx.Tx) error {
		var oldKID string
		var oldCT []byte
		err := tx.QueryRow(ctx, `SELECT secret_kid, secret_ct FROM webhook_endpoints WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, id).
			Scan(&oldKID, &oldCT)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("webhooks: rotate: %w", err)
		}
		// Re-seal the old secret for its new slot.
		old, err := s.Keys.Open(oldKID, oldCT, notify.WebhookSecretAAD(id, "current"))
		if err != nil {
			return fmt.Errorf("webhooks: open secret: %w", err)
		}
		pkid, pct, err := s.Keys.Seal(old, notify.WebhookSecretAAD(id, "previous"))
		if err != nil {
			return fmt.Errorf("webhooks: seal secret: %w", err)
		}
		kid, ct, err := s.Keys.Seal([]byte(secret), notify.WebhookSecretAAD(id, "current"))
		if err != nil {
			return fmt.Errorf("webhooks: seal secret: %w", err)
		}
		e, err = scanEndpoint(tx.QueryRow(ctx, `
			UPDATE webhook_endpoints SET secret_kid = $2, secret_ct = $3, prev_secret_kid = $4, prev_secret_ct = $5,
			       prev_expires_at = $6, updated_at = $7
			WHERE id = $1 RETURNING `+endpointCols, id, kid, ct, pkid, pct, now.Add(RotationOverlap), now), now)
		if err != nil {
			return fmt.Errorf("webhooks: rotate: %w", err)
		}
		return s.audit(ctx, tx, actor, "webhook.secret_rotated", id, nil)
	})
	if err != nil {
		return Endpoint{}, err
	}
	e.Secret = secret
	return e, nil
}

// Deliveries lists an endpoint's deliveries, newest first, each with its
// attempts.
func (s *Endpoints) Deliveries(ctx context.Context, endpointID string, limit int) ([]Delivery, error) {
	if _, err := uuid.Parse(endpointID); err != nil {
		return nil, ErrNotFound
	}
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	var exists bool
	if err := s.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1)`, endpointID).Scan(&exists); err != nil {
		return nil, fmt.Errorf("webhooks: deliveries: %w", err)
	}
	if !exists {
		return nil, ErrNotFound
	}
	rows, err := s.Pool.Query(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries WHERE endpoint_id = $1
		ORDER BY created_at DESC, id LIMIT $2`, endpointID, limit)
	if err != nil {
		return nil, fmt.Errorf("webhooks: deliveries: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, fmt.Errorf("webhooks: deliveries: %w", err)
	}
	for i := range out {
		if out[i].AttemptLog, err = s.attempts(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

const deliveryCols = `id::text, endpoint_id::text, message_id, event_type, status, attempts, replays, created_at, last_attempt_at, delivered_at`

func scanDelivery(r pgx.Row) (Delivery, error) {
	var d Delivery
	err := r.Scan(&d.ID, &d.EndpointID, &d.MessageID, &d.EventType, &d.Status, &d.Attempts, &d.Replays, &d.CreatedAt, &d.LastAttemptAt, &d.DeliveredAt)
	d.AttemptLog = []Attempt{}
	return d, err
}

func (s *Endpoints) attempts(ctx context.Context, deliveryID string) ([]Attempt, error) {
	rows, err := s.Pool.Query(ctx, `SELECT attempted_at, status_code, latency_ms, coalesce(error, ''), coalesce(response_excerpt, '')
		FROM webhook_attempts WHERE delivery_id = $1 ORDER BY id`, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("webhooks: attempts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Attempt, error) {
		var a Attempt
		err := r.Scan(&a.AttemptedAt, &a.StatusCode, &a.LatencyMS, &a.Error, &a.ResponseExcerpt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("webhooks: attempts: %w", err)
	}
	if out == nil {
		out = []Attempt{}
	}
	return out, nil
}

// Replay sends a delivery again — same body, same webhook-id — and audits
// who asked. The endpoint must still be enabled.
func (s *Endpoints) Replay(ctx context.Context, deliveryID, actor string) (Delivery, error) {
	if _, err := uuid.Parse(deliveryID); err != nil {
		return Delivery{}, errDeliveryNotFound
	}
	var d Delivery
	err := db.Tx(ctx, s.Pool, func(tx pgx.Tx) error {
		var enabled bool
		var endpointID string
		err := tx.QueryRow(ctx, `SELECT e.id::text, e.enabled AND e.deleted_at IS NULL FROM webhook_deliveries d
			JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = $1 FOR UPDATE OF d`, deliveryID).Scan(&endpointID, &enabled)
		if errors.Is(err, pgx.ErrNoRows) {
			return errDeliveryNotFound
		}
		if err != nil {
			return fmt.Errorf("webhooks: replay: %w", err)
		}
		if !enabled {
			return apperr.New(apperr.Conflict, "the endpoint is disabled or deleted")
		}
		if err := s.Outbox.ReplayWebhook(ctx, tx, deliveryID); err != nil {
			return fmt.Errorf("webhooks: replay: %w", err)
		}
		if d, err = scanDelivery(tx.QueryRow(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries WHERE id = $1`, deliveryID)); err != nil {
			return fmt.Errorf("webhooks: replay: %w", err)
		}
		return s.audit(ctx, tx, actor, "webhook.delivery_replayed", endpointID, map[string]any{"delivery_id": deliveryID, "event_type": d.EventType})
	})
	if err != nil {
		return Delivery{}, err
	}
	return d, nil
}
