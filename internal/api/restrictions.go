package api

import (
	"context"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/restrictions"
)

// RestrictionService reads and lifts restrictions of processing
// (*restrictions.Ledger).
type RestrictionService interface {
	List(ctx context.Context, s identity.Subject, activeOnly bool) ([]restrictions.Restriction, error)
	Get(ctx context.Context, id string) (restrictions.Restriction, error)
	Lift(ctx context.Context, id, actor, reason string) (restrictions.Restriction, error)
}

var _ RestrictionService = (*restrictions.Ledger)(nil)

func (s *server) needRestrictions() error {
	if s.Restrictions == nil {
		return apperr.New(apperr.NotFound, "restrictions are not enabled on this deployment")
	}
	return nil
}

type restrictionList struct {
	Subject      string                     `json:"subject"`
	Restricted   bool                       `json:"restricted"`
	Restrictions []restrictions.Restriction `json:"restrictions"`
}

// listRestrictions answers "is this person's processing restricted, by
// which request, and since when?" (GDPR Art. 18).
func (s *server) listRestrictions(c *fiber.Ctx) error {
	if err := s.needRestrictions(); err != nil {
		return err
	}
	if err := checkQuery(c, "subject", "active"); err != nil {
		return err
	}
	subj, err := parseSubject("subject", c.Query("subject"))
	if err != nil {
		return err
	}
	active := false
	switch c.Query("active") {
	case "", "false":
	case "true":
		active = true
	default:
		return apperr.Field("active", "want true or false")
	}
	if err := s.authorize(c, "restrictions.read", subj.Kind()); err != nil {
		return err
	}
	rs, err := s.Restrictions.List(c.UserContext(), subj, active)
	if err != nil {
		return err
	}
	out := restrictionList{Subject: subj.String(), Restrictions: rs}
	for _, r := range rs {
		out.Restricted = out.Restricted || r.Active
	}
	return c.JSON(out)
}

func (s *server) getRestriction(c *fiber.Ctx) error {
	if err := s.needRestrictions(); err != nil {
		return err
	}
	if err := s.authorize(c, "restrictions.read"); err != nil {
		return err
	}
	id, err := uuidParam(c, "id", restrictions.ErrNotFound)
	if err != nil {
		return err
	}
	r, err := s.Restrictions.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

// liftRestriction ends a restriction for staff, with a reason (GDPR Art.
// 18(3): the person is told before it is lifted — the reviewer's duty; the
// lift is audited with the reason's hash).
func (s *server) liftRestriction(c *fiber.Ctx) error {
	if err := s.needRestrictions(); err != nil {
		return err
	}
	var b liftBody
	if err := jsonBody(c, &b); err != nil {
		return err
	}
	if err := s.authorize(c, "restrictions.manage"); err != nil {
		return err
	}
	id, err := uuidParam(c, "id", restrictions.ErrNotFound)
	if err != nil {
		return err
	}
	r, err := s.Restrictions.Lift(c.UserContext(), id, "key:"+callerKey(c).ID, b.Reason)
	if err != nil {
		return err
	}
	return c.JSON(r)
}
