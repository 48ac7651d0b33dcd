package dsar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/apperr"
)

// Report is the account of what a request did, per system: what was
// deleted, masked and kept (and why), what each system said it keeps
// beyond our reach, what staff did by hand — the erasure proof a
// compliance officer hands to a regulator or the person. It holds no
// personal data: counts, field names, bases and staff notes.
type Report struct {
	RequestID      string         `json:"request_id"`
	Type           string         `json:"type"`
	Status         Status         `json:"status"`
	Regime         string         `json:"regime"`
	ReceivedAt     time.Time      `json:"received_at"`
	CompletedAt    *time.Time     `json:"completed_at,omitempty"`
	PolicyRevision string         `json:"policy_revision"`
	Systems        []SystemReport `json:"systems"`
	// Unreached are systems of the data map no identity of the person
	// reaches: not searched, and why the report is silent on them.
	Unreached []string `json:"unreached"`
	// Complete is true when every task succeeded (or was canceled with the
	// request) and every automated erasure verified its result.
	Complete bool `json:"complete"`
	// Verified is the stricter claim: the request completed, it had tasks,
	// every one of them succeeded (none failed, none is pending, none was
	// canceled or otherwise skipped), and every automated erasure re-read
	// its result. Never true while any task failed.
	Verified bool `json:"verified"`
	// ReviewRecords counts the records the request reached but left alone
	// because they are not the person's alone (other people's data is in
	// them): not disclosed, not erased, for staff to review. They do not
	// make the request incomplete: the person's own data was handled.
	// ReviewOpen counts the review items staff have not acknowledged yet.
	ReviewRecords int `json:"review_records"`
	ReviewOpen    int `json:"review_open"`
}

// SystemReport is one system's part of a request.
type SystemReport struct {
	System   string           `json:"system"`
	Deleted  int              `json:"deleted"`
	Masked   int              `json:"masked"`
	Records  int              `json:"records,omitempty"` // disclosed, for access
	Files    int              `json:"files,omitempty"`
	Retained []ReportRetained `json:"retained"`
	Notes    []string         `json:"notes,omitempty"`
	Datasets []DatasetReport  `json:"datasets"`
	// ReviewRecords counts the records left for staff review.
	ReviewRecords int `json:"review_records,omitempty"`
}

// ReportRetained is a field kept, with its basis.
type ReportRetained struct {
	Dataset string `json:"dataset"`
	connectors.Retained
}

// DatasetReport is one task's outcome.
type DatasetReport struct {
	Dataset     string `json:"dataset,omitempty"`
	Operation   string `json:"operation"`
	Mode        string `json:"mode"`
	Status      string `json:"status"`
	Deleted     int    `json:"deleted"`
	Masked      int    `json:"masked"`
	Records     int    `json:"records,omitempty"`
	Files       int    `json:"files,omitempty"`
	Verified    bool   `json:"verified"`
	CompletedBy string `json:"completed_by,omitempty"`
	StaffNote   string `json:"staff_note,omitempty"`
	// Review is what the task left for staff review (counts only);
	// ReviewAcknowledgedBy and ReviewNote say who looked at it and what
	// they decided.
	Review               []connectors.Review `json:"review,omitempty"`
	ReviewAcknowledgedBy string              `json:"review_acknowledged_by,omitempty"`
	ReviewNote           string              `json:"review_note,omitempty"`
}

// taskResult is the union of the connector results a task may hold.
type taskResult struct {
	connectors.EraseResult
	Records int `json:"records"`
	Files   int `json:"files"`
}

// Report builds the request's report from its tasks.
func (s *Service) Report(ctx context.Context, id string) (Report, error) {
	d, err := s.Get(ctx, id)
	if err != nil {
		return Report{}, err
	}
	rep := Report{RequestID: d.ID, Type: d.Type, Status: d.Status, Regime: d.Regime, ReceivedAt: d.ReceivedAt,
		CompletedAt: d.CompletedAt, Unreached: []string{}, Complete: d.Status == Completed}
	if d.Plan != nil {
		rep.PolicyRevision = d.Plan.PolicyRevision
		rep.Unreached = append(rep.Unreached, d.Plan.Unreached...)
	}
	rep.Verified = rep.Complete && len(d.Tasks) > 0
	bySystem := map[string]*SystemReport{}
	for _, t := range d.Tasks {
		sr := bySystem[t.System]
		if sr == nil {
			sr = &SystemReport{System: t.System, Retained: []ReportRetained{}, Datasets: []DatasetReport{}}
			bySystem[t.System] = sr
		}
		var res taskResult
		if len(t.Result) > 0 {
			_ = json.Unmarshal(t.Result, &res) // a result is what the connector returned; absent fields are zero
		}
		dr := DatasetReport{Dataset: t.Dataset, Operation: t.Operation, Mode: t.Mode, Status: t.Status,
			Deleted: res.Deleted, Masked: res.Masked, Records: res.Records, Files: res.Files, Verified: res.Verified,
			CompletedBy: t.CompletedBy, StaffNote: t.Note,
			Review: t.Review, ReviewAcknowledgedBy: t.ReviewAcknowledgedBy, ReviewNote: t.ReviewNote}
		if n := reviewCount(t.Review); n > 0 {
			sr.ReviewRecords += n
			rep.ReviewRecords += n
			if t.ReviewAcknowledgedAt == nil {
				rep.ReviewOpen += len(t.Review)
			}
		}
		if t.Operation == OpErase && t.Mode == ModeAutomated && t.Status == TaskSucceeded && !res.Verified {
			rep.Complete = false
		}
		if t.Status != TaskSucceeded && t.Status != TaskCanceled {
			rep.Complete = false
		}
		if t.Status != TaskSucceeded || (t.Operation == OpErase && t.Mode == ModeAutomated && !res.Verified) {
			rep.Verified = false
		}
		sr.Deleted += res.Deleted
		sr.Masked += res.Masked
		sr.Records += res.Records
		sr.Files += res.Files
		for _, r := range res.Retained {
			sr.Retained = append(sr.Retained, ReportRetained{Dataset: t.Dataset, Retained: r})
		}
		if res.Note != "" && !slices.Contains(sr.Notes, res.Note) {
			sr.Notes = append(sr.Notes, res.Note)
		}
		sr.Datasets = append(sr.Datasets, dr)
	}
	rep.Verified = rep.Verified && rep.Complete
	for _, sys := range slices.Sorted(maps.Keys(bySystem)) {
		rep.Systems = append(rep.Systems, *bySystem[sys])
	}
	if rep.Systems == nil {
		rep.Systems = []SystemReport{}
	}
	return rep, nil
}

// PriorRetained returns what the subject's latest completed erasure kept,
// with basis and until: an access request after an erasure tells the person
// what remains and why (GDPR Art. 15 with Art. 17(3)). Empty when the
// subject has no completed erasure.
func (s *Service) PriorRetained(ctx context.Context, requestID string) ([]RetainedItem, error) {
	if !ValidID(requestID) {
		return nil, apperr.New(apperr.NotFound, "no such request")
	}
	var plan []byte
	err := s.Pool.QueryRow(ctx, `
		SELECT e.plan FROM privacy_requests e
		JOIN privacy_requests r ON r.subject_id = e.subject_id
		WHERE r.id = $1 AND e.type = 'erasure' AND e.status = 'completed' AND e.plan IS NOT NULL
		ORDER BY e.completed_at DESC NULLS LAST LIMIT 1`, requestID).Scan(&plan)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dsar: prior erasure: %w", err)
	}
	var p Plan
	if err := json.Unmarshal(plan, &p); err != nil {
		return nil, fmt.Errorf("dsar: decode plan: %w", err)
	}
	return p.Retained, nil
}
