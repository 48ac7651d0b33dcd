// Package retention turns the retention schedule in the policy bundle
// (policies/data/retention.json, decided by retention.rego) and the data
// map into sweep rules: for each dataset with a fixed retention period,
// which field ages its records, how old a record may get, and what happens
// when it is too old (delete, or anonymize with the rule's masks), on what
// basis. A promise in the privacy policy ("generated content goes after 30
// days") becomes a rule here, and a rule that cannot be enforced — a fixed
// period on a dataset with no timestamp to age it by — is an error when
// the bundle is loaded, not a silent gap.
package retention

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/policy"
)

// Actions when a record is past its period.
const (
	ActionDelete    = "delete"
	ActionAnonymize = "anonymize"
)

// Rule is the sweep rule of one dataset.
type Rule struct {
	System  string `json:"system"`
	Dataset string `json:"dataset"`
	// Connector is the system's connector kind (postgres, objectstore,
	// stripe, creem, manual): who can carry the rule out.
	Connector string `json:"connector"`
	// Timestamp is the field a record's age is read from.
	Timestamp string `json:"timestamp"`
	// RuleID names the retention rule in the policy bundle.
	RuleID string `json:"rule"`
	// MaxAge is how old a record may get; Period says it as the policy does.
	MaxAge time.Duration `json:"max_age"`
	Days   int           `json:"days"`
	Period string        `json:"period"`
	Action string        `json:"action"`
	Basis  string        `json:"basis"`
	// Mask is the rule's masking table (category prefix → strategy), for
	// anonymize.
	Mask map[string]string `json:"mask,omitempty"`
}

// Cutoff is the moment before which a record is due, at now.
func (r Rule) Cutoff(now time.Time) time.Time { return now.Add(-r.MaxAge) }

// Schedule is every rule of a bundle, and the datasets whose retention is
// not a fixed period (kept until an event: account deletion, withdrawal),
// which a sweep does not touch.
type Schedule struct {
	Rules []Rule `json:"rules"`
	// EventDriven lists "system.dataset" whose rule has no fixed period.
	EventDriven []string `json:"event_driven"`
}

// Rule returns the rule of system.dataset.
func (s Schedule) Rule(system, dataset string) (Rule, bool) {
	i := slices.IndexFunc(s.Rules, func(r Rule) bool { return r.System == system && r.Dataset == dataset })
	if i < 0 {
		return Rule{}, false
	}
	return s.Rules[i], true
}

// FromEngine derives the schedule from a loaded policy engine. Every
// problem is reported at once, each naming its data-map entry.
func FromEngine(e *policy.Engine) (Schedule, error) {
	if e == nil || e.DataMap == nil {
		return Schedule{}, errors.New("retention: no policy engine")
	}
	return Derive(e.DataMap, e.RetentionSchedule().Rules)
}

// Derive builds the schedule from a data map and retention rules.
func Derive(dm *datamap.Map, rules map[string]policy.RetentionRule) (Schedule, error) {
	var s Schedule
	var problems []string
	for _, sid := range slices.Sorted(maps.Keys(dm.Systems)) {
		sys := dm.Systems[sid]
		for _, did := range slices.Sorted(maps.Keys(sys.Datasets)) {
			ds := sys.Datasets[did]
			at := "systems." + sid + ".datasets." + did
			rr, ok := rules[ds.Retention]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s.retention: rule %q is not in the retention schedule", at, ds.Retention))
				continue
			}
			if rr.Days == nil {
				s.EventDriven = append(s.EventDriven, sid+"."+did)
				continue
			}
			switch {
			case *rr.Days <= 0:
				problems = append(problems, fmt.Sprintf("%s: rule %q has a period of %d days; want at least 1", at, ds.Retention, *rr.Days))
				continue
			case rr.Action != ActionDelete && rr.Action != ActionAnonymize:
				problems = append(problems, fmt.Sprintf("%s: rule %q has action %q; want delete or anonymize", at, ds.Retention, rr.Action))
				continue
			case ds.Timestamp == "":
				problems = append(problems, fmt.Sprintf("%s: rule %q keeps records %d days, but the dataset names no timestamp field to age them by: "+
					"name the column that dates a record (timestamp:), or give the dataset a rule without a fixed period (one that ends with the account) "+
					"if its table has no date", at, ds.Retention, *rr.Days))
				continue
			}
			if _, ok := ds.Fields[ds.Timestamp]; !ok {
				problems = append(problems, fmt.Sprintf("%s.timestamp: %q is not a field of the dataset", at, ds.Timestamp))
				continue
			}
			period := ""
			if rr.Period != nil {
				period = *rr.Period
			}
			s.Rules = append(s.Rules, Rule{
				System: sid, Dataset: did, Connector: sys.Connector, Timestamp: ds.Timestamp, RuleID: ds.Retention,
				Days: *rr.Days, MaxAge: time.Duration(*rr.Days) * 24 * time.Hour, Period: period,
				Action: rr.Action, Basis: rr.Basis, Mask: rr.Mask,
			})
		}
	}
	if len(problems) > 0 {
		return Schedule{}, errors.New("retention: " + strings.Join(problems, "\n"))
	}
	return s, nil
}
