package exportpkg

import (
	"slices"
	"testing"

	"github.com/steward-privacy/steward/datamap"
)

func TestDescribeSystems(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	facts, err := FactsFromEngine(e)
	if err != nil {
		t.Fatal(err)
	}
	if c := facts.Categories["user.contact.email"]; c.Name != "Email address" || c.Description == "" {
		t.Errorf("user.contact.email: %+v", c)
	}
	all, err := DescribeSystems(e.DataMap, facts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(e.DataMap.Systems) {
		t.Errorf("%d systems described, the map has %d", len(all), len(e.DataMap.Systems))
	}
	find := func(system, dataset string) (SystemInfo, DatasetInfo) {
		t.Helper()
		for _, s := range all {
			if s.ID != system {
				continue
			}
			for _, d := range s.Datasets {
				if d.ID == dataset {
					return s, d
				}
			}
		}
		t.Fatalf("%s.%s not described", system, dataset)
		return SystemInfo{}, DatasetInfo{}
	}

	s, users := find("app_db", "users")
	if s.Processor != "Neon" || !slices.Equal(s.Regions, []string{"EU", "US", "SG"}) || s.TransferSafeguard == "" {
		t.Errorf("app_db: %+v", s)
	}
	if users.Purpose.ID != "provide_service" || !slices.Equal(users.Purpose.LegalBasis, []string{datamap.BasisContract}) || users.Purpose.Name == "" {
		t.Errorf("users purpose: %+v", users.Purpose)
	}
	if users.Retention != (Retention{Rule: "account", Until: "account_deletion", Action: "delete", Basis: "contract"}) {
		t.Errorf("users retention: %+v", users.Retention)
	}
	if users.Source.Kind != SourceSubject {
		t.Errorf("users source: %+v", users.Source)
	}
	var recipients []string
	for _, r := range users.Recipients {
		recipients = append(recipients, r.ID+"="+r.Processor)
	}
	if !slices.Equal(recipients, []string{"stripe=Stripe", "creem=Creem", "resend=Resend", "crisp=Crisp"}) {
		t.Errorf("users recipients: %v", recipients)
	}
	if users.Fields[0].Name != "ban_reason" || !slices.IsSortedFunc(users.Fields, func(a, b FieldInfo) int {
		if a.Name < b.Name {
			return -1
		}
		return 1
	}) || !slices.Contains(users.Categories, "user.contact.email") || !slices.IsSorted(users.Categories) {
		t.Errorf("users fields %v, categories %v", users.Fields, users.Categories)
	}

	_, payments := find("app_db", "payments")
	if payments.Retention.Period != "5 years" || payments.Retention.Basis != "legal_obligation" {
		t.Errorf("payments retention: %+v", payments.Retention)
	}
	if _, d := find("stripe", "customers"); d.Source != (Source{Kind: SourceProcessor, Name: "Stripe"}) {
		t.Errorf("stripe customers source: %+v", d.Source)
	}
	if _, d := find("app_db", "risk_flags"); d.Source.Kind != SourceAutomatic {
		t.Errorf("risk flags source: %+v", d.Source)
	}
	if _, d := find("posthog", firstDataset(e.DataMap, "posthog")); d.Source.Kind != SourceAutomatic {
		t.Errorf("posthog source: %+v", d.Source)
	}

	some, err := DescribeSystems(e.DataMap, facts, func(s, d string) bool { return s == "bot_db" && d == "tg_users" })
	if err != nil {
		t.Fatal(err)
	}
	if len(some) != 1 || some[0].ID != "bot_db" || len(some[0].Datasets) != 1 {
		t.Errorf("filtered: %+v", some)
	}

	if _, err := DescribeSystems(e.DataMap, Facts{Categories: facts.Categories}, nil); err == nil {
		t.Error("a dataset naming an unknown retention rule was described")
	}
	if _, err := FactsFromEngine(nil); err == nil {
		t.Error("FactsFromEngine(nil) succeeded")
	}
}

func firstDataset(m *datamap.Map, system string) string {
	return sortedKeys(m.Systems[system].Datasets)[0]
}
