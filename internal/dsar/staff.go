package dsar

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/notify"
)

// Filter selects requests for the staff list.
type Filter struct {
	Status  string // one status, or "open" for every non-final one
	Type    string
	Channel string
	Regime  string // a regime of the bundle (gdpr, ccpa, …)
	Product string // a product of the bundle (policy Engine.Products)
	// Identity finds the requests that reach this identity (given at
	// intake, added by staff or resolved by a connector). It is matched
	// through its keyed hashes under every key of the ring, so the value
	// itself is never written to the database or a log.
	Identity identity.Subject
	Overdue  bool
	// Review is "open" for requests with review items staff have not
	// acknowledged yet.
	Review string
	DueBy  *time.Time // due at or before
	Limit  int        // default 50, at most 200
	Cursor string     // from the previous page
}

type cursor struct {
	Due time.Time `json:"d"`
	ID  string    `json:"i"`
}

// List returns requests sorted by due date (soonest first), keyset-paged.
func (s *Service) List(ctx context.Context, f Filter) ([]Request, string, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.Limit > 200 {
		return nil, "", apperr.Field("limit", "at most 200")
	}
	where := []string{"true"}
	args := []any{}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	switch {
	case f.Status == "open":
		where = append(where, "status NOT IN ('completed', 'denied', 'canceled')")
	case f.Status != "":
		if !validStatus(f.Status) {
			return nil, "", apperr.Field("status", "unknown status (or use open)")
		}
		where = append(where, "status = "+arg(f.Status))
	}
	if f.Type != "" {
		if !isRequestType(f.Type) {
			return nil, "", apperr.Field("type", "unknown request type")
		}
		where = append(where, "type = "+arg(f.Type))
	}
	if f.Channel != "" {
		if !channels[f.Channel] {
			return nil, "", apperr.Field("channel", "unknown channel")
		}
		where = append(where, "channel = "+arg(f.Channel))
	}
	if f.Regime != "" {
		if len(f.Regime) > 64 {
			return nil, "", apperr.Field("regime", "unknown regime")
		}
		where = append(where, "regime = "+arg(f.Regime))
	}
	if f.Product != "" {
		if _, ok := s.Policies.Current().Products[f.Product]; !ok {
			return nil, "", apperr.Field("product", "unknown product")
		}
		where = append(where, "product = "+arg(f.Product))
	}
	if !f.Identity.IsZero() {
		where = append(where, `id IN (SELECT request_id FROM privacy_request_identities WHERE lookup_hash = ANY (`+arg(s.Keys.Hashes(f.Identity))+`))`)
	}
	now := s.Clock.Now()
	if f.Overdue {
		where = append(where, "status NOT IN ('completed', 'denied', 'canceled') AND due_at < "+arg(now))
	}
	switch f.Review {
	case "":
	case "open":
		where = append(where, `EXISTS (SELECT 1 FROM privacy_request_tasks t
			WHERE t.request_id = privacy_requests.id AND t.review_items > 0 AND t.review_acknowledged_at IS NULL)`)
	default:
		return nil, "", apperr.Field("review", "must be open")
	}
	if f.DueBy != nil {
		where = append(where, "due_at <= "+arg(*f.DueBy))
	}
	if f.Cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(f.Cursor)
		var c cursor
		if err != nil || json.Unmarshal(b, &c) != nil || !ValidID(c.ID) {
			return nil, "", apperr.Field("cursor", "not a cursor from this API")
		}
		where = append(where, "(due_at, id) > ("+arg(c.Due)+", "+arg(c.ID)+"::uuid)")
	}
	q := `SELECT ` + requestColumns + ` FROM privacy_requests WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY due_at, id LIMIT ` + arg(f.Limit+1)
	rows, err := s.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("dsar: list: %w", err)
	}
	defer rows.Close()
	out := []Request{}
	for rows.Next() {
		r, err := scanRequest(rows, now)
		if err != nil {
			return nil, "", fmt.Errorf("dsar: list: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("dsar: list: %w", err)
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		b, _ := json.Marshal(cursor{Due: last.DueAt, ID: last.ID})
		next = base64.RawURLEncoding.EncodeToString(b)
	}
	return out, next, nil
}

func validStatus(s string) bool {
	for _, st := range Statuses() {
		if string(st) == s {
			return true
		}
	}
	return false
}

// Get returns one request with its plan, tasks and timeline.
func (s *Service) Get(ctx context.Context, id string) (Detail, error) {
	var d Detail
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if !ValidID(id) {
			return errNotFound
		}
		r, err := scanRequest(tx.QueryRow(ctx, `SELECT `+requestColumns+` FROM privacy_requests WHERE id = $1`, id), s.Clock.Now())
		if errors.Is(err, pgx.ErrNoRows) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("dsar: get: %w", err)
		}
		d.Request = r
		var plan []byte
		if err := tx.QueryRow(ctx, `SELECT plan FROM privacy_requests WHERE id = $1`, id).Scan(&plan); err != nil {
			return fmt.Errorf("dsar: get plan: %w", err)
		}
		if plan != nil {
			d.Plan = &Plan{}
			if err := json.Unmarshal(plan, d.Plan); err != nil {
				return fmt.Errorf("dsar: decode plan: %w", err)
			}
		}
		rows, err := tx.Query(ctx, `SELECT kind, source FROM privacy_request_identities WHERE request_id = $1 ORDER BY source <> 'given', kind`, id)
		if err != nil {
			return fmt.Errorf("dsar: get identities: %w", err)
		}
		d.Identities = []IdentityInfo{}
		for rows.Next() {
			var i IdentityInfo
			if err := rows.Scan(&i.Kind, &i.Source); err != nil {
				rows.Close()
				return err
			}
			d.Identities = append(d.Identities, i)
		}
		rows.Close()
		if d.Tasks, err = s.tasks(ctx, tx, id); err != nil {
			return err
		}
		if d.Timeline, err = s.timeline(ctx, tx, id); err != nil {
			return err
		}
		if d.Documents, err = s.documents(ctx, tx, id); err != nil {
			return err
		}
		det, err := s.details(ctx, tx, id)
		if err != nil {
			return err
		}
		for c := range det.Changes {
			d.Changes = append(d.Changes, c)
		}
		if det.Agent != nil {
			d.Agent = &AgentPublicInfo{AuthorizationRef: det.Agent.AuthorizationRef}
		}
		return nil
	})
	return d, err
}

func (s *Service) tasks(ctx context.Context, tx pgx.Tx, id string) ([]Task, error) {
	rows, err := tx.Query(ctx, `
		SELECT t.id::text, t.seq, t.system, t.dataset, t.operation, t.mode, t.status, t.run, t.attempts, t.fields,
		       coalesce(t.instructions, ''), t.result, coalesce(t.error, ''), coalesce(t.completed_by, ''), coalesce(t.note, ''),
		       t.started_at, t.finished_at, t.after, t.review_acknowledged_at, coalesce(t.review_acknowledged_by, ''), coalesce(t.review_note, ''),
		       ARRAY(SELECT p.seq FROM privacy_request_tasks p
		             WHERE t.status = 'pending' AND p.request_id = t.request_id AND p.seq = ANY (t.after) AND p.status <> 'succeeded'
		             ORDER BY p.seq)
		FROM privacy_request_tasks t WHERE t.request_id = $1 ORDER BY t.seq`, id)
	if err != nil {
		return nil, fmt.Errorf("dsar: tasks: %w", err)
	}
	defer rows.Close()
	out := []Task{}
	for rows.Next() {
		var t Task
		var fields, result []byte
		if err := rows.Scan(&t.ID, &t.Seq, &t.System, &t.Dataset, &t.Operation, &t.Mode, &t.Status, &t.Run, &t.Attempts, &fields,
			&t.Instructions, &result, &t.Error, &t.CompletedBy, &t.Note, &t.StartedAt, &t.FinishedAt, &t.After,
			&t.ReviewAcknowledgedAt, &t.ReviewAcknowledgedBy, &t.ReviewNote, &t.WaitingFor); err != nil {
			return nil, fmt.Errorf("dsar: tasks: %w", err)
		}
		if t.After == nil {
			t.After = []int{}
		}
		if len(t.WaitingFor) == 0 {
			t.WaitingFor = nil
		}
		if err := json.Unmarshal(fields, &t.Fields); err != nil {
			return nil, fmt.Errorf("dsar: task fields: %w", err)
		}
		if result != nil {
			t.Result = result
			var rv struct {
				Review []connectors.Review `json:"review"`
			}
			if json.Unmarshal(result, &rv) == nil && len(rv.Review) > 0 {
				t.Review = rv.Review
			}
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (s *Service) timeline(ctx context.Context, tx pgx.Tx, id string) ([]TimelineEntry, error) {
	rows, err := tx.Query(ctx, `
		SELECT at, event, coalesce(from_status, ''), coalesce(to_status, ''), actor, coalesce(note, '')
		FROM privacy_request_events WHERE request_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("dsar: timeline: %w", err)
	}
	defer rows.Close()
	out := []TimelineEntry{}
	for rows.Next() {
		var e TimelineEntry
		if err := rows.Scan(&e.At, &e.Event, &e.From, &e.To, &e.Actor, &e.Note); err != nil {
			return nil, fmt.Errorf("dsar: timeline: %w", err)
		}
		e.At = e.At.UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// RevealIdentities returns the identity values of a request, for staff
// working a manual task. Every reveal is an audit event.
func (s *Service) RevealIdentities(ctx context.Context, id, actor string) ([]string, error) {
	var out []string
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := s.lock(ctx, tx, id); err != nil {
			return err
		}
		found, err := s.identities(ctx, tx, id)
		if err != nil {
			return err
		}
		for _, f := range found {
			out = append(out, f.subj.String())
		}
		return s.event(ctx, tx, id, "identities_revealed", "", "", actor, "", map[string]any{"count": len(out)})
	})
	return out, err
}

// reasonRequired checks a staff member's reason. A denial's or an
// extension's reason is emailed to the person, whose templates refuse
// control characters (they could forge lines or terminal escapes): it is
// refused here, as the field it is, rather than failing the email after
// the request moved.
func reasonRequired(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return "", apperr.Field("reason", "required")
	}
	if len(reason) > 2000 {
		return "", apperr.Field("reason", "at most 2000 characters")
	}
	for _, r := range reason {
		if unicode.IsControl(r) && r != '\n' && r != '\t' && r != '\r' {
			return "", apperr.Field("reason", "no control characters other than line breaks and tabs")
		}
	}
	return reason, nil
}

// act runs fn on the request, locked, in one transaction, and returns the
// request as fn left it: every staff action goes through its row lock.
func (s *Service) act(ctx context.Context, id string, fn func(tx pgx.Tx, r *Request) error) (Request, error) {
	var r Request
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		if r, err = s.lock(ctx, tx, id); err != nil {
			return err
		}
		return fn(tx, &r)
	})
	return r, err
}

// Approve lets an awaiting request run. An authorized agent's request
// whose signed authorization was uploaded is approved only after someone
// opened the document: the review the policy asks for (approval_agent) is
// of that document.
func (s *Service) Approve(ctx context.Context, id, actor, note string) (Request, error) {
	return s.act(ctx, id, func(tx pgx.Tx, r *Request) error {
		if r.Channel == ChannelAgent && r.Status == AwaitingApproval {
			var unread bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM privacy_request_documents WHERE request_id = $1)
				AND NOT EXISTS (SELECT 1 FROM privacy_request_events WHERE request_id = $1 AND event = 'document_opened')`, r.ID).Scan(&unread); err != nil {
				return fmt.Errorf("dsar: check the agent's authorization was reviewed: %w", err)
			}
			if unread {
				return apperr.New(apperr.Conflict, "open and check the agent's signed authorization (documents/agent_authorization) before approving")
			}
		}
		if err := s.move(ctx, tx, r, Approve, actor, note, nil); err != nil {
			return err
		}
		return s.start(ctx, tx, r)
	})
}

// authorityByRegime names where a person can complain, for denial notices.
var authorityByRegime = map[string]string{
	"gdpr":     "the data protection supervisory authority of the EU/EEA country where you live, work or where the alleged infringement took place",
	"uk_gdpr":  "the Information Commissioner's Office (ico.org.uk)",
	"lgpd":     "the Autoridade Nacional de Proteção de Dados (ANPD)",
	"ccpa":     "the California Privacy Protection Agency (cppa.ca.gov) or the California Attorney General",
	"us_state": "your state's Attorney General",
	"vcdpa":    "the Virginia Attorney General",
	"cpa":      "the Colorado Attorney General",
}

// Deny refuses a request with a reason the person receives, together with
// their right to complain to a supervisory authority.
func (s *Service) Deny(ctx context.Context, id, actor, reason string) (Request, error) {
	reason, err := reasonRequired(reason)
	if err != nil {
		return Request{}, err
	}
	return s.act(ctx, id, func(tx pgx.Tx, r *Request) error {
		if err := s.move(ctx, tx, r, Deny, actor, reason, nil); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE privacy_requests SET deny_reason = $2 WHERE id = $1`, id, reason); err != nil {
			return fmt.Errorf("dsar: record denial: %w", err)
		}
		r.DenyReason = reason
		authority := authorityByRegime[r.Regime]
		if authority == "" {
			authority = "the data protection authority where you live"
		}
		return s.notifyPerson(ctx, tx, r, notify.TemplateRequestDenied, map[string]string{"reason": reason, "authority": authority})
	})
}

// Extend moves the due date to the latest the regime allows, with a reason
// the person receives; only once, and only while the person can still be
// told in time (within the first period for the GDPR).
func (s *Service) Extend(ctx context.Context, id, actor, reason string) (Request, error) {
	reason, err := reasonRequired(reason)
	if err != nil {
		return Request{}, err
	}
	return s.act(ctx, id, func(tx pgx.Tx, r *Request) error {
		now := s.Clock.Now()
		switch {
		case r.Status.Final():
			return apperr.New(apperr.Conflict, "cannot extend a request that is %s", r.Status)
		case r.Extended:
			return apperr.New(apperr.Conflict, "this request was already extended; the regime allows one extension")
		case r.ExtendableUntil == nil:
			return apperr.New(apperr.Conflict, "the %s regime allows no extension for a %s request", r.Regime, r.Type)
		case r.ExtendNoticeBy != nil && now.After(*r.ExtendNoticeBy):
			return apperr.New(apperr.Conflict, "too late to extend: the person had to be told by %s", r.ExtendNoticeBy.UTC().Format(time.RFC3339))
		}
		if _, err := tx.Exec(ctx, `
			UPDATE privacy_requests SET due_at = extendable_until, extended_at = $2, extension_reason = $3, updated_at = $2
			WHERE id = $1`, id, now, reason); err != nil {
			return fmt.Errorf("dsar: extend: %w", err)
		}
		r.DueAt, r.Extended, r.ExtensionReason = r.ExtendableUntil.UTC(), true, reason
		// The staff reminders restart against the new date.
		if _, err := tx.Exec(ctx, `DELETE FROM privacy_request_reminders WHERE request_id = $1`, id); err != nil {
			return fmt.Errorf("dsar: reset reminders: %w", err)
		}
		if err := s.event(ctx, tx, id, "extended", "", "", actor, reason, map[string]any{"due_at": r.DueAt.Format(time.RFC3339)}); err != nil {
			return err
		}
		return s.notifyPerson(ctx, tx, r, notify.TemplateRequestExtended, map[string]string{"reason": reason, "new_due_date": r.DueAt.Format("2006-01-02")})
	})
}

// Cancel withdraws a request; its tasks that have not ended are canceled
// and their jobs find nothing to do.
func (s *Service) Cancel(ctx context.Context, id, actor, reason string) (Request, error) {
	reason, err := reasonRequired(reason)
	if err != nil {
		return Request{}, err
	}
	return s.act(ctx, id, func(tx pgx.Tx, r *Request) error {
		return s.cancel(ctx, tx, r, actor, reason)
	})
}

// cancel moves the locked request to canceled inside tx and cancels its
// tasks that have not ended; staff and the person withdraw alike.
func (s *Service) cancel(ctx context.Context, tx pgx.Tx, r *Request, actor, reason string) error {
	if err := s.move(ctx, tx, r, Cancel, actor, reason, nil); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `
		UPDATE privacy_request_tasks SET status = 'canceled', finished_at = $2
		WHERE request_id = $1 AND status IN ('pending', 'running')`, r.ID, s.Clock.Now()); err != nil {
		return fmt.Errorf("dsar: cancel tasks: %w", err)
	}
	_, err := tx.Exec(ctx, `DELETE FROM verification_codes WHERE request_id = $1`, r.ID)
	return err
}

// Pause holds a request (waiting for information from the person, say).
// Running tasks finish; nothing new starts until Resume.
func (s *Service) Pause(ctx context.Context, id, actor, reason string) (Request, error) {
	reason, err := reasonRequired(reason)
	if err != nil {
		return Request{}, err
	}
	return s.act(ctx, id, func(tx pgx.Tx, r *Request) error {
		return s.move(ctx, tx, r, Pause, actor, reason, nil)
	})
}

// Resume returns a paused request to where it was and requeues what the
// pause held back, under a new run number so a job from before the pause
// cannot act too.
func (s *Service) Resume(ctx context.Context, id, actor string) (Request, error) {
	return s.act(ctx, id, func(tx pgx.Tx, r *Request) error {
		if err := s.move(ctx, tx, r, Resume, actor, "", nil); err != nil {
			return err
		}
		switch {
		case r.Status == Verified && r.PlannedAt == nil:
			r.planRun++
			if _, err := tx.Exec(ctx, `UPDATE privacy_requests SET plan_run = $2 WHERE id = $1`, id, r.planRun); err != nil {
				return fmt.Errorf("dsar: bump plan run: %w", err)
			}
			return s.enqueuePlan(ctx, tx, id, r.planRun)
		case r.Status == InProgress || r.Status == Failed:
			if err := s.requeuePending(ctx, tx, id); err != nil {
				return err
			}
			// Resuming an access request that found nothing confirms it.
			if err := s.confirmNothingFound(ctx, tx, r, actor); err != nil {
				return err
			}
			// Tasks that ended during the pause moved nothing (the request
			// was not in progress): settle what they left, or no later
			// event would ever complete or fail the request.
			return s.checkCompletion(ctx, tx, r)
		}
		return nil
	})
}

// MaxAddedIdentities bounds the identities staff add in one re-plan.
const MaxAddedIdentities = 10

// Replan plans a request again, from the policy bundle and data map
// current now, and runs only what is left. It serves two cases:
//
//   - a failed request (or one in progress with a failed task, or paused
//     after failing), of any type: typically a task failed permanently
//     because the data map named something the system does not have, and
//     the map has since been fixed, so retrying the task under its stored
//     plan would fail again;
//   - a paused access or export request that found nothing (paused by the
//     engine with NothingFoundReason): staff add the identity the person's
//     data is really under (a corrected typo, the other email address), or
//     search again as it is after a connector or the map was fixed.
//
// The identities of a request stay pinned to it: the ones the person gave,
// the ones staff add here (source "staff:<actor>") and every one resolved
// by an earlier plan are all kept, and the new plan resolves from all of
// them. (After a half-done erasure, the address that led to the user id may
// be gone from the system; the user id found the first time still reaches
// the rest.)
//
// The request goes back to verified and the planning job builds the next
// plan revision (Plan.Revision), which goes through the workflow again: a
// reviewer approves an erasure's new plan before it runs. When it is stored
// the old tasks are merged with it (see mergePlan): a task that already
// succeeded for the same system and dataset with the same operation and
// fields is kept and not run again (unless it is an access task, an
// automated erasure that did not verify its result, or the request now
// knows more identities than when it ran); every other task of the new
// plan runs, replacing the old one for its system and dataset; failed and
// pending tasks the new plan no longer has go. Connectors are idempotent,
// so running a task again over what the first run changed is safe: it
// finishes, and verifies, what was half done.
//
// The re-plan is audited (event "replan": who, why, the plan and policy
// revisions it replaces, the kinds of identity added, never their values),
// and so is the new plan (event "replanned": old and new plan and policy
// revisions, who asked, which tasks were kept, run again, added, dropped).
// A closed request (completed, denied, canceled), one not planned yet, one
// with a task still running, and an access request that has already
// disclosed records while not failed, are refused with a conflict.
func (s *Service) Replan(ctx context.Context, id, actor, note string, add []identity.Subject) (Request, error) {
	note = strings.TrimSpace(note)
	if len(note) > 2000 {
		return Request{}, apperr.Field("note", "at most 2000 characters")
	}
	if len(add) > MaxAddedIdentities {
		return Request{}, apperr.Field("identities", "at most %d", MaxAddedIdentities)
	}
	return s.act(ctx, id, func(tx pgx.Tx, r *Request) error {
		if err := s.replannable(ctx, tx, r); err != nil {
			return err
		}
		var running int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM privacy_request_tasks WHERE request_id = $1 AND status = 'running'`, id).Scan(&running); err != nil {
			return fmt.Errorf("dsar: count running tasks: %w", err)
		}
		if running > 0 {
			return apperr.New(apperr.Conflict, "a task is still running; plan again once it has ended")
		}
		prev, err := s.storedPlan(ctx, tx, id)
		if err != nil {
			return err
		}
		kinds := make([]string, 0, len(add))
		for _, subj := range add {
			if err := s.storeIdentity(ctx, tx, id, subj, SourceStaff+actor); err != nil {
				return err
			}
			kinds = append(kinds, subj.Kind())
		}
		// The identities resolved before stay: they are pinned to the
		// request, and the new plan resolves from them as well.
		r.planRun++
		if _, err := tx.Exec(ctx, `
			UPDATE privacy_requests SET planned_at = NULL, plan_error = NULL, failure_reason = NULL,
			       approval_required = NULL, approval_rule = NULL, plan_run = $2
			WHERE id = $1`, id, r.planRun); err != nil {
			return fmt.Errorf("dsar: clear the plan: %w", err)
		}
		r.PlannedAt, r.PlanError, r.FailureReason, r.ApprovalRequired, r.ApprovalRule = nil, "", "", nil, ""
		det := map[string]any{"added_identity_kinds": uniqueSorted(kinds)}
		if prev != nil {
			det["plan_revision"] = max(prev.Revision, 1)
			det["policy_revision"] = prev.PolicyRevision
		}
		if err := s.move(ctx, tx, r, Replan, actor, note, det); err != nil {
			return err
		}
		return s.enqueuePlan(ctx, tx, id, r.planRun)
	})
}

// replannable refuses, with a message staff can act on, a request Replan
// cannot plan again.
func (s *Service) replannable(ctx context.Context, tx pgx.Tx, r *Request) error {
	status := strings.ReplaceAll(string(r.Status), "_", " ")
	if r.Status.Final() {
		return apperr.New(apperr.Conflict, "a %s request cannot be planned again: it is closed (open a new request instead)", status)
	}
	if r.PlannedAt == nil {
		switch {
		case r.Status == Paused:
			return apperr.New(apperr.Conflict, "this request has not been planned yet: resume it instead")
		case r.PlanError != "":
			return apperr.New(apperr.Conflict, "this request has not been planned yet: retry planning instead")
		}
		return apperr.New(apperr.Conflict, "this request has not been planned yet (it is %s)", status)
	}
	switch r.Status {
	case Failed:
		return nil
	case InProgress:
		var failed int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM privacy_request_tasks WHERE request_id = $1 AND status = 'failed'`, r.ID).Scan(&failed); err != nil {
			return fmt.Errorf("dsar: count failed tasks: %w", err)
		}
		if failed == 0 {
			return apperr.New(apperr.Conflict, "no task of this request has failed: only a failed request, or a paused access or export request that found nothing, can be planned again")
		}
		return nil
	case Paused:
		if r.PausedFrom == Failed {
			return nil
		}
		if r.Type != "access" && r.Type != "export" {
			return apperr.New(apperr.Conflict, "only a failed %s request can be planned again (this one is paused from %s)", r.Type, strings.ReplaceAll(string(r.PausedFrom), "_", " "))
		}
		n, err := disclosedCount(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if n > 0 {
			return apperr.New(apperr.Conflict, "this request has already found records; planning again would discard them")
		}
		return nil
	}
	return apperr.New(apperr.Conflict, "only a failed request, or a paused access or export request that found nothing, can be planned again (this one is %s)", status)
}

// storedPlan reads the request's current plan; nil when it has none.
func (s *Service) storedPlan(ctx context.Context, tx pgx.Tx, id string) (*Plan, error) {
	var b []byte
	if err := tx.QueryRow(ctx, `SELECT plan FROM privacy_requests WHERE id = $1`, id).Scan(&b); err != nil {
		return nil, fmt.Errorf("dsar: load plan: %w", err)
	}
	if b == nil {
		return nil, nil
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("dsar: decode plan: %w", err)
	}
	return &p, nil
}

// requeuePending gives every automated task that has not ended a new run
// (so a job from before the pause cannot act too) and queues those whose
// predecessors have all succeeded; the others stay pending until released.
func (s *Service) requeuePending(ctx context.Context, tx pgx.Tx, id string) error {
	if _, err := tx.Exec(ctx, `
		UPDATE privacy_request_tasks SET run = run + 1, status = 'pending'
		WHERE request_id = $1 AND mode = 'automated' AND status IN ('pending', 'running')`, id); err != nil {
		return fmt.Errorf("dsar: requeue tasks: %w", err)
	}
	return s.enqueueReady(ctx, tx, id, readyFilter{})
}

// RetryTask runs a failed task again (a new run), and a failed request is
// back in progress.
func (s *Service) RetryTask(ctx context.Context, id, taskID, actor string) (Request, error) {
	if !ValidID(taskID) {
		return Request{}, apperr.New(apperr.NotFound, "no such task")
	}
	return s.act(ctx, id, func(tx pgx.Tx, r *Request) error {
		var err error
		var status, mode string
		var run int
		err = tx.QueryRow(ctx, `SELECT status, mode, run FROM privacy_request_tasks WHERE id = $1 AND request_id = $2`, taskID, id).Scan(&status, &mode, &run)
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.New(apperr.NotFound, "no such task")
		}
		if err != nil {
			return fmt.Errorf("dsar: load task: %w", err)
		}
		if status != TaskFailed {
			return apperr.New(apperr.Conflict, "only a failed task can be retried (this one is %s)", status)
		}
		if r.Status != Failed && r.Status != InProgress {
			return apperr.New(apperr.Conflict, "cannot retry a task of a request that is %s", strings.ReplaceAll(string(r.Status), "_", " "))
		}
		if _, err := tx.Exec(ctx, `
			UPDATE privacy_request_tasks SET status = 'pending', run = run + 1, attempts = 0, error = NULL, result = NULL, finished_at = NULL,
			       review_acknowledged_at = NULL, review_acknowledged_by = NULL, review_note = NULL
			WHERE id = $1`, taskID); err != nil {
			return fmt.Errorf("dsar: reset task: %w", err)
		}
		if err := s.event(ctx, tx, id, "task_retried", "", "", actor, "", map[string]any{"task_id": taskID, "run": run + 1}); err != nil {
			return err
		}
		if r.Status == Failed {
			// Only back in progress when no other task is still failed.
			var failed int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM privacy_request_tasks WHERE request_id = $1 AND status = 'failed'`, id).Scan(&failed); err != nil {
				return err
			}
			if failed == 0 {
				if err := s.move(ctx, tx, r, Retry, actor, "", nil); err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `UPDATE privacy_requests SET failure_reason = NULL WHERE id = $1`, id); err != nil {
					return err
				}
				r.FailureReason = ""
			}
		}
		if mode == ModeAutomated {
			// Queued only if what it waits for has succeeded (it has: the
			// task ran), never ahead of the erase order.
			return s.enqueueReady(ctx, tx, id, readyFilter{taskID: taskID})
		}
		return nil
	})
}

// RetryPlan plans a verified request again after planning failed.
func (s *Service) RetryPlan(ctx context.Context, id, actor string) (Request, error) {
	return s.act(ctx, id, func(tx pgx.Tx, r *Request) error {
		if r.Status != Verified || r.PlannedAt != nil || r.PlanError == "" {
			return apperr.New(apperr.Conflict, "planning can only be retried for a verified request whose planning failed")
		}
		r.planRun++
		if _, err := tx.Exec(ctx, `UPDATE privacy_requests SET plan_run = $2, plan_error = NULL WHERE id = $1`, id, r.planRun); err != nil {
			return fmt.Errorf("dsar: bump plan run: %w", err)
		}
		r.PlanError = ""
		if err := s.event(ctx, tx, id, "planning_retried", "", "", actor, "", nil); err != nil {
			return err
		}
		return s.enqueuePlan(ctx, tx, id, r.planRun)
	})
}

// CompleteManualTask records that staff did a manual task, with a note of
// what was done.
func (s *Service) CompleteManualTask(ctx context.Context, id, taskID, actor, note string) (Request, error) {
	note, err := reasonRequired(note)
	if err != nil {
		return Request{}, apperr.Field("note", "required: what was done")
	}
	if !ValidID(taskID) {
		return Request{}, apperr.New(apperr.NotFound, "no such task")
	}
	return s.act(ctx, id, func(tx pgx.Tx, r *Request) error {
		var err error
		if r.Status != InProgress && r.Status != Failed {
			return apperr.New(apperr.Conflict, "cannot complete a task of a request that is %s", strings.ReplaceAll(string(r.Status), "_", " "))
		}
		var mode, status, system string
		var seq int
		err = tx.QueryRow(ctx, `SELECT mode, status, system, seq FROM privacy_request_tasks WHERE id = $1 AND request_id = $2 FOR UPDATE`, taskID, id).Scan(&mode, &status, &system, &seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.New(apperr.NotFound, "no such task")
		}
		if err != nil {
			return fmt.Errorf("dsar: load task: %w", err)
		}
		if mode != ModeManual {
			return apperr.New(apperr.Conflict, "this task is automated; retry it instead")
		}
		if status != TaskPending {
			return apperr.New(apperr.Conflict, "this task is already %s", status)
		}
		now := s.Clock.Now()
		if _, err := tx.Exec(ctx, `
			UPDATE privacy_request_tasks SET status = 'succeeded', completed_by = $2, note = $3, started_at = $4, finished_at = $4
			WHERE id = $1`, taskID, actor, note, now); err != nil {
			return fmt.Errorf("dsar: complete task: %w", err)
		}
		if err := s.event(ctx, tx, id, "manual_task_completed", "", "", actor, note, map[string]any{"task_id": taskID, "system": system}); err != nil {
			return err
		}
		// A task a connector handed to staff may have dependents (a
		// parent table's erase waits for its children): release them.
		if err := s.enqueueReady(ctx, tx, id, readyFilter{dependentsOf: seq}); err != nil {
			return err
		}
		return s.checkCompletion(ctx, tx, r)
	})
}
