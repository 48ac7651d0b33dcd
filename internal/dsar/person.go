package dsar

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/apperr"
)

// What the person can do on their own request, with the status token as the
// credential (the privacy center keeps it in a cookie): withdraw the
// request, and, on a device without the token, get back in with a one-time
// code sent to the request's email address.

// personActor is the audit actor of what the person did themselves: their
// subject's keyed hash, never the identity.
func (s *Service) personActor(ctx context.Context, tx pgx.Tx, id string) (string, error) {
	var h []byte
	if err := tx.QueryRow(ctx, `SELECT s.lookup_hash FROM subjects s JOIN privacy_requests r ON r.subject_id = s.id WHERE r.id = $1`, id).Scan(&h); err != nil {
		return "", fmt.Errorf("dsar: load subject: %w", err)
	}
	return "subject:" + hex.EncodeToString(h), nil
}

// checkToken reports whether token is the request's current status token,
// inside the caller's transaction. A wrong token and a wrong id look alike.
func (s *Service) checkToken(ctx context.Context, tx pgx.Tx, id, token string) error {
	if token == "" {
		return errNotFound
	}
	var h []byte
	if err := tx.QueryRow(ctx, `SELECT status_token_hash FROM privacy_requests WHERE id = $1`, id).Scan(&h); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return errNotFound
		}
		return fmt.Errorf("dsar: load status token: %w", err)
	}
	if !hmac.Equal(h, tokenHash(token)) {
		return errNotFound
	}
	return nil
}

// CancelByPerson withdraws the person's own request. The reason recorded is
// the person's (optional) words; what already ran stays done and is shown on
// the timeline.
func (s *Service) CancelByPerson(ctx context.Context, id, token, reason string) (Request, error) {
	if !ValidID(id) {
		return Request{}, errNotFound
	}
	reason = strings.TrimSpace(reason)
	if err := checkText("reason", reason, 500); err != nil {
		return Request{}, err
	}
	if reason == "" {
		reason = "withdrawn by the person"
	}
	return s.act(ctx, id, func(tx pgx.Tx, r *Request) error {
		if err := s.checkToken(ctx, tx, id, token); err != nil {
			return err
		}
		actor, err := s.personActor(ctx, tx, id)
		if err != nil {
			return err
		}
		return s.cancel(ctx, tx, r, actor, reason)
	})
}

// SendAccessCode emails a one-time code to the request's address so the
// person can follow it on a device that has no status token (the link in an
// email carries only the request id). Only a request past verification
// takes one (before, the verification code does the same job), within the
// same per-address and per-IP limits as verification codes. An unknown id
// and a request with no email address answer alike: not found.
func (s *Service) SendAccessCode(ctx context.Context, id, ip string) error {
	if !ValidID(id) {
		return errNotFound
	}
	return s.sendCodeFor(ctx, id, ip, func(r Request) error {
		if r.Status == IdentityPending && !r.AwaitingSecondFactor {
			return apperr.New(apperr.Conflict, "this request is waiting for its verification code: enter that code")
		}
		return nil
	})
}

// VerifyAccess checks a code sent by SendAccessCode and, when it is right,
// issues a new status token (the old one stops working: one device at a
// time holds the request). Wrong codes count against the same limit as
// verification.
func (s *Service) VerifyAccess(ctx context.Context, id, code string) (string, error) {
	if !ValidID(id) {
		return "", errNotFound
	}
	code = strings.TrimSpace(code)
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return "", apperr.Field("code", "the 6-digit code from the email")
	}
	var token string
	var failure error
	err := s.tx(ctx, func(tx pgx.Tx) error {
		r, err := s.lock(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.Status == IdentityPending && !r.AwaitingSecondFactor {
			return apperr.New(apperr.Conflict, "this request is waiting for its verification code: enter that code")
		}
		ok, fail, det, err := s.consumeCode(ctx, tx, id, code)
		if err != nil {
			return err
		}
		if !ok {
			failure = fail
			if det == nil {
				return fail // nothing was counted: no code, or it expired
			}
			return s.event(ctx, tx, id, "access_code_failed", "", "", actorSystem, "", det)
		}
		if token, err = rotateStatusToken(ctx, tx, id); err != nil {
			return err
		}
		actor, err := s.personActor(ctx, tx, id)
		if err != nil {
			return err
		}
		return s.event(ctx, tx, id, "status_access_granted", "", "", actor, "", nil)
	})
	if err != nil {
		return "", err
	}
	if failure != nil {
		return "", failure
	}
	return token, nil
}

// consumeCode checks code against the request's live code inside tx: a
// right code is deleted (ok); a wrong one counts an attempt and, at the
// limit, voids the code. fail says why in the person's terms, and det is
// what the audit event of a failure records.
func (s *Service) consumeCode(ctx context.Context, tx pgx.Tx, id, code string) (ok bool, fail error, det map[string]any, err error) {
	var hash []byte
	var attempts int
	var expired bool
	err = tx.QueryRow(ctx, `SELECT code_hash, attempts, expires_at <= $2 FROM verification_codes WHERE request_id = $1 FOR UPDATE`,
		id, s.Clock.Now()).Scan(&hash, &attempts, &expired)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, apperr.Field("code", "no code is active for this request: ask for a new one"), nil, nil
	}
	if err != nil {
		return false, nil, nil, fmt.Errorf("dsar: load code: %w", err)
	}
	if expired {
		return false, apperr.Field("code", "the code has expired: ask for a new one"), nil, nil
	}
	if hmac.Equal(hash, s.codeHash(id, code)) {
		if _, err := tx.Exec(ctx, `DELETE FROM verification_codes WHERE request_id = $1`, id); err != nil {
			return false, nil, nil, fmt.Errorf("dsar: consume code: %w", err)
		}
		return true, nil, nil, nil
	}
	attempts++
	det = map[string]any{"attempts": attempts, "max_attempts": s.cfg.CodeAttempts}
	if attempts >= s.cfg.CodeAttempts {
		if _, err := tx.Exec(ctx, `DELETE FROM verification_codes WHERE request_id = $1`, id); err != nil {
			return false, nil, nil, fmt.Errorf("dsar: void code: %w", err)
		}
		det["code_voided"] = true
		return false, apperr.New(apperr.RateLimited, "too many wrong codes: this code no longer works; ask for a new one"), det, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE verification_codes SET attempts = $2 WHERE request_id = $1`, id, attempts); err != nil {
		return false, nil, nil, fmt.Errorf("dsar: count attempt: %w", err)
	}
	return false, apperr.Field("code", "wrong code (%d of %d attempts used)", attempts, s.cfg.CodeAttempts), det, nil
}

// checkText refuses text a person typed that cannot be stored as written:
// invalid UTF-8 (it would be silently replaced), NUL (PostgreSQL refuses
// it), or more than max bytes.
func checkText(field, v string, max int) error {
	switch {
	case !utf8.ValidString(v):
		return apperr.Field(field, "is not valid UTF-8 text")
	case strings.ContainsRune(v, 0):
		return apperr.Field(field, "contains a NUL character")
	case len(v) > max:
		return apperr.Field(field, "at most %d characters", max)
	}
	return nil
}

// PublicEvent is one step of a request as the person sees it.
type PublicEvent struct {
	Kind string    // received, verified, approved, started, paused, resumed, extended, completed, denied, canceled, failed
	At   time.Time // UTC
}

// personEvents map timeline entries to what the person is shown: status
// moves and the few steps that matter to them; staff notes, identities,
// task details and reviews stay on the staff side.
var personEvents = map[string]string{
	"received": "received", "verification_sent": "verification_sent", "extended": "extended",
	"recipients_notified": "recipients_notified", "restriction_lifted": "restriction_lifted",
}

var personMoves = map[Status]string{
	Verified: "verified", Approved: "approved", InProgress: "started", Paused: "paused",
	Completed: "completed", Denied: "denied", Canceled: "canceled", Failed: "failed",
}

// PersonTimeline is the request's timeline in the person's terms, for the
// holder of its status token.
func (s *Service) PersonTimeline(ctx context.Context, id, token string) ([]PublicEvent, error) {
	if !ValidID(id) || token == "" {
		return nil, errNotFound
	}
	rows, err := s.Pool.Query(ctx, `
		SELECT e.event, coalesce(e.from_status, ''), coalesce(e.to_status, ''), e.at
		FROM privacy_request_events e JOIN privacy_requests r ON r.id = e.request_id
		WHERE e.request_id = $1 AND r.status_token_hash = $2 ORDER BY e.id`, id, tokenHash(token))
	if err != nil {
		return nil, fmt.Errorf("dsar: person timeline: %w", err)
	}
	defer rows.Close()
	var out []PublicEvent
	for rows.Next() {
		var ev, from, to string
		var at time.Time
		if err := rows.Scan(&ev, &from, &to, &at); err != nil {
			return nil, fmt.Errorf("dsar: person timeline: %w", err)
		}
		kind := personEvents[ev]
		if kind == "" && to != "" && to != from {
			kind = personMoves[Status(to)]
			if Status(from) == Paused && kind != "" && kind != "canceled" && kind != "denied" {
				kind = "resumed"
			}
			if Status(to) == Approved && Status(from) != AwaitingApproval {
				kind = "" // approved by policy, not by a person: nothing to tell
			}
		}
		if kind == "" || len(out) > 0 && out[len(out)-1].Kind == kind {
			continue
		}
		out = append(out, PublicEvent{Kind: kind, At: at.UTC()})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dsar: person timeline: %w", err)
	}
	if len(out) == 0 {
		// Every request has its "received" entry: nothing means a wrong
		// id or token, which look alike.
		return nil, errNotFound
	}
	return out, nil
}
