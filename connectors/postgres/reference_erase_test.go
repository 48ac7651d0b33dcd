package postgres_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/refapp"
	"github.com/steward-privacy/steward/policies"
)

// referencePeople is how many people of each product the end-to-end test
// generates and erases one after another: 40 + 40 take about 6 s (10 s
// with -race) on two shared cores.
const referencePeople = 40

// policyTask is one dataset's task of a request, with the fields the
// reference policy decides for it.
type policyTask struct {
	dataset string
	fields  []connectors.FieldPlan
}

// policyTasks is what the engine plans for a request of requestType
// (GDPR) on system sid, as internal/dsar's BuildPlan does it: the datasets
// the identity kinds reach, each field decided by policies/dsar.rego; for
// an erasure only datasets with something to delete or mask, ordered
// children first (data-map references and the connector's EraseAfter, as
// internal/dsar/order.go orders them).
func policyTasks(t testing.TB, e *policy.Engine, c *postgres.Connector, sid, requestType string, kinds []string) []policyTask {
	t.Helper()
	return mapTasks(t, e, e.DataMap, c, sid, requestType, kinds)
}

// mapTasks is policyTasks for a data map of the test's own (the corpus
// schemas' maps), decided by e's policies.
func mapTasks(t testing.TB, e *policy.Engine, dm *datamap.Map, c *postgres.Connector, sid, requestType string, kinds []string) []policyTask {
	t.Helper()
	sys := dm.Systems[sid]
	reach := dm.ReachableFrom(kinds)
	tasks := map[string]policyTask{}
	for _, did := range slices.Sorted(maps.Keys(sys.Datasets)) {
		if _, ok := reach[sid+"."+did]; !ok {
			continue
		}
		ds := sys.Datasets[did]
		ids := map[string]string{}
		for _, id := range ds.Identities {
			ids[id.Field] = id.Type
		}
		var fields []connectors.FieldPlan
		work := false
		for _, f := range slices.Sorted(maps.Keys(ds.Fields)) {
			fd := ds.Fields[f]
			d, err := e.DecideDSAR(context.Background(), policy.DSARInput{RequestType: requestType, Regime: "gdpr", Field: policy.DSARField{
				System: sid, Dataset: did, Field: f, Category: fd.Category, Retention: ds.Retention, Purpose: ds.Purpose, Identity: ids[f]}})
			if err != nil {
				t.Fatal(err)
			}
			fields = append(fields, connectors.FieldPlan{Field: f, Category: fd.Category, Action: d.Action, Strategy: d.Strategy,
				Value: d.Value, Basis: d.Basis, Until: d.Until})
			work = work || d.Action == connectors.ActionDelete || d.Action == connectors.ActionMask
		}
		if requestType == "erasure" && !work {
			continue
		}
		tasks[did] = policyTask{dataset: did, fields: fields}
	}
	// Children first: a dataset waits for the datasets that reference it.
	before := map[string][]string{}
	for _, did := range slices.Sorted(maps.Keys(sys.Datasets)) {
		for _, ref := range sys.Datasets[did].References {
			parts := strings.SplitN(ref.To, ".", 3)
			if len(parts) == 3 && parts[0] == sid && parts[1] != did {
				before[parts[1]] = append(before[parts[1]], did)
			}
		}
		for _, child := range c.EraseAfter(sid, did) {
			if child != did {
				before[did] = append(before[did], child)
			}
		}
	}
	var out []policyTask
	done := map[string]bool{}
	var visit func(did string, path map[string]bool)
	visit = func(did string, path map[string]bool) {
		if done[did] || path[did] {
			return // done, or a cycle: the connector keeps a tombstone
		}
		path[did] = true
		for _, child := range slices.Sorted(slices.Values(before[did])) {
			visit(child, path)
		}
		delete(path, did)
		done[did] = true
		if task, ok := tasks[did]; ok {
			out = append(out, task)
		}
	}
	for _, did := range slices.Sorted(maps.Keys(sys.Datasets)) {
		visit(did, map[string]bool{})
	}
	return out
}

// TestReferenceErasure erases every generated person of both reference
// products, one after another, with the plans the reference policy makes
// (issue 16: every bot erasure failed on tg_users.language's CHECK). Each
// person is accessed first and has records; each erasure succeeds on its
// first run and verifies; a second run finds nothing to do; afterwards no
// identity column holds any of the person's identities unless the plan
// retains the field or the column is the key a kept record still needs
// (the tombstone of users and tg_users, which other kept rows reference);
// and a kept account row holds the schema's neutral values.
func TestReferenceErasure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ref := newReference(t, referencePeople)
	e, err := policy.Load(ctx, policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	products := []struct {
		system, schema string
		people         []refapp.Person
		known          func(refapp.Person) []connectors.Identity
		// account is the person's account row, checked after the erasure
		// when it is kept: column -> value (as text); "kh:" for a keyed hash.
		account     string
		accountWant map[string]string
	}{
		{"app_db", "app", ref.web, func(p refapp.Person) []connectors.Identity { return []connectors.Identity{id("email", p.Email)} },
			"SELECT language, role, banned::text, email_verified::text, left(email, 3), left(name, 3) FROM app.users WHERE id = $1",
			map[string]string{"language": "en", "role": "user", "banned": "false", "email_verified": "false", "left": "kh:"}},
		{"bot_db", "bot", ref.bot, func(p refapp.Person) []connectors.Identity {
			return []connectors.Identity{id("tg", strconv.FormatInt(p.TelegramID, 10))}
		}, "SELECT language, credits_balance::text, is_blocked::text, left(first_name, 3), coalesce(username, 'NULL'), coalesce(last_name, 'NULL') FROM bot.tg_users WHERE tg_id::text = $1",
			map[string]string{"language": "en", "credits_balance": "0", "is_blocked": "false", "left": "kh:", "coalesce": "NULL"}},
	}
	for _, prod := range products {
		t.Run(prod.system, func(t *testing.T) {
			c := ref.connector(t, prod.system, prod.schema, nil)
			kinds := []string{prod.known(prod.people[0])[0].Type}
			access := policyTasks(t, e, c, prod.system, "access", kinds)
			erase := policyTasks(t, e, c, prod.system, "erasure", kinds)
			kept := map[string]int{}
			tombstones := 0
			for _, p := range prod.people {
				ids := prod.known(p)
				linked, err := c.ResolveIdentities(ctx, ids)
				if err != nil {
					t.Fatalf("person %d: ResolveIdentities: %v", p.Index, err)
				}
				ids = append(ids, linked...)
				records := 0
				for _, task := range access {
					sink := &connectortest.MemorySink{}
					res, err := c.Access(ctx, connectors.AccessParams{Target: connectors.Target{System: prod.system, Dataset: task.dataset, Identities: ids}, Fields: task.fields}, sink)
					if err != nil {
						t.Fatalf("person %d: Access %s: %v", p.Index, task.dataset, err)
					}
					records += res.Records
				}
				if records == 0 {
					t.Errorf("person %d: Access found no records", p.Index)
				}
				for run := 1; run <= 2; run++ {
					for _, task := range erase {
						tg := connectors.Target{System: prod.system, Dataset: task.dataset, Identities: ids,
							RequestID: fmt.Sprintf("req-%d", p.Index), IdempotencyKey: fmt.Sprintf("req-%d-%s-%d", p.Index, task.dataset, run)}
						res, err := c.Erase(ctx, connectors.EraseParams{Target: tg, Fields: task.fields})
						if err != nil {
							t.Fatalf("person %d: Erase %s (run %d): %v", p.Index, task.dataset, run, err)
						}
						if !res.Verified {
							t.Errorf("person %d: Erase %s (run %d) not verified: %+v", p.Index, task.dataset, run, res)
						}
						if run == 2 && res.Deleted+res.Masked != 0 {
							t.Errorf("person %d: a second Erase %s deleted %d, masked %d; want nothing left to do", p.Index, task.dataset, res.Deleted, res.Masked)
						}
						for _, r := range res.Retained {
							if run == 1 && strings.HasPrefix(r.Basis, "kept: ") {
								kept[task.dataset+"."+r.Field+": "+r.Basis] += r.Records
							}
						}
					}
				}
				checkIdentitiesGone(t, ref, e.DataMap, prod.system, prod.schema, erase, p.Index, ids)
				key := p.UserID
				if prod.system == "bot_db" {
					key = strconv.FormatInt(p.TelegramID, 10)
				}
				if got := accountRow(t, ref, prod.account, key); got != nil {
					tombstones++
					for col, want := range prod.accountWant {
						if got[col] != want {
							t.Errorf("person %d: the kept account row has %s = %q, want %q", p.Index, col, got[col], want)
						}
					}
				}
			}
			if tombstones == 0 {
				t.Errorf("no account row was kept: the test no longer shows what an erasure writes into one")
			}
			for _, k := range slices.Sorted(maps.Keys(kept)) {
				t.Logf("%s (%d records)", k, kept[k])
			}
		})
	}
}

// accountRow runs sql for key and returns its one row by column name
// (repeated names keep the last), or nil when there is none.
func accountRow(t *testing.T, ref *reference, sql, key string) map[string]string {
	t.Helper()
	rows, err := ref.pool.Query(context.Background(), sql, key)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil
	}
	vals, err := rows.Values()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for i, fd := range rows.FieldDescriptions() {
		out[fd.Name] = fmt.Sprint(vals[i])
	}
	return out
}

// checkIdentitiesGone checks no identity column of the system holds one of
// the person's identities, except where the erasure plan retains the field
// or the column is a key that kept rows of other datasets still reference
// (a tombstone's key, such as tg_users.tg_id under the retained payments:
// the schema links them by the Telegram id itself).
func checkIdentitiesGone(t *testing.T, ref *reference, dm *datamap.Map, sid, schema string, erase []policyTask, person int, ids []connectors.Identity) {
	t.Helper()
	sys := dm.Systems[sid]
	referenced := map[string]bool{}
	for _, ds := range sys.Datasets {
		for _, r := range ds.References {
			referenced[r.To] = true
		}
	}
	retained := map[string]bool{}
	for _, task := range erase {
		for _, f := range task.fields {
			if f.Action == connectors.ActionRetain {
				retained[task.dataset+"."+f.Field] = true
			}
		}
	}
	for _, did := range slices.Sorted(maps.Keys(sys.Datasets)) {
		ds := sys.Datasets[did]
		for _, ident := range ds.Identities {
			if retained[did+"."+ident.Field] {
				continue
			}
			var vals []string
			for _, i := range ids {
				if i.Type == ident.Type {
					vals = append(vals, strings.ToLower(i.Value))
				}
			}
			if len(vals) == 0 {
				continue
			}
			n := 0
			q := fmt.Sprintf("SELECT count(*) FROM %s WHERE lower(%s::text) = ANY($1)",
				pgx.Identifier{schema, ds.Table}.Sanitize(), pgx.Identifier{ident.Field}.Sanitize())
			if err := ref.pool.QueryRow(context.Background(), q, vals).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				continue
			}
			if !referenced[sid+"."+did+"."+ident.Field] {
				t.Errorf("person %d: %s.%s still holds their %s identity in %d row(s)", person, did, ident.Field, ident.Type, n)
				continue
			}
			// The key of a kept record: kept rows must still reference it.
			refs := 0
			for _, cdid := range slices.Sorted(maps.Keys(sys.Datasets)) {
				cds := sys.Datasets[cdid]
				for _, r := range cds.References {
					if r.To != sid+"."+did+"."+ident.Field {
						continue
					}
					k := 0
					q := fmt.Sprintf("SELECT count(*) FROM %s WHERE lower(%s::text) = ANY($1)",
						pgx.Identifier{schema, cds.Table}.Sanitize(), pgx.Identifier{r.Field}.Sanitize())
					if err := ref.pool.QueryRow(context.Background(), q, vals).Scan(&k); err != nil {
						t.Fatal(err)
					}
					refs += k
				}
			}
			if refs == 0 {
				t.Errorf("person %d: %s.%s still holds their %s identity, and no kept row references it", person, did, ident.Field, ident.Type)
			}
		}
	}
}
