package retention

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/keyring"
)

// Hold scopes.
const (
	ScopeSubject  = "subject"
	ScopeDataset  = "dataset"
	ScopeCategory = "category"
)

// maxReason bounds a hold's reason (the database checks it too).
const maxReason = 2000

// Hold is a legal hold: data a sweep must not remove, however old. The
// subject of a subject hold is never shown (it is personal data); its kind
// is.
type Hold struct {
	ID          string     `json:"id"`
	Scope       string     `json:"scope"`
	System      string     `json:"system,omitempty"`
	Dataset     string     `json:"dataset,omitempty"`
	Category    string     `json:"category,omitempty"`
	SubjectKind string     `json:"subject_kind,omitempty"`
	Reason      string     `json:"reason"`
	CreatedBy   string     `json:"created_by"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	LiftedAt    *time.Time `json:"lifted_at,omitempty"`
	LiftedBy    string     `json:"lifted_by,omitempty"`
	LiftReason  string     `json:"lift_reason,omitempty"`
	// Active: not lifted and not expired, now.
	Active bool `json:"active"`

	subject *identity.Subject // opened for sweeps only
}

// HoldInput is a request to place a hold: exactly one of Subject (an
// identity such as email:a@example.com), Dataset ("system.dataset") or
// Category (a data category such as user.financial, which holds every
// dataset with a field of that category or below it).
type HoldInput struct {
	Subject   string     `json:"subject,omitempty"`
	Dataset   string     `json:"dataset,omitempty"`
	Category  string     `json:"category,omitempty"`
	Reason    string     `json:"reason"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// holdAAD binds a sealed hold subject to its row.
func holdAAD(id string) []byte { return []byte("legal_hold:" + id) }

// CreateHold validates and places a hold, with its audit event in the same
// transaction. actor is the caller ("key:<id>", "system:cli").
func (s *Service) CreateHold(ctx context.Context, in HoldInput, actor string) (Hold, error) {
	now := s.Clock.Now().UTC()
	h, subj, err := s.validateHold(in, now)
	if err != nil {
		return Hold{}, err
	}
	h.ID, h.CreatedBy, h.CreatedAt, h.Active = uuid.NewString(), actor, now, true
	var hash, ct []byte
	var kid string
	if subj != nil {
		hash = s.Keys.Hash(*subj)
		if kid, ct, err = s.Keys.Seal([]byte(subj.String()), holdAAD(h.ID)); err != nil {
			return Hold{}, fmt.Errorf("retention: seal hold subject: %w", err)
		}
	}
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO legal_holds (id, scope, system, dataset, category, subject_kind, subject_hash, subject_kid, subject_ct,
				reason, created_by, created_at, expires_at)
			VALUES ($1, $2, NULLIF($3, ''), NULLIF($4, ''), NULLIF($5, ''), NULLIF($6, ''), $7, NULLIF($8, ''), $9, $10, $11, $12, $13)`,
			h.ID, h.Scope, h.System, h.Dataset, h.Category, h.SubjectKind, hash, kid, ct, h.Reason, h.CreatedBy, h.CreatedAt, h.ExpiresAt); err != nil {
			return fmt.Errorf("retention: insert hold: %w", err)
		}
		return s.Audit.Append(ctx, tx, audit.Record{Actor: actor, Action: "retention.hold_created", TargetType: "legal_hold", TargetID: h.ID,
			Details: holdDetails(h, hash)})
	})
	if err != nil {
		return Hold{}, err
	}
	s.logger().InfoContext(ctx, "legal hold placed", "hold", h.ID, "scope", h.Scope, "system", h.System, "dataset", h.Dataset, "category", h.Category)
	return h, nil
}

// holdDetails is what the audit log says of a hold: the subject only as
// its keyed hash, and the reason only as a hash (free text may name a
// person; the hold row keeps the text).
func holdDetails(h Hold, subjectHash []byte) map[string]any {
	d := map[string]any{"scope": h.Scope, "reason_sha256": audit.TextHash(h.Reason)}
	switch h.Scope {
	case ScopeSubject:
		d["subject_kind"] = h.SubjectKind
		d["subject_hash"] = fmt.Sprintf("%x", subjectHash)
	case ScopeDataset:
		d["dataset"] = h.System + "." + h.Dataset
	case ScopeCategory:
		d["category"] = h.Category
	}
	if h.ExpiresAt != nil {
		d["expires_at"] = h.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return d
}

// validateHold checks a hold request against the loaded data map: a hold
// on something that does not exist would protect nothing, silently.
func (s *Service) validateHold(in HoldInput, now time.Time) (Hold, *identity.Subject, error) {
	var h Hold
	var fields []apperr.FieldError
	bad := func(field, format string, args ...any) {
		fields = append(fields, apperr.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	set := 0
	for _, v := range []string{in.Subject, in.Dataset, in.Category} {
		if strings.TrimSpace(v) != "" {
			set++
		}
	}
	if set != 1 {
		return h, nil, apperr.New(apperr.Invalid, "a hold names exactly one of subject, dataset or category")
	}
	var subj *identity.Subject
	switch {
	case strings.TrimSpace(in.Subject) != "":
		p, err := identity.Parse(in.Subject)
		if err != nil {
			var pe *identity.ParseError
			if errors.As(err, &pe) {
				bad("subject", "%s", pe.Reason)
			} else {
				bad("subject", "not an identity such as email:a@example.com or tg:123")
			}
			break
		}
		subj = &p
		h.Scope, h.SubjectKind = ScopeSubject, p.Kind()
	case strings.TrimSpace(in.Dataset) != "":
		sys, ds, ok := strings.Cut(strings.TrimSpace(in.Dataset), ".")
		if !ok || !s.knownDataset(sys, ds) {
			bad("dataset", "%q is not a dataset of the data map or of Steward itself (want system.dataset, e.g. %s)", clip(in.Dataset), s.exampleDataset())
			break
		}
		h.Scope, h.System, h.Dataset = ScopeDataset, sys, ds
	default:
		c := strings.TrimSpace(in.Category)
		if !s.knownCategory(c) {
			bad("category", "%q is not a data category of the taxonomy (e.g. user.financial)", clip(c))
			break
		}
		h.Scope, h.Category = ScopeCategory, c
	}
	reason := strings.TrimSpace(in.Reason)
	switch {
	case reason == "":
		bad("reason", "say why the data is held (the case, the authority's request)")
	case utf8.RuneCountInString(reason) > maxReason || !utf8.ValidString(reason):
		bad("reason", "at most %d characters of UTF-8 text", maxReason)
	}
	h.Reason = reason
	if in.ExpiresAt != nil {
		if !in.ExpiresAt.After(now) {
			bad("expires_at", "is not in the future (now is %s); omit it for a hold until lifted", now.Format(time.RFC3339))
		} else {
			e := in.ExpiresAt.UTC()
			h.ExpiresAt = &e
		}
	}
	if len(fields) > 0 {
		return Hold{}, nil, &apperr.Error{Code: apperr.Invalid, Message: "the hold cannot be placed", Fields: fields}
	}
	return h, subj, nil
}

func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}

// LiftHold ends a hold; lifting one already lifted is a conflict.
func (s *Service) LiftHold(ctx context.Context, id, reason, actor string) (Hold, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Hold{}, apperr.New(apperr.NotFound, "no such hold")
	}
	reason = strings.TrimSpace(reason)
	if reason == "" || utf8.RuneCountInString(reason) > maxReason || !utf8.ValidString(reason) {
		return Hold{}, &apperr.Error{Code: apperr.Invalid, Message: "the hold cannot be lifted",
			Fields: []apperr.FieldError{{Field: "reason", Message: fmt.Sprintf("say why the hold ends (1 to %d characters)", maxReason)}}}
	}
	now := s.Clock.Now().UTC()
	var h Hold
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		var err error
		if h, err = getHold(ctx, tx, id, now, true); err != nil {
			return err
		}
		if h.LiftedAt != nil {
			return apperr.New(apperr.Conflict, "the hold was already lifted")
		}
		if _, err := tx.Exec(ctx, `UPDATE legal_holds SET lifted_at = $2, lifted_by = $3, lift_reason = $4 WHERE id = $1`, id, now, actor, reason); err != nil {
			return fmt.Errorf("retention: lift hold: %w", err)
		}
		h.LiftedAt, h.LiftedBy, h.LiftReason, h.Active = &now, actor, reason, false
		return s.Audit.Append(ctx, tx, audit.Record{Actor: actor, Action: "retention.hold_lifted", TargetType: "legal_hold", TargetID: id,
			Details: map[string]any{"scope": h.Scope, "reason_sha256": audit.TextHash(reason)}})
	})
	if err != nil {
		return Hold{}, err
	}
	s.logger().InfoContext(ctx, "legal hold lifted", "hold", id, "scope", h.Scope)
	return h, nil
}

// GetHold returns one hold.
func (s *Service) GetHold(ctx context.Context, id string) (Hold, error) {
	if _, err := uuid.Parse(id); err != nil {
		return Hold{}, apperr.New(apperr.NotFound, "no such hold")
	}
	return getHold(ctx, s.Pool, id, s.Clock.Now(), false)
}

const holdCols = `id::text, scope, COALESCE(system, ''), COALESCE(dataset, ''), COALESCE(category, ''), COALESCE(subject_kind, ''),
	reason, created_by, created_at, expires_at, lifted_at, COALESCE(lifted_by, ''), COALESCE(lift_reason, ''), subject_kid, subject_ct`

func getHold(ctx context.Context, q db.Querier, id string, now time.Time, lock bool) (Hold, error) {
	sql := `SELECT ` + holdCols + ` FROM legal_holds WHERE id = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	hs, err := scanHolds(ctx, q, now, nil, sql, id)
	if err != nil {
		return Hold{}, err
	}
	if len(hs) == 0 {
		return Hold{}, apperr.New(apperr.NotFound, "no such hold")
	}
	return hs[0], nil
}

// ListHolds returns holds, newest first: the active ones, or all.
func (s *Service) ListHolds(ctx context.Context, all bool) ([]Hold, error) {
	now := s.Clock.Now()
	const order = ` ORDER BY created_at DESC, id DESC LIMIT 1000`
	if all {
		return scanHolds(ctx, s.Pool, now, nil, `SELECT `+holdCols+` FROM legal_holds`+order)
	}
	return scanHolds(ctx, s.Pool, now, nil, `SELECT `+holdCols+` FROM legal_holds
		WHERE lifted_at IS NULL AND (expires_at IS NULL OR expires_at > $1)`+order, now)
}

// activeHolds are the holds in force now, subjects opened.
func (s *Service) activeHolds(ctx context.Context) ([]Hold, error) {
	now := s.Clock.Now()
	return scanHolds(ctx, s.Pool, now, s.Keys, `SELECT `+holdCols+` FROM legal_holds
		WHERE lifted_at IS NULL AND (expires_at IS NULL OR expires_at > $1) ORDER BY created_at, id`, now)
}

func scanHolds(ctx context.Context, q db.Querier, now time.Time, kr *keyring.Keyring, sql string, args ...any) ([]Hold, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("retention: read holds: %w", err)
	}
	defer rows.Close()
	var out []Hold
	for rows.Next() {
		var h Hold
		var kid *string
		var ct []byte
		if err := rows.Scan(&h.ID, &h.Scope, &h.System, &h.Dataset, &h.Category, &h.SubjectKind, &h.Reason, &h.CreatedBy, &h.CreatedAt,
			&h.ExpiresAt, &h.LiftedAt, &h.LiftedBy, &h.LiftReason, &kid, &ct); err != nil {
			return nil, fmt.Errorf("retention: read holds: %w", err)
		}
		h.Active = h.LiftedAt == nil && (h.ExpiresAt == nil || h.ExpiresAt.After(now))
		if kr != nil && kid != nil {
			raw, err := kr.Open(*kid, ct, holdAAD(h.ID))
			if err != nil {
				return nil, fmt.Errorf("retention: open the subject of hold %s: %w", h.ID, err)
			}
			subj, err := identity.Parse(string(raw))
			if err != nil {
				return nil, fmt.Errorf("retention: the subject of hold %s does not parse: %w", h.ID, err)
			}
			h.subject = &subj
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// datasetHold is the hold that stops a dataset's sweep altogether: a hold
// on the dataset, or on a category one of its fields has or falls under;
// nil if none. (Subject holds only skip their subject's records.)
func datasetHold(hs []Hold, system, dataset string, categories []string) *Hold {
	for i, h := range hs {
		switch h.Scope {
		case ScopeDataset:
			if h.System == system && h.Dataset == dataset {
				return &hs[i]
			}
		case ScopeCategory:
			if slices.ContainsFunc(categories, func(c string) bool { return c == h.Category || strings.HasPrefix(c, h.Category+".") }) {
				return &hs[i]
			}
		}
	}
	return nil
}
