package api

import (
	"context"
	_ "embed"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/steward-privacy/steward/internal/apperr"
)

// OpenAPI is the API description served at /openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte

func (s *server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

func (s *server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 2*time.Second)
	defer cancel()
	if s.Ready != nil {
		if err := s.Ready(ctx); err != nil {
			s.Log.Warn("not ready", "err", err)
			return apperr.New(apperr.Unavailable, "not ready: %v", err)
		}
	}
	return c.JSON(fiber.Map{"status": "ready", "policy_revision": s.Consent.Engine().Revision()})
}

func (s *server) metrics(c *fiber.Ctx) error {
	fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(s.Metrics.Registry, promhttp.HandlerOpts{}))(c.Context())
	return nil
}

func (s *server) openapi(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(OpenAPI)
}
