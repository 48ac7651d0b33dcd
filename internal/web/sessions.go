package web

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/keyring"
)

// Sessions signs a person in to the privacy center without an account: a
// one-time code to their email address, or Telegram's signed initData in
// the Mini App. A session lasts SessionTTL from sign-in (absolute) and ends
// after IdleTTL without use; it only lets the person see and change their
// own consent.
type Sessions struct {
	Pool *pgxpool.Pool
	Keys *keyring.Keyring
	// SendCode queues the email with the code inside tx (the outbox), so a
	// code exists exactly when its email does.
	SendCode func(ctx context.Context, tx pgx.Tx, email, lang, code string, ttl time.Duration) error
	Clock    clock.Clock

	CodeTTL      time.Duration // 0: 15 minutes
	Attempts     int           // wrong codes before a code is void (0: 5)
	SendsPerHour int           // codes per address and per client address an hour (0: 5 and 20)
	SessionTTL   time.Duration // 0: 1 hour
	IdleTTL      time.Duration // 0: 20 minutes
}

func (s *Sessions) defaults() {
	if s.CodeTTL <= 0 {
		s.CodeTTL = 15 * time.Minute
	}
	if s.Attempts <= 0 {
		s.Attempts = 5
	}
	if s.SendsPerHour <= 0 {
		s.SendsPerHour = 5
	}
	if s.SessionTTL <= 0 {
		s.SessionTTL = time.Hour
	}
	if s.IdleTTL <= 0 {
		s.IdleTTL = 20 * time.Minute
	}
	if s.Clock == nil {
		s.Clock = clock.Real{}
	}
}

func sealAAD(what string) []byte { return []byte("steward web v1\x00" + what) }

func secretHash(kind, v string) []byte {
	h := sha256.Sum256([]byte("steward web v1\x00" + kind + "\x00" + v))
	return h[:]
}

// StartEmail sends a sign-in code to email for product and returns the
// pending sign-in's id (kept in a cookie; it is not a secret on its own).
func (s *Sessions) StartEmail(ctx context.Context, email, product, lang, ip string) (string, error) {
	s.defaults()
	subj, err := identity.Parse("email:" + email)
	if err != nil {
		return "", apperr.Field("email", "not an email address")
	}
	now := s.Clock.Now()
	hash := s.Keys.Hash(subj)
	var ipHash []byte
	if ip != "" {
		ipHash = s.Keys.HashIP(ip)
	}
	kid, ct, err := s.Keys.Seal([]byte(subj.String()), sealAAD("signin"))
	if err != nil {
		return "", fmt.Errorf("web: seal sign-in: %w", err)
	}
	code := newCode()
	id := uuid.NewString()
	err = db.Tx(ctx, s.Pool, func(tx pgx.Tx) error {
		var bySubject, byIP int
		if err := tx.QueryRow(ctx, `
			SELECT count(*) FILTER (WHERE subject_hash = $1), count(*) FILTER (WHERE $2::bytea IS NOT NULL AND ip_hash = $2)
			FROM person_signin_codes WHERE created_at > $3 AND (subject_hash = $1 OR ip_hash = $2)`,
			hash, ipHash, now.Add(-time.Hour)).Scan(&bySubject, &byIP); err != nil {
			return fmt.Errorf("web: count sign-in codes: %w", err)
		}
		if bySubject >= s.SendsPerHour || byIP >= 4*s.SendsPerHour {
			return apperr.New(apperr.RateLimited, "too many sign-in codes recently; try again later")
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO person_signin_codes (id, subject_hash, subject_kid, subject_ct, product, code_hash, ip_hash, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			id, hash, kid, ct, product, secretHash("code", id+"\x00"+code), ipHash, now, now.Add(s.CodeTTL)); err != nil {
			return fmt.Errorf("web: store sign-in code: %w", err)
		}
		return s.SendCode(ctx, tx, subj.Value, lang, code, s.CodeTTL)
	})
	if err != nil {
		return "", err
	}
	return id, nil
}

// errCode is a code the person must retype or renew.
var errCode = apperr.Field("code", "wrong or expired code")

// FinishEmail checks the code of sign-in id and opens a session; it
// returns the session token (for the cookie).
func (s *Sessions) FinishEmail(ctx context.Context, id, code string) (string, error) {
	s.defaults()
	if _, err := uuid.Parse(id); err != nil {
		return "", errCode
	}
	var token string
	var failure error
	err := db.Tx(ctx, s.Pool, func(tx pgx.Tx) error {
		var kid, product string
		var ct, hash []byte
		var attempts int
		var expires time.Time
		err := tx.QueryRow(ctx, `SELECT subject_kid, subject_ct, product, code_hash, attempts, expires_at
			FROM person_signin_codes WHERE id = $1 FOR UPDATE`, id).Scan(&kid, &ct, &product, &hash, &attempts, &expires)
		if errors.Is(err, pgx.ErrNoRows) {
			failure = errCode
			return nil
		}
		if err != nil {
			return fmt.Errorf("web: load sign-in: %w", err)
		}
		if !s.Clock.Now().Before(expires) || attempts >= s.Attempts {
			failure = errCode
			return nil
		}
		if !hmac.Equal(hash, secretHash("code", id+"\x00"+code)) {
			attempts++
			if attempts >= s.Attempts {
				failure = apperr.New(apperr.RateLimited, "too many wrong codes")
			} else {
				failure = errCode
			}
			_, err := tx.Exec(ctx, `UPDATE person_signin_codes SET attempts = $2 WHERE id = $1`, id, attempts)
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM person_signin_codes WHERE id = $1`, id); err != nil {
			return fmt.Errorf("web: consume sign-in code: %w", err)
		}
		pt, err := s.Keys.Open(kid, ct, sealAAD("signin"))
		if err != nil {
			return fmt.Errorf("web: open sign-in: %w", err)
		}
		subj, err := identity.Parse(string(pt))
		if err != nil {
			return fmt.Errorf("web: sign-in subject: %w", err)
		}
		token, err = s.open(ctx, tx, subj, product, "email_code")
		return err
	})
	if err != nil {
		return "", err
	}
	return token, failure
}

// OpenTelegram opens a session for a Telegram user whose initData the
// caller verified.
func (s *Sessions) OpenTelegram(ctx context.Context, subj identity.Subject, product string) (string, error) {
	s.defaults()
	var token string
	err := db.Tx(ctx, s.Pool, func(tx pgx.Tx) error {
		var err error
		token, err = s.open(ctx, tx, subj, product, "telegram_init_data")
		return err
	})
	return token, err
}

func (s *Sessions) open(ctx context.Context, tx pgx.Tx, subj identity.Subject, product, method string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	token := "pss_" + base64.RawURLEncoding.EncodeToString(b)
	kid, ct, err := s.Keys.Seal([]byte(subj.String()), sealAAD("session"))
	if err != nil {
		return "", fmt.Errorf("web: seal session: %w", err)
	}
	now := s.Clock.Now()
	// Expired sessions go as new ones come, so the table stays small
	// without a sweeper.
	if _, err := tx.Exec(ctx, `DELETE FROM person_sessions WHERE expires_at < $1`, now); err != nil {
		return "", fmt.Errorf("web: drop expired sessions: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM person_signin_codes WHERE expires_at < $1`, now.Add(-time.Hour)); err != nil {
		return "", fmt.Errorf("web: drop expired codes: %w", err)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO person_sessions (token_hash, subject_kid, subject_ct, product, method, created_at, last_seen, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $6, $7)`,
		secretHash("session", token), kid, ct, product, method, now, now.Add(s.SessionTTL)); err != nil {
		return "", fmt.Errorf("web: store session: %w", err)
	}
	return token, nil
}

// Session is a signed-in person.
type Session struct {
	Subject identity.Subject
	Product string
	Method  string
}

// Lookup returns the session of token, touching its idle timer; an unknown,
// expired or idle session is (Session{}, false).
func (s *Sessions) Lookup(ctx context.Context, token string) (Session, bool, error) {
	s.defaults()
	if token == "" || len(token) > 100 {
		return Session{}, false, nil
	}
	now := s.Clock.Now()
	var kid, product, method string
	var ct []byte
	err := s.Pool.QueryRow(ctx, `
		UPDATE person_sessions SET last_seen = $2
		WHERE token_hash = $1 AND expires_at > $2 AND last_seen > $3
		RETURNING subject_kid, subject_ct, product, method`,
		secretHash("session", token), now, now.Add(-s.IdleTTL)).Scan(&kid, &ct, &product, &method)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, false, nil
	}
	if err != nil {
		return Session{}, false, fmt.Errorf("web: session: %w", err)
	}
	pt, err := s.Keys.Open(kid, ct, sealAAD("session"))
	if err != nil {
		return Session{}, false, fmt.Errorf("web: open session: %w", err)
	}
	subj, err := identity.Parse(string(pt))
	if err != nil {
		return Session{}, false, fmt.Errorf("web: session subject: %w", err)
	}
	return Session{Subject: subj, Product: product, Method: method}, true, nil
}

// End signs out.
func (s *Sessions) End(ctx context.Context, token string) error {
	_, err := s.Pool.Exec(ctx, `DELETE FROM person_sessions WHERE token_hash = $1`, secretHash("session", token))
	return err
}

func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("%06d", n.Int64())
}
