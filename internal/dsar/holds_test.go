package dsar_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/dsar"
)

// An erasure keeps what a legal hold keeps: everything of a held subject,
// or the held dataset's records of anyone, retained with the legal-claims
// basis and said so in the plan and the timeline; the rest is erased.
func TestErasureUnderLegalHold(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{})
	ctx := context.Background()
	hold := func(scope string, cols map[string]any) string {
		t.Helper()
		id := uuid.NewString()
		if _, err := r.pool.Exec(ctx, `INSERT INTO legal_holds (id, scope, system, dataset, subject_kind, subject_hash, subject_kid, subject_ct,
				reason, created_by, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'case 12', 'system:test', now())`,
			id, scope, cols["system"], cols["dataset"], cols["kind"], cols["hash"], cols["kid"], cols["ct"]); err != nil {
			t.Fatal(err)
		}
		return id
	}
	// erased runs an erasure to the end, staff confirming the vendor
	// systems' manual tasks as they come.
	erased := func(tg string) dsar.Detail {
		t.Helper()
		id := r.approvedErasure(tg)
		for {
			d := r.wait(id, dsar.Completed, dsar.InProgress)
			if d.Status == dsar.Completed {
				return d
			}
			done := false
			for _, task := range d.Tasks {
				if task.Mode == dsar.ModeManual && task.Status == dsar.TaskPending {
					if _, err := r.svc.CompleteManualTask(ctx, id, task.ID, "key:reviewer", "asked the vendor to delete"); err != nil {
						t.Fatal(err)
					}
					done = true
				}
			}
			if !done {
				d = r.wait(id, dsar.Completed)
				return d
			}
		}
	}
	retainedBy := func(d dsar.Detail, dataset string) (held, other int) {
		for _, it := range d.Plan.Retained {
			if it.Dataset != dataset {
				continue
			}
			if strings.Contains(it.Basis, "legal hold") {
				held++
			} else {
				other++
			}
		}
		return held, other
	}
	erases := func(d dsar.Detail, dataset string) bool {
		return slices.ContainsFunc(d.Tasks, func(t dsar.Task) bool { return t.Dataset == dataset && t.Operation == "erase" })
	}

	// A held subject: nothing of theirs is erased.
	r.seedBotUser("900071")
	subj := identity.MustParse("tg:900071")
	hid := hold("subject", map[string]any{"kind": "tg", "hash": r.kr.Hash(subj), "kid": "k1", "ct": []byte{1}})
	d := erased("900071")
	for _, task := range d.Tasks {
		if task.Operation == "erase" && task.Mode == dsar.ModeAutomated {
			t.Errorf("held subject: task %s.%s still erases", task.System, task.Dataset)
		}
	}
	if held, _ := retainedBy(d, "tg_generations"); held == 0 {
		t.Errorf("held subject: generations not retained under the hold: %+v", d.Plan.Retained)
	}
	if _, _, ok := r.record("bot_db", "tg_generations", "900071-g1"); !ok {
		t.Error("held subject's generation was erased")
	}
	var details string
	if err := r.pool.QueryRow(ctx, `SELECT details::text FROM audit_pending WHERE action = 'privacy_request.legal_hold_applied' AND target_id = $1`, d.ID).Scan(&details); err != nil || !strings.Contains(details, hid) {
		t.Errorf("legal_hold_applied audit event: %q %v", details, err)
	}

	// A dataset hold: that dataset is kept, the rest of the person goes.
	r.seedBotUser("900072")
	hold("dataset", map[string]any{"system": "bot_db", "dataset": "tg_generations"})
	d = erased("900072")
	if erases(d, "tg_generations") || !erases(d, "tg_users") {
		t.Errorf("dataset hold: tasks %+v", d.Tasks)
	}
	if _, _, ok := r.record("bot_db", "tg_generations", "900072-g1"); !ok {
		t.Error("a held dataset's record was erased")
	}
	if _, _, ok := r.record("bot_db", "tg_users", "900072"); ok {
		t.Error("an unheld dataset's record survived the erasure")
	}

	// Lifted holds hold nothing.
	if _, err := r.pool.Exec(ctx, `UPDATE legal_holds SET lifted_at = now(), lifted_by = 'system:test'`); err != nil {
		t.Fatal(err)
	}
	r.seedBotUser("900073")
	if d = erased("900073"); !erases(d, "tg_generations") {
		t.Errorf("after the lift: tasks %+v", d.Tasks)
	}
}
