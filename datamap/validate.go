package datamap

import (
	"fmt"
	"maps"
	"net/mail"
	"regexp"
	"slices"
	"strings"

	"github.com/steward-privacy/steward/identity"
)

var (
	// idRe is for purpose, system and dataset ids; 63 bytes so a dataset id
	// is always usable as its default table name.
	idRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	// sqlIdentRe is for Postgres table and column names: letters of either
	// case (a mixed-case name is a quoted identifier, "createdAt"), digits, _
	// and $, at most 63 bytes. Connectors quote every identifier; refusing
	// anything else (spaces, quotes, punctuation) here means a bad edit is
	// caught in review, not discovered in a query.
	sqlIdentRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}$`)
	// fieldRe is for fields of vendor objects and events, which may be paths
	// into a document ("customer_details.email", "properties.$ip").
	fieldRe  = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$-]{0,63}(\.[A-Za-z_$][A-Za-z0-9_$-]{0,63}){0,7}$`)
	regionRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,31}$`)
)

// kindConnectors lists the connectors that can serve each kind of system;
// the first is the automated one.
var kindConnectors = map[string][]string{
	KindPostgres:    {ConnectorPostgres, ConnectorManual},
	KindObjectStore: {ConnectorObjectStore, ConnectorManual},
	KindStripe:      {ConnectorStripe, ConnectorManual},
	KindCreem:       {ConnectorCreem, ConnectorManual},
	KindEmail:       {ConnectorManual},
	KindAnalytics:   {ConnectorManual},
	KindSupport:     {ConnectorManual},
	KindTelegram:    {ConnectorManual},
	KindAIProvider:  {ConnectorManual},
	KindCache:       {ConnectorManual},
	KindMonitoring:  {ConnectorManual},
	KindChatAlerts:  {ConnectorManual},
	KindHosting:     {ConnectorManual},
}

var connectors = []string{ConnectorPostgres, ConnectorObjectStore, ConnectorStripe, ConnectorCreem, ConnectorManual}

var legalBases = []string{BasisContract, BasisLegalObligation, BasisLegitimateInterests, BasisConsent, BasisVitalInterests, BasisPublicTask}

// apiObjects are the API object types the payment connectors understand.
var apiObjects = map[string][]string{
	KindStripe: {"charge", "checkout.session", "customer", "dispute", "invoice", "payment_intent", "payment_method", "refund", "subscription", "tax_id"},
	KindCreem:  {"checkout", "customer", "license", "subscription", "transaction"},
}

// identityRank orders identity types by how often a person names themselves
// by them, which makes ReachPath start where a privacy request usually does.
var identityRank = map[string]int{
	string(identity.Email):    0,
	string(identity.Telegram): 1,
	string(identity.User):     2,
	string(identity.OAuth):    3,
	string(identity.Stripe):   4,
	string(identity.Creem):    5,
	string(identity.Visitor):  6,
}

func identityTypes() []string { return slices.Sorted(maps.Keys(identityRank)) }

func isIdentityType(t string) bool { _, ok := identityRank[t]; return ok }

// Validate checks the map as a whole against refs and returns an *Error
// listing every problem, or nil. Parse calls it; it is exported for maps
// built in Go.
func (m *Map) Validate(refs Refs) error { return errorOf(m.validate(refs)) }

type validator struct {
	m     *Map
	refs  Refs
	probs []Problem
}

// add records a problem about the entry at path, on the line of the entry at
// (a key inside it, usually, so the line points at the offending value).
// ValidID reports whether id is a valid purpose, system or dataset id: the
// one rule for every place that takes a data-map id from outside.
func ValidID(id string) bool { return idRe.MatchString(id) }

func (v *validator) add(path, at, format string, args ...any) {
	file := v.m.file
	if file == "" {
		file = "datamap"
	}
	v.probs = append(v.probs, Problem{File: file, Line: v.m.line(at), Path: path, Message: fmt.Sprintf(format, args...), at: at})
}

// line finds the line of an entry path, or of its nearest recorded parent.
func (m *Map) line(path string) int {
	for p := path; p != ""; p = parent(p) {
		if l, ok := m.lines[p]; ok {
			return l
		}
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func (m *Map) validate(refs Refs) []Problem {
	v := &validator{m: m, refs: refs}
	if m.Version != 1 {
		v.add("version", "version", "must be 1")
	}
	// An empty map is refused rather than treated as "no personal data
	// anywhere": every plan against it would finish having done nothing.
	if len(m.ProcessingPurposes) == 0 {
		v.add("processing_purposes", "processing_purposes", "at least one processing purpose is required")
	}
	if len(m.Systems) == 0 {
		v.add("systems", "systems", "at least one system is required")
	}
	for _, id := range sortedKeys(m.ProcessingPurposes) {
		v.purpose(id, m.ProcessingPurposes[id])
	}
	for _, id := range sortedKeys(m.Systems) {
		v.system(id, m.Systems[id])
	}
	v.reachability()
	return v.probs
}

func (v *validator) purpose(id string, p Purpose) {
	path := join("processing_purposes", id)
	if !idRe.MatchString(id) {
		v.add(path, path, "purpose id %q must match %s", id, idRe)
	}
	if strings.TrimSpace(p.Name) == "" {
		v.add(path, join(path, "name"), "name is required")
	}
	if strings.TrimSpace(p.Citation) == "" {
		v.add(path, join(path, "citation"), "citation is required: quote the privacy-policy sentence this purpose comes from")
	}
	if len(p.LegalBasis) == 0 {
		v.add(join(path, "legal_basis"), join(path, "legal_basis"), "at least one legal basis is required (%s)", strings.Join(legalBases, ", "))
	}
	v.list(join(path, "legal_basis"), p.LegalBasis, func(at, b string) {
		if !slices.Contains(legalBases, b) {
			v.add(join(path, "legal_basis"), at, "unknown legal basis %q%s; expected one of %s", b, suggest(b, legalBases), strings.Join(legalBases, ", "))
		}
	})
}

// list checks a list for duplicates and calls fn on each item with its path.
func (v *validator) list(path string, items []string, fn func(at, item string)) {
	seen := map[string]bool{}
	for i, it := range items {
		at := index(path, i)
		if seen[it] {
			v.add(path, at, "%q is listed twice", it)
			continue
		}
		seen[it] = true
		fn(at, it)
	}
}

func (v *validator) system(id string, s System) {
	path := join("systems", id)
	if !idRe.MatchString(id) {
		v.add(path, path, "system id %q must match %s", id, idRe)
	}
	if strings.TrimSpace(s.Name) == "" {
		v.add(path, join(path, "name"), "name is required")
	}
	kinds := sortedKeys(kindConnectors)
	allowed, kindOK := kindConnectors[s.Kind]
	switch {
	case s.Kind == "":
		v.add(path, join(path, "kind"), "kind is required (%s)", strings.Join(kinds, ", "))
	case !kindOK:
		v.add(path, join(path, "kind"), "unknown kind %q%s; expected one of %s", s.Kind, suggest(s.Kind, kinds), strings.Join(kinds, ", "))
	}
	switch {
	case s.Connector == "":
		v.add(path, join(path, "connector"), "connector is required (%s)", strings.Join(connectors, ", "))
	case !slices.Contains(connectors, s.Connector):
		v.add(path, join(path, "connector"), "unknown connector %q%s; expected one of %s", s.Connector, suggest(s.Connector, connectors), strings.Join(connectors, ", "))
	case kindOK && !slices.Contains(allowed, s.Connector):
		v.add(path, join(path, "connector"), "connector %q cannot serve a %s system; use %s", s.Connector, s.Kind, strings.Join(allowed, " or "))
	}
	if len(s.Products) == 0 {
		v.add(join(path, "products"), join(path, "products"), "at least one product is required")
	}
	products := sortedKeys(v.refs.Products)
	v.list(join(path, "products"), s.Products, func(at, p string) {
		if !v.refs.Products[p] {
			v.add(join(path, "products"), at, "unknown product %q%s", p, suggest(p, products))
		}
	})
	if strings.TrimSpace(s.Processor) == "" {
		v.add(path, join(path, "processor"), `processor is required ("self" when the company runs it)`)
	}
	if len(s.Regions) == 0 {
		v.add(join(path, "regions"), join(path, "regions"), "at least one region is required")
	}
	if s.PrivacyContact != "" {
		if a, err := mail.ParseAddress(s.PrivacyContact); err != nil || a.Address != s.PrivacyContact {
			v.add(join(path, "privacy_contact"), join(path, "privacy_contact"), "privacy_contact must be a bare email address (privacy@vendor.example)")
		}
	}
	v.list(join(path, "regions"), s.Regions, func(at, r string) {
		if !regionRe.MatchString(r) {
			v.add(join(path, "regions"), at, "region %q must match %s", r, regionRe)
		}
	})
	if len(s.Datasets) == 0 {
		v.add(join(path, "datasets"), join(path, "datasets"), "at least one dataset is required; a system holding no personal data does not belong in the data map")
	}
	for _, did := range sortedKeys(s.Datasets) {
		v.dataset(id, s, did, s.Datasets[did])
	}
	v.tables(id, s)
	v.overlaps(id, s)
}

func datasetPath(sid, did string) string { return join(join(join("systems", sid), "datasets"), did) }

func (v *validator) dataset(sid string, s System, did string, ds Dataset) {
	path := datasetPath(sid, did)
	if !idRe.MatchString(did) {
		v.add(path, path, "dataset id %q must match %s", did, idRe)
	}
	if strings.TrimSpace(ds.Description) == "" {
		v.add(path, join(path, "description"), "description is required")
	}

	// Where the records are: exactly the locator the system's kind uses.
	// With an unknown kind there is nothing to check them against, and the
	// kind is already reported.
	_, kindOK := kindConnectors[s.Kind]
	switch {
	case !kindOK:
	case s.Kind == KindPostgres && ds.Table == "":
		v.add(path, join(path, "table"), "postgres datasets need a table")
	case s.Kind == KindPostgres && !sqlIdentRe.MatchString(ds.Table):
		v.add(join(path, "table"), join(path, "table"), "unsafe table name %q: must match %s", ds.Table, sqlIdentRe)
	case s.Kind != KindPostgres && ds.Table != "":
		v.add(join(path, "table"), join(path, "table"), "table applies only to postgres systems, not %s", s.Kind)
	}
	switch {
	case s.Kind == KindObjectStore && ds.Prefix == "":
		v.add(path, join(path, "prefix"), "object_store datasets need a prefix (a key template such as \"uploads/{user_id}/\")")
	case ds.Prefix != "" && kindOK && s.Kind != KindObjectStore && s.Kind != KindCache:
		v.add(join(path, "prefix"), join(path, "prefix"), "prefix applies only to object_store and cache systems, not %s", s.Kind)
	case ds.Prefix != "":
		v.prefix(path, ds)
	}
	objs, needsObject := apiObjects[s.Kind]
	switch {
	case !kindOK:
	case needsObject && ds.Object == "":
		v.add(path, join(path, "object"), "%s datasets need an API object type (%s)", s.Kind, strings.Join(objs, ", "))
	case needsObject && !slices.Contains(objs, ds.Object):
		v.add(join(path, "object"), join(path, "object"), "unknown %s object %q%s; expected one of %s", s.Kind, ds.Object, suggest(ds.Object, objs), strings.Join(objs, ", "))
	case !needsObject && ds.Object != "":
		v.add(join(path, "object"), join(path, "object"), "object applies only to stripe and creem systems, not %s", s.Kind)
	}

	// Fields: every piece of personal data, each with a known category.
	if len(ds.Fields) == 0 {
		v.add(join(path, "fields"), join(path, "fields"), "at least one field is required")
	}
	categories := sortedKeys(v.refs.Categories)
	for _, name := range sortedKeys(ds.Fields) {
		fp := join(join(path, "fields"), name)
		switch {
		case s.Kind == KindPostgres && !sqlIdentRe.MatchString(name):
			v.add(fp, fp, "unsafe column name %q: must match %s", name, sqlIdentRe)
		case s.Kind != KindPostgres && (len(name) > 128 || !fieldRe.MatchString(name)):
			v.add(fp, fp, "field name %q must be a dotted path matching %s", name, fieldRe)
		}
		switch c := ds.Fields[name].Category; {
		case c == "":
			v.add(fp, join(fp, "category"), "category is required")
		case !v.refs.Categories[c]:
			v.add(fp, join(fp, "category"), "unknown category %q%s", c, suggest(c, categories))
		}
	}
	hasField := func(f string) bool { _, ok := ds.Fields[f]; return ok }

	seenID := map[string]bool{}
	for i, id := range ds.Identities {
		ip := index(join(path, "identities"), i)
		switch {
		case id.Field == "":
			v.add(ip, join(ip, "field"), "field is required")
		case !hasField(id.Field):
			v.add(ip, join(ip, "field"), "identity field %q is not in fields; declare it there with its category", id.Field)
		case seenID[id.Field]:
			v.add(ip, join(ip, "field"), "field %q is already an identity of this dataset", id.Field)
		}
		seenID[id.Field] = true
		switch {
		case id.Type == "":
			v.add(ip, join(ip, "type"), "type is required (%s)", strings.Join(identityTypes(), ", "))
		case !isIdentityType(id.Type):
			v.add(ip, join(ip, "type"), "unknown identity type %q%s; expected one of %s", id.Type, suggest(id.Type, identityTypes()), strings.Join(identityTypes(), ", "))
		}
		switch {
		case id.Type == string(identity.OAuth) && id.ProviderField == "":
			v.add(ip, join(ip, "provider_field"), "oauth identities need provider_field: OAuth ids are unique only per provider")
		case id.Type != string(identity.OAuth) && id.ProviderField != "":
			v.add(ip, join(ip, "provider_field"), "provider_field applies only to oauth identities")
		case id.ProviderField != "" && !hasField(id.ProviderField):
			v.add(ip, join(ip, "provider_field"), "provider field %q is not in fields", id.ProviderField)
		}
		switch {
		case id.Match == "":
		case id.Match != MatchExact && id.Match != MatchCaseInsensitive:
			v.add(ip, join(ip, "match"), "unknown match %q%s; expected %s or %s", id.Match, suggest(id.Match, []string{MatchExact, MatchCaseInsensitive}), MatchExact, MatchCaseInsensitive)
		case kindOK && s.Kind != KindPostgres:
			v.add(ip, join(ip, "match"), "match applies only to postgres systems, not %s (their connectors compare as the vendor does)", s.Kind)
		}
	}

	seenRef := map[string]bool{}
	for i, r := range ds.References {
		rp := index(join(path, "references"), i)
		switch {
		case r.Field == "":
			v.add(rp, join(rp, "field"), "field is required")
		case !hasField(r.Field):
			v.add(rp, join(rp, "field"), "reference field %q is not in fields; declare it there with its category", r.Field)
		case seenRef[r.Field]:
			v.add(rp, join(rp, "field"), "field %q already has a reference", r.Field)
		}
		seenRef[r.Field] = true
		switch r.Ownership {
		case "", OwnershipOwns, OwnershipShared, OwnershipRelationship:
		default:
			kinds := []string{OwnershipOwns, OwnershipShared, OwnershipRelationship}
			v.add(rp, join(rp, "ownership"), "unknown ownership %q%s; expected one of %s", r.Ownership, suggest(r.Ownership, kinds), strings.Join(kinds, ", "))
		}
		if msg := v.m.checkRef(r.To); msg != "" {
			v.add(rp, join(rp, "to"), "%s", msg)
		} else if r.To == sid+"."+did+"."+r.Field {
			v.add(rp, join(rp, "to"), "field %q refers to itself", r.Field)
		}
	}

	// What governs the data: purpose, retention and the field that ages it.
	switch {
	case ds.Purpose == "":
		v.add(path, join(path, "purpose"), "purpose is required")
	default:
		if _, ok := v.m.ProcessingPurposes[ds.Purpose]; !ok {
			v.add(join(path, "purpose"), join(path, "purpose"), "unknown processing purpose %q%s", ds.Purpose, suggest(ds.Purpose, sortedKeys(v.m.ProcessingPurposes)))
		}
	}
	timed, known := v.refs.RetentionRules[ds.Retention]
	switch {
	case ds.Retention == "":
		v.add(path, join(path, "retention"), "retention is required")
	case !known:
		v.add(join(path, "retention"), join(path, "retention"), "unknown retention rule %q%s", ds.Retention, suggest(ds.Retention, sortedKeys(v.refs.RetentionRules)))
	}
	switch {
	case ds.Timestamp != "" && !hasField(ds.Timestamp):
		v.add(join(path, "timestamp"), join(path, "timestamp"), "timestamp field %q is not in fields", ds.Timestamp)
	case ds.Timestamp == "" && timed:
		v.add(path, join(path, "retention"), "retention rule %q has a duration, so the dataset needs a timestamp field to age records by", ds.Retention)
	}
	v.list(join(path, "recipients"), ds.Recipients, func(at, r string) {
		switch _, ok := v.m.Systems[r]; {
		case !ok:
			v.add(join(path, "recipients"), at, "unknown system %q%s", r, suggest(r, sortedKeys(v.m.Systems)))
		case r == sid:
			v.add(join(path, "recipients"), at, "a dataset is not sent to its own system %q", r)
		}
	})
}

// checkRef explains what is wrong with a reference target, or returns "".
func (m *Map) checkRef(to string) string {
	if to == "" {
		return `to is required ("system.dataset.field")`
	}
	sid, did, field, ok := splitRef(to)
	if !ok {
		return fmt.Sprintf("reference %q must be system.dataset.field", to)
	}
	s, ok := m.Systems[sid]
	if !ok {
		return fmt.Sprintf("dangling reference %q: no system %q%s", to, sid, suggest(sid, sortedKeys(m.Systems)))
	}
	ds, ok := s.Datasets[did]
	if !ok {
		return fmt.Sprintf("dangling reference %q: system %q has no dataset %q%s", to, sid, did, suggest(did, sortedKeys(s.Datasets)))
	}
	if _, ok := ds.Fields[field]; !ok {
		for _, id := range ds.Identities {
			if id.Field == field {
				return ""
			}
		}
		return fmt.Sprintf("dangling reference %q: dataset %s.%s has no field %q%s", to, sid, did, field, suggest(field, sortedKeys(ds.Fields)))
	}
	return ""
}

// splitRef splits "system.dataset.field"; the field may itself be dotted.
func splitRef(to string) (sid, did, field string, ok bool) {
	parts := strings.SplitN(to, ".", 3)
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

// tables refuses two datasets on one table: one of them is a copy-paste
// slip, and a plan would act on the same rows twice under different rules.
func (v *validator) tables(sid string, s System) {
	if s.Kind != KindPostgres {
		return
	}
	first := map[string]string{}
	for _, did := range sortedKeys(s.Datasets) {
		t := s.Datasets[did].Table
		if t == "" {
			continue
		}
		if other, dup := first[t]; dup {
			p := datasetPath(sid, did)
			v.add(join(p, "table"), join(p, "table"), "table %q is also dataset %q", t, other)
			continue
		}
		first[t] = did
	}
}

// placeholder is one {name} in a key template.
type placeholder struct {
	name  string
	start int  // index of '{'
	next  byte // the byte after '}', 0 at the end
}

// parsePrefix splits a key template into its placeholders.
func parsePrefix(prefix string) ([]placeholder, string) {
	var out []placeholder
	for i := 0; i < len(prefix); i++ {
		switch prefix[i] {
		case '}':
			return nil, "has a '}' without a '{'"
		case '{':
			end := strings.IndexByte(prefix[i:], '}')
			if end < 0 {
				return nil, "has a '{' without a '}'"
			}
			name := prefix[i+1 : i+end]
			if strings.ContainsRune(name, '{') {
				return nil, "has a '{' inside a placeholder"
			}
			p := placeholder{name: name, start: i}
			if i+end+1 < len(prefix) {
				p.next = prefix[i+end+1]
			}
			out = append(out, p)
			i += end
		}
	}
	return out, ""
}

// placeholderIdentity resolves a placeholder: a field of the dataset that is
// an identity or a reference (its value comes from the referenced dataset),
// or an identity type ("{user_id}" and "{user}" are an account id, "{tg}" a
// Telegram id). It returns the identity type ("" for a reference field).
func placeholderIdentity(ds Dataset, name string) (typ string, ok bool) {
	if _, isField := ds.Fields[name]; isField {
		for _, id := range ds.Identities {
			if id.Field == name {
				return id.Type, true
			}
		}
		for _, r := range ds.References {
			if r.Field == name {
				return "", true
			}
		}
	}
	t := strings.TrimSuffix(name, "_id")
	if isIdentityType(t) {
		return t, true
	}
	return "", false
}

// prefix refuses key templates that could reach beyond one subject's
// objects: an escaping path, a template with no subject in it, a placeholder
// whose value could be the start of another subject's value.
func (v *validator) prefix(path string, ds Dataset) {
	at := join(path, "prefix")
	p := ds.Prefix
	bad := func(why string) { v.add(at, at, "unsafe prefix %q: %s", p, why) }
	switch low := strings.ToLower(p); {
	case len(p) > 512:
		bad("longer than 512 bytes")
		return
	case strings.HasPrefix(p, "/"):
		bad("must not start with '/'")
		return
	case strings.Contains(p, ".."):
		bad("must not contain '..'")
		return
	case strings.Contains(p, `\`):
		bad(`must not contain '\'`)
		return
	case strings.Contains(low, "%"):
		bad("must not contain percent-escapes such as %2f")
		return
	case strings.Contains(p, "//"):
		bad("must not contain an empty segment '//'")
		return
	case strings.ContainsAny(p, "*?[] \t\n"):
		bad("must not contain spaces or glob characters (* ? [ ])")
		return
	}
	phs, msg := parsePrefix(p)
	if msg != "" {
		bad(msg)
		return
	}
	if len(phs) == 0 {
		bad("has no placeholder, so it would address every subject's objects")
		return
	}
	for _, ph := range phs {
		if _, ok := placeholderIdentity(ds, ph.name); !ok {
			bad(fmt.Sprintf("placeholder {%s} is neither an identity type (%s, or type_id such as user_id) nor an identity or reference field of this dataset", ph.name, strings.Join(identityTypes(), ", ")))
			continue
		}
		if ph.next != '/' && ph.next != ':' {
			bad(fmt.Sprintf("placeholder {%s} must be followed by '/' (or ':' in cache keys); otherwise subject 12's prefix also matches subject 123's keys", ph.name))
		}
	}
}

// overlaps refuses two key templates in one system where one subject's key
// could fall inside another dataset's keys: "generated/{user_id}/" and
// "generated/visitors/{visitor}/" overlap for the account id "visitors", and
// "data/{user_id}/" and "data/{tg}/" share one key space between two kinds of
// id. Each dataset is reported once, so a large map costs O(n log n).
func (v *validator) overlaps(sid string, s System) {
	type tmpl struct {
		did, head, first string
	}
	var ts []tmpl
	for _, did := range sortedKeys(s.Datasets) {
		ds := s.Datasets[did]
		phs, msg := parsePrefix(ds.Prefix)
		if ds.Prefix == "" || msg != "" || len(phs) == 0 {
			continue
		}
		typ, ok := placeholderIdentity(ds, phs[0].name)
		if !ok {
			continue
		}
		if typ == "" {
			typ = "field " + phs[0].name
		}
		ts = append(ts, tmpl{did, ds.Prefix[:phs[0].start], typ})
	}
	slices.SortFunc(ts, func(a, b tmpl) int {
		if c := strings.Compare(a.head, b.head); c != 0 {
			return c
		}
		return strings.Compare(a.did, b.did)
	})
	// next[i] is the first template after i with a different head.
	next := make([]int, len(ts))
	for i := len(ts) - 1; i >= 0; i-- {
		switch {
		case i == len(ts)-1:
			next[i] = len(ts)
		case ts[i+1].head != ts[i].head:
			next[i] = i + 1
		default:
			next[i] = next[i+1]
		}
	}
	group := 0 // index of the first template with the current head
	for i, a := range ts {
		if i > 0 && ts[i-1].head != a.head {
			group = i
		}
		pa := join(datasetPath(sid, a.did), "prefix")
		if b := ts[group]; b.first != a.first {
			v.add(pa, pa, "prefix %q keys by %s but %s (%q) keys the same place by %s; one subject's id could address the other's objects", s.Datasets[a.did].Prefix, a.first, b.did, s.Datasets[b.did].Prefix, b.first)
		}
		// Heads that start with a.head sort right after it, so the next
		// distinct head is the only one to check for a strict overlap.
		if j := next[i]; j < len(ts) && strings.HasPrefix(ts[j].head, a.head) {
			b := ts[j]
			v.add(pa, pa, "prefix %q overlaps dataset %s (%q): a placeholder value of %q would address that dataset's objects", s.Datasets[a.did].Prefix, b.did, s.Datasets[b.did].Prefix, strings.TrimRight(b.head[len(a.head):], "/:"))
		}
	}
}

// reachability refuses datasets no subject can reach: their data could never
// be exported or erased, which breaks every promise about it.
func (v *validator) reachability() {
	reached := v.m.graph().reach()
	for _, sid := range sortedKeys(v.m.Systems) {
		for _, did := range sortedKeys(v.m.Systems[sid].Datasets) {
			if _, ok := reached[sid+"."+did]; !ok {
				p := datasetPath(sid, did)
				v.add(p, p, "not reachable from any identity: give it an identity field, an identity placeholder in its prefix, or a reference to a reachable dataset; otherwise its data could never be exported or erased")
			}
		}
	}
}

// graph is datasets ("system.dataset") linked by references, with the
// datasets an identity reaches directly as roots.
type graph struct {
	roots []root
	edges map[string][]edge
}

type root struct {
	node, label string
	rank        int
}

type edge struct{ to, label string }

// hop is how BFS first reached a node: from the previous node ("" for a root)
// along label.
type hop struct{ from, label string }

// reached maps every node BFS reached to how it got there.
type reached map[string]hop

func (m *Map) graph() graph { return m.graphFrom(nil) }

// graphFrom builds the reference graph whose roots are the datasets holding
// an identity of one of the known types (every type when known is nil).
func (m *Map) graphFrom(known map[string]bool) graph {
	g := graph{edges: map[string][]edge{}}
	for _, sid := range sortedKeys(m.Systems) {
		s := m.Systems[sid]
		for _, did := range sortedKeys(s.Datasets) {
			ds := s.Datasets[did]
			node := sid + "." + did
			best := root{rank: -1}
			consider := func(label, typ string) {
				r, ok := identityRank[typ]
				switch {
				case known != nil && (!ok || !known[typ]):
					return
				case !ok:
					// An unknown type is reported elsewhere; still a root, so
					// one typo is one problem, not one per dataset behind it.
					r = len(identityRank)
				}
				if best.rank < 0 || r < best.rank || r == best.rank && label < best.label {
					best = root{node: node, label: label, rank: r}
				}
			}
			for _, id := range ds.Identities {
				if id.Field != "" {
					consider(node+"."+id.Field, id.Type)
				}
			}
			if phs, msg := parsePrefix(ds.Prefix); msg == "" {
				for _, ph := range phs {
					if typ, ok := placeholderIdentity(ds, ph.name); ok && typ != "" {
						consider(node+".{"+ph.name+"}", typ)
					}
				}
			}
			if best.rank >= 0 {
				g.roots = append(g.roots, best)
			}
			for _, r := range ds.References {
				tsid, tdid, _, ok := splitRef(r.To)
				if !ok || r.Field == "" {
					continue
				}
				if _, ok := m.Systems[tsid].Datasets[tdid]; !ok {
					continue
				}
				from := tsid + "." + tdid
				g.edges[from] = append(g.edges[from], edge{to: node, label: r.To + " -> " + node + "." + r.Field})
			}
		}
	}
	slices.SortFunc(g.roots, func(a, b root) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return strings.Compare(a.label, b.label)
	})
	for _, es := range g.edges {
		slices.SortFunc(es, func(a, b edge) int { return strings.Compare(a.label, b.label) })
	}
	return g
}

// reach runs a breadth-first search from every root at once, so each node is
// reached by a shortest path, ties going to the better-ranked root.
func (g graph) reach() reached {
	via := reached{}
	var queue []string
	for _, r := range g.roots {
		if _, seen := via[r.node]; !seen {
			via[r.node] = hop{label: r.label}
			queue = append(queue, r.node)
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, e := range g.edges[n] {
			if _, seen := via[e.to]; !seen {
				via[e.to] = hop{from: n, label: e.label}
				queue = append(queue, e.to)
			}
		}
	}
	return via
}

// suggest returns ` (did you mean "x"?)` for the closest candidate within two
// edits, or "".
func suggest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := distance(s, c, bestD); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD >= len(s) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the optimal-string-alignment edit distance (a swap of two
// neighbours is one edit, the commonest typo), giving up at limit.
func distance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	if len(a) > 256 || len(b) > 256 {
		return limit
	}
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], limit)
}
