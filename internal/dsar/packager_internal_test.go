package dsar

import (
	"reflect"
	"testing"

	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/exportpkg"
	"github.com/steward-privacy/steward/internal/policy"
)

func product(name, contact string) policy.Product {
	var p policy.Product
	p.Name = name
	p.Controller.Name, p.Controller.Contact = name+" Ltd", contact
	return p
}

func TestControllersOf(t *testing.T) {
	t.Parallel()
	shop, studio := product("Shop", "privacy@shop.example"), product("Studio", "dpo@studio.example")
	sameAsShop := shop
	sameAsShop.Name = "Shop app"
	e := &policy.Engine{
		Products: map[string]policy.Product{"shop": shop, "studio": studio, "shop_app": sameAsShop},
		DataMap: &datamap.Map{Systems: map[string]datamap.System{
			"shop_db":   {Products: []string{"shop"}},
			"studio_db": {Products: []string{"studio"}},
			"app_db":    {Products: []string{"shop_app"}},
			"shared":    {Products: []string{"shop", "studio"}},
			"nowhere":   {},
		}},
	}
	c := func(p policy.Product) exportpkg.Controller {
		return exportpkg.Controller{Name: p.Controller.Name, Contact: p.Controller.Contact}
	}
	for _, tc := range []struct {
		name            string
		found, searched []string
		want            []exportpkg.Controller
	}{
		{"found in one product's system: its controller", []string{"studio_db"}, []string{"studio_db", "shop_db"}, []exportpkg.Controller{c(studio)}},
		{"found in two products' systems: both, in product order", []string{"studio_db", "shop_db", "studio_db"}, nil, []exportpkg.Controller{c(shop), c(studio)}},
		{"a system shared by two products: both", []string{"shared"}, nil, []exportpkg.Controller{c(shop), c(studio)}},
		{"two products with one controller: named once", []string{"shop_db", "app_db"}, nil, []exportpkg.Controller{c(shop)}},
		{"nothing found: the systems searched decide", nil, []string{"shop_db"}, []exportpkg.Controller{c(shop)}},
		{"a system of no product: the others decide", []string{"nowhere", "studio_db"}, nil, []exportpkg.Controller{c(studio)}},
		{"nothing to go by: every product's controller", nil, []string{"nowhere"}, []exportpkg.Controller{c(shop), c(studio)}},
	} {
		if got := controllersOf(e, tc.found, tc.searched); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
	// A bundle of one product: its controller, wherever the data is.
	one := &policy.Engine{Products: map[string]policy.Product{"studio": studio}, DataMap: e.DataMap}
	if got := controllersOf(one, []string{"shop_db"}, nil); !reflect.DeepEqual(got, []exportpkg.Controller{c(studio)}) {
		t.Errorf("single product: %+v", got)
	}
}
