package postgres_test

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/testutil"
)

// partitionDDL (testdata/partitions.sql) has a partitioned payments table whose foreign key to
// customers is declared on each partition, not on the table; an
// inheritance parent whose children each declare theirs; a quoted
// mixed-case table and columns; a partitioned table whose key is declared
// on one partition only; a view and a materialized view.
//
// Rows are laid out so that the same ctid holds different people's rows in
// different partitions (and in the inheritance parent's children): Ann's
// payments are (0,1) in payments_2023 and (0,3) in payments_2024, where Bob
// and Cat have (0,1) in payments_2024 and (0,3) in payments_2023. A
// statement that picked rows by ctid alone would touch theirs.
var partitionDDL = func() string {
	b, err := os.ReadFile("testdata/partitions.sql")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// TestPartitionsEndToEnd: the scan drafts the partitioned payments table
// with its reference to customers (declared on the partitions), the
// inheritance parent with its children's reference, the quoted mixed-case
// table under a dataset id of its own, and leaves out partitions, children
// and views with a note; the connector starts on that draft, discloses the
// person's payments, erases them (masking, then deleting) without a
// foreign-key violation or touching anyone else's rows, and verifies.
func TestPartitionsEndToEnd(t *testing.T) {
	ctx := context.Background()
	url, pool := newDB(t, "shop", partitionDDL)

	cat, err := postgres.ReadCatalog(ctx, url, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(cat.Tables)); !slices.Equal(got, []string{"CustomerNotes", "audit", "customers", "events", "events_2023", "events_2024", "payments"}) {
		t.Errorf("catalog tables %v: partitions are not tables", got)
	}
	pay := cat.Tables["payments"]
	if !pay.Partitioned || !slices.Equal(pay.Partitions, []string{"payments_2023", "payments_2024"}) {
		t.Errorf("payments: partitioned %v, partitions %v", pay.Partitioned, pay.Partitions)
	}
	if len(pay.ForeignKeys) != 1 || !pay.ForeignKeys[0].OnPartitions || pay.ForeignKeys[0].RefTable != "customers" || pay.ForeignKeys[0].OnDelete != postgres.OnDeleteNoAction {
		t.Errorf("payments foreign keys %+v", pay.ForeignKeys)
	}
	if ev := cat.Tables["events"]; len(ev.ForeignKeys) != 1 || !ev.ForeignKeys[0].OnPartitions || !slices.Equal(ev.Children, []string{"events_2023", "events_2024"}) {
		t.Errorf("events: foreign keys %+v, children %v", ev.ForeignKeys, ev.Children)
	}
	if fks := cat.Tables["audit"].ForeignKeys; len(fks) != 0 {
		t.Errorf("audit: a key declared on one partition of two was attributed: %+v", fks)
	}
	// ... but it still keeps the customers it references.
	if !slices.ContainsFunc(cat.Tables["customers"].Incoming, func(fk *postgres.ForeignKey) bool { return fk.Table == "audit" }) {
		t.Errorf("customers' incoming keys lack audit's: %+v", cat.Tables["customers"].Incoming)
	}
	if want := map[string]string{"customer_totals": "view", "MonthlyTotals": "materialized view"}; !maps.Equal(cat.Skipped, want) {
		t.Errorf("skipped %v, want %v", cat.Skipped, want)
	}

	draft, err := postgres.Scan(cat, postgres.ScanOptions{System: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"#   MonthlyTotals (materialized view)\n#   customer_totals (view)\n",
		"- {field: customer_id, to: shop.customers.id}  # review: foreign key payments_2023_customer_fkey (and its like on every partition or child) to customers(id)",
		"# review: a partitioned table: its partitions (payments_2023, payments_2024) are not datasets of their own",
		"# review: inheritance children events_2023, events_2024 are not drafted as datasets",
		"customer_notes:  # review: the table's name is not a dataset id",
		"table: CustomerNotes",
		"- {field: customerId, to: shop.customers.id}",
		"audit:  # review: no identity or reference reaches this table",
		"compared case-insensitively: lower(email), served by index customers_lower_idx",
	} {
		if !strings.Contains(string(draft), want) {
			t.Errorf("draft lacks %q:\n%s", want, draft)
		}
	}
	var dm datamap.Map
	if err := yaml.Unmarshal(draft, &dm); err != nil {
		t.Fatal(err)
	}
	sys := dm.Systems["shop"]
	for _, did := range []string{"payments_2023", "events_2023", "customer_totals", "MonthlyTotals", "CustomerNotes"} {
		if _, ok := sys.Datasets[did]; ok {
			t.Errorf("the draft has a dataset %s", did)
		}
	}
	if sys.Datasets["customer_notes"].Timestamp != "createdAt" {
		t.Errorf("customer_notes timestamp %q", sys.Datasets["customer_notes"].Timestamp)
	}

	// The connector starts on the draft: every reference is backed.
	c := newConnector(t, postgres.Config{System: "shop", DSN: url, Schema: "shop", DataMap: staticMap(&dm)})
	ann := []connectors.Identity{id("email", "ann@example.com")}
	fieldsOf := func(did string) []string { return slices.Sorted(maps.Keys(sys.Datasets[did].Fields)) }
	access := func(did string, ids []connectors.Identity) []connectors.Record {
		t.Helper()
		sink := &recordSink{}
		if _, err := c.Access(ctx, connectors.AccessParams{Target: connectors.Target{System: "shop", Dataset: did, Identities: ids},
			Fields: plan(connectors.ActionInclude, fieldsOf(did)...)}, sink); err != nil {
			t.Fatalf("access %s: %v", did, err)
		}
		return sink.records
	}
	keys := func(recs []connectors.Record) []string {
		var out []string
		for _, r := range recs {
			out = append(out, r.Key)
		}
		return out
	}
	if got := keys(access("payments", ann)); !slices.Equal(got, []string{"1/2023-03-01", "6/2024-05-01"}) {
		t.Errorf("Ann's payments: %v", got)
	}
	if got := keys(access("events", ann)); !slices.Equal(got, []string{"1", "4"}) {
		t.Errorf("Ann's events (in the inheritance children): %v", got)
	}
	notes := access("customer_notes", ann)
	if len(notes) != 1 || notes[0].Key != "1" {
		t.Fatalf("Ann's notes: %+v", notes)
	}
	for _, f := range notes[0].Fields {
		if f.Field == "noteText" && f.Value != "likes tea" {
			t.Errorf("noteText = %v", f.Value)
		}
	}
	if after := c.EraseAfter("shop", "customers"); !slices.Contains(after, "payments") || !slices.Contains(after, "events") || !slices.Contains(after, "customer_notes") {
		t.Errorf("EraseAfter(customers) = %v: the partitions' and children's keys order the erasure", after)
	}

	others := func() string {
		return snapshot(t, pool, `SELECT tableoid::regclass::text, * FROM shop.payments WHERE customer_id <> 1 ORDER BY id`) +
			snapshot(t, pool, `SELECT tableoid::regclass::text, id, customer_id, what FROM shop.events WHERE customer_id <> 1 ORDER BY id`) +
			snapshot(t, pool, `SELECT * FROM shop."CustomerNotes" WHERE "customerId" <> 1`) +
			snapshot(t, pool, `SELECT * FROM shop.customers WHERE id <> 1`)
	}
	before := others()
	erase := func(did string, fields []connectors.FieldPlan, ids []connectors.Identity) connectors.EraseResult {
		t.Helper()
		res, err := c.Erase(ctx, connectors.EraseParams{Target: connectors.Target{System: "shop", Dataset: did, Identities: ids}, Fields: fields})
		if err != nil || !res.Verified {
			t.Fatalf("erase %s: %+v, %v", did, res, err)
		}
		return res
	}
	// Ann: payments are kept for accounting with the note erased; events
	// and notes go; her customer row, still referenced by the payments,
	// stays as a tombstone.
	payPlan := []connectors.FieldPlan{
		{Field: "id", Category: "user", Action: connectors.ActionRetain, Basis: "accounting"},
		{Field: "customer_id", Category: "user", Action: connectors.ActionRetain, Basis: "accounting"},
		{Field: "amount", Category: "user", Action: connectors.ActionRetain, Basis: "accounting"},
		{Field: "paid_on", Category: "user", Action: connectors.ActionRetain, Basis: "accounting"},
		{Field: "note", Category: "user", Action: connectors.ActionDelete},
	}
	if res := erase("payments", payPlan, ann); res.Masked != 2 {
		t.Errorf("payments: %+v, want 2 rows masked", res)
	}
	if res := erase("events", plan(connectors.ActionDelete, fieldsOf("events")...), ann); res.Deleted != 2 {
		t.Errorf("events: %+v, want 2 rows deleted", res)
	}
	if res := erase("customer_notes", plan(connectors.ActionDelete, fieldsOf("customer_notes")...), ann); res.Deleted != 1 {
		t.Errorf("customer_notes: %+v, want 1 row deleted", res)
	}
	// Kept as a tombstone: its personal fields erased (once the address is
	// gone the verification pass no longer finds it by that identity).
	if res := erase("customers", plan(connectors.ActionDelete, fieldsOf("customers")...), ann); res.Deleted != 0 || res.Masked != 1 {
		t.Errorf("customers: %+v, want a tombstone", res)
	}
	if n := count(t, pool, "SELECT count(*) FROM shop.payments WHERE customer_id = 1 AND note IS NULL"); n != 2 {
		t.Errorf("Ann's payments with the note erased: %d, want 2", n)
	}
	if after := others(); after != before {
		t.Errorf("other people's rows changed:\nbefore %s\nafter  %s", before, after)
	}

	// Cat: everything deleted, payments first (the engine's order), then
	// the customer row, once nothing references it: while an audit row on
	// the one partition that declares a key does, it is a tombstone, not a
	// foreign-key violation.
	// (user:3 as identity resolution finds it: the draft takes customers
	// for an account table, its key for an account id.)
	catID := []connectors.Identity{id("email", "cat@example.com"), id("user", "3")}
	if found, err := c.ResolveIdentities(ctx, catID[:1]); err != nil || !slices.Contains(found, catID[1]) {
		t.Fatalf("ResolveIdentities(cat) = %v, %v", found, err)
	}
	before = snapshot(t, pool, `SELECT tableoid::regclass::text, * FROM shop.payments WHERE customer_id = 2 ORDER BY id`)
	if res := erase("payments", plan(connectors.ActionDelete, fieldsOf("payments")...), catID); res.Deleted != 2 {
		t.Errorf("Cat's payments: %+v, want 2 deleted", res)
	}
	if res := erase("customers", plan(connectors.ActionDelete, fieldsOf("customers")...), catID); res.Deleted != 0 || res.Masked != 1 {
		t.Errorf("Cat's customer row, referenced by audit_login: %+v, want a tombstone", res)
	}
	if _, err := pool.Exec(ctx, "DELETE FROM shop.audit WHERE customer_id = 3"); err != nil {
		t.Fatal(err)
	}
	if res := erase("customers", plan(connectors.ActionDelete, fieldsOf("customers")...), catID); res.Deleted != 1 {
		t.Errorf("Cat's customer row: %+v, want deleted", res)
	}
	if after := snapshot(t, pool, `SELECT tableoid::regclass::text, * FROM shop.payments WHERE customer_id = 2 ORDER BY id`); after != before {
		t.Errorf("Bob's payments changed:\nbefore %s\nafter  %s", before, after)
	}
	if n := count(t, pool, "SELECT count(*) FROM shop.customers WHERE id = 3"); n != 0 {
		t.Error("Cat's customer row is still there")
	}
}

// recordSink keeps what Access streams.
type recordSink struct {
	countingSink
	records []connectors.Record
}

func (s *recordSink) Record(ctx context.Context, r connectors.Record) error {
	s.records = append(s.records, r)
	return nil
}

// TestInheritanceOverlapWarning: mapping an inheritance parent and one of
// its children reaches the child's rows twice; the connector says so at
// start.
func TestInheritanceOverlapWarning(t *testing.T) {
	url, _ := newDB(t, "shop", partitionDDL)
	f := map[string]datamap.Field{"id": {Category: "user"}, "customer_id": {Category: "user"}}
	dm := &datamap.Map{Version: 1, Systems: map[string]datamap.System{"shop": {Kind: datamap.KindPostgres, Connector: datamap.ConnectorPostgres,
		Datasets: map[string]datamap.Dataset{
			"customers":   {Table: "customers", Identities: []datamap.Identity{{Field: "id", Type: "user"}}, Fields: map[string]datamap.Field{"id": {Category: "user"}}},
			"events":      {Table: "events", References: []datamap.Reference{{Field: "customer_id", To: "shop.customers.id"}}, Fields: f},
			"late_events": {Table: "events_2024", References: []datamap.Reference{{Field: "customer_id", To: "shop.customers.id"}}, Fields: f},
		}}}}
	var buf testutil.SyncBuffer
	newConnector(t, postgres.Config{System: "shop", DSN: url, Schema: "shop", DataMap: staticMap(dm), Log: slog.New(slog.NewTextHandler(&buf, nil))})
	if want := "datasets.late_events: table events_2024 inherits from events (dataset events)"; !strings.Contains(buf.String(), want) {
		t.Errorf("start logs lack %q:\n%s", want, buf.String())
	}
}
