package postgres_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
)

// The ownership property (DESIGN.md, "Ownership of data"), over generated
// schemas and people: a shared address (referenced by customers and staff),
// payments with two owners (a customer and a rental), a relationship
// (customers' support rep), a deep chain below orders. For every person A
// and every other person B, A's export is exactly what A owns (computed
// here in Go from the generated rows, not by the connector's SQL), so it
// holds nothing of B's; erasing A changes no row A does not own.

// genRow is one generated row: its primary key, its references (column ->
// referenced id, 0 for null) and its identity.
type genRow struct {
	id    int
	email string
	refs  map[string]int
}

// genRef is one reference of the generated map: table.col = parent.pcol.
type genRef struct {
	table, col, parent, pcol string
	up                       bool   // parent.pcol references table.col
	ownership                string // as the map declares it
}

type genWorld struct {
	tables []string // in erasure order: the map's children first
	rows   map[string][]genRow
	refs   []genRef
	emails []string
}

// chainTables are the deep chain's tables, each a child of the previous
// (the first of orders).
var chainTables = []string{"c1", "c2", "c3"}

func genOwnership(seed uint64) *genWorld {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	w := &genWorld{rows: map[string][]genRow{}}
	depth := rnd.IntN(len(chainTables) + 1)
	addrOwnership := []string{datamap.OwnershipOwns, datamap.OwnershipShared}[rnd.IntN(2)]
	nPeople := 2 + rnd.IntN(4)
	for i := range nPeople {
		w.emails = append(w.emails, fmt.Sprintf("p%d@example.com", i))
	}
	pick := func(n int, nullable bool) int { // an id in 1..n, or 0
		if n == 0 || nullable && rnd.IntN(4) == 0 {
			return 0
		}
		return 1 + rnd.IntN(n)
	}
	add := func(table string, email string, refs map[string]int) {
		w.rows[table] = append(w.rows[table], genRow{id: len(w.rows[table]) + 1, email: email, refs: refs})
	}
	nAddr := 1 + rnd.IntN(4)
	for range nAddr {
		add("addr", "", nil)
	}
	// Staff and customers are people; one person may be both.
	for _, e := range w.emails {
		if rnd.IntN(3) == 0 {
			add("staff", e, map[string]int{"address_id": pick(nAddr, true)})
		}
	}
	for _, e := range w.emails {
		if rnd.IntN(4) != 0 {
			add("cust", e, map[string]int{"address_id": pick(nAddr, true), "rep_id": pick(len(w.rows["staff"]), true)})
		}
	}
	nStaff, nCust := len(w.rows["staff"]), len(w.rows["cust"])
	for range rnd.IntN(3 * len(w.emails)) {
		add("staff_note", "", map[string]int{"staff_id": pick(nStaff, true)})
	}
	for range rnd.IntN(3 * len(w.emails)) {
		add("orders", "", map[string]int{"cust_id": pick(nCust, true)})
	}
	for range rnd.IntN(3 * len(w.emails)) {
		add("rental", "", map[string]int{"cust_id": pick(nCust, true)})
	}
	for range rnd.IntN(4 * len(w.emails)) {
		c, r := pick(nCust, true), pick(len(w.rows["rental"]), true)
		if rnd.IntN(2) == 0 && r > 0 {
			// Usually the rental's own customer; sometimes another's.
			c = w.rows["rental"][r-1].refs["cust_id"]
		}
		add("payment", "", map[string]int{"cust_id": c, "rental_id": r})
	}
	parent := "orders"
	for _, t := range chainTables[:depth] {
		for range rnd.IntN(3 * len(w.emails)) {
			add(t, "", map[string]int{"parent_id": pick(len(w.rows[parent]), true)})
		}
		parent = t
	}
	w.refs = []genRef{
		{table: "addr", col: "id", parent: "cust", pcol: "address_id", up: true, ownership: addrOwnership},
		{table: "cust", col: "rep_id", parent: "staff", pcol: "id", ownership: datamap.OwnershipRelationship},
		{table: "staff_note", col: "staff_id", parent: "staff", pcol: "id"},
		{table: "orders", col: "cust_id", parent: "cust", pcol: "id"},
		{table: "rental", col: "cust_id", parent: "cust", pcol: "id"},
		{table: "payment", col: "cust_id", parent: "cust", pcol: "id"},
		{table: "payment", col: "rental_id", parent: "rental", pcol: "id"},
	}
	parent = "orders"
	for _, t := range chainTables[:depth] {
		w.refs = append(w.refs, genRef{table: t, col: "parent_id", parent: parent, pcol: "id"})
		parent = t
	}
	chain := slices.Clone(chainTables[:depth])
	slices.Reverse(chain)
	w.tables = append(chain, "payment", "orders", "rental", "addr", "staff_note", "cust", "staff")
	return w
}

// ddl creates the tables (every reference backed by a foreign key, NO
// ACTION) and inserts the rows.
func (w *genWorld) ddl() string {
	var b strings.Builder
	cols := map[string]string{
		"addr":       "",
		"staff":      ", email text, address_id int REFERENCES addr",
		"cust":       ", email text, address_id int REFERENCES addr, rep_id int REFERENCES staff",
		"staff_note": ", staff_id int REFERENCES staff",
		"orders":     ", cust_id int REFERENCES cust",
		"rental":     ", cust_id int REFERENCES cust",
		"payment":    ", cust_id int REFERENCES cust, rental_id int REFERENCES rental",
		"c1":         ", parent_id int REFERENCES orders",
		"c2":         ", parent_id int REFERENCES c1",
		"c3":         ", parent_id int REFERENCES c2",
	}
	for _, t := range w.createOrder() {
		fmt.Fprintf(&b, "CREATE TABLE %s (id int PRIMARY KEY, data text%s);\n", t, cols[t])
	}
	b.WriteString(w.inserts())
	return b.String()
}

// createOrder is the tables, each after those its foreign keys reference.
func (w *genWorld) createOrder() []string {
	out := []string{"addr", "staff", "cust", "staff_note", "orders", "rental", "payment"}
	for _, t := range chainTables {
		if slices.Contains(w.tables, t) {
			out = append(out, t)
		}
	}
	return out
}

func (w *genWorld) columns(t string) []string {
	out := []string{"id", "data"}
	if t == "staff" || t == "cust" {
		out = append(out, "email")
	}
	for _, r := range w.refs {
		if r.table == t && !r.up {
			out = append(out, r.col)
		}
	}
	if t == "staff" || t == "cust" {
		out = append(out, "address_id")
	}
	return out
}

func (w *genWorld) inserts() string {
	var b strings.Builder
	for _, t := range w.createOrder() {
		cols := w.columns(t)
		for _, r := range w.rows[t] {
			vals := []string{fmt.Sprint(r.id), fmt.Sprintf("'%s #%d'", t, r.id)}
			for _, c := range cols[2:] {
				switch {
				case c == "email":
					vals = append(vals, "'"+r.email+"'")
				case r.refs[c] == 0:
					vals = append(vals, "NULL")
				default:
					vals = append(vals, fmt.Sprint(r.refs[c]))
				}
			}
			fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES (%s);\n", t, strings.Join(cols, ", "), strings.Join(vals, ", "))
		}
	}
	return b.String()
}

func (w *genWorld) dataMap() *datamap.Map {
	ds := map[string]datamap.Dataset{}
	for _, t := range w.tables {
		d := datamap.Dataset{Table: t, Fields: map[string]datamap.Field{}}
		for _, c := range w.columns(t) {
			d.Fields[c] = datamap.Field{Category: "user"}
		}
		if t == "staff" || t == "cust" {
			d.Identities = []datamap.Identity{{Field: "email", Type: "email"}}
		}
		for _, r := range w.refs {
			if r.table == t {
				d.References = append(d.References, datamap.Reference{Field: r.col, To: "g." + r.parent + "." + r.pcol, Ownership: r.ownership})
			}
		}
		ds[t] = d
	}
	return &datamap.Map{Version: 1, Systems: map[string]datamap.System{"g": {
		Kind: datamap.KindPostgres, Connector: datamap.ConnectorPostgres, Datasets: ds}}}
}

// owned is what the person with email owns, table -> ids, by the rules of
// DESIGN.md applied to the generated rows.
func (w *genWorld) owned(email string) map[string]map[int]bool {
	own := map[string]map[int]bool{}
	for _, t := range w.tables {
		own[t] = map[int]bool{}
	}
	for _, t := range []string{"staff", "cust"} {
		for _, r := range w.rows[t] {
			if r.email == email {
				own[t][r.id] = true
			}
		}
	}
	// Children, parents first (the reverse of the erasure order); a
	// child's every set ownership reference must lead to a row of theirs.
	for _, t := range slices.Backward(w.tables) {
		var mine []genRef
		for _, r := range w.refs {
			if r.table == t && !r.up && r.ownership != datamap.OwnershipRelationship && r.ownership != datamap.OwnershipShared {
				mine = append(mine, r)
			}
		}
		if len(mine) == 0 {
			continue
		}
		for _, row := range w.rows[t] {
			reached, other := false, false
			for _, r := range mine {
				v := row.refs[r.col]
				switch {
				case v == 0:
				case own[r.parent][v]:
					reached = true
				default:
					other = true
				}
			}
			if reached && !other {
				own[t][row.id] = true
			}
		}
	}
	// An address is theirs when the map says owns, one of their customer
	// rows references it, and no other row (staff, another customer) does.
	if w.refs[0].ownership == datamap.OwnershipOwns {
		for _, a := range w.rows["addr"] {
			mine, others := false, false
			for _, c := range w.rows["cust"] {
				if c.refs["address_id"] == a.id {
					if own["cust"][c.id] {
						mine = true
					} else {
						others = true
					}
				}
			}
			for _, s := range w.rows["staff"] {
				others = others || s.refs["address_id"] == a.id
			}
			if mine && !others {
				own["addr"][a.id] = true
			}
		}
	}
	return own
}

// withheld counts, per table, rows reached along a reference from a row
// A owns that A does not own: what the connector's review reports.
func (w *genWorld) withheld(own map[string]map[int]bool) map[string]int {
	out := map[string]int{}
	for _, r := range w.refs {
		for _, row := range w.rows[r.table] {
			if own[r.table][row.id] {
				continue
			}
			if r.up {
				for _, p := range w.rows[r.parent] {
					if own[r.parent][p.id] && p.refs[r.pcol] == row.id {
						out[r.table]++
						break
					}
				}
			} else if v := row.refs[r.col]; v != 0 && own[r.parent][v] {
				out[r.table]++
			}
		}
	}
	return out
}

func TestOwnershipProperty(t *testing.T) {
	ctx := context.Background()
	url, pool := newDB(t, "g", "SELECT 1")
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { checkOwnership(t, ctx, url, pool, seed) })
	}
}

// FuzzOwnership runs the property for any seed (go test -fuzz
// FuzzOwnership); without -fuzz it runs the seed corpus only.
func FuzzOwnership(f *testing.F) {
	f.Add(uint64(21))
	ctx := context.Background()
	url, pool := newDB(f, "g", "SELECT 1")
	f.Fuzz(func(t *testing.T, seed uint64) { checkOwnership(t, ctx, url, pool, seed) })
}

func checkOwnership(t *testing.T, ctx context.Context, url string, pool *pgxpool.Pool, seed uint64) {
	w := genOwnership(seed)
	if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS g CASCADE; CREATE SCHEMA g; SET search_path TO g;"+w.ddl()+"; RESET search_path"); err != nil {
		t.Fatalf("seed %d: schema: %v", seed, err)
	}
	reset := func() {
		t.Helper()
		if _, err := pool.Exec(ctx, "TRUNCATE g."+strings.Join(w.tables, ", g.")+"; SET search_path TO g;"+w.inserts()+"; RESET search_path"); err != nil {
			t.Fatalf("seed %d: reset: %v", seed, err)
		}
	}
	c := newConnector(t, postgres.Config{System: "g", DSN: url, Schema: "g", DataMap: staticMap(w.dataMap())})
	snap := func() map[string]map[int]string {
		out := map[string]map[int]string{}
		for _, tb := range w.tables {
			out[tb] = map[int]string{}
			rows, err := pool.Query(ctx, fmt.Sprintf("SELECT id, t::text FROM g.%s AS t", tb))
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var id int
				var s string
				if err := rows.Scan(&id, &s); err != nil {
					t.Fatal(err)
				}
				out[tb][id] = s
			}
			if rows.Err() != nil {
				t.Fatal(rows.Err())
			}
		}
		return out
	}
	owned := map[string]map[string]map[int]bool{}
	for _, e := range w.emails {
		owned[e] = w.owned(e)
	}
	fields := func(tb string) []connectors.FieldPlan { return plan(connectors.ActionDelete, w.columns(tb)...) }
	target := func(e, tb string) connectors.Target {
		return connectors.Target{System: "g", Dataset: tb, Identities: []connectors.Identity{id("email", e)}, RequestID: "r", IdempotencyKey: "k"}
	}
	for _, a := range w.emails {
		// Access: exactly A's rows, so nothing only another person has.
		withheld := w.withheld(owned[a])
		for _, tb := range w.tables {
			sink := &keySink{}
			res, err := c.Access(ctx, connectors.AccessParams{Target: target(a, tb), Fields: plan(connectors.ActionInclude, w.columns(tb)...)}, sink)
			if err != nil {
				t.Fatalf("seed %d: access %s %s: %v", seed, a, tb, err)
			}
			var want []string
			for _, r := range w.rows[tb] {
				if owned[a][tb][r.id] {
					want = append(want, fmt.Sprint(r.id))
				}
			}
			if !slices.Equal(sink.keys, want) {
				t.Fatalf("seed %d: %s's %s: exported %v, owns %v\nschema:\n%s", seed, a, tb, sink.keys, want, w.ddl())
			}
			for _, b := range w.emails {
				for _, k := range sink.keys {
					var id int
					fmt.Sscan(k, &id)
					if b != a && owned[b][tb][id] {
						t.Fatalf("seed %d: %s's export of %s holds %s's row %d", seed, a, tb, b, id)
					}
				}
			}
			n := 0
			for _, rv := range res.Review {
				n += rv.Records
				if rv.Dataset != tb || rv.Holders < 0 {
					t.Fatalf("seed %d: %s review %+v", seed, tb, rv)
				}
			}
			if n != withheld[tb] {
				t.Fatalf("seed %d: %s's %s: review counts %d record(s), want %d: %+v", seed, a, tb, n, withheld[tb], res.Review)
			}
		}
		// Erasure, children first: no row A does not own changes.
		before := snap()
		for _, tb := range w.tables {
			if _, err := c.Erase(ctx, connectors.EraseParams{Target: target(a, tb), Fields: fields(tb)}); err != nil {
				t.Fatalf("seed %d: erase %s %s: %v", seed, a, tb, err)
			}
		}
		after := snap()
		for _, tb := range w.tables {
			for id, row := range before[tb] {
				if owned[a][tb][id] {
					if got, ok := after[tb][id]; ok && strings.Contains(got, tb+" #") {
						t.Errorf("seed %d: erasing %s left %s row %d as it was: %s", seed, a, tb, id, got)
					}
					continue
				}
				if after[tb][id] != row {
					t.Fatalf("seed %d: erasing %s changed %s row %d (not theirs): %s -> %q\nschema:\n%s", seed, a, tb, id, row, after[tb][id], w.ddl())
				}
			}
		}
		reset()
	}
}

type keySink struct{ keys []string }

func (s *keySink) Record(_ context.Context, r connectors.Record) error {
	s.keys = append(s.keys, r.Key)
	return nil
}

func (s *keySink) File(context.Context, connectors.File, io.Reader) error { return nil }
