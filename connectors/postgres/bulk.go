package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/steward-privacy/steward/connectors"
)

// BulkEraseParams erases one dataset of many subjects at once: a mass
// erasure, or a retention sweep that knows whose records have expired.
type BulkEraseParams struct {
	System  string
	Dataset string
	// Subjects are the identities of each subject.
	Subjects [][]connectors.Identity
	Fields   []connectors.FieldPlan
}

// EraseMany erases the dataset for every subject, SubjectBatch subjects at
// a time, each batch its own transaction under the lock and statement
// timeouts: a plan that deletes records deletes every unreferenced row of
// the batch in one set-based statement (rows chosen with "= ANY($1)"); the
// rest goes BatchSize rows at a time as in Erase. Each batch ends with its
// own verification pass. The result adds up the
// batches. A pseudonym is one subject's, so a plan that asks for pseudonyms
// must erase subject by subject.
func (c *Connector) EraseMany(ctx context.Context, p BulkEraseParams) (connectors.EraseResult, error) {
	var res connectors.EraseResult
	m, err := c.enter(ctx, opErase, c.Capabilities().Erase)
	if err != nil {
		return res, err
	}
	ds, err := m.dataset(opErase, connectors.Target{System: p.System, Dataset: p.Dataset})
	if err != nil {
		return res, err
	}
	if err := ds.planFields(opErase, p.Fields); err != nil {
		return res, err
	}
	for _, f := range p.Fields {
		if f.Action == connectors.ActionMask && f.Strategy == connectors.StrategyPseudonym && len(p.Subjects) > 1 {
			return res, connectors.Permanent(fmt.Errorf("postgres %s: bulk erase %s: field %q is pseudonymised per subject; erase subject by subject", m.system, ds.id, f.Field))
		}
	}
	res.Verified = true
	retained := map[string]int{}
	var order []string
	for chunk := range slices.Chunk(p.Subjects, c.cfg.SubjectBatch) {
		var ids []connectors.Identity
		for _, s := range chunk {
			ids = append(ids, s...)
		}
		e := newEraser(c, m, ds, p.Fields, ids)
		e.bulk = true
		r, err := e.run(ctx)
		res.Deleted += r.Deleted
		res.Masked += r.Masked
		if err != nil {
			return res, c.fail(ctx, opErase, err)
		}
		res.Verified = res.Verified && r.Verified
		for _, rt := range r.Retained {
			k := rt.Field + "\x00" + rt.Basis + "\x00" + rt.Until
			if _, ok := retained[k]; !ok {
				order = append(order, k)
				res.Retained = append(res.Retained, connectors.Retained{Field: rt.Field, Basis: rt.Basis, Until: rt.Until})
			}
			retained[k] += rt.Records
		}
	}
	for i, k := range order {
		res.Retained[i].Records = retained[k]
	}
	return res, nil
}
