package dsar

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/mail"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/notify"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/subjects"
	"github.com/steward-privacy/steward/internal/telegram"
)

// CreateInput is a new privacy request as the API received it.
type CreateInput struct {
	Type     string
	Subject  identity.Subject
	Region   string
	Channel  string
	Language string
	// Product is the bundle's product the request is for (policy
	// Engine.Products); empty means the product the subject's identity kind
	// belongs to (Engine.ProductOf), which is the default product unless a
	// product claims the kind (a tg: subject is the bot's).
	Product string
	// Changes are the corrections of a rectification request: data category
	// (user.contact.email, user.name, ...) to the new value.
	Changes map[string]string

	// Bot channel: Telegram Mini App initData, or the caller (a frontend
	// key) asserting the user id was verified by Telegram.
	InitData         string
	IdentityAsserted bool
	// Staff channel: the reviewer's note, and whether they verified the
	// identity themselves (how goes in the note).
	Note             string
	IdentityVerified bool
	// VerificationLevel is the level a reviewer who verified the identity
	// states they reached (none, reasonable, high, account_login); empty:
	// the level the policy asks for. A lower one than the policy's is
	// refused: the reviewer verifies further or leaves it to the person.
	VerificationLevel string
	// ChallengeLoginToken: the product's signed-in backend asserts the
	// person (a web or bot request; challengelogin), verifying the request
	// at intake without a code.
	ChallengeLoginToken string
	// Agent channel: the agent, and their signed authorization as an
	// uploaded document (stored sealed) or a reference to one staff hold.
	Agent         *Agent
	AgentDocument *Document

	Actor    string // key:<id> of the caller
	ClientIP string
	// CanAssert and IsStaff are what the caller's role may do, decided by
	// policy in the API layer.
	CanAssert bool
	IsStaff   bool
}

// Created is the outcome of Create.
type Created struct {
	Request Request
	// StatusToken lets the person read the status without an account. It is
	// shown once; empty when Existing.
	StatusToken string
	// Existing is true when an open request of the same type for the same
	// subject was returned instead of a new one.
	Existing bool
}

var regionRe = regexp.MustCompile(`^[A-Za-z]{2}(-[A-Za-z0-9]{1,3})?$`)

// validate checks everything that does not need the database, so a bad
// request changes nothing.
func (in *CreateInput) validate(s *Service) error {
	in.Type = strings.TrimSpace(in.Type)
	if !isRequestType(in.Type) {
		return apperr.Field("type", "must be one of access, export, erasure, rectification, restriction, objection")
	}
	if in.Subject.IsZero() {
		return apperr.Field("subject", "required, as type:value (e.g. email:ann@example.com or tg:123456)")
	}
	if !regionRe.MatchString(in.Region) {
		return apperr.Field("region", "required: an ISO 3166 country (DE) or subdivision (US-CA) code")
	}
	in.Region = strings.ToUpper(in.Region)
	if in.Language == "" {
		in.Language = "en"
	}
	if !languages[in.Language] {
		return apperr.Field("language", "must be en, ru or uz")
	}
	if !channels[in.Channel] {
		return apperr.Field("channel", "must be web, bot, staff or agent")
	}
	if in.Type == "rectification" {
		if len(in.Changes) == 0 {
			return apperr.Field("changes", "a rectification request names the data to correct and the new values")
		}
		if err := validateChanges(in.Changes); err != nil {
			return err
		}
	} else if len(in.Changes) > 0 {
		return apperr.Field("changes", "only a rectification request carries changes")
	}
	if len(in.Note) > 2000 || !utf8.ValidString(in.Note) {
		return apperr.Field("note", "at most 2000 characters of text")
	}
	switch in.Channel {
	case ChannelWeb:
		if in.Subject.Type != identity.Email {
			return apperr.Field("subject", "a web request is verified by a code sent by email: give an email: subject")
		}
	case ChannelBot:
		if in.Subject.Type != identity.Telegram {
			return apperr.Field("subject", "a bot request names the Telegram user: give a tg: subject")
		}
		switch {
		case in.InitData != "":
			if s.cfg.TelegramBotToken == "" {
				return apperr.New(apperr.Invalid, "Telegram initData cannot be verified: no bot token is configured")
			}
			d, err := telegram.Validate(in.InitData, s.cfg.TelegramBotToken, s.Clock.Now(), s.cfg.InitDataMaxAge)
			if err != nil {
				return apperr.Field("init_data", "%s", err.Error())
			}
			if strconv.FormatInt(d.User.ID, 10) != in.Subject.Value {
				return apperr.Field("init_data", "was issued to another Telegram user than the subject")
			}
		case in.IdentityAsserted:
			if !in.CanAssert {
				return apperr.New(apperr.Forbidden, "this key may not assert a verified Telegram identity")
			}
		case in.ChallengeLoginToken != "":
		default:
			return apperr.Field("init_data", "a bot request needs Telegram Mini App initData, or identity_asserted from the bot's backend")
		}
	case ChannelStaff:
		if !in.IsStaff {
			return apperr.New(apperr.Forbidden, "only a reviewer can enter a request received by email or post")
		}
		if strings.TrimSpace(in.Note) == "" {
			return apperr.Field("note", "required for a staff-entered request: how it was received (and, if verified, how)")
		}
		if !in.IdentityVerified && in.Subject.Type != identity.Email {
			return apperr.Field("identity_verified", "a subject without an email address must be verified by the reviewer")
		}
	case ChannelAgent:
		a := in.Agent
		if a == nil || strings.TrimSpace(a.Name) == "" || strings.TrimSpace(a.AuthorizationRef) == "" && in.AgentDocument == nil {
			return apperr.Field("agent", "name, email and the signed authorization (authorization_ref or an uploaded document) are required")
		}
		if in.AgentDocument != nil {
			if err := validateDocument(in.AgentDocument); err != nil {
				return err
			}
			if strings.TrimSpace(a.AuthorizationRef) == "" {
				a.AuthorizationRef = "uploaded document, sha256 " + in.AgentDocument.SHA256
			}
		}
		if _, err := mail.ParseAddress(a.Email); err != nil || len(a.Email) > 254 {
			return apperr.Field("agent.email", "must be an email address")
		}
		if len(a.Name) > 200 || len(a.AuthorizationRef) > 500 {
			return apperr.Field("agent", "name or authorization_ref too long")
		}
		if in.Subject.Type != identity.Email {
			return apperr.Field("subject", "the subject confirms an agent's request by email: give an email: subject")
		}
	}
	if in.Channel != ChannelBot && (in.InitData != "" || in.IdentityAsserted) {
		return apperr.Field("init_data", "only bot requests carry Telegram identity proof")
	}
	if in.VerificationLevel != "" {
		if _, ok := ParseLevel(in.VerificationLevel); !ok || !in.IdentityVerified {
			return apperr.Field("verification_level", "none, reasonable, high or account_login, with identity_verified")
		}
	}
	if in.ChallengeLoginToken != "" && in.Channel != ChannelWeb && in.Channel != ChannelBot {
		return apperr.Field("challenge_login_token", "only a web or bot request is verified by the product's sign-in")
	}
	if in.Channel != ChannelStaff && in.IdentityVerified {
		return apperr.Field("identity_verified", "only a reviewer entering a request can vouch for the identity")
	}
	if in.Channel != ChannelAgent && (in.Agent != nil || in.AgentDocument != nil) {
		return apperr.Field("agent", "only an agent request carries agent details")
	}
	return nil
}

func isRequestType(t string) bool {
	for _, rt := range policy.RequestTypes() {
		if t == rt {
			return true
		}
	}
	return false
}

// correctable are the data categories a person can correct, with how each
// value is checked. They mirror dsar.rego's correctable prefixes.
var correctable = map[string]func(string) error{
	"user.contact.email": func(v string) error {
		if _, err := identity.NormalizeEmail(v); err != nil {
			return errors.New("must be an email address")
		}
		return nil
	},
	"user.contact.phone": func(v string) error {
		if !phoneRe.MatchString(v) {
			return errors.New("must be a phone number in international form (+4915112345678)")
		}
		return nil
	},
	"user.contact.address": plainText(500),
	"user.name":            plainText(200),
	"user.account.username": func(v string) error {
		if !usernameRe.MatchString(v) {
			return errors.New("letters, digits, '.', '_' or '-', up to 64")
		}
		return nil
	},
	"user.preferences": plainText(100),
}

var (
	phoneRe    = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	usernameRe = regexp.MustCompile(`^[\p{L}\p{N}._-]{1,64}$`)
)

func plainText(max int) func(string) error {
	return func(v string) error {
		if strings.TrimSpace(v) == "" || utf8.RuneCountInString(v) > max || !utf8.ValidString(v) {
			return fmt.Errorf("non-empty text of at most %d characters", max)
		}
		for _, r := range v {
			if unicode.IsControl(r) {
				return errors.New("must not contain control characters")
			}
		}
		return nil
	}
}

// correctableCheck finds the check for a category at or under one of the
// correctable ones (user.name.first is under user.name). A correction is
// applied to fields of exactly that category.
func correctableCheck(category string) (func(string) error, bool) {
	for c := category; c != ""; {
		if check, ok := correctable[c]; ok {
			return check, true
		}
		i := strings.LastIndexByte(c, '.')
		if i < 0 {
			break
		}
		c = c[:i]
	}
	return nil, false
}

func validateChanges(ch map[string]string) error {
	if len(ch) > 20 {
		return apperr.Field("changes", "at most 20 corrections per request")
	}
	keys := make([]string, 0, len(ch))
	for k := range ch {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		check, ok := correctableCheck(k)
		if !ok {
			return apperr.Field("changes."+k, "not a category a person can correct (user.contact.email, user.contact.phone, user.contact.address, user.name, user.account.username, user.preferences)")
		}
		if err := check(ch[k]); err != nil {
			return apperr.Field("changes."+k, "%s", err.Error())
		}
	}
	return nil
}

// Create takes in a request: checks it, finds its regime and deadline in
// policy, and stores it with its first timeline entry and audit event, in
// one transaction. Web and agent requests then wait for the emailed code;
// bot requests (Telegram vouches) and staff-verified ones are verified at
// once and planned.
func (s *Service) Create(ctx context.Context, in CreateInput) (Created, error) {
	if err := in.validate(s); err != nil {
		return Created{}, err
	}
	engine := s.Policies.Current()
	if in.Product == "" {
		in.Product = engine.ProductOf(in.Subject.Kind())
	} else if _, ok := engine.Products[in.Product]; !ok {
		return Created{}, apperr.Field("product", "unknown product %q", in.Product)
	}
	regime := engine.RegimeFor(in.Region)
	dl, err := engine.Deadline(ctx, regime, in.Type, in.Region)
	if err != nil {
		return Created{}, fmt.Errorf("dsar: deadline: %w", err)
	}
	now := s.Clock.Now()
	due := dl.Due(now)
	var ackBy, extUntil, noticeBy *time.Time
	if t, ok := dl.AcknowledgeBy(now); ok {
		ackBy = &t
	}
	if t, ok := dl.ExtendedDue(now); ok && t.After(due) {
		extUntil = &t
		if n, ok := dl.ExtensionNoticeBy(now); ok {
			noticeBy = &n
		}
	}
	id := uuid.NewString()
	token, tokenH := newStatusToken()
	step, err := firstStep(in, Level(dl.Verification))
	if err != nil {
		return Created{}, err
	}
	verifiedNow := step != nil
	verification := MethodEmailCode
	if step != nil {
		verification = step.Method
	}
	var contact string
	if in.Subject.Type == identity.Email {
		contact = in.Subject.Value
	}

	var out Created
	err = s.tx(ctx, func(tx pgx.Tx) error {
		row, err := subjects.Upsert(ctx, tx, s.Keys, in.Subject, now)
		if err != nil {
			return fmt.Errorf("dsar: %w", err)
		}
		subjectID, subjectHash := row.ID, row.Hash
		if dup, ok, err := s.openDuplicate(ctx, tx, in.Type, in.Subject, subjectID, now); err != nil {
			return err
		} else if ok {
			out = Created{Request: dup, Existing: true}
			return nil
		}
		if !verifiedNow {
			// Refuse before anything is stored: a flood of requests naming
			// one address would otherwise flood its inbox.
			if err := s.checkSendLimits(ctx, tx, subjectHash, in.ClientIP, now); err != nil {
				return err
			}
		}
		var contactKID *string
		var contactCT []byte
		if contact != "" {
			kid, ct, err := s.seal(id, "contact", contact)
			if err != nil {
				return fmt.Errorf("dsar: seal contact: %w", err)
			}
			contactKID, contactCT = &kid, ct
		}
		var detailsKID *string
		var detailsCT []byte
		if len(in.Changes) > 0 || in.Agent != nil {
			kid, ct, err := s.seal(id, "details", details{Changes: in.Changes, Agent: in.Agent})
			if err != nil {
				return fmt.Errorf("dsar: seal details: %w", err)
			}
			detailsKID, detailsCT = &kid, ct
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO privacy_requests (id, type, status, channel, language, region, regime, subject_id, subject_kind,
				contact_kid, contact_ct, status_token_hash, details_kid, details_ct, received_at, due_at, original_due_at,
				acknowledge_by, extendable_until, extension_notice_by, verification, created_by, policy_revision, updated_at, product)
			VALUES ($1, $2, 'received', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16, $17, $18, $19, $20, $21, $14, $22)
			ON CONFLICT (subject_id, type) WHERE status NOT IN ('completed', 'denied', 'canceled') DO NOTHING`,
			id, in.Type, in.Channel, in.Language, in.Region, dl.Regime, subjectID, in.Subject.Kind(),
			contactKID, contactCT, tokenH, detailsKID, detailsCT, now, due, ackBy, extUntil, noticeBy, verification,
			in.Actor, engine.Revision(), in.Product)
		if err != nil {
			return fmt.Errorf("dsar: insert request: %w", err)
		}
		if tag.RowsAffected() == 0 {
			r, err := scanRequest(tx.QueryRow(ctx, `SELECT `+requestColumns+` FROM privacy_requests
				WHERE subject_id = $1 AND type = $2 AND status NOT IN ('completed', 'denied', 'canceled')`, subjectID, in.Type), now)
			if err != nil {
				return fmt.Errorf("dsar: find open request: %w", err)
			}
			out = Created{Request: r, Existing: true}
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE privacy_requests SET verification_required = $2, package_review_required = $3 WHERE id = $1`,
			id, dl.Verification, dl.PackageReview); err != nil {
			return fmt.Errorf("dsar: record verification level: %w", err)
		}
		if in.ChallengeLoginToken != "" {
			if err := s.verifyChallengeToken(ctx, tx, in.ChallengeLoginToken, in.Product, "", in.Subject); err != nil {
				return err
			}
		}
		if err := s.storeIdentity(ctx, tx, id, in.Subject, SourceGiven); err != nil {
			return err
		}
		if in.AgentDocument != nil {
			if err := s.storeDocument(ctx, tx, id, DocAgentAuthorization, *in.AgentDocument); err != nil {
				return err
			}
		}
		r, err := s.lock(ctx, tx, id)
		if err != nil {
			return err
		}
		det := map[string]any{"type": in.Type, "channel": in.Channel, "regime": dl.Regime, "subject_kind": in.Subject.Kind(),
			"due_at": due.Format(time.RFC3339), "deadline_rule": dl.Rule}
		if err := s.event(ctx, tx, id, "received", "", string(Received), in.Actor, in.Note, det); err != nil {
			return err
		}
		if verifiedNow {
			step.Actor = in.Actor
			done, err := s.addVerification(ctx, tx, &r, *step)
			if err != nil {
				return err
			}
			if !done {
				// A first factor that does not reach the policy's level
				// (a bot request where the policy asks for account_login):
				// the request waits for a second one.
				if err := s.move(ctx, tx, &r, AskVerification, in.Actor, "", nil); err != nil {
					return err
				}
				r.setDerived()
			}
		} else {
			if err := s.move(ctx, tx, &r, AskVerification, in.Actor, "", nil); err != nil {
				return err
			}
			if err := s.sendCode(ctx, tx, &r, contact, subjectHash, in.ClientIP, now); err != nil {
				return err
			}
		}
		out = Created{Request: r, StatusToken: token}
		return nil
	})
	if err != nil {
		return Created{}, err
	}
	s.Log.InfoContext(ctx, "privacy request received", "request_id", out.Request.ID, "type", in.Type, "channel", in.Channel, "existing", out.Existing)
	return out, nil
}

// storeIdentity records one identity of the request's subject, sealed.
func (s *Service) storeIdentity(ctx context.Context, tx pgx.Tx, requestID string, subj identity.Subject, source string) error {
	kid, ct, err := s.seal(requestID, "identity", subj.String())
	if err != nil {
		return fmt.Errorf("dsar: seal identity: %w", err)
	}
	_, err = tx.Exec(ctx, `
		INSERT INTO privacy_request_identities (request_id, kind, lookup_hash, kid, ciphertext, source)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
		requestID, subj.Kind(), s.Keys.Hash(subj), kid, ct, source)
	if err != nil {
		return fmt.Errorf("dsar: store identity: %w", err)
	}
	return nil
}

// verified moves a request to verified, acknowledges it to the person and
// queues its planning, all in tx.
func (s *Service) verified(ctx context.Context, tx pgx.Tx, r *Request, actor, method string) error {
	if err := checkLevel(r); err != nil {
		return err
	}
	if err := s.move(ctx, tx, r, Verify, actor, "", map[string]any{"method": method}); err != nil {
		return err
	}
	now := s.Clock.Now()
	if _, err := tx.Exec(ctx, `UPDATE privacy_requests SET verified_at = $2, verification = $3 WHERE id = $1`, r.ID, now, method); err != nil {
		return fmt.Errorf("dsar: mark verified: %w", err)
	}
	r.VerifiedAt, r.Verification = &now, method
	if err := s.notifyPerson(ctx, tx, r, notify.TemplateRequestReceived, map[string]string{"due_date": r.DueAt.Format("2006-01-02")}); err != nil {
		return err
	}
	return s.enqueuePlan(ctx, tx, r.ID, r.planRun)
}

// --- verification codes --------------------------------------------------------------

func (s *Service) codeHash(requestID, code string) []byte {
	return s.Keys.HashValue("dsar-code\x00" + requestID + "\x00" + code)
}

func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(err)
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// checkSendLimits refuses a code send when the identity or the IP has had
// too many in the window.
func (s *Service) checkSendLimits(ctx context.Context, tx pgx.Tx, subjectHash []byte, ip string, now time.Time) error {
	since := now.Add(-s.cfg.SendWindow)
	var bySubject, byIP int
	var ipHash []byte
	if ip != "" {
		ipHash = s.Keys.HashIP(ip)
	}
	err := tx.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE subject_hash = $1), count(*) FILTER (WHERE $2::bytea IS NOT NULL AND ip_hash = $2)
		FROM verification_sends WHERE at > $3 AND (subject_hash = $1 OR ip_hash = $2)`, subjectHash, ipHash, since).Scan(&bySubject, &byIP)
	if err != nil {
		return fmt.Errorf("dsar: count code sends: %w", err)
	}
	if bySubject >= s.cfg.SendsPerIdentity {
		return apperr.New(apperr.RateLimited, "too many codes were sent to this address recently; try again later")
	}
	if ipHash != nil && byIP >= s.cfg.SendsPerIP {
		return apperr.New(apperr.RateLimited, "too many codes were requested from this network recently; try again later")
	}
	return nil
}

// sendCode replaces the request's code with a new one and queues the email.
func (s *Service) sendCode(ctx context.Context, tx pgx.Tx, r *Request, contact string, subjectHash []byte, ip string, now time.Time) error {
	code := newCode()
	if _, err := tx.Exec(ctx, `
		INSERT INTO verification_codes (request_id, code_hash, hash_kid, expires_at, attempts, created_at)
		VALUES ($1, $2, $3, $4, 0, $5)
		ON CONFLICT (request_id) DO UPDATE SET code_hash = EXCLUDED.code_hash, hash_kid = EXCLUDED.hash_kid,
			expires_at = EXCLUDED.expires_at, attempts = 0, created_at = EXCLUDED.created_at`,
		r.ID, s.codeHash(r.ID, code), s.Keys.ActiveKID(), now.Add(s.cfg.CodeTTL), now); err != nil {
		return fmt.Errorf("dsar: store code: %w", err)
	}
	var ipHash []byte
	if ip != "" {
		ipHash = s.Keys.HashIP(ip)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO verification_sends (subject_hash, ip_hash, at) VALUES ($1, $2, $3)`, subjectHash, ipHash, now); err != nil {
		return fmt.Errorf("dsar: record code send: %w", err)
	}
	if _, err := s.Outbox.EnqueueEmail(ctx, tx, notify.Email{
		To: contact, Template: notify.TemplateVerificationCode, Language: r.Language,
		Data: map[string]string{"code": code, "expires_minutes": strconv.Itoa(int(s.cfg.CodeTTL / time.Minute)), "request_type": r.Type},
	}); err != nil {
		return fmt.Errorf("dsar: queue code email: %w", err)
	}
	return s.event(ctx, tx, r.ID, "verification_sent", "", "", actorSystem, "", nil)
}

// VerifyResult is the outcome of a successful Verify.
type VerifyResult struct {
	Request     Request
	StatusToken string // a new token: any token issued before verification stops working
}

// Verify checks a code. A wrong code counts an attempt (and is audited);
// after CodeAttempts wrong codes the code is void and a new one must be
// requested. Success rotates the status token, so whoever submitted a
// request in someone else's name loses sight of it once the real person
// proves control.
func (s *Service) Verify(ctx context.Context, id, code string) (VerifyResult, error) {
	code = strings.TrimSpace(code)
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return VerifyResult{}, apperr.Field("code", "the 6-digit code from the email")
	}
	var out VerifyResult
	var failure error
	err := s.tx(ctx, func(tx pgx.Tx) error {
		r, err := s.lock(ctx, tx, id)
		if err != nil {
			return err
		}
		if r.Status != IdentityPending {
			return apperr.New(apperr.Conflict, "this request is not waiting for a verification code (it is %s)", strings.ReplaceAll(string(r.Status), "_", " "))
		}
		if r.AwaitingSecondFactor {
			return errSecondFactor
		}
		ok, fail, det, err := s.consumeCode(ctx, tx, id, code)
		if err != nil {
			return err
		}
		if !ok {
			// Commit the attempt and its audit event, then report failure.
			failure = fail
			if det == nil {
				return fail // nothing was counted: no code, or it expired
			}
			return s.event(ctx, tx, id, "verification_failed", "", "", actorSystem, "", det)
		}
		token, err := rotateStatusToken(ctx, tx, id)
		if err != nil {
			return err
		}
		// The code reaches "reasonable": where the policy asks for more,
		// the request waits for a second factor (verification.go).
		if _, err := s.addVerification(ctx, tx, &r, VerificationStep{Method: MethodEmailCode, Level: LevelReasonable, Actor: actorSystem}); err != nil {
			return err
		}
		out = VerifyResult{Request: r, StatusToken: token}
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

// ResendCode sends a fresh code for a request waiting for one, within the
// per-identity and per-IP limits.
func (s *Service) ResendCode(ctx context.Context, id, ip string) error {
	return s.sendCodeFor(ctx, id, ip, func(r Request) error {
		if r.Status != IdentityPending {
			return apperr.New(apperr.Conflict, "this request is not waiting for a verification code (it is %s)", strings.ReplaceAll(string(r.Status), "_", " "))
		}
		if r.AwaitingSecondFactor {
			return errSecondFactor
		}
		return nil
	})
}

// sendCodeFor sends a fresh code to the request's address when allow
// accepts the locked request, within the per-identity and per-IP limits. A
// request without an email address names nothing to send to: not found.
func (s *Service) sendCodeFor(ctx context.Context, id, ip string, allow func(Request) error) error {
	return s.tx(ctx, func(tx pgx.Tx) error {
		r, err := s.lock(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := allow(r); err != nil {
			return err
		}
		contact, err := s.contact(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if contact == "" {
			return errNotFound
		}
		var subjectHash []byte
		if err := tx.QueryRow(ctx, `SELECT s.lookup_hash FROM subjects s JOIN privacy_requests r ON r.subject_id = s.id WHERE r.id = $1`, id).Scan(&subjectHash); err != nil {
			return fmt.Errorf("dsar: load subject: %w", err)
		}
		now := s.Clock.Now()
		if err := s.checkSendLimits(ctx, tx, subjectHash, ip, now); err != nil {
			return err
		}
		return s.sendCode(ctx, tx, &r, contact, subjectHash, ip, now)
	})
}

// contact opens the request's notification address ("" if none).
func (s *Service) contact(ctx context.Context, tx pgx.Tx, id string) (string, error) {
	var kid *string
	var ct []byte
	if err := tx.QueryRow(ctx, `SELECT contact_kid, contact_ct FROM privacy_requests WHERE id = $1`, id).Scan(&kid, &ct); err != nil {
		return "", fmt.Errorf("dsar: load contact: %w", err)
	}
	if kid == nil {
		return "", nil
	}
	var email string
	if err := s.open(id, "contact", *kid, ct, &email); err != nil {
		return "", fmt.Errorf("dsar: open contact: %w", err)
	}
	return email, nil
}

// Status is what the person sees with their status token. A wrong id and a
// wrong token look the same, so the endpoint tells nothing to a guesser.
func (s *Service) Status(ctx context.Context, id, token string) (PublicStatus, error) {
	if !ValidID(id) || token == "" {
		return PublicStatus{}, errNotFound
	}
	var p PublicStatus
	var status string
	var linkKID *string
	var link []byte
	var linkExpires *time.Time
	var vr Request // the verification columns, for setDerived
	err := s.Pool.QueryRow(ctx, `
		SELECT r.id::text, r.type, r.status, r.received_at, r.due_at, r.extended_at IS NOT NULL, coalesce(r.extension_reason, ''),
		       coalesce(r.deny_reason, ''), r.completed_at,
		       (SELECT count(*) FROM privacy_request_tasks t WHERE t.request_id = r.id AND t.status IN ('succeeded', 'canceled')),
		       (SELECT count(*) FROM privacy_request_tasks t WHERE t.request_id = r.id),
		       CASE WHEN r.package_held_at IS NULL OR r.package_released_at IS NOT NULL THEN r.package_link_kid END, r.package_link, r.package_expires,
		       coalesce(r.verification_required, ''), coalesce(r.verification_level, ''), r.verification_methods, coalesce(r.product, '')
		FROM privacy_requests r WHERE r.id = $1 AND r.status_token_hash = $2`, id, tokenHash(token)).Scan(
		&p.ID, &p.Type, &status, &p.ReceivedAt, &p.DueAt, &p.Extended, &p.ExtensionReason, &p.DenyReason, &p.CompletedAt, &p.TasksDone, &p.TasksTotal,
		&linkKID, &link, &linkExpires, &vr.VerificationRequired, &vr.VerificationLevel, &vr.VerificationMethods, &p.Product)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, errNotFound
	}
	if err != nil {
		return p, fmt.Errorf("dsar: status: %w", err)
	}
	p.Status = Status(status)
	p.ReceivedAt, p.DueAt = p.ReceivedAt.UTC(), p.DueAt.UTC()
	vr.Status = p.Status
	vr.setDerived()
	if vr.AwaitingSecondFactor {
		p.AwaitingSecondFactor, p.SecondFactors = true, s.SecondFactors(p.Product)
	}
	if linkKID != nil && linkExpires != nil && s.Clock.Now().Before(*linkExpires) {
		var url string
		if err := s.open(p.ID, "package_link", *linkKID, link, &url); err != nil {
			return p, fmt.Errorf("dsar: open package link: %w", err)
		}
		exp := linkExpires.UTC()
		p.DownloadURL, p.DownloadExpires = url, &exp
	}
	if !tellsRecipients[p.Type] {
		return p, nil
	}
	// Who was told of the change (GDPR Art. 19: the person may ask).
	recips, err := s.recipients(ctx, s.Pool, p.ID)
	if err != nil {
		return p, err
	}
	for _, r := range recips {
		p.Recipients = append(p.Recipients, PublicRecipient{Name: r.Name, Told: r.Status != "pending"})
	}
	return p, nil
}

var errSecondFactor = apperr.New(apperr.Conflict, "the code was confirmed; this request now waits for a second step of verification (a recent invoice, signing in to your account, or staff review of a signed instruction)")

// firstStep is the verification a request brings with it at intake, or nil
// when it waits for the emailed code: a bot request (Telegram vouches), a
// staff-verified one (at the level the reviewer states), one with a
// challenge-login token (checked in the transaction), and a web request
// for which the policy asks for no verification at all (an opt-out, Cal.
// Code Regs. tit. 11 §7026: the email address is then only where to tell
// the person). An agent's request always waits for the person's code.
func firstStep(in CreateInput, required Level) (*VerificationStep, error) {
	if _, ok := ParseLevel(string(required)); !ok {
		required = LevelReasonable
	}
	switch {
	case in.ChallengeLoginToken != "":
		return &VerificationStep{Method: MethodChallengeLogin, Level: LevelAccountLogin}, nil
	case in.Channel == ChannelBot && in.InitData != "":
		return &VerificationStep{Method: MethodTelegram, Level: LevelHigh}, nil
	case in.Channel == ChannelBot:
		return &VerificationStep{Method: MethodTelegramAsserted, Level: LevelHigh}, nil
	case in.Channel == ChannelStaff && in.IdentityVerified:
		l := required
		if in.VerificationLevel != "" {
			l = Level(in.VerificationLevel)
		}
		if !l.AtLeast(required) {
			return nil, apperr.Field("verification_level", "the policy asks for %q for this request; verify to that level or leave it to the person (no identity_verified)", required)
		}
		if l == LevelNone {
			l = LevelReasonable // a reviewer who verified reached at least this
		}
		return &VerificationStep{Method: MethodStaff, Level: l}, nil
	case in.Channel == ChannelWeb && required == LevelNone:
		return &VerificationStep{Method: MethodNone, Level: LevelNone}, nil
	}
	return nil, nil
}
