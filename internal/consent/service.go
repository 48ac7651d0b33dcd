package consent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/receipt"
	"github.com/steward-privacy/steward/internal/restrictions"
	"github.com/steward-privacy/steward/internal/subjects"
)

// NotifyChannel is the LISTEN/NOTIFY channel for consent invalidations
// (internal/restrictions notifies on it too: restrictions.ConsentChannel).
const NotifyChannel = "steward_consent"

// Unsubscriber queues an "unsubscribe this mailbox" message inside the
// caller's transaction (the Resend outbox).
type Unsubscriber interface {
	EnqueueUnsubscribe(ctx context.Context, tx pgx.Tx, email string) error
}

// GPCHook is told, inside the recording transaction, that a subject's first
// Global Privacy Control signal was recorded (the audit log listens here).
type GPCHook func(ctx context.Context, tx pgx.Tx, subjectHash []byte, eventIDs []string) error

// Policies serves the policy engine in force; it may change between calls
// (hot reload), so an operation reads it once where consistency matters.
type Policies interface{ Current() *policy.Engine }

// Service records and answers consent.
type Service struct {
	pool     *pgxpool.Pool
	kr       *keyring.Keyring
	policies Policies
	clock    clock.Clock
	log      *slog.Logger
	cache    *Cache
	unsub    Unsubscriber
	onGPC    GPCHook
	notifier Notifier
	audit    *audit.Log
	signer   ReceiptSigner
	// publicURL is where people reach Steward (links to notice texts).
	publicURL string
	webhooks  WebhookQueue
	// products remembers Engine.ProductOf per subject type for the engine
	// in force: it walks the products map, which every check without a
	// product paid for.
	products atomic.Pointer[productIndex]
}

// productIndex is one engine's subject type -> product answers so far.
type productIndex struct {
	eng *policy.Engine
	m   map[string]string
}

// productOf is eng.ProductOf(kind), remembered until the engine changes.
func (s *Service) productOf(eng *policy.Engine, kind string) string {
	old := s.products.Load()
	if old != nil && old.eng == eng {
		if p, ok := old.m[kind]; ok {
			return p
		}
	}
	p := eng.ProductOf(kind)
	// Copy on write; kinds are the few subject types identity accepts,
	// bounded anyway so that no input can grow it.
	m := map[string]string{kind: p}
	if old != nil && old.eng == eng {
		if len(old.m) >= 64 {
			return p
		}
		for k, v := range old.m {
			m[k] = v
		}
	}
	s.products.CompareAndSwap(old, &productIndex{eng: eng, m: m})
	return p
}

// Options are the Service's optional collaborators.
type Options struct {
	Unsubscriber Unsubscriber
	OnGPC        GPCHook
	// Notifier tells people a notice changed (AnnounceNotice); nil: no
	// announcements.
	Notifier Notifier
	// Audit records announcements and erasures of the ledger; nil: not
	// audited.
	Audit *audit.Log
	// Signer signs the receipts of a subject's export (SubjectExport); nil:
	// receipts are exported unsigned.
	Signer ReceiptSigner
	// PublicURL is Steward's public base URL, for links in messages.
	PublicURL string
	// Webhooks queues consent.changed for subscribed endpoints
	// (*notify.Outbox); nil: none.
	Webhooks WebhookQueue
}

// ReceiptSigner signs a consent receipt as a compact JWS (*receipt.Signer).
type ReceiptSigner interface {
	Sign(r receipt.Receipt) (string, error)
}

// NewService wires a consent service.
func NewService(pool *pgxpool.Pool, kr *keyring.Keyring, policies Policies, clk clock.Clock, log *slog.Logger, cache *Cache, opts Options) *Service {
	return &Service{pool: pool, kr: kr, policies: policies, clock: clk, log: log, cache: cache, unsub: opts.Unsubscriber, onGPC: opts.OnGPC,
		notifier: opts.Notifier, audit: opts.Audit, signer: opts.Signer, publicURL: normalizePublicURL(opts.PublicURL), webhooks: opts.Webhooks}
}

// Engine is the policy engine in force now.
func (s *Service) Engine() *policy.Engine { return s.policies.Current() }

// Cache is the service's state cache (subscribe it to the listener).
func (s *Service) Cache() *Cache { return s.cache }

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

// NormalizeJurisdiction upper-cases and validates an ISO 3166 code.
func NormalizeJurisdiction(j string) (string, error) {
	if j == "" {
		return "", nil
	}
	u := strings.ToUpper(j)
	if !validJurisdiction(u) {
		return "", apperr.Field("jurisdiction", "must be an ISO 3166-1 country code (DE) or ISO 3166-2 subdivision (US-CA)")
	}
	return u, nil
}

// validJurisdiction is jurisdictionRe without the regexp engine, which
// every consent check went through: two upper-case letters, optionally a
// hyphen and one to three upper-case letters or digits.
func validJurisdiction(u string) bool {
	upper := func(c byte) bool { return c >= 'A' && c <= 'Z' }
	if len(u) < 2 || !upper(u[0]) || !upper(u[1]) {
		return false
	}
	if len(u) == 2 {
		return true
	}
	if u[2] != '-' || len(u) < 4 || len(u) > 6 {
		return false
	}
	for i := 3; i < len(u); i++ {
		if c := u[i]; !upper(c) && !(c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func (s *Service) product(p string, subj identity.Subject) (string, error) {
	if p == "" {
		return s.Engine().ProductOf(string(subj.Type)), nil
	}
	if _, ok := s.Engine().Products[p]; !ok {
		return "", apperr.Field("product", "unknown product %q; known: %s", p, strings.Join(keys(s.Engine().Products), ", "))
	}
	return p, nil
}

// ValidatePurpose returns an invalid_request error for a purpose the policy
// does not define.
func (s *Service) ValidatePurpose(field, p string) error {
	if _, ok := s.Engine().Purposes[p]; !ok {
		return apperr.Field(field, "unknown purpose %q; known: %s", p, strings.Join(keys(s.Engine().Purposes), ", "))
	}
	return nil
}

// offered refuses a purpose the product does not have (marketing for a bot
// user, broadcasts for a web visitor): the question has no answer, so it is
// the caller's mistake, not a "no".
func (s *Service) offered(field, purpose, product string) error {
	eng := s.Engine()
	p := eng.Purposes[purpose]
	if p.Essential || slices.Contains(p.Products, product) {
		return nil
	}
	return apperr.Field(field, "%q is not a purpose of the %s product; its purposes: %s", purpose, product, strings.Join(eng.PurposesOf(product), ", "))
}

func (s *Service) noticeVersions(product string) []string {
	var out []string
	for _, n := range s.Engine().Notices(product) {
		out = append(out, n.Version)
	}
	return out
}

func (s *Service) validateRecord(in *RecordInput) error {
	if err := s.ValidatePurpose("purpose", in.Purpose); err != nil {
		return err
	}
	if s.Engine().Purposes[in.Purpose].Essential {
		return apperr.Field("purpose", "%q is strictly necessary and always allowed; it cannot be granted or refused", in.Purpose)
	}
	if !states[in.State] {
		return apperr.Field("state", "must be granted, denied or withdrawn")
	}
	if in.Source == SourceGPC {
		return apperr.Field("source", "gpc events are recorded by Steward when it sees Sec-GPC: 1; send the header instead")
	}
	if !sources[in.Source] {
		return apperr.Field("source", "must be web_banner, web_settings, bot or api")
	}
	if !policy.ValidNoticeVersion(in.NoticeVersion) {
		return apperr.Field("notice_version", "must be a version like 2 or 2.1")
	}
	var err error
	if in.Jurisdiction, err = NormalizeJurisdiction(in.Jurisdiction); err != nil {
		return err
	}
	if in.Language != "" && (len(in.Language) > 35 || !languageRe.MatchString(in.Language)) {
		return apperr.Field("language", "must be a language tag such as en, ru or uz")
	}
	if in.Product, err = s.product(in.Product, in.Subject); err != nil {
		return err
	}
	if err := s.offered("purpose", in.Purpose, in.Product); err != nil {
		return err
	}
	if len(in.UserAgent) > 512 {
		return apperr.Field("user_agent", "longer than 512 characters")
	}
	if in.IP != "" {
		if _, err := netip.ParseAddr(in.IP); err != nil {
			return apperr.Field("ip", "not an IP address")
		}
	}
	if len(in.Linked) > 10 {
		return apperr.Field("linked_subjects", "at most 10")
	}
	// Last: the other fields' mistakes are reported first.
	if !s.Engine().KnownNotice(in.Product, in.NoticeVersion) {
		return apperr.Field("notice_version", "%q is not a version of the %s product's notice; known: %s (GET /v1/notices/%s)",
			in.NoticeVersion, in.Product, strings.Join(s.noticeVersions(in.Product), ", "), in.Product)
	}
	return nil
}

// Record appends a consent event and updates the subject's current state in
// one transaction; a NOTIFY in the same transaction invalidates every
// replica's cache at commit.
func (s *Service) Record(ctx context.Context, in RecordInput) (Event, error) {
	if err := s.validateRecord(&in); err != nil {
		return Event{}, err
	}
	now := s.now()
	key := s.kr.HashString(in.Subject)
	var ev Event
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		subj, err := s.upsertSubject(ctx, tx, in.Subject, now)
		if err != nil {
			return err
		}
		for _, l := range in.Linked {
			if l == in.Subject {
				continue
			}
			lid, err := s.upsertSubject(ctx, tx, l, now)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO subject_links (subject_id, linked_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, subj.id, lid.id, now); err != nil {
				return fmt.Errorf("link subject: %w", err)
			}
		}
		if in.GPC && !subj.gpcSeen {
			if err := s.recordGPC(ctx, tx, in.Subject, subj, in.Product, now); err != nil {
				return err
			}
		}
		prev, err := currentState(ctx, tx, subj.id, in.Purpose)
		if err != nil {
			return err
		}
		ev = Event{
			ID: newID(), SubjectKind: in.Subject.Kind(), SubjectHash: hex.EncodeToString(subj.hash), Purpose: in.Purpose,
			State: in.State, Source: in.Source, NoticeVersion: in.NoticeVersion, Jurisdiction: in.Jurisdiction,
			Language: in.Language, Product: in.Product, GPC: in.GPC, UserAgent: in.UserAgent, KeyID: in.KeyID,
			PolicyRevision: s.Engine().Revision(), RecordedAt: now,
		}
		var ipHash []byte
		if in.IP != "" {
			ipHash = s.kr.HashIP(in.IP)
			ev.IPHash = hex.EncodeToString(ipHash)
		}
		if err := insertEvent(ctx, tx, subj.id, ev, ipHash); err != nil {
			return err
		}
		if err := s.emitChanged(ctx, tx, in.Subject, ev); err != nil {
			return err
		}
		// A withdrawal, or a refusal of something previously granted, must
		// reach the mailing list; a first refusal never adds anyone to it.
		if in.Purpose == "marketing" && (in.State == Withdrawn || (in.State == Denied && prev == Granted)) && s.unsub != nil {
			emails, err := s.linkedEmails(ctx, tx, in.Subject, subj.id)
			if err != nil {
				return err
			}
			for _, e := range emails {
				if err := s.unsub.EnqueueUnsubscribe(ctx, tx, e); err != nil {
					return fmt.Errorf("queue unsubscribe: %w", err)
				}
			}
		}
		return notifyChange(ctx, tx, subj.hash)
	})
	if err != nil {
		return Event{}, err
	}
	// Read-your-writes on this replica, without waiting for our own NOTIFY.
	s.cache.invalidate(key)
	return ev, nil
}

type subjectRow struct {
	id      int64
	hash    []byte
	gpcSeen bool
}

// upsertSubject finds or creates the subject's row (subjects.Upsert).
func (s *Service) upsertSubject(ctx context.Context, tx pgx.Tx, subj identity.Subject, now time.Time) (subjectRow, error) {
	r, err := subjects.Upsert(ctx, tx, s.kr, subj, now)
	return subjectRow{id: r.ID, hash: r.Hash, gpcSeen: r.GPCSeen}, err
}

// recordGPC records the first Global Privacy Control signal seen for a
// subject as a refusal of every purpose GPC covers, so the signal keeps
// working even when a later request arrives without the header.
func (s *Service) recordGPC(ctx context.Context, tx pgx.Tx, subj identity.Subject, row subjectRow, product string, now time.Time) error {
	tag, err := tx.Exec(ctx, `UPDATE subjects SET gpc_at = $2 WHERE id = $1 AND gpc_at IS NULL`, row.id, now)
	if err != nil {
		return fmt.Errorf("record gpc: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return nil // another request recorded it first
	}
	notice := s.Engine().Products[product].NoticeVersion
	var ids []string
	for _, name := range keys(s.Engine().Purposes) {
		// Only the product's own purposes: a refusal of a purpose the
		// product does not have would be a record of nothing.
		if p := s.Engine().Purposes[name]; !p.GPCApplies || !slices.Contains(p.Products, product) {
			continue
		}
		ev := Event{
			ID: newID(), SubjectKind: subj.Kind(), Purpose: name, State: Denied, Source: SourceGPC,
			NoticeVersion: notice, Product: product, GPC: true, PolicyRevision: s.Engine().Revision(), RecordedAt: now,
		}
		if err := insertEvent(ctx, tx, row.id, ev, nil); err != nil {
			return err
		}
		ids = append(ids, ev.ID)
	}
	if s.onGPC != nil {
		if err := s.onGPC(ctx, tx, row.hash, ids); err != nil {
			return fmt.Errorf("gpc hook: %w", err)
		}
	}
	s.log.Info("global privacy control recorded", "subject_kind", subj.Kind(), "events", len(ids))
	return nil
}

func insertEvent(ctx context.Context, tx pgx.Tx, subjectID int64, ev Event, ipHash []byte) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO consent_events (id, subject_id, subject_kind, purpose, state, source, notice_version,
			jurisdiction, language, product, gpc, user_agent, ip_hash, key_id, policy_revision, recorded_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, NULLIF($8, ''), NULLIF($9, ''), $10, $11, NULLIF($12, ''), $13, NULLIF($14, ''), $15, $16)`,
		ev.ID, subjectID, ev.SubjectKind, ev.Purpose, ev.State, ev.Source, ev.NoticeVersion,
		ev.Jurisdiction, ev.Language, ev.Product, ev.GPC, ev.UserAgent, ipHash, ev.KeyID, ev.PolicyRevision, ev.RecordedAt)
	if err != nil {
		return fmt.Errorf("insert consent event: %w", err)
	}
	// Later events win; an event recorded with an earlier clock (a replica
	// whose clock lags) never overwrites a newer state.
	_, err = tx.Exec(ctx, `
		INSERT INTO consent_state (subject_id, purpose, state, source, notice_version, gpc, event_id, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (subject_id, purpose) DO UPDATE
		SET state = EXCLUDED.state, source = EXCLUDED.source, notice_version = EXCLUDED.notice_version,
		    gpc = EXCLUDED.gpc, event_id = EXCLUDED.event_id, updated_at = EXCLUDED.updated_at
		WHERE consent_state.updated_at <= EXCLUDED.updated_at`,
		subjectID, ev.Purpose, ev.State, ev.Source, ev.NoticeVersion, ev.GPC, ev.ID, ev.RecordedAt)
	if err != nil {
		return fmt.Errorf("update consent state: %w", err)
	}
	return nil
}

func currentState(ctx context.Context, tx pgx.Tx, subjectID int64, purpose string) (string, error) {
	var st string
	err := tx.QueryRow(ctx, `SELECT state FROM consent_state WHERE subject_id = $1 AND purpose = $2`, subjectID, purpose).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read consent state: %w", err)
	}
	return st, nil
}

// linkedEmails returns the email addresses of the subject itself and of every
// identity linked to it, decrypted only to hand them to the outbox (which
// encrypts them again).
func (s *Service) linkedEmails(ctx context.Context, tx pgx.Tx, subj identity.Subject, id int64) ([]string, error) {
	var out []string
	if subj.Type == identity.Email {
		out = append(out, subj.Value)
	}
	rows, err := tx.Query(ctx, `
		SELECT s.ciphertext, s.enc_kid FROM subjects s
		WHERE s.kind = 'email' AND s.forgotten_at IS NULL AND s.id IN (
			SELECT linked_id FROM subject_links WHERE subject_id = $1
			UNION SELECT subject_id FROM subject_links WHERE linked_id = $1)`, id)
	if err != nil {
		return nil, fmt.Errorf("linked emails: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ct []byte
		var kid string
		if err := rows.Scan(&ct, &kid); err != nil {
			return nil, err
		}
		pt, err := s.kr.Open(kid, ct, []byte("email"))
		if err != nil {
			return nil, fmt.Errorf("linked emails: %w", err)
		}
		v := strings.TrimPrefix(string(pt), "email:")
		if v != subj.Value || subj.Type != identity.Email {
			out = append(out, v)
		}
	}
	return out, rows.Err()
}

func notifyChange(ctx context.Context, tx pgx.Tx, hash []byte) error {
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, hex.EncodeToString(hash)); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// state returns the subject's consent state, from the cache when it can.
func (s *Service) state(ctx context.Context, subj identity.Subject) (*subjectState, string, error) {
	key := s.kr.HashString(subj)
	if st, ok := s.cache.get(key); ok {
		return st, key, nil
	}
	gen := s.cache.generation()
	sts, err := s.loadStates(ctx, []identity.Subject{subj})
	if err != nil {
		return nil, key, err
	}
	st := sts[0]
	s.cache.put(key, st, gen)
	return st, key, nil
}

// loadStates reads the state of several subjects in one query.
func (s *Service) loadStates(ctx context.Context, subjs []identity.Subject) ([]*subjectState, error) {
	byHash := make(map[string]int, len(subjs))
	hashes := make([][]byte, 0, len(subjs))
	for i, subj := range subjs {
		for _, h := range s.kr.Hashes(subj) {
			byHash[string(h)] = i
			hashes = append(hashes, h)
		}
	}
	out := make([]*subjectState, len(subjs))
	rows, err := s.pool.Query(ctx, `
		SELECT s.lookup_hash, s.id, s.gpc_at IS NOT NULL, s.enc_kid = '', cs.purpose, cs.state, cs.source, cs.notice_version, cs.gpc
		FROM subjects s LEFT JOIN consent_state cs ON cs.subject_id = s.id
		WHERE s.lookup_hash = ANY($1)`, hashes)
	if err != nil {
		return nil, fmt.Errorf("load consent state: %w", err)
	}
	defer rows.Close()
	var stale []staleHash
	for rows.Next() {
		var (
			hash                           []byte
			id                             int64
			gpcSeen, erased                bool
			purpose, state, source, notice *string
			gpc                            *bool
		)
		if err := rows.Scan(&hash, &id, &gpcSeen, &erased, &purpose, &state, &source, &notice, &gpc); err != nil {
			return nil, fmt.Errorf("load consent state: %w", err)
		}
		i := byHash[string(hash)]
		if erased && out[i] == nil {
			if nw := s.kr.Hash(subjs[i]); !bytes.Equal(hash, nw) {
				stale = append(stale, staleHash{id: id, old: hash, nw: nw})
			}
		}
		st := out[i]
		if st == nil {
			st = &subjectState{id: id, gpcSeen: gpcSeen, purposes: map[string]policy.Stored{}}
			out[i] = st
		}
		if purpose != nil {
			major, _ := policy.NoticeMajor(*notice)
			st.purposes[*purpose] = policy.Stored{Present: true, State: *state, Source: *source, NoticeMajor: major, GPC: *gpc}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load consent state: %w", err)
	}
	s.rehashErased(ctx, stale)
	// A restriction is recorded under the identity's keyed hash whether or
	// not the subject ever recorded consent.
	active, err := restrictions.ActiveByHash(ctx, s.pool, hashes)
	if err != nil {
		return nil, fmt.Errorf("load consent state: %w", err)
	}
	for h, a := range active {
		i := byHash[h]
		if out[i] == nil {
			out[i] = &subjectState{purposes: map[string]policy.Stored{}}
		}
		if out[i].restricted == nil {
			out[i].restricted = &a
		}
	}
	for i := range out {
		if out[i] == nil {
			out[i] = emptyState
		}
	}
	return out, nil
}

// staleHash is an erased subject found under an older key's lookup hash.
type staleHash struct {
	id      int64
	old, nw []byte
}

// rehashErased moves erased subjects found by a check to the active key's
// hash. An erased subject keeps nothing but its hash, so rekey cannot move
// it and the key that made it must stay (lookup-only) until the person
// comes back: a check is such a moment, the identity is in hand. Only
// erased rows are moved here (rekey moves the rest without writing on the
// check path), and a failure only logs: the check has already found the
// refusal, and the next one tries again.
func (s *Service) rehashErased(ctx context.Context, stale []staleHash) {
	if len(stale) == 0 {
		return
	}
	moved := 0
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		for _, h := range stale {
			ok, err := subjects.Rehash(ctx, tx, h.id, h.old, h.nw, s.kr.ActiveKID())
			if err != nil {
				return err
			}
			if ok {
				moved++
			}
		}
		return nil
	})
	if err != nil {
		// Row ids only: a hash is a pseudonym of the person.
		s.log.Warn("re-hashing erased subjects under the active identity key failed", "subjects", len(stale), "err", err)
		return
	}
	if moved > 0 {
		s.log.Info("erased subjects re-hashed under the active identity key", "subjects", moved, "kid", s.kr.ActiveKID())
	}
}

// ValidateCheck checks and normalizes a check input.
func (s *Service) ValidateCheck(in *CheckInput, field string) error {
	if err := s.ValidatePurpose(field+"purpose", in.Purpose); err != nil {
		return err
	}
	var err error
	if in.Jurisdiction, err = NormalizeJurisdiction(in.Jurisdiction); err != nil {
		if ae, ok := apperr.As(err); ok && field != "" {
			return apperr.Field(field+"jurisdiction", "%s", ae.Fields[0].Message)
		}
		return err
	}
	if in.Age < -1 || in.Age > 150 {
		return apperr.Field(field+"age", "must be between 0 and 150")
	}
	eng := s.Engine()
	if in.Product == "" {
		in.Product = s.productOf(eng, string(in.Subject.Type))
	} else if _, ok := eng.Products[in.Product]; !ok {
		return apperr.Field(field+"product", "unknown product %q", in.Product)
	}
	return s.offered(field+"purpose", in.Purpose, in.Product)
}

// Check answers one question. A Sec-GPC signal seen for the first time is
// recorded (one write per subject, ever); everything else is read-only.
func (s *Service) Check(ctx context.Context, in CheckInput) (policy.Decision, error) {
	if err := s.ValidateCheck(&in, ""); err != nil {
		return policy.Decision{}, err
	}
	st, key, err := s.state(ctx, in.Subject)
	if err != nil {
		return policy.Decision{}, err
	}
	if in.GPC && !st.gpcSeen {
		if st, err = s.recordGPCSignal(ctx, in.Subject, in.Product, key); err != nil {
			return policy.Decision{}, err
		}
	}
	return decide(ctx, s.Engine(), in, st)
}

func decide(ctx context.Context, eng *policy.Engine, in CheckInput, st *subjectState) (policy.Decision, error) {
	d, err := eng.DecideConsent(ctx, policy.ConsentInput{
		Purpose: in.Purpose, Jurisdiction: in.Jurisdiction, Product: in.Product, Age: in.Age, GPC: in.GPC,
		Restricted: st.restricted != nil, Stored: st.purposes[in.Purpose],
	})
	if err == nil && st.restricted != nil && d.Reason == "restricted" {
		// Not part of the memo key: the policy decides "restricted", the
		// ledger says which restriction and which request.
		d.RestrictionID, d.RequestID = st.restricted.RestrictionID, st.restricted.RequestID
	}
	return d, err
}

func (s *Service) recordGPCSignal(ctx context.Context, subj identity.Subject, product, key string) (*subjectState, error) {
	now := s.now()
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		row, err := s.upsertSubject(ctx, tx, subj, now)
		if err != nil {
			return err
		}
		if row.gpcSeen {
			return nil
		}
		if err := s.recordGPC(ctx, tx, subj, row, product, now); err != nil {
			return err
		}
		return notifyChange(ctx, tx, row.hash)
	})
	if err != nil {
		return nil, err
	}
	s.cache.invalidate(key)
	st, _, err := s.state(ctx, subj)
	return st, err
}

// MaxBatch is the most questions one batch check may ask.
const MaxBatch = 1000

// CheckBatch answers many questions, loading every uncached subject in one
// query. Inputs must already be validated with ValidateCheck.
func (s *Service) CheckBatch(ctx context.Context, ins []CheckInput) ([]policy.Decision, error) {
	if len(ins) > MaxBatch {
		return nil, apperr.Field("checks", "at most %d checks per batch, got %d", MaxBatch, len(ins))
	}
	states := make([]*subjectState, len(ins))
	keysOf := make([]string, len(ins))
	var missing []identity.Subject
	missIdx := map[identity.Subject][]int{}
	for i, in := range ins {
		keysOf[i] = s.kr.HashString(in.Subject)
		if st, ok := s.cache.get(keysOf[i]); ok {
			states[i] = st
			continue
		}
		if _, seen := missIdx[in.Subject]; !seen {
			missing = append(missing, in.Subject)
		}
		missIdx[in.Subject] = append(missIdx[in.Subject], i)
	}
	if len(missing) > 0 {
		gen := s.cache.generation()
		loaded, err := s.loadStates(ctx, missing)
		if err != nil {
			return nil, err
		}
		for j, subj := range missing {
			idx := missIdx[subj]
			s.cache.put(keysOf[idx[0]], loaded[j], gen)
			for _, i := range idx {
				states[i] = loaded[j]
			}
		}
	}
	// One engine for the whole batch: a reload mid-batch must not answer
	// half of it under one revision and half under another.
	eng := s.Engine()
	out := make([]policy.Decision, len(ins))
	for i, in := range ins {
		if in.GPC && !states[i].gpcSeen {
			st, err := s.recordGPCSignal(ctx, in.Subject, in.Product, keysOf[i])
			if err != nil {
				return nil, err
			}
			for j := i; j < len(ins); j++ { // later questions about the same subject see it too
				if keysOf[j] == keysOf[i] {
					states[j] = st
				}
			}
		}
		d, err := decide(ctx, eng, in, states[i])
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// Current returns the state of every purpose for a subject ("none" where
// nothing was recorded).
func (s *Service) Current(ctx context.Context, subj identity.Subject) ([]PurposeState, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT cs.purpose, cs.state, cs.source, cs.notice_version, cs.gpc, cs.event_id::text, cs.updated_at
		FROM consent_state cs JOIN subjects s ON s.id = cs.subject_id
		WHERE s.lookup_hash = ANY($1)`, s.kr.Hashes(subj))
	if err != nil {
		return nil, fmt.Errorf("current consent: %w", err)
	}
	defer rows.Close()
	got := map[string]PurposeState{}
	for rows.Next() {
		var p PurposeState
		var at time.Time
		if err := rows.Scan(&p.Purpose, &p.State, &p.Source, &p.NoticeVersion, &p.GPC, &p.EventID, &at); err != nil {
			return nil, fmt.Errorf("current consent: %w", err)
		}
		at = at.UTC()
		p.UpdatedAt = &at
		got[p.Purpose] = p
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("current consent: %w", err)
	}
	out := make([]PurposeState, 0, len(s.Engine().Purposes))
	for _, name := range keys(s.Engine().Purposes) {
		if p, ok := got[name]; ok {
			out = append(out, p)
		} else {
			out = append(out, PurposeState{Purpose: name, State: "none"})
		}
	}
	return out, nil
}

const eventColumns = `e.id::text, e.subject_kind, encode(s.lookup_hash, 'hex'), e.purpose, e.state, e.source, e.notice_version,
	coalesce(e.jurisdiction, ''), coalesce(e.language, ''), e.product, e.gpc, coalesce(e.user_agent, ''),
	coalesce(encode(e.ip_hash, 'hex'), ''), coalesce(e.key_id, ''), e.policy_revision, e.recorded_at`

func scanEvent(row pgx.Row) (Event, error) {
	var e Event
	err := row.Scan(&e.ID, &e.SubjectKind, &e.SubjectHash, &e.Purpose, &e.State, &e.Source, &e.NoticeVersion,
		&e.Jurisdiction, &e.Language, &e.Product, &e.GPC, &e.UserAgent, &e.IPHash, &e.KeyID, &e.PolicyRevision, &e.RecordedAt)
	e.RecordedAt = e.RecordedAt.UTC()
	return e, err
}

// History returns a subject's events newest first, limit at a time; cursor
// is the opaque value from the previous page ("" for the first).
func (s *Service) History(ctx context.Context, subj identity.Subject, cursor string, limit int) ([]Event, string, error) {
	if limit <= 0 || limit > 200 {
		return nil, "", apperr.Field("limit", "must be between 1 and 200")
	}
	at, id, err := decodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	rows, err := s.pool.Query(ctx, `
		SELECT `+eventColumns+`
		FROM consent_events e JOIN subjects s ON s.id = e.subject_id
		WHERE s.lookup_hash = ANY($1) AND ($2::timestamptz IS NULL OR (e.recorded_at, e.id) < ($2, $3::uuid))
		ORDER BY e.recorded_at DESC, e.id DESC
		LIMIT $4`, s.kr.Hashes(subj), at, id, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("consent history: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, "", fmt.Errorf("consent history: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("consent history: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[limit-1]
		next = encodeCursor(last.RecordedAt, last.ID)
	}
	return out, next, nil
}

// Event returns one event by id.
func (s *Service) Event(ctx context.Context, id string) (Event, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Event{}, apperr.Field("event_id", "must be a UUID")
	}
	e, err := scanEvent(s.pool.QueryRow(ctx, `SELECT `+eventColumns+` FROM consent_events e JOIN subjects s ON s.id = e.subject_id WHERE e.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Event{}, apperr.New(apperr.NotFound, "no consent event with that id")
	}
	if err != nil {
		return Event{}, fmt.Errorf("consent event: %w", err)
	}
	return e, nil
}

func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixMicro(), 10) + "." + id))
}

// decodeCursor parses a history cursor; nil values mean "from the start".
func decodeCursor(c string) (*time.Time, *string, error) {
	if c == "" {
		return nil, nil, nil
	}
	bad := apperr.Field("cursor", "not a cursor returned by this API; start again without one")
	if len(c) > 128 {
		return nil, nil, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return nil, nil, bad
	}
	ts, id, ok := strings.Cut(string(b), ".")
	if !ok {
		return nil, nil, bad
	}
	us, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || us < 0 {
		return nil, nil, bad
	}
	if _, err := uuid.Parse(id); err != nil {
		return nil, nil, bad
	}
	t := time.UnixMicro(us).UTC()
	return &t, &id, nil
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }
