package dsar

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/notify"
)

// GDPR Art. 19: "The controller shall communicate any rectification or
// erasure of personal data or restriction of processing ... to each
// recipient to whom the personal data have been disclosed, unless this
// proves impossible or involves disproportionate effort. The controller
// shall inform the data subject about those recipients if the data subject
// requests it."
//
// The recipients of a request are the systems of the data map its plan
// reached that someone else runs (a processor is a recipient, Art. 4(9)),
// and the systems a reached dataset names in `recipients` (prompts sent to
// AI providers). Each is told one way, recorded in recipient_notifications:
//
//   - connector: Steward acted on it through its API, so the change was
//     made there, by the request's own task;
//   - manual_task: staff made the change in its console (the task's note);
//   - webhook: its processor registered a webhook endpoint for the system
//     (recipient_system): a signed recipient.notice, told once the
//     endpoint accepted it (2xx);
//   - email: its privacy_contact (data map) got the recipient_notice email
//     through the outbox, with the person's identities it knows;
//   - staff: none of those: staff tell it and mark it done, with a note.

// Recipient is one recipient's notification.
type Recipient struct {
	System string     `json:"system"`
	Name   string     `json:"name"`
	Method string     `json:"method"` // connector, manual_task, webhook, email or staff
	Status string     `json:"status"` // done, queued or pending
	DoneAt *time.Time `json:"done_at,omitempty"`
	DoneBy string     `json:"done_by,omitempty"`
	Note   string     `json:"note,omitempty"`
}

// tellsRecipients are the request types Art. 19 is about.
var tellsRecipients = map[string]bool{"erasure": true, "rectification": true, "restriction": true}

// notifyRecipients records and sends the Art. 19 notifications as a
// request completes, in its transaction.
func (s *Service) notifyRecipients(ctx context.Context, tx pgx.Tx, r *Request) error {
	if !tellsRecipients[r.Type] {
		return nil
	}
	tasks, err := s.tasks(ctx, tx, r.ID)
	if err != nil {
		return err
	}
	engine := s.Policies.Current()
	dm := engine.DataMap
	if dm == nil {
		return nil
	}
	reached := map[string][]Task{}
	recipients := map[string]bool{}
	// sentKinds are the identity types of the datasets that send data to
	// a recipient: it knows the person by what it was sent.
	sentKinds := map[string]map[string]bool{}
	for _, t := range tasks {
		if t.Status == TaskCanceled {
			continue
		}
		reached[t.System] = append(reached[t.System], t)
		sys, ok := dm.Systems[t.System]
		if !ok {
			continue
		}
		if sys.Processor != "" && sys.Processor != "self" {
			recipients[t.System] = true
		}
		for id, ds := range sys.Datasets {
			if t.Dataset == "" || t.Dataset == id {
				for _, rc := range ds.Recipients {
					if _, ok := dm.Systems[rc]; ok {
						recipients[rc] = true
						if sentKinds[rc] == nil {
							sentKinds[rc] = map[string]bool{}
						}
						for _, idf := range ds.Identities {
							sentKinds[rc][idf.Type] = true
						}
					}
				}
			}
		}
	}
	if len(recipients) == 0 {
		return nil
	}
	found, err := s.identities(ctx, tx, r.ID)
	if err != nil {
		return err
	}
	product := cmp.Or(r.Product, engine.DefaultProduct())
	controller := cmp.Or(engine.Products[product].Controller.Name, engine.Products[product].Name)
	now := s.Clock.Now()
	counts := map[string]int{}
	for _, id := range slices.Sorted(maps.Keys(recipients)) {
		sys := dm.Systems[id]
		method, status := "staff", "pending"
		var doneAt *time.Time
		if ts := reached[id]; len(ts) > 0 {
			method, status, doneAt = "connector", "done", &now
			for _, t := range ts {
				if t.Mode == ModeManual {
					method = "manual_task"
				}
			}
		}
		// The identities this processor can know the person by: the types
		// of what it was sent, and those its datasets are keyed on.
		// Nothing else about the person is disclosed to it.
		kinds := maps.Clone(sentKinds[id])
		if kinds == nil {
			kinds = map[string]bool{}
		}
		for _, ds := range sys.Datasets {
			for _, idf := range ds.Identities {
				kinds[idf.Type] = true
			}
		}
		var ids []string
		for _, f := range found {
			if kinds[string(f.subj.Type)] {
				ids = append(ids, f.subj.String())
			}
		}
		var deliveries []string
		if method == "staff" && len(ids) > 0 {
			// A processor's own endpoint first: its system can act on it
			// and say so (2xx) without a person reading an email.
			deliveries, err = s.Outbox.EnqueueWebhookDeliveries(ctx, tx, notify.WebhookEvent{
				Type: notify.EventRecipientNotice, RecipientSystem: id, At: now, Identity: strings.Join(ids, ","),
				Data: map[string]any{"request_id": r.ID, "request_type": r.Type, "system": id, "controller": controller},
			})
			if err != nil {
				return fmt.Errorf("dsar: queue the webhook notice to %s: %w", id, err)
			}
			if len(deliveries) > 0 {
				method, status = "webhook", "queued"
			}
		}
		if method == "staff" && sys.PrivacyContact != "" {
			if len(ids) > 0 {
				if _, err := s.Outbox.EnqueueEmail(ctx, tx, notify.Email{To: sys.PrivacyContact, Template: notify.TemplateRecipientNotice, Language: "en",
					Data: map[string]string{"request_id": r.ID, "request_type": r.Type, "system": sys.Name,
						"identities": strings.Join(ids, ", "), "controller": controller}}); err != nil {
					return fmt.Errorf("dsar: queue the notice to %s: %w", id, err)
				}
				method, status = "email", "queued"
			}
		}
		if deliveries == nil {
			deliveries = []string{}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO recipient_notifications (request_id, system, method, status, created_at, done_at, done_by, delivery_ids)
			VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $6::timestamptz IS NULL THEN NULL ELSE $7 END, $8::uuid[]) ON CONFLICT (request_id, system) DO NOTHING`,
			r.ID, id, method, status, now, doneAt, actorSystem, deliveries); err != nil {
			return fmt.Errorf("dsar: record the notice to %s: %w", id, err)
		}
		counts[method]++
	}
	return s.event(ctx, tx, r.ID, "recipients_notified", "", "", actorSystem, "", map[string]any{"recipients": len(recipients), "by_method": counts})
}

// Recipients lists a request's Art. 19 notifications.
func (s *Service) Recipients(ctx context.Context, id string) ([]Recipient, error) {
	if !ValidID(id) {
		return nil, errNotFound
	}
	return s.recipients(ctx, s.Pool, id)
}

func (s *Service) recipients(ctx context.Context, q db.Querier, id string) ([]Recipient, error) {
	// A webhook notice is done once one of its deliveries was accepted.
	rows, err := q.Query(ctx, `
		SELECT n.system, n.method,
		       CASE WHEN n.status <> 'done' AND d.at IS NOT NULL THEN 'done' ELSE n.status END,
		       coalesce(n.done_at, d.at), coalesce(n.done_by, CASE WHEN d.at IS NOT NULL THEN 'system:webhooks' END, ''), coalesce(n.note, '')
		FROM recipient_notifications n
		LEFT JOIN LATERAL (SELECT min(delivered_at) AS at FROM webhook_deliveries
		                   WHERE id = ANY(n.delivery_ids) AND status = 'delivered') d ON true
		WHERE n.request_id = $1 ORDER BY n.system`, id)
	if err != nil {
		return nil, fmt.Errorf("dsar: list recipients: %w", err)
	}
	dm := s.Policies.Current().DataMap
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Recipient, error) {
		var r Recipient
		err := row.Scan(&r.System, &r.Method, &r.Status, &r.DoneAt, &r.DoneBy, &r.Note)
		r.Name = r.System
		if dm != nil {
			r.Name = cmp.Or(dm.Systems[r.System].Name, r.System)
		}
		return r, err
	})
}

// RecipientTold records that staff told a recipient (or confirmed the
// processor's reply to the email), with a note saying how.
func (s *Service) RecipientTold(ctx context.Context, id, system, actor, note string) (Recipient, error) {
	note, err := reasonRequired(note)
	if err != nil {
		return Recipient{}, apperr.Field("note", "required: how the recipient was told, or its confirmation")
	}
	var out Recipient
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := s.lock(ctx, tx, id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE recipient_notifications SET status = 'done', done_at = $3, done_by = $4, note = $5
			WHERE request_id = $1 AND system = $2 AND status <> 'done'`, id, system, s.Clock.Now(), actor, note)
		if err != nil {
			return fmt.Errorf("dsar: mark recipient told: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return apperr.New(apperr.NotFound, "no pending notice to this recipient")
		}
		if err := s.event(ctx, tx, id, "recipient_told", "", "", actor, note, map[string]any{"system": system}); err != nil {
			return err
		}
		all, err := s.recipients(ctx, tx, id)
		for _, r := range all {
			if r.System == system {
				out = r
			}
		}
		return err
	})
	return out, err
}
