package postgres

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/connectors"
)

// Rectify sets the named fields of every row of the subject in the target
// dataset to the person's corrected values, cast to each column's type (a
// value the type refuses is a permanent error). Rows that already hold the
// values are not touched, so a repeat updates nothing.
func (c *Connector) Rectify(ctx context.Context, p connectors.RectifyParams) (connectors.RectifyResult, error) {
	var res connectors.RectifyResult
	m, err := c.enter(ctx, opRectify, c.Capabilities().Rectify)
	if err != nil {
		return res, err
	}
	ds, err := m.dataset(opRectify, p.Target)
	if err != nil {
		return res, err
	}
	if len(p.Changes) == 0 {
		return res, connectors.Permanent(fmt.Errorf("postgres %s: rectify %s: no changes given", m.system, ds.id))
	}
	type change struct{ col, cast, value string }
	var changes []change
	for _, f := range slices.Sorted(maps.Keys(p.Changes)) {
		col := ds.table.Columns[f]
		if _, mapped := ds.fields[f]; !mapped || col == nil {
			return res, connectors.Permanent(fmt.Errorf("postgres %s: rectify %s: field %q is not in the data map's dataset", m.system, ds.id, f))
		}
		cast, ok := col.scalarCast()
		if !ok || col.Generated || ds.table.referenced(f) || ds.table.inFK(f) != nil {
			return res, connectors.Permanent(fmt.Errorf("postgres %s: rectify %s: field %q (%s) is a key or a type a correction cannot set", m.system, ds.id, f, col.Type))
		}
		changes = append(changes, change{col: f, cast: cast, value: p.Changes[f]})
	}
	err = c.writeTx(ctx, func(tx pgx.Tx) error {
		var a args
		pred, err := newReach(m, tx, p.Identities, c.cfg.EmailCaseSensitive).predicate(ctx, ds, "t", &a)
		if err != nil || pred == "" {
			return err
		}
		var sets, differs []string
		for _, ch := range changes {
			v := fmt.Sprintf("CAST(%s::text AS %s)", a.add(ch.value), ch.cast)
			sets = append(sets, quote(ch.col)+" = "+v)
			differs = append(differs, colRef("t", ch.col)+" IS DISTINCT FROM "+v)
		}
		tag, err := tx.Exec(ctx, fmt.Sprintf("UPDATE %s AS t SET %s WHERE %s AND (%s)", ds.ident.Sanitize(),
			strings.Join(sets, ", "), pred, strings.Join(differs, " OR ")), a...)
		res.Updated = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return connectors.RectifyResult{}, c.fail(ctx, opRectify, err)
	}
	return res, nil
}

// Restrict marks the subject's rows restricted (or lifts the mark) in the
// dataset's configured flag column: true / false for a boolean, now() /
// null for a timestamp. Where the table has no flag column, the restriction
// is recorded in Steward's ledger, and Restricted counts the subject's rows
// it covers when the ledger changed.
func (c *Connector) Restrict(ctx context.Context, p connectors.RestrictParams) (connectors.RestrictResult, error) {
	var res connectors.RestrictResult
	m, err := c.enter(ctx, opRestrict, c.Capabilities().Restrict)
	if err != nil {
		return res, err
	}
	ds, err := m.dataset(opRestrict, p.Target)
	if err != nil {
		return res, err
	}
	if ds.restrict == nil && c.cfg.Ledger == nil {
		return res, connectors.Permanent(fmt.Errorf("postgres %s: restrict %s: the table has no restrict column configured and no ledger is set", m.system, ds.id))
	}
	err = c.writeTx(ctx, func(tx pgx.Tx) error {
		var a args
		pred, err := newReach(m, tx, p.Identities, c.cfg.EmailCaseSensitive).predicate(ctx, ds, "t", &a)
		if err != nil {
			return err
		}
		if ds.restrict == nil {
			return c.restrictInLedger(ctx, tx, ds, pred, a, p, &res)
		}
		if pred == "" {
			return nil
		}
		col := colRef("t", ds.restrict.Name)
		var set, todo string
		switch {
		case ds.restrict.Base == "bool":
			set, todo = a.add(p.Restricted), col+" IS DISTINCT FROM "+a.add(p.Restricted)
		case p.Restricted:
			set, todo = "now()", col+" IS NULL"
		default:
			set, todo = "NULL", col+" IS NOT NULL"
		}
		tag, err := tx.Exec(ctx, fmt.Sprintf("UPDATE %s AS t SET %s = %s WHERE %s AND %s",
			ds.ident.Sanitize(), quote(ds.restrict.Name), set, pred, todo), a...)
		res.Restricted = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return connectors.RestrictResult{}, c.fail(ctx, opRestrict, err)
	}
	return res, nil
}

// restrictInLedger counts the subject's rows first and only then changes
// the ledger, so a failed count cannot leave the ledger changed with a
// result of zero that a retry would repeat.
func (c *Connector) restrictInLedger(ctx context.Context, tx pgx.Tx, ds *dataset, pred string, a args, p connectors.RestrictParams, res *connectors.RestrictResult) error {
	n := 0
	if pred != "" {
		if err := tx.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %s AS t WHERE %s", ds.ident.Sanitize(), pred), a...).Scan(&n); err != nil {
			return err
		}
	}
	changed, err := c.cfg.Ledger.Restrict(ctx, c.cfg.System, ds.id, p.Identities, p.Restricted, p.RequestID, p.Reason)
	if err != nil || !changed {
		return err
	}
	res.Restricted = n
	return nil
}
