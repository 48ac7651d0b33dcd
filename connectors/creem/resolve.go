package creem

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/identity"
)

// Identity types this connector reaches Creem by: the only two keys Creem's
// customer lookup takes (GET /v1/customers?customer_id=… or ?email=…).
const (
	typeEmail = "email"
	typeCreem = "creem"
)

// customer is one Creem customer, as the lookup returned it.
type customer struct {
	id    string
	email string
	raw   map[string]any
	// gone is a customer id of the subject that Creem no longer has (it
	// deleted the customer at our request). Creem may still hold records
	// under the id (transactions it keeps as merchant of record), so
	// listings still search by it; the customers dataset skips it.
	gone bool
}

// lookupCustomer fetches a customer by id (byEmail false) or email. A
// customer Creem does not have is (nil, nil): an unknown subject, or one
// whose customer Creem has since deleted at our request.
//
// The answer must name exactly what was asked: a lookup by id must return
// that id, and a lookup by email a customer whose stored email is the same
// string. Creem does not document how it compares emails; if it matched
// case-insensitively (or after some normalisation) it could hand over a
// customer who is a different person with a similar address, so such an
// answer is ignored. The cost: a customer stored as "Ann@Example.com" is
// not found from the identity "ann@example.com" (Steward lowercases
// emails); it is still reached by its creem: id, which the application
// database links to the user.
func (c *Connector) lookupCustomer(ctx context.Context, value string, byEmail bool) (*customer, error) {
	q := url.Values{}
	endpoint := "customers.retrieve"
	if byEmail {
		q.Set("email", value)
		endpoint = "customers.retrieve_by_email"
	} else {
		if err := checkCreemID(value); err != nil {
			// Not an id Creem could have issued: nobody has it.
			return nil, nil
		}
		q.Set("customer_id", value)
	}
	var raw map[string]any
	err := c.get(ctx, endpoint, "/v1/customers", q, &raw)
	if errors.Is(err, errNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	id, _ := raw["id"].(string)
	email, _ := raw["email"].(string)
	if id == "" {
		return nil, connectors.Permanent(fmt.Errorf("creem %s: the customer has no id", endpoint))
	}
	if byEmail && email != value {
		c.log.Warn("creem: the lookup by email returned a customer stored under a different address (Creem compares emails differently); ignored")
		return nil, nil
	}
	if !byEmail && id != value {
		c.log.Warn("creem: the lookup by id returned a different customer; ignored")
		return nil, nil
	}
	return &customer{id: id, email: email, raw: raw}, nil
}

// subjectCustomers returns the subject's Creem customers, sorted by id: the
// customers of the subject's email and creem identities, and, marked gone,
// the creem ids Creem has no customer for any more. Other identity types
// do not reach Creem.
func (c *Connector) subjectCustomers(ctx context.Context, ids []connectors.Identity) ([]*customer, error) {
	seen := map[string]bool{}
	var out []*customer
	var gone []string
	for _, idn := range ids {
		var byEmail bool
		switch idn.Type {
		case typeEmail:
			byEmail = true
		case typeCreem:
		default:
			continue
		}
		if idn.Value == "" {
			continue
		}
		cu, err := c.lookupCustomer(ctx, idn.Value, byEmail)
		if err != nil {
			return nil, err
		}
		if cu == nil {
			if !byEmail && checkCreemID(idn.Value) == nil {
				gone = append(gone, idn.Value)
			}
			continue
		}
		if !seen[cu.id] {
			seen[cu.id] = true
			out = append(out, cu)
		}
	}
	for _, id := range gone {
		if !seen[id] {
			seen[id] = true
			out = append(out, &customer{id: id, gone: true})
		}
	}
	slices.SortFunc(out, func(a, b *customer) int { return strings.Compare(a.id, b.id) })
	return out, nil
}

// ResolveIdentities finds the subject's Creem customers from their email
// and creem identities and returns each customer's creem: id and the email
// Creem holds for it (a creem: id known from the application may have paid
// with another address), leaving out what was known. The email is returned
// normalized as Steward keeps emails (identity.NormalizeEmail), so that
// the other systems' connectors match it; an address that does not
// normalize is left out.
func (c *Connector) ResolveIdentities(ctx context.Context, known []connectors.Identity) ([]connectors.Identity, error) {
	if _, err := c.enter(ctx, opResolve); err != nil {
		return nil, err
	}
	customers, err := c.subjectCustomers(ctx, known)
	if err != nil {
		return nil, err
	}
	have := map[connectors.Identity]bool{}
	for _, k := range known {
		have[connectors.Identity{Type: k.Type, Value: k.Value}] = true
		if k.Type == typeEmail {
			if v, err := identity.NormalizeEmail(k.Value); err == nil {
				have[connectors.Identity{Type: typeEmail, Value: v}] = true
			}
		}
	}
	var out []connectors.Identity
	add := func(i connectors.Identity) {
		if i.Value == "" || have[i] {
			return
		}
		have[i] = true
		out = append(out, i)
	}
	for _, cu := range customers {
		if cu.gone {
			continue
		}
		add(connectors.Identity{Type: typeCreem, Value: cu.id})
		if v, err := identity.NormalizeEmail(cu.email); err == nil {
			add(connectors.Identity{Type: typeEmail, Value: v})
		}
	}
	return out, nil
}

// checkCreemID accepts what Steward accepts as a creem: identity (1-255
// characters A-Z, a-z, 0-9, '-', '_', '.', not only dots), so an id can go
// into a URL path without changing the path.
func checkCreemID(v string) error {
	if len(v) == 0 || len(v) > 255 || strings.Trim(v, ".") == "" {
		return errors.New("creem id must be 1-255 characters and not only dots")
	}
	for i := 0; i < len(v); i++ {
		ch := v[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_' || ch == '.') {
			return errors.New("creem id may contain only A-Z, a-z, 0-9, '-', '_' and '.'")
		}
	}
	return nil
}
