// Package staff is who compliance staff are and how they sign in to the
// console: accounts with one of the bundle's roles, passwords hashed with
// argon2id, a second factor that is always required (TOTP, or a passkey as
// the stronger choice), optional single sign-on through an OpenID Connect
// provider, and sessions kept in PostgreSQL (revocable, idle and absolute
// timeouts, a fresh token on every sign-in). Failed sign-ins back off and
// lock the account for a while; every sign-in, failure, lock and change is
// written to the audit log with the actor staff:<account id>.
//
// The package has no HTTP: the console (internal/web/console) renders the
// pages and calls this API; the CLI creates the first admin.
//
// Everything a sign-in needs between two requests (the pending sign-in,
// WebAuthn ceremony data, OIDC state, sessions) lives in PostgreSQL, never
// in a replica's memory, so any replica can serve any step. No secret is
// stored or logged in the clear: see migrations/00013_staff.sql.
package staff

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/keyring"
)

// Account is a staff member's public record (no secrets).
type Account struct {
	ID          string    `json:"id"` // uuid
	Email       string    `json:"email"`
	Name        string    `json:"name"`
	Role        string    `json:"role"` // a role of the bundle's data/roles.json
	Disabled    bool      `json:"disabled"`
	TOTP        bool      `json:"totp"`     // a TOTP authenticator is enrolled
	Passkeys    int       `json:"passkeys"` // registered passkeys
	LockedUntil time.Time `json:"locked_until,omitzero"`
	CreatedAt   time.Time `json:"created_at"`
	LastSignIn  time.Time `json:"last_sign_in,omitzero"`
}

// Principal is the signed-in staff member a console request acts as.
type Principal struct {
	AccountID string
	Email     string
	Name      string
	Role      string
	SessionID string // the session's public id (never its token)
	Method    string // how the second factor was given: "totp", "passkey" or "oidc"
}

// Actor is the principal as the audit log and the request timeline name
// it.
func (p Principal) Actor() string { return "staff:" + p.AccountID }

// Session is a signed-in session. Token goes in an HttpOnly cookie; only
// its SHA-256 is stored.
type Session struct {
	Token           string
	Principal       Principal
	IdleExpires     time.Time
	AbsoluteExpires time.Time
}

// Pending is a sign-in past its first step (password or single sign-on),
// waiting for the second factor, or for its enrolment when the account has
// none yet. Token goes in a short-lived HttpOnly cookie.
type Pending struct {
	Token          string
	NeedsEnrolment bool // no second factor yet: enrol TOTP or a passkey now
	TOTP           bool // a TOTP code may complete it
	Passkey        bool // a passkey may complete it
	Expires        time.Time
}

// TOTPEnrolment is a new TOTP secret to show once.
type TOTPEnrolment struct {
	Secret string // base32, for typing in by hand
	URL    string // otpauth:// URL
	QRPNG  []byte // the URL as a QR code (PNG), shown as a data: image
}

// SessionInfo describes a session without its token.
type SessionInfo struct {
	ID        string
	AccountID string
	Method    string
	CreatedAt time.Time
	LastSeen  time.Time
	IPHash    []byte
}

// Errors the console maps to pages. Unknown email, wrong password and a
// disabled account are the same ErrBadCredentials, so sign-in does not say
// which accounts exist.
var (
	ErrBadCredentials = errors.New("staff: wrong email, password or code")
	ErrNoSession      = errors.New("staff: no such session, or it has expired")
	ErrPendingExpired = errors.New("staff: the sign-in took too long; start again")
	ErrWeakPassword   = errors.New("staff: password too weak")

	// ErrNoAccount is wrapped in an apperr not_found error by the account
	// methods (Get, Disable, ResetMFA, …).
	ErrNoAccount = errors.New("staff: no such account")
	// ErrEmailTaken is wrapped in an apperr conflict error by
	// CreateAccount.
	ErrEmailTaken = errors.New("staff: an account with this email exists")
	// ErrWrongStep says the pending sign-in cannot take this step: e.g.
	// TOTP enrolment for an account that already has a second factor, or
	// a TOTP code for an account that has none.
	ErrWrongStep = errors.New("staff: this sign-in step does not apply")
	// ErrUnavailable says a method is not configured here: passkeys
	// without a relying party, single sign-on without a provider.
	ErrUnavailable = errors.New("staff: this sign-in method is not configured")
	// ErrSSO says the single sign-on answer was refused (state mismatch,
	// a provider error, an unverified email); start again.
	ErrSSO = errors.New("staff: single sign-on failed; start again")
)

// LockedError says the account is locked after repeated failures.
type LockedError struct {
	Until time.Time
	// Backoff is true for the short pause between consecutive failures,
	// false for the lockout after MaxFailures.
	Backoff bool
}

func (e *LockedError) Error() string {
	if e.Backoff {
		return fmt.Sprintf("staff: too many failed attempts; try again after %s", e.Until.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("staff: account locked until %s after repeated failed sign-ins", e.Until.UTC().Format(time.RFC3339))
}

// Config tunes sign-in and sessions; zero values take the defaults noted.
type Config struct {
	IdleTimeout     time.Duration // 30 min
	AbsoluteTimeout time.Duration // 12 h
	PendingTTL      time.Duration // 5 min
	MaxFailures     int           // 5 failures (password or second factor) lock the account
	LockFor         time.Duration // 15 min
	Issuer          string        // TOTP issuer shown in authenticator apps ("Steward")
	// WebAuthn relying party: the console's host and origins.
	RPID      string
	RPOrigins []string
	// OIDC turns single sign-on on when set.
	OIDC *OIDCConfig

	// Backoff is the pause after the second consecutive failure, doubled
	// after each further one (capped at MaxBackoff) until the lockout:
	// with the defaults 1 s, 2 s, 4 s, then locked. A sign-in step tried
	// during the pause is refused with a *LockedError{Backoff: true}
	// without being checked. 1 s; negative turns the pause off.
	Backoff    time.Duration
	MaxBackoff time.Duration // 30 s
	// TouchEvery throttles the write of a session's last activity: at
	// most once per TouchEvery per session. The idle check itself is
	// exact against what is stored, so a session idles out between
	// IdleTimeout-TouchEvery and IdleTimeout after its last request. 1 min.
	TouchEvery time.Duration
	// Password is the argon2id cost of new hashes; a stored hash made
	// with other parameters is rehashed at its next successful sign-in.
	// Zero: DefaultPasswordParams.
	Password PasswordParams
}

// OIDCConfig is an OpenID Connect provider for single sign-on. A verified
// email claim must match an existing, enabled account; the role stays the
// account's. The provider's sign-in counts as the second factor only when
// its amr claim names one (mfa, otp, hwk, swk); otherwise the account's own
// second factor is asked for.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURL  string // <console>/signin/oidc/callback
}

// Deps is what the service runs on.
type Deps struct {
	Pool *pgxpool.Pool
	// Keys seals TOTP secrets and PKCE verifiers and hashes IP addresses
	// and unknown sign-in emails.
	Keys  *keyring.Keyring
	Audit *audit.Log
	Clock clock.Clock
	Log   *slog.Logger
	// IsRole says whether a role exists in the policy bundle in force
	// (asked at each account change, so a policy reload is seen).
	IsRole func(role string) bool
	// HTTPClient reaches the OIDC provider; nil: a client with a 10 s
	// timeout.
	HTTPClient *http.Client
}

// Service is the staff directory and sign-in.
type Service struct {
	cfg    Config
	pool   *pgxpool.Pool
	keys   *keyring.Keyring
	audit  *audit.Log
	clock  clock.Clock
	log    *slog.Logger
	isRole func(string) bool
	http   *http.Client

	wa *webauthn.WebAuthn // nil: passkeys are not configured

	// dummyHash is verified against when the email is unknown, so an
	// unknown email costs the same argon2id work as a known one.
	dummyHash string

	oidcMu sync.Mutex
	oidc   *oidcClient // discovered on first use (the provider may be down at start)
}

// Defaults.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
	DefaultPendingTTL      = 5 * time.Minute
	DefaultMaxFailures     = 5
	DefaultLockFor         = 15 * time.Minute
	DefaultBackoff         = time.Second
	DefaultMaxBackoff      = 30 * time.Second
	DefaultTouchEvery      = time.Minute
	DefaultIssuer          = "Steward"
)

// New checks the configuration and returns the service.
func New(cfg Config, deps Deps) (*Service, error) {
	if deps.Pool == nil || deps.Keys == nil || deps.Audit == nil || deps.IsRole == nil {
		return nil, errors.New("staff: pool, keys, audit and IsRole are required")
	}
	if deps.Clock == nil {
		deps.Clock = clock.Real{}
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.HTTPClient == nil {
		deps.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.IdleTimeout, DefaultIdleTimeout)
	def(&cfg.AbsoluteTimeout, DefaultAbsoluteTimeout)
	def(&cfg.PendingTTL, DefaultPendingTTL)
	def(&cfg.LockFor, DefaultLockFor)
	def(&cfg.Backoff, DefaultBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.TouchEvery, DefaultTouchEvery)
	if cfg.MaxFailures <= 0 {
		cfg.MaxFailures = DefaultMaxFailures
	}
	if cfg.Issuer == "" {
		cfg.Issuer = DefaultIssuer
	}
	if cfg.Password == (PasswordParams{}) {
		cfg.Password = DefaultPasswordParams
	}
	if err := cfg.Password.validate(); err != nil {
		return nil, fmt.Errorf("staff: password parameters: %w", err)
	}
	if cfg.IdleTimeout < 0 || cfg.AbsoluteTimeout < cfg.IdleTimeout || cfg.PendingTTL < 0 || cfg.LockFor < 0 {
		return nil, errors.New("staff: timeouts must be positive and the absolute timeout at least the idle timeout")
	}
	if cfg.TouchEvery >= cfg.IdleTimeout {
		// A session must be touched well within its idle window, or an
		// active person would be signed out.
		cfg.TouchEvery = cfg.IdleTimeout / 2
	}
	s := &Service{
		cfg: cfg, pool: deps.Pool, keys: deps.Keys, audit: deps.Audit, clock: deps.Clock,
		log: deps.Log, isRole: deps.IsRole, http: deps.HTTPClient,
	}
	if cfg.RPID != "" {
		wa, err := webauthn.New(&webauthn.Config{
			RPID:          cfg.RPID,
			RPDisplayName: cfg.Issuer,
			RPOrigins:     cfg.RPOrigins,
			// Attestation is not asked for: which authenticator model a
			// staff member uses is not policy here, and "none" keeps
			// their device private.
			AttestationPreference: protocol.PreferNoAttestation,
			AuthenticatorSelection: protocol.AuthenticatorSelection{
				ResidentKey:      protocol.ResidentKeyRequirementPreferred,
				UserVerification: protocol.VerificationPreferred,
			},
		})
		if err != nil {
			return nil, fmt.Errorf("staff: webauthn relying party %q: %w", cfg.RPID, err)
		}
		s.wa = wa
	}
	if o := cfg.OIDC; o != nil {
		if o.Issuer == "" || o.ClientID == "" || o.RedirectURL == "" {
			return nil, errors.New("staff: single sign-on needs the issuer, client id and redirect URL")
		}
		if u, err := url.Parse(o.RedirectURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("staff: single sign-on redirect URL %q is not an absolute http(s) URL", o.RedirectURL)
		}
	}
	dummy, err := hashPassword(randomToken(""), cfg.Password)
	if err != nil {
		return nil, fmt.Errorf("staff: %w", err)
	}
	s.dummyHash = dummy
	return s, nil
}

// Passkeys says whether passkeys are configured (a relying party is set).
func (s *Service) Passkeys() bool { return s.wa != nil }

// SSO says whether single sign-on is configured.
func (s *Service) SSO() bool { return s.cfg.OIDC != nil }

// Config returns the configuration in force, defaults filled in (the
// console shows the timeouts), without the single sign-on client secret.
func (s *Service) Config() Config {
	c := s.cfg
	if c.OIDC != nil {
		o := *c.OIDC
		o.ClientSecret = ""
		c.OIDC = &o
	}
	c.RPOrigins = append([]string(nil), c.RPOrigins...)
	return c
}
