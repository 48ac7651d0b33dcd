package dsar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/notify"
)

// An access or export request ends with a package the person downloads:
// once every task has succeeded, the request stays in progress while a
// durable job builds the package (Packager), and completes — emailing the
// download link — only when the package is stored. A crash mid-build
// retries the job; a package built twice is harmless (the first link is
// never sent).

// Packager builds and stores the package of a request whose access tasks
// have all succeeded, and returns the download link and when it expires.
type Packager func(ctx context.Context, requestID string) (link string, expires time.Time, err error)

// PackageArgs is the job that builds a request's package.
type PackageArgs struct {
	RequestID string `json:"request_id"`
	PlanRun   int    `json:"plan_run"`
}

// Kind is River's job kind.
func (PackageArgs) Kind() string { return "dsar.package" }

// InsertOpts makes the job unique per request and plan run.
func (PackageArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type packageWorker struct {
	river.WorkerDefaults[PackageArgs]
	s *Service
}

func (w *packageWorker) Work(ctx context.Context, job *river.Job[PackageArgs]) error {
	return w.s.buildPackage(ctx, job.Args)
}

// wantsPackage reports whether a finished request ends with a package.
func (s *Service) wantsPackage(r *Request) bool {
	return s.Packager != nil && (r.Type == "access" || r.Type == "export")
}

// NothingFoundReason is the pause note of an access or export request
// whose tasks all succeeded and found nothing anywhere: staff see it on the
// request, in the timeline.
const NothingFoundReason = "No records were found for the given identities in any system. " +
	"Check the identities (a typo, another email) or confirm that nothing is held: " +
	"re-plan with a corrected or added identity, or resume to confirm, and the person then receives a package saying that nothing is held."

// An access or export request that found nothing is never reported
// complete on its own: an empty package emailed as "your data is ready" is
// as likely a wrong identity (a typo, the address the person did not sign
// up with, a system matching emails case-sensitively) as the truth. Once
// every task has succeeded, a request whose tasks disclosed no record and
// no file pauses for staff with NothingFoundReason instead of packaging.
// Staff either re-plan with a corrected or added identity (Replan), or
// resume, which records their confirmation (nothing_found_confirmed) for
// the current plan: the package is then built, saying plainly that nothing
// is held, and the request completes.

// disclosedCount counts the records and files a request's tasks disclosed.
func disclosedCount(ctx context.Context, tx pgx.Tx, requestID string) (int, error) {
	var n int
	err := tx.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM privacy_request_records x JOIN privacy_request_tasks t ON t.id = x.task_id WHERE t.request_id = $1)
		     + (SELECT count(*) FROM privacy_request_files x JOIN privacy_request_tasks t ON t.id = x.task_id WHERE t.request_id = $1)`,
		requestID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("dsar: count disclosed: %w", err)
	}
	return n, nil
}

// nothingFoundConfirmed reports whether staff confirmed, since the request
// was last planned, that nothing is held.
func nothingFoundConfirmed(ctx context.Context, tx pgx.Tx, requestID string) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM privacy_request_events c WHERE c.request_id = $1 AND c.event = $2
		               AND c.id > coalesce((SELECT max(p.id) FROM privacy_request_events p WHERE p.request_id = $1 AND p.event = 'planned'), 0))`,
		requestID, eventNothingFoundConfirmed).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("dsar: find confirmation: %w", err)
	}
	return ok, nil
}

// Timeline events of an empty result.
const (
	eventNothingFound          = "nothing_found"
	eventNothingFoundConfirmed = "nothing_found_confirmed"
)

// pauseIfNothingFound pauses, for staff, an in-progress request whose tasks
// have all succeeded and disclosed nothing, unless staff already confirmed
// that for its current plan. It reports whether it paused.
func (s *Service) pauseIfNothingFound(ctx context.Context, tx pgx.Tx, r *Request) (bool, error) {
	n, err := disclosedCount(ctx, tx, r.ID)
	if err != nil || n > 0 {
		return false, err
	}
	confirmed, err := nothingFoundConfirmed(ctx, tx, r.ID)
	if err != nil || confirmed {
		return false, err
	}
	var tasks int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM privacy_request_tasks WHERE request_id = $1 AND status = 'succeeded'`, r.ID).Scan(&tasks); err != nil {
		return false, fmt.Errorf("dsar: count tasks: %w", err)
	}
	if err := s.move(ctx, tx, r, Pause, actorSystem, NothingFoundReason, map[string]any{"cause": eventNothingFound, "tasks": tasks}); err != nil {
		return false, err
	}
	s.Log.InfoContext(ctx, "access request found nothing; paused for staff", "request_id", r.ID, "tasks", tasks)
	return true, nil
}

// confirmNothingFound records, as staff resume a request the engine paused
// because it found nothing, that they confirm nothing is held; the request
// then packages. Resuming a request staff paused themselves confirms
// nothing: if it found nothing, it pauses again, with the reason.
func (s *Service) confirmNothingFound(ctx context.Context, tx pgx.Tx, r *Request, actor string) error {
	if r.Status != InProgress || (!s.wantsPackage(r) && r.Type != "erasure") {
		return nil
	}
	var pausedBy, note string
	err := tx.QueryRow(ctx, `
		SELECT actor, coalesce(note, '') FROM privacy_request_events
		WHERE request_id = $1 AND event = 'pause' ORDER BY id DESC LIMIT 1`, r.ID).Scan(&pausedBy, &note)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("dsar: find the pause: %w", err)
	}
	if pausedBy != actorSystem || (note != NothingFoundReason && note != NothingErasedReason) {
		return nil
	}
	return s.event(ctx, tx, r.ID, eventNothingFoundConfirmed, "", "", actor, "", nil)
}

// NothingErasedReason is the pause note of an erasure whose automated tasks
// all succeeded and found nothing of the person anywhere.
const NothingErasedReason = "Nothing of this person was found to erase in any system. " +
	"Check the identities (a typo, another email, an identity an earlier erasure already removed) or confirm that nothing is held: " +
	"re-plan with a corrected or added identity, or resume to confirm, and the request then completes."

// An erasure that found nothing is never reported complete and verified on
// its own either: after an earlier, half-finished erasure nulled the email,
// a new request by that email finds nothing while the address row still
// holds the street; "verified" would then be a fresh look by the wrong
// key. Once every task has succeeded, an erasure whose automated tasks
// deleted, masked and kept nothing (and which had no manual task, whose
// work Steward cannot count) pauses for staff with NothingErasedReason,
// confirmed like the access case.

// erasedCount counts what an erasure's succeeded tasks touched: rows
// deleted or masked and records kept with a basis (records left for
// review were not erased: staff look at those anyway);
// searched is how many automated tasks reported; manual is whether a task
// was staff's, whose work is not counted.
func erasedCount(ctx context.Context, tx pgx.Tx, requestID string) (searched, touched int, manual bool, err error) {
	rows, err := tx.Query(ctx, `SELECT mode, coalesce(result, 'null'::jsonb) FROM privacy_request_tasks WHERE request_id = $1 AND status = 'succeeded'`, requestID)
	if err != nil {
		return 0, 0, false, fmt.Errorf("dsar: count erased: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var mode string
		var res connectors.EraseResult
		var raw []byte
		if err := rows.Scan(&mode, &raw); err != nil {
			return 0, 0, false, fmt.Errorf("dsar: count erased: %w", err)
		}
		if mode == ModeManual {
			manual = true
			continue
		}
		if err := json.Unmarshal(raw, &res); err != nil {
			return 0, 0, false, fmt.Errorf("dsar: read an erase result: %w", err)
		}
		searched++
		touched += res.Deleted + res.Masked
		for _, k := range res.Retained {
			touched += k.Records
		}
	}
	return searched, touched, manual, rows.Err()
}

// pauseIfNothingErased pauses, for staff, an in-progress erasure whose
// tasks have all succeeded and touched nothing, unless staff confirmed that
// for its current plan. It reports whether it paused.
func (s *Service) pauseIfNothingErased(ctx context.Context, tx pgx.Tx, r *Request) (bool, error) {
	// A plan with no automated task (everything held, or manual) searched
	// nothing, so it cannot have found nothing.
	searched, touched, manual, err := erasedCount(ctx, tx, r.ID)
	if err != nil || searched == 0 || touched > 0 || manual {
		return false, err
	}
	confirmed, err := nothingFoundConfirmed(ctx, tx, r.ID)
	if err != nil || confirmed {
		return false, err
	}
	if err := s.move(ctx, tx, r, Pause, actorSystem, NothingErasedReason, map[string]any{"cause": eventNothingFound}); err != nil {
		return false, err
	}
	s.Log.InfoContext(ctx, "erasure found nothing; paused for staff", "request_id", r.ID)
	return true, nil
}

// queuePackage queues the package job in tx (once per plan run).
func (s *Service) queuePackage(ctx context.Context, tx pgx.Tx, r *Request) error {
	if _, err := s.Jobs.InsertTx(ctx, tx, PackageArgs{RequestID: r.ID, PlanRun: r.planRun}, nil); err != nil {
		return fmt.Errorf("dsar: queue package: %w", err)
	}
	return s.event(ctx, tx, r.ID, "package_queued", "", "", actorSystem, "", nil)
}

func (s *Service) buildPackage(ctx context.Context, a PackageArgs) error {
	var status Status
	var held bool
	if err := s.Pool.QueryRow(ctx, `SELECT status, package_held_at IS NOT NULL FROM privacy_requests WHERE id = $1`, a.RequestID).Scan(&status, &held); err != nil {
		return fmt.Errorf("dsar: load request: %w", err)
	}
	switch {
	case held:
		return nil // built and held for review by an earlier run (release.go)
	case status == InProgress:
	case status == Paused:
		return river.JobSnooze(time.Minute) // built once resumed
	default:
		return nil // canceled, or completed by an earlier run of this job
	}
	link, expires, err := s.Packager(ctx, a.RequestID)
	if err != nil {
		return fmt.Errorf("dsar: build package: %w", err)
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		r, err := s.lock(ctx, tx, a.RequestID)
		if err != nil {
			return err
		}
		if r.Status != InProgress {
			if r.Status == Paused {
				return errors.New("dsar: request paused while its package was built; building again once resumed")
			}
			return nil
		}
		if err := s.event(ctx, tx, r.ID, "package_ready", "", "", actorSystem, "", map[string]any{"expires_at": expires}); err != nil {
			return err
		}
		kid, sealed, err := s.seal(r.ID, "package_link", link)
		if err != nil {
			return fmt.Errorf("dsar: seal package link: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE privacy_requests SET package_link_kid = $2, package_link = $3, package_expires = $4 WHERE id = $1`,
			r.ID, kid, sealed, expires); err != nil {
			return fmt.Errorf("dsar: record package link: %w", err)
		}
		data := map[string]string{"download_url": link, "download_expires": expires.UTC().Format(time.DateOnly)}
		// Records withheld from the package (other people's data is in
		// them) are told in the email too, with whom to ask: the package
		// says so as well, but only to whoever opens it.
		note, err := s.withheldNote(ctx, tx, &r)
		if err != nil {
			return err
		}
		if note != "" {
			data["summary"] = note
		}
		// Policy may hold the package for a reviewer (release.go): the
		// person is sent the link when it is released.
		if held, err := s.holdPackage(ctx, tx, &r); held || err != nil {
			return err
		}
		return s.complete(ctx, tx, &r, data)
	})
}

// complete moves the request to completed and tells the person.
func (s *Service) complete(ctx context.Context, tx pgx.Tx, r *Request, data map[string]string) error {
	if err := s.move(ctx, tx, r, Complete, actorSystem, "", nil); err != nil {
		return err
	}
	now := s.Clock.Now()
	r.CompletedAt = &now
	return s.notifyPerson(ctx, tx, r, notify.TemplateRequestCompleted, data)
}
