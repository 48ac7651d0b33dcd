package dsar

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/exportpkg"
	"github.com/steward-privacy/steward/internal/restrictions"
)

// Steward's own records of a person take part in their requests like any
// connector's: the consent ledger is in their access package and is
// forgotten by their erasure, a restriction reaches the consent check, and
// an objection to direct marketing withdraws the marketing consents at
// once.

// ConsentLedger is Steward's consent ledger as the engine needs it
// (*consent.Service).
type ConsentLedger interface {
	SubjectExport(ctx context.Context, subjects []identity.Subject) (consent.Export, error)
	Forget(ctx context.Context, tx pgx.Tx, subjects []identity.Subject, actor string) (consent.ForgetResult, error)
	Current(ctx context.Context, subj identity.Subject) ([]consent.PurposeState, error)
	Record(ctx context.Context, in consent.RecordInput) (consent.Event, error)
}

// RestrictionLedger records restrictions of processing the consent check
// answers with (*restrictions.Ledger).
type RestrictionLedger interface {
	RestrictSubjects(ctx context.Context, requestID string, subjects []identity.Subject) (bool, error)
	LiftSubjects(ctx context.Context, subjects []identity.Subject, actor, reason string) ([]restrictions.Restriction, error)
}

// LedgerArgs is the job that applies a request to Steward's own ledgers
// outside the request's transaction (the ledgers keep their own): the
// objection's withdrawals, the restriction's record.
type LedgerArgs struct {
	RequestID string `json:"request_id"`
	Op        string `json:"op"` // ledgerWithdrawMarketing or ledgerRestrict
}

const (
	ledgerWithdrawMarketing = "withdraw_marketing"
	ledgerRestrict          = "restrict"
)

// Kind is River's job kind.
func (LedgerArgs) Kind() string { return "dsar.ledger" }

// InsertOpts makes the job unique per request and operation.
func (LedgerArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type ledgerWorker struct {
	river.WorkerDefaults[LedgerArgs]
	s *Service
}

func (w *ledgerWorker) Work(ctx context.Context, job *river.Job[LedgerArgs]) error {
	return w.s.applyLedger(ctx, job.Args)
}

// queueLedger queues op for the request in tx, when the ledger it needs is
// configured.
func (s *Service) queueLedger(ctx context.Context, tx pgx.Tx, r *Request, op string) error {
	if op == ledgerWithdrawMarketing && s.Consent == nil || op == ledgerRestrict && s.Restrictions == nil {
		return nil
	}
	if _, err := s.Jobs.InsertTx(ctx, tx, LedgerArgs{RequestID: r.ID, Op: op}, nil); err != nil {
		return fmt.Errorf("dsar: queue %s: %w", op, err)
	}
	return nil
}

// requestSubjects opens the identities of a request, in their own
// transaction.
func (s *Service) requestSubjects(ctx context.Context, requestID string) ([]identity.Subject, error) {
	var out []identity.Subject
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var err error
		out, err = s.subjectsOf(ctx, tx, requestID)
		return err
	})
	return out, err
}

// subjectsOf opens the identities of a request in tx, as subjects.
func (s *Service) subjectsOf(ctx context.Context, tx pgx.Tx, requestID string) ([]identity.Subject, error) {
	found, err := s.identities(ctx, tx, requestID)
	out := make([]identity.Subject, 0, len(found))
	for _, f := range found {
		out = append(out, f.subj)
	}
	return out, err
}

func (s *Service) applyLedger(ctx context.Context, a LedgerArgs) error {
	subjects, err := s.requestSubjects(ctx, a.RequestID)
	if err != nil {
		return err
	}
	switch a.Op {
	case ledgerRestrict:
		if _, err := s.Restrictions.RestrictSubjects(ctx, a.RequestID, subjects); err != nil {
			return fmt.Errorf("dsar: record the restriction: %w", err)
		}
		return s.tx(ctx, func(tx pgx.Tx) error {
			return s.event(ctx, tx, a.RequestID, "consent_restricted", "", "", actorSystem, "", nil)
		})
	case ledgerWithdrawMarketing:
		n, err := s.withdrawMarketing(ctx, a.RequestID, subjects)
		if err != nil {
			return err
		}
		return s.tx(ctx, func(tx pgx.Tx) error {
			return s.event(ctx, tx, a.RequestID, "marketing_withdrawn", "", "", actorSystem, "", map[string]any{"withdrawals": n})
		})
	}
	return fmt.Errorf("dsar: unknown ledger operation %q", a.Op)
}

// withdrawMarketing records a withdrawal of every direct-marketing purpose
// (dpv:DirectMarketing) each identity's product offers, unless the ledger
// already says withdrawn or refused: GDPR Art. 21(3), "where the data
// subject objects to processing for direct marketing purposes, the
// personal data shall no longer be processed for such purposes" — no
// balancing, no approval. The ledger's own unsubscriber then tells the
// email provider. Running twice records nothing new.
func (s *Service) withdrawMarketing(ctx context.Context, requestID string, subjects []identity.Subject) (int, error) {
	engine := s.Policies.Current()
	n := 0
	for _, subj := range subjects {
		// The product whose subjects this kind names (email: web, tg: bot);
		// a user or customer id has no consent of its own.
		product := engine.ProductOf(subj.Kind())
		prod, ok := engine.Products[product]
		if !ok || !slices.Contains(prod.Identities, subj.Kind()) {
			continue
		}
		current, err := s.Consent.Current(ctx, subj)
		if err != nil {
			return n, fmt.Errorf("dsar: read consent: %w", err)
		}
		for _, name := range engine.PurposesOf(product) {
			if engine.Purposes[name].DPV != "dpv:DirectMarketing" {
				continue
			}
			if i := slices.IndexFunc(current, func(c consent.PurposeState) bool { return c.Purpose == name }); i >= 0 &&
				(current[i].State == consent.Withdrawn || current[i].State == consent.Denied) {
				continue
			}
			if _, err := s.Consent.Record(ctx, consent.RecordInput{
				Subject: subj, Purpose: name, State: consent.Withdrawn, Source: "api", Product: product,
				NoticeVersion: prod.NoticeVersion, KeyID: "dsar:" + requestID,
			}); err != nil {
				return n, fmt.Errorf("dsar: withdraw %s: %w", name, err)
			}
			n++
		}
	}
	return n, nil
}

// consentRecords adds the person's consent ledger to their package: every
// event recorded under any of their identities, with its signed receipt
// (GDPR Art. 15(1) and Art. 7(1): the person sees what they agreed to, when,
// under which notice, and can verify it). The ledger is Steward's own
// system, "steward", dataset "consent_events".
func (s *Service) consentRecords(ctx context.Context, requestID string, in *exportpkg.Input) error {
	if s.Consent == nil {
		return nil
	}
	subjects, err := s.requestSubjects(ctx, requestID)
	if err != nil {
		return err
	}
	exp, err := s.Consent.SubjectExport(ctx, subjects)
	if err != nil {
		return fmt.Errorf("dsar: export the consent ledger: %w", err)
	}
	for _, ev := range exp.Events {
		e := ev.Event
		f := func(name string, v any) connectors.FieldValue {
			return connectors.FieldValue{Field: name, Category: "user.preferences", Value: v}
		}
		fields := []connectors.FieldValue{f("purpose", e.Purpose), f("state", e.State), f("source", e.Source),
			f("notice_version", e.NoticeVersion), f("product", e.Product), f("recorded_at", e.RecordedAt.UTC().Format(time.RFC3339))}
		if e.Jurisdiction != "" {
			fields = append(fields, f("jurisdiction", e.Jurisdiction))
		}
		if ev.JWS != "" {
			fields = append(fields, f("receipt_jws", ev.JWS))
		}
		in.Records = append(in.Records, exportpkg.Record{System: "steward",
			Record: connectors.Record{Dataset: "consent_events", Key: e.ID, Fields: fields}})
	}
	return nil
}

// LiftRestrictionByPerson lifts the restriction the person's own completed
// restriction request set, on their word (the restriction was theirs to
// ask for, and GDPR Art. 18 lets it end when they no longer want it; staff
// lift with a reason through the restrictions API). The status token
// proves it is them. It returns how many restriction rows were lifted.
// Rows connectors flagged in the product's own tables stay flagged: lifting
// there is staff's (a limit docs/privacy-requests.md states).
func (s *Service) LiftRestrictionByPerson(ctx context.Context, id, token string) (int, error) {
	if !ValidID(id) {
		return 0, errNotFound
	}
	if s.Restrictions == nil {
		return 0, apperr.New(apperr.Conflict, "restrictions are not recorded by this service")
	}
	var actor string
	var subjects []identity.Subject
	_, err := s.act(ctx, id, func(tx pgx.Tx, r *Request) error {
		if err := s.checkToken(ctx, tx, id, token); err != nil {
			return err
		}
		if r.Type != "restriction" || r.Status != Completed {
			return apperr.New(apperr.Conflict, "only a completed restriction request can be lifted")
		}
		var lifted bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM privacy_request_events WHERE request_id = $1 AND event = 'restriction_lifted')`, id).Scan(&lifted); err != nil {
			return fmt.Errorf("dsar: check lifted: %w", err)
		}
		if lifted {
			return apperr.New(apperr.Conflict, "this restriction was already lifted")
		}
		var err error
		if actor, err = s.personActor(ctx, tx, id); err != nil {
			return err
		}
		subjects, err = s.subjectsOf(ctx, tx, id)
		return err
	})
	if err != nil {
		return 0, err
	}
	rows, err := s.Restrictions.LiftSubjects(ctx, subjects, actor, "lifted at the person's request")
	if err != nil {
		return 0, fmt.Errorf("dsar: lift the restriction: %w", err)
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		return s.event(ctx, tx, id, "restriction_lifted", "", "", actor, "", map[string]any{"rows": len(rows)})
	})
	return len(rows), err
}

// forgetConsent erases the person from the consent ledger as their
// erasure completes, in its transaction: the sealed identities go, grants
// go, and refusals and withdrawals stay under the keyed hash as proof of
// the opt-out. A legal hold on the person keeps the ledger as it is, as it
// keeps their other data.
func (s *Service) forgetConsent(ctx context.Context, tx pgx.Tx, r *Request) error {
	if s.Consent == nil {
		return nil
	}
	subjects, err := s.subjectsOf(ctx, tx, r.ID)
	if err != nil {
		return err
	}
	holds, err := s.legalHolds(ctx, tx, subjects)
	if err != nil {
		return err
	}
	for _, h := range holds {
		if h.scope == "subject" {
			return s.event(ctx, tx, r.ID, "consent_ledger_held", "", "", actorSystem, "", map[string]any{"hold": h.id})
		}
	}
	res, err := s.Consent.Forget(ctx, tx, subjects, actorSystem)
	if err != nil {
		return fmt.Errorf("dsar: forget the consent ledger: %w", err)
	}
	return s.event(ctx, tx, r.ID, "consent_ledger_forgotten", "", "", actorSystem, "", map[string]any{
		"subjects": res.Subjects, "grants_deleted": res.GrantsDeleted, "events_scrubbed": res.EventsScrubbed, "refusals_kept": res.RefusalsKept})
}
