package connectortest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/connectors"
)

// accessPlan asks Access for every field of ds's erasure plan.
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

// access checks Access discloses the subject's records and files, only the
// fields asked for, the same way twice, nothing of an unknown subject, and
// passes a failing sink's error on.
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
