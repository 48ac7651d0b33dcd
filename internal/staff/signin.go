package staff

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/db"
)

// A sign-in is two steps. The first (password, or single sign-on) opens a
// pending sign-in: a row keyed by the SHA-256 of a random token the
// browser keeps in a short-lived cookie. The second (a TOTP code, a
// passkey, or enrolling one of them) consumes it and opens a session with
// a new token: the pending token is useless from then on, and a session
// token never existed before the second factor was given.

// pending is a staff_pending row.
type pending struct {
	hash        []byte
	accountID   string
	firstFactor string
	enrolKID    *string
	enrolCT     []byte
	waKind      *string
	waSession   []byte
	expires     time.Time
}

func loadPending(ctx context.Context, q querier, token string, now time.Time, forUpdate bool) (*pending, error) {
	if !wellFormed(token, pendingPrefix) {
		return nil, nil
	}
	sql := `SELECT token_hash, account_id::text, first_factor, enrol_totp_kid, enrol_totp_ct, webauthn_kind,
		webauthn_session::text, expires_at FROM staff_pending WHERE token_hash = $1 AND expires_at > $2`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	var p pending
	var wa *string
	err := q.QueryRow(ctx, sql, tokenHash(token), now).Scan(&p.hash, &p.accountID, &p.firstFactor, &p.enrolKID, &p.enrolCT, &p.waKind, &wa, &p.expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load pending sign-in: %w", err)
	}
	if wa != nil {
		p.waSession = []byte(*wa)
	}
	p.expires = p.expires.UTC()
	return &p, nil
}

// outcome errors are answers to the person, not failures of Steward: the
// transaction that produced them commits (a failure is counted and
// audited), where any other error rolls it back.
func isOutcome(err error) bool {
	var le *LockedError
	return errors.As(err, &le) || errors.Is(err, ErrBadCredentials) || errors.Is(err, ErrPendingExpired) ||
		errors.Is(err, ErrWrongStep) || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrSSO)
}

// inTx runs fn in a transaction that commits when fn succeeds or returns
// an outcome, which is then returned.
func (s *Service) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	var out error
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		err := fn(tx)
		if err != nil && !isOutcome(err) {
			return err
		}
		out = err
		return nil
	})
	if err != nil {
		return err
	}
	return out
}

func (s *Service) view(token string, p *pending, a *account) Pending {
	return Pending{
		Token:          token,
		NeedsEnrolment: !a.hasFactor(),
		TOTP:           a.TOTP,
		Passkey:        a.Passkeys > 0 && s.wa != nil,
		Expires:        p.expires,
	}
}

// SignInPassword checks email and password (same time for an unknown
// email) and opens a pending sign-in.
func (s *Service) SignInPassword(ctx context.Context, email, password, ip string) (Pending, error) {
	email = normalizeEmail(email)
	if len(password) > maxPasswordBytes {
		// Still hashed (a prefix) for the timing; never a match below.
		password = password[:maxPasswordBytes] + "\x00"
	}
	a, err := loadAccountByEmail(ctx, s.pool, email)
	if err != nil {
		return Pending{}, err
	}
	stored := s.dummyHash
	if a != nil {
		stored = a.passwordHash
	}
	// The hash is verified whether or not the account exists, is
	// disabled or locked: every answer costs the same argon2id work.
	ok, rehash, verr := verifyPassword(password, stored, s.cfg.Password)
	if verr != nil && a != nil {
		s.log.Error("staff password hash unreadable", "account", a.ID, "err", verr)
	}
	if a == nil || a.Disabled {
		target, reason := s.unknownTarget(email), "unknown_account"
		if a != nil {
			target, reason = a.ID, "disabled"
		}
		if err := s.audit.Record(ctx, s.pool, audit.Record{Actor: systemActor, Action: "staff.signin_failed", TargetType: targetAccount,
			TargetID: target, Details: s.failDetails("password", reason, ip, 0)}); err != nil {
			return Pending{}, err
		}
		return Pending{}, ErrBadCredentials
	}
	var newHash string
	if ok && rehash {
		if newHash, err = hashPassword(password, s.cfg.Password); err != nil {
			return Pending{}, err
		}
	}
	var out Pending
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.now()
		// Read again under the row lock: the lock state may have moved
		// while the hash was being computed.
		cur, err := loadAccount(ctx, tx, a.ID, true)
		if err != nil {
			return err
		}
		if cur == nil || cur.Disabled {
			return ErrBadCredentials
		}
		if le := s.refusal(cur, now); le != nil {
			return s.refuse(ctx, tx, cur, "password", ip, le)
		}
		if !ok {
			return s.fail(ctx, tx, cur, "password", "wrong_password", ip, now)
		}
		if newHash != "" {
			// The parameters changed since this hash was made: the
			// password is at hand only now, so upgrade it now.
			if _, err := tx.Exec(ctx, `UPDATE staff_accounts SET password_hash = $2, updated_at = $3 WHERE id = $1`, cur.ID, newHash, now); err != nil {
				return fmt.Errorf("rehash password: %w", err)
			}
		}
		out, err = s.openPending(ctx, tx, cur, "password", ip, now)
		return err
	})
	if err != nil {
		return Pending{}, err
	}
	return out, nil
}

// openPending starts the second step for a after its first factor.
func (s *Service) openPending(ctx context.Context, tx pgx.Tx, a *account, first, ip string, now time.Time) (Pending, error) {
	token := randomToken(pendingPrefix)
	p := &pending{hash: tokenHash(token), accountID: a.ID, firstFactor: first, expires: now.Add(s.cfg.PendingTTL)}
	// Expired half-finished sign-ins of this account go now; the rest go
	// with PurgeExpired.
	if _, err := tx.Exec(ctx, `DELETE FROM staff_pending WHERE account_id = $1 AND expires_at <= $2`, a.ID, now); err != nil {
		return Pending{}, fmt.Errorf("clear expired pending sign-ins: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO staff_pending (token_hash, account_id, first_factor, ip_hash, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, p.hash, a.ID, first, s.ipHash(ip), now, p.expires); err != nil {
		return Pending{}, fmt.Errorf("open pending sign-in: %w", err)
	}
	d := map[string]any{"first_factor": first, "needs_enrolment": !a.hasFactor()}
	if ip != "" {
		d["ip_hash"] = s.ipHex(ip)
	}
	if err := s.appendAudit(ctx, tx, "staff:"+a.ID, "staff.signin_started", a.ID, d); err != nil {
		return Pending{}, err
	}
	return s.view(token, p, a), nil
}

// Pending looks up an open pending sign-in.
func (s *Service) Pending(ctx context.Context, pendingToken string) (Pending, error) {
	now := s.now()
	p, err := loadPending(ctx, s.pool, pendingToken, now, false)
	if err != nil {
		return Pending{}, err
	}
	if p == nil {
		return Pending{}, ErrPendingExpired
	}
	a, err := loadAccount(ctx, s.pool, p.accountID, false)
	if err != nil {
		return Pending{}, err
	}
	if a == nil || a.Disabled {
		return Pending{}, ErrPendingExpired
	}
	return s.view(pendingToken, p, a), nil
}

// secondStep runs a step that completes the pending sign-in token, in one
// transaction holding the pending row and the account row. check decides:
// "" opens a session with method; a reason refuses, counted towards the
// lockout when counted (a guess at a secret) and audited either way. check
// may write (store a new factor, clear a ceremony); its writes commit with
// the outcome.
func (s *Service) secondStep(ctx context.Context, token, ip, method string, counted bool,
	check func(tx pgx.Tx, p *pending, a *account, now time.Time) (reason string, err error)) (Session, error) {
	var out Session
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.now()
		p, err := loadPending(ctx, tx, token, now, true)
		if err != nil {
			return err
		}
		if p == nil {
			return ErrPendingExpired
		}
		a, err := loadAccount(ctx, tx, p.accountID, true)
		if err != nil {
			return err
		}
		if a == nil || a.Disabled {
			return ErrPendingExpired
		}
		if le := s.refusal(a, now); le != nil {
			return s.refuse(ctx, tx, a, method, ip, le)
		}
		reason, err := check(tx, p, a, now)
		if err != nil {
			return err
		}
		if reason != "" {
			if counted {
				return s.fail(ctx, tx, a, method, reason, ip, now)
			}
			if err := s.appendAudit(ctx, tx, systemActor, "staff.signin_failed", a.ID, s.failDetails(method, reason, ip, a.failed)); err != nil {
				return err
			}
			return ErrBadCredentials
		}
		out, err = s.openSession(ctx, tx, a, p.firstFactor, method, ip, now)
		return err
	})
	if err != nil {
		return Session{}, err
	}
	return out, nil
}

// openSession signs a in: a new session with a fresh token, the failure
// count cleared, and every pending sign-in of the account consumed.
func (s *Service) openSession(ctx context.Context, tx pgx.Tx, a *account, first, method, ip string, now time.Time) (Session, error) {
	token := randomToken(sessionPrefix)
	id := uuid.NewString()
	abs := now.Add(s.cfg.AbsoluteTimeout)
	if _, err := tx.Exec(ctx, `INSERT INTO staff_sessions (id, token_hash, account_id, method, ip_hash, created_at, last_seen, absolute_expires)
		VALUES ($1, $2, $3, $4, $5, $6, $6, $7)`, id, tokenHash(token), a.ID, method, s.ipHash(ip), now, abs); err != nil {
		return Session{}, fmt.Errorf("open staff session: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE staff_accounts SET failed_attempts = 0, last_failure_at = NULL, locked_until = NULL,
		last_sign_in = $2, updated_at = $2 WHERE id = $1`, a.ID, now); err != nil {
		return Session{}, fmt.Errorf("record sign-in: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM staff_pending WHERE account_id = $1`, a.ID); err != nil {
		return Session{}, fmt.Errorf("consume pending sign-in: %w", err)
	}
	d := map[string]any{"method": method, "first_factor": first, "session_id": id}
	if ip != "" {
		d["ip_hash"] = s.ipHex(ip)
	}
	if err := s.appendAudit(ctx, tx, "staff:"+a.ID, "staff.signed_in", a.ID, d); err != nil {
		return Session{}, err
	}
	s.log.Info("staff signed in", "account", a.ID, "method", method, "session", id)
	return Session{
		Token:           token,
		Principal:       Principal{AccountID: a.ID, Email: a.Email, Name: a.Name, Role: a.Role, SessionID: id, Method: method},
		IdleExpires:     minTime(now.Add(s.cfg.IdleTimeout), abs),
		AbsoluteExpires: abs,
	}, nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
