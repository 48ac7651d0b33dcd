package dsar

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/policy"
)

// PlanArgs is the durable job that resolves a verified request's identities
// and plans its tasks. Run is the request's plan_run: a staff retry bumps it,
// so a stale job finds nothing to do.
type PlanArgs struct {
	RequestID string `json:"request_id"`
	Run       int    `json:"run"`
}

// Kind is River's job kind.
func (PlanArgs) Kind() string { return "dsar.plan" }

// InsertOpts makes the job unique per (request, run).
func (PlanArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

func (s *Service) enqueuePlan(ctx context.Context, tx pgx.Tx, id string, run int) error {
	if run < 1 {
		run = 1
	}
	if _, err := s.Jobs.InsertTx(ctx, tx, PlanArgs{RequestID: id, Run: run}, nil); err != nil {
		return fmt.Errorf("dsar: queue planning: %w", err)
	}
	return nil
}

type planWorker struct {
	river.WorkerDefaults[PlanArgs]
	s *Service
}

func (w *planWorker) Work(ctx context.Context, job *river.Job[PlanArgs]) error {
	return w.s.plan(ctx, job.Args, job.Attempt >= job.MaxAttempts)
}

type foundIdentity struct {
	subj   identity.Subject
	source string
}

// identities opens every identity stored for the request.
func (s *Service) identities(ctx context.Context, q pgx.Tx, id string) ([]foundIdentity, error) {
	rows, err := q.Query(ctx, `SELECT kid, ciphertext, source FROM privacy_request_identities WHERE request_id = $1 ORDER BY source <> 'given', kind`, id)
	if err != nil {
		return nil, fmt.Errorf("dsar: load identities: %w", err)
	}
	type sealed struct {
		kid    string
		ct     []byte
		source string
	}
	var all []sealed
	for rows.Next() {
		var x sealed
		if err := rows.Scan(&x.kid, &x.ct, &x.source); err != nil {
			rows.Close()
			return nil, fmt.Errorf("dsar: load identities: %w", err)
		}
		all = append(all, x)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("dsar: load identities: %w", err)
	}
	out := make([]foundIdentity, 0, len(all))
	for _, x := range all {
		var raw string
		if err := s.open(id, "identity", x.kid, x.ct, &raw); err != nil {
			return nil, fmt.Errorf("dsar: open identity: %w", err)
		}
		subj, err := identity.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("dsar: stored identity does not parse: %w", err)
		}
		out = append(out, foundIdentity{subj: subj, source: x.source})
	}
	return out, nil
}

// resolve finds the identities linked to the known ones (see
// ResolveIdentities).
func (s *Service) resolve(ctx context.Context, known []foundIdentity) ([]foundIdentity, error) {
	subjects := make([]identity.Subject, len(known))
	for i, k := range known {
		subjects[i] = k.subj
	}
	linked, err := s.Connectors.Resolve(ctx, s.Log, subjects)
	if err != nil {
		return nil, err
	}
	found := make([]foundIdentity, len(linked))
	for i, l := range linked {
		found[i] = foundIdentity{subj: l.Subject, source: l.Source}
	}
	return found, nil
}

// plan resolves identities (outside any transaction: connectors may be
// slow), then stores the plan and moves the request on, in one transaction.
func (s *Service) plan(ctx context.Context, a PlanArgs, lastAttempt bool) error {
	var r Request
	var known []foundIdentity
	var changes map[string]string
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var err error
		r, err = s.lock(ctx, tx, a.RequestID)
		if err != nil {
			return err
		}
		if r.Status != Verified || r.planRun != a.Run || r.PlannedAt != nil {
			return errStale
		}
		if known, err = s.identities(ctx, tx, r.ID); err != nil {
			return err
		}
		d, err := s.details(ctx, tx, r.ID)
		changes = d.Changes
		return err
	})
	if errors.Is(err, errStale) || errors.Is(err, errNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	found, rerr := s.resolve(ctx, known)
	if rerr != nil {
		retry, after := connectors.Classify(rerr)
		if retry && !lastAttempt {
			if after > 0 {
				return river.JobSnooze(after)
			}
			return rerr
		}
		// Staff see why and can retry planning.
		return s.tx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE privacy_requests SET plan_error = $2, updated_at = $3 WHERE id = $1`, r.ID, truncate(rerr.Error(), 500), s.Clock.Now()); err != nil {
				return fmt.Errorf("dsar: record plan error: %w", err)
			}
			return s.event(ctx, tx, r.ID, "planning_failed", "", "", actorSystem, truncate(rerr.Error(), 500), nil)
		})
	}
	engine := s.Policies.Current()
	all := append(append([]foundIdentity(nil), known...), found...)
	kinds := make([]string, 0, len(all))
	distinct := map[string]bool{}
	for _, f := range all {
		kinds = append(kinds, f.subj.Kind())
		distinct[f.subj.String()] = true
	}
	return s.tx(ctx, func(tx pgx.Tx) error {
		cur, err := s.lock(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		if cur.Status != Verified || cur.planRun != a.Run || cur.PlannedAt != nil {
			return nil // paused, canceled or planned meanwhile
		}
		// An erasure keeps what a legal hold keeps (read in the plan's
		// transaction, so a hold placed before the plan is stored counts).
		var held HeldFunc
		usedHolds := map[string]bool{}
		if cur.Type == "erasure" {
			subjects := make([]identity.Subject, len(all))
			for i, f := range all {
				subjects[i] = f.subj
			}
			holds, err := s.legalHolds(ctx, tx, subjects)
			if err != nil {
				return err
			}
			held = heldFunc(holds, usedHolds)
		}
		p, err := BuildPlan(ctx, engine, r.Type, r.Regime, kinds, s.Connectors, changes, held)
		if err != nil {
			return err
		}
		p.IdentityCount = len(distinct)
		prev, err := s.storedPlan(ctx, tx, cur.ID)
		if err != nil {
			return err
		}
		p.Revision = 1
		if prev != nil {
			p.Revision = max(prev.Revision, 1) + 1
		}
		if len(usedHolds) > 0 {
			if err := s.event(ctx, tx, cur.ID, "legal_hold_applied", "", "", actorPolicy, "",
				map[string]any{"holds": slices.Sorted(maps.Keys(usedHolds))}); err != nil {
				return err
			}
		}
		for _, f := range found {
			if err := s.storeIdentity(ctx, tx, r.ID, f.subj, f.source); err != nil {
				return err
			}
		}
		if prev == nil {
			err = s.storePlan(ctx, tx, &cur, p)
		} else {
			err = s.mergePlan(ctx, tx, &cur, *prev, p)
		}
		if err != nil {
			return err
		}
		wf, err := engine.DecideWorkflow(cur.Type, cur.Channel)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE privacy_requests SET approval_required = $2, approval_rule = $3 WHERE id = $1`, cur.ID, wf.ApprovalRequired, wf.Rule); err != nil {
			return fmt.Errorf("dsar: record workflow: %w", err)
		}
		if wf.ApprovalRequired {
			return s.move(ctx, tx, &cur, RequireApproval, actorPolicy, "", map[string]any{"rule": wf.Rule})
		}
		if err := s.move(ctx, tx, &cur, Approve, actorPolicy, "", map[string]any{"rule": wf.Rule}); err != nil {
			return err
		}
		return s.start(ctx, tx, &cur)
	})
}

var errStale = errors.New("stale job")

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// details opens the sealed part of a request.
func (s *Service) details(ctx context.Context, tx pgx.Tx, id string) (details, error) {
	var kid *string
	var ct []byte
	var d details
	if err := tx.QueryRow(ctx, `SELECT details_kid, details_ct FROM privacy_requests WHERE id = $1`, id).Scan(&kid, &ct); err != nil {
		return d, fmt.Errorf("dsar: load details: %w", err)
	}
	if kid == nil {
		return d, nil
	}
	if err := s.open(id, "details", *kid, ct, &d); err != nil {
		return d, fmt.Errorf("dsar: open details: %w", err)
	}
	return d, nil
}

// storePlan writes the request's first plan and its tasks.
func (s *Service) storePlan(ctx context.Context, tx pgx.Tx, r *Request, p Plan) error {
	for i, t := range p.Tasks {
		if err := s.insertTask(ctx, tx, r.ID, i+1, t, t.After); err != nil {
			return err
		}
	}
	return s.recordPlan(ctx, tx, r, p)
}

func (s *Service) insertTask(ctx context.Context, tx pgx.Tx, requestID string, seq int, t PlannedTask, after []int) error {
	if _, err := tx.Exec(ctx, `
		INSERT INTO privacy_request_tasks (id, request_id, seq, system, dataset, operation, mode, fields, instructions, status, after)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULLIF($9, ''), 'pending', coalesce($10::integer[], '{}'))`,
		uuid.NewString(), requestID, seq, t.System, t.Dataset, t.Operation, t.Mode, t.Fields, t.Instructions, after); err != nil {
		return fmt.Errorf("dsar: store task: %w", err)
	}
	return nil
}

// recordPlan stores the plan itself and its timeline entry.
func (s *Service) recordPlan(ctx context.Context, tx pgx.Tx, r *Request, p Plan) error {
	now := s.Clock.Now()
	if _, err := tx.Exec(ctx, `UPDATE privacy_requests SET plan = $2, planned_at = $3, plan_error = NULL, updated_at = $3 WHERE id = $1`, r.ID, p, now); err != nil {
		return fmt.Errorf("dsar: store plan: %w", err)
	}
	r.PlannedAt = &now
	automated, manual := 0, 0
	for _, t := range p.Tasks {
		if t.Mode == ModeManual {
			manual++
		} else {
			automated++
		}
	}
	return s.event(ctx, tx, r.ID, "planned", "", "", actorSystem, "", map[string]any{
		"automated_tasks": automated, "manual_tasks": manual, "retained_fields": len(p.Retained),
		"identity_kinds": p.IdentityKinds, "policy_revision": p.PolicyRevision, "plan_revision": max(p.Revision, 1),
	})
}

// BuildPlan decides, from the data map and policies/dsar.rego, what a
// request does: for every dataset the subject's known identities reach, the
// decision for each field, grouped into one task per system and dataset
// (a connector's job) or one per system (staff's manual task, where no
// connector is configured or the connector lacks the operation). Erase
// tasks of one system are ordered children first (After; see order.go).
func BuildPlan(ctx context.Context, engine *policy.Engine, requestType, regime string, identityKinds []string, reg connectors.Registry, changes map[string]string, held HeldFunc) (Plan, error) {
	dm := engine.DataMap
	kinds := uniqueSorted(identityKinds)
	p := Plan{RequestType: requestType, Regime: regime, PolicyRevision: engine.Revision(), IdentityKinds: kinds,
		Tasks: []PlannedTask{}, Retained: []RetainedItem{}, Unreached: []string{}}
	reach := dm.ReachableFrom(kinds)
	for _, sid := range sortedKeys(dm.Systems) {
		sys := dm.Systems[sid]
		conn := reg[sid]
		var manual []PlannedTask
		reached := false
		for _, did := range sortedKeys(sys.Datasets) {
			path, ok := reach[sid+"."+did]
			if !ok {
				continue
			}
			reached = true
			ds := sys.Datasets[did]
			fields, retained, restricted, err := decideFields(ctx, engine, requestType, regime, sid, did, ds, held)
			if err != nil {
				return Plan{}, err
			}
			p.Retained = append(p.Retained, retained...)
			op, fields := operation(requestType, fields, restricted, changes)
			if op == "" {
				continue
			}
			t := PlannedTask{System: sid, Dataset: did, Operation: op, Mode: ModeAutomated, Fields: fields, ReachPath: path}
			if conn == nil || sys.Connector == datamap.ConnectorManual || !capable(conn.Capabilities(), op) {
				t.Mode = ModeManual
				manual = append(manual, t)
				continue
			}
			p.Tasks = append(p.Tasks, t)
		}
		if !reached {
			p.Unreached = append(p.Unreached, sid)
		}
		if len(manual) > 0 {
			p.Tasks = append(p.Tasks, manualTask(sid, sys, manual, conn != nil))
		}
	}
	orderErasure(dm, reg, p.Tasks)
	return p, nil
}

func capable(c connectors.Capabilities, op string) bool {
	switch op {
	case OpAccess:
		return c.Access
	case OpErase:
		return c.Erase
	case OpRectify:
		return c.Rectify
	case OpRestrict:
		return c.Restrict
	}
	return false
}

// decideFields asks dsar.rego about every field of a dataset.
func decideFields(ctx context.Context, engine *policy.Engine, requestType, regime, sid, did string, ds datamap.Dataset, held HeldFunc) ([]connectors.FieldPlan, []RetainedItem, bool, error) {
	ids := map[string]string{}
	for _, id := range ds.Identities {
		ids[id.Field] = id.Type
	}
	var fields []connectors.FieldPlan
	var retained []RetainedItem
	restricted := false
	for _, f := range sortedKeys(ds.Fields) {
		fd := ds.Fields[f]
		d, err := engine.DecideDSAR(ctx, policy.DSARInput{RequestType: requestType, Regime: regime, Field: policy.DSARField{
			System: sid, Dataset: did, Field: f, Category: fd.Category, Retention: ds.Retention, Purpose: ds.Purpose, Identity: ids[f],
		}})
		if err != nil {
			return nil, nil, false, err
		}
		if requestType == "erasure" && held != nil && (d.Action == connectors.ActionDelete || d.Action == connectors.ActionMask) {
			if basis, until, ok := held(sid, did, fd.Category); ok {
				d.Action, d.Strategy, d.Value, d.Basis, d.Until, d.Citation = connectors.ActionRetain, "", "", basis, until, "legal hold"
			}
		}
		fields = append(fields, connectors.FieldPlan{Field: f, Category: fd.Category, Action: d.Action, Strategy: d.Strategy, Value: d.Value, Basis: d.Basis, Until: d.Until})
		restricted = restricted || d.Restricted
		if requestType == "erasure" && (d.Action == connectors.ActionRetain || d.Action == connectors.ActionMask) {
			retained = append(retained, RetainedItem{System: sid, Dataset: did, Field: f, Category: fd.Category, Action: d.Action, Basis: d.Basis, Until: d.Until, Citation: d.Citation})
		}
	}
	return fields, retained, restricted, nil
}

// operation says what a dataset's task does for the request type, and
// which fields it covers; "" when there is nothing to do there.
func operation(requestType string, fields []connectors.FieldPlan, restricted bool, changes map[string]string) (string, []connectors.FieldPlan) {
	switch requestType {
	case "access", "export":
		return OpAccess, fields
	case "erasure":
		for _, f := range fields {
			if f.Action == connectors.ActionDelete || f.Action == connectors.ActionMask {
				return OpErase, fields
			}
		}
	case "rectification":
		var out []connectors.FieldPlan
		for _, f := range fields {
			if _, ok := changes[f.Category]; ok && f.Action == connectors.ActionRectify {
				out = append(out, f)
			}
		}
		if len(out) > 0 {
			return OpRectify, out
		}
	case "restriction", "objection":
		if restricted {
			return OpRestrict, fields
		}
	}
	return "", nil
}

// manualTask merges a system's datasets into one task for staff, with
// instructions they can follow in the vendor's console.
func manualTask(sid string, sys datamap.System, parts []PlannedTask, hasConnector bool) PlannedTask {
	var b strings.Builder
	verb := map[string]string{
		OpAccess:   "Export the person's records",
		OpErase:    "Erase the person's records as listed (delete, mask, or keep with the basis given)",
		OpRectify:  "Correct the listed fields to the values in the request",
		OpRestrict: "Mark the person's processing restricted (stop using the data except to store it)",
	}[parts[0].Operation]
	fmt.Fprintf(&b, "%s in %s (%s, processor: %s).", verb, sys.Name, sid, sys.Processor)
	if hasConnector {
		b.WriteString(" The configured connector cannot do this itself.")
	}
	b.WriteString(" Look the person up by the identities shown on the request (reveal them from the request page).")
	var fields []connectors.FieldPlan
	for _, t := range parts {
		fmt.Fprintf(&b, "\n- %s:", t.Dataset)
		for _, f := range t.Fields {
			fmt.Fprintf(&b, " %s (%s)", f.Field, f.Action)
			ff := f
			ff.Field = t.Dataset + "." + f.Field
			fields = append(fields, ff)
		}
	}
	b.WriteString("\nRecord what was done in the note when completing the task.")
	return PlannedTask{System: sid, Operation: parts[0].Operation, Mode: ModeManual, Fields: fields, Instructions: b.String()}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func uniqueSorted(in []string) []string {
	m := map[string]bool{}
	for _, s := range in {
		m[s] = true
	}
	return sortedKeys(m)
}
