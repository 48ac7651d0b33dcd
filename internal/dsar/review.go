package dsar

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/apperr"
)

// Review items are records a task reached but left alone because they are
// not the person's alone (connectors.Review): an address other people
// share, a row another person owns too, a relationship between two parties.
// The connector returns them with its result, which the task keeps
// (privacy_request_tasks.result -> 'review'); the request is not held for
// them, since the person's own data was handled. Staff see them on the
// request (Task.Review, Request.ReviewItems, the list's review=open
// filter), in the timeline (one review_items_found event per task, counts
// only, audited), in the report, and the person is told in plain words in
// the completion email (an erasure's: not erased; an access request's: not
// included in the package, and whom to ask). Staff acknowledge a task's
// items with a note once they have looked at them (AcknowledgeReview).

// Bounds on what a connector may hand over: review items are counts and
// schema names, never personal values, and a misbehaving connector must not
// bloat the result or the audit log.
const (
	maxReviewItems = 100
	maxReviewText  = 200
)

var reviewReasons = map[string]bool{
	connectors.ReviewShared: true, connectors.ReviewRelationship: true,
	connectors.ReviewHeldByOthers: true, connectors.ReviewOtherOwner: true,
}

// cleanReview bounds a connector's review items: at most maxReviewItems
// (the rest are folded into the last one's counts), names truncated,
// negative counts zero, an unknown reason kept but marked, and items with
// no records dropped.
func cleanReview(in []connectors.Review) []connectors.Review {
	var out []connectors.Review
	for _, r := range in {
		r.Dataset = truncate(strings.TrimSpace(r.Dataset), maxReviewText)
		r.Reference = truncate(strings.TrimSpace(r.Reference), maxReviewText)
		r.Reason = truncate(strings.TrimSpace(r.Reason), 40)
		if !reviewReasons[r.Reason] {
			r.Reason = "other:" + r.Reason
		}
		r.Records, r.Holders = max(r.Records, 0), max(r.Holders, 0)
		if r.Records == 0 {
			continue
		}
		if len(out) == maxReviewItems {
			out[len(out)-1].Records += r.Records
			continue
		}
		out = append(out, r)
	}
	return out
}

// reviewCount is the number of records of items.
func reviewCount(items []connectors.Review) int {
	n := 0
	for _, r := range items {
		n += r.Records
	}
	return n
}

// reviewDetails is the audit form of items: what and how many, no values.
func reviewDetails(items []connectors.Review) []map[string]any {
	out := make([]map[string]any, 0, len(items))
	for _, r := range items {
		out = append(out, map[string]any{"dataset": r.Dataset, "reference": r.Reference, "reason": r.Reason,
			"records": r.Records, "holders": r.Holders})
	}
	return out
}

// reviewFound records in the timeline and the audit log that a task left
// items for staff: one event per task, counts only.
func (s *Service) reviewFound(ctx context.Context, tx pgx.Tx, requestID, taskID, system, dataset, op string, run int, items []connectors.Review) error {
	if len(items) == 0 {
		return nil
	}
	n := reviewCount(items)
	note := fmt.Sprintf("%d record(s) in %d item(s) were left for staff review: they are not the person's alone", n, len(items))
	return s.event(ctx, tx, requestID, "review_items_found", "", "", actorSystem, note, map[string]any{
		"task_id": taskID, "system": system, "dataset": dataset, "operation": op, "run": run,
		"review_items": len(items), "review_records": n, "items": reviewDetails(items)})
}

// AcknowledgeReview records that staff have looked at a task's review
// items and what they decided (note, required). It works on a request in
// any status, a completed one included: the items do not hold the request.
// A task without open items is a conflict.
func (s *Service) AcknowledgeReview(ctx context.Context, id, taskID, actor, note string) (Request, error) {
	note, err := reasonRequired(note)
	if err != nil {
		return Request{}, apperr.Field("note", "required: what was decided about the records")
	}
	if !ValidID(taskID) {
		return Request{}, apperr.New(apperr.NotFound, "no such task")
	}
	return s.act(ctx, id, func(tx pgx.Tx, r *Request) error {
		var system, dataset string
		var items int
		var acked bool
		err := tx.QueryRow(ctx, `
			SELECT system, dataset, review_items, review_acknowledged_at IS NOT NULL
			FROM privacy_request_tasks WHERE id = $1 AND request_id = $2 FOR UPDATE`, taskID, id).Scan(&system, &dataset, &items, &acked)
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.New(apperr.NotFound, "no such task")
		}
		if err != nil {
			return fmt.Errorf("dsar: load task: %w", err)
		}
		switch {
		case items == 0:
			return apperr.New(apperr.Conflict, "this task has no review items")
		case acked:
			return apperr.New(apperr.Conflict, "this task's review items are already acknowledged")
		}
		if _, err := tx.Exec(ctx, `
			UPDATE privacy_request_tasks SET review_acknowledged_at = $2, review_acknowledged_by = $3, review_note = $4
			WHERE id = $1`, taskID, s.Clock.Now(), actor, note); err != nil {
			return fmt.Errorf("dsar: acknowledge review: %w", err)
		}
		r.ReviewItems = max(r.ReviewItems-items, 0)
		return s.event(ctx, tx, id, "review_acknowledged", "", "", actor, note,
			map[string]any{"task_id": taskID, "system": system, "dataset": dataset, "review_items": items})
	})
}

// reviewRecords counts the records the request's tasks of operation op
// left for staff review, and names the systems that hold them (in name
// order).
func reviewRecords(ctx context.Context, tx pgx.Tx, requestID, op string) (int, []string, error) {
	rows, err := tx.Query(ctx, `
		SELECT t.system, coalesce(sum(CASE WHEN jsonb_typeof(i -> 'records') = 'number' THEN (i ->> 'records')::bigint ELSE 0 END), 0)::integer AS n
		FROM privacy_request_tasks t, jsonb_array_elements(t.result -> 'review') i
		WHERE t.request_id = $1 AND t.operation = $2 AND t.review_items > 0
		GROUP BY t.system ORDER BY t.system`, requestID, op)
	if err != nil {
		return 0, nil, fmt.Errorf("dsar: count review records: %w", err)
	}
	total := 0
	var systems []string
	var system string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&system, &n}, func() error {
		if n > 0 {
			total += n
			systems = append(systems, system)
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("dsar: count review records: %w", err)
	}
	return total, systems, nil
}

// withheldNote is what an access request's completion email says of the
// records its tasks reached but left out of the package because other
// people's data is in them (the package's withheld section): how many,
// and whom to ask, the contact of the controller of the systems that hold
// them. "" when nothing was withheld.
func (s *Service) withheldNote(ctx context.Context, tx pgx.Tx, r *Request) (string, error) {
	n, systems, err := reviewRecords(ctx, tx, r.ID, OpAccess)
	if err != nil || n == 0 {
		return "", err
	}
	var contacts []string
	for _, c := range controllersOf(s.Policies.Current(), systems, nil) {
		if c.Contact != "" && !slices.Contains(contacts, c.Contact) {
			contacts = append(contacts, c.Contact)
		}
	}
	return withheldSummary(r.Language, n, strings.Join(contacts, ", ")), nil
}

// withheldSummary tells the person, in their language, that n records
// were not included in their data because other people's data is in them,
// that staff review them, and how to ask about them: write to contact, or
// (without one) contact us, quoting the request ID. The wording follows
// the package's own withheld section; Russian and Uzbek put the number
// after a label, which needs no plural forms.
func withheldSummary(lang string, n int, contact string) string {
	switch lang {
	case "ru":
		ask := "свяжитесь с нами"
		if contact != "" {
			ask = "напишите нам (" + contact + ")"
		}
		return fmt.Sprintf("Не включено записей: %d. В них есть данные других людей (например, общий адрес); их проверяют наши сотрудники. Чтобы узнать о них подробнее, %s и укажите номер запроса.", n, ask)
	case "uz":
		ask := "biz bilan bogʻlaning"
		if contact != "" {
			ask = "bizga yozing (" + contact + ")"
		}
		return fmt.Sprintf("Kiritilmagan yozuvlar: %d. Ularda boshqa odamlarning maʼlumotlari bor (masalan, umumiy manzil); ularni xodimlarimiz koʻrib chiqadi. Batafsil bilmoqchi boʻlsangiz, soʻrov raqamini koʻrsatgan holda %s.", n, ask)
	}
	ask := "contact us"
	if contact != "" {
		ask = "write to us at " + contact
	}
	if n == 1 {
		return fmt.Sprintf("1 record was not included in your data because other people's data is in it (for example, a shared address). Our staff review it; to ask about it, %s and quote the request ID.", ask)
	}
	return fmt.Sprintf("%d records were not included in your data because other people's data is in them (for example, a shared address). Our staff review them; to ask about them, %s and quote the request ID.", n, ask)
}

// reviewSummary tells the person, in their language, that records were
// not erased because other people's data is in them. Russian and Uzbek
// put the number after a label, which needs no plural forms.
func reviewSummary(lang string, n int) string {
	switch lang {
	case "ru":
		return fmt.Sprintf("Не удалено записей: %d. В них есть данные других людей, поэтому их проверят наши сотрудники.", n)
	case "uz":
		return fmt.Sprintf("Oʻchirilmagan yozuvlar: %d. Ularda boshqa odamlarning maʼlumotlari bor, shuning uchun ularni xodimlarimiz koʻrib chiqadi.", n)
	}
	if n == 1 {
		return "1 record was not erased because other people's data is in it; our staff will review it."
	}
	return fmt.Sprintf("%d records were not erased because other people's data is in them; our staff will review them.", n)
}
