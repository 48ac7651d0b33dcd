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
//   - email: its privacy_contact (data map) got the recipient_notice email
//     through the outbox, with the person's identities it knows;
//   - staff: none of those: staff tell it and mark it done, with a note.

// Recipient is one recipient's notification.
type Recipient struct {
	System string     `json:"system"`
	Name   string     `json:"name"`
	Method string     `json:"method"` // connector, manual_task, email or staff
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
		} else if sys.PrivacyContact != "" {
			// The identities this processor can know the person by: the
			// types of what it was sent, and those its datasets are keyed
			// on. Nothing else about the person is disclosed to it.
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
			if len(ids) > 0 {
				if _, err := s.Outbox.EnqueueEmail(ctx, tx, notify.Email{To: sys.PrivacyContact, Template: notify.TemplateRecipientNotice, Language: "en",
					Data: map[string]string{"request_id": r.ID, "request_type": r.Type, "system": sys.Name,
						"identities": strings.Join(ids, ", "), "controller": controller}}); err != nil {
					return fmt.Errorf("dsar: queue the notice to %s: %w", id, err)
				}
				method, status = "email", "queued"
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO recipient_notifications (request_id, system, method, status, created_at, done_at, done_by)
			VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $6::timestamptz IS NULL THEN NULL ELSE $7 END) ON CONFLICT (request_id, system) DO NOTHING`,
			r.ID, id, method, status, now, doneAt, actorSystem); err != nil {
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

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (s *Service) recipients(ctx context.Context, q querier, id string) ([]Recipient, error) {
	rows, err := q.Query(ctx, `SELECT system, method, status, done_at, coalesce(done_by, ''), coalesce(note, '')
		FROM recipient_notifications WHERE request_id = $1 ORDER BY system`, id)
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
