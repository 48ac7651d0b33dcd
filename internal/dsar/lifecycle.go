// Package dsar runs privacy requests (data-subject access requests and their
// kin: export, erasure, rectification, restriction, objection) from intake
// to completion. This file is the lifecycle: an explicit state machine, so a
// request can only move along a legal transition and can never sit in a
// state nobody can leave.
package dsar

import (
	"fmt"
	"sort"
	"strings"

	"github.com/steward-privacy/steward/internal/apperr"
)

// Status is where a request is in its lifecycle.
type Status string

// The statuses.
const (
	Received         Status = "received"
	IdentityPending  Status = "identity_pending"
	Verified         Status = "verified"
	AwaitingApproval Status = "awaiting_approval"
	Approved         Status = "approved"
	InProgress       Status = "in_progress"
	Completed        Status = "completed"
	Denied           Status = "denied"
	Canceled         Status = "canceled"
	Failed           Status = "failed"
	Paused           Status = "paused"
)

// Final reports whether nothing can happen to a request any more. Failed is
// not final: staff can retry it.
func (s Status) Final() bool { return s == Completed || s == Denied || s == Canceled }

// Event is something that moves a request.
type Event string

// The events.
const (
	AskVerification Event = "ask_verification" // a code was sent; waiting for the person
	Verify          Event = "verify"           // identity proven (code, Telegram, staff, agent confirmation)
	RequireApproval Event = "require_approval" // policy says a reviewer must approve
	Approve         Event = "approve"          // a reviewer approved, or policy needs no approval
	Start           Event = "start"            // tasks were queued
	Complete        Event = "complete"         // every task ended well
	Fail            Event = "fail"             // a task failed permanently
	Retry           Event = "retry"            // staff retried a failed request
	Deny            Event = "deny"             // refused, with a reason
	Cancel          Event = "cancel"           // withdrawn by the person or staff
	Pause           Event = "pause"            // held by staff (e.g. awaiting information)
	Resume          Event = "resume"           // back to where it was paused
	Replan          Event = "replan"           // staff plan again: with corrected or added identities, or after the data map was fixed
)

type transition struct {
	from []Status
	to   Status // "" for Resume: back to the status before the pause
}

// transitions is the whole lifecycle; everything not listed is illegal.
var transitions = map[Event]transition{
	AskVerification: {from: []Status{Received}, to: IdentityPending},
	Verify:          {from: []Status{Received, IdentityPending}, to: Verified},
	RequireApproval: {from: []Status{Verified}, to: AwaitingApproval},
	Approve:         {from: []Status{Verified, AwaitingApproval}, to: Approved},
	Start:           {from: []Status{Approved}, to: InProgress},
	Complete:        {from: []Status{InProgress}, to: Completed},
	Fail:            {from: []Status{InProgress}, to: Failed},
	Retry:           {from: []Status{Failed}, to: InProgress},
	Deny:            {from: []Status{Received, IdentityPending, Verified, AwaitingApproval, Approved}, to: Denied},
	Cancel:          {from: []Status{Received, IdentityPending, Verified, AwaitingApproval, Approved, InProgress, Failed, Paused}, to: Canceled},
	Pause:           {from: []Status{IdentityPending, Verified, AwaitingApproval, Approved, InProgress, Failed}, to: Paused},
	Resume:          {from: []Status{Paused}},
	Replan:          {from: []Status{InProgress, Failed, Paused}, to: Verified},
}

// Next returns the status event leads to from current. pausedFrom is the
// status a paused request returns to on Resume. An illegal move is a
// conflict error a person can read ("cannot approve a request that is
// denied"), and changes nothing.
func Next(current Status, ev Event, pausedFrom Status) (Status, error) {
	t, ok := transitions[ev]
	if !ok {
		return current, apperr.Invalidf("unknown event %q", ev)
	}
	for _, f := range t.from {
		if f != current {
			continue
		}
		if ev == Resume {
			if pausedFrom == "" || pausedFrom == Paused || pausedFrom.Final() {
				return current, apperr.New(apperr.Conflict, "cannot resume: the status before the pause is unknown")
			}
			return pausedFrom, nil
		}
		return t.to, nil
	}
	return current, apperr.New(apperr.Conflict, "cannot %s a request that is %s", strings.ReplaceAll(string(ev), "_", " "), strings.ReplaceAll(string(current), "_", " "))
}

// Statuses lists every status in lifecycle order.
func Statuses() []Status {
	return []Status{Received, IdentityPending, Verified, AwaitingApproval, Approved, InProgress, Completed, Denied, Canceled, Failed, Paused}
}

// Mermaid renders the lifecycle as a mermaid state diagram, generated from
// the same table Next uses, so the diagram in docs/privacy-requests.md cannot drift from code.
// Resume goes back to the status before the pause: drawn as a choice node
// leading to every status a request can be paused from.
func Mermaid() string {
	var b strings.Builder
	b.WriteString("stateDiagram-v2\n    state resumed <<choice>>\n    [*] --> received\n")
	events := make([]string, 0, len(transitions))
	for ev := range transitions {
		events = append(events, string(ev))
	}
	sort.Strings(events)
	for _, s := range Statuses() {
		for _, ev := range events {
			t := transitions[Event(ev)]
			for _, f := range t.from {
				if f != s {
					continue
				}
				to := string(t.to)
				if Event(ev) == Resume {
					to = "resumed"
				}
				fmt.Fprintf(&b, "    %s --> %s: %s\n", f, to, ev)
			}
		}
	}
	for _, s := range transitions[Pause].from {
		fmt.Fprintf(&b, "    resumed --> %s\n", s)
	}
	for _, s := range Statuses() {
		if s.Final() {
			fmt.Fprintf(&b, "    %s --> [*]\n", s)
		}
	}
	return b.String()
}
