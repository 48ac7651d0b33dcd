package creem_test

import (
	"fmt"
	"hash/crc32"
	"sync/atomic"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/creem"
)

// TestConformance runs the connector suite against the fake, each subject
// a new customer among others who have subscriptions and transactions too.
// The page size is small so that every listing spans several pages.
func TestConformance(t *testing.T) {
	e := newEnv(t, func(c *creem.Config) { c.PageSize = 2 })
	for i := range 12 {
		seedPerson(e.fake, fmt.Sprintf("other%d@example.com", i), fmt.Sprintf("Other %d", i), i%3, 1+i%4)
	}
	var faults connectortest.Injector
	creem.SetInject(e.c, faults.Next)
	var n atomic.Int64
	connectortest.Run(t, connectortest.Fixture{
		Connector: e.c,
		Inject:    faults.Inject,
		Seed: func(t testing.TB) connectortest.Subject {
			k := n.Add(1)
			p := seedPerson(e.fake, fmt.Sprintf("subject%d@example.com", k), fmt.Sprintf("Subject %d", k), 3, 5)
			return connectortest.Subject{
				Identities: []connectors.Identity{id("email", p.email)},
				Linked:     []connectors.Identity{id("creem", p.customer)},
				Others:     func(testing.TB) int { return int(crc32.ChecksumIEEE([]byte(e.fake.Digest(p.customer)))) },
				Datasets: []connectortest.Dataset{
					// Creem cannot delete: these two come back as manual
					// tasks that must change nothing and repeat.
					{System: "creem", Dataset: "customers", Records: 1, Fields: plan(t, "customers", connectors.ActionDelete)},
					{System: "creem", Dataset: "subscriptions", Records: 3, Fields: plan(t, "subscriptions", connectors.ActionDelete)},
					// Kept as merchant-of-record records: reported as
					// retained, nothing to ask.
					{System: "creem", Dataset: "transactions", Records: 5, Fields: plan(t, "transactions", connectors.ActionRetain)},
				},
			}
		},
	})
}
