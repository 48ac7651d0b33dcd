package dsar

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/datamap"
)

// Erase order.
//
// An erasure in a relational database must go children first: erasing the
// users row while sessions still point at it is refused (RESTRICT / NO
// ACTION), or cascades into rows another task should have counted or that
// must be retained, and a careful connector keeps the parent row as a
// tombstone instead. So an automated erase task of dataset D waits for the
// erase task of dataset C of the same system when
//
//   - C has a data-map reference to D ("to: system.D.field": C's rows point
//     at D's), or
//   - the system's connector implements connectors.EraseOrderer and
//     EraseAfter(system, D) lists C (it read the live schema's foreign keys).
//
// A dataset of the system with no erase task in the plan (every field
// retained) still links its neighbours: when C points at B and B at D, D
// waits for C. Self-references are no dependency (the connector deletes a
// subject's own rows together). Other operations never wait: access,
// rectification and restriction change no keys.
//
// Cycles (users.last_payment_id -> payments, payments.user_id -> users) are
// broken deterministically: edges are added in (waiting dataset, awaited
// dataset) name order, and an edge that would close a cycle is skipped, so
// the first edges in that order win. A broken edge costs no data, only
// tidiness: the connector keeps a still-referenced row as a tombstone rather
// than delete it by cascading.

// orderErasure fills in After for the plan's automated erase tasks.
func orderErasure(dm *datamap.Map, reg connectors.Registry, tasks []PlannedTask) {
	bySystem := map[string]map[string]int{} // system -> dataset -> task index
	for i, t := range tasks {
		if t.Operation != OpErase || t.Mode != ModeAutomated || t.Dataset == "" {
			continue
		}
		if bySystem[t.System] == nil {
			bySystem[t.System] = map[string]int{}
		}
		bySystem[t.System][t.Dataset] = i
	}
	for _, sid := range sortedKeys(bySystem) {
		planned := bySystem[sid]
		g := waitGraph{}
		for _, e := range taskEdges(eraseBefore(sid, dm.Systems[sid], reg[sid]), planned) {
			if e.waiter == e.awaited || g.waitsFor(e.awaited, e.waiter) {
				continue
			}
			g.add(e.waiter, e.awaited)
		}
		for d, i := range planned {
			tasks[i].After = nil
			for c := range g[d] {
				tasks[i].After = append(tasks[i].After, planned[c]+1) // seq is the index + 1 (storePlan)
			}
			sort.Ints(tasks[i].After)
		}
	}
}

// eraseBefore returns, for every dataset of the system, the datasets whose
// erasure must come first, from the data map's references and the
// connector's EraseAfter; names outside the system's data map are ignored
// (the engine plans no task for them).
func eraseBefore(sid string, sys datamap.System, conn connectors.Connector) map[string]map[string]bool {
	before := map[string]map[string]bool{}
	add := func(d, c string) {
		if _, ok := sys.Datasets[c]; !ok || c == d {
			return
		}
		if before[d] == nil {
			before[d] = map[string]bool{}
		}
		before[d][c] = true
	}
	for _, c := range sortedKeys(sys.Datasets) {
		for _, ref := range sys.Datasets[c].References {
			if d, ok := referencedDataset(sid, ref.To); ok {
				if _, known := sys.Datasets[d]; known {
					add(d, c)
				}
			}
		}
	}
	if o, ok := conn.(connectors.EraseOrderer); ok {
		for _, d := range sortedKeys(sys.Datasets) {
			for _, c := range o.EraseAfter(sid, d) {
				add(d, c)
			}
		}
	}
	return before
}

// referencedDataset parses "system.dataset.field" and returns the dataset
// when the system is sid.
func referencedDataset(sid, to string) (string, bool) {
	parts := strings.SplitN(to, ".", 3)
	if len(parts) != 3 || parts[0] != sid {
		return "", false
	}
	return parts[1], true
}

type edge struct{ waiter, awaited string }

// taskEdges turns dataset order into task order: each planned dataset waits
// for the nearest planned datasets before it, looking through datasets the
// plan has no task for. Edges come sorted, for deterministic cycle
// breaking.
func taskEdges(before map[string]map[string]bool, planned map[string]int) []edge {
	var out []edge
	for _, d := range sortedKeys(planned) {
		seen := map[string]bool{d: true}
		queue := sortedKeys(before[d])
		for len(queue) > 0 {
			c := queue[0]
			queue = queue[1:]
			if seen[c] {
				continue
			}
			seen[c] = true
			if _, ok := planned[c]; ok {
				out = append(out, edge{waiter: d, awaited: c})
				continue
			}
			queue = append(queue, sortedKeys(before[c])...)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].waiter != out[j].waiter {
			return out[i].waiter < out[j].waiter
		}
		return out[i].awaited < out[j].awaited
	})
	return out
}

// waitGraph maps a dataset to the datasets it waits for.
type waitGraph map[string]map[string]bool

func (g waitGraph) add(waiter, awaited string) {
	if g[waiter] == nil {
		g[waiter] = map[string]bool{}
	}
	g[waiter][awaited] = true
}

// waitsFor says whether from waits, directly or transitively, for to.
func (g waitGraph) waitsFor(from, to string) bool {
	seen := map[string]bool{}
	stack := []string{from}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if x == to {
			return true
		}
		if seen[x] {
			continue
		}
		seen[x] = true
		for y := range g[x] {
			stack = append(stack, y)
		}
	}
	return false
}

// readyFilter narrows enqueueReady to the tasks an event may have released.
type readyFilter struct {
	dependentsOf int    // only tasks waiting for this seq (0: any)
	taskID       string // only this task ("": any)
}

// enqueueReady queues the request's pending automated tasks (as narrowed by
// f) whose every predecessor has succeeded; a blocked task stays pending
// until its last predecessor's finishTask releases it. Callers hold the
// request's row lock, so two predecessors ending at once release a task
// once: the second to commit is the one that sees both succeeded.
func (s *Service) enqueueReady(ctx context.Context, tx pgx.Tx, requestID string, f readyFilter) error {
	rows, err := tx.Query(ctx, `
		SELECT t.id::text, t.run FROM privacy_request_tasks t
		WHERE t.request_id = $1 AND t.mode = 'automated' AND t.status = 'pending'
		  AND ($2::integer = 0 OR $2::integer = ANY (t.after))
		  AND ($3::text = '' OR t.id::text = $3::text)
		  AND NOT EXISTS (
		      SELECT 1 FROM privacy_request_tasks p
		      WHERE p.request_id = t.request_id AND p.seq = ANY (t.after) AND p.status <> 'succeeded')
		ORDER BY t.seq`, requestID, f.dependentsOf, f.taskID)
	if err != nil {
		return fmt.Errorf("dsar: list ready tasks: %w", err)
	}
	var jobs []river.InsertManyParams
	for rows.Next() {
		a := TaskArgs{RequestID: requestID}
		if err := rows.Scan(&a.TaskID, &a.Run); err != nil {
			rows.Close()
			return fmt.Errorf("dsar: list ready tasks: %w", err)
		}
		jobs = append(jobs, river.InsertManyParams{Args: a})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("dsar: list ready tasks: %w", err)
	}
	if len(jobs) == 0 {
		return nil
	}
	if _, err := s.Jobs.InsertManyTx(ctx, tx, jobs); err != nil {
		return fmt.Errorf("dsar: queue tasks: %w", err)
	}
	return nil
}
