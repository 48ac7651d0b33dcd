package stripe

import (
	"context"
	"regexp"
	"slices"
	"strings"

	stripego "github.com/stripe/stripe-go/v84"

	"github.com/steward-privacy/steward/connectors"
)

// customer is one of the subject's customers, as Stripe last answered.
type customer struct {
	id  string
	obj map[string]any
}

// customerID is the shape of a Stripe customer id. An identity of the
// stripe type that is not one (another object's id, a test's placeholder)
// reaches no customer and costs no request.
var customerID = regexp.MustCompile(`^cus_[A-Za-z0-9]{1,250}$`)

// pageSize is the page size of every list: Stripe's maximum, the fewest
// requests against the rate limit.
const pageSize = 100

func listParams() stripego.ListParams { return stripego.ListParams{Limit: stripego.Int64(pageSize)} }

// customers finds the subject's live customers from ids, in the order
// found, each once. Deleted customers (Stripe keeps a stub) hold nothing.
func (c *Connector) customers(ctx context.Context, m *model, ids []connectors.Identity) ([]customer, error) {
	var out []customer
	seen := map[string]bool{}
	add := func(obj map[string]any) {
		id, _ := obj["id"].(string)
		if id == "" || seen[id] || obj["deleted"] == true {
			return
		}
		seen[id] = true
		out = append(out, customer{id: id, obj: obj})
	}
	done := map[connectors.Identity]bool{}
	for _, ident := range ids {
		if done[ident] || ident.Value == "" {
			continue
		}
		done[ident] = true
		switch {
		case slices.Contains(m.idTypes, ident.Type):
			if !customerID.MatchString(ident.Value) || seen[ident.Value] {
				continue
			}
			obj, err := c.getCustomer(ctx, ident.Value)
			if err != nil {
				return nil, err
			}
			if obj != nil {
				add(obj)
			}
		case slices.Contains(m.emailTypes, ident.Type):
			if !strings.Contains(ident.Value, "@") {
				continue
			}
			if err := c.byEmail(ctx, ident.Value, add); err != nil {
				return nil, err
			}
		case m.metaTypes[ident.Type] != "":
			if err := c.byMetadata(ctx, m.metaTypes[ident.Type], ident.Value, add); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// getCustomer returns the customer id, or nil when Stripe has no live
// customer by that id.
func (c *Connector) getCustomer(ctx context.Context, id string) (map[string]any, error) {
	cu, err := c.api.V1Customers.Retrieve(ctx, id, &stripego.CustomerRetrieveParams{Params: stripego.Params{Context: ctx}})
	if missing(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if cu.Deleted {
		return nil, nil
	}
	return decodeObject(cu.LastResponse.RawJSON)
}

// byEmail finds the customers whose email is exactly email, asking both
// the list endpoint (its filter is exact and strongly consistent: a
// customer created a moment ago is there) and search (eventually
// consistent, and matching without regard to case). Either index lagging
// does not hide a customer, and search results are checked here: the
// customer Ann@example.com may be someone else than ann@example.com.
func (c *Connector) byEmail(ctx context.Context, email string, add func(map[string]any)) error {
	lp := &stripego.CustomerListParams{ListParams: listParams(), Email: stripego.String(email)}
	for cu, err := range c.api.V1Customers.List(ctx, lp) {
		if err != nil {
			return err
		}
		if err := addIf(cu.LastResponse, add, func(o map[string]any) bool { return o["email"] == email }); err != nil {
			return err
		}
	}
	return c.search(ctx, "email:"+searchString(email), add, func(o map[string]any) bool { return o["email"] == email })
}

// byMetadata finds the customers whose metadata key is exactly value.
func (c *Connector) byMetadata(ctx context.Context, key, value string, add func(map[string]any)) error {
	return c.search(ctx, "metadata["+searchString(key)+"]:"+searchString(value), add, func(o map[string]any) bool {
		md, _ := o["metadata"].(map[string]any)
		return md[key] == value
	})
}

func (c *Connector) search(ctx context.Context, query string, add func(map[string]any), exact func(map[string]any) bool) error {
	sp := &stripego.CustomerSearchParams{SearchParams: stripego.SearchParams{Query: query, Limit: stripego.Int64(pageSize)}}
	for cu, err := range c.api.V1Customers.Search(ctx, sp) {
		if err != nil {
			return err
		}
		if err := addIf(cu.LastResponse, add, exact); err != nil {
			return err
		}
	}
	return nil
}

func addIf(r *stripego.APIResponse, add func(map[string]any), exact func(map[string]any) bool) error {
	if r == nil {
		return nil
	}
	obj, err := decodeObject(r.RawJSON)
	if err != nil {
		return err
	}
	if exact(obj) {
		add(obj)
	}
	return nil
}

// ResolveIdentities returns, for the subject's customers, their customer
// ids and email addresses (the identity types the data map gives the
// customer's id and email fields), except those already known. The email
// a person gave Stripe at checkout reaches their data in other systems.
func (c *Connector) ResolveIdentities(ctx context.Context, known []connectors.Identity) ([]connectors.Identity, error) {
	m, err := c.enter(ctx, opResolve)
	if err != nil {
		return nil, err
	}
	custs, err := c.customers(ctx, m, known)
	if err != nil {
		return nil, c.wrap(opResolve, c.classify(err))
	}
	have := map[connectors.Identity]bool{}
	for _, k := range known {
		have[k] = true
	}
	var out []connectors.Identity
	emit := func(id connectors.Identity) {
		if id.Value != "" && !have[id] {
			have[id] = true
			out = append(out, id)
		}
	}
	for _, cu := range custs {
		for _, t := range m.idTypes {
			emit(connectors.Identity{Type: t, Value: cu.id})
		}
		if email, _ := cu.obj["email"].(string); email != "" {
			for _, t := range m.emailTypes {
				emit(connectors.Identity{Type: t, Value: email})
			}
		}
	}
	return out, nil
}
