package dsar

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/connectors"
)

// oldTask is a task of the plan a re-plan replaces.
type oldTask struct {
	id, system, dataset, op, mode, status string
	seq                                   int
	fields                                []byte
	result                                []byte
}

func taskKey(system, dataset string) string { return system + "\x00" + dataset }

func taskLabel(system, dataset string) string {
	if dataset == "" {
		return system
	}
	return system + "/" + dataset
}

// mergePlan stores a re-planned request's next plan revision over the
// tasks of the one before (see Service.Replan), matching tasks by system
// and dataset:
//
//   - kept: the old task succeeded with the same operation, mode and
//     fields, and running it again would add nothing: it is not an access
//     task (what the person receives must come from one consistent
//     search), not an automated erasure that did not verify its result,
//     and the request knows no identity it did not know when the old plan
//     was made. It keeps its result and is not run again.
//   - run again: any other old task the new plan also has (failed, pending,
//     or succeeded under other fields) takes the new plan's operation,
//     fields and order, and is pending under a new run number (a job of the
//     old run finds nothing to do). What it disclosed before is dropped.
//   - added: a task of the new plan for a system and dataset the old plan
//     did not have.
//   - dropped: an old task the new plan does not have goes, unless it
//     succeeded in changing something (an erasure, a correction, a
//     restriction): that one stays, done, as the record of what was done.
//
// Every connector operation is idempotent, so running an erasure again
// over rows the first run already changed changes nothing more there and
// finishes the rest. The caller holds the request's row lock.
func (s *Service) mergePlan(ctx context.Context, tx pgx.Tx, r *Request, prev, p Plan) error {
	rows, err := tx.Query(ctx, `
		SELECT id::text, seq, system, dataset, operation, mode, status, fields, result
		FROM privacy_request_tasks WHERE request_id = $1 ORDER BY seq FOR UPDATE`, r.ID)
	if err != nil {
		return fmt.Errorf("dsar: load tasks: %w", err)
	}
	old := map[string]*oldTask{}
	var order []*oldTask
	base := 1
	for rows.Next() {
		var o oldTask
		if err := rows.Scan(&o.id, &o.seq, &o.system, &o.dataset, &o.op, &o.mode, &o.status, &o.fields, &o.result); err != nil {
			rows.Close()
			return fmt.Errorf("dsar: load tasks: %w", err)
		}
		old[taskKey(o.system, o.dataset)] = &o
		order = append(order, &o)
		base = max(base, o.seq+1)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("dsar: load tasks: %w", err)
	}
	// More identities than the old plan had: what succeeded searched by
	// fewer, so everything runs again.
	grew := prev.IdentityCount == 0 || p.IdentityCount > prev.IdentityCount
	inPlan := map[string]bool{}
	seqs := make([]int, len(p.Tasks))
	keep := make([]bool, len(p.Tasks))
	for j, t := range p.Tasks {
		k := taskKey(t.System, t.Dataset)
		inPlan[k] = true
		o := old[k]
		keep[j] = o != nil && !grew && reusable(*o, t)
		if keep[j] {
			seqs[j] = o.seq
		} else {
			seqs[j] = base + j // above every old seq: no clash while renumbering
		}
	}
	kept, rerun, added, dropped, stays := []string{}, []string{}, []string{}, []string{}, []string{}
	for _, o := range order {
		if inPlan[taskKey(o.system, o.dataset)] {
			continue
		}
		if o.status == TaskSucceeded && o.op != OpAccess {
			stays = append(stays, taskLabel(o.system, o.dataset))
			continue
		}
		if err := s.dropDisclosed(ctx, tx, r.ID, o.id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM privacy_request_tasks WHERE id = $1`, o.id); err != nil {
			return fmt.Errorf("dsar: drop task: %w", err)
		}
		dropped = append(dropped, taskLabel(o.system, o.dataset)+" ("+o.status+")")
	}
	for j, t := range p.Tasks {
		label := taskLabel(t.System, t.Dataset)
		after := make([]int, 0, len(t.After))
		for _, a := range t.After {
			after = append(after, seqs[a-1])
		}
		o := old[taskKey(t.System, t.Dataset)]
		switch {
		case keep[j]:
			kept = append(kept, label)
		case o != nil:
			if err := s.dropDisclosed(ctx, tx, r.ID, o.id); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `
				UPDATE privacy_request_tasks SET seq = $2, operation = $3, mode = $4, fields = $5, instructions = NULLIF($6, ''),
				       after = $7, status = 'pending', run = run + 1, attempts = 0, result = NULL, error = NULL,
				       completed_by = NULL, note = NULL, started_at = NULL, finished_at = NULL,
				       review_acknowledged_at = NULL, review_acknowledged_by = NULL, review_note = NULL
				WHERE id = $1`, o.id, seqs[j], t.Operation, t.Mode, t.Fields, t.Instructions, after); err != nil {
				return fmt.Errorf("dsar: replace task: %w", err)
			}
			rerun = append(rerun, label+" (was "+o.status+")")
		default:
			if err := s.insertTask(ctx, tx, r.ID, seqs[j], t, after); err != nil {
				return err
			}
			added = append(added, label)
		}
	}
	if err := s.recordPlan(ctx, tx, r, p); err != nil {
		return err
	}
	var by, why string
	err = tx.QueryRow(ctx, `
		SELECT actor, coalesce(note, '') FROM privacy_request_events
		WHERE request_id = $1 AND event = $2 ORDER BY id DESC LIMIT 1`, r.ID, string(Replan)).Scan(&by, &why)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("dsar: find the re-plan: %w", err)
	}
	return s.event(ctx, tx, r.ID, "replanned", "", "", actorSystem, why, map[string]any{
		"requested_by":         by,
		"from_plan_revision":   max(prev.Revision, 1),
		"plan_revision":        p.Revision,
		"from_policy_revision": prev.PolicyRevision,
		"policy_revision":      p.PolicyRevision,
		"identities_grew":      grew,
		"kept_tasks":           kept,
		"rerun_tasks":          rerun,
		"added_tasks":          added,
		"dropped_tasks":        dropped,
		"done_outside_plan":    stays,
	})
}

// reusable reports whether an old task that succeeded stands for the new
// plan's task t (see mergePlan).
func reusable(o oldTask, t PlannedTask) bool {
	if o.status != TaskSucceeded || o.op != t.Operation || o.mode != t.Mode || o.op == OpAccess {
		return false
	}
	want, err := json.Marshal(t.Fields)
	if err != nil {
		return false
	}
	var had []connectors.FieldPlan
	if json.Unmarshal(o.fields, &had) != nil {
		return false
	}
	got, err := json.Marshal(had)
	if err != nil || !bytes.Equal(got, want) {
		return false
	}
	if o.op == OpErase && o.mode == ModeAutomated {
		var res connectors.EraseResult
		if json.Unmarshal(o.result, &res) != nil || !res.Verified {
			return false
		}
	}
	return true
}

// dropDisclosed deletes what a task disclosed (records and files).
func (s *Service) dropDisclosed(ctx context.Context, tx pgx.Tx, requestID, taskID string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM privacy_request_records WHERE task_id = $1`, taskID); err != nil {
		return fmt.Errorf("dsar: drop records: %w", err)
	}
	return s.clearFiles(ctx, tx, requestID, taskID)
}
