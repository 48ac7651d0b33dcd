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
	"unicode/utf8"

	"github.com/steward-privacy/steward/connectors"
)

// Masked values carry a prefix so that masking is idempotent: a value that
// is already a keyed hash or a pseudonym is left alone instead of being
// hashed again (which would change it on every run).
const (
	hashPrefix = "kh:"
	// An email-shaped keyed hash, for columns whose CHECK wants an address:
	// kh.<hex>@erased.invalid (.invalid is reserved: RFC 2606).
	emailHashPrefix = "kh."
	emailHashDomain = "@erased.invalid"
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
	case candEmailHash:
		if s, ok := v.(string); ok && (isEmailHash(s) || isHash(s)) {
			return s, false, nil
		}
		return c.emailHash(stringOf(v), maxLen), true, nil
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

// hashLen is the length of keyedHash's value for a column of maxLen.
func hashLen(maxLen int) int {
	n := len(hashPrefix) + 2*sha256.Size
	if maxLen > 0 && n > maxLen {
		n = len(hashPrefix) + max(8, maxLen-len(hashPrefix))
	}
	return n
}

// emailHashLen is the length of an email-shaped keyed hash in a column of
// maxLen characters (0: no limit); the hex part keeps at least 8 digits.
func emailHashLen(maxLen int) int {
	n := len(emailHashPrefix) + 2*sha256.Size + len(emailHashDomain)
	if maxLen > 0 && n > maxLen {
		n = len(emailHashPrefix) + max(8, maxLen-len(emailHashPrefix)-len(emailHashDomain)) + len(emailHashDomain)
	}
	return n
}

// sampleHash and sampleEmailHash are values of the forms keyedHash and
// emailHash write, of a column's length, for probing its constraints.
func sampleHash(maxLen int) string {
	return hashPrefix + strings.Repeat("0123456789abcdef", 4)[:hashLen(maxLen)-len(hashPrefix)]
}

func sampleEmailHash(maxLen int) string {
	n := emailHashLen(maxLen) - len(emailHashPrefix) - len(emailHashDomain)
	return emailHashPrefix + strings.Repeat("0123456789abcdef", 4)[:n] + emailHashDomain
}

// emailHash is keyedHash shaped like an email address.
func (c *Connector) emailHash(s string, maxLen int) string {
	h := strings.TrimPrefix(c.keyedHash(s, 0), hashPrefix)
	n := emailHashLen(maxLen) - len(emailHashPrefix) - len(emailHashDomain)
	return emailHashPrefix + h[:n] + emailHashDomain
}

func isEmailHash(s string) bool {
	h, ok := strings.CutPrefix(s, emailHashPrefix)
	if !ok {
		return false
	}
	h, ok = strings.CutSuffix(h, emailHashDomain)
	return ok && len(h) >= 8 && isHex(h)
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
	// dflt: the value is the column's constant default, written as
	// DEFAULT (value is what it evaluates to, to compare with).
	dflt bool
	kept string // non-empty: the column cannot take the planned value
	// link: the kept value is a key or a reference the record's structure
	// needs (its own key, another row's), not a value a constraint left.
	link bool
	// unlinkable: the value ties the row to another record (a NOT NULL
	// foreign key) and cannot be removed while the row exists.
	unlinkable bool
}

// set is the SQL assignment of er's value to column col, its value bound
// in a.
func (er erasure) set(col string, a *args) string {
	if er.dflt {
		return quote(col) + " = DEFAULT"
	}
	return quote(col) + " = " + a.add(er.value)
}

// eraseValue decides the value an erasure writes for field plan f into col
// of t, whose current value is v. The plan's wish is bounded by what the
// column can hold: a value the erasure writes satisfies the column's type
// and every constraint on it, or the value is kept with the reason. The
// decision depends on the plan and the catalog alone, never on v (a
// retention sweep probes it with a stand-in value), so every row of a
// column gets the same answer, and it is made before any statement runs:
// no UPDATE is sent that the schema would refuse.
//
// The rules, in order:
//   - A generated column cannot be written; a key other rows reference
//     stays (changing it would orphan or re-point them).
//   - A foreign-key column takes null or keeps its reference: a hash or a
//     default would point nowhere, or at someone else's record.
//   - A mask the column's type cannot hold (text into a number, a date
//     into a boolean) becomes removal: null.
//   - A fixed value longer than the column's limit becomes a keyed hash
//     (shortened to fit). In a column a unique constraint or index covers,
//     a fixed value or a pseudonym becomes a keyed hash: both repeat (one
//     for everyone, the other for each of one person's rows) and would
//     collide; a keyed hash is per value, so distinct values stay distinct.
//   - Then the first of these candidates known to pass is written:
//     for removal (null): null; the constant default; a keyed hash, in a
//     text column;
//     for a mask: the mask; the constant default; null.
//     (So NOT NULL text takes its constant default, the schema's neutral
//     value, rather than a hash that still derives from the value; a
//     unique column, which a default would break, takes the hash.)
//   - Nothing passes: the value is kept, and the reason names every
//     candidate's obstacle, for staff to read in the result.
//
// What is known to pass:
//   - A mask that writes text (fixed, keyed hash, pseudonym) or truncates a
//     date passes neither a CHECK constraint on the column, nor an enum
//     (unless the fixed value is one of its labels), nor a domain with
//     CHECK constraints, as far as anyone can know before PostgreSQL runs
//     them ("kh:3f2a…" is no language code); nor a length limit it
//     exceeds. A truncated date can also make two values of a unique
//     column equal.
//   - The constant default is the schema's own neutral value ("en", 0,
//     false, '{}'): writing it twice changes nothing, so the erasure stays
//     idempotent. It is known to pass when the catalog read evaluated it
//     against the column's domain and single-column CHECK constraints
//     (Catalog.evaluate), no CHECK over several columns covers the column
//     (those depend on the row), and no unique index does (one default for
//     everyone would collide). A default that is not a constant (now(),
//     nextval()) is no neutral value: it would differ per row and, for a
//     timestamp, record when the erasure ran.
//   - Null passes a nullable column when the evaluation showed its domain
//     and single-column CHECKs admit it, every CHECK over several columns
//     is null-tolerant (see nullTolerant), and no unique index treats
//     nulls as equal.
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
		return erasure{value: v, link: true, kept: "generated column"}, nil
	case t.referenced(col.Name):
		why := "key of the record, which other rows reference"
		if !t.referencedByOthers(col.Name) {
			why = "primary key of the record"
		}
		return erasure{value: v, link: true, kept: why}, nil
	}
	if fk := t.inFK(col.Name); fk != nil {
		if strategy != connectors.StrategyNull {
			return erasure{value: v, link: true, kept: fmt.Sprintf("reference to %s (foreign key %s); the referenced record keeps no personal data", fk.RefTable, fk.Name)}, nil
		}
		if col.NotNull {
			// A hash would point nowhere and null is refused: the row stays
			// tied to the referenced record.
			return erasure{value: v, link: true, unlinkable: true, kept: fmt.Sprintf("NOT NULL reference to %s (foreign key %s), which cannot be emptied", fk.RefTable, fk.Name)}, nil
		}
		if why := col.refusesNull(); why != "" {
			return erasure{value: v, link: true, unlinkable: true, kept: fmt.Sprintf("reference to %s (foreign key %s), which cannot be emptied: %s", fk.RefTable, fk.Name, why)}, nil
		}
		return erasure{value: nil, changed: true}, nil
	}
	writesText := strategy == connectors.StrategyFixed || strategy == connectors.StrategyKeyedHash || strategy == connectors.StrategyPseudonym
	enumLabel := strategy == connectors.StrategyFixed && col.IsEnum && slices.Contains(col.Enum, f.Value)
	if (writesText && !col.textLike() && !enumLabel) || (strategy == connectors.StrategyTruncateDate && !datelike(col)) {
		strategy = connectors.StrategyNull // the column cannot hold the mask; remove the value instead
	}
	if strategy == connectors.StrategyFixed && !enumLabel && col.MaxLen > 0 && utf8.RuneCountInString(f.Value) > col.MaxLen {
		strategy = connectors.StrategyKeyedHash
	}
	if col.Unique && (strategy == connectors.StrategyFixed || strategy == connectors.StrategyPseudonym) {
		strategy = connectors.StrategyKeyedHash // a repeated value would collide
		if !col.textLike() {
			strategy = connectors.StrategyNull
		}
	}
	var cands []string
	if strategy == connectors.StrategyNull {
		cands = []string{candNull, candDefault, candHash, candEmailHash}
	} else {
		cands = []string{strategy, candDefault, candNull, candEmailHash}
	}
	var why []string
	for _, cand := range cands {
		refusal := c.refuses(cand, col)
		if refusal == "-" {
			continue // not a candidate for this column
		}
		if refusal != "" {
			why = append(why, refusal)
			continue
		}
		return c.write(cand, f, col, v, ids)
	}
	return erasure{value: v, kept: strings.Join(why, "; ")}, nil
}

// Candidates eraseValue tries besides the plan's strategies.
const (
	candNull    = connectors.StrategyNull
	candHash    = connectors.StrategyKeyedHash
	candDefault = "default"
	// candEmailHash is a keyed hash shaped like an email address, for a
	// column whose CHECK wants one and which nothing else empties.
	candEmailHash = "email_hash"
)

// refuses says why cand is not known to pass col's type and constraints:
// "" when it is, "-" when it is no candidate there at all (a keyed hash in
// place of null outside a text column).
func (c *Connector) refuses(cand string, col *Column) string {
	switch cand {
	case candNull:
		return col.refusesNull()
	case candDefault:
		return col.refusesDefault()
	case connectors.StrategyTruncateDate:
		if why := col.refusesMask("a truncated date"); why != "" {
			return why
		}
		if col.Unique {
			return "a truncated date could repeat in the unique column"
		}
		if col.MaxLen > 0 && col.MaxLen < len(time.DateOnly) && col.textLike() {
			return fmt.Sprintf("a truncated date (%d characters) exceeds the column's limit of %d", len(time.DateOnly), col.MaxLen)
		}
		return ""
	case connectors.StrategyFixed:
		if col.IsEnum {
			// Only a label of the enum gets here (see eraseValue).
			return col.refusesChecks("the fixed value")
		}
		return col.refusesMask("the fixed value")
	case candEmailHash:
		// Only where PostgreSQL said such a value passes; else it is no
		// candidate (and adds nothing to the reasons).
		if !col.textLike() || !col.admits.emailHash || len(col.multiChecks()) > 0 {
			return "-"
		}
		if col.MaxLen > 0 && emailHashLen(col.MaxLen) > col.MaxLen {
			return "-"
		}
		return ""
	case connectors.StrategyKeyedHash, connectors.StrategyPseudonym:
		if !col.textLike() {
			return "-"
		}
		if why := col.refusesMask("a masked value"); why != "" {
			// PostgreSQL said a keyed hash of this length passes the
			// column's own CHECKs and domain: the mask is known to pass.
			if !(cand == connectors.StrategyKeyedHash && col.admits.hash && !col.IsEnum && len(col.multiChecks()) == 0) {
				return why
			}
		}
		n := hashLen(col.MaxLen)
		if cand == connectors.StrategyPseudonym {
			n = len(pseudonymPrefix) + pseudonymLen
		}
		if col.MaxLen > 0 && n > col.MaxLen {
			return fmt.Sprintf("a masked value of %d characters exceeds the column's limit of %d", n, col.MaxLen)
		}
		return ""
	}
	return ""
}

// refusesMask says why a masked value (what) is not known to pass col: a
// CHECK constraint or an enum type PostgreSQL alone can decide.
func (col *Column) refusesMask(what string) string {
	if col.IsEnum {
		return fmt.Sprintf("the enum type %s admits only its labels (%s)", col.Type, strings.Join(col.Enum, ", "))
	}
	return col.refusesChecks(what)
}

// refusesChecks names the first CHECK constraint (the column's, then its
// domain's) a value (what) is not known to pass.
func (col *Column) refusesChecks(what string) string {
	if len(col.Checks) > 0 {
		return fmt.Sprintf("CHECK constraint %s admits no %s", col.Checks[0].Name, noun(what))
	}
	if len(col.DomainChecks) > 0 {
		return fmt.Sprintf("CHECK constraint %s of domain %s admits no %s", col.DomainChecks[0].Name, col.Domain, noun(what))
	}
	return ""
}

// noun drops the article: "a masked value" is "admits no masked value".
func noun(what string) string {
	for _, a := range []string{"a ", "the "} {
		if s, ok := strings.CutPrefix(what, a); ok {
			return s
		}
	}
	return what
}

// refusesNull says why null is not known to pass col.
func (col *Column) refusesNull() string {
	switch {
	case col.NotNull:
		return "NOT NULL column of type " + col.Type
	case col.DomainNotNull:
		return "the domain " + col.Domain + " is NOT NULL"
	case col.Unique && col.NullsNotDistinct:
		return "a unique index treats nulls as equal, so nulls would collide"
	}
	if !col.admits.evaluated && (len(col.singleChecks()) > 0 || col.Domain != "") {
		return "the column's constraints could not be evaluated for null"
	}
	if col.admits.evaluated && !col.admits.null {
		if cs := col.singleChecks(); len(cs) > 0 {
			return fmt.Sprintf("CHECK constraint %s (or the type %s) refuses null", cs[0].Name, col.Type)
		}
		return fmt.Sprintf("the type %s refuses null", col.Type)
	}
	for _, ck := range col.multiChecks() {
		if !nullTolerant(ck.Def) {
			return fmt.Sprintf("CHECK constraint %s may refuse null (%s)", ck.Name, ck.Def)
		}
	}
	return ""
}

// refusesDefault says why col's default is not known to be a neutral value
// that passes col.
func (col *Column) refusesDefault() string {
	switch {
	case col.DefaultExpr == "":
		return "the column has no default"
	case !col.DefaultConst:
		return fmt.Sprintf("the column's default %s is not a constant", col.DefaultExpr)
	case col.Unique:
		return fmt.Sprintf("the default %s would repeat in the unique column", col.DefaultExpr)
	case len(col.multiChecks()) > 0:
		return fmt.Sprintf("CHECK constraint %s over several columns may refuse the default %s", col.multiChecks()[0].Name, col.DefaultExpr)
	case !col.admits.evaluated:
		return fmt.Sprintf("the default %s could not be evaluated", col.DefaultExpr)
	case !col.admits.dflt:
		return fmt.Sprintf("the default %s does not pass the column's constraints", col.DefaultExpr)
	}
	return ""
}

// write is the erasure that writes cand into col in place of v.
func (c *Connector) write(cand string, f connectors.FieldPlan, col *Column, v any, ids []connectors.Identity) (erasure, error) {
	if cand == candDefault {
		return erasure{value: col.admits.dfltValue, dflt: true, changed: !same(col.admits.dfltValue, v)}, nil
	}
	fp := f
	fp.Strategy = cand
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
