package policy

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var accentRe = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// checkProductPresentation validates what people see of a product: the
// notice link, the brand and the CORS origins. A bad value refuses the
// bundle at load, not a page at render time.
func checkProductPresentation(name string, p Product) error {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("policy: data/products.json: product %q: %s", name, fmt.Sprintf(format, a...))
	}
	if p.PrivacyNoticeURL != "" {
		u, err := url.Parse(p.PrivacyNoticeURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fail("privacy_notice_url %q must be an http(s) URL", p.PrivacyNoticeURL)
		}
	}
	if a := p.Brand.Accent; a != "" {
		if !accentRe.MatchString(a) {
			return fail("brand.accent %q must be #rrggbb", a)
		}
		if c := Contrast(a, "#ffffff"); c < 4.5 {
			return fail("brand.accent %s has contrast %.2f:1 against white; WCAG 2.1 AA needs 4.5:1 for text on buttons", a, c)
		}
	}
	if l := p.Brand.Logo; l != "" && !strings.HasPrefix(l, "data:image/svg+xml;base64,") && !strings.HasPrefix(l, "data:image/png;base64,") {
		return fail("brand.logo must be a data:image/svg+xml;base64 or data:image/png;base64 URL (pages load nothing from elsewhere)")
	}
	for _, o := range p.Origins {
		if _, err := NormalizeOrigin(o); err != nil {
			return fail("origins: %v", err)
		}
	}
	return nil
}

// NormalizeOrigin checks a web origin (scheme://host[:port], no path) and
// returns it lower-cased, as browsers send it in the Origin header.
func NormalizeOrigin(o string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an origin (scheme://host[:port])", o)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// PurposesOf lists the purposes a product asks about, essential first, then
// by name, so pages and the banner show them in a stable order.
func (e *Engine) PurposesOf(product string) []string {
	var out []string
	for name, p := range e.Purposes {
		if slices.Contains(p.Products, product) {
			out = append(out, name)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		ea, eb := e.Purposes[a].Essential, e.Purposes[b].Essential
		if ea != eb {
			if ea {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return out
}

// Contrast is the WCAG 2.1 contrast ratio of two #rrggbb colours.
func Contrast(a, b string) float64 {
	la, lb := luminance(a), luminance(b)
	if la < lb {
		la, lb = lb, la
	}
	return (la + 0.05) / (lb + 0.05)
}

func luminance(hex string) float64 {
	ch := func(i int) float64 {
		v, _ := strconv.ParseUint(hex[1+2*i:3+2*i], 16, 8)
		c := float64(v) / 255
		if c <= 0.03928 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	return 0.2126*ch(0) + 0.7152*ch(1) + 0.0722*ch(2)
}
