package staff

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/jackc/pgx/v5"
	"golang.org/x/oauth2"

	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/db"
)

// Single sign-on is the OpenID Connect authorization code flow with PKCE
// (S256), a state bound to the browser by a cookie, and a nonce bound to
// the ID token. State, nonce and verifier are kept in PostgreSQL (the
// callback may reach another replica) and consumed by the callback.
//
// The provider vouches for the email, not for the role: the email must
// match an enabled account, and the account's role applies. It counts as
// the second factor only when its amr claim (RFC 8176) says the person
// gave one; otherwise the account's own second factor is asked for.

// mfaAMR are the RFC 8176 authentication method references that mean a
// second factor was given at the provider.
var mfaAMR = []string{"mfa", "otp", "hwk", "swk"}

type oidcClient struct {
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
}

// oidcProvider discovers the provider on first use and keeps it. A
// failed discovery is not kept, so the next sign-in tries again.
func (s *Service) oidcProvider(ctx context.Context) (*oidcClient, error) {
	if s.cfg.OIDC == nil {
		return nil, ErrUnavailable
	}
	s.oidcMu.Lock()
	defer s.oidcMu.Unlock()
	if s.oidc != nil {
		return s.oidc, nil
	}
	o := s.cfg.OIDC
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, s.http), o.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: discover provider %s: %v", ErrSSO, o.Issuer, err)
	}
	s.oidc = &oidcClient{
		// The key set is fetched (and refetched on rotation) with this
		// context's client, not the first request's context.
		verifier: p.VerifierContext(oidc.ClientContext(context.Background(), s.http), &oidc.Config{ClientID: o.ClientID, Now: s.clock.Now}),
		oauth: oauth2.Config{
			ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURL: o.RedirectURL,
			Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "email", "profile"},
		},
	}
	return s.oidc, nil
}

func stateAAD(stateHash []byte) []byte {
	return append([]byte("steward staff oidc verifier v1\x00"), stateHash...)
}

// OIDCStart returns the provider URL to send the browser to and the state
// to keep in a cookie.
func (s *Service) OIDCStart(ctx context.Context) (redirect, state string, err error) {
	c, err := s.oidcProvider(ctx)
	if err != nil {
		return "", "", err
	}
	state, nonce, verifier := randomToken(statePrefix), randomToken(""), oauth2.GenerateVerifier()
	sh, nh := tokenHash(state), sha256.Sum256([]byte(nonce))
	kid, ct, err := s.keys.Seal([]byte(verifier), stateAAD(sh))
	if err != nil {
		return "", "", fmt.Errorf("seal pkce verifier: %w", err)
	}
	now := s.now()
	err = db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM staff_oidc_states WHERE expires_at <= $1`, now); err != nil {
			return fmt.Errorf("clear expired sso states: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO staff_oidc_states (state_hash, nonce_hash, verifier_kid, verifier_ct, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, sh, nh[:], kid, ct, now, now.Add(s.cfg.PendingTTL)); err != nil {
			return fmt.Errorf("keep sso state: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", "", err
	}
	return c.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), state, nil
}

// idClaims are the ID token claims single sign-on reads.
type idClaims struct {
	Email         string          `json:"email"`
	EmailVerified json.RawMessage `json:"email_verified"`
	AMR           []string        `json:"amr"`
}

// verified accepts true and, as some providers send it, "true".
func (c idClaims) verified() bool {
	var b bool
	if json.Unmarshal(c.EmailVerified, &b) == nil {
		return b
	}
	var str string
	return json.Unmarshal(c.EmailVerified, &str) == nil && str == "true"
}

// OIDCCallback finishes single sign-on: a Session when the provider's
// sign-in counts as the second factor, else a Pending for the account's
// own.
func (s *Service) OIDCCallback(ctx context.Context, state, cookieState, code, ip string) (*Session, *Pending, error) {
	c, err := s.oidcProvider(ctx)
	if err != nil {
		return nil, nil, err
	}
	refuse := func(reason string, cause error) (*Session, *Pending, error) {
		if err := s.audit.Record(ctx, s.pool, audit.Record{Actor: systemActor, Action: "staff.signin_failed", TargetType: "staff_sso",
			TargetID: "oidc", Details: s.failDetails("oidc", reason, ip, 0)}); err != nil {
			return nil, nil, err
		}
		s.log.Info("staff single sign-on refused", "reason", reason, "err", cause)
		if reason == "state_expired" {
			return nil, nil, ErrPendingExpired
		}
		return nil, nil, fmt.Errorf("%w (%s)", ErrSSO, reason)
	}
	// The state in the URL must be the one this browser was given: a
	// callback carrying someone else's state (login CSRF) stops here.
	if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(cookieState)) != 1 || !wellFormed(state, statePrefix) {
		return refuse("state_mismatch", nil)
	}
	sh := tokenHash(state)
	var nonceHash, ct []byte
	var kid string
	var expires time.Time
	err = s.pool.QueryRow(ctx, `DELETE FROM staff_oidc_states WHERE state_hash = $1 RETURNING nonce_hash, verifier_kid, verifier_ct, expires_at`,
		sh).Scan(&nonceHash, &kid, &ct, &expires)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && !s.now().Before(expires)) {
		return refuse("state_expired", nil)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("consume sso state: %w", err)
	}
	verifier, err := s.keys.Open(kid, ct, stateAAD(sh))
	if err != nil {
		return nil, nil, fmt.Errorf("open pkce verifier: %w", err)
	}
	if code == "" {
		return refuse("no_code", nil)
	}
	tok, err := c.oauth.Exchange(context.WithValue(ctx, oauth2.HTTPClient, s.http), code, oauth2.VerifierOption(string(verifier)))
	if err != nil {
		return refuse("token_exchange", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return refuse("no_id_token", nil)
	}
	idt, err := c.verifier.Verify(oidc.ClientContext(ctx, s.http), raw)
	if err != nil {
		return refuse("id_token_refused", err)
	}
	if nh := sha256.Sum256([]byte(idt.Nonce)); subtle.ConstantTimeCompare(nh[:], nonceHash) != 1 {
		return refuse("nonce_mismatch", nil)
	}
	var claims idClaims
	if err := idt.Claims(&claims); err != nil {
		return refuse("claims", err)
	}
	email := normalizeEmail(claims.Email)
	if email == "" || !claims.verified() {
		return refuse("email_unverified", nil)
	}
	a, err := loadAccountByEmail(ctx, s.pool, email)
	if err != nil {
		return nil, nil, err
	}
	if a == nil || a.Disabled {
		target, reason := s.unknownTarget(email), "unknown_account"
		if a != nil {
			target, reason = a.ID, "disabled"
		}
		if err := s.audit.Record(ctx, s.pool, audit.Record{Actor: systemActor, Action: "staff.signin_failed", TargetType: targetAccount,
			TargetID: target, Details: s.failDetails("oidc", reason, ip, 0)}); err != nil {
			return nil, nil, err
		}
		return nil, nil, ErrBadCredentials
	}
	mfa := slices.ContainsFunc(claims.AMR, func(m string) bool { return slices.Contains(mfaAMR, m) })
	var sess *Session
	var pend *Pending
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.now()
		cur, err := loadAccount(ctx, tx, a.ID, true)
		if err != nil {
			return err
		}
		if cur == nil || cur.Disabled {
			return ErrBadCredentials
		}
		if le := s.refusal(cur, now); le != nil {
			return s.refuse(ctx, tx, cur, "oidc", ip, le)
		}
		if mfa {
			out, err := s.openSession(ctx, tx, cur, "oidc", "oidc", ip, now)
			sess = &out
			return err
		}
		out, err := s.openPending(ctx, tx, cur, "oidc", ip, now)
		pend = &out
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return sess, pend, nil
}
