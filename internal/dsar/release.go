package dsar

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/apperr"
)

// Package review and the signed-instruction review: the two staff steps
// the policy can put between the engine and the person.
//
// Package review (deadlines.rego package_review, recorded on the request at
// intake as package_review_required): an access or export package that is
// built is held — the request stays in_progress with package_held — until a
// reviewer releases it (ReleasePackage); only then is the request completed
// and the person sent the link. Cal. Code Regs. tit. 11 §7024(d) lists what
// must never be disclosed; §7062(c) asks for a reasonably high degree of
// certainty before specific pieces are: staff look first where the policy
// says so.

// holdPackage holds a built package for review instead of completing the
// request. Reports whether it did.
func (s *Service) holdPackage(ctx context.Context, tx pgx.Tx, r *Request) (bool, error) {
	if !r.PackageReview {
		return false, nil
	}
	now := s.Clock.Now()
	if _, err := tx.Exec(ctx, `UPDATE privacy_requests SET package_held_at = $2, updated_at = $2 WHERE id = $1`, r.ID, now); err != nil {
		return false, fmt.Errorf("dsar: hold package: %w", err)
	}
	r.PackageHeld = true
	return true, s.event(ctx, tx, r.ID, "package_held", "", "", actorPolicy, "", map[string]any{"regime": r.Regime, "type": r.Type})
}

// ReleasePackage is a reviewer's release of a held package: the request
// completes and the person is sent the link (as it would have been without
// the review), in one transaction. The note (what was checked) stays in the
// timeline; the audit entry carries its hash.
func (s *Service) ReleasePackage(ctx context.Context, id, actor, note string) (Request, error) {
	if err := checkText("note", note, 2000); err != nil {
		return Request{}, err
	}
	return s.act(ctx, id, func(tx pgx.Tx, r *Request) error {
		if r.Status != InProgress || !r.PackageHeld {
			return apperr.New(apperr.Conflict, "this request has no package waiting for release (it is %s)", strings.ReplaceAll(string(r.Status), "_", " "))
		}
		var kid *string
		var sealed []byte
		var expires *time.Time
		if err := tx.QueryRow(ctx, `SELECT package_link_kid, package_link, package_expires FROM privacy_requests WHERE id = $1`, id).Scan(&kid, &sealed, &expires); err != nil {
			return fmt.Errorf("dsar: load package link: %w", err)
		}
		if kid == nil || expires == nil {
			return errors.New("dsar: held package has no link")
		}
		if !s.Clock.Now().Before(*expires) {
			return apperr.New(apperr.Conflict, "the package expired while it was held: re-plan the request to build a new one")
		}
		var link string
		if err := s.open(id, "package_link", *kid, sealed, &link); err != nil {
			return fmt.Errorf("dsar: open package link: %w", err)
		}
		now := s.Clock.Now()
		if _, err := tx.Exec(ctx, `UPDATE privacy_requests SET package_released_at = $2, package_released_by = $3 WHERE id = $1`, id, now, actor); err != nil {
			return fmt.Errorf("dsar: release package: %w", err)
		}
		r.PackageHeld = false
		if err := s.event(ctx, tx, id, "package_released", "", "", actor, note, nil); err != nil {
			return err
		}
		data := map[string]string{"download_url": link, "download_expires": expires.UTC().Format(time.DateOnly)}
		n, err := s.withheldNote(ctx, tx, r)
		if err != nil {
			return err
		}
		if n != "" {
			data["summary"] = n
		}
		return s.complete(ctx, tx, r, data)
	})
}

// ReviewDocument records a reviewer's review of an uploaded signed
// document (an agent's authorization: the "signed instruction" of the web
// notice's "We will verify identity (challenge login, recent invoice, signed
// instruction, etc.)"). The review is a verification step reaching high: a
// request waiting for a second factor is verified by it, once the person's
// own first factor (the email code) is in. Audited with the document's
// SHA-256 and the note's hash.
func (s *Service) ReviewDocument(ctx context.Context, id, kind, actor, note string) (Request, error) {
	if kind != DocAgentAuthorization {
		return Request{}, apperr.New(apperr.NotFound, "this request has no such document")
	}
	if strings.TrimSpace(note) == "" {
		return Request{}, apperr.Field("note", "required: what was checked (signature, the person's name, the scope of the authorization)")
	}
	if err := checkText("note", note, 2000); err != nil {
		return Request{}, err
	}
	return s.act(ctx, id, func(tx pgx.Tx, r *Request) error {
		if r.Status.Final() {
			return apperr.New(apperr.Conflict, "this request is %s", r.Status)
		}
		var sum []byte
		var reviewed *time.Time
		err := tx.QueryRow(ctx, `SELECT sha256, reviewed_at FROM privacy_request_documents WHERE request_id = $1 AND kind = $2`, id, kind).Scan(&sum, &reviewed)
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.New(apperr.NotFound, "this request has no such document")
		}
		if err != nil {
			return fmt.Errorf("dsar: read document: %w", err)
		}
		if reviewed != nil {
			return apperr.New(apperr.Conflict, "this document has already been reviewed")
		}
		// A review is of the document itself: staff open it first.
		var opened bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM privacy_request_events WHERE request_id = $1 AND event = 'document_opened'
			AND actor NOT LIKE 'system:%')`, id).Scan(&opened); err != nil {
			return fmt.Errorf("dsar: read document openings: %w", err)
		}
		if !opened {
			return apperr.New(apperr.Conflict, "open the document before marking it reviewed")
		}
		now := s.Clock.Now()
		if _, err := tx.Exec(ctx, `UPDATE privacy_request_documents SET reviewed_at = $3, reviewed_by = $4 WHERE request_id = $1 AND kind = $2`, id, kind, now, actor); err != nil {
			return fmt.Errorf("dsar: mark document reviewed: %w", err)
		}
		if err := s.event(ctx, tx, id, "document_reviewed", "", "", actor, note, map[string]any{"kind": kind, "sha256": fmt.Sprintf("%x", sum)}); err != nil {
			return err
		}
		_, err = s.addVerification(ctx, tx, r, VerificationStep{Method: MethodSignedInstruction, Level: LevelHigh, Actor: actor})
		return err
	})
}
