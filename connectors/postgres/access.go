package postgres

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/identity"
)

// Operation names, for errors and the test hook.
const (
	opResolve  = "resolve"
	opAccess   = "access"
	opErase    = "erase"
	opRectify  = "rectify"
	opRestrict = "restrict"
)

// enter starts an operation: the context must be live, the operation
// declared, the data map compiled; a test may inject a failure.
func (c *Connector) enter(ctx context.Context, op string, declared bool) (*model, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("postgres %s: %s: %w", c.cfg.System, op, err)
	}
	if !declared {
		return nil, connectors.ErrUnsupported
	}
	if c.inject != nil {
		if err := c.inject(op); err != nil {
			return nil, err
		}
	}
	return c.current(ctx)
}

// dataset returns the target's dataset or a permanent error: the plan
// names something this connector does not hold.
func (m *model) dataset(op string, t connectors.Target) (*dataset, error) {
	if t.System != m.system {
		return nil, connectors.Permanent(fmt.Errorf("postgres %s: %s: target system %q is not this connector's", m.system, op, t.System))
	}
	ds := m.datasets[t.Dataset]
	if ds == nil {
		return nil, connectors.Permanent(fmt.Errorf("postgres %s: %s: no dataset %q in the data map", m.system, op, t.Dataset))
	}
	return ds, nil
}

// planFields checks every planned field is a mapped column.
func (ds *dataset) planFields(op string, fields []connectors.FieldPlan) error {
	if len(fields) == 0 {
		return connectors.Permanent(fmt.Errorf("postgres: %s %s: the plan has no fields", op, ds.id))
	}
	for _, f := range fields {
		if _, ok := ds.fields[f.Field]; !ok || !ds.table.has(f.Field) {
			return connectors.Permanent(fmt.Errorf("postgres: %s %s: field %q is not in the data map's dataset", op, ds.id, f.Field))
		}
	}
	return nil
}

// readTx runs fn in a read-only, repeatable-read transaction, so the keys
// read first and the rows read after come from one snapshot.
func (c *Connector) readTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := c.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	if err := c.timeouts(ctx, tx); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// writeTx runs fn in one read-committed transaction: a batch.
func (c *Connector) writeTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := c.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	if err := c.timeouts(ctx, tx); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func (c *Connector) timeouts(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true), set_config('statement_timeout', $2, true),
		set_config('TimeZone', 'UTC', true)`,
		fmt.Sprintf("%dms", c.cfg.LockTimeout.Milliseconds()), fmt.Sprintf("%dms", c.cfg.StatementTimeout.Milliseconds()))
	return err
}

// ResolveIdentities reads every identity column of every row the known
// identities reach: an email finds the account id, the account its OAuth
// ids, visitor ids and payment-processor customer ids.
func (c *Connector) ResolveIdentities(ctx context.Context, known []connectors.Identity) ([]connectors.Identity, error) {
	m, err := c.enter(ctx, opResolve, true)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, id := range known {
		seen[identityKey(id)] = true
	}
	var out []connectors.Identity
	err = c.readTx(ctx, func(tx pgx.Tx) error {
		r := newReach(m, tx, known, c.cfg.EmailCaseSensitive)
		for _, did := range slices.Sorted(maps.Keys(m.datasets)) {
			ds := m.datasets[did]
			if len(ds.identities) == 0 {
				continue
			}
			found, err := r.identitiesIn(ctx, ds)
			if err != nil {
				return err
			}
			for _, id := range found {
				if k := identityKey(id); !seen[k] {
					seen[k] = true
					out = append(out, id)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, c.fail(ctx, opResolve, err)
	}
	return out, nil
}

func identityKey(i connectors.Identity) string {
	return i.Type + "\x00" + i.Provider + "\x00" + i.Value
}

// identitiesIn reads the identity columns of ds's rows of the subject.
// Values that are not valid identities (nulls, masks) are skipped.
func (r *reach) identitiesIn(ctx context.Context, ds *dataset) ([]connectors.Identity, error) {
	var a args
	pred, err := r.predicate(ctx, ds, "t", &a)
	if err != nil || pred == "" {
		return nil, err
	}
	var cols []string
	for _, ic := range ds.identities {
		cols = append(cols, colRef("t", ic.col.Name)+"::text")
		if ic.provider != nil {
			cols = append(cols, colRef("t", ic.provider.Name)+"::text")
		}
	}
	rows, err := r.q.Query(ctx, fmt.Sprintf("SELECT DISTINCT %s FROM %s AS t WHERE %s", strings.Join(cols, ", "), ds.ident.Sanitize(), pred), a...)
	if err != nil {
		return nil, fmt.Errorf("identities in %s: %w", ds.id, err)
	}
	defer rows.Close()
	var out []connectors.Identity
	vals := make([]*string, len(cols))
	dest := make([]any, len(cols))
	for i := range vals {
		dest[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("identities in %s: %w", ds.id, err)
		}
		i := 0
		for _, ic := range ds.identities {
			v := vals[i]
			i++
			raw := ic.typ + ":"
			if ic.provider != nil {
				p := vals[i]
				i++
				if p == nil {
					continue
				}
				raw += *p + ":"
			}
			if v == nil {
				continue
			}
			s, err := identity.Parse(raw + *v)
			if err != nil {
				continue // a mask, or a value the product let in that is no identity
			}
			out = append(out, connectors.Identity{Type: string(s.Type), Value: s.Value, Provider: s.Provider})
		}
	}
	return out, rows.Err()
}

// Access streams the subject's rows of the target dataset to sink, in
// primary-key order, one record per row. Deleted fields are not read;
// masked ones (credentials) are disclosed as their mask.
func (c *Connector) Access(ctx context.Context, p connectors.AccessParams, sink connectors.Sink) (connectors.AccessResult, error) {
	var res connectors.AccessResult
	m, err := c.enter(ctx, opAccess, true)
	if err != nil {
		return res, err
	}
	ds, err := m.dataset(opAccess, p.Target)
	if err != nil {
		return res, err
	}
	if err := ds.planFields(opAccess, p.Fields); err != nil {
		return res, err
	}
	var read []connectors.FieldPlan
	for _, f := range p.Fields {
		if f.Action != connectors.ActionDelete {
			read = append(read, f)
		}
	}
	var sinkErr error
	err = c.readTx(ctx, func(tx pgx.Tx) error {
		r := newReach(m, tx, p.Identities, c.cfg.EmailCaseSensitive)
		var a args
		pred, err := r.predicate(ctx, ds, "t", &a)
		if err != nil {
			return err
		}
		if pred == "" {
			res.Review, err = r.review(ctx, ds)
			return err
		}
		cols := []string{keyExpr(ds.table, "t")}
		for _, f := range read {
			cols = append(cols, colRef("t", f.Field))
		}
		rows, err := tx.Query(ctx, fmt.Sprintf("SELECT %s FROM %s AS t WHERE %s ORDER BY %s",
			strings.Join(cols, ", "), ds.ident.Sanitize(), pred, orderExpr(ds.table, "t")), a...)
		if err != nil {
			return err
		}
		defer rows.Close()
		oids := fieldOIDs(rows)
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				return err
			}
			rec := connectors.Record{Dataset: ds.id, Key: fmt.Sprint(vals[0])}
			for i, f := range read {
				v := normalize(vals[i+1], oids[i+1])
				if f.Action == connectors.ActionMask {
					if v, _, err = c.maskValue(f, ds.table.Columns[f.Field], v, p.Identities); err != nil {
						return err
					}
				}
				rec.Fields = append(rec.Fields, connectors.FieldValue{Field: f.Field, Category: f.Category, Value: v})
			}
			if err := sink.Record(ctx, rec); err != nil {
				sinkErr = fmt.Errorf("postgres %s: access %s: sink: %w", m.system, ds.id, err)
				return sinkErr
			}
			res.Records++
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		res.Review, err = r.review(ctx, ds)
		return err
	})
	if sinkErr != nil {
		return res, sinkErr
	}
	if err != nil {
		return res, c.fail(ctx, opAccess, err)
	}
	return res, nil
}

func fieldOIDs(rows pgx.Rows) []uint32 {
	fds := rows.FieldDescriptions()
	oids := make([]uint32, len(fds))
	for i, fd := range fds {
		oids[i] = fd.DataTypeOID
	}
	return oids
}

// normalize turns a driver value into one that reads well in JSON and
// compares equal across reads: times in UTC RFC 3339 (dates as dates),
// uuids and addresses as strings, numerics as exact JSON numbers.
func normalize(v any, oid uint32) any {
	switch x := v.(type) {
	case nil, string, bool, int16, int32, int64, float32, float64, []byte, map[string]any:
		return v
	case time.Time:
		switch oid {
		case pgtype.DateOID:
			return x.Format(time.DateOnly)
		case pgtype.TimestampOID:
			return x.Format("2006-01-02T15:04:05.999999999")
		}
		return x.UTC().Format(time.RFC3339Nano)
	case [16]byte:
		return uuid.UUID(x).String()
	case netip.Prefix:
		if x.IsSingleIP() {
			return x.Addr().String()
		}
		return x.String()
	case netip.Addr:
		return x.String()
	case pgtype.Numeric:
		if b, err := x.MarshalJSON(); err == nil {
			return json.Number(b)
		}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e, 0)
		}
		return out
	case driver.Valuer:
		if dv, err := x.Value(); err == nil {
			return dv
		}
	}
	return fmt.Sprint(v)
}

// fail wraps an operation's error with its classification.
func (c *Connector) fail(ctx context.Context, op string, err error) error {
	return fmt.Errorf("postgres %s: %s: %w", c.cfg.System, op, classify(ctx, err))
}

// classify says whether a database error is worth retrying: lost
// connections, timeouts, lock waits, serialization failures and resource
// shortages are; a changed schema, a missing permission or a constraint
// the plan cannot satisfy fail the same way every time.
func classify(ctx context.Context, err error) error {
	var ce *connectors.Error
	if errors.As(err, &ce) {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), strings.HasPrefix(pe.Code, "53"), strings.HasPrefix(pe.Code, "57"),
			pe.Code == "40001", pe.Code == "40P01", pe.Code == "55P03", pe.Code == "55006":
			return connectors.Retryable(err, 0)
		}
		return connectors.Permanent(err)
	}
	return connectors.Retryable(err, 0)
}
