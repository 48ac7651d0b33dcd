package api

import (
	"regexp"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/text/language"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/policy"
)

// The banner endpoint gives the consent SDK what it shows a visitor: the
// product's purposes in the visitor's language, and what each defaults to
// where the visitor is, decided by the consent policy itself (the decision
// for a subject with no stored choice), so the banner and every later check
// agree.

type bannerPurpose struct {
	ID                      string `json:"id"`
	Name                    string `json:"name"`
	Description             string `json:"description"`
	Essential               bool   `json:"essential"`
	Default                 bool   `json:"default"`
	DefaultReason           string `json:"default_reason"`
	GPCApplies              bool   `json:"gpc_applies"`
	RequiresExplicitConsent bool   `json:"requires_explicit_consent"`
}

type bannerGPC struct {
	Signal   bool `json:"signal"`
	Honoured bool `json:"honoured"`
}

type bannerNotice struct {
	Version string `json:"version"`
	Major   int    `json:"major"`
	URL     string `json:"url"`
}

type bannerParty struct {
	Name    string `json:"name"`
	Contact string `json:"contact"`
}

type bannerBrand struct {
	Accent string `json:"accent"`
}

type bannerResponse struct {
	Product        string          `json:"product"`
	Name           string          `json:"name"`
	Language       string          `json:"language"`
	Region         string          `json:"region"`
	RegionSource   string          `json:"region_source"`
	Regime         string          `json:"regime"`
	Model          string          `json:"model"`
	GPC            bannerGPC       `json:"gpc"`
	Notice         bannerNotice    `json:"notice"`
	Controller     bannerParty     `json:"controller"`
	Brand          bannerBrand     `json:"brand"`
	Purposes       []bannerPurpose `json:"purposes"`
	PolicyRevision string          `json:"policy_revision"`
}

var (
	langTags    = []language.Tag{language.English, language.Russian, language.Uzbek}
	langMatcher = language.NewMatcher(langTags)
	// regionRe is consent's jurisdiction format: ISO 3166-1 alpha-2, or
	// ISO 3166-2.
	regionRe = regexp.MustCompile(`^[A-Z]{2}(-[A-Z0-9]{1,3})?$`)
)

// bannerLanguage picks en, ru or uz: the lang parameter when given (a
// BCP 47 tag; one Steward does not speak falls back to English), else
// Accept-Language, else English.
func bannerLanguage(param, accept string) (string, error) {
	var tags []language.Tag
	if param != "" {
		t, err := language.Parse(param)
		if err != nil || len(param) > 35 {
			return "", apperr.Field("lang", "must be a language tag such as en, ru or uz")
		}
		tags = []language.Tag{t}
	} else if ts, _, err := language.ParseAcceptLanguage(accept); err == nil {
		tags = ts
	}
	if len(tags) == 0 {
		return "en", nil
	}
	_, i, conf := langMatcher.Match(tags...)
	if conf == language.No {
		return "en", nil
	}
	return policy.Languages[i], nil
}

// bannerRegion is where the visitor is: the region parameter (the page
// knows), else the CDN's geo header (STEWARD_GEO_HEADER), else unknown,
// which the policy reads as the "default" regime. A geo header that is
// not a country code (Cloudflare's XX for unknown, T1 for Tor) is unknown.
func (s *server) bannerRegion(c *fiber.Ctx) (region, source string, err error) {
	if r := c.Query("region"); r != "" {
		r = strings.ToUpper(r)
		if !regionRe.MatchString(r) {
			return "", "", apperr.Field("region", "must be an ISO 3166-1 country code (DE) or ISO 3166-2 subdivision (US-CA)")
		}
		return strings.Clone(r), "query", nil
	}
	if s.cfg.GeoHeader != "" {
		r := strings.ToUpper(strings.TrimSpace(c.Get(s.cfg.GeoHeader)))
		if regionRe.MatchString(r) && r != "XX" && r != "T1" {
			return strings.Clone(r), "header", nil
		}
	}
	return "", "none", nil
}

func parseBool(field, raw string) (bool, error) {
	switch strings.ToLower(raw) {
	case "", "0", "false":
		return false, nil
	case "1", "true":
		return true, nil
	}
	return false, apperr.Field(field, "must be 1 or 0")
}

func (s *server) consentBanner(c *fiber.Ctx) error {
	if err := checkQuery(c, "product", "lang", "region", "gpc"); err != nil {
		return err
	}
	eng := s.Consent.Engine()
	product := c.Query("product")
	if product == "" {
		product = eng.ProductOf(string(identity.Visitor))
	}
	prod, ok := eng.Products[product]
	if !ok {
		names := make([]string, 0, len(eng.Products))
		for n := range eng.Products {
			names = append(names, n)
		}
		slices.Sort(names)
		return apperr.Field("product", "unknown product; one of %s", strings.Join(names, ", "))
	}
	product = strings.Clone(product)
	lang, err := bannerLanguage(c.Query("lang"), c.Get(fiber.HeaderAcceptLanguage))
	if err != nil {
		return err
	}
	region, regionSource, err := s.bannerRegion(c)
	if err != nil {
		return err
	}
	gpcParam, err := parseBool("gpc", c.Query("gpc"))
	if err != nil {
		return err
	}
	// The banner is what any anonymous visitor is shown: reading it is
	// reading visitors' consent, which the publishable key may do.
	if err := s.authorize(c, "consent.read", string(identity.Visitor)); err != nil {
		return err
	}
	if err := s.checkOrigin(c, product); err != nil {
		return err
	}
	// Browsers send Sec-GPC themselves; a page cannot set a Sec- header, so
	// the SDK passes navigator.globalPrivacyControl as gpc=1.
	gpc := gpcHeader(c) || gpcParam
	regimeName := eng.RegimeFor(region)
	regime := eng.Jurisdictions.Regimes[regimeName]
	major, _ := policy.NoticeMajor(prod.NoticeVersion)
	resp := bannerResponse{
		Product: product, Name: prod.Name, Language: lang, Region: region, RegionSource: regionSource,
		Regime: regimeName, Model: regime.Model, GPC: bannerGPC{Signal: gpc, Honoured: regime.HonoursGPC},
		Notice:     bannerNotice{Version: prod.NoticeVersion, Major: major, URL: prod.PrivacyNoticeURL},
		Controller: bannerParty{Name: prod.Controller.Name, Contact: prod.Controller.Contact},
		Brand:      bannerBrand{Accent: prod.Brand.Accent}, PolicyRevision: eng.Revision(),
		Purposes: []bannerPurpose{},
	}
	for _, id := range eng.PurposesOf(product) {
		p := eng.Purposes[id]
		d, err := eng.DecideConsent(c.UserContext(), policy.ConsentInput{Purpose: id, Jurisdiction: region, Product: product, Age: -1, GPC: gpc})
		if err != nil {
			return err
		}
		t := p.Text(lang)
		resp.Purposes = append(resp.Purposes, bannerPurpose{
			ID: id, Name: t.Name, Description: t.Description, Essential: p.Essential, Default: d.Allow, DefaultReason: d.Reason,
			GPCApplies: p.GPCApplies, RequiresExplicitConsent: p.RequiresExplicitConsent,
		})
	}
	// Nothing personal in it, but it differs by language, GPC and place; it
	// is cheap (memoized decisions), so it is revalidated on every page
	// rather than risk a stale notice version.
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Vary(fiber.HeaderAcceptLanguage, "Sec-GPC")
	if s.cfg.GeoHeader != "" {
		c.Vary(s.cfg.GeoHeader)
	}
	return c.JSON(resp)
}
