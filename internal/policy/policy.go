// Package policy loads Steward's OPA bundle (policies/), validates its data,
// prepares every query once, and answers typed, explainable decisions
// in-process with OPA's v1 Go packages. Decisions are memoized per distinct
// input for the loaded revision: a policy is a pure function of its input and
// the bundle, so the memo can never be stale while the revision stands.
package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/util"
	"go.yaml.in/yaml/v3"

	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/cowmap"
)

// Purpose is one processing purpose from data/purposes.json.
type Purpose struct {
	Name                    string   `json:"name"`
	Description             string   `json:"description"`
	DataUse                 string   `json:"data_use"`
	DPV                     string   `json:"dpv"`
	LegalBasis              string   `json:"legal_basis"`
	Essential               bool     `json:"essential"`
	GPCApplies              bool     `json:"gpc_applies"`
	MinorRestricted         bool     `json:"minor_restricted"`
	RequiresExplicitConsent bool     `json:"requires_explicit_consent"`
	Products                []string `json:"products"`
	// Translations give the name and description in other languages (ru,
	// uz); English is Name and Description. People see these on the
	// privacy center and in the consent banner.
	Translations map[string]Text `json:"translations,omitempty"`
}

// Text is a name and description in one language.
type Text struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// Text returns the purpose's name and description in lang, falling back to
// English where the bundle has no translation.
func (p Purpose) Text(lang string) Text {
	if t, ok := p.Translations[lang]; ok && t.Name != "" {
		if t.Description == "" {
			t.Description = p.Description
		}
		return t
	}
	return Text{Name: p.Name, Description: p.Description}
}

// Languages are the languages people are answered in (pages, emails, bot
// messages, export packages).
var Languages = []string{"en", "ru", "uz"}

// Product is one front-end product (web, bot) from data/products.json.
type Product struct {
	Name          string `json:"name"`
	Description   string `json:"description"`
	MinimumAge    int    `json:"minimum_age"`
	NoticeVersion string `json:"notice_version"`
	Controller    struct {
		Name    string `json:"name"`
		Contact string `json:"contact"`
	} `json:"controller"`
	// Default marks the product a subject belongs to when nothing else
	// says (exactly one product has it, or the bundle has one product).
	Default bool `json:"default,omitempty"`
	// Identities are the identity kinds (e.g. "tg") whose subjects belong
	// to this product when a call does not name one.
	Identities []string `json:"identities,omitempty"`
	// PrivacyNoticeURL is the product's privacy notice, linked from the
	// privacy center and the consent banner.
	PrivacyNoticeURL string `json:"privacy_notice_url,omitempty"`
	// Brand is how the privacy center looks for this product.
	Brand Brand `json:"brand,omitzero"`
	// Origins are the web origins (scheme://host[:port]) whose browsers may
	// call the consent API with a publishable key (CORS). Deployments add
	// to them with STEWARD_CORS_ORIGINS.
	Origins []string `json:"origins,omitempty"`
}

// Brand is a product's look on Steward's pages. No external assets: the
// logo, when given, is a data: URL (image/svg+xml or image/png).
type Brand struct {
	// Accent is the colour of buttons and links, #rrggbb; it must keep a
	// contrast of 4.5:1 against white (checked at load, WCAG 2.1 AA).
	Accent string `json:"accent,omitempty"`
	Logo   string `json:"logo,omitempty"`
}

// Role is an API caller role from data/roles.json.
type Role struct {
	Description string   `json:"description"`
	VisitorOnly bool     `json:"visitor_only"`
	Permissions []string `json:"permissions"`
}

// Regime is a legal regime from data/jurisdictions.json.
type Regime struct {
	Name       string `json:"name"`
	Model      string `json:"model"`
	HonoursGPC bool   `json:"honours_gpc"`
}

// Jurisdictions maps places to regimes.
type Jurisdictions struct {
	Regimes      map[string]Regime `json:"regimes"`
	Countries    map[string]string `json:"countries"`
	Subdivisions map[string]string `json:"subdivisions"`
}

// Engine is a loaded, compiled bundle. It is immutable once loaded; a new
// bundle means a new Engine (and so a fresh memo).
type Engine struct {
	revision      string
	data          map[string]any
	Purposes      map[string]Purpose
	Products      map[string]Product
	Roles         map[string]Role
	Jurisdictions Jurisdictions
	DataMap       *datamap.Map
	mapRefs       datamap.Refs
	notices       map[string][]Notice // product -> versions, oldest first (notices.go)
	maxMinAge     int

	consentQ rego.PreparedEvalQuery
	authzQ   rego.PreparedEvalQuery
	compiler *ast.Compiler
	store    storage.Store

	decisions *decisionQueries // retention, dsar, deadlines (decisions.go)

	consentMemo sync.Map // ConsentInput -> Decision
	authzMemo   cowmap.Map[authzKey, AuthzDecision]
	memoSize    atomic.Int64
}

// memoLimit bounds the memo so hostile input (many distinct jurisdictions or
// notice versions) cannot grow memory without bound; past it, decisions are
// still made, just not remembered.
const memoLimit = 200_000

// authzMemoLimit bounds the authorization memo, which is copied whole when
// it grows (cowmap): roles × actions × subject kinds are a few hundred.
const authzMemoLimit = 1024

// authzKey is one authorization question; kinds are sorted, unique and
// joined with commas.
type authzKey struct{ role, action, kinds string }

// Load reads a bundle: *.rego modules (tests excluded) and data/*.json files,
// each file's content placed at data.steward.<file name>.
func Load(ctx context.Context, fsys fs.FS) (*Engine, error) {
	b, err := read(fsys, false)
	if err != nil {
		return nil, err
	}
	e := &Engine{revision: b.revision, data: b.data}
	if err := e.decodeData(b.raw); err != nil {
		return nil, err
	}
	if err := e.decodeNotices(b.raw, b.notices); err != nil {
		return nil, err
	}
	compiler := ast.NewCompiler()
	if compiler.Compile(b.modules); compiler.Failed() {
		return nil, fmt.Errorf("policy: compile: %w", compiler.Errors)
	}
	// AST values on read: otherwise every evaluation converts the data
	// document from Go values again, which dominated the cost of a decision.
	store := inmem.NewFromObjectWithOpts(map[string]any{"steward": b.data}, inmem.OptReturnASTValuesOnRead(true))
	e.compiler, e.store = compiler, store
	prep := func(q string) (rego.PreparedEvalQuery, error) {
		pq, err := rego.New(rego.Query(q), rego.Compiler(compiler), rego.Store(store), rego.StoreReadAST(true)).PrepareForEval(ctx)
		if err != nil {
			return pq, fmt.Errorf("policy: prepare %s: %w", q, err)
		}
		return pq, nil
	}
	if e.consentQ, err = prep("data.steward.consent.decision"); err != nil {
		return nil, err
	}
	if e.authzQ, err = prep("data.steward.authz.decision"); err != nil {
		return nil, err
	}
	if err := e.prepareDecisions(ctx, compiler, store); err != nil {
		return nil, err
	}
	// Smoke-evaluate both queries once so a bundle that compiles but cannot
	// answer (a rule renamed, a data file missing) fails at load, not on the
	// first request.
	if _, err := e.evalConsent(ctx, ConsentInput{Purpose: "essential", Product: e.DefaultProduct(), Age: -1}); err != nil {
		return nil, fmt.Errorf("policy: consent smoke test: %w", err)
	}
	if _, err := e.evalAuthz(ctx, "admin", "consent.read", nil); err != nil {
		return nil, fmt.Errorf("policy: authz smoke test: %w", err)
	}
	// Last: the data map references the retention rules and categories
	// validated above.
	if err := e.loadDataMap(b); err != nil {
		return nil, err
	}
	return e, nil
}

type bundle struct {
	modules  map[string]*ast.Module
	data     map[string]any
	raw      map[string][]byte // JSON form of every data file, by name
	yaml     map[string]source // original YAML files, by name (for line numbers)
	notices  map[string]string // notices/<product>/<version>/<lang>.md texts, by path
	revision string
}

type source struct {
	path string
	src  []byte
}

func read(fsys fs.FS, withTests bool) (*bundle, error) {
	b := &bundle{modules: map[string]*ast.Module{}, data: map[string]any{}, raw: map[string][]byte{}, yaml: map[string]source{}, notices: map[string]string{}}
	h := sha256.New()
	var files []string
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if strings.HasSuffix(p, ".rego") || (strings.HasPrefix(p, "data/") && (strings.HasSuffix(p, ".json") || strings.HasSuffix(p, ".yaml"))) ||
			(strings.HasPrefix(p, "notices/") && strings.HasSuffix(p, ".md")) {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy: read bundle: %w", err)
	}
	sort.Strings(files)
	for _, p := range files {
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("policy: read %s: %w", p, err)
		}
		// The revision covers tests too: a changed test is a changed bundle.
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(src))
		h.Write(src)
		switch {
		case strings.HasPrefix(p, "notices/"):
			// Notice texts: validated against data/notices.json at load.
			b.notices[p] = string(src)
		case strings.HasSuffix(p, "_test.rego") && !withTests:
		case strings.HasSuffix(p, ".rego"):
			m, err := ast.ParseModuleWithOpts(p, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				return nil, fmt.Errorf("policy: parse %s: %w", p, err)
			}
			b.modules[p] = m
		default:
			name := strings.TrimSuffix(strings.TrimSuffix(path.Base(p), ".json"), ".yaml")
			if !identRe.MatchString(name) {
				return nil, fmt.Errorf("policy: data file %s: name must be a Rego identifier", p)
			}
			if _, dup := b.raw[name]; dup {
				return nil, fmt.Errorf("policy: data file %s: another file already defines data.steward.%s", p, name)
			}
			if strings.HasSuffix(p, ".yaml") {
				// YAML for what people review by hand (the data map); the
				// policy sees the same document as JSON.
				b.yaml[name] = source{path: p, src: src}
				if src, err = yamlToJSON(src); err != nil {
					return nil, fmt.Errorf("policy: data file %s: %w", p, err)
				}
			}
			var v any
			if err := util.UnmarshalJSON(src, &v); err != nil {
				return nil, fmt.Errorf("policy: data file %s: %w", p, err)
			}
			b.data[name] = v
			b.raw[name] = src
		}
	}
	if len(b.modules) == 0 {
		return nil, errors.New("policy: bundle has no .rego modules")
	}
	b.revision = hex.EncodeToString(h.Sum(nil))[:16]
	return b, nil
}

// yamlToJSON converts a YAML document to JSON; duplicate keys are an error
// (yaml.v3 refuses them), so a repeated entry can never silently win.
func yamlToJSON(src []byte) ([]byte, error) {
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("yaml to json: %w", err)
	}
	return b, nil
}

// purposeBases are the GDPR Art. 6(1) bases a purpose may name.
var purposeBases = []string{datamap.BasisContract, datamap.BasisLegalObligation, datamap.BasisLegitimateInterests,
	datamap.BasisConsent, datamap.BasisVitalInterests, datamap.BasisPublicTask}

var (
	identRe   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	versionRe = regexp.MustCompile(`^[0-9]{1,6}(\.[0-9]{1,6}){0,2}$`)
)

// decodeData decodes the data files Steward itself relies on into typed
// structs, strictly, and checks their cross references; every error names
// the file and entry so an operator can fix a bad edit.
func (e *Engine) decodeData(raw map[string][]byte) error {
	strict := func(file string, v any) error {
		src, ok := raw[file]
		if !ok {
			return fmt.Errorf("policy: data/%s.json is missing", file)
		}
		dec := json.NewDecoder(bytes.NewReader(src))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("policy: data/%s.json: %w", file, err)
		}
		return nil
	}
	if err := strict("purposes", &e.Purposes); err != nil {
		return err
	}
	if err := strict("products", &e.Products); err != nil {
		return err
	}
	if err := strict("roles", &e.Roles); err != nil {
		return err
	}
	if err := strict("jurisdictions", &e.Jurisdictions); err != nil {
		return err
	}
	if p, ok := e.Purposes["essential"]; !ok || !p.Essential {
		return errors.New("policy: data/purposes.json: an \"essential\" purpose marked essential is required")
	}
	for name, p := range e.Purposes {
		if !identRe.MatchString(name) {
			return fmt.Errorf("policy: data/purposes.json: purpose %q: name must be lowercase letters, digits and _", name)
		}
		if p.DataUse == "" || p.DPV == "" {
			return fmt.Errorf("policy: data/purposes.json: purpose %q: data_use and dpv are required", name)
		}
		// consent.rego reads the basis: "consent" needs a recorded grant
		// everywhere, any other may default to allowed where the law is
		// opt-out; a misspelling would silently be "other".
		if !slices.Contains(purposeBases, p.LegalBasis) {
			return fmt.Errorf("policy: data/purposes.json: purpose %q: legal_basis %q is not one of %s", name, p.LegalBasis, strings.Join(purposeBases, ", "))
		}
		if !p.Essential && len(p.Products) == 0 {
			return fmt.Errorf("policy: data/purposes.json: purpose %q: products: at least one", name)
		}
		for _, pr := range p.Products {
			if _, ok := e.Products[pr]; !ok {
				return fmt.Errorf("policy: data/purposes.json: purpose %q: unknown product %q", name, pr)
			}
		}
		for lang, t := range p.Translations {
			if !slices.Contains(Languages, lang) || lang == "en" {
				return fmt.Errorf("policy: data/purposes.json: purpose %q: translation %q: languages are ru and uz (English is name and description)", name, lang)
			}
			if t.Name == "" {
				return fmt.Errorf("policy: data/purposes.json: purpose %q: translation %q needs a name", name, lang)
			}
		}
	}
	if err := e.checkProductDefaults(); err != nil {
		return err
	}
	for name, p := range e.Products {
		if !versionRe.MatchString(p.NoticeVersion) {
			return fmt.Errorf("policy: data/products.json: product %q: notice_version %q must look like 2 or 2.1", name, p.NoticeVersion)
		}
		if p.MinimumAge < 0 || p.MinimumAge > 21 {
			return fmt.Errorf("policy: data/products.json: product %q: minimum_age must be 0-21", name)
		}
		if err := checkProductPresentation(name, p); err != nil {
			return err
		}
		e.maxMinAge = max(e.maxMinAge, p.MinimumAge)
	}
	if _, ok := e.Jurisdictions.Regimes["default"]; !ok {
		return errors.New("policy: data/jurisdictions.json: a \"default\" regime is required")
	}
	for name, r := range e.Jurisdictions.Regimes {
		if r.Model != "opt_in" && r.Model != "opt_out" {
			return fmt.Errorf("policy: data/jurisdictions.json: regime %q: model must be opt_in or opt_out", name)
		}
	}
	for _, m := range []map[string]string{e.Jurisdictions.Countries, e.Jurisdictions.Subdivisions} {
		for place, regime := range m {
			if _, ok := e.Jurisdictions.Regimes[regime]; !ok {
				return fmt.Errorf("policy: data/jurisdictions.json: %q maps to unknown regime %q", place, regime)
			}
		}
	}
	for name, r := range e.Roles {
		if len(r.Permissions) == 0 {
			return fmt.Errorf("policy: data/roles.json: role %q has no permissions", name)
		}
	}
	return nil
}

// Revision identifies the loaded bundle (a content hash), so every decision
// and record can say which policy made it.
func (e *Engine) Revision() string { return e.revision }

// Data returns the bundle's data document as OPA sees it under data.steward.
func (e *Engine) Data() map[string]any { return e.data }

// NoticeMajor returns the major number of a notice version ("2.1" -> 2).
func NoticeMajor(v string) (int, bool) {
	if !versionRe.MatchString(v) {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c == '.' {
			break
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// ValidNoticeVersion reports whether v is a well-formed notice version.
func ValidNoticeVersion(v string) bool { return versionRe.MatchString(v) }

// RunTests compiles the bundle with its *_test.rego files and runs them,
// writing OPA's report to w. It returns the number of failed tests.
// ErrNoTests is returned when a bundle has no Rego tests: an error for a
// whole bundle, normal for an overlay of data (Source.Overlay).
var ErrNoTests = errors.New("policy test: no tests found")

func RunTests(ctx context.Context, fsys fs.FS, w io.Writer, verbose bool) (passed, failed int, err error) {
	return runTests(ctx, fsys, w, verbose, nil)
}

// FailingTests runs the bundle's tests and names each failing one with its
// file and line.
func FailingTests(ctx context.Context, fsys fs.FS) ([]string, error) {
	var failures []string
	_, _, err := runTests(ctx, fsys, io.Discard, false, &failures)
	return failures, err
}

func runTests(ctx context.Context, fsys fs.FS, w io.Writer, verbose bool, failures *[]string) (passed, failed int, err error) {
	b, err := read(fsys, true)
	if err != nil {
		return 0, 0, err
	}
	store := inmem.NewFromObject(map[string]any{"steward": b.data})
	compiler := ast.NewCompiler().WithEnablePrintStatements(true)
	// OPA's default of 5 s per test is a timing assertion: a data-map-wide
	// test under the race detector on a loaded CI machine can exceed it.
	runner := tester.NewRunner().SetCompiler(compiler).SetStore(store).SetModules(b.modules).CapturePrintOutput(true).SetTimeout(2 * time.Minute)
	txn, err := store.NewTransaction(ctx, storage.TransactionParams{})
	if err != nil {
		return 0, 0, err
	}
	defer store.Abort(ctx, txn)
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return 0, 0, fmt.Errorf("policy test: %w", err)
	}
	results := make(chan *tester.Result)
	done := make(chan error, 1)
	go func() {
		done <- (tester.PrettyReporter{Output: w, Verbose: verbose, FailureLine: true}).Report(results)
	}()
	for r := range ch {
		if r.Pass() {
			passed++
		} else if !r.Skip {
			failed++
			if failures != nil {
				loc := ""
				if r.Location != nil {
					loc = fmt.Sprintf(" (%s:%d)", r.Location.File, r.Location.Row)
				}
				*failures = append(*failures, r.Package+"."+r.Name+loc)
			}
		}
		results <- r
	}
	close(results)
	if err := <-done; err != nil {
		return passed, failed, err
	}
	if passed+failed == 0 {
		return 0, 0, ErrNoTests
	}
	return passed, failed, nil
}

// Eval answers an ad-hoc question: data.steward.<decision>.decision for the
// given input (`steward policy eval`). Not memoized; not for hot paths.
func (e *Engine) Eval(ctx context.Context, decision string, input any) (any, error) {
	if !identRe.MatchString(decision) {
		return nil, fmt.Errorf("policy eval: %q is not a decision name (consent, authz, retention, dsar, deadlines)", decision)
	}
	q := "data.steward." + decision + ".decision"
	rs, err := rego.New(rego.Query(q), rego.Compiler(e.compiler), rego.Store(e.store), rego.StoreReadAST(true), rego.Input(input)).Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy eval %s: %w", decision, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, fmt.Errorf("policy eval: %s has no decision for this input", q)
	}
	return rs[0].Expressions[0].Value, nil
}

// loadDataMap parses and validates data/datamap.yaml against the other data
// files it references (categories, retention rules, products); every problem
// is reported with its file, line and entry.
func (e *Engine) loadDataMap(b *bundle) error {
	src, ok := b.yaml["datamap"]
	if !ok {
		return errors.New("policy: data/datamap.yaml is missing")
	}
	refs := datamap.Refs{Categories: map[string]bool{}, RetentionRules: map[string]bool{}, Products: map[string]bool{}}
	var cats map[string]json.RawMessage
	if err := json.Unmarshal(b.raw["categories"], &cats); err != nil {
		return fmt.Errorf("policy: data/categories.json: %w", err)
	}
	for c := range cats {
		refs.Categories[c] = true
	}
	var ret struct {
		Rules map[string]struct {
			Days *int `json:"days"`
		} `json:"rules"`
	}
	if err := json.Unmarshal(b.raw["retention"], &ret); err != nil {
		return fmt.Errorf("policy: data/retention.json: %w", err)
	}
	for id, r := range ret.Rules {
		refs.RetentionRules[id] = r.Days != nil
	}
	for p := range e.Products {
		refs.Products[p] = true
	}
	m, err := datamap.Parse(src.path, src.src, refs)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	e.DataMap, e.mapRefs = m, refs
	return nil
}

// MapRefs is what a data map may refer to in this bundle: its categories,
// retention rules (with whether each has a fixed period) and products. A
// map drafted or written outside the bundle is validated against it.
func (e *Engine) MapRefs() datamap.Refs { return e.mapRefs }

// checkProductDefaults: exactly one default product (a bundle with one
// product needs no mark), and no identity kind claimed by two products.
func (e *Engine) checkProductDefaults() error {
	if len(e.Products) == 0 {
		return errors.New("policy: data/products.json: at least one product is required")
	}
	var defaults []string
	claimed := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(e.Products)) {
		p := e.Products[name]
		if p.Default {
			defaults = append(defaults, name)
		}
		for _, k := range p.Identities {
			if other, ok := claimed[k]; ok {
				return fmt.Errorf("policy: data/products.json: identity kind %q is claimed by both %q and %q", k, other, name)
			}
			claimed[k] = name
		}
	}
	switch {
	case len(defaults) > 1:
		return fmt.Errorf("policy: data/products.json: products %s are all marked default; mark one", strings.Join(defaults, ", "))
	case len(defaults) == 0 && len(e.Products) > 1:
		return errors.New("policy: data/products.json: mark one product \"default\": true (the product of a subject nothing else places)")
	}
	return nil
}

// DefaultProduct is the product of a subject that no identity kind places.
func (e *Engine) DefaultProduct() string {
	for name, p := range e.Products {
		if p.Default {
			return name
		}
	}
	for name := range e.Products {
		return name // the only one (checked at load)
	}
	return ""
}

// ProductOf is the product a subject known by an identity of kind belongs
// to when a call does not say: the product that claims the kind, else the
// default product.
func (e *Engine) ProductOf(kind string) string {
	for name, p := range e.Products {
		if slices.Contains(p.Identities, kind) {
			return name
		}
	}
	return e.DefaultProduct()
}
