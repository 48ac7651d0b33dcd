package dsar

import (
	"strings"
	"testing"

	"github.com/steward-privacy/steward/internal/apperr"
)

func TestLegalTransitions(t *testing.T) {
	t.Parallel()
	cases := []struct {
		from Status
		ev   Event
		to   Status
	}{
		{Received, AskVerification, IdentityPending},
		{IdentityPending, Verify, Verified},
		{Received, Verify, Verified}, // identity asserted at intake (Telegram initData, staff)
		{Verified, RequireApproval, AwaitingApproval},
		{AwaitingApproval, Approve, Approved},
		{Verified, Approve, Approved}, // policy needs no approval
		{Approved, Start, InProgress},
		{InProgress, Complete, Completed},
		{InProgress, Fail, Failed},
		{Failed, Retry, InProgress},
		{AwaitingApproval, Deny, Denied},
		{IdentityPending, Cancel, Canceled},
		{InProgress, Pause, Paused},
		{Paused, Replan, Verified},     // staff search again with corrected identities
		{Failed, Replan, Verified},     // staff plan a failed request again after the map was fixed
		{InProgress, Replan, Verified}, // ... or one with a failed task (the engine checks there is one)
	}
	for _, tc := range cases {
		got, err := Next(tc.from, tc.ev, "")
		if err != nil || got != tc.to {
			t.Errorf("%s --%s--> got %s, %v; want %s", tc.from, tc.ev, got, err, tc.to)
		}
	}
}

func TestIllegalTransitionsAreConflictsAndChangeNothing(t *testing.T) {
	t.Parallel()
	legal := map[Status]map[Event]bool{}
	for ev, tr := range transitions {
		for _, f := range tr.from {
			if legal[f] == nil {
				legal[f] = map[Event]bool{}
			}
			legal[f][ev] = true
		}
	}
	refused := 0
	for _, s := range Statuses() {
		for ev := range transitions {
			if legal[s][ev] {
				continue
			}
			got, err := Next(s, ev, Verified)
			if err == nil || got != s || apperr.CodeOf(err) != apperr.Conflict {
				t.Errorf("%s --%s--> %s, %v: want a conflict and no change", s, ev, got, err)
			}
			refused++
		}
	}
	if refused < 60 {
		t.Fatalf("only %d illegal pairs checked", refused)
	}
	_, err := Next(Denied, Approve, "")
	if err == nil || err.(*apperr.Error).Message != "cannot approve a request that is denied" {
		t.Fatalf("message: %v", err)
	}
	if _, err := Next(Received, "teleport", ""); apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("unknown event: %v", err)
	}
}

func TestFinalStatesAcceptNothing(t *testing.T) {
	t.Parallel()
	for _, s := range Statuses() {
		if !s.Final() {
			continue
		}
		for ev := range transitions {
			if _, err := Next(s, ev, Verified); err == nil {
				t.Errorf("final %s accepted %s", s, ev)
			}
		}
	}
}

func TestPauseResumesWhereItWas(t *testing.T) {
	t.Parallel()
	for _, s := range transitions[Pause].from {
		p, err := Next(s, Pause, "")
		if err != nil || p != Paused {
			t.Fatalf("pause from %s: %v", s, err)
		}
		back, err := Next(p, Resume, s)
		if err != nil || back != s {
			t.Fatalf("resume to %s: %s %v", s, back, err)
		}
	}
	if _, err := Next(Paused, Resume, ""); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("resume without a previous status: %v", err)
	}
}

// TestNoStuckStates: from every non-final status some sequence of events
// reaches a final one, so no request can be stuck by construction.
func TestNoStuckStates(t *testing.T) {
	t.Parallel()
	for _, start := range Statuses() {
		if start.Final() {
			continue
		}
		seen := map[Status]bool{start: true}
		queue := []Status{start}
		final := false
		for len(queue) > 0 && !final {
			s := queue[0]
			queue = queue[1:]
			for ev := range transitions {
				n, err := Next(s, ev, Verified)
				if err != nil || seen[n] {
					continue
				}
				final = final || n.Final()
				seen[n] = true
				queue = append(queue, n)
			}
		}
		if !final {
			t.Errorf("%s cannot reach a final status", start)
		}
	}
}

func TestMermaidCoversEveryTransition(t *testing.T) {
	t.Parallel()
	m := Mermaid()
	for ev, tr := range transitions {
		for _, f := range tr.from {
			if !strings.Contains(m, string(f)+" --> ") || !strings.Contains(m, ": "+string(ev)) {
				t.Errorf("diagram lacks %s --%s-->", f, ev)
			}
		}
	}
	if !strings.HasPrefix(m, "stateDiagram-v2") {
		t.Fatal(m)
	}
}
