// Package connectors is the seam between the privacy-request engine and the
// systems that hold personal data. A connector reaches one kind of system
// (the product's Postgres database, an object store, a payment processor)
// and does five things for one subject: resolve the subject's linked
// identities, disclose their records (Access), erase them as the plan says
// (Erase), correct them (Rectify) and mark their processing restricted
// (Restrict).
//
// The engine calls a connector from durable jobs that may run more than once
// (a worker dies after the effect but before recording it), so every
// operation must be idempotent: running it again with the same parameters
// changes nothing more. Errors say whether trying again can help: Retryable
// errors are retried with backoff (honouring the system's Retry-After),
// Permanent ones fail the task at once with a message staff can act on.
package connectors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Identity is one identity of a subject as the data map types it: email,
// tg, user, oauth, stripe, creem or visitor. Provider qualifies an oauth id,
// which is unique only per provider.
type Identity struct {
	Type     string `json:"type"`
	Value    string `json:"value"`
	Provider string `json:"provider,omitempty"`
}

// String is type:value, the form the API takes. It is personal data: never
// log it.
func (i Identity) String() string { return i.Type + ":" + i.Value }

// Capabilities says which operations a connector performs itself. An
// operation it lacks becomes a manual task for staff.
type Capabilities struct {
	ResolveIdentities bool `json:"resolve_identities"`
	Access            bool `json:"access"`
	Erase             bool `json:"erase"`
	Rectify           bool `json:"rectify"`
	Restrict          bool `json:"restrict"`
}

// Target is what one task works on: one dataset of one system, reached from
// the subject's identities.
type Target struct {
	System  string `json:"system"`
	Dataset string `json:"dataset"`
	// Identities are every identity of the subject known after resolution.
	Identities []Identity `json:"identities"`
	// RequestID and IdempotencyKey are stable across every retry of the same
	// task run, so a connector can make a repeated call a no-op (and pass the
	// key on to an API that takes one).
	RequestID      string `json:"request_id"`
	IdempotencyKey string `json:"idempotency_key"`
}

// Field actions, as policies/dsar.rego decides them.
const (
	ActionInclude = "include" // disclose to the person
	ActionDelete  = "delete"  // remove the value (and the record when nothing is kept)
	ActionMask    = "mask"    // overwrite with Strategy's output, keep the record
	ActionRetain  = "retain"  // keep as is, for Basis, Until
	ActionRectify = "rectify" // the person may correct it
)

// Mask strategies, as policies/dsar.rego names them.
const (
	StrategyNull         = "null"
	StrategyFixed        = "fixed"
	StrategyKeyedHash    = "keyed_hash"
	StrategyPseudonym    = "pseudonym"
	StrategyTruncateDate = "truncate_date"
)

// TruncateDate is the truncate_date mask of a text value: the date of an
// RFC 3339 timestamp (in its own offset: the date the record shows), or a
// date as it is, so truncating twice changes nothing. ok is false for text
// that is neither.
func TruncateDate(s string) (date string, ok bool) {
	if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return ts.Format(time.DateOnly), true
	}
	if _, err := time.Parse(time.DateOnly, s); err == nil {
		return s, true
	}
	return "", false
}

// FieldPlan is the plan's decision for one field of the target dataset.
type FieldPlan struct {
	Field    string `json:"field"`
	Category string `json:"category"`
	Action   string `json:"action"`
	Strategy string `json:"strategy,omitempty"` // for mask: null, fixed, keyed_hash, pseudonym, truncate_date
	Value    string `json:"value,omitempty"`    // the replacement for the fixed strategy
	Basis    string `json:"basis,omitempty"`
	Until    string `json:"until,omitempty"`
}

// AccessParams asks for every record of the subject in the target dataset.
// Fields lists the fields to disclose; others are not read.
type AccessParams struct {
	Target
	Fields []FieldPlan `json:"fields"`
}

// EraseParams erases the subject's records in the target dataset field by
// field. A record whose every field is to be deleted is deleted; otherwise
// deleted and masked fields are overwritten and retained ones kept.
type EraseParams struct {
	Target
	Fields []FieldPlan `json:"fields"`
}

// RectifyParams sets fields to the person's corrected values. Values are
// validated by the engine against the field's category before the call.
type RectifyParams struct {
	Target
	Changes map[string]string `json:"changes"`
}

// RestrictParams marks (or unmarks) the subject's processing restricted.
type RestrictParams struct {
	Target
	Restricted bool   `json:"restricted"`
	Reason     string `json:"reason,omitempty"`
}

// Record is one record of the subject, as disclosed.
type Record struct {
	Dataset string       `json:"dataset"`
	Key     string       `json:"key"` // stable within the dataset: a primary key, an object key
	Fields  []FieldValue `json:"fields"`
}

// FieldValue is one field of a disclosed record.
type FieldValue struct {
	Field    string `json:"field"`
	Category string `json:"category"`
	Value    any    `json:"value"`
}

// File describes a file (an upload, a generated image) disclosed with a
// record; its content follows as a stream.
type File struct {
	Dataset     string `json:"dataset"`
	Key         string `json:"key"`
	Name        string `json:"name"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size"`
}

// Sink receives what Access discloses. It streams: a connector hands over
// records and file contents as it reads them and never holds a whole dataset
// or object in memory.
type Sink interface {
	Record(ctx context.Context, r Record) error
	File(ctx context.Context, f File, content io.Reader) error
}

// AccessResult counts what Access disclosed.
type AccessResult struct {
	Records int   `json:"records"`
	Files   int   `json:"files"`
	Bytes   int64 `json:"bytes"`
	// Review is records the request reached but did not disclose because
	// they are not the person's alone: staff decide.
	Review []Review `json:"review,omitempty"`
}

// Review is records a request reached but left alone because they are not
// the person's alone (an address others share, a staff member's customers,
// a row with another owner): staff decide what, if anything, to disclose or
// erase. It holds counts, never personal values.
type Review struct {
	Dataset string `json:"dataset"`
	// Reference is how the records were reached: "orders.customer_id ->
	// customers.id".
	Reference string `json:"reference"`
	// Reason is one of the Review reasons.
	Reason  string `json:"reason"`
	Records int    `json:"records"`
	// Holders is how many other rows (other people's, other tables') hold
	// the records too.
	Holders int `json:"holders"`
}

// Review reasons.
const (
	ReviewShared       = "shared"         // the map declares the reference shared
	ReviewRelationship = "relationship"   // the reference links two parties
	ReviewHeldByOthers = "held_by_others" // other rows reference the records too
	ReviewOtherOwner   = "other_owner"    // the records reference another person's rows too
)

// String says it plainly, for a note.
func (r Review) String() string {
	return fmt.Sprintf("%d record(s) of %s reached through %s were left alone for staff review (%s; %d other row(s) hold them)",
		r.Records, r.Dataset, r.Reference, r.Reason, r.Holders)
}

// Retained is a field an erasure kept, with why and for how long.
type Retained struct {
	Field   string `json:"field"`
	Basis   string `json:"basis"`
	Until   string `json:"until,omitempty"`
	Records int    `json:"records"`
}

// EraseResult counts what Erase did. A second identical Erase reports zero
// deletions and maskings: it found nothing left to do.
type EraseResult struct {
	Deleted  int        `json:"deleted"`
	Masked   int        `json:"masked"`
	Bytes    int64      `json:"bytes,omitempty"`
	Retained []Retained `json:"retained,omitempty"`
	// Note says plainly what the system itself keeps beyond our reach (e.g.
	// a processor's own records), for the final report.
	Note string `json:"note,omitempty"`
	// Verified says the connector re-read the subject's records after
	// erasing and found nothing left to do.
	Verified bool `json:"verified,omitempty"`
	// Manual, when set, is work the connector found but cannot do itself
	// (a processor without a deletion API): exact instructions for staff,
	// naming the records to have deleted. The engine turns the task into a
	// manual one that staff complete once the system confirms. A connector
	// returning it has changed nothing, and says so again when repeated
	// until the records are gone.
	Manual string `json:"manual,omitempty"`
	// Review is records the erasure reached but did not touch because they
	// are not the person's alone (see AccessResult.Review); they are not
	// counted as erased.
	Review []Review `json:"review,omitempty"`
}

// RectifyResult counts updated records.
type RectifyResult struct {
	Updated int `json:"updated"`
}

// RestrictResult counts records marked restricted.
type RestrictResult struct {
	Restricted int `json:"restricted"`
}

// Connector reaches one system. Implementations must be safe for concurrent
// use: the engine runs many tasks at once.
type Connector interface {
	// Capabilities is constant for the life of the connector.
	Capabilities() Capabilities
	// ResolveIdentities returns the identities linked to known in this
	// system (an email's account id, the account's Telegram id and Stripe
	// customer), not including known itself. It finds nothing for an
	// unknown subject and is not an error.
	ResolveIdentities(ctx context.Context, known []Identity) ([]Identity, error)
	Access(ctx context.Context, p AccessParams, sink Sink) (AccessResult, error)
	Erase(ctx context.Context, p EraseParams) (EraseResult, error)
	Rectify(ctx context.Context, p RectifyParams) (RectifyResult, error)
	Restrict(ctx context.Context, p RestrictParams) (RestrictResult, error)
}

// EraseOrderer is implemented by a connector that knows which datasets of a
// system must be erased before another: a database whose foreign keys make
// a parent row undeletable (or deletable only by cascading) while child rows
// remain. The engine runs a dataset's erase task only after the tasks of the
// datasets returned here (and those the data map's references name) have
// succeeded: children first, so the parent's rows can then go.
type EraseOrderer interface {
	// EraseAfter returns the datasets of system whose erasure must finish
	// before dataset's starts. Unknown systems and datasets return nil.
	EraseAfter(system, dataset string) []string
}

// Error is a classified connector error.
type Error struct {
	Retryable  bool
	RetryAfter time.Duration // the system's hint; 0 for the engine's backoff
	Err        error
}

func (e *Error) Error() string {
	kind := "permanent"
	if e.Retryable {
		kind = "retryable"
	}
	return fmt.Sprintf("%s: %v", kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable marks err as worth trying again (rate limits, 5xx, timeouts,
// lost connections), after at least after when the system says so.
func Retryable(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &Error{Retryable: true, RetryAfter: after, Err: err}
}

// Permanent marks err as failing the same way every time (a bad request, a
// missing permission, a schema mismatch): the task fails and staff decide.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Err: err}
}

// ErrUnsupported is returned by an operation the connector's Capabilities
// do not declare.
var ErrUnsupported = Permanent(errors.New("operation not supported by this connector"))

// Classify says whether err is worth retrying and how long the system asked
// to wait. Unclassified errors are retryable: most are the network or the
// system being briefly unavailable, and retries are bounded. Context
// cancellation is not retryable by the connector's own judgement: the caller
// decided to stop.
func Classify(err error) (retryable bool, after time.Duration) {
	if err == nil {
		return false, 0
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Retryable, ce.RetryAfter
	}
	if errors.Is(err, context.Canceled) {
		return false, 0
	}
	return true, 0
}

// Registry maps a data-map system id to the connector that reaches it.
// Systems without one (or whose data-map connector is "manual") get manual
// tasks.
type Registry map[string]Connector
