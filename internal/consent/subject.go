package consent

import (
	"context"
	"encoding/hex"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/receipt"
)

// SubjectConsent is one identity's current consent, as the access package
// shows it.
type SubjectConsent struct {
	Subject  string         `json:"subject"`
	Purposes []PurposeState `json:"purposes"`
}

// ExportedEvent is one event of the ledger with its ISO/IEC TS 27560
// receipt, signed (JWS) when the service has a signer.
type ExportedEvent struct {
	Event   Event           `json:"event"`
	Receipt receipt.Receipt `json:"receipt"`
	JWS     string          `json:"jws,omitempty"`
}

// Export is Steward's own consent ledger for a person: part of their access
// package (GDPR Art. 15(1), the web notice's "Access ... personal data", the
// bot's "Right to Access: Request a copy of your personal data").
type Export struct {
	Current []SubjectConsent `json:"current"`
	// Events is every event recorded for any of the identities, oldest
	// first, each with its receipt.
	Events []ExportedEvent `json:"events"`
	// JWKSURL verifies the receipts' signatures.
	JWKSURL string `json:"jwks_url"`
}

// SubjectExport returns the consent history, current state and signed
// receipts of every identity in subjects (the identities of one person, as
// the request resolved them). An identity with nothing recorded contributes
// its purposes' "none" states and no events.
func (s *Service) SubjectExport(ctx context.Context, subjects []identity.Subject) (Export, error) {
	out := Export{Current: []SubjectConsent{}, Events: []ExportedEvent{}, JWKSURL: "/v1/consents/receipts/jwks.json"}
	var hashes [][]byte
	seen := map[identity.Subject]bool{}
	for _, subj := range subjects {
		if seen[subj] {
			continue
		}
		seen[subj] = true
		cur, err := s.Current(ctx, subj)
		if err != nil {
			return Export{}, fmt.Errorf("consent export: %w", err)
		}
		out.Current = append(out.Current, SubjectConsent{Subject: subj.String(), Purposes: cur})
		hashes = append(hashes, s.kr.Hashes(subj)...)
	}
	rows, err := s.pool.Query(ctx, `
		SELECT `+eventColumns+`
		FROM consent_events e JOIN subjects s ON s.id = e.subject_id
		WHERE s.lookup_hash = ANY($1)
		ORDER BY e.recorded_at, e.id`, hashes)
	if err != nil {
		return Export{}, fmt.Errorf("consent export: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) { return scanEvent(r) })
	if err != nil {
		return Export{}, fmt.Errorf("consent export: %w", err)
	}
	eng := s.Engine()
	for _, ev := range events {
		r := Receipt(ctx, eng, ev)
		x := ExportedEvent{Event: ev, Receipt: r}
		if s.signer != nil {
			if x.JWS, err = s.signer.Sign(r); err != nil {
				return Export{}, fmt.Errorf("consent export: sign receipt: %w", err)
			}
		}
		out.Events = append(out.Events, x)
	}
	return out, nil
}

// ForgetResult is what erasing a person from the consent ledger did.
type ForgetResult struct {
	// Subjects are the identities found in the ledger and crypto-shredded.
	Subjects int `json:"subjects"`
	// GrantsDeleted are grant events removed with the consent they gave.
	GrantsDeleted int `json:"grants_deleted"`
	// EventsScrubbed lost their user agent and IP hash.
	EventsScrubbed int `json:"events_scrubbed"`
	// RefusalsKept are the refusals and withdrawals kept, under the keyed
	// hash only, as proof of the opt-out.
	RefusalsKept int `json:"refusals_kept"`
}

// Forget erases a person from Steward's own consent ledger (GDPR Art. 17;
// web notice: "we erase or anonymize data within 30 days"; bot 4.3: "we
// will remove your personal information within 30 days"): each identity's
// sealed value is destroyed (crypto-shredding: the keyed hash stays, the
// identity cannot be recovered from it), every event's user agent and IP
// hash are removed, grants are deleted with the current state they set, and
// the links between the identities go. Refusals and withdrawals stay,
// keyed by the hash only, so a later check of the same identity still
// honours the opt-out (GDPR Art. 17(3)(b) and 21(3); the notices' "Opt out
// of marketing communications") and a GPC signal stays recorded.
//
// With tx non-nil it runs inside the caller's transaction (the erasure that
// asks for it); otherwise in its own. Each identity is audited by keyed hash
// only. Forgetting twice changes nothing the second time.
func (s *Service) Forget(ctx context.Context, tx pgx.Tx, subjects []identity.Subject, actor string) (ForgetResult, error) {
	var res ForgetResult
	var hashes [][]byte
	for _, subj := range subjects {
		hashes = append(hashes, s.kr.Hashes(subj)...)
	}
	run := func(tx pgx.Tx) error {
		var err error
		res, err = s.forget(ctx, tx, hashes, actor)
		return err
	}
	var err error
	if tx != nil {
		err = run(tx)
	} else {
		err = db.Tx(ctx, s.pool, run)
	}
	if err != nil {
		return ForgetResult{}, fmt.Errorf("consent: forget: %w", err)
	}
	for _, subj := range subjects {
		s.cache.invalidate(s.kr.HashString(subj))
	}
	return res, nil
}

func (s *Service) forget(ctx context.Context, tx pgx.Tx, hashes [][]byte, actor string) (ForgetResult, error) {
	var res ForgetResult
	rows, err := tx.Query(ctx, `SELECT id, lookup_hash FROM subjects WHERE lookup_hash = ANY($1) ORDER BY id FOR UPDATE`, hashes)
	if err != nil {
		return res, fmt.Errorf("find subjects: %w", err)
	}
	type found struct {
		id   int64
		hash []byte
	}
	subs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (found, error) {
		var f found
		return f, r.Scan(&f.id, &f.hash)
	})
	if err != nil {
		return res, fmt.Errorf("find subjects: %w", err)
	}
	if len(subs) == 0 {
		return res, nil
	}
	ids := make([]int64, len(subs))
	for i, f := range subs {
		ids[i] = f.id
	}
	// The identities go first: the ledger's guard (migration 00016) lets a
	// grant be deleted only once its subject is forgotten.
	tag, err := tx.Exec(ctx, `UPDATE subjects SET ciphertext = ''::bytea, enc_kid = '', forgotten_at = $2
		WHERE id = ANY($1) AND forgotten_at IS NULL`, ids, s.now())
	if err != nil {
		return res, fmt.Errorf("shred identities: %w", err)
	}
	res.Subjects = int(tag.RowsAffected())
	// The one door through the ledger's append-only guard, open for this
	// transaction only and closed again below.
	if _, err := tx.Exec(ctx, `SELECT set_config('steward.consent_forget', 'on', true)`); err != nil {
		return res, fmt.Errorf("open ledger: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM consent_state WHERE subject_id = ANY($1) AND state = 'granted'`, ids); err != nil {
		return res, fmt.Errorf("delete grants: %w", err)
	}
	tag, err = tx.Exec(ctx, `DELETE FROM consent_events e WHERE e.subject_id = ANY($1) AND e.state = 'granted'
		AND NOT EXISTS (SELECT 1 FROM consent_state cs WHERE cs.event_id = e.id)`, ids)
	if err != nil {
		return res, fmt.Errorf("delete grants: %w", err)
	}
	res.GrantsDeleted = int(tag.RowsAffected())
	tag, err = tx.Exec(ctx, `UPDATE consent_events SET user_agent = NULL, ip_hash = NULL
		WHERE subject_id = ANY($1) AND (user_agent IS NOT NULL OR ip_hash IS NOT NULL)`, ids)
	if err != nil {
		return res, fmt.Errorf("scrub events: %w", err)
	}
	res.EventsScrubbed = int(tag.RowsAffected())
	if _, err := tx.Exec(ctx, `SELECT set_config('steward.consent_forget', 'off', true)`); err != nil {
		return res, fmt.Errorf("close ledger: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM consent_events WHERE subject_id = ANY($1)`, ids).Scan(&res.RefusalsKept); err != nil {
		return res, fmt.Errorf("count refusals: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM subject_links WHERE subject_id = ANY($1) OR linked_id = ANY($1)`, ids); err != nil {
		return res, fmt.Errorf("unlink identities: %w", err)
	}
	for _, f := range subs {
		if err := notifyChange(ctx, tx, f.hash); err != nil {
			return res, err
		}
		if s.audit == nil {
			continue
		}
		h := hex.EncodeToString(f.hash)
		if err := s.audit.Append(ctx, tx, audit.Record{Actor: actor, Action: "consent.forgotten", TargetType: "subject", TargetID: h,
			Details: map[string]any{"grants_deleted": res.GrantsDeleted, "events_scrubbed": res.EventsScrubbed, "refusals_kept": res.RefusalsKept}}); err != nil {
			return res, err
		}
	}
	return res, nil
}
