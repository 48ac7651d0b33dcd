package exportpkg

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/policy"
)

// Facts is what the report takes from the policy bundle besides the data
// map: the retention rules the datasets name and the categories' names.
type Facts struct {
	Retention  map[string]policy.RetentionRule
	Categories map[string]Category
}

// FactsFromEngine reads Facts from a loaded policy engine: the retention
// schedule it validated, and data.steward.categories (which the engine
// checks the data map against but does not type) from its data document.
func FactsFromEngine(e *policy.Engine) (Facts, error) {
	if e == nil {
		return Facts{}, errors.New("exportpkg: no policy engine")
	}
	rs := e.RetentionSchedule()
	if len(rs.Rules) == 0 {
		return Facts{}, errors.New("exportpkg: the policy engine has no retention schedule")
	}
	raw, ok := e.Data()["categories"].(map[string]any)
	if !ok {
		return Facts{}, errors.New("exportpkg: the policy bundle has no data categories (data/categories.json)")
	}
	cats := make(map[string]Category, len(raw))
	for id, v := range raw {
		m, ok := v.(map[string]any)
		if !ok {
			return Facts{}, fmt.Errorf("exportpkg: data/categories.json: %q is not an object", id)
		}
		name, _ := m["name"].(string)
		desc, _ := m["description"].(string)
		if name == "" {
			return Facts{}, fmt.Errorf("exportpkg: data/categories.json: %q has no name", id)
		}
		cats[id] = Category{Name: name, Description: desc}
	}
	return Facts{Retention: rs.Rules, Categories: cats}, nil
}

// DescribeSystems derives the report's SystemInfo from the data map: every
// dataset include accepts (nil: all), systems and datasets sorted by id,
// fields by name. Purposes come from the map's processing purposes,
// retention from the rule each dataset names, recipients from the systems
// they name. A dataset's Source is derived from its system's kind and its
// fields' categories (see sourceOf); a caller that knows better may change
// it.
func DescribeSystems(m *datamap.Map, f Facts, include func(system, dataset string) bool) ([]SystemInfo, error) {
	if m == nil {
		return nil, errors.New("exportpkg: no data map")
	}
	var out []SystemInfo
	for _, sid := range sortedKeys(m.Systems) {
		sys := m.Systems[sid]
		si := SystemInfo{ID: sid, Name: sys.Name, Kind: sys.Kind, Processor: sys.Processor,
			Regions: slices.Clone(sys.Regions), TransferSafeguard: sys.TransferSafeguard}
		for _, did := range sortedKeys(sys.Datasets) {
			if include != nil && !include(sid, did) {
				continue
			}
			ds := sys.Datasets[did]
			di := DatasetInfo{ID: did, Description: ds.Description, Source: sourceOf(sys, ds)}
			p, ok := m.ProcessingPurposes[ds.Purpose]
			if !ok {
				return nil, fmt.Errorf("exportpkg: %s.%s: unknown purpose %q", sid, did, ds.Purpose)
			}
			di.Purpose = Purpose{ID: ds.Purpose, Name: p.Name, LegalBasis: slices.Clone(p.LegalBasis)}
			rule, ok := f.Retention[ds.Retention]
			if !ok {
				return nil, fmt.Errorf("exportpkg: %s.%s: unknown retention rule %q", sid, did, ds.Retention)
			}
			di.Retention = Retention{Rule: ds.Retention, Action: rule.Action, Basis: rule.Basis}
			if rule.Period != nil {
				di.Retention.Period = *rule.Period
			}
			if rule.Until != nil {
				di.Retention.Until = *rule.Until
			}
			for _, fid := range sortedKeys(ds.Fields) {
				c := ds.Fields[fid].Category
				di.Fields = append(di.Fields, FieldInfo{Name: fid, Category: c})
				di.Categories = append(di.Categories, c)
			}
			slices.Sort(di.Categories)
			di.Categories = slices.Compact(di.Categories)
			for _, rid := range ds.Recipients {
				rs, ok := m.Systems[rid]
				if !ok {
					return nil, fmt.Errorf("exportpkg: %s.%s: unknown recipient %q", sid, did, rid)
				}
				di.Recipients = append(di.Recipients, Recipient{ID: rid, Name: rs.Name, Processor: rs.Processor,
					Regions: slices.Clone(rs.Regions), TransferSafeguard: rs.TransferSafeguard})
			}
			si.Datasets = append(si.Datasets, di)
		}
		if len(si.Datasets) > 0 {
			out = append(out, si)
		}
	}
	return out, nil
}

// observedPrefixes are categories of data recorded about the person rather
// than given by them.
var observedPrefixes = []string{"system.", "user.device.", "user.behavior.", "user.security.", "user.location."}

// sourceOf says where a dataset's data comes from (GDPR Art. 15(1)(g)). The
// data map has no source of its own, so it is derived: a processor's own
// records (payments, platforms, AI providers, mailboxes) come from that
// processor; logs, analytics and monitoring are recorded automatically; in
// the controller's own stores (databases, object stores, caches), a dataset
// whose fields are all observed (see observedPrefixes; ids and operational
// metadata aside) is automatic, and any other was given by the person.
func sourceOf(sys datamap.System, ds datamap.Dataset) Source {
	switch sys.Kind {
	case datamap.KindPostgres, datamap.KindObjectStore, datamap.KindCache:
		for _, f := range ds.Fields {
			c := f.Category
			if c == "system.operations" || c == "user.unique_id" || strings.HasPrefix(c, "user.unique_id.") {
				continue
			}
			observed := false
			for _, p := range observedPrefixes {
				observed = observed || strings.HasPrefix(c, p)
			}
			if !observed {
				return Source{Kind: SourceSubject}
			}
		}
		return Source{Kind: SourceAutomatic}
	case datamap.KindHosting, datamap.KindMonitoring, datamap.KindAnalytics, datamap.KindChatAlerts:
		return Source{Kind: SourceAutomatic}
	}
	return Source{Kind: SourceProcessor, Name: cmp.Or(sys.Processor, sys.Name)}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
