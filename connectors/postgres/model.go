package postgres

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/datamap"
)

// model is the data map's view of one system joined with the live schema:
// everything a query needs, checked once.
type model struct {
	dm       *datamap.Map
	system   string
	schema   string
	datasets map[string]*dataset
	// after[d] are the datasets whose tables reference d's table: their
	// rows go before d's.
	after map[string][]string
}

// dataset is one mapped table.
type dataset struct {
	id     string
	table  *Table
	ident  pgx.Identifier // schema-qualified table name
	fields map[string]datamap.Field
	// identities are the columns holding an identity of the subject
	// directly; refs the columns holding a key of another dataset's row.
	identities []identityCol
	refs       []refCol
	restrict   *Column // the flag column, if configured
}

type identityCol struct {
	col      *Column
	typ      string
	provider *Column // oauth only
	match    string  // the data map's datamap.Identity.Match (see identityComparison)
}

// isIdentity reports whether field is one of the dataset's identity
// columns.
func (ds *dataset) isIdentity(field string) bool {
	for _, ic := range ds.identities {
		if ic.col.Name == field {
			return true
		}
	}
	return false
}

type refCol struct {
	col       *Column
	parent    string // dataset id in the same system
	parentCol *Column
	// up says the parent's row references this dataset's row
	// (customers.address_id -> address.address_id), rather than this row
	// the parent's (orders.customer_id -> customers.id).
	up bool
	// ownership is the data map's, with its default filled in: owns for
	// a reference to the parent's row, shared for one from it (see
	// datamap.Reference).
	ownership string
}

// owns reports whether the person's rows reached along rc are theirs
// (subject to the checks in reach.predicate).
func (rc refCol) owns() bool { return rc.ownership == datamap.OwnershipOwns }

// problems collects mismatches, each naming the data-map entry.
type problems struct {
	system string
	errs   []string
	warns  []string
}

func (p *problems) add(path, format string, args ...any) {
	p.errs = append(p.errs, p.system+"."+path+": "+fmt.Sprintf(format, args...))
}

func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	sort.Strings(p.errs)
	return fmt.Errorf("postgres %s: the data map does not match the database:\n  %s", p.system, strings.Join(p.errs, "\n  "))
}

// compile checks system cfg.System of dm against cat. Warnings are
// references no foreign key backs, when the configuration allows them.
func compile(dm *datamap.Map, cat *Catalog, cfg Config) (*model, []string, error) {
	p := &problems{system: cfg.System}
	sys, ok := dm.Systems[cfg.System]
	if !ok {
		return nil, nil, fmt.Errorf("postgres %s: the data map has no such system", cfg.System)
	}
	if sys.Kind != datamap.KindPostgres {
		return nil, nil, fmt.Errorf("postgres %s: the data map says kind %q, not postgres", cfg.System, sys.Kind)
	}
	m := &model{dm: dm, system: cfg.System, schema: cat.Schema, datasets: map[string]*dataset{}, after: map[string][]string{}}
	for _, did := range slices.Sorted(maps.Keys(sys.Datasets)) {
		if ds := compileDataset(p, cat, did, sys.Datasets[did]); ds != nil {
			m.datasets[did] = ds
		}
	}
	for _, did := range slices.Sorted(maps.Keys(sys.Datasets)) {
		if ds := m.datasets[did]; ds != nil {
			m.compileRefs(p, cfg, ds, sys.Datasets[did])
		}
	}
	for did := range cfg.RestrictColumns {
		if _, ok := sys.Datasets[did]; !ok {
			p.add("datasets."+did, "restrict column configured for a dataset the data map does not have")
		}
	}
	for did, ds := range m.datasets {
		m.compileRestrict(p, cfg, ds, did)
	}
	m.ownershipCycles(p, sys)
	m.order()
	if err := p.err(); err != nil {
		return nil, p.warns, err
	}
	return m, p.warns, nil
}

func compileDataset(p *problems, cat *Catalog, did string, d datamap.Dataset) *dataset {
	path := "datasets." + did
	t := cat.Tables[d.Table]
	if t == nil {
		p.add(path+".table", "table %q not found in schema %q", d.Table, cat.Schema)
		return nil
	}
	ds := &dataset{id: did, table: t, ident: pgx.Identifier{cat.Schema, t.Name}, fields: d.Fields}
	for _, f := range slices.Sorted(maps.Keys(d.Fields)) {
		if !t.has(f) {
			p.add(path+".fields."+f, "column %q not found in table %s.%s", f, cat.Schema, t.Name)
		}
	}
	for i, id := range d.Identities {
		ipath := fmt.Sprintf("%s.identities[%d]", path, i)
		col := t.Columns[id.Field]
		if col == nil {
			continue // reported with the fields
		}
		if _, ok := col.keyCast(); !ok {
			p.add(ipath, "column %q has type %s, which cannot hold a %s identity (text, integer, uuid or numeric)", id.Field, col.Type, id.Type)
			continue
		}
		ic := identityCol{col: col, typ: id.Type, match: id.Match}
		if id.ProviderField != "" {
			if ic.provider = t.Columns[id.ProviderField]; ic.provider == nil || !ic.provider.textLike() {
				p.add(ipath+".provider_field", "column %q not found or not text in table %s", id.ProviderField, t.Name)
				continue
			}
		}
		ds.identities = append(ds.identities, ic)
	}
	return ds
}

// compileRefs resolves a dataset's references within the system. A
// reference to another system (an id another connector resolves) is left to
// identity resolution.
func (m *model) compileRefs(p *problems, cfg Config, ds *dataset, d datamap.Dataset) {
	for i, r := range d.References {
		path := fmt.Sprintf("datasets.%s.references[%d]", ds.id, i)
		parts := strings.SplitN(r.To, ".", 3)
		if len(parts) != 3 || parts[0] != m.system {
			continue
		}
		parent := m.datasets[parts[1]]
		col := ds.table.Columns[r.Field]
		if parent == nil || col == nil {
			continue // reported with the dataset or its fields
		}
		pcol := parent.table.Columns[parts[2]]
		if pcol == nil {
			p.add(path+".to", "column %q not found in table %s", parts[2], parent.table.Name)
			continue
		}
		cc, ok1 := col.keyCast()
		pc, ok2 := pcol.keyCast()
		if !ok1 || !ok2 || cc != pc {
			p.add(path, "%s.%s (%s) cannot be compared with %s.%s (%s)", ds.table.Name, col.Name, col.Type, parent.table.Name, pcol.Name, pcol.Type)
			continue
		}
		if !backedByFK(ds.table, col.Name, parent.table.Name, pcol.Name) && !backedByFK(parent.table, pcol.Name, ds.table.Name, col.Name) {
			msg := fmt.Sprintf("no foreign key %s(%s) REFERENCES %s(%s)", ds.table.Name, col.Name, parent.table.Name, pcol.Name)
			if cfg.AllowMissingForeignKeys {
				p.warns = append(p.warns, m.system+"."+path+": "+msg)
			} else {
				p.add(path, "%s; declare it, or set allow_missing_foreign_keys", msg)
				continue
			}
		}
		rc := refCol{col: col, parent: parent.id, parentCol: pcol, ownership: r.Ownership}
		rc.up = refersUp(ds.table, col.Name, parent.table, pcol.Name)
		if rc.ownership == "" {
			rc.ownership = datamap.OwnershipOwns
			if rc.up {
				rc.ownership = datamap.OwnershipShared
				p.warns = append(p.warns, fmt.Sprintf("%s.%s: %s.%s is referenced by %s.%s and may be held by other rows too: it is treated as shared (never disclosed or erased for one person); declare ownership: owns if a row held by nobody else is the person's",
					m.system, path, ds.table.Name, col.Name, parent.table.Name, pcol.Name))
			}
		}
		ds.refs = append(ds.refs, rc)
	}
}

// ownershipCycles refuses ownership references that go round in a cycle
// (orders.customer_id -> customers.id owns, and customers.last_order_id ->
// orders.id owns), a reference of a table to itself that owns
// (employees.manager_id -> employees.id) included. Along such a cycle a
// row would be the person's because of a row that is theirs because of
// it: whose rows they are cannot be decided, and reach, which stops where
// its walk came round, would answer differently depending on the dataset
// it started from (a self-reference would simply never be followed). A
// cycle of references that do not own (a manager, a referral:
// relationship) is fine: ownership does not travel along it, and the
// engine breaks such cycles when it orders erasures.
//
// A cycle is reported at the reference of its first dataset (in name
// order), with every reference along it; a dataset is named in one
// reported cycle at most (mending it may reveal another).
func (m *model) ownershipCycles(p *problems, sys datamap.System) {
	// out[d] are the owns references along which d's rows make another
	// dataset's rows the person's: d is their parent.
	type ownsRef struct {
		child string
		rc    refCol
	}
	out := map[string][]ownsRef{}
	for _, did := range slices.Sorted(maps.Keys(m.datasets)) {
		for _, rc := range m.datasets[did].refs {
			if rc.owns() {
				out[rc.parent] = append(out[rc.parent], ownsRef{did, rc})
			}
		}
	}
	inCycle := map[string]bool{}
	for _, start := range slices.Sorted(maps.Keys(m.datasets)) {
		if inCycle[start] {
			continue
		}
		// The shortest way from start back to start, breadth first.
		via := map[string]ownsRef{}
		queue := []string{start}
		found := false
		for len(queue) > 0 && !found {
			d := queue[0]
			queue = queue[1:]
			for _, o := range out[d] {
				if _, seen := via[o.child]; seen {
					continue
				}
				via[o.child] = o
				if o.child == start {
					found = true
					break
				}
				queue = append(queue, o.child)
			}
		}
		if !found {
			continue
		}
		// Walked back from start, child to parent: each reference in turn
		// leads to the dataset of the next, as the map's "to" reads.
		var refs []string
		for d := start; ; {
			o := via[d]
			inCycle[d] = true
			ds := m.datasets[o.child]
			refs = append(refs, fmt.Sprintf("%s.%s -> %s.%s (column %s.%s)", o.child, o.rc.col.Name, o.rc.parent, o.rc.parentCol.Name, ds.table.Name, o.rc.col.Name))
			if d = o.rc.parent; d == start {
				break
			}
		}
		first := via[start]
		path := fmt.Sprintf("datasets.%s.references", first.child)
		for i, r := range sys.Datasets[first.child].References {
			if r.Field == first.rc.col.Name {
				path = fmt.Sprintf("%s[%d]", path, i)
				break
			}
		}
		what := "references that own go round in a cycle"
		if len(refs) == 1 {
			what = fmt.Sprintf("a reference of table %s to itself owns", m.datasets[start].table.Name)
		}
		p.add(path, "%s: %s; a row would be the person's because of a row that is theirs because of it, so whose rows these are cannot be decided: mark one of them ownership: relationship (it links two people) or shared, or leave it out",
			what, strings.Join(refs, ", "))
	}
}

// refersUp reports whether the reference t.col = parent.pcol goes from the
// parent's row to t's (parent.pcol is a foreign key to t.col) rather than
// the other way: by the foreign keys, else by t.col alone being t's primary
// key while parent.pcol is not parent's.
func refersUp(t *Table, col string, parent *Table, pcol string) bool {
	switch {
	case backedByFK(t, col, parent.Name, pcol):
		return false
	case backedByFK(parent, pcol, t.Name, col):
		return true
	}
	return slices.Equal(t.PrimaryKey, []string{col}) && !slices.Equal(parent.PrimaryKey, []string{pcol})
}

func backedByFK(t *Table, col, refTable, refCol string) bool {
	for _, fk := range t.ForeignKeys {
		if fk.RefTable != refTable {
			continue
		}
		for i, c := range fk.Columns {
			if c == col && fk.RefColumns[i] == refCol {
				return true
			}
		}
	}
	return false
}

func (m *model) compileRestrict(p *problems, cfg Config, ds *dataset, did string) {
	name, ok := cfg.RestrictColumns[did]
	if !ok {
		return
	}
	col := ds.table.Columns[name]
	switch {
	case col == nil:
		p.add("datasets."+did, "restrict column %q not found in table %s", name, ds.table.Name)
	case col.Base != "bool" && col.Base != "timestamptz" && col.Base != "timestamp":
		p.add("datasets."+did, "restrict column %q is %s; it must be boolean or a timestamp", name, col.Type)
	case col.Generated:
		p.add("datasets."+did, "restrict column %q is generated and cannot be written", name)
	default:
		ds.restrict = col
	}
}

// order fills m.after from the live foreign keys between mapped tables.
func (m *model) order() {
	byTable := map[string]string{}
	for did, ds := range m.datasets {
		byTable[ds.table.Name] = did
	}
	for did, ds := range m.datasets {
		seen := map[string]bool{}
		for _, fk := range ds.table.Incoming {
			child, ok := byTable[fk.Table]
			if ok && child != did && !seen[child] {
				seen[child] = true
				m.after[did] = append(m.after[did], child)
			}
		}
		slices.Sort(m.after[did])
	}
}
