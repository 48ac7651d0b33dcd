package dsar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/notify"
)

// TaskArgs is the durable job that runs one task. Run is the task's run
// number: a staff retry or a resume bumps it, and a job for an older run
// does nothing, so no task is ever acted on by two live jobs.
type TaskArgs struct {
	RequestID string `json:"request_id"`
	TaskID    string `json:"task_id"`
	Run       int    `json:"run"`
}

// Kind is River's job kind.
func (TaskArgs) Kind() string { return "dsar.task" }

// InsertOpts makes the job unique per (request, task, run).
func (TaskArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// start moves an approved request to in_progress and queues every
// automated task that waits for no other (an erasure's children first; the
// rest are released as their predecessors succeed); manual tasks wait for
// staff. A request with nothing to do completes at once.
func (s *Service) start(ctx context.Context, tx pgx.Tx, r *Request) error {
	if err := s.move(ctx, tx, r, Start, actorSystem, "", nil); err != nil {
		return err
	}
	if err := s.enqueueReady(ctx, tx, r.ID, readyFilter{}); err != nil {
		return err
	}
	if r.Type == "objection" {
		// Direct marketing stops at once, whatever the connectors' tasks
		// still have to do (GDPR Art. 21(3)).
		if err := s.queueLedger(ctx, tx, r, ledgerWithdrawMarketing); err != nil {
			return err
		}
	}
	return s.checkCompletion(ctx, tx, r)
}

type taskWorker struct {
	river.WorkerDefaults[TaskArgs]
	s *Service
}

func (w *taskWorker) Work(ctx context.Context, job *river.Job[TaskArgs]) error {
	return w.s.runTask(ctx, job.Args, job.Attempt >= job.MaxAttempts)
}

// claimed is a task a job is allowed to run.
type claimed struct {
	system, dataset, operation string
	fields                     []connectors.FieldPlan
}

var errPaused = errors.New("request paused: the task runs again on resume")

// claim marks the task running for this run. A job for another run, for a
// task already ended, or for a request canceled or paused finds nothing to
// do. A task already running is claimed again: one job exists per (task,
// run) (TaskArgs is unique), and it runs again only when River retries it
// or when its worker died and another replica took it over once its lease
// lapsed (internal/jobs) — never while the first worker still holds it.
func (s *Service) claim(ctx context.Context, a TaskArgs) (claimed, bool, error) {
	var c claimed
	ok := false
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var status string
		if err := tx.QueryRow(ctx, `SELECT status FROM privacy_requests WHERE id = $1`, a.RequestID).Scan(&status); err != nil {
			return fmt.Errorf("dsar: load request: %w", err)
		}
		switch Status(status) {
		case InProgress, Failed:
		case Paused:
			return errPaused
		default:
			return nil
		}
		var fields []byte
		err := tx.QueryRow(ctx, `
			UPDATE privacy_request_tasks SET status = 'running', attempts = attempts + 1, started_at = coalesce(started_at, $3)
			WHERE id = $1 AND run = $2 AND mode = 'automated' AND status IN ('pending', 'running')
			RETURNING system, dataset, operation, fields`, a.TaskID, a.Run, s.Clock.Now()).Scan(&c.system, &c.dataset, &c.operation, &fields)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("dsar: claim task: %w", err)
		}
		if err := json.Unmarshal(fields, &c.fields); err != nil {
			return fmt.Errorf("dsar: task fields: %w", err)
		}
		ok = true
		return nil
	})
	return c, ok, err
}

// runTask performs one task through its connector. Execution is at least
// once (a worker can die after the effect and before recording it), so the
// connector gets an idempotency key stable across every retry of this run,
// and connectors make a repeated call a no-op.
func (s *Service) runTask(ctx context.Context, a TaskArgs, lastAttempt bool) error {
	c, ok, err := s.claim(ctx, a)
	if errors.Is(err, errPaused) {
		return river.JobCancel(err)
	}
	if err != nil || !ok {
		return err
	}
	conn := s.Connectors[c.system]
	if conn == nil {
		return s.finishTask(ctx, nil, a, TaskFailed, nil, "no connector is configured for "+c.system+" any more", nil)
	}
	var ids []connectors.Identity
	if err := s.tx(ctx, func(tx pgx.Tx) error {
		found, err := s.identities(ctx, tx, a.RequestID)
		for _, f := range found {
			ids = append(ids, connectors.IdentityOf(f.subj))
		}
		return err
	}); err != nil {
		return err
	}
	target := connectors.Target{System: c.system, Dataset: c.dataset, Identities: ids, RequestID: a.RequestID,
		IdempotencyKey: a.TaskID + ":" + strconv.Itoa(a.Run)}

	var result any
	var opErr error
	switch c.operation {
	case OpAccess:
		// Records are stored in the transaction that marks the task done:
		// both or neither, and a retry starts from a clean slate.
		tx, err := s.Pool.Begin(ctx)
		if err != nil {
			return fmt.Errorf("dsar: begin: %w", err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
		if _, err := tx.Exec(ctx, `DELETE FROM privacy_request_records WHERE task_id = $1`, a.TaskID); err != nil {
			return fmt.Errorf("dsar: clear records: %w", err)
		}
		if err := s.clearFiles(ctx, tx, a.RequestID, a.TaskID); err != nil {
			return err
		}
		sink := &recordSink{s: s, tx: tx, requestID: a.RequestID, taskID: a.TaskID, run: a.Run}
		res, err := conn.Access(ctx, connectors.AccessParams{Target: target, Fields: c.fields}, sink)
		if err == nil {
			res.Review = cleanReview(res.Review)
			return s.finishTask(ctx, tx, a, TaskSucceeded, res, "", map[string]any{"records": res.Records, "files": res.Files})
		}
		_ = tx.Rollback(ctx)
		opErr = err
	case OpErase:
		var res connectors.EraseResult
		res, opErr = conn.Erase(ctx, connectors.EraseParams{Target: target, Fields: c.fields})
		res.Review = cleanReview(res.Review)
		result = res
		if opErr == nil && res.Manual != "" {
			return s.handOver(ctx, a, res)
		}
	case OpRectify:
		var res connectors.RectifyResult
		changes, err := s.rectifyChanges(ctx, a.RequestID, c.fields)
		if err != nil {
			return err
		}
		res, opErr = conn.Rectify(ctx, connectors.RectifyParams{Target: target, Changes: changes})
		result = res
	case OpRestrict:
		var res connectors.RestrictResult
		res, opErr = conn.Restrict(ctx, connectors.RestrictParams{Target: target, Restricted: true})
		result = res
	default:
		return s.finishTask(ctx, nil, a, TaskFailed, nil, "unknown operation "+c.operation, nil)
	}
	if opErr == nil {
		return s.finishTask(ctx, nil, a, TaskSucceeded, result, "", nil)
	}
	if ctx.Err() != nil {
		// Shutting down or timed out: River retries the job.
		return opErr
	}
	retry, after := connectors.Classify(opErr)
	msg := truncate(opErr.Error(), 500)
	if retry && !lastAttempt {
		if _, err := s.Pool.Exec(ctx, `UPDATE privacy_request_tasks SET error = $3 WHERE id = $1 AND run = $2`, a.TaskID, a.Run, msg); err != nil {
			s.Log.WarnContext(ctx, "recording a task's retryable error failed", "err", err)
		}
		s.Log.WarnContext(ctx, "task failed; will retry", "request_id", a.RequestID, "task_id", a.TaskID, "system", c.system, "err", msg)
		if after > 0 {
			return river.JobSnooze(after)
		}
		return opErr
	}
	return s.finishTask(ctx, nil, a, TaskFailed, nil, msg, nil)
}

// rectifyChanges maps the request's corrections (by category) onto the
// task's fields.
func (s *Service) rectifyChanges(ctx context.Context, requestID string, fields []connectors.FieldPlan) (map[string]string, error) {
	var d details
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		d, err = s.details(ctx, tx, requestID)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, f := range fields {
		if v, ok := d.Changes[f.Category]; ok {
			out[f.Field] = v
		}
	}
	return out, nil
}

// handOver turns a running erase task into a manual one: the connector
// found the subject's records but cannot erase them itself (a processor
// without a deletion API) and said exactly what staff must ask for. The
// task waits for staff like any manual task; the request cannot complete
// before they confirm, so an erasure is never reported done while the
// records are still at the processor.
func (s *Service) handOver(ctx context.Context, a TaskArgs, res connectors.EraseResult) error {
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("dsar: encode result: %w", err)
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		r, err := s.lock(ctx, tx, a.RequestID)
		if err != nil {
			return err
		}
		var system, dataset string
		err = tx.QueryRow(ctx, `
			UPDATE privacy_request_tasks SET mode = 'manual', status = 'pending', instructions = $3, result = $4, error = NULL
			WHERE id = $1 AND run = $2 AND status = 'running'
			RETURNING system, dataset`, a.TaskID, a.Run, truncate(res.Manual, 8000), b).Scan(&system, &dataset)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // another run owns it now, or the request was canceled
		}
		if err != nil {
			return fmt.Errorf("dsar: hand task to staff: %w", err)
		}
		if err := s.event(ctx, tx, r.ID, "task_handed_to_staff", "", "", actorSystem, "",
			map[string]any{"task_id": a.TaskID, "system": system, "dataset": dataset, "run": a.Run}); err != nil {
			return err
		}
		return s.reviewFound(ctx, tx, r.ID, a.TaskID, system, dataset, OpErase, a.Run, res.Review)
	})
}

// finishTask records a task's end and moves the request on, in one
// transaction holding the request's row lock: tasks of one request finish
// one at a time, so exactly one of them sees the last one end, and exactly
// one releases a task waiting for several. tx may already hold the task's
// records; nil starts a new transaction.
func (s *Service) finishTask(ctx context.Context, tx pgx.Tx, a TaskArgs, status string, result any, errMsg string, extra map[string]any) error {
	if tx == nil {
		var err error
		if tx, err = s.Pool.Begin(ctx); err != nil {
			return fmt.Errorf("dsar: begin: %w", err)
		}
		defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	}
	r, err := s.lock(ctx, tx, a.RequestID)
	if err != nil {
		return err
	}
	var res []byte
	if result != nil {
		if res, err = json.Marshal(result); err != nil {
			return fmt.Errorf("dsar: encode result: %w", err)
		}
	}
	var errp *string
	if errMsg != "" {
		errp = &errMsg
	}
	var system, dataset, op string
	var seq int
	err = tx.QueryRow(ctx, `
		UPDATE privacy_request_tasks SET status = $3, result = $4, error = $5, finished_at = $6,
		       review_acknowledged_at = NULL, review_acknowledged_by = NULL, review_note = NULL
		WHERE id = $1 AND run = $2 AND status = 'running'
		RETURNING seq, system, dataset, operation`, a.TaskID, a.Run, status, res, errp, s.Clock.Now()).Scan(&seq, &system, &dataset, &op)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // another run owns it now, or the request was canceled
	}
	if err != nil {
		return fmt.Errorf("dsar: finish task: %w", err)
	}
	det := map[string]any{"task_id": a.TaskID, "system": system, "dataset": dataset, "operation": op, "run": a.Run}
	for k, v := range extra {
		det[k] = v
	}
	var review struct {
		Review []connectors.Review `json:"review"`
	}
	if result != nil {
		var counts map[string]any
		if json.Unmarshal(res, &counts) == nil {
			for _, k := range []string{"records", "files", "bytes", "deleted", "masked", "updated", "restricted"} {
				if v, ok := counts[k]; ok {
					det[k] = v
				}
			}
		}
		_ = json.Unmarshal(res, &review) // the result was encoded just above
		if len(review.Review) > 0 {
			det["review_items"] = len(review.Review)
		}
	}
	ev := "task_succeeded"
	if status == TaskFailed {
		ev = "task_failed"
	}
	if err := s.event(ctx, tx, r.ID, ev, "", "", actorSystem, errMsg, det); err != nil {
		return err
	}
	if status == TaskSucceeded {
		if err := s.reviewFound(ctx, tx, r.ID, a.TaskID, system, dataset, op, a.Run, review.Review); err != nil {
			return err
		}
	}
	// A success releases the tasks that waited for it. Not while paused:
	// Resume queues what is ready then. A failure releases nothing, and
	// checkCompletion fails the request, so its dependents cannot hang.
	if status == TaskSucceeded && (r.Status == InProgress || r.Status == Failed) {
		if err := s.enqueueReady(ctx, tx, r.ID, readyFilter{dependentsOf: seq}); err != nil {
			return err
		}
	}
	if err := s.checkCompletion(ctx, tx, &r); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("dsar: commit: %w", err)
	}
	return nil
}

// checkCompletion settles an in-progress request: it fails when a task has
// failed (the tasks waiting for that one would otherwise wait forever), and
// completes, telling the person, when every task has succeeded (or was
// canceled).
func (s *Service) checkCompletion(ctx context.Context, tx pgx.Tx, r *Request) error {
	if r.Status != InProgress {
		return nil
	}
	if failed, err := s.failForTask(ctx, tx, r); failed || err != nil {
		return err
	}
	var open int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM privacy_request_tasks WHERE request_id = $1 AND status NOT IN ('succeeded', 'canceled')`, r.ID).Scan(&open); err != nil {
		return fmt.Errorf("dsar: count open tasks: %w", err)
	}
	if open > 0 {
		return nil
	}
	if s.wantsPackage(r) {
		if paused, err := s.pauseIfNothingFound(ctx, tx, r); paused || err != nil {
			return err
		}
		return s.queuePackage(ctx, tx, r)
	}
	var data map[string]string
	if r.Type == "erasure" {
		if paused, err := s.pauseIfNothingErased(ctx, tx, r); paused || err != nil {
			return err
		}
		// Records left for staff review were not erased: the person is
		// told so, in plain words.
		n, _, err := reviewRecords(ctx, tx, r.ID, OpErase)
		if err != nil {
			return err
		}
		if n > 0 {
			data = map[string]string{"summary": reviewSummary(r.Language, n)}
		}
		if err := s.forgetConsent(ctx, tx, r); err != nil {
			return err
		}
	}
	if r.Type == "restriction" {
		// Connectors flag the rows they can; the consent check answers
		// "restricted" for the whole person from Steward's own record.
		if err := s.queueLedger(ctx, tx, r, ledgerRestrict); err != nil {
			return err
		}
	}
	if err := s.notifyRecipients(ctx, tx, r); err != nil {
		return err
	}
	return s.complete(ctx, tx, r, data)
}

// failForTask fails the request, naming its first failed task, if it has
// one; staff see why and retry.
func (s *Service) failForTask(ctx context.Context, tx pgx.Tx, r *Request) (bool, error) {
	var system, dataset, op, msg string
	err := tx.QueryRow(ctx, `
		SELECT system, dataset, operation, coalesce(error, '') FROM privacy_request_tasks
		WHERE request_id = $1 AND status = 'failed' ORDER BY seq LIMIT 1`, r.ID).Scan(&system, &dataset, &op, &msg)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("dsar: find failed task: %w", err)
	}
	reason := fmt.Sprintf("task %s/%s (%s) failed: %s", system, dataset, op, msg)
	if _, err := tx.Exec(ctx, `UPDATE privacy_requests SET failure_reason = $2 WHERE id = $1`, r.ID, truncate(reason, 1000)); err != nil {
		return false, fmt.Errorf("dsar: record failure: %w", err)
	}
	r.FailureReason = reason
	return true, s.move(ctx, tx, r, Fail, actorSystem, reason, nil)
}

// recordSink stores what Access discloses, each record sealed on its own.
type recordSink struct {
	s         *Service
	tx        pgx.Tx
	requestID string
	taskID    string
	run       int
	seq       int
	fseq      int
}

func (k *recordSink) Record(ctx context.Context, r connectors.Record) error {
	k.seq++
	kid, ct, err := k.s.seal(k.requestID, "record:"+k.taskID+":"+strconv.Itoa(k.seq), r)
	if err != nil {
		return fmt.Errorf("dsar: seal record: %w", err)
	}
	if _, err := k.tx.Exec(ctx, `INSERT INTO privacy_request_records (task_id, seq, kid, ciphertext) VALUES ($1, $2, $3, $4)`, k.taskID, k.seq, kid, ct); err != nil {
		return fmt.Errorf("dsar: store record: %w", err)
	}
	return nil
}

// File stores a disclosed file in the file store (see files.go).
func (k *recordSink) File(ctx context.Context, f connectors.File, content io.Reader) error {
	if k.s.Files == nil {
		// Refuse rather than drop part of a person's data.
		return connectors.Permanent(errors.New("this deployment has no file store for disclosed files (STEWARD_FILE_STORE)"))
	}
	k.fseq++
	return k.s.storeFile(ctx, k.tx, k.requestID, k.taskID, k.run, k.fseq, f, content)
}

// Records opens what the access tasks of a request disclosed, in task and
// record order.
func (s *Service) Records(ctx context.Context, requestID string) ([]connectors.Record, error) {
	recs, err := s.DisclosedRecords(ctx, requestID)
	out := make([]connectors.Record, len(recs))
	for i, r := range recs {
		out[i] = r.Record
	}
	return out, err
}

// DisclosedRecord is a disclosed record and the system it came from.
type DisclosedRecord struct {
	System string `json:"system"`
	connectors.Record
}

// DisclosedRecords opens what the access tasks of a request disclosed,
// with each record's system, in task and record order.
func (s *Service) DisclosedRecords(ctx context.Context, requestID string) ([]DisclosedRecord, error) {
	var out []DisclosedRecord
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT r.task_id::text, t.system, r.seq, r.kid, r.ciphertext FROM privacy_request_records r
			JOIN privacy_request_tasks t ON t.id = r.task_id
			WHERE t.request_id = $1 ORDER BY t.seq, r.seq`, requestID)
		if err != nil {
			return fmt.Errorf("dsar: load records: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var taskID, system, kid string
			var seq int
			var ct []byte
			if err := rows.Scan(&taskID, &system, &seq, &kid, &ct); err != nil {
				return err
			}
			rec := DisclosedRecord{System: system}
			if err := s.open(requestID, "record:"+taskID+":"+strconv.Itoa(seq), kid, ct, &rec.Record); err != nil {
				return fmt.Errorf("dsar: open record: %w", err)
			}
			out = append(out, rec)
		}
		return rows.Err()
	})
	return out, err
}

// notifyPerson queues, in tx, a message to the person the request is about:
// an email to the request's contact address, or, when the subject is a
// Telegram user (a bot request, or one staff entered for a tg: subject), a
// message from the bot to their private chat. Both are in the request's
// language and carry the same values. Without a bot token nothing is queued
// for a Telegram subject (New warned at start-up); a request with neither
// hears nothing.
func (s *Service) notifyPerson(ctx context.Context, tx pgx.Tx, r *Request, template string, data map[string]string) error {
	d := map[string]string{"request_id": r.ID, "request_type": r.Type}
	if s.cfg.StatusURL != "" {
		d["status_url"] = s.cfg.StatusURL + "?request=" + r.ID
	}
	for k, v := range data {
		d[k] = v
	}
	to, err := s.contact(ctx, tx, r.ID)
	if err != nil {
		return err
	}
	if r.Channel == ChannelAgent {
		if err := s.notifyAgent(ctx, tx, r, template, d); err != nil {
			return err
		}
	}
	if to != "" {
		if _, err := s.Outbox.EnqueueEmail(ctx, tx, notify.Email{To: to, Template: template, Language: r.Language, Data: d}); err != nil {
			return fmt.Errorf("dsar: queue %s email: %w", template, err)
		}
		return nil
	}
	if r.SubjectKind != string(identity.Telegram) || s.cfg.TelegramBotToken == "" {
		return nil
	}
	chat, err := s.telegramChat(ctx, tx, r.ID)
	if err != nil || chat == 0 {
		return err
	}
	if _, err := s.Outbox.EnqueueTelegram(ctx, tx, notify.TelegramMessage{ChatID: chat, Template: template, Language: r.Language, Data: d}); err != nil {
		return fmt.Errorf("dsar: queue %s Telegram message: %w", template, err)
	}
	return nil
}

// notifyAgent tells an authorized agent what the person is told: that the
// request was received, extended, refused or completed, in the same words
// with a line saying why they get it. The person's data never goes to the
// agent: a completion's download link is left out (it reaches the person,
// who confirmed the request with their own code).
func (s *Service) notifyAgent(ctx context.Context, tx pgx.Tx, r *Request, template string, d map[string]string) error {
	det, err := s.details(ctx, tx, r.ID)
	if err != nil {
		return err
	}
	if det.Agent == nil || det.Agent.Email == "" {
		return nil
	}
	ad := make(map[string]string, len(d)+1)
	for k, v := range d {
		if k != "download_url" && k != "download_expires" {
			ad[k] = v
		}
	}
	ad["as_agent"] = "1"
	if _, err := s.Outbox.EnqueueEmail(ctx, tx, notify.Email{To: det.Agent.Email, Template: template, Language: r.Language, Data: ad}); err != nil {
		return fmt.Errorf("dsar: queue %s email to the agent: %w", template, err)
	}
	return nil
}

// telegramChat opens the Telegram user id the request was made for: the
// given identity, not one a connector or staff added, since only the person
// who asked is told. A private chat's id is the user's id. 0 when there is
// none.
func (s *Service) telegramChat(ctx context.Context, tx pgx.Tx, requestID string) (int64, error) {
	var kid string
	var ct []byte
	err := tx.QueryRow(ctx, `
		SELECT kid, ciphertext FROM privacy_request_identities
		WHERE request_id = $1 AND kind = $2 AND source = $3 LIMIT 1`, requestID, string(identity.Telegram), SourceGiven).Scan(&kid, &ct)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("dsar: load Telegram identity: %w", err)
	}
	var raw string
	if err := s.open(requestID, "identity", kid, ct, &raw); err != nil {
		return 0, fmt.Errorf("dsar: open Telegram identity: %w", err)
	}
	subj, err := identity.Parse(raw)
	if err != nil || subj.Type != identity.Telegram {
		// Never echo the value.
		return 0, errors.New("dsar: stored Telegram identity does not parse")
	}
	id, err := strconv.ParseInt(subj.Value, 10, 64)
	if err != nil {
		return 0, errors.New("dsar: stored Telegram identity is not a user id")
	}
	return id, nil
}
