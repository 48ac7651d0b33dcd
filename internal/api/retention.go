package api

import (
	"context"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/retention"
)

// The retention endpoints: the plan, runs (a dry run or the real thing,
// of every rule or one dataset) and legal holds.

// RetentionService plans and runs retention sweeps and keeps legal holds
// (*retention.Service).
type RetentionService interface {
	Plan(ctx context.Context, dataset string) ([]retention.PlanItem, error)
	Start(ctx context.Context, o retention.RunOptions) (retention.Run, error)
	ListRuns(ctx context.Context, limit int) ([]retention.Run, error)
	GetRun(ctx context.Context, id string) (retention.Run, error)
	ListHolds(ctx context.Context, all bool) ([]retention.Hold, error)
	CreateHold(ctx context.Context, in retention.HoldInput, actor string) (retention.Hold, error)
	GetHold(ctx context.Context, id string) (retention.Hold, error)
	LiftHold(ctx context.Context, id, reason, actor string) (retention.Hold, error)
}

// Run and hold ids are UUIDs; anything else names none, and is refused as
// the service would refuse it, without asking it.
var (
	errNoRun  = apperr.New(apperr.NotFound, "no such retention run")
	errNoHold = apperr.New(apperr.NotFound, "no such hold")
)

// uuidParam is the named path parameter in canonical form (canonicalID);
// anything else is notFound.
func uuidParam(c *fiber.Ctx, name string, notFound error) (string, error) {
	id, ok := canonicalID(c.Params(name))
	if !ok {
		return "", notFound
	}
	return id, nil
}

func (s *server) needRetention() error {
	if s.Retention == nil {
		return apperr.New(apperr.NotFound, "retention is not enabled on this deployment")
	}
	return nil
}

func (s *server) retentionPlan(c *fiber.Ctx) error {
	if err := s.needRetention(); err != nil {
		return err
	}
	if err := checkQuery(c, "dataset"); err != nil {
		return err
	}
	if err := s.authorize(c, "retention.read"); err != nil {
		return err
	}
	items, err := s.Retention.Plan(c.UserContext(), strings.Clone(c.Query("dataset")))
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"rules": items})
}

// startRunBody is a run's body. DryRun is a pointer because it must be
// stated: an empty or null body once started a real sweep, which deletes
// data, so "not said" is refused rather than read as false.
type startRunBody struct {
	DryRun  *bool  `json:"dry_run"`
	Dataset string `json:"dataset"`
}

func (s *server) startRetentionRun(c *fiber.Ctx) error {
	if err := s.needRetention(); err != nil {
		return err
	}
	var b startRunBody
	if err := jsonBody(c, &b); err != nil {
		return err
	}
	if b.DryRun == nil {
		return apperr.Field("dry_run", "required: true to plan only, false to delete and anonymize for real")
	}
	if err := s.authorize(c, "retention.run"); err != nil {
		return err
	}
	r, err := s.Retention.Start(c.UserContext(), retention.RunOptions{Trigger: retention.TriggerAPI, Actor: "key:" + callerKey(c).ID,
		DryRun: *b.DryRun, Dataset: b.Dataset})
	if err != nil {
		return err
	}
	c.Location("/v1/retention/runs/" + r.ID)
	return c.Status(fiber.StatusAccepted).JSON(r)
}

func (s *server) listRetentionRuns(c *fiber.Ctx) error {
	if err := s.needRetention(); err != nil {
		return err
	}
	if err := checkQuery(c, "limit"); err != nil {
		return err
	}
	if err := s.authorize(c, "retention.read"); err != nil {
		return err
	}
	limit := 20
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return apperr.Field("limit", "want a whole number from 1 to 100")
		}
		limit = n
	}
	runs, err := s.Retention.ListRuns(c.UserContext(), limit)
	if err != nil {
		return err
	}
	if runs == nil {
		runs = []retention.Run{}
	}
	return c.JSON(fiber.Map{"runs": runs})
}

func (s *server) getRetentionRun(c *fiber.Ctx) error {
	if err := s.needRetention(); err != nil {
		return err
	}
	if err := s.authorize(c, "retention.read"); err != nil {
		return err
	}
	id, err := uuidParam(c, "id", errNoRun)
	if err != nil {
		return err
	}
	r, err := s.Retention.GetRun(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

func (s *server) listHolds(c *fiber.Ctx) error {
	if err := s.needRetention(); err != nil {
		return err
	}
	if err := checkQuery(c, "all"); err != nil {
		return err
	}
	if err := s.authorize(c, "retention.read"); err != nil {
		return err
	}
	all := false
	switch c.Query("all") {
	case "", "false":
	case "true":
		all = true
	default:
		return apperr.Field("all", "want true or false")
	}
	hs, err := s.Retention.ListHolds(c.UserContext(), all)
	if err != nil {
		return err
	}
	if hs == nil {
		hs = []retention.Hold{}
	}
	return c.JSON(fiber.Map{"holds": hs})
}

func (s *server) createHold(c *fiber.Ctx) error {
	if err := s.needRetention(); err != nil {
		return err
	}
	var b retention.HoldInput
	if err := jsonBody(c, &b); err != nil {
		return err
	}
	if err := s.authorize(c, "holds.manage"); err != nil {
		return err
	}
	h, err := s.Retention.CreateHold(c.UserContext(), b, "key:"+callerKey(c).ID)
	if err != nil {
		return err
	}
	c.Location("/v1/legal-holds/" + h.ID)
	return c.Status(fiber.StatusCreated).JSON(h)
}

func (s *server) getHold(c *fiber.Ctx) error {
	if err := s.needRetention(); err != nil {
		return err
	}
	if err := s.authorize(c, "retention.read"); err != nil {
		return err
	}
	id, err := uuidParam(c, "id", errNoHold)
	if err != nil {
		return err
	}
	h, err := s.Retention.GetHold(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(h)
}

// liftBody is a lift's body: why the hold ends.
type liftBody struct {
	Reason string `json:"reason"`
}

func (s *server) liftHold(c *fiber.Ctx) error {
	if err := s.needRetention(); err != nil {
		return err
	}
	var b liftBody
	if err := jsonBody(c, &b); err != nil {
		return err
	}
	if err := s.authorize(c, "holds.manage"); err != nil {
		return err
	}
	id, err := uuidParam(c, "id", errNoHold)
	if err != nil {
		return err
	}
	h, err := s.Retention.LiftHold(c.UserContext(), id, b.Reason, "key:"+callerKey(c).ID)
	if err != nil {
		return err
	}
	return c.JSON(h)
}
