package dsar

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/notify"
)

// Reminder kinds, least urgent first.
var reminderKinds = []struct {
	kind   string
	before time.Duration // sent once due_at - before has passed
}{
	{"7d", 7 * 24 * time.Hour},
	{"1d", 24 * time.Hour},
	{"overdue", 0},
}

// SendReminders emails staff about open requests due within 7 days, within
// a day, and overdue: each at most once per request (an extension starts
// them over). When a request is already past several marks (a request due
// in 3 days when first seen), only the most urgent is sent and the others
// are marked sent. Run on one replica at a time (see internal/leader); the
// primary key on (request, kind) keeps it at most once even if two ran.
func (s *Service) SendReminders(ctx context.Context) (int, error) {
	if s.cfg.StaffEmail == "" {
		return 0, nil
	}
	now := s.Clock.Now()
	rows, err := s.Pool.Query(ctx, `
		SELECT id::text FROM privacy_requests
		WHERE status NOT IN ('completed', 'denied', 'canceled') AND due_at <= $1
		ORDER BY due_at`, now.Add(reminderKinds[0].before))
	if err != nil {
		return 0, fmt.Errorf("dsar: reminders: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	sent := 0
	for _, id := range ids {
		err := s.tx(ctx, func(tx pgx.Tx) error {
			r, err := s.lock(ctx, tx, id)
			if err != nil || r.Status.Final() {
				return err
			}
			urgent := ""
			for _, k := range reminderKinds {
				if !now.Before(r.DueAt.Add(-k.before)) && (k.before > 0 || now.After(r.DueAt)) {
					urgent = k.kind
				}
			}
			if urgent == "" {
				return nil
			}
			var fresh bool
			for _, k := range reminderKinds {
				tag, err := tx.Exec(ctx, `INSERT INTO privacy_request_reminders (request_id, kind, sent_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, id, k.kind, now)
				if err != nil {
					return fmt.Errorf("dsar: record reminder: %w", err)
				}
				if k.kind == urgent {
					fresh = tag.RowsAffected() == 1
					break
				}
			}
			if !fresh {
				return nil
			}
			data := map[string]string{"request_id": id, "request_type": r.Type, "due_date": r.DueAt.Format("2006-01-02"), "when": urgent}
			if s.cfg.StaffURL != "" {
				data["staff_url"] = s.cfg.StaffURL + id
			}
			if _, err := s.Outbox.EnqueueEmail(ctx, tx, notify.Email{To: s.cfg.StaffEmail, Template: notify.TemplateStaffReminder, Language: "en", Data: data}); err != nil {
				return fmt.Errorf("dsar: queue reminder: %w", err)
			}
			sent++
			return s.event(ctx, tx, id, "reminder_sent", "", "", actorSystem, "", map[string]any{"kind": urgent})
		})
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
}
