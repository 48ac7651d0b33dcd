package api

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
)

// Verification beyond the emailed code (docs/privacy-requests.md,
// "Verifying who asks"): challenge login and recent invoice are the
// person's (public: the token, and the status token with the invoice, are
// the credentials); reviewing a signed instruction and releasing a held
// package are staff's (requests.manage).

type challengeLoginBody struct {
	Token string `json:"token"`
}

func (s *server) challengeLogin(c *fiber.Ctx) error {
	var b challengeLoginBody
	if err := jsonBody(c, &b); err != nil {
		return err
	}
	id, err := requestID(c)
	if err != nil {
		return err
	}
	v, err := s.Requests.ChallengeLogin(c.UserContext(), id, b.Token)
	if err != nil {
		return err
	}
	return c.JSON(verifiedResponse{Request: v.Request, StatusToken: v.StatusToken})
}

type invoiceBody struct {
	Reference string `json:"reference"`
}

func (s *server) verifyInvoice(c *fiber.Ctx) error {
	var b invoiceBody
	if err := jsonBody(c, &b); err != nil {
		return err
	}
	id, err := requestID(c)
	if err != nil {
		return err
	}
	token := c.Get(StatusTokenHeader)
	if token == "" {
		return errNoRequest
	}
	if strings.TrimSpace(b.Reference) == "" {
		return apperr.Field("reference", "required: the number of a recent invoice or payment")
	}
	r, err := s.Requests.VerifyInvoice(c.UserContext(), id, strings.Clone(token), b.Reference)
	if err != nil {
		return err
	}
	return c.JSON(r)
}

func (s *server) reviewDocument(c *fiber.Ctx) error {
	kind := strings.Clone(c.Params("kind"))
	if kind != dsar.DocAgentAuthorization {
		if err := s.authorize(c, "requests.manage"); err != nil {
			return err
		}
		return apperr.New(apperr.NotFound, "this request has no such document")
	}
	return s.staffAction(c, func(id, actor string, b reasonBody) (dsar.Request, error) {
		return s.Requests.ReviewDocument(c.UserContext(), id, kind, actor, b.Note)
	})
}

func (s *server) releasePackage(c *fiber.Ctx) error {
	return s.staffAction(c, func(id, actor string, b reasonBody) (dsar.Request, error) {
		return s.Requests.ReleasePackage(c.UserContext(), id, actor, b.Note)
	})
}
