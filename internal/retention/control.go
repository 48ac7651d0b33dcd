package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/policy"
)

// ControlSystem names Steward's own data in plans, runs and holds.
const ControlSystem = "steward"

// Steward's own datasets.
const (
	ControlCodes    = "verification_codes"
	ControlSends    = "verification_sends"
	ControlExports  = "export_packages"
	ControlRequests = "closed_requests"
	// ControlConsent is the consent ledger's personal detail: each
	// event's user agent and IP hash.
	ControlConsent = "consent_event_details"
	// ControlWebhooks are sent webhooks: their sealed bodies (which may
	// name the person) and delivery attempts, kept for replay and the
	// delivery log.
	ControlWebhooks = "webhook_deliveries"
)

var controlDatasets = []string{ControlCodes, ControlSends, ControlExports, ControlRequests, ControlConsent, ControlWebhooks}

// defaultWebhookDeliveryDays keeps sent webhooks a month when the schedule
// names no period: long enough to replay after a subscriber's outage.
const defaultWebhookDeliveryDays = 30

// controlCategories are what Steward's own records hold, for category
// holds: identities and contact details (sealed) and disclosed data.
var controlCategories = []string{"user.unique_id", "user.contact", "user.content"}

// ExportExpirer deletes export packages whose link expired.
type ExportExpirer interface {
	ExpireDue(ctx context.Context) (int, error)
	CountDue(ctx context.Context) (int, error)
}

// ControlPlane sweeps Steward's own personal data by the schedule's
// control_plane entry, through the same runs, holds and records as the
// data map's datasets: it is a connectors.Sweeper for the system
// "steward".
type ControlPlane struct {
	Pool    *pgxpool.Pool
	Keys    *keyring.Keyring
	Files   *blob.Bucket // disclosed files; nil when the deployment has none
	Exports ExportExpirer
	Clock   clock.Clock
	Log     *slog.Logger
	// Batch is how many requests one transaction clears; default 200.
	Batch int
}

var _ connectors.Sweeper = (*ControlPlane)(nil)

// Rules are Steward's own retention rules.
func (c *ControlPlane) Rules(cp policy.ControlPlaneRetention) []Rule {
	day := 24 * time.Hour
	rule := func(dataset, ts string, days int, period, action string) Rule {
		return Rule{System: ControlSystem, Dataset: dataset, Connector: ControlSystem, Timestamp: ts, RuleID: "control_plane",
			MaxAge: time.Duration(days) * day, Days: days, Period: period, Action: action, Basis: "legal_obligation"}
	}
	v := fmt.Sprintf("%d days", cp.VerificationDays)
	return []Rule{
		rule(ControlCodes, "expires_at", cp.VerificationDays, v+" after expiry", ActionDelete),
		rule(ControlSends, "at", cp.VerificationDays, v, ActionDelete),
		rule(ControlExports, "expires_at", 0, "until the download link expires", ActionDelete),
		rule(ControlRequests, "closed_at", cp.ClosedRequestDays, fmt.Sprintf("%d days after closing", cp.ClosedRequestDays), ActionAnonymize),
		rule(ControlConsent, "recorded_at", cp.ConsentDetailDays, fmt.Sprintf("%d days after the event", cp.ConsentDetailDays), ActionAnonymize),
		rule(ControlWebhooks, "created_at", webhookDays(cp), fmt.Sprintf("%d days after it was queued, once delivered or given up", webhookDays(cp)), ActionDelete),
	}
}

func webhookDays(cp policy.ControlPlaneRetention) int {
	if cp.WebhookDeliveryDays > 0 {
		return cp.WebhookDeliveryDays
	}
	return defaultWebhookDeliveryDays
}

// Sweep removes one of Steward's datasets' due records.
func (c *ControlPlane) Sweep(ctx context.Context, p connectors.SweepParams) (connectors.SweepResult, error) {
	if p.System != ControlSystem {
		return connectors.SweepResult{}, connectors.Permanent(fmt.Errorf("retention: control plane: system %q is not %s", p.System, ControlSystem))
	}
	held := c.heldHashes(p.Held)
	switch p.Dataset {
	case ControlCodes:
		// Codes of held subjects' requests stay with the rest of their
		// requests' data.
		return c.deleteWhere(ctx, p, `verification_codes v`, `v.expires_at < $1 AND NOT EXISTS (SELECT 1 FROM privacy_request_identities i
			WHERE i.request_id = v.request_id AND i.lookup_hash = ANY($2))`, held)
	case ControlSends:
		// A send is a keyed hash kept for a rate limit: no hold can name
		// it (its hash is of another domain), and it says nothing about a
		// person beyond "asked for a code".
		return c.deleteWhere(ctx, p, `verification_sends v`, `v.at < $1 AND $2::bytea[] IS NOT NULL`, held)
	case ControlExports:
		return c.sweepExports(ctx, p)
	case ControlRequests:
		return c.sweepRequests(ctx, p, held)
	case ControlConsent:
		return c.sweepConsent(ctx, p, held)
	case ControlWebhooks:
		return c.sweepWebhooks(ctx, p, held)
	}
	return connectors.SweepResult{}, connectors.Permanent(fmt.Errorf("retention: control plane: no dataset %q", p.Dataset))
}

// sweepWebhooks deletes sent webhooks (delivered or given up; a pending one
// is still owed) queued before the cutoff, with their attempts. A delivery
// names no subject a hold could match (its body is sealed), so holds do not
// reach it. An Art. 19 notice whose delivery goes is first recorded as told,
// so the request's recipients keep saying so.
func (c *ControlPlane) sweepWebhooks(ctx context.Context, p connectors.SweepParams, held [][]byte) (connectors.SweepResult, error) {
	const due = `v.created_at < $1 AND v.status IN ('delivered', 'failed') AND $2::bytea[] IS NOT NULL`
	if !p.DryRun {
		if _, err := c.Pool.Exec(ctx, `UPDATE recipient_notifications n SET status = 'done', done_at = d.delivered_at, done_by = 'system:webhooks'
			FROM webhook_deliveries d WHERE d.id = ANY(n.delivery_ids) AND d.status = 'delivered' AND n.status <> 'done' AND d.created_at < $1`, p.Cutoff); err != nil {
			return connectors.SweepResult{}, connectors.Retryable(fmt.Errorf("retention: keep told recipients: %w", err), 0)
		}
	}
	return c.deleteWhere(ctx, p, `webhook_deliveries v`, due, held)
}

// heldHashes are the lookup hashes of the held subjects' identities, under
// every key of the keyring (requests hashed under a retired key too).
func (c *ControlPlane) heldHashes(held [][]connectors.Identity) [][]byte {
	out := [][]byte{}
	for _, ids := range held {
		for _, id := range ids {
			subj, err := id.Subject()
			if err != nil {
				continue // not an identity Steward stores requests under
			}
			out = append(out, c.Keys.Hashes(subj)...)
		}
	}
	return out
}

// deleteWhere deletes due rows of a small table in batches.
func (c *ControlPlane) deleteWhere(ctx context.Context, p connectors.SweepParams, table, due string, held [][]byte) (connectors.SweepResult, error) {
	var res connectors.SweepResult
	if err := c.Pool.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE `+due, p.Cutoff, held).Scan(&res.Matched); err != nil {
		return res, fmt.Errorf("retention: count %s: %w", p.Dataset, err)
	}
	var all int64
	if err := c.Pool.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE `+timestampOnly(p.Dataset), p.Cutoff).Scan(&all); err != nil {
		return res, fmt.Errorf("retention: count %s: %w", p.Dataset, err)
	}
	res.Held = all - res.Matched
	res.Matched = all
	if p.DryRun {
		return res, nil
	}
	for {
		tag, err := c.Pool.Exec(ctx, `DELETE FROM `+table+` WHERE v.ctid = ANY(ARRAY(SELECT v.ctid FROM `+table+` WHERE `+due+` LIMIT 5000))`, p.Cutoff, held)
		if err != nil {
			return res, connectors.Retryable(fmt.Errorf("retention: delete %s: %w", p.Dataset, err), 0)
		}
		n := tag.RowsAffected()
		if n == 0 {
			return res, nil
		}
		res.Deleted += n
		if p.Progress != nil {
			if err := p.Progress(ctx, connectors.SweepBatch{Deleted: n}); err != nil {
				return res, err
			}
		}
	}
}

// timestampOnly is the age condition alone (due, held or not).
func timestampOnly(dataset string) string {
	switch dataset {
	case ControlSends:
		return `v.at < $1`
	case ControlWebhooks:
		return `v.created_at < $1 AND v.status IN ('delivered', 'failed')`
	}
	return `v.expires_at < $1`
}

func (c *ControlPlane) sweepExports(ctx context.Context, p connectors.SweepParams) (connectors.SweepResult, error) {
	var res connectors.SweepResult
	if c.Exports == nil {
		return res, nil
	}
	n, err := c.Exports.CountDue(ctx)
	if err != nil {
		return res, connectors.Retryable(err, 0)
	}
	res.Matched = int64(n)
	if p.DryRun || n == 0 {
		return res, nil
	}
	// An expired package is a copy whose link promised to expire: it goes
	// even for a held subject (the hold keeps the originals).
	for {
		n, err := c.Exports.ExpireDue(ctx)
		if err != nil {
			return res, connectors.Retryable(err, 0)
		}
		if n == 0 {
			return res, nil
		}
		res.Deleted += int64(n)
		if p.Progress != nil {
			if err := p.Progress(ctx, connectors.SweepBatch{Deleted: int64(n)}); err != nil {
				return res, err
			}
		}
	}
}

// closedDue selects closed requests that still hold personal data, closed
// before $1, whose subject is not held ($2).
const closedDue = `r.closed_at IS NOT NULL AND r.closed_at < $1
	AND (r.contact_ct IS NOT NULL OR r.details_ct IS NOT NULL OR r.package_link IS NOT NULL
	     OR EXISTS (SELECT 1 FROM privacy_request_identities i WHERE i.request_id = r.id)
	     OR EXISTS (SELECT 1 FROM privacy_request_documents d WHERE d.request_id = r.id)
	     OR EXISTS (SELECT 1 FROM privacy_request_tasks t JOIN privacy_request_records x ON x.task_id = t.id WHERE t.request_id = r.id)
	     OR EXISTS (SELECT 1 FROM privacy_request_tasks t JOIN privacy_request_files f ON f.task_id = t.id WHERE t.request_id = r.id))`

const notHeld = ` AND NOT EXISTS (SELECT 1 FROM privacy_request_identities i WHERE i.request_id = r.id AND i.lookup_hash = ANY($2))`

// sweepRequests clears the personal data of requests closed longer than
// the period: their contact, sealed details and download link, identities,
// uploaded documents, disclosed records and files. The request itself and its timeline stay:
// the evidence that a person's request was answered, and when.
func (c *ControlPlane) sweepRequests(ctx context.Context, p connectors.SweepParams, held [][]byte) (connectors.SweepResult, error) {
	var res connectors.SweepResult
	var due int64
	if err := c.Pool.QueryRow(ctx, `SELECT count(*) FROM privacy_requests r WHERE `+closedDue, p.Cutoff).Scan(&res.Matched); err != nil {
		return res, fmt.Errorf("retention: count closed requests: %w", err)
	}
	if err := c.Pool.QueryRow(ctx, `SELECT count(*) FROM privacy_requests r WHERE `+closedDue+notHeld, p.Cutoff, held).Scan(&due); err != nil {
		return res, fmt.Errorf("retention: count closed requests: %w", err)
	}
	res.Held = res.Matched - due
	if p.DryRun {
		return res, nil
	}
	batch := c.Batch
	if batch <= 0 {
		batch = 200
	}
	for {
		var ids []string
		var blobs []string
		err := pgx.BeginFunc(ctx, c.Pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT r.id::text FROM privacy_requests r WHERE `+closedDue+notHeld+`
				ORDER BY r.closed_at, r.id LIMIT $3 FOR UPDATE SKIP LOCKED`, p.Cutoff, held, batch)
			if err != nil {
				return err
			}
			if ids, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || len(ids) == 0 {
				return err
			}
			rows, err = tx.Query(ctx, `DELETE FROM privacy_request_files f USING privacy_request_tasks t
				WHERE f.task_id = t.id AND t.request_id = ANY($1::uuid[]) RETURNING f.blob_key`, ids)
			if err != nil {
				return err
			}
			if blobs, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				return err
			}
			for _, sql := range []string{
				`DELETE FROM privacy_request_records x USING privacy_request_tasks t WHERE x.task_id = t.id AND t.request_id = ANY($1::uuid[])`,
				`DELETE FROM privacy_request_identities WHERE request_id = ANY($1::uuid[])`,
				`DELETE FROM privacy_request_documents WHERE request_id = ANY($1::uuid[])`,
				`UPDATE privacy_requests SET contact_kid = NULL, contact_ct = NULL, details_kid = NULL, details_ct = NULL,
					package_link_kid = NULL, package_link = NULL WHERE id = ANY($1::uuid[])`,
			} {
				if _, err := tx.Exec(ctx, sql, ids); err != nil {
					return err
				}
			}
			// The sealed files go before the rows that name them commit
			// away: a failure here rolls the rows back, and the next
			// sweep finds (and deletes) the same keys again.
			return c.deleteBlobs(ctx, blobs)
		})
		if err != nil {
			return res, connectors.Retryable(fmt.Errorf("retention: clear closed requests: %w", err), 0)
		}
		if len(ids) == 0 {
			return res, nil
		}
		res.Anonymized += int64(len(ids))
		if p.Progress != nil {
			if err := p.Progress(ctx, connectors.SweepBatch{Anonymized: int64(len(ids))}); err != nil {
				return res, err
			}
		}
	}
}

// consentDue selects consent events older than $1 that still carry a user
// agent or IP hash, of a subject not held ($2: held lookup hashes).
const consentDue = `e.recorded_at < $1 AND (e.user_agent IS NOT NULL OR e.ip_hash IS NOT NULL)
	AND NOT EXISTS (SELECT 1 FROM subjects s WHERE s.id = e.subject_id AND s.lookup_hash = ANY($2))`

// sweepConsent clears the user agent and IP hash of consent events older
// than the period. The event stays: it is the proof of the choice (GDPR
// Art. 7(1)), and the ledger is append-only but for this one change, made
// through the same guarded door as erasure (migration 00016: only inside a
// transaction that sets steward.consent_forget, and only these two columns).
func (c *ControlPlane) sweepConsent(ctx context.Context, p connectors.SweepParams, held [][]byte) (connectors.SweepResult, error) {
	var res connectors.SweepResult
	var due int64
	if err := c.Pool.QueryRow(ctx, `SELECT count(*) FROM consent_events e WHERE e.recorded_at < $1 AND (e.user_agent IS NOT NULL OR e.ip_hash IS NOT NULL)`,
		p.Cutoff).Scan(&res.Matched); err != nil {
		return res, fmt.Errorf("retention: count consent events: %w", err)
	}
	if err := c.Pool.QueryRow(ctx, `SELECT count(*) FROM consent_events e WHERE `+consentDue, p.Cutoff, held).Scan(&due); err != nil {
		return res, fmt.Errorf("retention: count consent events: %w", err)
	}
	res.Held = res.Matched - due
	if p.DryRun {
		return res, nil
	}
	batch := c.Batch
	if batch <= 0 {
		batch = 200
	}
	batch *= 10 // an event is one narrow row, a request many
	for {
		var n int64
		err := pgx.BeginFunc(ctx, c.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT set_config('steward.consent_forget', 'on', true)`); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `UPDATE consent_events SET user_agent = NULL, ip_hash = NULL WHERE id = ANY(ARRAY(
				SELECT e.id FROM consent_events e WHERE `+consentDue+` LIMIT $3 FOR UPDATE SKIP LOCKED))`, p.Cutoff, held, batch)
			if err != nil {
				return err
			}
			n = tag.RowsAffected()
			// Closed again before commit, so nothing later in this
			// transaction passes the guard.
			_, err = tx.Exec(ctx, `SELECT set_config('steward.consent_forget', 'off', true)`)
			return err
		})
		if err != nil {
			return res, connectors.Retryable(fmt.Errorf("retention: clear consent event details: %w", err), 0)
		}
		if n == 0 {
			return res, nil
		}
		res.Anonymized += n
		if p.Progress != nil {
			if err := p.Progress(ctx, connectors.SweepBatch{Anonymized: n}); err != nil {
				return res, err
			}
		}
	}
}

func (c *ControlPlane) deleteBlobs(ctx context.Context, keys []string) error {
	if c.Files == nil || len(keys) == 0 {
		return nil
	}
	for _, k := range keys {
		if err := c.Files.Delete(ctx, k); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return fmt.Errorf("delete disclosed file: %w", err)
		}
	}
	return nil
}

// errNoControl is returned when a run names Steward's data but the
// service has no control plane.
var errNoControl = errors.New("retention: Steward's own data is not swept by this service")
