package creem

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/steward-privacy/steward/connectors"
)

// merchantOfRecordNote is EraseResult.Note for a subject Creem holds
// records of: what stays beyond Steward's reach whatever staff ask.
const merchantOfRecordNote = "Creem is the merchant of record for these payments: it keeps its own transaction, " +
	"invoice and tax records of the customer (which can include the email, name, country and billing address) " +
	"as a controller under its own legal obligations, and decides itself what it must keep and for how long."

// Erase cannot erase: Creem's API has no deletion endpoint. It lists the
// subject's records in the dataset and, when the plan deletes or masks any
// field, returns Manual: instructions for staff naming every record by id,
// to send to Creem's support. It changes nothing, so a repeat (a new task
// run, a retry) finds the same records and returns the same text, until
// Creem has deleted them; then it finds nothing and reports Verified.
//
// Retained lists the plan's retained fields with the number of the
// subject's records they are kept in (Creem keeps them; nothing is asked).
// Note says what Creem keeps as merchant of record whatever is asked.
func (c *Connector) Erase(ctx context.Context, p connectors.EraseParams) (connectors.EraseResult, error) {
	var res connectors.EraseResult
	m, err := c.enter(ctx, opErase)
	if err != nil {
		return res, err
	}
	ds, err := m.dataset(opErase, p.Target)
	if err != nil {
		return res, err
	}
	if err := ds.checkPlan(m.system, opErase, p.Fields); err != nil {
		return res, err
	}
	customers, err := c.subjectCustomers(ctx, p.Identities)
	if err != nil {
		return res, err
	}
	// The subject's record ids, per customer (customers sorted by id).
	var groups []idGroup
	n := 0
	err = c.eachRecord(ctx, ds, customers, func(cu *customer, id string, _ map[string]any) error {
		if len(groups) == 0 || groups[len(groups)-1].customer != cu.id {
			groups = append(groups, idGroup{customer: cu.id})
		}
		g := &groups[len(groups)-1]
		g.ids = append(g.ids, id)
		n++
		return nil
	})
	if err != nil {
		return res, err
	}
	if n == 0 {
		res.Verified = true // nothing of the subject's here: nothing to do
		return res, nil
	}
	res.Note = merchantOfRecordNote

	var del, mask []string
	var keep []connectors.FieldPlan
	allDelete := true
	for _, f := range p.Fields {
		allDelete = allDelete && f.Action == connectors.ActionDelete
		switch f.Action {
		case connectors.ActionDelete:
			del = append(del, f.Field)
		case connectors.ActionMask:
			mask = append(mask, f.Field)
		case connectors.ActionRetain:
			keep = append(keep, f)
			res.Retained = append(res.Retained, connectors.Retained{Field: f.Field, Basis: f.Basis, Until: f.Until, Records: n})
		}
	}
	if len(del)+len(mask) == 0 {
		res.Verified = true // the plan keeps everything: nothing to ask
		return res, nil
	}
	res.Manual = c.instructions(ds, groups, allDelete, del, mask, keep)
	return res, nil
}

// idGroup is the ids of one customer's records.
type idGroup struct {
	customer string
	ids      []string
}

// instructions is the staff's task text. It is deterministic (ids and
// fields sorted, no timestamps, nothing from the request) so that a repeat
// returns the same text, and it names records by id only: it is stored and
// shown to staff, and the ids are all Creem needs to act.
func (c *Connector) instructions(ds *dataset, groups []idGroup, allDelete bool, del, mask []string, keep []connectors.FieldPlan) string {
	var b strings.Builder
	verb := "delete"
	if !allDelete {
		verb = "erase personal data of"
	}
	fmt.Fprintf(&b, "Ask Creem (%s)", c.cfg.SupportContact)
	var quals []string
	if c.cfg.Store != "" {
		quals = append(quals, fmt.Sprintf("for store %q", c.cfg.Store))
	}
	if c.base.Host == "test-api.creem.io" {
		quals = append(quals, "in test mode")
	}
	if len(quals) > 0 {
		b.WriteString(", " + strings.Join(quals, ", ") + ",")
	}
	fmt.Fprintf(&b, " to %s %s.\n", verb, c.records(ds, groups))
	if allDelete {
		fmt.Fprintf(&b, "Delete each record whole, with its data: %s.\n", sortedList(del))
	} else {
		if len(del) > 0 {
			fmt.Fprintf(&b, "Delete the fields: %s.\n", sortedList(del))
		}
		if len(mask) > 0 {
			fmt.Fprintf(&b, "Anonymise the fields (Creem cannot apply Steward's masks; deleting them is also acceptable): %s.\n", sortedList(mask))
		}
		if len(keep) > 0 {
			keep = slices.Clone(keep)
			slices.SortFunc(keep, func(a, b connectors.FieldPlan) int { return strings.Compare(a.Field, b.Field) })
			parts := make([]string, len(keep))
			for i, f := range keep {
				parts[i] = f.Field + " (retained"
				if f.Basis != "" {
					parts[i] += ": " + f.Basis
				}
				if f.Until != "" {
					parts[i] += ", until " + f.Until
				}
				parts[i] += ")"
			}
			fmt.Fprintf(&b, "Keep the fields: %s.\n", strings.Join(parts, ", "))
		}
	}
	if ds.object == objTransaction {
		b.WriteString("As merchant of record Creem may have to keep transactions under its own tax and accounting obligations; if it refuses, record its answer on this task.\n")
	}
	b.WriteString("Mark this task done when Creem confirms.")
	return b.String()
}

// records names the records: "customer cust_1", "subscriptions sub_1,
// sub_2 (customer cust_1); sub_3 (customer cust_2)".
func (c *Connector) records(ds *dataset, groups []idGroup) string {
	total := 0
	for _, g := range groups {
		total += len(g.ids)
	}
	noun := ds.object
	if total != 1 {
		noun += "s"
	}
	if ds.object == objCustomer {
		ids := make([]string, 0, total)
		for _, g := range groups {
			ids = append(ids, g.ids...)
		}
		return noun + " " + sortedList(ids)
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = fmt.Sprintf("%s (customer %s)", sortedList(g.ids), g.customer)
	}
	return noun + " " + strings.Join(parts, "; ")
}

func sortedList(s []string) string {
	s = slices.Clone(s)
	slices.Sort(s)
	return strings.Join(slices.Compact(s), ", ")
}
