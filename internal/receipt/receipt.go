// Package receipt builds ISO/IEC TS 27560 consent records for consent events and signs them as compact JWS (EdDSA).
//
// A receipt is the proof Steward hands back for a single consent event: it
// must be checkable by anyone holding the public JWKS, long after the event,
// without trusting Steward's database. That is why the record is
// self-contained (controller, purpose, notice version and event in one
// document), why it carries only pseudonymous identifiers (a receipt may be
// forwarded or stored outside Steward, so it must never contain the raw
// e-mail address, chat id or IP address), and why signing uses Ed25519, whose
// signatures are deterministic and need no randomness at signing time.
//
// The JSON layout follows the four information groups of ISO/IEC TS
// 27560:2023 (record header, processing, parties, event). Purposes are
// expressed both as Steward/fideslang identifiers and as W3C Data Privacy
// Vocabulary (DPV) terms so that a third party can interpret the receipt
// without knowing Steward's own taxonomy.
package receipt

import (
	"time"
)

// SchemaVersion names the standard whose information structure the receipt
// follows. It is written into every receipt header so that a verifier years
// from now knows which field semantics apply.
const SchemaVersion = "ISO/IEC TS 27560:2023"

// Profile versions Steward's JSON mapping of that structure. TS 27560 fixes
// which information a record holds, not one concrete JSON layout, so the
// layout needs its own version in case it has to change.
const Profile = "steward-consent-receipt/1"

// LegalBasisConsent is the DPV legal basis of every event Steward records:
// granting, refusing and withdrawing are all exercises of consent (GDPR
// Art. 6(1)(a) and 7(3)), so the basis does not vary with the state.
const LegalBasisConsent = "dpv:Consent"

// Consent states as Steward stores them.
const (
	StateGranted   = "granted"
	StateDenied    = "denied"
	StateWithdrawn = "withdrawn"
)

// Event types as ISO/IEC TS 27560 names them. Steward's state vocabulary is
// shaped by its API; the receipt uses the standard's terms so that it reads
// the same to any verifier.
const (
	EventGiven     = "given"
	EventRefused   = "refused"
	EventWithdrawn = "withdrawn"
)

// Event is the consent event the receipt proves. It deliberately has no field
// for raw personal data: callers pass keyed hashes, so a receipt can never
// leak the identity it is about.
type Event struct {
	ID             string // event id (uuid string)
	SubjectHash    string // keyed hash of the subject identity, hex (pseudonymous)
	SubjectType    string // e.g. "email", "tg", "visitor", "oauth:google"
	Purpose        string // e.g. "marketing"
	DataUse        string // fideslang data use, e.g. "marketing.communications.email"
	DPVPurpose     string // W3C DPV purpose IRI in prefixed form, e.g. "dpv:DirectMarketing"
	PurposeName    string // human name, e.g. "Marketing emails and non-essential cookies"
	State          string // granted | denied | withdrawn
	Source         string // web_banner|web_settings|bot|api|gpc
	NoticeVersion  string
	Jurisdiction   string // may be ""
	Regime         string // e.g. "gdpr", may be ""
	Language       string // may be ""
	Product        string // "web" or "bot"
	GPC            bool
	UserAgent      string // may be ""
	IPHash         string // keyed hash hex, may be ""
	RecordedAt     time.Time
	PolicyRevision string
}

// Controller is the data controller named in the receipt (from config).
type Controller struct{ Name, Contact string }

// Receipt is the consent record. Its four top-level members are the four
// information groups of ISO/IEC TS 27560. Times are strings rather than
// time.Time so that the document is exactly what gets signed: decoding a
// verified payload into a Receipt gives back an equal value.
type Receipt struct {
	Header     Header      `json:"header"`
	Processing Processing  `json:"processing"`
	Parties    Parties     `json:"parties"`
	Event      EventRecord `json:"event"`
}

// Header identifies the record itself.
type Header struct {
	// RecordID is the consent event id, so a receipt can be matched to the
	// event log entry it proves (and a replayed receipt is recognisable).
	RecordID      string `json:"record_id"`
	SchemaVersion string `json:"schema_version"`
	Profile       string `json:"profile"`
	// RecordTimestamp is when the record was made, RFC 3339 in UTC.
	RecordTimestamp string `json:"record_timestamp"`
	// Language is the language the notice was presented in, if known.
	Language string `json:"language,omitempty"`
	// PolicyRevision pins the consent policy that evaluated the event, so
	// a later policy change cannot be read back into an old receipt.
	PolicyRevision string `json:"policy_revision"`
}

// Processing describes what the consent is about.
type Processing struct {
	Purposes   []Purpose `json:"purposes"`
	LegalBasis string    `json:"legal_basis"`
	// Jurisdiction and Regime record which law the controller applied,
	// which matters when the same purpose is opt-in in one place and
	// opt-out in another.
	Jurisdiction string `json:"jurisdiction,omitempty"`
	Regime       string `json:"regime,omitempty"`
	// NoticeVersion ties the decision to the exact notice text shown.
	NoticeVersion string `json:"notice_version"`
}

// Purpose names one purpose in three vocabularies: Steward's id (for
// support and audit inside the controller), fideslang data use (for data
// maps), and DPV (for anyone outside).
type Purpose struct {
	Name       string `json:"name"`
	PurposeID  string `json:"purpose_id"`
	DataUse    string `json:"data_use"`
	DPVPurpose string `json:"dpv_purpose"`
}

// Parties names who the consent is between.
type Parties struct {
	DataController DataController `json:"data_controller"`
	DataSubject    DataSubject    `json:"data_subject"`
}

// DataController is the controller the consent was given to.
type DataController struct {
	Name    string `json:"name"`
	Contact string `json:"contact"`
}

// DataSubject identifies the person only pseudonymously: the keyed hash lets
// the controller match the receipt to its own records, while the receipt
// alone reveals nothing about who the person is.
type DataSubject struct {
	PseudonymousID string `json:"pseudonymous_id"`
	// IDType says what kind of identity was hashed (e.g. "email"), since
	// the same person can appear under several identities.
	IDType string `json:"id_type"`
}

// EventRecord is the consent event itself.
type EventRecord struct {
	// Type is the TS 27560 event type: given, refused or withdrawn.
	Type string `json:"type"`
	// State is Steward's own state, kept next to Type so no information
	// is lost in the mapping.
	State string `json:"state"`
	// Time is when the event happened, RFC 3339 in UTC.
	Time string `json:"time"`
	// Method is how consent was collected (web_banner, bot, api, gpc ...).
	Method  string `json:"method"`
	Product string `json:"product"`
	// GPC records whether a Global Privacy Control signal was present,
	// which under some laws is itself a valid opt-out.
	GPC       bool   `json:"gpc"`
	UserAgent string `json:"user_agent,omitempty"`
	IPHash    string `json:"ip_hash,omitempty"`
}

// EventType maps a Steward consent state to its ISO/IEC TS 27560 event type.
// The boolean is false for states that have no mapping, so callers cannot
// mistake an unknown state for a real event type.
func EventType(state string) (string, bool) {
	switch state {
	case StateGranted:
		return EventGiven, true
	case StateDenied:
		return EventRefused, true
	case StateWithdrawn:
		return EventWithdrawn, true
	}
	return "", false
}

// FormatTime renders t the way every receipt time is rendered: RFC 3339 in
// UTC with as much sub-second precision as t has. A single UTC rendering
// means two receipts can be compared as strings, whatever time zone the
// server ran in.
func FormatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// Build makes the receipt document for the event. It is a pure function of
// its inputs (no clock, no randomness), so the same event always yields the
// same receipt and therefore, with Ed25519, the same signature.
//
// An event whose State has no TS 27560 mapping gets an empty event type;
// Sign refuses such a receipt rather than sign something misleading.
func Build(ev Event, c Controller) Receipt {
	at := FormatTime(ev.RecordedAt)
	typ, _ := EventType(ev.State)
	return Receipt{
		Header: Header{
			RecordID:        ev.ID,
			SchemaVersion:   SchemaVersion,
			Profile:         Profile,
			RecordTimestamp: at,
			Language:        ev.Language,
			PolicyRevision:  ev.PolicyRevision,
		},
		Processing: Processing{
			Purposes: []Purpose{{
				Name:       ev.PurposeName,
				PurposeID:  ev.Purpose,
				DataUse:    ev.DataUse,
				DPVPurpose: ev.DPVPurpose,
			}},
			LegalBasis:    LegalBasisConsent,
			Jurisdiction:  ev.Jurisdiction,
			Regime:        ev.Regime,
			NoticeVersion: ev.NoticeVersion,
		},
		Parties: Parties{
			DataController: DataController(c),
			DataSubject: DataSubject{
				PseudonymousID: ev.SubjectHash,
				IDType:         ev.SubjectType,
			},
		},
		Event: EventRecord{
			Type:      typ,
			State:     ev.State,
			Time:      at,
			Method:    ev.Source,
			Product:   ev.Product,
			GPC:       ev.GPC,
			UserAgent: ev.UserAgent,
			IPHash:    ev.IPHash,
		},
	}
}
