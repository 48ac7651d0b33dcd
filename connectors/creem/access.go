package creem

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/steward-privacy/steward/connectors"
)

// maxPages bounds one listing: a paginator that never ends (a next_page
// that does not advance, a bug) must not loop forever. At the default page
// size it is half a million records of one customer.
const maxPages = 10_000

// page is one page of a Creem list endpoint: {"items": [...],
// "pagination": {"total_records", "total_pages", "current_page",
// "next_page", "prev_page"}}, next_page null on the last page.
type page struct {
	Items      []map[string]any `json:"items"`
	Pagination *struct {
		CurrentPage *int `json:"current_page"`
		NextPage    *int `json:"next_page"`
	} `json:"pagination"`
}

// list pages through a list endpoint from page 1, calling fn with each item
// as it arrives: records are streamed, never collected.
func (c *Connector) list(ctx context.Context, endpoint, path string, q url.Values, fn func(map[string]any) error) error {
	q.Set("page_size", strconv.Itoa(c.cfg.PageSize))
	number := 1
	for n := 0; ; n++ {
		if n == maxPages {
			return connectors.Permanent(fmt.Errorf("creem %s: more than %d pages", endpoint, maxPages))
		}
		q.Set("page_number", strconv.Itoa(number))
		var p page
		if err := c.get(ctx, endpoint, path, q, &p); err != nil {
			return err
		}
		if p.Items == nil || p.Pagination == nil {
			return connectors.Permanent(fmt.Errorf("creem %s: unexpected response: no items or pagination", endpoint))
		}
		for _, it := range p.Items {
			if err := fn(it); err != nil {
				return err
			}
		}
		next := p.Pagination.NextPage
		if next == nil || len(p.Items) == 0 {
			return nil
		}
		if *next <= number {
			return connectors.Permanent(fmt.Errorf("creem %s: page %d says the next page is %d", endpoint, number, *next))
		}
		number = *next
	}
}

// eachRecord calls fn with each of the subject's records in ds, once per
// record id, customer by customer (sorted by id) in the order Creem lists
// them. Every record is checked to belong to the customer it was listed for:
// a filter Creem ignored must not disclose or name another person's records.
func (c *Connector) eachRecord(ctx context.Context, ds *dataset, customers []*customer, fn func(cu *customer, id string, item map[string]any) error) error {
	seen := map[string]bool{}
	foreign := 0
	visit := func(cu *customer, item map[string]any) error {
		id, _ := item["id"].(string)
		if id == "" {
			return connectors.Permanent(fmt.Errorf("creem %s: a %s without an id", c.cfg.System, ds.object))
		}
		if ds.object != objCustomer && refID(item["customer"]) != cu.id {
			foreign++
			return nil
		}
		if seen[id] {
			return nil // listed twice (pages shifted while read)
		}
		seen[id] = true
		return fn(cu, id, item)
	}
	for _, cu := range customers {
		var err error
		switch ds.object {
		case objCustomer:
			if !cu.gone {
				err = visit(cu, cu.raw)
			}
		case objSubscription:
			// GET /v1/customers/{id}/subscriptions, "List customer
			// subscriptions": the documented per-customer listing. Creem's
			// 404 says it has no such customer, so no subscriptions of it
			// either.
			path := "/v1/customers/" + url.PathEscape(cu.id) + "/subscriptions"
			err = c.list(ctx, "customers.subscriptions", path, url.Values{}, func(it map[string]any) error { return visit(cu, it) })
			if errors.Is(err, errNotFound) {
				err = nil
			}
		case objTransaction:
			// GET /v1/transactions/search?customer_id=…, "List
			// transactions", filtered by customer.
			q := url.Values{"customer_id": {cu.id}}
			err = c.list(ctx, "transactions.search", "/v1/transactions/search", q, func(it map[string]any) error { return visit(cu, it) })
		}
		if err != nil {
			return err
		}
	}
	if foreign > 0 {
		c.log.Warn("creem: a listing returned records of other customers; they were skipped", "dataset", ds.id, "skipped", foreign)
	}
	return nil
}

// Access discloses the subject's records in the target dataset, with
// exactly the plan's fields (dotted paths into Creem's JSON), keyed by the
// object's id, streamed to sink page by page.
func (c *Connector) Access(ctx context.Context, p connectors.AccessParams, sink connectors.Sink) (connectors.AccessResult, error) {
	var res connectors.AccessResult
	m, err := c.enter(ctx, opAccess)
	if err != nil {
		return res, err
	}
	ds, err := m.dataset(opAccess, p.Target)
	if err != nil {
		return res, err
	}
	if err := ds.checkPlan(m.system, opAccess, p.Fields); err != nil {
		return res, err
	}
	customers, err := c.subjectCustomers(ctx, p.Identities)
	if err != nil {
		return res, err
	}
	err = c.eachRecord(ctx, ds, customers, func(_ *customer, id string, item map[string]any) error {
		rec := connectors.Record{Dataset: ds.id, Key: id, Fields: make([]connectors.FieldValue, 0, len(p.Fields))}
		for _, f := range p.Fields {
			rec.Fields = append(rec.Fields, connectors.FieldValue{Field: f.Field, Category: f.Category, Value: ds.value(item, f.Field)})
		}
		if err := sink.Record(ctx, rec); err != nil {
			return fmt.Errorf("creem %s: access %s: sink: %w", m.system, ds.id, err)
		}
		res.Records++
		return nil
	})
	return res, err
}

// value is the field at a dotted path of item; nil when absent. A reference
// field Creem expanded into the referenced object reads as that object's
// id, as the data map declares it.
func (ds *dataset) value(item map[string]any, path string) any {
	v := valueAt(item, path)
	if ds.refs[path] {
		if id := refID(v); id != "" {
			return id
		}
	}
	return v
}

// valueAt walks a dotted path through nested JSON objects.
func valueAt(v any, path string) any {
	for part := range strings.SplitSeq(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// refID is the id a reference field holds: the string itself, or the id of
// an expanded object (Creem returns subscription.customer as the whole
// customer, transaction.customer as its id).
func refID(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		id, _ := v["id"].(string)
		return id
	}
	return ""
}
