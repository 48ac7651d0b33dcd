package postgres

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/steward-privacy/steward/connectors"
)

// Masked values carry a prefix so that masking is idempotent: a value that
// is already a keyed hash or a pseudonym is left alone instead of being
// hashed again (which would change it on every run).
const (
	hashPrefix      = "kh:"
	pseudonymPrefix = "psn:"
	pseudonymLen    = 16
)

// maskValue is f's strategy applied to v, for disclosure and for the
// values an erasure writes. A null stays null: there is nothing to hide.
func (c *Connector) maskValue(f connectors.FieldPlan, col *Column, v any, ids []connectors.Identity) (any, bool, error) {
	if v == nil {
		return nil, false, nil
	}
	maxLen := 0
	if col != nil {
		maxLen = col.MaxLen
	}
	switch f.Strategy {
	case connectors.StrategyNull:
		return nil, true, nil
	case connectors.StrategyFixed:
		return f.Value, true, nil
	case connectors.StrategyKeyedHash:
		if s, ok := v.(string); ok && isHash(s) {
			return s, false, nil
		}
		return c.keyedHash(stringOf(v), maxLen), true, nil
	case connectors.StrategyPseudonym:
		if s, ok := v.(string); ok && isPseudonym(s) {
			return s, false, nil
		}
		return c.pseudonym(ids), true, nil
	case connectors.StrategyTruncateDate:
		switch x := v.(type) {
		case time.Time:
			u := x.UTC()
			return time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, time.UTC), true, nil
		case string:
			if d, ok := connectors.TruncateDate(x); ok {
				return d, true, nil
			}
		}
		return nil, false, connectors.Permanent(fmt.Errorf("postgres: field %q: truncate_date needs a date, a timestamp or RFC 3339 text", f.Field))
	}
	return nil, false, connectors.Permanent(fmt.Errorf("postgres: field %q: unknown mask strategy %q", f.Field, f.Strategy))
}

// keyedHash is HMAC-SHA256 under the deployment's key, shortened to fit a
// column of maxLen characters (never below 8 hex digits).
func (c *Connector) keyedHash(s string, maxLen int) string {
	m := hmac.New(sha256.New, c.cfg.HashKey)
	m.Write([]byte("keyed_hash\x00" + s))
	h := hex.EncodeToString(m.Sum(nil))
	if maxLen > 0 && len(hashPrefix)+len(h) > maxLen {
		h = h[:max(8, maxLen-len(hashPrefix))]
	}
	return hashPrefix + h
}

func isHash(s string) bool {
	h, ok := strings.CutPrefix(s, hashPrefix)
	return ok && len(h) >= 8 && isHex(h)
}

func isPseudonym(s string) bool {
	h, ok := strings.CutPrefix(s, pseudonymPrefix)
	return ok && len(h) == pseudonymLen && isHex(h)
}

func isHex(s string) bool {
	for _, r := range s {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// pseudonym is the subject's stable pseudonym: the keyed hash of their
// most stable identity (account id first), so every kept record of one
// person carries the same pseudonym, in every request, and no record
// carries anything that names them.
func (c *Connector) pseudonym(ids []connectors.Identity) string {
	root := ""
	for _, typ := range []string{"user", "tg", "email", "stripe", "creem", "oauth", "visitor"} {
		var vals []string
		for _, id := range ids {
			if id.Type == typ {
				vals = append(vals, id.Provider+":"+id.Value)
			}
		}
		if len(vals) > 0 {
			root = typ + ":" + slices.Min(vals)
			break
		}
	}
	m := hmac.New(sha256.New, c.cfg.HashKey)
	m.Write([]byte("pseudonym\x00" + root))
	return pseudonymPrefix + hex.EncodeToString(m.Sum(nil))[:pseudonymLen]
}

func stringOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(normalize(v, 0))
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// erasure is what an erasure writes into one column of one row: the new
// value, or why the value is kept.
type erasure struct {
	value   any
	changed bool
	kept    string // non-empty: the column cannot take the planned value
	// unlinkable: the value ties the row to another record (a NOT NULL
	// foreign key) and cannot be removed while the row exists.
	unlinkable bool
}

// eraseValue decides the value an erasure writes for field plan f into col
// of t, whose current value is v. The plan's wish is bounded by what the
// column can hold: a key stays (other rows point at it); a foreign-key
// column takes null or keeps its reference (a hash would point nowhere); a
// NOT NULL text column takes a keyed hash instead of null, which keeps
// unique constraints satisfied; other NOT NULL columns keep their value.
func (c *Connector) eraseValue(f connectors.FieldPlan, t *Table, col *Column, v any, ids []connectors.Identity) (erasure, error) {
	if v == nil {
		return erasure{}, nil
	}
	strategy := f.Strategy
	if f.Action == connectors.ActionDelete {
		strategy = connectors.StrategyNull
	}
	switch {
	case col.Generated:
		return erasure{value: v, kept: "generated column"}, nil
	case t.referenced(col.Name):
		return erasure{value: v, kept: "key of the record, which other rows reference"}, nil
	}
	if fk := t.inFK(col.Name); fk != nil && strategy != connectors.StrategyNull {
		return erasure{value: v, kept: fmt.Sprintf("reference to %s (foreign key %s); the referenced record keeps no personal data", fk.RefTable, fk.Name)}, nil
	}
	writesText := strategy == connectors.StrategyFixed || strategy == connectors.StrategyKeyedHash || strategy == connectors.StrategyPseudonym
	if (writesText && !col.textLike()) || (strategy == connectors.StrategyTruncateDate && !datelike(col)) {
		strategy = connectors.StrategyNull // the column cannot hold the mask; remove the value instead
	}
	if strategy == connectors.StrategyFixed && col.MaxLen > 0 && len(f.Value) > col.MaxLen {
		strategy = connectors.StrategyKeyedHash
	}
	if strategy == connectors.StrategyNull && col.NotNull {
		if fk := t.inFK(col.Name); fk != nil {
			// A hash would point nowhere and null is refused: the row stays
			// tied to the referenced record.
			return erasure{value: v, unlinkable: true, kept: fmt.Sprintf("NOT NULL reference to %s (foreign key %s), which cannot be emptied", fk.RefTable, fk.Name)}, nil
		}
		if !col.textLike() {
			return erasure{value: v, kept: "NOT NULL column of type " + col.Type + " with no neutral value"}, nil
		}
		strategy = connectors.StrategyKeyedHash
	}
	fp := f
	fp.Strategy = strategy
	nv, changed, err := c.maskValue(fp, col, v, ids)
	if err != nil {
		return erasure{}, err
	}
	if changed && same(nv, v) {
		changed = false
	}
	return erasure{value: nv, changed: changed}, nil
}

func datelike(col *Column) bool {
	switch col.Base {
	case "date", "timestamp", "timestamptz":
		return true
	}
	return col.textLike()
}

// same compares a current value with its replacement.
func same(a, b any) bool {
	ta, ok1 := a.(time.Time)
	tb, ok2 := b.(time.Time)
	if ok1 && ok2 {
		return ta.Equal(tb)
	}
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return stringOf(a) == stringOf(b)
}
