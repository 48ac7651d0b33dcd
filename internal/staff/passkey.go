package staff

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Passkeys (WebAuthn) complete a pending sign-in, or are enrolled as the
// account's first second factor. The ceremony's session data (challenge,
// allowed credentials) is kept on the pending row, so the browser's answer
// may reach any replica, and is cleared by the first answer, right or
// wrong: a challenge is answered once.
//
// Options go to the browser as JSON: {"publicKey": {...}} with binary
// fields in base64url, the shape PublicKeyCredential.parseCreationOptionsFromJSON
// and parseRequestOptionsFromJSON take (the "publicKey" member). The
// browser's answer comes back as PublicKeyCredential.toJSON() produces it.

// waUser adapts an account to the webauthn library.
type waUser struct {
	id    []byte
	email string
	name  string
	creds []webauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                         { return u.id }
func (u *waUser) WebAuthnName() string                       { return u.email }
func (u *waUser) WebAuthnDisplayName() string                { return u.name }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// storedPasskey is a staff_passkeys row.
type storedPasskey struct {
	cred         webauthn.Credential
	signCount    int64
	cloneWarning bool
}

// userHandle is the account's WebAuthn user handle: its uuid's 16 bytes,
// which say nothing about the person (the spec asks for no personal data
// in it).
func userHandle(accountID string) []byte {
	u := uuid.MustParse(accountID)
	return u[:]
}

func (s *Service) loadPasskeys(ctx context.Context, tx pgx.Tx, a *account) (*waUser, map[string]storedPasskey, error) {
	rows, err := tx.Query(ctx, `SELECT credential::text, sign_count, clone_warning FROM staff_passkeys WHERE account_id = $1 ORDER BY created_at`, a.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("load passkeys: %w", err)
	}
	defer rows.Close()
	u := &waUser{id: userHandle(a.ID), email: a.Email, name: a.Name}
	byID := map[string]storedPasskey{}
	for rows.Next() {
		var raw string
		var sp storedPasskey
		if err := rows.Scan(&raw, &sp.signCount, &sp.cloneWarning); err != nil {
			return nil, nil, fmt.Errorf("load passkeys: %w", err)
		}
		if err := json.Unmarshal([]byte(raw), &sp.cred); err != nil {
			return nil, nil, fmt.Errorf("load passkeys: credential record: %w", err)
		}
		// The counter column is the truth (compare-and-set below); the
		// JSON copy may lag behind it.
		sp.cred.Authenticator.SignCount = uint32(sp.signCount)
		u.creds = append(u.creds, sp.cred)
		byID[string(sp.cred.ID)] = sp
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("load passkeys: %w", err)
	}
	return u, byID, nil
}

// beginCeremony loads the pending sign-in and its account, lets begin make
// the options and session data, and keeps the session data on the row.
func (s *Service) beginCeremony(ctx context.Context, token, kind string,
	begin func(a *account, u *waUser, stored map[string]storedPasskey) (options any, session *webauthn.SessionData, err error)) ([]byte, error) {
	if s.wa == nil {
		return nil, ErrUnavailable
	}
	var out []byte
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		now := s.now()
		p, err := loadPending(ctx, tx, token, now, true)
		if err != nil {
			return err
		}
		if p == nil {
			return ErrPendingExpired
		}
		a, err := loadAccount(ctx, tx, p.accountID, false)
		if err != nil {
			return err
		}
		if a == nil || a.Disabled {
			return ErrPendingExpired
		}
		u, stored, err := s.loadPasskeys(ctx, tx, a)
		if err != nil {
			return err
		}
		options, session, err := begin(a, u, stored)
		if err != nil {
			return err
		}
		sd, err := json.Marshal(session)
		if err != nil {
			return fmt.Errorf("webauthn session data: %w", err)
		}
		if out, err = json.Marshal(options); err != nil {
			return fmt.Errorf("webauthn options: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE staff_pending SET webauthn_kind = $2, webauthn_session = $3 WHERE token_hash = $1`,
			p.hash, kind, string(sd)); err != nil {
			return fmt.Errorf("keep webauthn ceremony: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// takeCeremony returns the pending row's ceremony session data of kind and
// clears it, or nil when there is none of that kind.
func takeCeremony(ctx context.Context, tx pgx.Tx, p *pending, kind string) (*webauthn.SessionData, error) {
	if p.waKind == nil || *p.waKind != kind || p.waSession == nil {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE staff_pending SET webauthn_kind = NULL, webauthn_session = NULL WHERE token_hash = $1`, p.hash); err != nil {
		return nil, fmt.Errorf("clear webauthn ceremony: %w", err)
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(p.waSession, &sd); err != nil {
		return nil, fmt.Errorf("webauthn session data: %w", err)
	}
	return &sd, nil
}

// BeginPasskeyEnrolment returns navigator.credentials.create options
// (JSON) for the pending account, which has no second factor yet.
func (s *Service) BeginPasskeyEnrolment(ctx context.Context, pendingToken string) ([]byte, error) {
	return s.beginCeremony(ctx, pendingToken, "register", func(a *account, u *waUser, _ map[string]storedPasskey) (any, *webauthn.SessionData, error) {
		if a.hasFactor() {
			return nil, nil, ErrWrongStep
		}
		creation, session, err := s.wa.BeginRegistration(u, webauthn.WithExclusions(webauthn.Credentials(u.creds).CredentialDescriptors()))
		if err != nil {
			return nil, nil, fmt.Errorf("begin passkey registration: %w", err)
		}
		return creation, session, nil
	})
}

// FinishPasskeyEnrolment stores the new credential (the browser's JSON
// response) and signs in. A refused answer is audited, not counted: there
// is no secret being guessed in a registration.
func (s *Service) FinishPasskeyEnrolment(ctx context.Context, pendingToken string, response []byte, ip string) (Session, error) {
	if s.wa == nil {
		return Session{}, ErrUnavailable
	}
	return s.secondStep(ctx, pendingToken, ip, "passkey", false, func(tx pgx.Tx, p *pending, a *account, now time.Time) (string, error) {
		if a.hasFactor() {
			return "", ErrWrongStep
		}
		sd, err := takeCeremony(ctx, tx, p, "register")
		if err != nil {
			return "", err
		}
		if sd == nil {
			return "no_ceremony", nil
		}
		parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
		if err != nil {
			s.log.Info("passkey registration response refused", "account", a.ID, "err", webauthnDetail(err))
			return "malformed_response", nil
		}
		u := &waUser{id: userHandle(a.ID), email: a.Email, name: a.Name}
		cred, err := s.wa.CreateCredential(u, *sd, parsed)
		if err != nil {
			s.log.Info("passkey registration refused", "account", a.ID, "err", webauthnDetail(err))
			return "registration_refused", nil
		}
		raw, err := json.Marshal(cred)
		if err != nil {
			return "", fmt.Errorf("passkey credential record: %w", err)
		}
		tag, err := tx.Exec(ctx, `INSERT INTO staff_passkeys (id, account_id, credential, sign_count, created_at, last_used_at)
			VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (id) DO NOTHING`, cred.ID, a.ID, string(raw), int64(cred.Authenticator.SignCount), now)
		if err != nil {
			return "", fmt.Errorf("store passkey: %w", err)
		}
		if tag.RowsAffected() == 0 {
			// The same credential id on another account: an
			// authenticator replaying its registration.
			return "credential_exists", nil
		}
		if err := s.appendAudit(ctx, tx, "staff:"+a.ID, "staff.passkey_enrolled", a.ID, map[string]any{
			"attestation_format": cred.AttestationFormat,
		}); err != nil {
			return "", err
		}
		return "", nil
	})
}

// BeginPasskeySignIn returns navigator.credentials.get options (JSON),
// allowing the account's passkeys.
func (s *Service) BeginPasskeySignIn(ctx context.Context, pendingToken string) ([]byte, error) {
	return s.beginCeremony(ctx, pendingToken, "login", func(a *account, u *waUser, stored map[string]storedPasskey) (any, *webauthn.SessionData, error) {
		// A passkey flagged as possibly cloned is not offered.
		usable := &waUser{id: u.id, email: u.email, name: u.name}
		for _, c := range u.creds {
			if !stored[string(c.ID)].cloneWarning {
				usable.creds = append(usable.creds, c)
			}
		}
		if len(usable.creds) == 0 {
			return nil, nil, ErrWrongStep
		}
		assertion, session, err := s.wa.BeginLogin(usable)
		if err != nil {
			return nil, nil, fmt.Errorf("begin passkey sign-in: %w", err)
		}
		return assertion, session, nil
	})
}

// FinishPasskeySignIn checks the assertion and signs in. A refused
// assertion counts towards the lockout. A signature counter that did not
// move forward means the credential's key may have been copied: the
// sign-in is refused, the passkey flagged (it is refused from then on) and
// an admin resets the account's second factor (ResetMFA).
func (s *Service) FinishPasskeySignIn(ctx context.Context, pendingToken string, response []byte, ip string) (Session, error) {
	if s.wa == nil {
		return Session{}, ErrUnavailable
	}
	return s.secondStep(ctx, pendingToken, ip, "passkey", true, func(tx pgx.Tx, p *pending, a *account, now time.Time) (string, error) {
		sd, err := takeCeremony(ctx, tx, p, "login")
		if err != nil {
			return "", err
		}
		if sd == nil {
			return "no_ceremony", nil
		}
		parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
		if err != nil {
			s.log.Info("passkey assertion refused", "account", a.ID, "err", webauthnDetail(err))
			return "malformed_response", nil
		}
		u, stored, err := s.loadPasskeys(ctx, tx, a)
		if err != nil {
			return "", err
		}
		cred, err := s.wa.ValidateLogin(u, *sd, parsed)
		if err != nil {
			s.log.Info("passkey assertion refused", "account", a.ID, "err", webauthnDetail(err))
			return "assertion_refused", nil
		}
		sp := stored[string(cred.ID)]
		if sp.cloneWarning {
			return "passkey_flagged", nil
		}
		if cred.Authenticator.CloneWarning {
			if _, err := tx.Exec(ctx, `UPDATE staff_passkeys SET clone_warning = true WHERE id = $1`, cred.ID); err != nil {
				return "", fmt.Errorf("flag passkey: %w", err)
			}
			if err := s.appendAudit(ctx, tx, systemActor, "staff.passkey_clone_warning", a.ID, map[string]any{
				"stored_count": sp.signCount, "presented_count": parsed.Response.AuthenticatorData.Counter,
			}); err != nil {
				return "", err
			}
			s.log.Warn("passkey signature counter went backwards: possible cloned authenticator; passkey flagged", "account", a.ID)
			return "clone_warning", nil
		}
		raw, err := json.Marshal(cred)
		if err != nil {
			return "", fmt.Errorf("passkey credential record: %w", err)
		}
		// Compare-and-set on the counter: two answers racing with one
		// credential cannot both move it.
		tag, err := tx.Exec(ctx, `UPDATE staff_passkeys SET sign_count = $2, credential = $3, last_used_at = $4
			WHERE id = $1 AND sign_count = $5`, cred.ID, int64(cred.Authenticator.SignCount), string(raw), now, sp.signCount)
		if err != nil {
			return "", fmt.Errorf("update passkey: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return "counter_race", nil
		}
		return "", nil
	})
}

// webauthnDetail is the library's explanation of a refusal for the log
// (it names the check that failed, never key material).
func webauthnDetail(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return pe.Details + ": " + pe.DevInfo
	}
	return err.Error()
}
