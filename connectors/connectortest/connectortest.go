// Package connectortest is the conformance suite every connector runs. The
// engine trusts connectors with irreversible work (an erasure cannot be
// undone) from jobs that may run twice, so the promises of package
// connectors (idempotence, classified errors, honoured cancellation, declared
// capabilities, nothing touched beyond the subject) are checked here once,
// the same way for every connector, against the connector's real backend:
//
//	func TestConformance(t *testing.T) {
//		c := newConnector(t)
//		connectortest.Run(t, connectortest.Fixture{
//			Connector: c,
//			Seed:      func(t testing.TB) connectortest.Subject { ... },
//		})
//	}
//
// Every subtest seeds a fresh subject, so subtests do not depend on each
// other's leftovers.
//
// Idempotence is checked the two ways the engine repeats work. A new task run
// of the same request (a new idempotency key) must find nothing left to do:
// Erase reports zero deleted and masked, Rectify zero updated, Restrict zero
// restricted. A retry of the same run (the same key, after a worker died
// before recording the result) must change nothing; it may report zero or
// the first run's result.
package connectortest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/steward-privacy/steward/connectors"
)

// Operation names, as Fixture.Inject receives them.
const (
	OpResolve  = "resolve"
	OpAccess   = "access"
	OpErase    = "erase"
	OpRectify  = "rectify"
	OpRestrict = "restrict"
)

// Fixture is a connector under test and how to give it data.
type Fixture struct {
	Connector connectors.Connector
	// Seed creates the data of one new subject, plus other subjects' data
	// that must stay untouched, and says what the suite should find. It is
	// called once per subtest; each call must create a subject of its own.
	Seed func(t testing.TB) Subject
	// Inject, if set, makes the next call of op (one of the Op constants)
	// fail with err before it does anything. The suite uses it to check that
	// a connector passes error classification through. An Injector's Inject
	// method is one. Optional: without it the Errors subtest is skipped.
	Inject func(op string, err error)
}

// Subject is one seeded person.
type Subject struct {
	// Identities are what the person gave (e.g. one email).
	Identities []connectors.Identity
	// Linked are exactly the identities ResolveIdentities must find from
	// Identities (without Identities themselves). Operations get Identities
	// and Linked together, as the engine passes them after resolution.
	Linked []connectors.Identity
	// Datasets are the targets holding the subject's records. Give at least
	// one.
	Datasets []Dataset
	// Others counts other subjects' records in the same systems; erasure and
	// every other operation on this subject must leave it unchanged.
	Others func(t testing.TB) int
}

// Dataset is one target and what the suite expects in it.
type Dataset struct {
	System  string
	Dataset string
	// Fields is the erasure plan, covering every field of the seeded
	// records. Access is asked for the same fields (action include). A plan
	// of only deletes must delete the records; otherwise deleted fields
	// read back null, masked ones as their strategy's output and retained
	// ones unchanged.
	Fields []connectors.FieldPlan
	// Records is how many records the subject has in the dataset (at least
	// one).
	Records int
	// Rectify, if set, are corrections Rectify must apply to every record;
	// Access must then read these values back as strings.
	Rectify map[string]string
}

// Run runs the conformance suite against f.
func Run(t *testing.T, f Fixture) {
	t.Helper()
	if f.Connector == nil || f.Seed == nil {
		t.Fatal("connectortest: Fixture needs Connector and Seed")
	}
	r := &runner{f: f, c: f.Connector, caps: f.Connector.Capabilities()}
	t.Run("Capabilities", r.capabilities)
	t.Run("ResolveIdentities", r.resolve)
	t.Run("Access", r.access)
	t.Run("Erase", r.erase)
	t.Run("Rectify", r.rectify)
	t.Run("Restrict", r.restrict)
	t.Run("Cancelled", r.cancelled)
	t.Run("Errors", r.errorClasses)
}

type runner struct {
	f    Fixture
	c    connectors.Connector
	caps connectors.Capabilities
}

// subject is a seeded Subject with the request the suite makes about it.
type subject struct {
	Subject
	requestID string
	n         int // idempotency keys handed out so far
}

func (r *runner) seed(t *testing.T) *subject {
	t.Helper()
	s := r.f.Seed(t)
	if len(s.Identities) == 0 || len(s.Datasets) == 0 {
		t.Fatal("connectortest: Seed must return identities and at least one dataset")
	}
	for _, ds := range s.Datasets {
		if ds.Records < 1 || len(ds.Fields) == 0 {
			t.Fatalf("connectortest: dataset %s/%s needs Records >= 1 and Fields", ds.System, ds.Dataset)
		}
	}
	return &subject{Subject: s, requestID: uuid.NewString()}
}

// key returns a new idempotency key: a new task run of the same request.
func (s *subject) key() string {
	s.n++
	return fmt.Sprintf("%s/%d", s.requestID, s.n)
}

func (s *subject) target(ds Dataset, key string) connectors.Target {
	return connectors.Target{
		System:         ds.System,
		Dataset:        ds.Dataset,
		Identities:     append(slices.Clone(s.Identities), s.Linked...),
		RequestID:      s.requestID,
		IdempotencyKey: key,
	}
}

func (s *subject) others(t *testing.T) int {
	t.Helper()
	if s.Others == nil {
		return 0
	}
	return s.Others(t)
}

// unknownTarget is ds reached from an identity nobody has.
func unknownTarget(s *subject, ds Dataset) connectors.Target {
	tg := s.target(ds, uuid.NewString())
	tg.Identities = []connectors.Identity{unknownIdentity(s.Identities[0])}
	return tg
}

// unknownIdentity is an identity of like's type that no subject has, shaped
// like like so that a connector validating the format accepts it.
func unknownIdentity(like connectors.Identity) connectors.Identity {
	v := "connectortest-unknown-" + strings.ReplaceAll(uuid.NewString(), "-", "")
	if strings.Contains(like.Value, "@") {
		v += "@example.invalid"
	}
	return connectors.Identity{Type: like.Type, Value: v, Provider: like.Provider}
}

// snapshot is everything Access discloses about s, in a comparable form, so
// a subtest can check an operation changed nothing. Without the Access
// capability nothing can be observed and it is empty.
func (r *runner) snapshot(t *testing.T, s *subject) string {
	t.Helper()
	if !r.caps.Access {
		return ""
	}
	var all [][]connectors.Record
	var files [][]fileDigest
	for _, ds := range s.Datasets {
		recs, fs := r.accessAll(t, context.Background(), s.target(ds, s.key()), accessPlan(ds))
		all = append(all, recs)
		files = append(files, fs)
	}
	// Files are compared by content too: an operation that must change
	// nothing must not change an uploaded photo either.
	return canonical(t, all) + jsonValue(files)
}

// canonical is v as JSON with record fields in name order, so that equal
// data compares equal whatever the connector's field order or number type.
func canonical(t *testing.T, v any) string {
	t.Helper()
	norm := func(recs []connectors.Record) {
		for _, rec := range recs {
			slices.SortFunc(rec.Fields, func(a, b connectors.FieldValue) int { return strings.Compare(a.Field, b.Field) })
		}
	}
	switch v := v.(type) {
	case [][]connectors.Record:
		for _, recs := range v {
			norm(recs)
		}
	case []connectors.Record:
		norm(v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("connectortest: marshal: %v", err)
	}
	return string(b)
}

// jsonValue is v as JSON, for comparing values of different Go types.
func jsonValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("unmarshalable %T", v)
	}
	return string(b)
}

func identityKey(i connectors.Identity) string {
	return i.Type + "\x00" + i.Provider + "\x00" + i.Value
}

func (r *runner) declared() []string {
	var ops []string
	for _, o := range []struct {
		op string
		ok bool
	}{
		{OpResolve, r.caps.ResolveIdentities},
		{OpAccess, r.caps.Access},
		{OpRestrict, r.caps.Restrict},
		{OpRectify, r.caps.Rectify},
		{OpErase, r.caps.Erase},
	} {
		if o.ok {
			ops = append(ops, o.op)
		}
	}
	return ops
}

func (r *runner) undeclared() []string {
	all := []string{OpResolve, OpAccess, OpRestrict, OpRectify, OpErase}
	decl := r.declared()
	return slices.DeleteFunc(all, func(op string) bool { return slices.Contains(decl, op) })
}

// call runs op about s with valid parameters, on the first dataset (the
// first with Rectify for rectify).
func (r *runner) call(ctx context.Context, op string, s *subject) error {
	ds := s.Datasets[0]
	tg := s.target(ds, s.key())
	var err error
	switch op {
	case OpResolve:
		_, err = r.c.ResolveIdentities(ctx, s.Identities)
	case OpAccess:
		_, err = r.c.Access(ctx, connectors.AccessParams{Target: tg, Fields: accessPlan(ds)}, &MemorySink{})
	case OpErase:
		_, err = r.c.Erase(ctx, connectors.EraseParams{Target: tg, Fields: ds.Fields})
	case OpRectify:
		changes := map[string]string{ds.Fields[0].Field: "connectortest"}
		for _, d := range s.Datasets {
			if d.Rectify != nil {
				tg, changes = s.target(d, tg.IdempotencyKey), d.Rectify
				break
			}
		}
		_, err = r.c.Rectify(ctx, connectors.RectifyParams{Target: tg, Changes: changes})
	case OpRestrict:
		_, err = r.c.Restrict(ctx, connectors.RestrictParams{Target: tg, Restricted: true, Reason: "connectortest"})
	default:
		panic("connectortest: unknown op " + op)
	}
	return err
}
