package console

import (
	"html/template"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/dsar"
)

// The queue: requests by due date (open ones unless asked otherwise),
// overdue and at-risk ones marked, filtered by type, status, regime,
// channel and product, and searched by one of the person's identities. A search is a
// POST, so the identity never lands in a URL, a history or an access log;
// it is matched through its keyed hash (dsar.Filter.Identity).

// queueQuery is the queue's parsed filters.
type queueQuery struct {
	Status  string // "open" (default), "all" or one status
	Type    string
	Regime  string
	Channel string
	Product string
	Search  string // as typed, for the form; only in a POST
	Subject identity.Subject
	Cursor  string
}

var requestTypes = []string{"access", "export", "erasure", "rectification", "restriction", "objection"}

var channelNames = []string{dsar.ChannelWeb, dsar.ChannelBot, dsar.ChannelStaff, dsar.ChannelAgent}

// parseQueue reads the filters from a query string or a form. Unknown
// values are errors (field, message key), not silently dropped: a
// reviewer must not believe a filter applies when it does not.
func parseQueue(v url.Values, regimes, products []string) (queueQuery, map[string]string) {
	q := queueQuery{Status: "open"}
	errs := map[string]string{}
	get := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	switch s := get("status"); {
	case s == "" || s == "open":
	case s == "all":
		q.Status = "all"
	case slices.Contains(dsar.Statuses(), dsar.Status(s)):
		q.Status = s
	default:
		errs["status"] = "err_filter"
	}
	if t := get("type"); t != "" {
		if slices.Contains(requestTypes, t) {
			q.Type = t
		} else {
			errs["type"] = "err_filter"
		}
	}
	if r := get("regime"); r != "" {
		if slices.Contains(regimes, r) {
			q.Regime = r
		} else {
			errs["regime"] = "err_filter"
		}
	}
	if ch := get("channel"); ch != "" {
		if slices.Contains(channelNames, ch) {
			q.Channel = ch
		} else {
			errs["channel"] = "err_filter"
		}
	}
	if p := get("product"); p != "" {
		if slices.Contains(products, p) {
			q.Product = p
		} else {
			errs["product"] = "err_filter"
		}
	}
	if s := get("q"); s != "" {
		q.Search = s
		subj, err := identity.Parse(s)
		if err != nil {
			errs["q"] = "err_identity"
		} else {
			q.Subject = subj
		}
	}
	if c := get("cursor"); c != "" {
		if len(c) > 200 || strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			errs["cursor"] = "err_filter"
		} else {
			q.Cursor = c
		}
	}
	return q, errs
}

func (q queueQuery) filter(limit int) dsar.Filter {
	f := dsar.Filter{Status: q.Status, Type: q.Type, Regime: q.Regime, Channel: q.Channel, Product: q.Product, Identity: q.Subject, Cursor: q.Cursor, Limit: limit}
	if f.Status == "all" {
		f.Status = ""
	}
	return f
}

// query is the filters as a query string (for the next page's link); the
// search is never in it.
func (q queueQuery) query(cursor string) string {
	v := url.Values{}
	if q.Status != "open" {
		v.Set("status", q.Status)
	}
	for k, x := range map[string]string{"type": q.Type, "regime": q.Regime, "channel": q.Channel, "product": q.Product, "cursor": cursor} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v.Encode()
}

type queueRow struct {
	dsar.Request
	AtRisk bool
	Days   int // days until due (negative: overdue)
}

type queueData struct {
	Q        queueQuery
	Rows     []queueRow
	Next     string       // the next page's cursor (a search pages by POST)
	NextHref template.URL // the next page's link (built from url.Values, so safe)
	Statuses []string
	Types    []string
	Regimes  []string
	Channels []string
	Products []string
	FieldErr map[string]string
	AtRisk   int
}

func (c *Console) regimes() []string {
	var out []string
	for r := range c.d.Policies.Current().Jurisdictions.Regimes {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

func (c *Console) products() []string {
	var out []string
	for p := range c.d.Policies.Current().Products {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func (c *Console) queue(ctx *fiber.Ctx) error {
	if _, err, ok := c.allow(ctx, "queue.view"); !ok {
		return err
	}
	var vals url.Values
	if ctx.Method() == fiber.MethodPost {
		vals = url.Values{}
		for _, k := range []string{"status", "type", "regime", "channel", "product", "q", "cursor"} {
			vals.Set(k, strings.Clone(ctx.FormValue(k)))
		}
	} else {
		vals, _ = url.ParseQuery(string(ctx.Request().URI().QueryString()))
		// A search only by POST: an identity in the URL would be kept by
		// browsers and proxies.
		vals.Del("q")
	}
	regimes, products := c.regimes(), c.products()
	q, ferrs := parseQueue(vals, regimes, products)
	v := c.newView(ctx, "queue_title")
	d := queueData{Q: q, Types: requestTypes, Regimes: regimes, Channels: channelNames, Products: products, FieldErr: map[string]string{}, AtRisk: c.cfg.AtRiskDays}
	d.Statuses = append(d.Statuses, "open", "all")
	for _, s := range dsar.Statuses() {
		d.Statuses = append(d.Statuses, string(s))
	}
	status := fiber.StatusOK
	if len(ferrs) > 0 {
		for f, key := range ferrs {
			d.FieldErr[f] = T(v.Lang, key)
			v.Errors = append(v.Errors, T(v.Lang, "field_"+f)+": "+T(v.Lang, key))
		}
		slices.Sort(v.Errors)
		v.Data = d
		return c.render(ctx, fiber.StatusUnprocessableEntity, "queue", v)
	}
	rows, next, err := c.d.Requests.List(ctx.UserContext(), q.filter(c.cfg.PageSize))
	if err != nil {
		if msg, st, ok := serviceError(v.Lang, err); ok {
			v.Errors = []string{msg}
			v.Data = d
			return c.render(ctx, st, "queue", v)
		}
		return c.failure(ctx, err)
	}
	now := c.d.Clock.Now()
	horizon := now.Add(time.Duration(c.cfg.AtRiskDays) * 24 * time.Hour)
	for _, r := range rows {
		open := !r.Status.Final()
		d.Rows = append(d.Rows, queueRow{Request: r, AtRisk: open && !r.Overdue && !r.DueAt.After(horizon),
			Days: int(r.DueAt.Sub(now).Hours() / 24)})
	}
	if next != "" {
		d.Next = next
		if q.Search == "" {
			d.NextHref = template.URL(Prefix + "/requests?" + q.query(next)) //nolint:gosec // url.Values.Encode output
		}
	}
	v.Data = d
	return c.render(ctx, status, "queue", v)
}
