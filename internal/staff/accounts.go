package staff

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/db"
)

// account is an account row with what sign-in needs besides the public
// record.
type account struct {
	Account
	passwordHash string
	totpKID      *string
	totpCT       []byte
	totpLastStep *int64
	failed       int
	lastFailure  *time.Time
	// anyPasskey counts passkeys flagged as possibly cloned too: such an
	// account still has a second factor (an admin resets it), so a
	// password alone must not let anyone enrol a new one.
	anyPasskey bool
}

// hasFactor says whether a second factor is enrolled.
func (a *account) hasFactor() bool { return a.TOTP || a.anyPasskey }

const accountCols = `a.id::text, a.email, a.name, a.role, a.disabled, a.totp_kid IS NOT NULL,
	(SELECT count(*) FROM staff_passkeys k WHERE k.account_id = a.id AND NOT k.clone_warning),
	EXISTS (SELECT 1 FROM staff_passkeys k WHERE k.account_id = a.id),
	a.locked_until, a.created_at, a.last_sign_in,
	a.password_hash, a.totp_kid, a.totp_ct, a.totp_last_step, a.failed_attempts, a.last_failure_at`

func scanAccount(row pgx.Row) (*account, error) {
	var a account
	var locked, last *time.Time
	err := row.Scan(&a.ID, &a.Email, &a.Name, &a.Role, &a.Disabled, &a.TOTP, &a.Passkeys, &a.anyPasskey,
		&locked, &a.CreatedAt, &last, &a.passwordHash, &a.totpKID, &a.totpCT, &a.totpLastStep, &a.failed, &a.lastFailure)
	if err != nil {
		return nil, err
	}
	if locked != nil {
		a.LockedUntil = locked.UTC()
	}
	if last != nil {
		a.LastSignIn = last.UTC()
	}
	a.CreatedAt = a.CreatedAt.UTC()
	return &a, nil
}

// querier is a pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// loadAccount reads an account by id; forUpdate locks its row for the
// rest of tx, which serialises concurrent sign-in steps of one account
// across replicas (so failure counting and TOTP replay checks do not
// race). nil, nil when there is none.
func loadAccount(ctx context.Context, q querier, id string, forUpdate bool) (*account, error) {
	sql := `SELECT ` + accountCols + ` FROM staff_accounts a WHERE a.id = $1`
	if forUpdate {
		sql += ` FOR UPDATE OF a`
	}
	a, err := scanAccount(q.QueryRow(ctx, sql, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load staff account: %w", err)
	}
	return a, nil
}

func loadAccountByEmail(ctx context.Context, q querier, email string) (*account, error) {
	a, err := scanAccount(q.QueryRow(ctx, `SELECT `+accountCols+` FROM staff_accounts a WHERE a.email = $1`, email))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load staff account: %w", err)
	}
	return a, nil
}

// normalizeEmail is the form emails are stored and looked up in.
func normalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func checkEmail(email string) error {
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || a.Name != "" || len(email) > 254 || !strings.Contains(email, "@") {
		return apperr.Field("email", "not an email address")
	}
	return nil
}

func checkName(name string) error {
	if name == "" || utf8.RuneCountInString(name) > 100 || !utf8.ValidString(name) {
		return apperr.Field("name", "1 to 100 characters")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return apperr.Field("name", "no control characters")
		}
	}
	return nil
}

func (s *Service) checkRole(role string) error {
	if role == "" || !s.isRole(role) {
		return apperr.Field("role", "unknown role %q", role)
	}
	return nil
}

// canonicalID is id as stored, or "" when it is not a uuid: an id from a
// URL is refused as not found rather than sent to the database.
func canonicalID(id string) string {
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return ""
	}
	return u.String()
}

func notFound() error {
	return &apperr.Error{Code: apperr.NotFound, Message: "no such staff account", Err: ErrNoAccount}
}

// CreateAccount adds a staff member. role must be a bundle role; the
// password at least 12 characters and not the email. actor is who does it
// ("system:cli", or the admin's Principal.Actor()).
func (s *Service) CreateAccount(ctx context.Context, email, name, role, password, actor string) (Account, error) {
	email, name = normalizeEmail(email), strings.TrimSpace(name)
	if err := checkEmail(email); err != nil {
		return Account{}, err
	}
	if err := checkName(name); err != nil {
		return Account{}, err
	}
	if err := s.checkRole(role); err != nil {
		return Account{}, err
	}
	if err := checkPassword(password, email); err != nil {
		return Account{}, err
	}
	hash, err := hashPassword(password, s.cfg.Password)
	if err != nil {
		return Account{}, err
	}
	now := s.now()
	a := Account{ID: uuid.NewString(), Email: email, Name: name, Role: role, CreatedAt: now}
	err = db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO staff_accounts (id, email, name, role, password_hash, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $6)`, a.ID, a.Email, a.Name, a.Role, hash, now); err != nil {
			if db.IsUniqueViolation(err) {
				return &apperr.Error{Code: apperr.Conflict, Message: "a staff account with this email exists", Err: ErrEmailTaken}
			}
			return fmt.Errorf("insert staff account: %w", err)
		}
		// The audit log keeps the account id and role only: the email
		// and name are personal data the log could never erase.
		return s.appendAudit(ctx, tx, actor, "staff.account_created", a.ID, map[string]any{"role": role})
	})
	if err != nil {
		return Account{}, err
	}
	s.log.Info("staff account created", "account", a.ID, "role", role, "by", actor)
	return a, nil
}

// Accounts lists staff accounts, by email.
func (s *Service) Accounts(ctx context.Context) ([]Account, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+accountCols+` FROM staff_accounts a ORDER BY a.email`)
	if err != nil {
		return nil, fmt.Errorf("list staff accounts: %w", err)
	}
	defer rows.Close()
	out := []Account{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("list staff accounts: %w", err)
		}
		out = append(out, a.Account)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list staff accounts: %w", err)
	}
	return out, nil
}

// Get returns one account.
func (s *Service) Get(ctx context.Context, id string) (Account, error) {
	if id = canonicalID(id); id == "" {
		return Account{}, notFound()
	}
	a, err := loadAccount(ctx, s.pool, id, false)
	if err != nil {
		return Account{}, err
	}
	if a == nil {
		return Account{}, notFound()
	}
	return a.Account, nil
}

// change runs one account update with its audit entry. set is the SET
// list ($1 is the id, $2 the time; more arguments follow).
func (s *Service) change(ctx context.Context, id, actor, action string, details map[string]any, set string, args ...any) error {
	if id = canonicalID(id); id == "" {
		return notFound()
	}
	return db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE staff_accounts SET `+set+`, updated_at = $2 WHERE id = $1`, append([]any{id, s.now()}, args...)...)
		if err != nil {
			return fmt.Errorf("%s: %w", action, err)
		}
		if tag.RowsAffected() == 0 {
			return notFound()
		}
		return s.appendAudit(ctx, tx, actor, action, id, details)
	})
}

// endAll signs the account out everywhere: sessions and half-finished
// sign-ins.
func endAll(ctx context.Context, tx pgx.Tx, id string) (int64, error) {
	tag, err := tx.Exec(ctx, `DELETE FROM staff_sessions WHERE account_id = $1`, id)
	if err != nil {
		return 0, fmt.Errorf("end sessions: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM staff_pending WHERE account_id = $1`, id); err != nil {
		return 0, fmt.Errorf("end pending sign-ins: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Disable stops an account from signing in and ends its sessions. The
// account stays (the audit log and timelines name it).
func (s *Service) Disable(ctx context.Context, id, actor string) error {
	return s.changeAndEnd(ctx, id, actor, "staff.account_disabled", nil, `disabled = true`)
}

// Enable lets a disabled account sign in again.
func (s *Service) Enable(ctx context.Context, id, actor string) error {
	return s.change(ctx, id, actor, "staff.account_enabled", nil, `disabled = false`)
}

// SetRole changes an account's role. It applies to its sessions at their
// next request: a principal's role is read with the session.
func (s *Service) SetRole(ctx context.Context, id, role, actor string) error {
	if err := s.checkRole(role); err != nil {
		return err
	}
	return s.change(ctx, id, actor, "staff.role_changed", map[string]any{"role": role}, `role = $3`, role)
}

// SetPassword replaces an account's password and signs it out everywhere
// (whoever knew the old one is out too).
func (s *Service) SetPassword(ctx context.Context, id, password, actor string) error {
	a, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if err := checkPassword(password, a.Email); err != nil {
		return err
	}
	hash, err := hashPassword(password, s.cfg.Password)
	if err != nil {
		return err
	}
	return s.changeAndEnd(ctx, a.ID, actor, "staff.password_changed", nil, `password_hash = $3`, hash)
}

// ResetMFA removes the account's TOTP secret and passkeys and signs it out
// everywhere: the next sign-in enrols a second factor afresh (after a lost
// phone, or a passkey flagged as cloned).
func (s *Service) ResetMFA(ctx context.Context, id, actor string) error {
	return s.changeAndEnd(ctx, id, actor, "staff.mfa_reset", nil,
		`totp_kid = NULL, totp_ct = NULL, totp_last_step = NULL`)
}

// Unlock lifts a lockout (and the failure count) before it runs out.
func (s *Service) Unlock(ctx context.Context, id, actor string) error {
	return s.change(ctx, id, actor, "staff.unlocked", nil,
		`failed_attempts = 0, locked_until = NULL, last_failure_at = NULL`)
}

// changeAndEnd is change plus ending every session (and, for an MFA reset,
// removing the passkeys) in the same transaction.
func (s *Service) changeAndEnd(ctx context.Context, id, actor, action string, details map[string]any, set string, args ...any) error {
	if id = canonicalID(id); id == "" {
		return notFound()
	}
	return db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE staff_accounts SET `+set+`, updated_at = $2 WHERE id = $1`, append([]any{id, s.now()}, args...)...)
		if err != nil {
			return fmt.Errorf("%s: %w", action, err)
		}
		if tag.RowsAffected() == 0 {
			return notFound()
		}
		if action == "staff.mfa_reset" {
			if _, err := tx.Exec(ctx, `DELETE FROM staff_passkeys WHERE account_id = $1`, id); err != nil {
				return fmt.Errorf("remove passkeys: %w", err)
			}
		}
		n, err := endAll(ctx, tx, id)
		if err != nil {
			return err
		}
		d := map[string]any{"sessions_ended": n}
		for k, v := range details {
			d[k] = v
		}
		return s.appendAudit(ctx, tx, actor, action, id, d)
	})
}

// now is the injected clock, truncated to what PostgreSQL stores, so a
// value read back equals the value written.
func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }
