package dsar

import (
	"reflect"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/datamap"
)

// fakeOrderer declares erase order as a database connector reading foreign
// keys would; its other methods are never called here.
type fakeOrderer struct {
	connectors.Connector
	after map[string][]string // dataset -> datasets erased before it
}

func (f fakeOrderer) EraseAfter(system, dataset string) []string {
	if system != "db" {
		return nil
	}
	return f.after[dataset]
}

func refs(to ...string) []datamap.Reference {
	out := make([]datamap.Reference, 0, len(to))
	for _, t := range to {
		out = append(out, datamap.Reference{Field: "ref", To: t})
	}
	return out
}

// orderMap is one system "db" whose datasets cover every case: a parent
// with children, a grandchild, a self-reference, a child reached only
// through a dataset the plan has no task for, a two-dataset cycle and a
// reference into another system.
var orderMap = &datamap.Map{Systems: map[string]datamap.System{
	"db": {Datasets: map[string]datamap.Dataset{
		"users":    {References: refs("db.users.referred_by")}, // self: no dependency
		"sessions": {References: refs("db.users.id")},
		"jobs":     {References: refs("db.users.id", "other.things.id")},
		"assets":   {References: refs("db.jobs.id")},
		"kept":     {References: refs("db.users.id")}, // every field retained: no task
		"leaf":     {References: refs("db.kept.id")},
		"a":        {References: refs("db.b.id")},
		"b":        {References: refs("db.a.id")},
	}},
	"other": {Datasets: map[string]datamap.Dataset{"things": {}}},
}}

func erasePlan(op string, datasets ...string) []PlannedTask {
	var out []PlannedTask
	for _, d := range datasets {
		out = append(out, PlannedTask{System: "db", Dataset: d, Operation: op, Mode: ModeAutomated})
	}
	return append(out, PlannedTask{System: "other", Operation: op, Mode: ModeManual})
}

func afterByDataset(tasks []PlannedTask) map[string][]int {
	out := map[string][]int{}
	for _, t := range tasks {
		if len(t.After) > 0 {
			out[t.System+"."+t.Dataset] = t.After
		}
	}
	return out
}

func TestOrderErasure(t *testing.T) {
	t.Parallel()
	// Seq numbers: a 1, assets 2, b 3, jobs 4, leaf 5, sessions 6, users 7.
	datasets := []string{"a", "assets", "b", "jobs", "leaf", "sessions", "users"}
	orderer := fakeOrderer{after: map[string][]string{
		// Honoured, unknown names and the dataset itself ignored.
		"sessions": {"assets", "no_such_table", "sessions"},
	}}
	for _, c := range []struct {
		name string
		conn connectors.Connector
		want map[string][]int
	}{
		{"data map only", nil, map[string][]int{
			"db.users": {4, 5, 6}, // jobs, leaf (through kept), sessions
			"db.jobs":  {2},       // assets
			"db.a":     {3},       // (a waits for b) sorts first; (b waits for a) would close the cycle
		}},
		{"with the connector's order", orderer, map[string][]int{
			"db.users":    {4, 5, 6},
			"db.jobs":     {2},
			"db.a":        {3},
			"db.sessions": {2},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for range 3 { // map order must not matter
				tasks := erasePlan(OpErase, datasets...)
				orderErasure(orderMap, connectors.Registry{"db": c.conn}, tasks)
				if got := afterByDataset(tasks); !reflect.DeepEqual(got, c.want) {
					t.Fatalf("after %v, want %v", got, c.want)
				}
			}
		})
	}
	t.Run("only erasure waits", func(t *testing.T) {
		for _, op := range []string{OpAccess, OpRectify, OpRestrict} {
			tasks := erasePlan(op, datasets...)
			orderErasure(orderMap, connectors.Registry{"db": orderer}, tasks)
			if got := afterByDataset(tasks); len(got) != 0 {
				t.Errorf("%s tasks wait: %v", op, got)
			}
		}
	})
}

// A longer cycle is broken too, and every task can still run: the order is
// a DAG.
func TestOrderErasureBreaksLongCycles(t *testing.T) {
	t.Parallel()
	dm := &datamap.Map{Systems: map[string]datamap.System{"db": {Datasets: map[string]datamap.Dataset{
		"x": {References: refs("db.y.id")},
		"y": {References: refs("db.z.id")},
		"z": {References: refs("db.x.id")},
	}}}}
	tasks := erasePlan(OpErase, "x", "y", "z")
	orderErasure(dm, nil, tasks)
	// Edges in order: (x waits z), (y waits x), (z waits y) closes the cycle.
	want := map[string][]int{"db.x": {3}, "db.y": {1}}
	if got := afterByDataset(tasks); !reflect.DeepEqual(got, want) {
		t.Fatalf("after %v, want %v", got, want)
	}
}
