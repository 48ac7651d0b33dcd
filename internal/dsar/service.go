package dsar

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"gocloud.dev/blob"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/challengelogin"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/exports"
	"github.com/steward-privacy/steward/internal/jobs"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/notify"
	"github.com/steward-privacy/steward/internal/policy"
)

// Policies gives the policy engine current at the moment of a decision
// (policy.Holder).
type Policies interface{ Current() *policy.Engine }

// Config tunes the engine. Zero fields take the defaults noted.
type Config struct {
	CodeTTL          time.Duration // how long a verification code is valid; 15m
	CodeAttempts     int           // wrong codes before the code is void; 5
	SendsPerIdentity int           // codes sent to one identity per SendWindow; 3
	SendsPerIP       int           // codes requested from one IP per SendWindow; 10
	SendWindow       time.Duration // 1h

	// Workers is how many of the engine's jobs (plans, tasks, packages)
	// run at once per replica working jobs (jobs.Config.Work); 10. Their
	// attempts, backoff and timeouts are the job client's (jobs.Config).
	Workers int

	// TelegramBotToken verifies Mini App initData, and its presence says the
	// outbox can send as the bot: people with a tg: subject are told about
	// their request in Telegram. Empty refuses initData and tells them
	// nothing (New logs a warning).
	TelegramBotToken string
	InitDataMaxAge   time.Duration // 24h
	StatusURL        string        // the page where a person checks status (link in emails)
	StaffURL         string        // the staff console's request page (link in reminders)
	StaffEmail       string        // reminders go here; empty: none are sent
	ExportLinkBase   string        // download links are this followed by the token (config.Config.ExportLinkBase)

	// ChallengeLoginKeys are the products' shared secrets for challenge-login
	// tokens (STEWARD_CHALLENGE_LOGIN_KEYS); a product without one is not
	// offered the method.
	ChallengeLoginKeys challengelogin.Keys
	InvoiceMaxAge      time.Duration // how recent a "recent invoice" is; 90 days
	InvoiceAttempts    int           // wrong invoice references before the method is void for the request; 5
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defi := func(i *int, v int) {
		if *i <= 0 {
			*i = v
		}
	}
	def(&c.CodeTTL, 15*time.Minute)
	defi(&c.CodeAttempts, 5)
	defi(&c.SendsPerIdentity, 3)
	defi(&c.SendsPerIP, 10)
	def(&c.SendWindow, time.Hour)
	defi(&c.Workers, 10)
	def(&c.InitDataMaxAge, 24*time.Hour)
	def(&c.InvoiceMaxAge, 90*24*time.Hour)
	defi(&c.InvoiceAttempts, 5)
	return c
}

// Deps are what the engine works with.
type Deps struct {
	Pool       *pgxpool.Pool
	Keys       *keyring.Keyring
	Policies   Policies
	Audit      *audit.Log
	Outbox     *notify.Outbox
	Clock      clock.Clock
	Log        *slog.Logger
	Connectors connectors.Registry
	// Files holds the files access tasks disclose (uploads, generated
	// images), each sealed under a key of its own. Nil refuses them: a
	// connector that sends a file then fails its task loudly rather than
	// drop part of a person's data.
	Files *blob.Bucket
	// Packager builds the package an access or export request ends with.
	// Nil with Exports set: the package is built by exportpkg and kept in
	// Exports, its link under Config.ExportLinkBase. Both nil: such
	// requests complete without one (the records stay readable to staff
	// through the API).
	Packager Packager
	Exports  *exports.Store
	// Jobs is the process's durable job client (required): the engine
	// registers its workers on River's default queue when built.
	Jobs *jobs.Client
	// Consent is Steward's own consent ledger: in the access package,
	// forgotten by an erasure, withdrawn by an objection to marketing.
	// Nil leaves it out of requests (tests of the engine alone).
	Consent ConsentLedger
	// Restrictions records a completed restriction for the consent check.
	Restrictions RestrictionLedger
}

// Service runs privacy requests.
type Service struct {
	Deps
	cfg Config
}

// New builds the engine and registers its workers with d.Jobs (which the
// caller starts once every feature has registered).
func New(d Deps, cfg Config) (*Service, error) {
	if d.Jobs == nil {
		return nil, errors.New("dsar: no job client (Deps.Jobs)")
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Clock == nil {
		d.Clock = clock.Real{}
	}
	if d.Connectors == nil {
		d.Connectors = connectors.Registry{}
	}
	s := &Service{Deps: d, cfg: cfg.withDefaults()}
	if s.cfg.TelegramBotToken == "" {
		// Once per process: the engine is built once at start-up.
		d.Log.Warn("no Telegram bot token (STEWARD_TELEGRAM_BOT_TOKEN): people who ask through the bot will not be told about their requests")
	}
	if s.Packager == nil && s.Exports != nil {
		s.Packager = s.exportPackager(s.Exports, s.cfg.ExportLinkBase)
	}
	jobs.AddWorker(d.Jobs, &planWorker{s: s})
	jobs.AddWorker(d.Jobs, &taskWorker{s: s})
	jobs.AddWorker(d.Jobs, &packageWorker{s: s})
	jobs.AddWorker(d.Jobs, &ledgerWorker{s: s})
	d.Jobs.Queue(river.QueueDefault, s.cfg.Workers)
	return s, nil
}

// Actors in the audit log and the timeline.
const (
	actorSystem = "system:dsar"
	actorPolicy = "system:policy"
)

// --- tokens and sealing -----------------------------------------------------------

// newStatusToken is 32 random bytes: unguessable, so a fast hash stores it.
func newStatusToken() (token string, hash []byte) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	token = "sts_" + base64.RawURLEncoding.EncodeToString(b)
	return token, tokenHash(token)
}

// rotateStatusToken gives request id a fresh status token, voiding the one
// before: each successful verification or status sign-in hands out its own.
func rotateStatusToken(ctx context.Context, tx pgx.Tx, id string) (string, error) {
	token, th := newStatusToken()
	if _, err := tx.Exec(ctx, `UPDATE privacy_requests SET status_token_hash = $2 WHERE id = $1`, id, th); err != nil {
		return "", fmt.Errorf("dsar: rotate status token: %w", err)
	}
	return token, nil
}

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func sealAAD(requestID, what string) []byte {
	return []byte("steward dsar v1\x00" + requestID + "\x00" + what)
}

func (s *Service) seal(requestID, what string, v any) (string, []byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", nil, err
	}
	return s.Keys.Seal(b, sealAAD(requestID, what))
}

func (s *Service) open(requestID, what, kid string, ct []byte, v any) error {
	b, err := s.Keys.Open(kid, ct, sealAAD(requestID, what))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// details is the sealed part of a request: what the person typed. (An
// intake note is staff's text and lives in the timeline with the others.)
type details struct {
	Changes map[string]string `json:"changes,omitempty"`
	Agent   *Agent            `json:"agent,omitempty"`
}

// Agent is an authorized agent acting for the subject.
type Agent struct {
	Name             string `json:"name"`
	Email            string `json:"email"`
	AuthorizationRef string `json:"authorization_ref"`
}

// --- transitions -------------------------------------------------------------------

// move applies ev to the locked request row inside tx: checks the
// transition, updates the status, and writes the timeline entry and the
// audit event in the same transaction, so a state change without its proof
// (or proof of a change that did not happen) cannot exist.
func (s *Service) move(ctx context.Context, tx pgx.Tx, r *Request, ev Event, actor, note string, details map[string]any) error {
	next, err := Next(r.Status, ev, r.PausedFrom)
	if err != nil {
		return err
	}
	now := s.Clock.Now()
	var pausedFrom *string
	if next == Paused {
		p := string(r.Status)
		pausedFrom = &p
	}
	closed := next.Final()
	_, err = tx.Exec(ctx, `
		UPDATE privacy_requests SET status = $2, paused_from = $3, updated_at = $4,
		       completed_at = CASE WHEN $2 = 'completed' THEN $4 ELSE completed_at END,
		       closed_at = CASE WHEN $5 THEN $4 ELSE closed_at END
		WHERE id = $1`, r.ID, string(next), pausedFrom, now, closed)
	if err != nil {
		return fmt.Errorf("dsar: update status: %w", err)
	}
	if err := s.event(ctx, tx, r.ID, string(ev), string(r.Status), string(next), actor, note, details); err != nil {
		return err
	}
	from := r.Status
	r.Status = next
	r.PausedFrom, r.PauseReason = "", ""
	if pausedFrom != nil {
		r.PausedFrom, r.PauseReason = Status(*pausedFrom), note
	}
	return s.emitStatusChanged(ctx, tx, r, ev, from)
}

// event writes a timeline entry and its audit event. Free text (a staff
// note, a reason) stays in the timeline; the audit entry carries its
// SHA-256, so the chain vouches for it without holding what may be
// personal data.
func (s *Service) event(ctx context.Context, tx pgx.Tx, requestID, ev, from, to, actor, note string, details map[string]any) error {
	now := s.Clock.Now()
	var notep *string
	if note != "" {
		notep = &note
	}
	var fromp, top *string
	if from != "" {
		fromp = &from
	}
	if to != "" {
		top = &to
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO privacy_request_events (request_id, at, event, from_status, to_status, actor, note)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, requestID, now, ev, fromp, top, actor, notep); err != nil {
		return fmt.Errorf("dsar: timeline: %w", err)
	}
	d := map[string]any{}
	for k, v := range details {
		d[k] = v
	}
	if from != "" {
		d["from"] = from
	}
	if to != "" {
		d["to"] = to
	}
	if note != "" {
		d["note_sha256"] = audit.TextHash(note)
	}
	return s.Audit.Append(ctx, tx, audit.Record{
		Actor: actor, Action: "privacy_request." + ev, TargetType: "privacy_request", TargetID: requestID, Details: d,
	})
}

// --- reading ---------------------------------------------------------------------

const requestColumns = `id::text, type, status, coalesce(paused_from, ''), channel, language, region, regime, subject_kind,
	received_at, due_at, original_due_at, acknowledge_by, extendable_until, extension_notice_by, extended_at IS NOT NULL,
	coalesce(extension_reason, ''), verified_at, coalesce(verification, ''), approval_required, coalesce(approval_rule, ''),
	planned_at, coalesce(plan_error, ''), coalesce(deny_reason, ''), coalesce(failure_reason, ''), completed_at, plan_run,
	CASE WHEN status = 'paused' THEN coalesce((SELECT e.note FROM privacy_request_events e
		WHERE e.request_id = privacy_requests.id AND e.event = 'pause' ORDER BY e.id DESC LIMIT 1), '') ELSE '' END,
	(SELECT coalesce(sum(t.review_items), 0)::integer FROM privacy_request_tasks t
		WHERE t.request_id = privacy_requests.id AND t.review_items > 0 AND t.review_acknowledged_at IS NULL),
	coalesce(product, ''), coalesce(verification_required, ''), coalesce(verification_level, ''), verification_methods,
	package_review_required, package_held_at IS NOT NULL AND package_released_at IS NULL`

func scanRequest(row pgx.Row, now time.Time) (Request, error) {
	var r Request
	var status, paused string
	err := row.Scan(&r.ID, &r.Type, &status, &paused, &r.Channel, &r.Language, &r.Region, &r.Regime, &r.SubjectKind,
		&r.ReceivedAt, &r.DueAt, &r.OriginalDueAt, &r.AcknowledgeBy, &r.ExtendableUntil, &r.ExtendNoticeBy, &r.Extended,
		&r.ExtensionReason, &r.VerifiedAt, &r.Verification, &r.ApprovalRequired, &r.ApprovalRule,
		&r.PlannedAt, &r.PlanError, &r.DenyReason, &r.FailureReason, &r.CompletedAt, &r.planRun, &r.PauseReason, &r.ReviewItems, &r.Product,
		&r.VerificationRequired, &r.VerificationLevel, &r.VerificationMethods, &r.PackageReview, &r.PackageHeld)
	if err != nil {
		return r, err
	}
	r.Status, r.PausedFrom = Status(status), Status(paused)
	for _, t := range []*time.Time{&r.ReceivedAt, &r.DueAt, &r.OriginalDueAt} {
		*t = t.UTC()
	}
	r.Overdue = !r.Status.Final() && now.After(r.DueAt)
	r.setDerived()
	return r, nil
}

// lock reads a request and locks its row for the rest of tx: every change
// to a request goes through its row lock, so two staff actions (or a staff
// action and a finishing task) never interleave.
func (s *Service) lock(ctx context.Context, tx pgx.Tx, id string) (Request, error) {
	if !ValidID(id) {
		return Request{}, errNotFound
	}
	r, err := scanRequest(tx.QueryRow(ctx, `SELECT `+requestColumns+` FROM privacy_requests WHERE id = $1 FOR UPDATE`, id), s.Clock.Now())
	if errors.Is(err, pgx.ErrNoRows) {
		return r, errNotFound
	}
	if err != nil {
		return r, fmt.Errorf("dsar: load request: %w", err)
	}
	return r, nil
}

var errNotFound = apperr.New(apperr.NotFound, "no such privacy request")

// ValidID reports whether id has the form of a request or task id: a UUID
// in its canonical 36-character form (either case). Anything else names no
// request and is refused before it reaches the database.
func ValidID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, c := range id {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}

// tx runs fn in a transaction.
func (s *Service) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("dsar: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("dsar: commit: %w", err)
	}
	return nil
}
