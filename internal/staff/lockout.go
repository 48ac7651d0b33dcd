package staff

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Failed sign-in steps are counted per account, password and second
// factor alike: consecutive failures first pause the account briefly
// (Backoff, doubling), then lock it for LockFor at MaxFailures. The count
// starts over after a completed sign-in or a lock. A correct password alone
// does not reset it: otherwise anyone holding the password could guess
// second-factor codes forever, MaxFailures-1 at a time.
//
// Failures are counted on the account row, locked FOR UPDATE by the step's
// transaction, so replicas racing on one account count every attempt.

// refusal is why the account may not try a step now, or nil.
func (s *Service) refusal(a *account, now time.Time) *LockedError {
	if !a.LockedUntil.IsZero() && now.Before(a.LockedUntil) {
		return &LockedError{Until: a.LockedUntil}
	}
	if until := s.backoffUntil(a); now.Before(until) {
		return &LockedError{Until: until, Backoff: true}
	}
	return nil
}

func (s *Service) backoffUntil(a *account) time.Time {
	if s.cfg.Backoff < 0 || a.failed < 2 || a.lastFailure == nil {
		return time.Time{}
	}
	d := s.cfg.Backoff
	for i := 2; i < a.failed && d < s.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return a.lastFailure.Add(min(d, s.cfg.MaxBackoff))
}

// refuse audits a step refused because the account is locked or pausing
// (not counted as a failure: that would let anyone extend a lock forever).
func (s *Service) refuse(ctx context.Context, tx pgx.Tx, a *account, step, ip string, le *LockedError) error {
	reason := "locked"
	if le.Backoff {
		reason = "backoff"
	}
	if err := s.appendAudit(ctx, tx, systemActor, "staff.signin_failed", a.ID, s.failDetails(step, reason, ip, a.failed)); err != nil {
		return err
	}
	return le
}

// fail counts a failed step of account a (its row locked by tx) and audits
// it, and the lock when it is the last one allowed. It returns what the
// caller returns: the *LockedError when this failure locked the account,
// else ErrBadCredentials. The actor is system:staff: a failure does not
// prove who tried.
func (s *Service) fail(ctx context.Context, tx pgx.Tx, a *account, step, reason, ip string, now time.Time) error {
	n := a.failed + 1
	var locked *time.Time
	if n >= s.cfg.MaxFailures {
		until := now.Add(s.cfg.LockFor)
		locked = &until
	}
	count := n
	if locked != nil {
		count = 0
	}
	if _, err := tx.Exec(ctx, `UPDATE staff_accounts SET failed_attempts = $2, last_failure_at = $3,
		locked_until = COALESCE($4, locked_until), updated_at = $3 WHERE id = $1`, a.ID, count, now, locked); err != nil {
		return fmt.Errorf("count failed sign-in: %w", err)
	}
	if err := s.appendAudit(ctx, tx, systemActor, "staff.signin_failed", a.ID, s.failDetails(step, reason, ip, n)); err != nil {
		return err
	}
	s.log.Info("staff sign-in step failed", "account", a.ID, "step", step, "reason", reason, "failures", n)
	if locked == nil {
		return ErrBadCredentials
	}
	if err := s.appendAudit(ctx, tx, systemActor, "staff.locked", a.ID, map[string]any{
		"failures": n, "until": locked.UTC().Format(time.RFC3339),
	}); err != nil {
		return err
	}
	s.log.Warn("staff account locked after repeated failed sign-ins", "account", a.ID, "until", *locked)
	return &LockedError{Until: *locked}
}

func (s *Service) failDetails(step, reason, ip string, failures int) map[string]any {
	d := map[string]any{"step": step, "reason": reason, "failures": failures}
	if ip != "" {
		d["ip_hash"] = s.ipHex(ip)
	}
	return d
}
