package dsar

// Verification levels: how sure Steward is of who is asking, what each
// method reaches, and the rule that nothing is planned (so nothing disclosed
// or deleted) below the level the policy asks for (deadlines.rego
// "verification", recorded on the request at intake).
//
// Cal. Code Regs. tit. 11 §7060-7062: a reasonable degree of certainty for
// most requests, a reasonably high degree for specific pieces of personal
// information, none for an opt-out (§7026); §7061: an account holder may be
// verified through the account's own authentication. GDPR Art. 12(6):
// reasonable measures. The web privacy notice: "We will verify identity
// (challenge login, recent invoice, signed instruction, etc.)".

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/challengelogin"
)

// Level is a degree of certainty of the requester's identity.
type Level string

// The levels, weakest first. AccountLogin (the account's own
// authentication, re-done for this request) satisfies High.
const (
	LevelNone         Level = "none"
	LevelReasonable   Level = "reasonable"
	LevelHigh         Level = "high"
	LevelAccountLogin Level = "account_login"
)

var levelRank = map[Level]int{LevelNone: 0, LevelReasonable: 1, LevelHigh: 2, LevelAccountLogin: 3}

// ParseLevel accepts a level's name.
func ParseLevel(s string) (Level, bool) {
	_, ok := levelRank[Level(s)]
	return Level(s), ok
}

// AtLeast reports whether l satisfies want. An unknown or empty level
// satisfies only none.
func (l Level) AtLeast(want Level) bool {
	have, ok := levelRank[l]
	if !ok {
		have = -1
	}
	return have >= levelRank[want]
}

// Verification methods, as recorded on the request (Request.Verification is
// the method that completed verification; VerificationMethods all of them).
const (
	MethodNone              = "none"               // policy asks for nothing (an opt-out): the contact is only where to tell the person
	MethodEmailCode         = "email_code"         // a 6-digit code sent to the address: reasonable
	MethodTelegram          = "telegram"           // Mini App initData signed by Telegram: high (the account's own authentication)
	MethodTelegramAsserted  = "telegram_asserted"  // the bot's backend vouches for the Telegram user: high
	MethodStaff             = "staff"              // a reviewer verified the person and states the level
	MethodChallengeLogin    = "challenge_login"    // the product's signed-in backend asserts the person: account_login
	MethodRecentInvoice     = "recent_invoice"     // after the email code, a recent invoice of the person's: high
	MethodSignedInstruction = "signed_instruction" // an uploaded signed document staff reviewed: high
)

// firstFactor are the methods that prove control of the identity the
// request names. A second factor (recent invoice, signed instruction) adds
// certainty to one of them and never verifies a request on its own.
var firstFactor = map[string]bool{MethodNone: true, MethodEmailCode: true, MethodTelegram: true,
	MethodTelegramAsserted: true, MethodStaff: true, MethodChallengeLogin: true}

// VerificationStep is one method that succeeded for a request: what it
// reached, when and by whom (system:dsar for the person's own steps, the
// staff key for a reviewer's). It holds no secret and no personal data.
type VerificationStep struct {
	Method string    `json:"method"`
	Level  Level     `json:"level"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor,omitempty"`
}

// reachedLevel is the strongest level the steps reach.
func reachedLevel(steps []VerificationStep) Level {
	best := Level("")
	for _, st := range steps {
		if best == "" || levelRank[st.Level] > levelRank[best] {
			best = st.Level
		}
	}
	return best
}

func hasFirstFactor(steps []VerificationStep) bool {
	for _, st := range steps {
		if firstFactor[st.Method] {
			return true
		}
	}
	return false
}

func hasMethod(steps []VerificationStep, method string) bool {
	for _, st := range steps {
		if st.Method == method {
			return true
		}
	}
	return false
}

// required is the level the policy asked for at intake; requests made
// before levels were recorded keep the old rule (one email code).
func (r *Request) required() Level {
	if l, ok := ParseLevel(r.VerificationRequired); ok {
		return l
	}
	return LevelReasonable
}

// setDerived fills the fields computed from the stored ones.
func (r *Request) setDerived() {
	r.AwaitingSecondFactor = r.Status == IdentityPending && hasFirstFactor(r.VerificationMethods) &&
		!Level(r.VerificationLevel).AtLeast(r.required())
}

// addVerification records a successful method on the locked request r and,
// when a first factor is among its methods and the level reached satisfies
// the policy's, verifies it (which plans it). It reports whether r is now
// verified; if not, r waits in identity_pending for a second factor
// (AwaitingSecondFactor) — the caller moves a received request there.
func (s *Service) addVerification(ctx context.Context, tx pgx.Tx, r *Request, step VerificationStep) (bool, error) {
	if step.At.IsZero() {
		step.At = s.Clock.Now()
	}
	steps := append(append([]VerificationStep(nil), r.VerificationMethods...), step)
	level := reachedLevel(steps)
	b, err := json.Marshal(steps)
	if err != nil {
		return false, fmt.Errorf("dsar: encode verification methods: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE privacy_requests SET verification_methods = $2, verification_level = $3, updated_at = $4 WHERE id = $1`,
		r.ID, b, string(level), s.Clock.Now()); err != nil {
		return false, fmt.Errorf("dsar: record verification: %w", err)
	}
	r.VerificationMethods, r.VerificationLevel = steps, string(level)
	if err := s.event(ctx, tx, r.ID, "verification_step", "", "", step.Actor, "", map[string]any{
		"method": step.Method, "level": string(step.Level), "reached": string(level), "required": string(r.required()),
	}); err != nil {
		return false, err
	}
	if (r.Status == Received || r.Status == IdentityPending) && hasFirstFactor(steps) && level.AtLeast(r.required()) {
		return true, s.verified(ctx, tx, r, step.Actor, step.Method)
	}
	r.setDerived()
	return false, nil
}

// checkLevel is the guard before a request is verified and planned:
// nothing is disclosed or deleted below the level the policy asks for.
func checkLevel(r *Request) error {
	if !Level(r.VerificationLevel).AtLeast(r.required()) || !hasFirstFactor(r.VerificationMethods) {
		return apperr.New(apperr.Conflict, "identity verified to %q; the policy asks for %q before anything is disclosed or deleted",
			r.VerificationLevel, r.required())
	}
	return nil
}

// --- challenge login -------------------------------------------------------------

// verifyChallengeToken checks a challenge-login token for a request of
// product about subject, and spends its jti in tx. The token's rid, when it
// has one, must be requestID ("" at intake, when there is no id yet).
func (s *Service) verifyChallengeToken(ctx context.Context, tx pgx.Tx, token, product, requestID string, subject identity.Subject) error {
	if len(s.cfg.ChallengeLoginKeys) == 0 {
		return apperr.New(apperr.Invalid, "challenge login is not configured (STEWARD_CHALLENGE_LOGIN_KEYS)")
	}
	now := s.Clock.Now()
	c, err := challengelogin.Parse(strings.TrimSpace(token), s.cfg.ChallengeLoginKeys, now)
	if err != nil {
		return apperr.Field("token", "%s", err.Error())
	}
	if product != "" && c.Product != product {
		return apperr.Field("token", "was issued by another product than the request's")
	}
	if c.RequestID != "" && c.RequestID != requestID {
		return apperr.Field("token", "was issued for another request")
	}
	subj, err := identity.Parse(c.Subject)
	if err != nil || subj.String() != subject.String() {
		return apperr.Field("token", "asserts another person than the request names")
	}
	sum := sha256.Sum256([]byte(c.Product + "\x00" + c.ID))
	// Expired entries go first: the table holds only tokens still alive.
	if _, err := tx.Exec(ctx, `DELETE FROM challenge_login_tokens WHERE expires_at < $1`, now); err != nil {
		return fmt.Errorf("dsar: purge spent tokens: %w", err)
	}
	tag, err := tx.Exec(ctx, `INSERT INTO challenge_login_tokens (jti_hash, expires_at, used_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
		sum[:], c.Expires, now)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			return fmt.Errorf("dsar: spend token: %s", pe.Code)
		}
		return fmt.Errorf("dsar: spend token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return apperr.Field("token", "has already been used: ask the product for a new one")
	}
	return nil
}

// ChallengeLogin verifies a waiting request with a token the product's
// signed-in backend issued for the person ("challenge login"). It is a first
// factor reaching account_login, so it verifies any request the policy
// allows; a failure is audited (with the reason, never the token) and
// changes nothing else. The status token is rotated, as after a code.
func (s *Service) ChallengeLogin(ctx context.Context, id, token string) (VerifyResult, error) {
	if !ValidID(id) {
		return VerifyResult{}, errNotFound
	}
	if strings.TrimSpace(token) == "" {
		return VerifyResult{}, apperr.Field("token", "required: the token the product's backend issued")
	}
	var out VerifyResult
	var failure error
	err := s.tx(ctx, func(tx pgx.Tx) error {
		r, err := s.lock(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.Status != IdentityPending {
			return apperr.New(apperr.Conflict, "this request is not waiting for verification (it is %s)", strings.ReplaceAll(string(r.Status), "_", " "))
		}
		given, err := s.givenSubject(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := s.verifyChallengeToken(ctx, tx, token, r.Product, id, given); err != nil {
			var ae *apperr.Error
			if !errors.As(err, &ae) {
				return err
			}
			failure = err
			return s.event(ctx, tx, id, "verification_failed", "", "", actorSystem, "", map[string]any{
				"method": MethodChallengeLogin, "reason": err.Error()})
		}
		tok, err := rotateStatusToken(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := s.addVerification(ctx, tx, &r, VerificationStep{Method: MethodChallengeLogin, Level: LevelAccountLogin, Actor: actorSystem}); err != nil {
			return err
		}
		out = VerifyResult{Request: r, StatusToken: tok}
		return nil
	})
	if err != nil {
		return VerifyResult{}, err
	}
	if failure != nil {
		return VerifyResult{}, failure
	}
	return out, nil
}

// givenSubject is the identity the request was made for.
func (s *Service) givenSubject(ctx context.Context, tx pgx.Tx, id string) (identity.Subject, error) {
	ids, err := s.identities(ctx, tx, id)
	if err != nil {
		return identity.Subject{}, err
	}
	for _, x := range ids {
		if x.source == SourceGiven {
			return x.subj, nil
		}
	}
	return identity.Subject{}, errors.New("dsar: request has no given identity")
}

// SecondFactors lists the second factors a person can use for a request of
// product, in the order the privacy center offers them: recent_invoice when
// a payment connector of the product can check invoices, challenge_login
// when the product has a challenge-login key. (signed_instruction is staff's
// review of an uploaded document, not something the person does here.)
func (s *Service) SecondFactors(product string) []string {
	var out []string
	if len(s.invoiceVerifiers(product)) > 0 {
		out = append(out, MethodRecentInvoice)
	}
	if _, ok := s.cfg.ChallengeLoginKeys[product]; ok {
		out = append(out, MethodChallengeLogin)
	}
	return out
}
