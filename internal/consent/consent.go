// Package consent is the consent ledger and the fast consent check. Choices
// are recorded as append-only events with proof; the current state per
// subject and purpose is derived in the same transaction; checks are decided
// by policies/consent.rego over the cached state, so the hot path is two map
// lookups.
package consent

import (
	"regexp"
	"time"

	"github.com/steward-privacy/steward/identity"
)

// The recorded states.
const (
	Granted   = "granted"
	Denied    = "denied"
	Withdrawn = "withdrawn"
)

// SourceGPC marks events Steward records itself when it first sees a Global
// Privacy Control signal; callers cannot claim it.
const SourceGPC = "gpc"

var (
	states  = map[string]bool{Granted: true, Denied: true, Withdrawn: true}
	sources = map[string]bool{"web_banner": true, "web_settings": true, "bot": true, "api": true}

	jurisdictionRe = regexp.MustCompile(`^[A-Z]{2}(-[A-Z0-9]{1,3})?$`)
	languageRe     = regexp.MustCompile(`^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$`)
)

// RecordInput is one choice a person made.
type RecordInput struct {
	Subject       identity.Subject
	Purpose       string
	State         string
	Source        string
	NoticeVersion string
	Jurisdiction  string
	Language      string
	Product       string // "" = derived from the subject (tg: -> bot, else web)
	GPC           bool   // Sec-GPC: 1 was present
	UserAgent     string
	IP            string // hashed before storage; never stored in the clear
	KeyID         string // the API key that recorded it
	Linked        []identity.Subject
}

// Event is one recorded consent event.
type Event struct {
	ID             string    `json:"id"`
	SubjectKind    string    `json:"subject_kind"`
	SubjectHash    string    `json:"-"`
	Purpose        string    `json:"purpose"`
	State          string    `json:"state"`
	Source         string    `json:"source"`
	NoticeVersion  string    `json:"notice_version"`
	Jurisdiction   string    `json:"jurisdiction,omitempty"`
	Language       string    `json:"language,omitempty"`
	Product        string    `json:"product"`
	GPC            bool      `json:"gpc"`
	UserAgent      string    `json:"user_agent,omitempty"`
	IPHash         string    `json:"ip_hash,omitempty"`
	KeyID          string    `json:"recorded_by,omitempty"`
	PolicyRevision string    `json:"policy_revision"`
	RecordedAt     time.Time `json:"recorded_at"`
}

// PurposeState is the current state of one purpose for a subject.
type PurposeState struct {
	Purpose       string     `json:"purpose"`
	State         string     `json:"state"` // granted|denied|withdrawn|none
	Source        string     `json:"source,omitempty"`
	NoticeVersion string     `json:"notice_version,omitempty"`
	GPC           bool       `json:"gpc"`
	EventID       string     `json:"event_id,omitempty"`
	UpdatedAt     *time.Time `json:"updated_at,omitempty"`
}

// CheckInput is one "may I?" question.
type CheckInput struct {
	Subject      identity.Subject
	Purpose      string
	Jurisdiction string
	Product      string
	Age          int // -1 when unknown
	GPC          bool
}
