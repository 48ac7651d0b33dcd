package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// The notices registry (data/notices.json and notices/<product>/<version>/
// <lang>.md) is every version of every product's privacy notice: its text
// per language, the date it took effect and whether it was a major or a
// minor change. Consent names the version the person was shown; a major
// change asks everyone who consented under an older major again (the web
// notice: "For major changes we will also notify you via email or in-product
// messaging and can provide prior versions on request"; the bot's: "Sending
// a notification through the bot (for significant changes)").

// Notice change kinds.
const (
	ChangeMajor = "major"
	ChangeMinor = "minor"
)

// maxNoticeText bounds one notice text (a privacy policy is tens of KB).
const maxNoticeText = 1 << 20

// Notice is one version of a product's privacy notice.
type Notice struct {
	Product   string `json:"product"`
	Version   string `json:"version"`
	Major     int    `json:"major"`
	Effective string `json:"effective"` // YYYY-MM-DD
	Change    string `json:"change"`    // major or minor, against the version before it
	Summary   string `json:"summary,omitempty"`
	// Languages the text exists in, English first when it exists.
	Languages []string `json:"languages"`
	// Current marks the version products.json names: the one people are
	// shown now.
	Current bool              `json:"current"`
	texts   map[string]string // language -> Markdown
}

// Text returns the notice in lang, else in English, else in its first
// language, and the language it is in. ok is false when the registry holds
// no text for this version (a product the registry does not list).
func (n Notice) Text(lang string) (text, in string, ok bool) {
	for _, l := range append([]string{lang, "en"}, n.Languages...) {
		if t, found := n.texts[l]; found {
			return t, l, true
		}
	}
	return "", "", false
}

// noticeEntry is one version in data/notices.json.
type noticeEntry struct {
	Effective string   `json:"effective"`
	Change    string   `json:"change"`
	Summary   string   `json:"summary"`
	Languages []string `json:"languages"`
}

type noticeProduct struct {
	Versions map[string]noticeEntry `json:"versions"`
}

// CompareVersions orders notice versions numerically ("2.10" > "2.9");
// both must be well-formed (ValidNoticeVersion).
func CompareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(pa), len(pb)); i++ {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// decodeNotices reads data/notices.json and the texts it names, and checks
// them: every version well-formed with a date, its change kind matching its
// number (a major change raises the major number, a minor one does not),
// every language's text present and non-empty, and each product's current
// version (products.json notice_version) registered and the newest. A
// product the file does not list knows only its current version, without
// a text (bundles written before the registry keep loading); a product
// the bundle does not have is skipped.
func (e *Engine) decodeNotices(raw map[string][]byte, texts map[string]string) error {
	const file = "policy: data/notices.json"
	var reg map[string]noticeProduct
	if src, ok := raw["notices"]; ok {
		dec := json.NewDecoder(bytes.NewReader(src))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&reg); err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	used := map[string]bool{}
	e.notices = map[string][]Notice{}
	for _, product := range slices.Sorted(maps.Keys(reg)) {
		prod, ok := e.Products[product]
		if !ok {
			// An overlay that replaces products.json need not replace
			// the registry too: versions of products the bundle does not
			// have are not served, and their texts are not checked.
			for p := range texts {
				if strings.HasPrefix(p, "notices/"+product+"/") {
					used[p] = true
				}
			}
			continue
		}
		versions := slices.SortedFunc(maps.Keys(reg[product].Versions), func(a, b string) int {
			if !ValidNoticeVersion(a) || !ValidNoticeVersion(b) {
				return strings.Compare(a, b)
			}
			return CompareVersions(a, b)
		})
		if len(versions) == 0 {
			return fmt.Errorf("%s: product %q: no versions", file, product)
		}
		var list []Notice
		for i, v := range versions {
			at := fmt.Sprintf("%s: product %q version %q", file, product, v)
			ent := reg[product].Versions[v]
			major, ok := NoticeMajor(v)
			if !ok {
				return fmt.Errorf("%s: a version looks like 2 or 2.1", at)
			}
			eff, err := time.Parse(time.DateOnly, ent.Effective)
			if err != nil {
				return fmt.Errorf("%s: effective must be a date (YYYY-MM-DD)", at)
			}
			if ent.Change != ChangeMajor && ent.Change != ChangeMinor {
				return fmt.Errorf("%s: change must be major or minor", at)
			}
			if i > 0 {
				prev := list[i-1]
				if (ent.Change == ChangeMajor) != (major > prev.Major) {
					return fmt.Errorf("%s: change %q does not match the number after %s (a major change raises the major number, a minor one keeps it)", at, ent.Change, prev.Version)
				}
				if pe, _ := time.Parse(time.DateOnly, prev.Effective); eff.Before(pe) {
					return fmt.Errorf("%s: effective %s is before version %s's %s", at, ent.Effective, prev.Version, prev.Effective)
				}
			}
			if len(ent.Languages) == 0 {
				return fmt.Errorf("%s: languages: at least one", at)
			}
			n := Notice{Product: product, Version: v, Major: major, Effective: ent.Effective, Change: ent.Change,
				Summary: ent.Summary, Current: v == prod.NoticeVersion, texts: map[string]string{}}
			for _, lang := range ent.Languages {
				if !slices.Contains(Languages, lang) {
					return fmt.Errorf("%s: language %q: languages are %s", at, lang, strings.Join(Languages, ", "))
				}
				p := "notices/" + product + "/" + v + "/" + lang + ".md"
				t, ok := texts[p]
				if !ok {
					return fmt.Errorf("%s: %s is missing", at, p)
				}
				if strings.TrimSpace(t) == "" || len(t) > maxNoticeText || !utf8.ValidString(t) {
					return fmt.Errorf("%s: %s must be non-empty UTF-8 text under %d bytes", at, p, maxNoticeText)
				}
				used[p] = true
				n.texts[lang] = t
				n.Languages = append(n.Languages, lang)
			}
			list = append(list, n)
		}
		if !slices.Contains(versions, prod.NoticeVersion) {
			return fmt.Errorf("%s: product %q: its notice_version %q (data/products.json) is not registered", file, product, prod.NoticeVersion)
		}
		if last := versions[len(versions)-1]; last != prod.NoticeVersion {
			return fmt.Errorf("%s: product %q: version %s is newer than its notice_version %s (data/products.json): make the newest version current", file, product, last, prod.NoticeVersion)
		}
		e.notices[product] = list
	}
	for _, p := range slices.Sorted(maps.Keys(texts)) {
		if !used[p] {
			return fmt.Errorf("%s: %s is not a registered version's text", file, p)
		}
	}
	for name, prod := range e.Products {
		if _, ok := e.notices[name]; !ok {
			major, _ := NoticeMajor(prod.NoticeVersion)
			e.notices[name] = []Notice{{Product: name, Version: prod.NoticeVersion, Major: major, Change: ChangeMajor, Current: true}}
		}
	}
	return nil
}

// Notices lists a product's notice versions, oldest first; nil for an
// unknown product.
func (e *Engine) Notices(product string) []Notice { return slices.Clone(e.notices[product]) }

// Notice returns one version of a product's notice.
func (e *Engine) Notice(product, version string) (Notice, bool) {
	for _, n := range e.notices[product] {
		if n.Version == version {
			return n, true
		}
	}
	return Notice{}, false
}

// KnownNotice reports whether version is a registered version of product's
// notice: the only versions a consent may name.
func (e *Engine) KnownNotice(product, version string) bool {
	_, ok := e.Notice(product, version)
	return ok
}
