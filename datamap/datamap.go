// Package datamap is the inventory of personal data: systems, datasets,
// fields, data categories, identities and references.
//
// The map is data in policies/data/datamap.yaml, reviewed like code, and the
// basis of every privacy-request plan, every retention sweep and the
// records-of-processing report. A mistake in it does not fail loudly at run
// time: it silently leaves a person's data out of an export, or erases
// someone else's. So it is parsed strictly (unknown keys, duplicate keys and
// wrong types are errors), validated as a whole (every reference resolves,
// every dataset is reachable from an identity, identifiers are safe to put in
// SQL, object-key prefixes cannot escape the subject's own objects), and every
// problem is reported at once with file:line and the entry's path, so a
// reviewer fixes them in one pass.
package datamap

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Map is a parsed data map. Its JSON and YAML form is the file's format, so
// the policies see the same document (as data.steward.datamap) as Go does.
type Map struct {
	Version            int                `json:"version" yaml:"version"`
	ProcessingPurposes map[string]Purpose `json:"processing_purposes" yaml:"processing_purposes"`
	Systems            map[string]System  `json:"systems" yaml:"systems"`

	file  string         // the name problems are reported under
	lines map[string]int // entry path -> line in the file, from Parse
}

// Purpose is why data is processed: one row of the records of processing,
// with the legal basis the privacy policy states for it.
type Purpose struct {
	Name       string   `json:"name" yaml:"name"`
	LegalBasis []string `json:"legal_basis" yaml:"legal_basis"`
	// Citation quotes the privacy-policy sentence the purpose comes from, so a
	// reviewer can check the map against the promise.
	Citation string `json:"citation" yaml:"citation"`
}

// System is a place personal data lives: a database, a bucket, a vendor.
type System struct {
	Name      string   `json:"name" yaml:"name"`
	Kind      string   `json:"kind" yaml:"kind"`
	Connector string   `json:"connector" yaml:"connector"`
	Products  []string `json:"products" yaml:"products"`
	// Processor is who runs the system ("self" when the company does).
	Processor         string   `json:"processor" yaml:"processor"`
	Regions           []string `json:"regions" yaml:"regions"`
	TransferSafeguard string   `json:"transfer_safeguard,omitempty" yaml:"transfer_safeguard,omitempty"`
	// PrivacyContact is the processor's address for data-subject matters:
	// where Steward tells it of a rectification, erasure or restriction it
	// cannot make itself (GDPR Art. 19). Empty: staff tell it.
	PrivacyContact string             `json:"privacy_contact,omitempty" yaml:"privacy_contact,omitempty"`
	Datasets       map[string]Dataset `json:"datasets" yaml:"datasets"`
}

// Dataset is one collection of records in a system: a table, a key prefix, an
// API object type.
type Dataset struct {
	Description string `json:"description" yaml:"description"`
	// Table is the Postgres table; Parse fills in the dataset id when the file
	// leaves it out, so connectors never guess.
	Table string `json:"table,omitempty" yaml:"table,omitempty"`
	// Prefix is the object-key (or cache-key) template, e.g. "uploads/{user_id}/".
	Prefix string `json:"prefix,omitempty" yaml:"prefix,omitempty"`
	// Object is the Stripe or Creem API object type.
	Object     string      `json:"object,omitempty" yaml:"object,omitempty"`
	Identities []Identity  `json:"identities,omitempty" yaml:"identities,omitempty"`
	References []Reference `json:"references,omitempty" yaml:"references,omitempty"`
	// Timestamp is the field that ages a record for retention.
	Timestamp  string           `json:"timestamp,omitempty" yaml:"timestamp,omitempty"`
	Purpose    string           `json:"purpose" yaml:"purpose"`
	Retention  string           `json:"retention" yaml:"retention"`
	Recipients []string         `json:"recipients,omitempty" yaml:"recipients,omitempty"`
	Fields     map[string]Field `json:"fields" yaml:"fields"`
}

// Identity says a field holds an identity of the subject directly.
type Identity struct {
	Field string `json:"field" yaml:"field"`
	Type  string `json:"type" yaml:"type"`
	// ProviderField names the field holding the OAuth provider: OAuth ids are
	// only unique per provider, and matching on the id alone could reach
	// another person's account.
	ProviderField string `json:"provider_field,omitempty" yaml:"provider_field,omitempty"`
	// Match says how a Postgres column is compared with the person's value:
	// MatchExact or MatchCaseInsensitive. Empty is the connector's default:
	// email identities case-insensitively, every other type exactly.
	Match string `json:"match,omitempty" yaml:"match,omitempty"`
}

// Identity comparisons (Identity.Match).
const (
	// MatchExact compares the stored value as it is: the plain index on the
	// column serves it.
	MatchExact = "exact"
	// MatchCaseInsensitive compares lower(column) with the lower-cased
	// value; an index on lower(column) serves it.
	MatchCaseInsensitive = "case_insensitive"
)

// Reference says rows are reached from another dataset's field: this
// dataset's Field equals To ("system.dataset.field"). References are followed
// one way only, from To to Field: following them backwards would reach the
// other party's rows (a referral's referee, an impersonating admin).
//
// Ownership says whether the person who owns the referenced row owns this
// one too (see the Ownership constants); empty is OwnershipOwns for a row
// that references the person's row (orders.customer_id -> customers.id),
// and OwnershipShared for a row the person's row references
// (address.address_id <- customers.address_id), which a connector that
// reads the schema can tell apart.
type Reference struct {
	Field     string `json:"field" yaml:"field"`
	To        string `json:"to" yaml:"to"`
	Ownership string `json:"ownership,omitempty" yaml:"ownership,omitempty"`
}

// Reference ownership (Reference.Ownership): whether a row reached along the
// reference is the person's.
const (
	// OwnershipOwns: the row is the person's. A row referencing the
	// person's row is theirs unless another ownership reference of it
	// leads to a row that is not (two owners); a row the person's row
	// references is theirs only when no other row references it.
	OwnershipOwns = "owns"
	// OwnershipShared: the row is held with others (an address, a lookup
	// row): never disclosed or erased for one person; staff review it.
	OwnershipShared = "shared"
	// OwnershipRelationship: the reference links two parties (a
	// customer's support rep, a referral): the row is the other party's,
	// never this person's.
	OwnershipRelationship = "relationship"
)

// Field is one piece of personal data and its category.
type Field struct {
	Category string `json:"category" yaml:"category"`
}

// Refs is what a map may reference outside itself.
type Refs struct {
	// Categories are the data categories (categories.json).
	Categories map[string]bool
	// RetentionRules are the retention rule ids (retention.json); the value is
	// true when the rule has a duration, which needs a timestamp to age
	// records by.
	RetentionRules map[string]bool
	// Products are the product ids (products.json).
	Products map[string]bool
}

// System kinds.
const (
	KindPostgres    = "postgres"
	KindObjectStore = "object_store"
	KindStripe      = "stripe"
	KindCreem       = "creem"
	KindEmail       = "email"
	KindAnalytics   = "analytics"
	KindSupport     = "support"
	KindTelegram    = "telegram"
	KindAIProvider  = "ai_provider"
	KindCache       = "cache"
	KindMonitoring  = "monitoring"
	KindChatAlerts  = "chat_alerts"
	KindHosting     = "hosting"
)

// Connectors. Manual means Steward creates a task for staff instead of
// calling the system.
const (
	ConnectorPostgres    = "postgres"
	ConnectorObjectStore = "objectstore"
	ConnectorStripe      = "stripe"
	ConnectorCreem       = "creem"
	ConnectorManual      = "manual"
)

// Legal bases (GDPR Art. 6(1)).
const (
	BasisContract            = "contract"
	BasisLegalObligation     = "legal_obligation"
	BasisLegitimateInterests = "legitimate_interests"
	BasisConsent             = "consent"
	BasisVitalInterests      = "vital_interests"
	BasisPublicTask          = "public_task"
)

// MaxSize bounds the file; a data map is a few hundred lines, and the bound
// keeps a hostile or corrupt file from costing unbounded work.
const MaxSize = 4 << 20

// Problem is one thing wrong with a data map.
type Problem struct {
	File    string `json:"file"`
	Line    int    `json:"line,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`

	at string // the entry whose line was used; may be inside Path
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is every problem found in a data map, sorted by line and path.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	s := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		s[i] = p.String()
	}
	return strings.Join(s, "\n")
}

func errorOf(ps []Problem) error {
	if len(ps) == 0 {
		return nil
	}
	slices.SortFunc(ps, func(a, b Problem) int {
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	// The same problem can be found twice (a field both unsafe and
	// referenced); say it once.
	return &Error{Problems: slices.Compact(ps)}
}

// Parse decodes the YAML data map strictly and validates it against refs.
// file is the name used in problems. The error, if any, is an *Error listing
// every problem.
func Parse(file string, src []byte, refs Refs) (*Map, error) {
	if len(src) > MaxSize {
		return nil, errorOf([]Problem{{File: file, Message: fmt.Sprintf("larger than %d bytes", MaxSize)}})
	}
	root, err := parseYAML(src)
	if err != nil {
		line, msg := yamlErrorLine(err)
		return nil, errorOf([]Problem{{File: file, Line: line, Message: msg}})
	}
	d := &decoder{file: file, lines: map[string]int{}, bad: map[string]bool{}}
	m := d.decodeMap(root)
	m.file, m.lines = file, d.lines
	probs := d.probs
	// A value that failed to decode is already reported; validating its zero
	// value would only repeat the problem in other words.
	for _, p := range m.validate(refs) {
		if !d.underBad(p.Path) && !d.underBad(p.at) {
			probs = append(probs, p)
		}
	}
	if err := errorOf(probs); err != nil {
		return nil, err
	}
	return m, nil
}

// parseYAML reads exactly one YAML document. A second document is refused:
// the policy engine reads only the first, and the two must never disagree.
func parseYAML(src []byte) (doc *yaml.Node, err error) {
	// The YAML library is not ours; a panic in it on a malformed file must be
	// a refused file, not a crashed service.
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("yaml: internal error: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var n yaml.Node
	if err := dec.Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty document")
		}
		return nil, err
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, err
	default:
		return nil, fmt.Errorf("yaml: line %d: more than one YAML document; a data map is one document", extra.Line)
	}
	return &n, nil
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func yamlErrorLine(err error) (int, string) {
	msg := err.Error()
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n, m[2]
	}
	return 0, msg
}

// decoder turns yaml.Nodes into a Map by hand rather than through
// yaml.Unmarshal: it must know every key's line, report every problem rather
// than the first, and refuse duplicate keys at any depth.
type decoder struct {
	file  string
	lines map[string]int
	probs []Problem
	bad   map[string]bool // paths whose value failed to decode
}

// add records a value that failed to decode; validation stays quiet about
// that entry, whose zero value would only repeat the problem in other words.
func (d *decoder) add(line int, path, format string, args ...any) {
	d.note(line, path, format, args...)
	d.bad[path] = true
}

// note records a problem with a key (unknown, duplicate, not a string). The
// entry around it still decodes and is still validated: a duplicate's first
// definition is what Steward would use, so its problems must show.
func (d *decoder) note(line int, path, format string, args ...any) {
	d.probs = append(d.probs, Problem{File: d.file, Line: line, Path: path, Message: fmt.Sprintf(format, args...)})
}

// underBad reports whether path is, or is inside, an entry that failed to decode.
func (d *decoder) underBad(path string) bool {
	for p := path; p != ""; p = parent(p) {
		if d.bad[p] {
			return true
		}
	}
	return false
}

// parent strips the last segment of an entry path: "a.b[2]" -> "a.b", "a.b" -> "a".
func parent(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if strings.HasSuffix(p, `"`) {
		// A quoted segment may contain dots; find its opening quote.
		if i := strings.LastIndex(p, `."`); i >= 0 {
			return p[:i]
		}
		if strings.HasPrefix(p, `"`) {
			return ""
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// plainSeg reports whether a key can appear in an entry path unquoted:
// [A-Za-z0-9_$][A-Za-z0-9_$.-]*. (A loop, not a regexp: it runs for every
// entry of the file.)
func plainSeg(k string) bool {
	if k == "" || k[0] == '.' || k[0] == '-' {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// join appends a key to an entry path, quoting keys that are not plain so a
// hostile key cannot forge a path or break a line.
func join(path, key string) string {
	if !plainSeg(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// describe names what a node is, for "must be a string, not a list".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.Tag {
	case "!!null":
		return "empty"
	case "!!int", "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	case "!!str":
		return "a string"
	case "!!timestamp":
		return "a timestamp"
	}
	return "a " + n.Tag + " value"
}

// alias refuses YAML aliases: a reviewed file should say what it means in
// place, and expanding aliases is how YAML files blow up in memory.
func (d *decoder) alias(n *yaml.Node, path string) bool {
	if n.Kind == yaml.AliasNode {
		d.add(n.Line, path, "aliases (*%s) are not supported; write the entry out", n.Value)
		return true
	}
	return false
}

// text checks a string is printable UTF-8: map text ends up in reports,
// terminals and SQL comments, where control characters do harm.
func text(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if r == '\n' || r == '\t' {
			continue
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 || r == 0xfeff {
			return fmt.Errorf("contains control character %U", r)
		}
	}
	return nil
}

type pair struct {
	key  string
	k, v *yaml.Node
}

// pairs returns a mapping's entries, refusing duplicate and non-string keys
// and recording each key's line under its entry path.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	if d.alias(n, path) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		d.add(n.Line, path, "must be a mapping, not %s", describe(n))
		return nil
	}
	seen := map[string]int{}
	var out []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Tag != "!!str" {
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				d.note(k.Line, path, "merge keys (<<) are not supported; write the entry out")
			} else {
				d.note(k.Line, path, "keys must be strings, not %s", describe(k))
			}
			continue
		}
		p := join(path, k.Value)
		if err := text(k.Value); err != nil {
			d.note(k.Line, p, "key %s", err)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.note(k.Line, p, "duplicate key %q (first defined at line %d)", k.Value, first)
			continue
		}
		seen[k.Value] = k.Line
		d.lines[p] = k.Line
		out = append(out, pair{k.Value, k, v})
	}
	return out
}

type key struct {
	name string
	fn   func(path string, v *yaml.Node)
}

// object decodes a mapping with a fixed set of keys; any other key is a
// problem, with a suggestion when it looks like a typo.
func (d *decoder) object(n *yaml.Node, path string, keys ...key) {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.name
	}
	for _, p := range d.pairs(n, path) {
		i := slices.Index(names, p.key)
		if i < 0 {
			d.note(p.k.Line, join(path, p.key), "unknown key %q%s; expected one of %s", p.key, suggest(p.key, names), strings.Join(names, ", "))
			continue
		}
		keys[i].fn(join(path, p.key), p.v)
	}
}

func (d *decoder) seq(n *yaml.Node, path string) []*yaml.Node {
	if d.alias(n, path) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.add(n.Line, path, "must be a list, not %s", describe(n))
		return nil
	}
	for i, item := range n.Content {
		d.lines[index(path, i)] = item.Line
	}
	return n.Content
}

func (d *decoder) str(n *yaml.Node, path string) string {
	if d.alias(n, path) {
		return ""
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		d.add(n.Line, path, "must be a string, not %s", describe(n))
		return ""
	}
	if err := text(n.Value); err != nil {
		d.add(n.Line, path, "%s", err)
		return ""
	}
	return n.Value
}

func (d *decoder) strs(n *yaml.Node, path string) []string {
	items := d.seq(n, path)
	if items == nil {
		return nil
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		if s := d.str(item, index(path, i)); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (d *decoder) integer(n *yaml.Node, path string) int {
	if d.alias(n, path) {
		return 0
	}
	var v int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&v) != nil {
		d.add(n.Line, path, "must be an integer, not %s", describe(n))
		return 0
	}
	return v
}

func (d *decoder) decodeMap(doc *yaml.Node) *Map {
	m := &Map{}
	root := doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		root = doc.Content[0]
	}
	d.object(root, "",
		key{"version", func(p string, v *yaml.Node) { m.Version = d.integer(v, p) }},
		key{"processing_purposes", func(p string, v *yaml.Node) {
			m.ProcessingPurposes = map[string]Purpose{}
			for _, e := range d.pairs(v, p) {
				m.ProcessingPurposes[e.key] = d.purpose(e.v, join(p, e.key))
			}
		}},
		key{"systems", func(p string, v *yaml.Node) {
			m.Systems = map[string]System{}
			for _, e := range d.pairs(v, p) {
				m.Systems[e.key] = d.system(e.v, join(p, e.key))
			}
		}},
	)
	// Fill in the default table so connectors read it from one place.
	for sid, s := range m.Systems {
		if s.Kind != KindPostgres {
			continue
		}
		for did, ds := range s.Datasets {
			if ds.Table == "" && !d.bad[join(join(join(join("systems", sid), "datasets"), did), "table")] {
				ds.Table = did
				s.Datasets[did] = ds
			}
		}
	}
	return m
}

func (d *decoder) purpose(n *yaml.Node, path string) Purpose {
	var p Purpose
	d.object(n, path,
		key{"name", func(k string, v *yaml.Node) { p.Name = d.str(v, k) }},
		key{"legal_basis", func(k string, v *yaml.Node) { p.LegalBasis = d.strs(v, k) }},
		key{"citation", func(k string, v *yaml.Node) { p.Citation = d.str(v, k) }},
	)
	return p
}

func (d *decoder) system(n *yaml.Node, path string) System {
	var s System
	d.object(n, path,
		key{"name", func(k string, v *yaml.Node) { s.Name = d.str(v, k) }},
		key{"kind", func(k string, v *yaml.Node) { s.Kind = d.str(v, k) }},
		key{"connector", func(k string, v *yaml.Node) { s.Connector = d.str(v, k) }},
		key{"products", func(k string, v *yaml.Node) { s.Products = d.strs(v, k) }},
		key{"processor", func(k string, v *yaml.Node) { s.Processor = d.str(v, k) }},
		key{"regions", func(k string, v *yaml.Node) { s.Regions = d.strs(v, k) }},
		key{"transfer_safeguard", func(k string, v *yaml.Node) { s.TransferSafeguard = d.str(v, k) }},
		key{"privacy_contact", func(k string, v *yaml.Node) { s.PrivacyContact = d.str(v, k) }},
		key{"datasets", func(k string, v *yaml.Node) {
			s.Datasets = map[string]Dataset{}
			for _, e := range d.pairs(v, k) {
				s.Datasets[e.key] = d.dataset(e.v, join(k, e.key))
			}
		}},
	)
	return s
}

func (d *decoder) dataset(n *yaml.Node, path string) Dataset {
	var ds Dataset
	d.object(n, path,
		key{"description", func(k string, v *yaml.Node) { ds.Description = d.str(v, k) }},
		key{"table", func(k string, v *yaml.Node) { ds.Table = d.str(v, k) }},
		key{"prefix", func(k string, v *yaml.Node) { ds.Prefix = d.str(v, k) }},
		key{"object", func(k string, v *yaml.Node) { ds.Object = d.str(v, k) }},
		key{"identities", func(k string, v *yaml.Node) {
			for i, item := range d.seq(v, k) {
				var id Identity
				d.object(item, index(k, i),
					key{"field", func(k string, v *yaml.Node) { id.Field = d.str(v, k) }},
					key{"type", func(k string, v *yaml.Node) { id.Type = d.str(v, k) }},
					key{"provider_field", func(k string, v *yaml.Node) { id.ProviderField = d.str(v, k) }},
					key{"match", func(k string, v *yaml.Node) { id.Match = d.str(v, k) }},
				)
				ds.Identities = append(ds.Identities, id)
			}
		}},
		key{"references", func(k string, v *yaml.Node) {
			for i, item := range d.seq(v, k) {
				var r Reference
				d.object(item, index(k, i),
					key{"field", func(k string, v *yaml.Node) { r.Field = d.str(v, k) }},
					key{"to", func(k string, v *yaml.Node) { r.To = d.str(v, k) }},
					key{"ownership", func(k string, v *yaml.Node) { r.Ownership = d.str(v, k) }},
				)
				ds.References = append(ds.References, r)
			}
		}},
		key{"timestamp", func(k string, v *yaml.Node) { ds.Timestamp = d.str(v, k) }},
		key{"purpose", func(k string, v *yaml.Node) { ds.Purpose = d.str(v, k) }},
		key{"retention", func(k string, v *yaml.Node) { ds.Retention = d.str(v, k) }},
		key{"recipients", func(k string, v *yaml.Node) { ds.Recipients = d.strs(v, k) }},
		key{"fields", func(k string, v *yaml.Node) {
			ds.Fields = map[string]Field{}
			for _, e := range d.pairs(v, k) {
				var f Field
				d.object(e.v, join(k, e.key),
					key{"category", func(k string, v *yaml.Node) { f.Category = d.str(v, k) }},
				)
				ds.Fields[e.key] = f
			}
		}},
	)
	return ds
}

// FieldRef is one field of the map, flattened with what governs it.
type FieldRef struct {
	System    string `json:"system"`
	Dataset   string `json:"dataset"`
	Field     string `json:"field"`
	Category  string `json:"category"`
	Retention string `json:"retention"`
	Purpose   string `json:"purpose"`
	// Identity is the identity type the field holds, if it holds one.
	Identity string `json:"identity,omitempty"`
	// Reference is the "system.dataset.field" this field points at, if any.
	Reference string `json:"reference,omitempty"`
}

// Fields returns every field of the map, sorted by system, dataset and field.
func (m *Map) Fields() []FieldRef {
	var out []FieldRef
	for _, sid := range sortedKeys(m.Systems) {
		s := m.Systems[sid]
		for _, did := range sortedKeys(s.Datasets) {
			ds := s.Datasets[did]
			for _, f := range sortedKeys(ds.Fields) {
				r := FieldRef{System: sid, Dataset: did, Field: f, Category: ds.Fields[f].Category, Retention: ds.Retention, Purpose: ds.Purpose}
				for _, id := range ds.Identities {
					if id.Field == f {
						r.Identity = id.Type
						break
					}
				}
				for _, ref := range ds.References {
					if ref.Field == f {
						r.Reference = ref.To
						break
					}
				}
				out = append(out, r)
			}
		}
	}
	return out
}

// ReachPath explains how a subject reaches a dataset: the identity it starts
// from ("app_db.users.email", or "object_store.uploads.{user_id}" for a key
// prefix) followed by each reference hop ("app_db.users.id ->
// app_db.generation_jobs.user_id"). It is the shortest such path; among equally
// short ones it starts from the identity people most often name themselves by
// (email, then Telegram id, account id, OAuth id, Stripe, Creem, visitor id).
func (m *Map) ReachPath(system, dataset string) ([]string, error) {
	s, ok := m.Systems[system]
	if !ok {
		return nil, fmt.Errorf("datamap: unknown system %q", system)
	}
	if _, ok := s.Datasets[dataset]; !ok {
		return nil, fmt.Errorf("datamap: system %q has no dataset %q", system, dataset)
	}
	g := m.graph()
	via := g.reach()
	node := system + "." + dataset
	if _, ok := via[node]; !ok {
		return nil, fmt.Errorf("datamap: %s is not reachable from any identity", node)
	}
	return via.path(node), nil
}

// Category is one data category of the taxonomy (categories.json), in the
// style of fideslang: dotted, most general first ("user.contact.email").
type Category struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

var categoryRe = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,7}$`)

// ParseCategories decodes the category taxonomy strictly: a flat JSON object
// of dotted names to {"name", "description"}, no duplicate names, and every
// category's parent defined too, so reports can roll fields up the tree.
func ParseCategories(file string, src []byte) (map[string]Category, error) {
	var probs []Problem
	add := func(path, format string, args ...any) {
		probs = append(probs, Problem{File: file, Path: path, Message: fmt.Sprintf(format, args...)})
	}
	dec := json.NewDecoder(bytes.NewReader(src))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errorOf([]Problem{{File: file, Message: "must be a JSON object of categories"}})
	}
	out := map[string]Category{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, errorOf(append(probs, Problem{File: file, Message: err.Error()}))
		}
		name, _ := t.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, errorOf(append(probs, Problem{File: file, Path: join("", name), Message: err.Error()}))
		}
		path := join("", name)
		if _, dup := out[name]; dup {
			// encoding/json would keep the last silently.
			add(path, "duplicate category %q", name)
			continue
		}
		var c Category
		strict := json.NewDecoder(bytes.NewReader(raw))
		strict.DisallowUnknownFields()
		if err := strict.Decode(&c); err != nil {
			add(path, "%v", err)
			continue
		}
		if !categoryRe.MatchString(name) {
			add(path, "category name %q must match %s", name, categoryRe)
		}
		if strings.TrimSpace(c.Name) == "" || strings.TrimSpace(c.Description) == "" {
			add(path, "name and description are required")
		}
		out[name] = c
	}
	if _, err := dec.Token(); err != nil {
		add("", "%v", err)
	}
	if dec.More() {
		add("", "trailing data after the object")
	}
	for _, name := range sortedKeys(out) {
		if i := strings.LastIndexByte(name, '.'); i > 0 {
			if _, ok := out[name[:i]]; !ok {
				add(join("", name), "parent category %q is not defined", name[:i])
			}
		}
	}
	if err := errorOf(probs); err != nil {
		return nil, err
	}
	return out, nil
}
