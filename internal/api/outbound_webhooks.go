package api

import (
	"context"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/webhooks"
)

// WebhookEndpoints manages outbound webhook endpoints, their delivery log
// and replays (*webhooks.Endpoints).
type WebhookEndpoints interface {
	Create(ctx context.Context, in webhooks.CreateInput, actor string) (webhooks.Endpoint, error)
	List(ctx context.Context) ([]webhooks.Endpoint, error)
	Delete(ctx context.Context, id, actor string) error
	RotateSecret(ctx context.Context, id, actor string) (webhooks.Endpoint, error)
	Deliveries(ctx context.Context, endpointID string, limit int) ([]webhooks.Delivery, error)
	Replay(ctx context.Context, deliveryID, actor string) (webhooks.Delivery, error)
}

var _ WebhookEndpoints = (*webhooks.Endpoints)(nil)

var (
	errEndpointNotFound = apperr.New(apperr.NotFound, "webhook endpoint not found")
	errDeliveryNotFound = apperr.New(apperr.NotFound, "webhook delivery not found")
)

func (s *server) needWebhooks() error {
	if s.Webhooks == nil {
		return apperr.New(apperr.NotFound, "outbound webhooks are not enabled on this deployment")
	}
	return nil
}

type endpointList struct {
	Endpoints []webhooks.Endpoint `json:"endpoints"`
}

type deliveryList struct {
	Deliveries []webhooks.Delivery `json:"deliveries"`
}

// createWebhookEndpoint registers a subscriber; the answer holds its
// signing secret, shown this once.
func (s *server) createWebhookEndpoint(c *fiber.Ctx) error {
	if err := s.needWebhooks(); err != nil {
		return err
	}
	var in webhooks.CreateInput
	if err := jsonBody(c, &in); err != nil {
		return err
	}
	if in.URL == "" {
		return apperr.Field("url", "required")
	}
	if err := s.authorize(c, "webhooks.manage"); err != nil {
		return err
	}
	e, err := s.Webhooks.Create(c.UserContext(), in, "key:"+callerKey(c).ID)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(e)
}

func (s *server) listWebhookEndpoints(c *fiber.Ctx) error {
	if err := s.needWebhooks(); err != nil {
		return err
	}
	if err := s.authorize(c, "webhooks.manage"); err != nil {
		return err
	}
	es, err := s.Webhooks.List(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(endpointList{Endpoints: es})
}

func (s *server) deleteWebhookEndpoint(c *fiber.Ctx) error {
	if err := s.needWebhooks(); err != nil {
		return err
	}
	if err := s.authorize(c, "webhooks.manage"); err != nil {
		return err
	}
	id, err := uuidParam(c, "id", errEndpointNotFound)
	if err != nil {
		return err
	}
	if err := s.Webhooks.Delete(c.UserContext(), id, "key:"+callerKey(c).ID); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// rotateWebhookSecret issues a new secret (shown once); the old one keeps
// signing for 24 hours beside it.
func (s *server) rotateWebhookSecret(c *fiber.Ctx) error {
	if err := s.needWebhooks(); err != nil {
		return err
	}
	if err := s.authorize(c, "webhooks.manage"); err != nil {
		return err
	}
	id, err := uuidParam(c, "id", errEndpointNotFound)
	if err != nil {
		return err
	}
	e, err := s.Webhooks.RotateSecret(c.UserContext(), id, "key:"+callerKey(c).ID)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(e)
}

func (s *server) listWebhookDeliveries(c *fiber.Ctx) error {
	if err := s.needWebhooks(); err != nil {
		return err
	}
	if err := checkQuery(c, "limit"); err != nil {
		return err
	}
	limit := 50
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			return apperr.Field("limit", "want an integer from 1 to 200")
		}
		limit = n
	}
	if err := s.authorize(c, "webhooks.manage"); err != nil {
		return err
	}
	id, err := uuidParam(c, "id", errEndpointNotFound)
	if err != nil {
		return err
	}
	ds, err := s.Webhooks.Deliveries(c.UserContext(), id, limit)
	if err != nil {
		return err
	}
	return c.JSON(deliveryList{Deliveries: ds})
}

// replayWebhookDelivery sends a delivery again with the same webhook-id
// (audited by the service).
func (s *server) replayWebhookDelivery(c *fiber.Ctx) error {
	if err := s.needWebhooks(); err != nil {
		return err
	}
	if err := s.authorize(c, "webhooks.manage"); err != nil {
		return err
	}
	id, err := uuidParam(c, "id", errDeliveryNotFound)
	if err != nil {
		return err
	}
	d, err := s.Webhooks.Replay(c.UserContext(), id, "key:"+callerKey(c).ID)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(d)
}
