package stripe_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/stripe"
	"github.com/steward-privacy/steward/datamap"
)

func TestNewChecksConfigAndMap(t *testing.T) {
	dm := realMap(t)
	ok := stripe.Config{System: "stripe", APIKey: "sk_test_x", DataMap: staticMap(dm)}
	bad := func(mod func(*stripe.Config)) stripe.Config { c := ok; mod(&c); return c }
	withObject := func(obj string) *datamap.Map {
		return withDataset(t, "coupons", datamap.Dataset{Object: obj, Fields: map[string]datamap.Field{"id": {Category: "system"}}})
	}
	noCustomers := *dm
	noCustomers.Systems = map[string]datamap.System{"stripe": {Kind: "stripe", Datasets: map[string]datamap.Dataset{
		"charges": dm.Systems["stripe"].Datasets["charges"]}}}

	for _, tc := range []struct {
		name string
		cfg  stripe.Config
		want string
	}{
		{"no system", bad(func(c *stripe.Config) { c.System = "" }), "System is required"},
		{"no key", bad(func(c *stripe.Config) { c.APIKey = "" }), "APIKey is required"},
		{"no map", bad(func(c *stripe.Config) { c.DataMap = nil }), "DataMap is required"},
		{"unknown system", bad(func(c *stripe.Config) { c.System = "nope" }), "no such system"},
		{"not stripe", bad(func(c *stripe.Config) { c.System = "app_db" }), `kind "postgres"`},
		{"unsupported object", bad(func(c *stripe.Config) { c.DataMap = staticMap(withObject("coupon")) }), `dataset coupons: object "coupon"`},
		{"no customers", bad(func(c *stripe.Config) { c.DataMap = staticMap(&noCustomers) }), "no dataset of object customer"},
		{"two customer datasets", bad(func(c *stripe.Config) { c.DataMap = staticMap(withObject("customer")) }), "more than one dataset of object customer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := stripe.New(context.Background(), tc.cfg)
			if err == nil {
				c.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}
	c, err := stripe.New(context.Background(), ok)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestUnsupportedAndBadTargets(t *testing.T) {
	c, _ := newConnector(t, "http://127.0.0.1:1", nil)
	ctx := context.Background()
	if caps := c.Capabilities(); !caps.ResolveIdentities || !caps.Access || !caps.Erase || caps.Rectify || caps.Restrict {
		t.Errorf("capabilities %+v", caps)
	}
	if _, err := c.Rectify(ctx, connectors.RectifyParams{}); !errors.Is(err, connectors.ErrUnsupported) {
		t.Errorf("Rectify: %v", err)
	}
	if _, err := c.Restrict(ctx, connectors.RestrictParams{}); !errors.Is(err, connectors.ErrUnsupported) {
		t.Errorf("Restrict: %v", err)
	}
	for _, tc := range []struct {
		name string
		p    connectors.EraseParams
		want string
	}{
		{"other system", connectors.EraseParams{Target: connectors.Target{System: "app_db", Dataset: "users"}, Fields: []connectors.FieldPlan{del("id")}}, "not this connector's"},
		{"unknown dataset", connectors.EraseParams{Target: target("coupons", "k"), Fields: []connectors.FieldPlan{del("id")}}, `no dataset "coupons"`},
		{"unmapped field", connectors.EraseParams{Target: target("customers", "k"), Fields: []connectors.FieldPlan{del("balance")}}, `field "balance"`},
		{"no fields", connectors.EraseParams{Target: target("customers", "k")}, "no fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Erase(ctx, tc.p)
			if retry, _ := connectors.Classify(err); err == nil || retry || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want a permanent error with %q", err, tc.want)
			}
		})
	}
	// The data map changing (a policy reload) is picked up.
	dm := withDataset(t, "coupons", datamap.Dataset{Object: "coupon", Fields: map[string]datamap.Field{"id": {Category: "system"}}})
	cur := realMap(t)
	c2, _ := newConnector(t, "http://127.0.0.1:1", func(cfg *stripe.Config) { cfg.DataMap = func() *datamap.Map { return cur } })
	cur = dm
	if _, err := c2.ResolveIdentities(ctx, nil); err == nil || !strings.Contains(err.Error(), "coupon") {
		t.Errorf("after a reload to a bad map: %v", err)
	}
}
