package api

import (
	"context"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/policy"
)

// NoticeAnnouncer tells the people who consented under an older major
// version that a product's notice changed (*consent.Service).
type NoticeAnnouncer interface {
	AnnounceNotice(ctx context.Context, product, version, actor string) (consent.Announcement, error)
}

var _ NoticeAnnouncer = (*consent.Service)(nil)

var (
	errNoProduct = apperr.New(apperr.NotFound, "no such product")
	errNoNotice  = apperr.New(apperr.NotFound, "no such notice version")
)

type noticeList struct {
	Product  string          `json:"product"`
	Current  string          `json:"current"`
	Versions []policy.Notice `json:"versions"`
}

// listNotices serves every version of a product's notice: the web notice
// "can provide prior versions on request". Public, like the notice itself.
func (s *server) listNotices(c *fiber.Ctx) error {
	if err := checkQuery(c); err != nil {
		return err
	}
	eng := s.Consent.Engine()
	product := c.Params("product")
	prod, ok := eng.Products[product]
	if !ok {
		return errNoProduct
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.JSON(noticeList{Product: strings.Clone(product), Current: prod.NoticeVersion, Versions: eng.Notices(product)})
}

type noticeText struct {
	policy.Notice
	// Language is the language of Text: the one asked for, else English.
	Language string `json:"language"`
	Text     string `json:"text"`
}

// getNotice serves one version's text in a language (?lang=, else
// English); a version the registry has no text for is 404.
func (s *server) getNotice(c *fiber.Ctx) error {
	if err := checkQuery(c, "lang"); err != nil {
		return err
	}
	lang := c.Query("lang", "en")
	if len(lang) > 35 {
		return apperr.Field("lang", "must be a language tag such as en, ru or uz")
	}
	eng := s.Consent.Engine()
	if _, ok := eng.Products[c.Params("product")]; !ok {
		return errNoProduct
	}
	n, ok := eng.Notice(c.Params("product"), c.Params("version"))
	if !ok {
		return errNoNotice
	}
	text, in, ok := n.Text(strings.ToLower(lang))
	if !ok {
		return apperr.New(apperr.NotFound, "this version's text is not in the registry")
	}
	c.Set(fiber.HeaderContentLanguage, in)
	c.Set(fiber.HeaderCacheControl, "public, max-age=300")
	return c.JSON(noticeText{Notice: n, Language: in, Text: text})
}

// announceNotice tells everyone who consented under an older major that
// the product's current notice (a major change) is in force.
func (s *server) announceNotice(c *fiber.Ctx) error {
	if s.Notices == nil {
		return apperr.New(apperr.NotFound, "notice announcements are not enabled on this deployment")
	}
	if err := checkQuery(c); err != nil {
		return err
	}
	if err := s.authorize(c, "notices.announce"); err != nil {
		return err
	}
	a, err := s.Notices.AnnounceNotice(c.UserContext(), strings.Clone(c.Params("product")), strings.Clone(c.Params("version")), "key:"+callerKey(c).ID)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(a)
}
