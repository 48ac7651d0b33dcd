package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/internal/apperr"
)

// CreemSignatureHeader carries the hex HMAC-SHA256 of a Creem webhook's raw
// body under the webhook secret.
const CreemSignatureHeader = "creem-signature"

// creemWebhook receives a Creem webhook. It is authenticated by the
// signature over the raw body, not an API key: Creem cannot hold one. The
// body is read as bytes and handed on untouched, since re-encoding it
// would change what was signed.
func (s *server) creemWebhook(c *fiber.Ctx) error {
	if s.CreemWebhook == nil {
		return apperr.New(apperr.NotFound, "no Creem webhook secret is configured")
	}
	body := append([]byte(nil), c.Body()...)
	if err := s.CreemWebhook(c.UserContext(), body, c.Get(CreemSignatureHeader)); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"received": true})
}
