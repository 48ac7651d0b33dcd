package dsar

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

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

// queuePackage queues the package job in tx (once per plan run).
func (s *Service) queuePackage(ctx context.Context, tx pgx.Tx, r *Request) error {
	if _, err := s.Jobs.InsertTx(ctx, tx, PackageArgs{RequestID: r.ID, PlanRun: r.planRun}, nil); err != nil {
		return fmt.Errorf("dsar: queue package: %w", err)
	}
	return s.event(ctx, tx, r.ID, "package_queued", "", "", actorSystem, "", nil)
}

func (s *Service) buildPackage(ctx context.Context, a PackageArgs) error {
	var status Status
	if err := s.Pool.QueryRow(ctx, `SELECT status FROM privacy_requests WHERE id = $1`, a.RequestID).Scan(&status); err != nil {
		return fmt.Errorf("dsar: load request: %w", err)
	}
	switch status {
	case InProgress:
	case Paused:
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
		return s.complete(ctx, tx, &r, map[string]string{"download_url": link, "download_expires": expires.UTC().Format(time.DateOnly)})
	})
}

// complete moves the request to completed and tells the person.
func (s *Service) complete(ctx context.Context, tx pgx.Tx, r *Request, data map[string]string) error {
	if err := s.move(ctx, tx, r, Complete, actorSystem, "", nil); err != nil {
		return err
	}
	now := s.Clock.Now()
	r.CompletedAt = &now
	return s.email(ctx, tx, r, notify.TemplateRequestCompleted, data)
}
