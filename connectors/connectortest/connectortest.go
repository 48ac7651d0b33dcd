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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

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
	// a connector passes error classification through. Optional: without it
	// the Errors subtest is skipped.
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

func accessPlan(ds Dataset) []connectors.FieldPlan {
	out := make([]connectors.FieldPlan, len(ds.Fields))
	for i, f := range ds.Fields {
		out[i] = connectors.FieldPlan{Field: f.Field, Category: f.Category, Action: connectors.ActionInclude}
	}
	return out
}

// accessRecords runs Access into a fresh MemorySink, checks the result
// counts what the sink received, and returns the records sorted by key.
func (r *runner) accessRecords(t *testing.T, ctx context.Context, tg connectors.Target, plan []connectors.FieldPlan) []connectors.Record {
	t.Helper()
	recs, _ := r.accessAll(t, ctx, tg, plan)
	return recs
}

// fileDigest is a disclosed file in a comparable form: its description
// and a digest of its content.
type fileDigest struct {
	connectors.File
	SHA256 string `json:"sha256"`
}

// accessAll is accessRecords that also returns the files the sink
// received, sorted by name, after checking each: it belongs to the target
// dataset and to a record the sink received, its name is unique and
// usable as an archive path, and a declared size is the size received.
func (r *runner) accessAll(t *testing.T, ctx context.Context, tg connectors.Target, plan []connectors.FieldPlan) ([]connectors.Record, []fileDigest) {
	t.Helper()
	sink := &MemorySink{}
	res, err := r.c.Access(ctx, connectors.AccessParams{Target: tg, Fields: plan}, sink)
	if err != nil {
		t.Fatalf("Access %s/%s: %v", tg.System, tg.Dataset, err)
	}
	recs := sink.Records()
	if res.Records != len(recs) {
		t.Errorf("Access %s/%s: result says %d records, sink received %d", tg.System, tg.Dataset, res.Records, len(recs))
	}
	files := sink.Files()
	if res.Files != len(files) || res.Bytes != sink.Bytes() {
		t.Errorf("Access %s/%s: result says %d files / %d bytes, sink received %d / %d",
			tg.System, tg.Dataset, res.Files, res.Bytes, len(files), sink.Bytes())
	}
	keys := map[string]bool{}
	for _, rec := range recs {
		keys[rec.Key] = true
	}
	names := map[string]bool{}
	digests := make([]fileDigest, 0, len(files))
	for _, f := range files {
		switch {
		case f.Dataset != tg.Dataset:
			t.Errorf("Access %s/%s: file %q says dataset %q", tg.System, tg.Dataset, f.Name, f.Dataset)
		case !keys[f.Key]:
			t.Errorf("Access %s/%s: file %q belongs to no record the sink received (key %q)", tg.System, tg.Dataset, f.Name, f.Key)
		case names[f.Name]:
			t.Errorf("Access %s/%s: two files named %q", tg.System, tg.Dataset, f.Name)
		case !archivePath(f.Name):
			t.Errorf("Access %s/%s: file name %q is not a safe relative path (empty, absolute, or with . or .. segments)", tg.System, tg.Dataset, f.Name)
		case f.Size > 0 && f.Size != int64(len(f.Content)):
			t.Errorf("Access %s/%s: file %q declared %d bytes, the sink received %d", tg.System, tg.Dataset, f.Name, f.Size, len(f.Content))
		}
		names[f.Name] = true
		sum := sha256.Sum256(f.Content)
		digests = append(digests, fileDigest{File: f.File, SHA256: hex.EncodeToString(sum[:])})
	}
	slices.SortFunc(recs, func(a, b connectors.Record) int { return strings.Compare(a.Key, b.Key) })
	slices.SortFunc(digests, func(a, b fileDigest) int { return strings.Compare(a.Name, b.Name) })
	return recs, digests
}

// archivePath reports whether name can be a path inside an export
// archive without escaping it.
func archivePath(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, `\`) {
		return false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
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

func (r *runner) capabilities(t *testing.T) {
	if again := r.c.Capabilities(); again != r.caps {
		t.Fatalf("Capabilities changed between calls: %+v then %+v", r.caps, again)
	}
	s := r.seed(t)
	before, others := r.snapshot(t, s), s.others(t)
	for _, op := range r.undeclared() {
		err := r.call(context.Background(), op, s)
		if err == nil {
			t.Errorf("%s is not declared but succeeded", op)
			continue
		}
		if retry, _ := connectors.Classify(err); retry && !errors.Is(err, connectors.ErrUnsupported) {
			t.Errorf("%s is not declared: want ErrUnsupported or a permanent error, got retryable %v", op, err)
		}
	}
	if after := r.snapshot(t, s); after != before {
		t.Errorf("undeclared operations changed the subject's data")
	}
	if got := s.others(t); got != others {
		t.Errorf("other subjects' records: %d before, %d after", others, got)
	}
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

func (r *runner) resolve(t *testing.T) {
	if !r.caps.ResolveIdentities {
		t.Skip("ResolveIdentities not declared")
	}
	s := r.seed(t)
	ctx := context.Background()
	got, err := r.c.ResolveIdentities(ctx, s.Identities)
	if err != nil {
		t.Fatalf("ResolveIdentities: %v", err)
	}
	want := map[string]bool{}
	for _, id := range s.Linked {
		want[identityKey(id)] = true
	}
	seen := map[string]bool{}
	for _, id := range got {
		k := identityKey(id)
		switch {
		case seen[k]:
			t.Errorf("ResolveIdentities returned %s twice", id)
		case slices.ContainsFunc(s.Identities, func(k connectors.Identity) bool { return identityKey(k) == identityKey(id) }):
			t.Errorf("ResolveIdentities returned the known identity %s", id)
		case !want[k]:
			// Another subject's identity here would have the engine
			// disclose or erase that subject's data.
			t.Errorf("ResolveIdentities returned %s, which is not linked to the subject", id)
		}
		seen[k] = true
	}
	for _, id := range s.Linked {
		if !seen[identityKey(id)] {
			t.Errorf("ResolveIdentities did not find linked identity %s", id)
		}
	}

	none, err := r.c.ResolveIdentities(ctx, []connectors.Identity{unknownIdentity(s.Identities[0])})
	if err != nil {
		t.Errorf("ResolveIdentities of an unknown identity: want no error, got %v", err)
	}
	if len(none) != 0 {
		t.Errorf("ResolveIdentities of an unknown identity found %d identities", len(none))
	}
}

var errSink = errors.New("connectortest: sink failed")

type failingSink struct{}

func (failingSink) Record(context.Context, connectors.Record) error { return errSink }
func (failingSink) File(context.Context, connectors.File, io.Reader) error {
	return errSink
}

func (r *runner) access(t *testing.T) {
	if !r.caps.Access {
		t.Skip("Access not declared")
	}
	s := r.seed(t)
	ctx := context.Background()
	for _, ds := range s.Datasets {
		plan := accessPlan(ds)
		categories := map[string]string{}
		for _, f := range plan {
			categories[f.Field] = f.Category
		}
		recs, files := r.accessAll(t, ctx, s.target(ds, s.key()), plan)
		if len(recs) != ds.Records {
			t.Errorf("Access %s/%s: %d records, want %d", ds.System, ds.Dataset, len(recs), ds.Records)
		}
		keys := map[string]bool{}
		for _, rec := range recs {
			if rec.Dataset != ds.Dataset {
				t.Errorf("Access %s/%s: record %q says dataset %q", ds.System, ds.Dataset, rec.Key, rec.Dataset)
			}
			if rec.Key == "" || keys[rec.Key] {
				t.Errorf("Access %s/%s: record key %q empty or repeated", ds.System, ds.Dataset, rec.Key)
			}
			keys[rec.Key] = true
			if len(rec.Fields) == 0 {
				t.Errorf("Access %s/%s: record %q has no fields", ds.System, ds.Dataset, rec.Key)
			}
			for _, fv := range rec.Fields {
				cat, ok := categories[fv.Field]
				if !ok {
					t.Errorf("Access %s/%s: disclosed field %q, which was not asked for", ds.System, ds.Dataset, fv.Field)
				} else if fv.Category != cat {
					t.Errorf("Access %s/%s: field %q has category %q, want %q", ds.System, ds.Dataset, fv.Field, fv.Category, cat)
				}
			}
		}
		again, againFiles := r.accessAll(t, ctx, s.target(ds, s.key()), plan)
		if a, b := canonical(t, recs), canonical(t, again); a != b {
			t.Errorf("Access %s/%s is not repeatable:\nfirst:  %s\nsecond: %s", ds.System, ds.Dataset, a, b)
		}
		if a, b := jsonValue(files), jsonValue(againFiles); a != b {
			t.Errorf("Access %s/%s files are not repeatable:\nfirst:  %s\nsecond: %s", ds.System, ds.Dataset, a, b)
		}

		if none := r.accessRecords(t, ctx, unknownTarget(s, ds), plan); len(none) != 0 {
			t.Errorf("Access %s/%s of an unknown subject disclosed %d records", ds.System, ds.Dataset, len(none))
		}

		_, err := r.c.Access(ctx, connectors.AccessParams{Target: s.target(ds, s.key()), Fields: plan}, failingSink{})
		if !errors.Is(err, errSink) {
			t.Errorf("Access %s/%s with a failing sink: want the sink's error, got %v", ds.System, ds.Dataset, err)
		}
	}
}

func (r *runner) erase(t *testing.T) {
	if !r.caps.Erase {
		t.Skip("Erase not declared")
	}
	s := r.seed(t)
	ctx := context.Background()
	others := s.others(t)
	for _, ds := range s.Datasets {
		name := ds.System + "/" + ds.Dataset
		var before []connectors.Record
		if r.caps.Access {
			before = r.accessRecords(t, ctx, s.target(ds, s.key()), accessPlan(ds))
		}

		if res, err := r.c.Erase(ctx, connectors.EraseParams{Target: unknownTarget(s, ds), Fields: ds.Fields}); err != nil {
			t.Errorf("Erase %s of an unknown subject: %v", name, err)
		} else if res.Deleted != 0 || res.Masked != 0 {
			t.Errorf("Erase %s of an unknown subject: deleted %d, masked %d", name, res.Deleted, res.Masked)
		}

		key := s.key()
		p := connectors.EraseParams{Target: s.target(ds, key), Fields: ds.Fields}
		first, err := r.c.Erase(ctx, p)
		if err != nil {
			t.Fatalf("Erase %s: %v", name, err)
		}
		allDelete, work := true, false
		for _, f := range ds.Fields {
			allDelete = allDelete && f.Action == connectors.ActionDelete
			work = work || f.Action == connectors.ActionDelete || f.Action == connectors.ActionMask
		}
		if first.Manual != "" {
			// The connector cannot erase here and asked staff to: it must
			// have changed nothing, name the work, and ask again when
			// repeated (nothing was done in between).
			r.checkManualErase(t, name, s, ds, p, first, before)
			continue
		}
		if allDelete && first.Deleted == 0 {
			t.Errorf("Erase %s: the plan deletes every field, but no record was deleted (%+v)", name, first)
		}
		if work && first.Deleted+first.Masked == 0 {
			t.Errorf("Erase %s: the plan deletes or masks fields, but nothing was deleted or masked", name)
		}
		for _, f := range ds.Fields {
			if f.Action != connectors.ActionRetain {
				continue
			}
			i := slices.IndexFunc(first.Retained, func(rt connectors.Retained) bool { return rt.Field == f.Field })
			if i < 0 {
				t.Errorf("Erase %s: retained field %q not reported in Retained", name, f.Field)
				continue
			}
			if rt := first.Retained[i]; rt.Basis != f.Basis || rt.Until != f.Until || rt.Records != ds.Records {
				t.Errorf("Erase %s: Retained %+v, want basis %q until %q records %d", name, rt, f.Basis, f.Until, ds.Records)
			}
		}

		// A new task run of the same request finds nothing left to do.
		p2 := p
		p2.IdempotencyKey = s.key()
		second, err := r.c.Erase(ctx, p2)
		if err != nil {
			t.Fatalf("second Erase %s: %v", name, err)
		}
		if second.Deleted != 0 || second.Masked != 0 {
			t.Errorf("second Erase %s: deleted %d, masked %d; want nothing left to do", name, second.Deleted, second.Masked)
		}
		var after []connectors.Record
		if r.caps.Access {
			after = r.accessRecords(t, ctx, s.target(ds, s.key()), accessPlan(ds))
		}
		// A retry of the first run (its worker died before recording the
		// result) changes nothing; it may report the first result again.
		replay, err := r.c.Erase(ctx, p)
		if err != nil {
			t.Fatalf("replayed Erase %s: %v", name, err)
		}
		if replay.Deleted != 0 || replay.Masked != 0 {
			if replay.Deleted != first.Deleted || replay.Masked != first.Masked {
				t.Errorf("replayed Erase %s: deleted %d, masked %d; want zero or the first run's %d, %d",
					name, replay.Deleted, replay.Masked, first.Deleted, first.Masked)
			}
		}
		if !r.caps.Access {
			continue
		}
		if again := r.accessRecords(t, ctx, s.target(ds, s.key()), accessPlan(ds)); canonical(t, again) != canonical(t, after) {
			t.Errorf("replayed Erase %s changed the data", name)
		}
		checkErased(t, name, ds, before, after, allDelete)
	}
	if got := s.others(t); got != others {
		t.Errorf("other subjects' records: %d before erasure, %d after", others, got)
	}
}

// checkManualErase checks an Erase that handed the work to staff: nothing
// deleted or masked, the data unchanged, and the same hand-over when asked
// again by a new task run and by a retry.
func (r *runner) checkManualErase(t *testing.T, name string, s *subject, ds Dataset, p connectors.EraseParams, first connectors.EraseResult, before []connectors.Record) {
	t.Helper()
	ctx := context.Background()
	if first.Deleted != 0 || first.Masked != 0 {
		t.Errorf("Erase %s asked staff to erase (Manual) but also reports deleted %d, masked %d", name, first.Deleted, first.Masked)
	}
	p2 := p
	p2.IdempotencyKey = s.key()
	for _, again := range []connectors.EraseParams{p2, p} {
		res, err := r.c.Erase(ctx, again)
		if err != nil {
			t.Fatalf("repeated Erase %s: %v", name, err)
		}
		if res.Manual != first.Manual || res.Deleted != 0 || res.Masked != 0 {
			t.Errorf("repeated Erase %s: %+v; want the same staff instructions and nothing done", name, res)
		}
	}
	if r.caps.Access {
		after := r.accessRecords(t, ctx, s.target(ds, s.key()), accessPlan(ds))
		if canonical(t, after) != canonical(t, before) {
			t.Errorf("Erase %s handed the work to staff but changed the data", name)
		}
	}
}

// checkErased compares what Access disclosed before and after erasure
// with the plan.
func checkErased(t *testing.T, name string, ds Dataset, before, after []connectors.Record, allDelete bool) {
	t.Helper()
	if allDelete {
		if len(after) != 0 {
			t.Errorf("Erase %s: the plan deletes every field, but %d records remain", name, len(after))
		}
		return
	}
	if len(after) != len(before) {
		t.Errorf("Erase %s: %d records before, %d after; the plan keeps the records", name, len(before), len(after))
		return
	}
	plans := map[string]connectors.FieldPlan{}
	for _, f := range ds.Fields {
		plans[f.Field] = f
	}
	for i, rec := range after {
		old := before[i]
		if rec.Key != old.Key {
			t.Errorf("Erase %s: record %q became %q", name, old.Key, rec.Key)
			continue
		}
		oldValues := map[string]any{}
		for _, fv := range old.Fields {
			oldValues[fv.Field] = fv.Value
		}
		for _, fv := range rec.Fields {
			orig, had := oldValues[fv.Field]
			if !had {
				continue
			}
			got, was := jsonValue(fv.Value), jsonValue(orig)
			fail := func(want string) {
				t.Errorf("Erase %s: record %q field %q (%s %s) reads %s, want %s", name, rec.Key, fv.Field,
					plans[fv.Field].Action, plans[fv.Field].Strategy, got, want)
			}
			p := plans[fv.Field]
			if orig == nil && p.Action == connectors.ActionMask {
				continue // nothing to hide; a connector may keep the null
			}
			switch {
			case p.Action == connectors.ActionDelete:
				if fv.Value != nil {
					fail("null")
				}
			case p.Action == connectors.ActionMask && p.Strategy == "null":
				if fv.Value != nil {
					fail("null")
				}
			case p.Action == connectors.ActionMask && p.Strategy == "fixed":
				if got != jsonValue(p.Value) {
					fail(jsonValue(p.Value))
				}
			case p.Action == connectors.ActionMask && p.Strategy == "truncate_date":
				s, _ := orig.(string)
				if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
					v, _ := fv.Value.(string)
					if !strings.HasPrefix(v, ts.Format(time.DateOnly)) || v == s {
						fail("the date part " + ts.Format(time.DateOnly))
					}
				}
			case p.Action == connectors.ActionMask:
				if orig != nil && (fv.Value == nil || got == was) {
					fail("a value other than the original")
				}
			default: // retain, and anything the plan leaves alone
				if got != was {
					fail("the original " + was)
				}
			}
		}
	}
}

func (r *runner) rectify(t *testing.T) {
	if !r.caps.Rectify {
		t.Skip("Rectify not declared")
	}
	s := r.seed(t)
	ctx := context.Background()
	others := s.others(t)
	tested := false
	for _, ds := range s.Datasets {
		if ds.Rectify == nil {
			continue
		}
		tested = true
		name := ds.System + "/" + ds.Dataset
		p := connectors.RectifyParams{Target: s.target(ds, s.key()), Changes: ds.Rectify}
		first, err := r.c.Rectify(ctx, p)
		if err != nil {
			t.Fatalf("Rectify %s: %v", name, err)
		}
		if first.Updated != ds.Records {
			t.Errorf("Rectify %s: updated %d records, want %d", name, first.Updated, ds.Records)
		}
		var after string
		if r.caps.Access {
			recs := r.accessRecords(t, ctx, s.target(ds, s.key()), accessPlan(ds))
			for _, rec := range recs {
				for _, fv := range rec.Fields {
					if want, ok := ds.Rectify[fv.Field]; ok && fv.Value != want {
						t.Errorf("Rectify %s: record %q field %q reads %s, want %q", name, rec.Key, fv.Field, jsonValue(fv.Value), want)
					}
				}
			}
			after = canonical(t, recs)
		}
		p2 := p
		p2.IdempotencyKey = s.key()
		second, err := r.c.Rectify(ctx, p2)
		if err != nil {
			t.Fatalf("second Rectify %s: %v", name, err)
		}
		if second.Updated != 0 {
			t.Errorf("second Rectify %s: updated %d records; want nothing left to do", name, second.Updated)
		}
		if _, err := r.c.Rectify(ctx, p); err != nil {
			t.Fatalf("replayed Rectify %s: %v", name, err)
		}
		if r.caps.Access {
			if again := canonical(t, r.accessRecords(t, ctx, s.target(ds, s.key()), accessPlan(ds))); again != after {
				t.Errorf("repeated Rectify %s changed the data again", name)
			}
		}
	}
	if !tested {
		t.Skip("no dataset of the subject has Rectify set")
	}
	if got := s.others(t); got != others {
		t.Errorf("other subjects' records: %d before, %d after", others, got)
	}
}

func (r *runner) restrict(t *testing.T) {
	if !r.caps.Restrict {
		t.Skip("Restrict not declared")
	}
	s := r.seed(t)
	ctx := context.Background()
	before, others := r.snapshot(t, s), s.others(t)
	for _, ds := range s.Datasets {
		name := ds.System + "/" + ds.Dataset
		p := connectors.RestrictParams{Target: s.target(ds, s.key()), Restricted: true, Reason: "connectortest"}
		first, err := r.c.Restrict(ctx, p)
		if err != nil {
			t.Fatalf("Restrict %s: %v", name, err)
		}
		if first.Restricted != ds.Records {
			t.Errorf("Restrict %s: restricted %d records, want %d", name, first.Restricted, ds.Records)
		}
		p2 := p
		p2.IdempotencyKey = s.key()
		second, err := r.c.Restrict(ctx, p2)
		if err != nil {
			t.Fatalf("second Restrict %s: %v", name, err)
		}
		if second.Restricted != 0 {
			t.Errorf("second Restrict %s: restricted %d records; want nothing left to do", name, second.Restricted)
		}
		if _, err := r.c.Restrict(ctx, p); err != nil {
			t.Fatalf("replayed Restrict %s: %v", name, err)
		}
	}
	// Restriction limits processing; the person still sees their data.
	if after := r.snapshot(t, s); after != before {
		t.Errorf("Restrict changed what Access discloses")
	}
	for _, ds := range s.Datasets {
		p := connectors.RestrictParams{Target: s.target(ds, s.key()), Restricted: false}
		if _, err := r.c.Restrict(ctx, p); err != nil {
			t.Errorf("lifting the restriction of %s/%s: %v", ds.System, ds.Dataset, err)
		}
	}
	if got := s.others(t); got != others {
		t.Errorf("other subjects' records: %d before, %d after", others, got)
	}
}

// cancelled checks every declared operation honours a cancelled context at
// once and changes nothing: the engine cancels tasks on shutdown and lease
// loss, and a task that carries on would race its retry.
func (r *runner) cancelled(t *testing.T) {
	s := r.seed(t)
	before, others := r.snapshot(t, s), s.others(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, op := range r.declared() {
		start := time.Now()
		err := r.call(ctx, op, s)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: want an error wrapping context.Canceled, got %v", op, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s with a cancelled context took %v to return", op, d)
		}
	}
	if after := r.snapshot(t, s); after != before {
		t.Errorf("operations with a cancelled context changed the subject's data")
	}
	if got := s.others(t); got != others {
		t.Errorf("other subjects' records: %d before, %d after", others, got)
	}
}

var errInjected = errors.New("connectortest: injected failure")

// errorClasses checks a failure keeps its classification on the way out of the
// connector: the engine retries a retryable one and fails the task at once
// on a permanent one.
func (r *runner) errorClasses(t *testing.T) {
	if r.f.Inject == nil {
		t.Skip("Fixture.Inject not set")
	}
	s := r.seed(t)
	ctx := context.Background()
	before, others := r.snapshot(t, s), s.others(t)
	for _, op := range r.declared() {
		r.f.Inject(op, connectors.Retryable(errInjected, time.Second))
		err := r.call(ctx, op, s)
		if !errors.Is(err, errInjected) {
			t.Errorf("%s after injecting a retryable error: want it, got %v", op, err)
		} else if retry, after := connectors.Classify(err); !retry || after != time.Second {
			t.Errorf("%s: injected retryable error (after 1s) classified retryable=%v after=%v", op, retry, after)
		}
		r.f.Inject(op, connectors.Permanent(errInjected))
		err = r.call(ctx, op, s)
		if !errors.Is(err, errInjected) {
			t.Errorf("%s after injecting a permanent error: want it, got %v", op, err)
		} else if retry, _ := connectors.Classify(err); retry {
			t.Errorf("%s: injected permanent error classified retryable", op)
		}
	}
	if after := r.snapshot(t, s); after != before {
		t.Errorf("failed operations changed the subject's data")
	}
	// An injection lasts one call.
	for _, op := range r.declared() {
		if err := r.call(ctx, op, s); err != nil {
			t.Errorf("%s after the injected failures: %v", op, err)
		}
	}
	if got := s.others(t); got != others {
		t.Errorf("other subjects' records: %d before, %d after", others, got)
	}
}
