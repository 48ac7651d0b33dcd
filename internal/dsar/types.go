package dsar

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/steward-privacy/steward/connectors"
)

// Channels a request can arrive through.
const (
	ChannelWeb   = "web"   // the website: the person proves control of their email with a code
	ChannelBot   = "bot"   // the Telegram bot: Telegram vouches for the user id
	ChannelStaff = "staff" // entered by a reviewer from an email or a letter
	ChannelAgent = "agent" // an authorized agent; the subject still confirms
)

// Languages notifications are written in.
var languages = map[string]bool{"en": true, "ru": true, "uz": true}

var channels = map[string]bool{ChannelWeb: true, ChannelBot: true, ChannelStaff: true, ChannelAgent: true}

// Operations a task performs on one dataset.
const (
	OpAccess   = "access"
	OpErase    = "erase"
	OpRectify  = "rectify"
	OpRestrict = "restrict"
)

// Task statuses. A task has ended when it succeeded, failed or was
// canceled; the request completes when every task succeeded (or was
// canceled with it).
const (
	TaskPending   = "pending"
	TaskRunning   = "running"
	TaskSucceeded = "succeeded"
	TaskFailed    = "failed"
	TaskCanceled  = "canceled"
)

// Task modes.
const (
	ModeAutomated = "automated" // a connector does it, as a durable job
	ModeManual    = "manual"    // staff do it and record a note
)

// Request is a privacy request as staff and the API see it. It holds no
// personal data: the subject appears only as the kind of identity given.
type Request struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Status     Status `json:"status"`
	PausedFrom Status `json:"paused_from,omitempty"`
	// PauseReason is why a paused request waits for staff: the reason
	// staff gave, or the engine's (NothingFoundReason).
	PauseReason string `json:"pause_reason,omitempty"`
	Channel     string `json:"channel"`
	// Product is the bundle's product the request was made for; empty for
	// requests made before products were recorded.
	Product         string     `json:"product,omitempty"`
	Language        string     `json:"language"`
	Region          string     `json:"region"`
	Regime          string     `json:"regime"`
	SubjectKind     string     `json:"subject_kind"`
	ReceivedAt      time.Time  `json:"received_at"`
	DueAt           time.Time  `json:"due_at"`
	OriginalDueAt   time.Time  `json:"original_due_at"`
	AcknowledgeBy   *time.Time `json:"acknowledge_by,omitempty"`
	ExtendableUntil *time.Time `json:"extendable_until,omitempty"`
	ExtendNoticeBy  *time.Time `json:"extension_notice_by,omitempty"`
	Extended        bool       `json:"extended"`
	ExtensionReason string     `json:"extension_reason,omitempty"`
	VerifiedAt      *time.Time `json:"verified_at,omitempty"`
	Verification    string     `json:"verification,omitempty"`
	// VerificationRequired is the level the policy asked for at intake
	// (deadlines.rego "verification"), VerificationLevel the level the
	// methods used so far reached, VerificationMethods those methods.
	// AwaitingSecondFactor: the first factor (the email code) passed but
	// the level is not reached yet, so the request waits in
	// identity_pending for a second one (verification.go).
	VerificationRequired string             `json:"verification_required,omitempty"`
	VerificationLevel    string             `json:"verification_level,omitempty"`
	VerificationMethods  []VerificationStep `json:"verification_methods,omitempty"`
	AwaitingSecondFactor bool               `json:"awaiting_second_factor,omitempty"`
	// PackageReview: policy holds the access or export package for a
	// reviewer (deadlines.rego package_review); PackageHeld: it is built
	// and waits for release-package before the person gets the link.
	PackageReview    bool       `json:"package_review,omitempty"`
	PackageHeld      bool       `json:"package_held,omitempty"`
	ApprovalRequired *bool      `json:"approval_required,omitempty"`
	ApprovalRule     string     `json:"approval_rule,omitempty"`
	PlannedAt        *time.Time `json:"planned_at,omitempty"`
	PlanError        string     `json:"plan_error,omitempty"`
	DenyReason       string     `json:"deny_reason,omitempty"`
	FailureReason    string     `json:"failure_reason,omitempty"`
	CompletedAt      *time.Time `json:"completed_at,omitempty"`
	Overdue          bool       `json:"overdue"`
	// ReviewItems counts the review items of the request's tasks staff
	// have not acknowledged yet (see Task.Review): records the request
	// reached but left alone because they are not the person's alone.
	ReviewItems int `json:"review_items"`

	planRun int
}

// Detail is one request with everything staff need to act on it.
type Detail struct {
	Request
	Identities []IdentityInfo   `json:"identities"`
	Plan       *Plan            `json:"plan,omitempty"`
	Tasks      []Task           `json:"tasks"`
	Timeline   []TimelineEntry  `json:"timeline"`
	Changes    []string         `json:"rectification_categories,omitempty"`
	Agent      *AgentPublicInfo `json:"agent,omitempty"`
	// Documents are the files uploaded with the request (an agent's signed
	// authorization), described without opening them.
	Documents []DocumentInfo `json:"documents,omitempty"`
}

// IdentityInfo says which kinds of identity the request reaches and where
// each came from, without the values.
type IdentityInfo struct {
	Kind   string `json:"kind"`
	Source string `json:"source"` // "given", "staff:<actor>" or the system that resolved it
}

// Where an identity of a request came from, besides the system that
// resolved it: given at intake, or added by staff when planning again
// (SourceStaff followed by the actor; the colon keeps it apart from a
// system id).
const (
	SourceGiven = "given"
	SourceStaff = "staff:"
)

// givenBy reports whether an identity's source is the person: given at
// intake, or added by staff on their behalf.
func givenBy(source string) bool {
	return source == SourceGiven || strings.HasPrefix(source, SourceStaff)
}

// AgentPublicInfo is what staff see of an authorized agent in listings;
// the agent's name and contact are personal data and stay sealed.
type AgentPublicInfo struct {
	AuthorizationRef string `json:"authorization_ref"`
}

// Task is one step of the plan.
type Task struct {
	ID           string                 `json:"id"`
	Seq          int                    `json:"seq"`
	System       string                 `json:"system"`
	Dataset      string                 `json:"dataset,omitempty"`
	Operation    string                 `json:"operation"`
	Mode         string                 `json:"mode"`
	Status       string                 `json:"status"`
	Run          int                    `json:"run"`
	Attempts     int                    `json:"attempts"`
	Fields       []connectors.FieldPlan `json:"fields"`
	Instructions string                 `json:"instructions,omitempty"`
	Result       json.RawMessage        `json:"result,omitempty"`
	Error        string                 `json:"error,omitempty"`
	CompletedBy  string                 `json:"completed_by,omitempty"`
	Note         string                 `json:"note,omitempty"`
	StartedAt    *time.Time             `json:"started_at,omitempty"`
	FinishedAt   *time.Time             `json:"finished_at,omitempty"`
	// After lists the seq numbers of the tasks that must succeed before this
	// one is queued; WaitingFor, of a pending task, those that have not yet.
	After      []int `json:"after"`
	WaitingFor []int `json:"waiting_for,omitempty"`
	// Review is what the connector reached but left alone because it is not
	// the person's alone (from the result; counts, never personal values):
	// staff decide, and acknowledge it with a note (AcknowledgeReview).
	Review               []connectors.Review `json:"review,omitempty"`
	ReviewAcknowledgedAt *time.Time          `json:"review_acknowledged_at,omitempty"`
	ReviewAcknowledgedBy string              `json:"review_acknowledged_by,omitempty"`
	ReviewNote           string              `json:"review_note,omitempty"`
}

// TimelineEntry is one event in a request's history.
type TimelineEntry struct {
	At    time.Time `json:"at"`
	Event string    `json:"event"`
	From  string    `json:"from,omitempty"`
	To    string    `json:"to,omitempty"`
	Actor string    `json:"actor"`
	Note  string    `json:"note,omitempty"`
}

// Plan is what a request will do, decided from the data map and
// policies/dsar.rego: shown to staff before approval and kept for the final
// report.
type Plan struct {
	RequestType    string         `json:"request_type"`
	Regime         string         `json:"regime"`
	PolicyRevision string         `json:"policy_revision"`
	IdentityKinds  []string       `json:"identity_kinds"`
	Tasks          []PlannedTask  `json:"tasks"`
	Retained       []RetainedItem `json:"retained"`
	// Unreached lists systems of the data map no known identity reaches,
	// so staff can see what was not searched and why.
	Unreached []string `json:"unreached"`
	// Revision counts the request's plans: 1 for the first, one more for
	// each staff re-plan (Service.Replan). Plans stored before revisions
	// were counted read as 0 and count as the first.
	Revision int `json:"revision,omitempty"`
	// IdentityCount is how many identities of the person (given, added by
	// staff, resolved) the plan was made with: a re-plan that knows more
	// runs every task again, since what succeeded searched by fewer.
	IdentityCount int `json:"identity_count,omitempty"`
}

// PlannedTask is a task as planned.
type PlannedTask struct {
	System       string                 `json:"system"`
	Dataset      string                 `json:"dataset,omitempty"`
	Operation    string                 `json:"operation"`
	Mode         string                 `json:"mode"`
	Fields       []connectors.FieldPlan `json:"fields"`
	Instructions string                 `json:"instructions,omitempty"`
	ReachPath    []string               `json:"reach_path,omitempty"`
	// After lists the seq numbers (1-based positions in Tasks) of the tasks
	// that must succeed before this one starts: an erasure goes children
	// first (see order.go).
	After []int `json:"after,omitempty"`
}

// RetainedItem is a field an erasure keeps, with its basis.
type RetainedItem struct {
	System   string `json:"system"`
	Dataset  string `json:"dataset"`
	Field    string `json:"field"`
	Category string `json:"category"`
	Action   string `json:"action"` // retain or mask
	Basis    string `json:"basis"`
	Until    string `json:"until,omitempty"`
	Citation string `json:"citation,omitempty"`
}

// PublicStatus is what the person sees with their status token.
type PublicStatus struct {
	ID              string     `json:"id"`
	Type            string     `json:"type"`
	Status          Status     `json:"status"`
	ReceivedAt      time.Time  `json:"received_at"`
	DueAt           time.Time  `json:"due_at"`
	Extended        bool       `json:"extended"`
	ExtensionReason string     `json:"extension_reason,omitempty"`
	DenyReason      string     `json:"deny_reason,omitempty"`
	CompletedAt     *time.Time `json:"completed_at,omitempty"`
	TasksDone       int        `json:"tasks_done"`
	TasksTotal      int        `json:"tasks_total"`
	// DownloadURL is the package's link, until it expires: the status
	// token proves it is the person asking.
	DownloadURL     string     `json:"download_url,omitempty"`
	DownloadExpires *time.Time `json:"download_expires,omitempty"`
	// AwaitingSecondFactor: the code was confirmed and the policy asks for
	// more; SecondFactors are the methods the person can use
	// (recent_invoice, challenge_login; verification.go).
	AwaitingSecondFactor bool     `json:"awaiting_second_factor,omitempty"`
	SecondFactors        []string `json:"second_factors,omitempty"`
	Product              string   `json:"product,omitempty"`
	// Recipients are the organisations the change was communicated to
	// (GDPR Art. 19), by name, and whether that is done.
	Recipients []PublicRecipient `json:"recipients,omitempty"`
}

// PublicRecipient is what the person sees of an Art. 19 notification.
type PublicRecipient struct {
	Name string `json:"name"`
	Told bool   `json:"told"`
}
