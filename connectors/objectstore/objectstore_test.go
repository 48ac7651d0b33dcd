package objectstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/objectstore"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/testutil"
	"github.com/steward-privacy/steward/policies"
)

// backends runs fn on a plain S3 bucket, a versioned one and a local
// directory.
// versioned is the S3 bucket's name when it is versioned, else "".
func backends(t *testing.T, fn func(t *testing.T, b *blob.Bucket, versioned string)) {
	for _, bk := range []struct {
		name string
		open func(t *testing.T) (*blob.Bucket, string)
	}{
		{"s3", func(t *testing.T) (*blob.Bucket, string) { b, _ := s3Bucket(t, false); return b, "" }},
		{"s3-versioned", func(t *testing.T) (*blob.Bucket, string) { return s3Bucket(t, true) }},
		{"fileblob", func(t *testing.T) (*blob.Bucket, string) { b, _ := fileBucket(t); return b, "" }},
	} {
		t.Run(bk.name, func(t *testing.T) {
			t.Parallel()
			b, versioned := bk.open(t)
			fn(t, b, versioned)
		})
	}
}

// Identity values that would escape their prefix reach nothing, and
// never the objects they would address if pasted into a key.
func TestEscapingValuesReachNothing(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *blob.Bucket, _ string) {
		ctx := context.Background()
		victims := map[string]string{
			"uploads/7/a.png":        "7's",
			"uploads/8/a.png":        "8's",
			"uploads/a/b/a.png":      "a's, at b/",
			"uploads/a.png":          "stray",
			"7/a.png":                "root 7",
			"uploads/%2e%2e/a.png":   "literal %2e%2e",
			"uploads/.../a.png":      "three dots",
			"uploads/7x/a.png":       "7x's",
			"uploads/__0x2f__/a.png": "gocloud escape",
		}
		put(t, b, victims)
		before := keys(t, b)
		c := newConnector(t, b, nil)
		for _, v := range []string{"../7", "7/../8", "%2e%2e", "%2E%2E", "a/b", "", ".", "..", "/", "/7", "7/", `..\7`,
			" 7", "7 ", "7\x00", "__0x2f__", "..__0x2f__7", "%2f", "7%2f..%2f8"} {
			ids := []connectors.Identity{user(v)}
			sink := &memSink{}
			res, err := c.Access(ctx, connectors.AccessParams{Target: target("uploads", ids...), Fields: plan(connectors.ActionInclude)}, sink)
			if err != nil || res.Records != 0 || len(sink.records) != 0 {
				t.Errorf("Access as user %q: %+v, %v; disclosed %q", v, res, err, sink.keys())
			}
			er, err := c.Erase(ctx, connectors.EraseParams{Target: target("uploads", ids...), Fields: plan(connectors.ActionDelete)})
			if err != nil || er.Deleted != 0 {
				t.Errorf("Erase as user %q: %+v, %v", v, er, err)
			}
		}
		// A refused value next to a good one: only the good one's objects.
		sink := &memSink{}
		if _, err := c.Access(ctx, connectors.AccessParams{Target: target("uploads", user("../8"), user("7")), Fields: plan(connectors.ActionInclude)}, sink); err != nil {
			t.Fatal(err)
		}
		if got := sink.keys(); !slices.Equal(got, []string{"uploads/7/a.png"}) {
			t.Errorf("Access as 7 and ../8 disclosed %q, want only 7's object", got)
		}
		if after := keys(t, b); !slices.Equal(after, before) {
			t.Errorf("objects changed:\nbefore %q\nafter  %q", before, after)
		}
	})
}

// Key templates that could escape are refused when the connector starts.
func TestNewRefusesUnsafeTemplates(t *testing.T) {
	t.Parallel()
	b, _ := fileBucket(t)
	for _, prefix := range []string{
		"../uploads/{user_id}/", "/uploads/{user_id}/", "uploads/{user_id}", "uploads/{user_id}x/", "uploads/",
		"uploads/%2e%2e/{user_id}/", `uploads\{user_id}/`, "uploads//{user_id}/", "uploads/*/{user_id}/",
		"uploads/{oauth}/", "uploads/{nobody}/", "uploads/__0x2f__/{user_id}/", "", "uploads/{user_id}/../",
	} {
		m := objectMap(map[string]string{"bad": prefix})
		_, err := objectstore.New(context.Background(), objectstore.Config{System: system, Bucket: b, DataMap: static(m)})
		if err == nil {
			t.Errorf("New accepted the key template %q", prefix)
		} else if !strings.Contains(err.Error(), "bad") {
			t.Errorf("New's error for %q does not name the dataset: %v", prefix, err)
		}
	}
	// Two datasets on the same keys erase each other unless tags tell
	// them apart.
	m := objectMap(map[string]string{"archives": "generated/{user}/"})
	if _, err := objectstore.New(context.Background(), objectstore.Config{System: system, Bucket: b, DataMap: static(m)}); err == nil {
		t.Error("New accepted two datasets with the same template and no tags")
	}
	tags := map[string]objectstore.Tag{"archives": {Key: "kind", Value: "archive"}, "generated": {Key: "kind", Value: "image"}}
	if _, err := objectstore.New(context.Background(), objectstore.Config{System: system, Bucket: b, DataMap: static(m), Tags: tags}); err != nil {
		t.Errorf("New with tags telling the datasets apart: %v", err)
	}
	if _, err := objectstore.New(context.Background(), objectstore.Config{System: "nope", Bucket: b, DataMap: static(m)}); err == nil {
		t.Error("New accepted a system the data map does not have")
	}
	bad := objectMap(nil)
	ds := bad.Systems[system].Datasets["uploads"]
	ds.Fields = map[string]datamap.Field{"body": {Category: "user.content"}, "caption": {Category: "user.content"}}
	bad.Systems[system].Datasets["uploads"] = ds
	if _, err := objectstore.New(context.Background(), objectstore.Config{System: system, Bucket: b, DataMap: static(bad)}); err == nil {
		t.Error("New accepted a field an object does not have (it could never be exported)")
	}
}

// The data map of policies/ compiles.
func TestPolicyDataMap(t *testing.T) {
	t.Parallel()
	e, err := policy.Load(context.Background(), policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := fileBucket(t)
	c, err := objectstore.New(context.Background(), objectstore.Config{System: "object_store", Bucket: b, DataMap: func() *datamap.Map { return e.DataMap }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	put(t, b, map[string]string{"uploads/u1/a.png": "a", "generated/u1/g.png": "g", "masks/u1/m.png": "m"})
	for _, ds := range []string{"uploads", "generated", "masks"} {
		res, err := c.Access(context.Background(), connectors.AccessParams{Target: target(ds, user("u1")), Fields: plan(connectors.ActionInclude)}, &memSink{})
		if err != nil || res.Records != 1 || res.Files != 1 {
			t.Errorf("Access %s: %+v, %v", ds, res, err)
		}
	}
}

// A versioned bucket keeps every overwritten version and hides deleted
// objects behind delete markers: erasure must remove all of them.
func TestEraseVersioned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, name := s3Bucket(t, true)
	for i := range 3 {
		put(t, b, map[string]string{"uploads/v1/a.png": strings.Repeat("a", 10*(i+1)), "uploads/v2/a.png": "other's " + fmt.Sprint(i)})
	}
	put(t, b, map[string]string{"uploads/v1/b.png": "bbbb", "uploads/v1/c.png": "cc"})
	if err := b.Delete(ctx, "uploads/v1/b.png"); err != nil { // a version and a delete marker
		t.Fatal(err)
	}
	mine, others := versions(t, name, "uploads/v1/"), versions(t, name, "uploads/v2/")
	if len(mine) != 6 || !slices.ContainsFunc(mine, func(v string) bool { return strings.HasSuffix(v, "!") }) {
		t.Fatalf("setup: want 3+2 versions and a delete marker, got %q", mine)
	}
	c := newConnector(t, b, nil)
	res, err := c.Erase(ctx, connectors.EraseParams{Target: target("uploads", user("v1")), Fields: plan(connectors.ActionDelete)})
	if err != nil {
		t.Fatal(err)
	}
	// Objects a, b (its old version) and c; bytes of every version.
	if res.Deleted != 3 || res.Bytes != 10+20+30+4+2 || !res.Verified {
		t.Errorf("Erase = %+v; want 3 objects, 66 bytes, verified", res)
	}
	if left := versions(t, name, "uploads/v1/"); len(left) != 0 {
		t.Errorf("versions left after erasure: %q", left)
	}
	if got := versions(t, name, "uploads/v2/"); !slices.Equal(got, others) {
		t.Errorf("the other subject's versions changed: %q, were %q", got, others)
	}
	again, err := c.Erase(ctx, connectors.EraseParams{Target: target("uploads", user("v1")), Fields: plan(connectors.ActionDelete)})
	if err != nil || again.Deleted != 0 || again.Bytes != 0 || !again.Verified {
		t.Errorf("second Erase = %+v, %v; want nothing left", again, err)
	}
}

// How a plan maps onto whole objects.
func TestErasePlans(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, _ := fileBucket(t)
	c := newConnector(t, b, nil)
	seed := func(id string) {
		put(t, b, map[string]string{"uploads/" + id + "/a.png": "aa", "uploads/" + id + "/b.png": "bbb"})
	}
	erase := func(id string, fields []connectors.FieldPlan) connectors.EraseResult {
		t.Helper()
		res, err := c.Erase(ctx, connectors.EraseParams{Target: target("uploads", user(id)), Fields: fields})
		if err != nil {
			t.Fatalf("Erase %s: %v", id, err)
		}
		return res
	}
	seed("mask")
	masked := plan(connectors.ActionRetain, "content_type", "last_modified")
	masked = append(masked, connectors.FieldPlan{Field: "body", Category: "user.content.image", Action: connectors.ActionMask, Strategy: connectors.StrategyFixed, Value: "[removed]"})
	if res := erase("mask", masked); res.Deleted != 2 || res.Bytes != 5 || len(res.Retained) != 0 || !res.Verified {
		t.Errorf("a masked body deletes the object: %+v", res)
	}
	seed("keep")
	res := erase("keep", plan(connectors.ActionRetain))
	if res.Deleted != 0 || len(res.Retained) != 3 || !res.Verified {
		t.Errorf("all retained: %+v", res)
	}
	for _, rt := range res.Retained {
		if rt.Records != 2 || rt.Basis != "contract" || rt.Until != "account closure" {
			t.Errorf("Retained %+v; want 2 records for contract until account closure", rt)
		}
	}
	if got := keys(t, b); !slices.Equal(got, []string{"uploads/keep/a.png", "uploads/keep/b.png"}) {
		t.Errorf("objects left: %q", got)
	}
	for _, p := range [][]connectors.FieldPlan{
		{{Field: "caption", Action: connectors.ActionDelete}},
		nil,
	} {
		_, err := c.Erase(ctx, connectors.EraseParams{Target: target("uploads", user("keep")), Fields: p})
		if retry, _ := connectors.Classify(err); err == nil || retry {
			t.Errorf("Erase with plan %+v: want a permanent error, got %v", p, err)
		}
	}
	for _, tg := range []connectors.Target{
		{System: "other", Dataset: "uploads", Identities: []connectors.Identity{user("keep")}},
		{System: system, Dataset: "nope", Identities: []connectors.Identity{user("keep")}},
	} {
		_, err := c.Access(ctx, connectors.AccessParams{Target: tg, Fields: plan(connectors.ActionInclude)}, &memSink{})
		if retry, _ := connectors.Classify(err); err == nil || retry {
			t.Errorf("Access of %s/%s: want a permanent error, got %v", tg.System, tg.Dataset, err)
		}
	}
}

// Access discloses exactly the planned fields, and reads attributes
// without the body when the body is not asked for.
func TestAccessFields(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *blob.Bucket, _ string) {
		ctx := context.Background()
		m := objectMap(nil)
		ds := m.Systems[system].Datasets["uploads"]
		ds.Fields["size"] = datamap.Field{Category: "system.operations"}
		ds.Fields["user_id"] = datamap.Field{Category: "user.unique_id"}
		ds.Fields["metadata.camera"] = datamap.Field{Category: "user.device"}
		m.Systems[system].Datasets["uploads"] = ds
		c := newConnector(t, b, func(cfg *objectstore.Config) { cfg.DataMap = static(m) })
		if err := b.WriteAll(ctx, "uploads/f1/p.png", []byte("12345"), &blob.WriterOptions{ContentType: "image/png", Metadata: map[string]string{"camera": "Pixel 9"}}); err != nil {
			t.Fatal(err)
		}
		sink := &connectortest.MemorySink{}
		fields := plan(connectors.ActionInclude, "content_type", "last_modified", "size", "user_id", "metadata.camera")
		res, err := c.Access(ctx, connectors.AccessParams{Target: target("uploads", user("f1")), Fields: fields}, sink)
		if err != nil {
			t.Fatal(err)
		}
		if res.Records != 1 || res.Files != 0 || len(sink.Files()) != 0 {
			t.Fatalf("Access without body: %+v, %d files", res, len(sink.Files()))
		}
		got := map[string]any{}
		for _, f := range sink.Records()[0].Fields {
			got[f.Field] = f.Value
		}
		lm, _ := got["last_modified"].(string)
		if ts, err := time.Parse(time.RFC3339, lm); err != nil || ts.Location() != time.UTC || time.Since(ts) > time.Hour {
			t.Errorf("last_modified %q is not a recent RFC 3339 UTC time", lm)
		}
		delete(got, "last_modified")
		want := map[string]any{"content_type": "image/png", "size": int64(5), "user_id": "f1", "metadata.camera": "Pixel 9"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("fields = %v, want %v", got, want)
		}
		sink.Reset()
		res, err = c.Access(ctx, connectors.AccessParams{Target: target("uploads", user("f1")), Fields: plan(connectors.ActionInclude, "body")}, sink)
		if err != nil {
			t.Fatal(err)
		}
		f := sink.Files()
		if res.Files != 1 || res.Bytes != 5 || len(f) != 1 || string(f[0].Content) != "12345" || f[0].Name != "object_store/uploads/p.png" ||
			f[0].ContentType != "image/png" || f[0].Size != 5 || f[0].Key != "uploads/f1/p.png" || f[0].Dataset != "uploads" {
			t.Errorf("Access with body: %+v, files %+v", res, f)
		}
		if v := sink.Records()[0].Fields[0].Value; v != "object_store/uploads/p.png" {
			t.Errorf("body field = %v, want the file's name in the export", v)
		}
	})
}

// A dataset tagged by metadata is only the tagged objects; a narrower
// dataset's keys are not the wider one's.
func TestTagsAndNarrowerDatasets(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *blob.Bucket, _ string) {
		ctx := context.Background()
		m := objectMap(map[string]string{"archives": "generated/{user_id}/", "thumbs": "uploads/{user_id}/thumbs/"})
		tags := map[string]objectstore.Tag{"generated": {Key: "Kind", Value: "image"}, "archives": {Key: "kind", Value: "archive"}}
		c := newConnector(t, b, func(cfg *objectstore.Config) { cfg.DataMap, cfg.Tags = static(m), tags })
		for key, kind := range map[string]string{"generated/t1/a.png": "image", "generated/t1/b.zip": "archive", "generated/t1/c": ""} {
			var md map[string]string
			if kind != "" {
				md = map[string]string{"kind": kind}
			}
			if err := b.WriteAll(ctx, key, []byte(key), &blob.WriterOptions{Metadata: md}); err != nil {
				t.Fatal(err)
			}
		}
		put(t, b, map[string]string{"uploads/t1/a.png": "a", "uploads/t1/thumbs/a.png": "ta", "uploads/t1/thumbsx/a.png": "x"})
		access := func(ds string) []string {
			sink := &memSink{}
			if _, err := c.Access(ctx, connectors.AccessParams{Target: target(ds, user("t1")), Fields: plan(connectors.ActionInclude)}, sink); err != nil {
				t.Fatal(err)
			}
			return sink.keys()
		}
		for ds, want := range map[string][]string{
			"generated": {"generated/t1/a.png"},
			"archives":  {"generated/t1/b.zip"},
			"uploads":   {"uploads/t1/a.png", "uploads/t1/thumbsx/a.png"},
			"thumbs":    {"uploads/t1/thumbs/a.png"},
		} {
			if got := access(ds); !slices.Equal(got, want) {
				t.Errorf("Access %s = %q, want %q", ds, got, want)
			}
		}
		for _, ds := range []string{"generated", "uploads"} {
			res, err := c.Erase(ctx, connectors.EraseParams{Target: target(ds, user("t1")), Fields: plan(connectors.ActionDelete)})
			if err != nil || res.Deleted == 0 || !res.Verified {
				t.Errorf("Erase %s: %+v, %v", ds, res, err)
			}
		}
		want := []string{"generated/t1/b.zip", "generated/t1/c", "uploads/t1/thumbs/a.png"}
		if got := keys(t, b); !slices.Equal(got, want) {
			t.Errorf("after erasing generated and uploads: %q, want %q", got, want)
		}
	})
}

// The retention sweep deletes a dataset's objects older than the cutoff,
// keeps what keep protects, and touches nothing else.
func TestDeleteOlderThan(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *blob.Bucket, versioned string) {
		ctx := context.Background()
		old := map[string]string{
			"uploads/a1/old.png":    "old",
			"uploads/a1/sub/o.png":  "old nested",
			"uploads/a2/held.png":   "on legal hold",
			"uploads/a3/twice.png":  "first version",
			"uploads/a4/gone.png":   "deleted by the app",
			"uploads/stray-old.txt": "not a subject's key",
			"generated/a1/old.png":  "another dataset",
			"masks/a1/old.png":      "another dataset",
		}
		put(t, b, old)
		if err := b.Delete(ctx, "uploads/a4/gone.png"); err != nil { // versioned: a version and a marker
			t.Fatal(err)
		}
		// Listings have whole seconds: the cutoff is a whole second
		// after the old objects and at or before the new ones.
		time.Sleep(1200 * time.Millisecond)
		cutoff := time.Now().Truncate(time.Second)
		time.Sleep(100 * time.Millisecond)
		put(t, b, map[string]string{"uploads/a1/new.png": "new", "uploads/a3/twice.png": "second version"})
		c := newConnector(t, b, func(cfg *objectstore.Config) { cfg.Clock = clock.NewFake(cutoff.Add(30 * 24 * time.Hour)) })
		var asked []string
		var mu sync.Mutex
		keep := func(key string) bool {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, key)
			return key == "uploads/a2/held.png"
		}
		// What a versioned bucket should lose: every version and marker
		// of the dataset the server lists as older than the cutoff.
		// (versitygw dates a noncurrent version by when it was replaced,
		// AWS by when it was written; the sweep goes by what is listed.)
		wantDeleted, wantBytes := 2, int64(len("old")+len("old nested"))
		var wantVersions []string
		if versioned != "" {
			wantDeleted, wantBytes = 0, 0
			for _, v := range versionInfo(t, versioned, "uploads/") {
				if !strings.HasPrefix(v.key, "uploads/a") || v.key == "uploads/a2/held.png" || !v.mod.Before(cutoff) {
					wantVersions = append(wantVersions, v.id)
				} else if !v.marker {
					wantDeleted++
					wantBytes += v.size
				}
			}
			if wantDeleted < 3 {
				t.Fatalf("setup: only %d versions to sweep", wantDeleted)
			}
		}
		res, err := c.DeleteOlderThan(ctx, "uploads", cutoff, keep)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"generated/a1/old.png", "masks/a1/old.png", "uploads/a1/new.png", "uploads/a2/held.png", "uploads/a3/twice.png", "uploads/stray-old.txt"}
		if got := keys(t, b); !slices.Equal(got, want) {
			t.Errorf("left after the sweep: %q, want %q", got, want)
		}
		if res.Deleted != wantDeleted || res.Bytes != wantBytes || res.Kept != 1 {
			t.Errorf("DeleteOlderThan = %+v; want %d deleted, %d bytes, 1 kept", res, wantDeleted, wantBytes)
		}
		if versioned != "" {
			var left []string
			for _, v := range versionInfo(t, versioned, "uploads/") {
				left = append(left, v.id)
			}
			slices.Sort(left)
			slices.Sort(wantVersions)
			if !slices.Equal(left, wantVersions) {
				t.Errorf("versions left: %q, want %q", left, wantVersions)
			}
		}
		if slices.Contains(asked, "uploads/stray-old.txt") || slices.Contains(asked, "uploads/a1/new.png") {
			t.Errorf("keep was asked about keys the sweep does not take: %q", asked)
		}
		var buf bytes.Buffer
		if err := b.Download(ctx, "uploads/a3/twice.png", &buf, nil); err != nil || buf.String() != "second version" {
			t.Errorf("the new version of a3/twice.png: %q, %v", buf.String(), err)
		}
		again, err := c.DeleteOlderThan(ctx, "uploads", cutoff, keep)
		if err != nil || again.Deleted != 0 || again.Kept != 1 {
			t.Errorf("second sweep = %+v, %v; want nothing deleted, the held object kept", again, err)
		}
		for _, bad := range []struct {
			ds     string
			cutoff time.Time
		}{{"uploads", time.Time{}}, {"uploads", cutoff.Add(365 * 24 * time.Hour)}, {"nope", cutoff}} {
			_, err := c.DeleteOlderThan(ctx, bad.ds, bad.cutoff, nil)
			if retry, _ := connectors.Classify(err); err == nil || retry {
				t.Errorf("DeleteOlderThan(%s, %v): want a permanent error, got %v", bad.ds, bad.cutoff, err)
			}
		}
	})
}

func TestDeleteOlderThanNeedsAHead(t *testing.T) {
	t.Parallel()
	b, _ := fileBucket(t)
	c := newConnector(t, b, func(cfg *objectstore.Config) {
		cfg.DataMap = static(objectMap(map[string]string{"top": "{user_id}/files/"}))
	})
	put(t, b, map[string]string{"u1/files/a": "a"})
	_, err := c.DeleteOlderThan(context.Background(), "top", time.Now().Add(-time.Hour), nil)
	if retry, _ := connectors.Classify(err); err == nil || retry {
		t.Errorf("a sweep of a template without a fixed head: want a permanent error, got %v", err)
	}
}

// Errors keep what the server said: rate limits and server errors are
// retryable with its Retry-After, refusals permanent with its message,
// and neither names the subject.
func TestErrorClassification(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, name := s3Bucket(t, false)
	p := newProxy(t)
	b := p.bucket(t, name)
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	c := newConnector(t, b, func(cfg *objectstore.Config) { cfg.Clock = clock.NewFake(now) })
	put(t, b, map[string]string{"uploads/secret-id-77/a.png": "a"})
	ops := map[string]func() error{
		"access": func() error {
			_, err := c.Access(ctx, connectors.AccessParams{Target: target("uploads", user("secret-id-77")), Fields: plan(connectors.ActionInclude)}, &memSink{})
			return err
		},
		"erase": func() error {
			_, err := c.Erase(ctx, connectors.EraseParams{Target: target("uploads", user("secret-id-77")), Fields: plan(connectors.ActionDelete)})
			return err
		},
		"sweep": func() error {
			_, err := c.DeleteOlderThan(ctx, "uploads", now.Add(-time.Hour), nil)
			return err
		},
	}
	for _, tc := range []struct {
		name  string
		fault fault
		retry bool
		after time.Duration
		msg   string
	}{
		{"503 SlowDown", fault{status: 503, code: "SlowDown", msg: "Please reduce your request rate.", header: map[string]string{"Retry-After": "7"}}, true, 7 * time.Second, "Please reduce your request rate."},
		{"429 with a date", fault{status: 429, code: "TooManyRequests", msg: "Rate exceeded.", header: map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}}, true, 90 * time.Second, "Rate exceeded."},
		{"500", fault{status: 500, code: "InternalError", msg: "We encountered an internal error."}, true, 0, "internal error"},
		{"403", fault{status: 403, code: "AccessDenied", msg: "Access Denied."}, false, 0, "Access Denied."},
		{"400", fault{status: 400, code: "InvalidRequest", msg: "Bad request for this bucket."}, false, 0, "Bad request for this bucket."},
		{"404 bucket", fault{status: 404, code: "NoSuchBucket", msg: "The specified bucket does not exist."}, false, 0, "bucket does not exist"},
	} {
		p.set(func(*http.Request) *fault { f := tc.fault; return &f })
		for op, call := range ops {
			err := call()
			retry, after := connectors.Classify(err)
			switch {
			case err == nil:
				t.Errorf("%s %s: no error", tc.name, op)
			case retry != tc.retry || after != tc.after:
				t.Errorf("%s %s: retryable=%v after=%v, want %v %v (%v)", tc.name, op, retry, after, tc.retry, tc.after, err)
			case !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), tc.fault.code):
				t.Errorf("%s %s: %q does not carry the server's code and message", tc.name, op, err)
			case strings.Contains(err.Error(), "secret-id-77"):
				t.Errorf("%s %s: the error names the subject: %q", tc.name, op, err)
			}
		}
	}
	// One key refused inside a DeleteObjects answer.
	for _, tc := range []struct {
		code  string
		retry bool
	}{{"SlowDown", true}, {"AccessDenied", false}} {
		p.set(func(r *http.Request) *fault {
			if _, ok := r.URL.Query()["delete"]; !ok || r.Method != http.MethodPost {
				return nil
			}
			return &fault{status: 200, body: `<?xml version="1.0" encoding="UTF-8"?><DeleteResult><Error><Key>uploads/secret-id-77/a.png</Key><Code>` + tc.code + `</Code><Message>refused uploads/secret-id-77/a.png</Message></Error></DeleteResult>`}
		})
		err := ops["erase"]()
		if retry, _ := connectors.Classify(err); err == nil || retry != tc.retry || !strings.Contains(err.Error(), tc.code) || strings.Contains(err.Error(), "secret-id-77") {
			t.Errorf("DeleteObjects refusing a key with %s: retryable=%v, %v", tc.code, retry, err)
		}
	}
	// A store that does not answer at all.
	p.set(nil)
	p.srv.Close()
	if err := ops["access"](); err == nil {
		t.Error("Access with the store gone: no error")
	} else if retry, _ := connectors.Classify(err); !retry || strings.Contains(err.Error(), "secret-id-77") {
		t.Errorf("Access with the store gone: retryable=%v, %v", retry, err)
	}
}

// Cancellation mid-way stops the work and surfaces context.Canceled.
func TestCancellation(t *testing.T) {
	t.Parallel()
	_, name := s3Bucket(t, false)
	p := newProxy(t)
	b := p.bucket(t, name)
	c := newConnector(t, b, nil)
	ctx := context.Background()
	if err := b.Upload(ctx, "uploads/c1/big.bin", io.LimitReader(rand.NewChaCha8([32]byte{1}), 8<<20), &blob.WriterOptions{ContentType: "application/octet-stream"}); err != nil {
		t.Fatal(err)
	}
	put(t, b, map[string]string{"uploads/c1/small.png": "s"})

	// While a file streams: the sink's context is cancelled after the
	// first bytes.
	cctx, cancel := context.WithCancel(ctx)
	start := time.Now()
	_, err := c.Access(cctx, connectors.AccessParams{Target: target("uploads", user("c1")), Fields: plan(connectors.ActionInclude)},
		&funcSink{file: func(_ context.Context, _ connectors.File, r io.Reader) error {
			if _, err := io.CopyN(io.Discard, r, 64<<10); err != nil {
				return err
			}
			cancel()
			_, err := io.Copy(io.Discard, r)
			return err
		}})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("Access cancelled mid-file: %v after %v; want context.Canceled at once", err, time.Since(start))
	}

	// While a delete hangs.
	hold := make(chan struct{})
	defer close(hold)
	p.set(func(r *http.Request) *fault {
		if _, ok := r.URL.Query()["delete"]; ok {
			return &fault{status: 500, hold: hold}
		}
		return nil
	})
	cctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = c.Erase(cctx, connectors.EraseParams{Target: target("uploads", user("c1")), Fields: plan(connectors.ActionDelete)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Erase whose delete hangs past the deadline: %v", err)
	}
	p.set(nil)
	dead, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.DeleteOlderThan(dead, "uploads", time.Now().Add(-time.Minute), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("DeleteOlderThan with a cancelled context: %v", err)
	}
	if got := keys(t, b); len(got) != 2 {
		t.Errorf("cancelled operations deleted objects: %q left", got)
	}
}

type funcSink struct {
	file func(ctx context.Context, f connectors.File, r io.Reader) error
}

func (s *funcSink) Record(context.Context, connectors.Record) error { return nil }
func (s *funcSink) File(ctx context.Context, f connectors.File, r io.Reader) error {
	return s.file(ctx, f, r)
}

// Access streams: when the sink has read the first MiB of a 64 MiB
// object, the connector has pulled little more than that from the store.
// A connector that buffered the object would have pulled all of it
// before handing the sink anything.
func TestAccessStreams(t *testing.T) {
	t.Parallel()
	_, name := s3Bucket(t, false)
	p := newProxy(t)
	b := p.bucket(t, name)
	c := newConnector(t, b, nil)
	ctx := context.Background()
	const size = 64 << 20
	want := sha256.New()
	if err := b.Upload(ctx, "uploads/big/video.bin", io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{2}), size), want), &blob.WriterOptions{ContentType: "video/mp4"}); err != nil {
		t.Fatal(err)
	}
	var pulled int64
	got := sha256.New()
	var declared int64
	_, err := c.Access(ctx, connectors.AccessParams{Target: target("uploads", user("big")), Fields: plan(connectors.ActionInclude)},
		&funcSink{file: func(_ context.Context, f connectors.File, r io.Reader) error {
			declared = f.Size
			if _, err := io.CopyN(got, r, 1<<20); err != nil {
				return err
			}
			time.Sleep(50 * time.Millisecond) // a slow sink
			pulled = p.sent.Load()
			_, err := io.Copy(got, r)
			return err
		}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) || declared != size {
		t.Fatalf("content or size differs (declared %d)", declared)
	}
	if pulled > size/4 {
		t.Errorf("after the sink read 1 MiB the connector had pulled %d MiB of 64 from the store: it buffers", pulled>>20)
	}
	t.Logf("pulled %.1f MiB when the sink had read 1 MiB", float64(pulled)/(1<<20))
}

// A new data map (a policy reload) is compiled on the next call; a bad
// one fails calls until fixed rather than falling back silently.
func TestDataMapReload(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b, _ := fileBucket(t)
	var cur atomic.Pointer[datamap.Map]
	cur.Store(objectMap(nil))
	c := newConnector(t, b, func(cfg *objectstore.Config) { cfg.DataMap = cur.Load })
	put(t, b, map[string]string{"uploads/r1/a.png": "a", "files/r1/b.png": "b", "files/r1/c.png": "c"})
	count := func() (int, error) {
		res, err := c.Access(ctx, connectors.AccessParams{Target: target("uploads", user("r1")), Fields: plan(connectors.ActionInclude)}, &memSink{})
		return res.Records, err
	}
	if n, err := count(); n != 1 || err != nil {
		t.Fatalf("before reload: %d, %v", n, err)
	}
	m := objectMap(nil)
	ds := m.Systems[system].Datasets["uploads"]
	ds.Prefix = "files/{user_id}/"
	m.Systems[system].Datasets["uploads"] = ds
	cur.Store(m)
	if n, err := count(); n != 2 || err != nil {
		t.Errorf("after reload: %d, %v; want the new template's 2 objects", n, err)
	}
	bad := objectMap(nil)
	ds.Prefix = "files/{user_id}"
	bad.Systems[system].Datasets["uploads"] = ds
	cur.Store(bad)
	if _, err := count(); err == nil {
		t.Error("a reloaded map with an unsafe template: no error")
	} else if retry, _ := connectors.Classify(err); retry {
		t.Errorf("a reloaded map with an unsafe template: retryable %v", err)
	}
}

// Config.URL opens the bucket itself (and Close closes it).
func TestConfigURL(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c, err := objectstore.New(ctx, objectstore.Config{System: system, URL: "file://" + filepath.ToSlash(dir), DataMap: static(objectMap(nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "uploads", "l1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "uploads", "l1", "a.png"), []byte("a"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := c.Erase(ctx, connectors.EraseParams{Target: target("uploads", user("l1")), Fields: plan(connectors.ActionDelete)})
	if err != nil || res.Deleted != 1 {
		t.Errorf("Erase through a file:// URL: %+v, %v", res, err)
	}
	if err := c.Close(); err != nil {
		t.Error(err)
	}

	// The s3:// form of a configuration file; credentials come from the
	// environment, so this test is not parallel.
	gw := gateway(t)
	_, name := s3Bucket(t, true)
	t.Setenv("AWS_ACCESS_KEY_ID", gw.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", gw.SecretKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	c, err = objectstore.New(ctx, objectstore.Config{System: system, URL: gw.BucketURL(name), DataMap: static(objectMap(nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := gw.OpenBucket(t, name)
	put(t, b, map[string]string{"uploads/l2/a.png": "a"})
	put(t, b, map[string]string{"uploads/l2/a.png": "a2"})
	res, err = c.Erase(ctx, connectors.EraseParams{Target: target("uploads", user("l2")), Fields: plan(connectors.ActionDelete)})
	if err != nil || res.Deleted != 1 || res.Bytes != 3 || !res.Verified {
		t.Errorf("Erase through an s3:// URL on a versioned bucket: %+v, %v", res, err)
	}
	if v := versions(t, name, "uploads/l2/"); len(v) != 0 {
		t.Errorf("versions left: %q", v)
	}
}

// Logs say what was done without naming anyone: keys hold account ids.
func TestLogsNameNoOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, name := s3Bucket(t, false)
	p := newProxy(t)
	b := p.bucket(t, name)
	var buf testutil.SyncBuffer
	c := newConnector(t, b, func(cfg *objectstore.Config) {
		cfg.Log = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	put(t, b, map[string]string{"uploads/person-4242/a.png": "a", "uploads/person-4242/b.png": "b"})
	tg := target("uploads", user("person-4242"))
	if _, err := c.Access(ctx, connectors.AccessParams{Target: tg, Fields: plan(connectors.ActionInclude)}, &memSink{}); err != nil {
		t.Fatal(err)
	}
	p.set(func(r *http.Request) *fault {
		if r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "" && !r.URL.Query().Has("versioning") {
			return &fault{status: 403, code: "AccessDenied", msg: "Access Denied."}
		}
		return nil
	})
	if _, err := c.Access(ctx, connectors.AccessParams{Target: tg, Fields: plan(connectors.ActionInclude)}, &memSink{}); err == nil {
		t.Error("Access with GetObject refused: no error")
	} else if strings.Contains(err.Error(), "person-4242") {
		t.Errorf("the error names the subject: %v", err)
	}
	p.set(nil)
	if _, err := c.Erase(ctx, connectors.EraseParams{Target: tg, Fields: plan(connectors.ActionDelete)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteOlderThan(ctx, "uploads", time.Now(), nil); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, `"deleted":2`) {
		t.Errorf("the erase log lacks its counts:\n%s", out)
	}
	if strings.Contains(out, "person-4242") {
		t.Errorf("the logs name the subject:\n%s", out)
	}
}

// Erasure and the sweep delete while they page through a listing: every
// page boundary (seven keys a page here) must survive its keys going.
func TestDeleteAcrossPages(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *blob.Bucket, versioned string) {
		ctx := context.Background()
		mine := map[string]string{}
		for i := range 40 {
			mine[fmt.Sprintf("uploads/p1/%02d.png", i)] = fmt.Sprint("v1 ", i)
			mine[fmt.Sprintf("uploads/p2/%02d.png", i)] = fmt.Sprint("v1 ", i)
		}
		put(t, b, mine)
		for i := range 40 {
			switch i % 3 {
			case 1: // a second version
				put(t, b, map[string]string{fmt.Sprintf("uploads/p1/%02d.png", i): "v2", fmt.Sprintf("uploads/p2/%02d.png", i): "v2"})
			case 2: // deleted by the app: a delete marker
				for _, p := range []string{"p1", "p2"} {
					if err := b.Delete(ctx, fmt.Sprintf("uploads/%s/%02d.png", p, i)); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		put(t, b, map[string]string{"uploads/p10/a.png": "other", "uploads/p3/a.png": "other"})
		c := newConnector(t, b, nil)
		res, err := c.Erase(ctx, connectors.EraseParams{Target: target("uploads", user("p1")), Fields: plan(connectors.ActionDelete)})
		wantDeleted := 27 // the keys still current
		if versioned != "" {
			wantDeleted = 40 // and those only old versions hold
		}
		if err != nil || res.Deleted != wantDeleted || !res.Verified {
			t.Errorf("Erase = %+v, %v; want %d deleted, verified", res, err, wantDeleted)
		}
		if versioned != "" {
			if left := versions(t, versioned, "uploads/p1/"); len(left) != 0 {
				t.Errorf("versions left after erasure: %d", len(left))
			}
		}
		sweep, err := c.DeleteOlderThan(ctx, "uploads", time.Now().Add(time.Minute), func(key string) bool { return strings.HasPrefix(key, "uploads/p10/") })
		wantSwept := 27 + 1 // p2's current keys, p3
		if versioned != "" {
			wantSwept = 40 + 13 + 1 // p2's versions (every first one, 13 second ones), p3
		}
		if err != nil || sweep.Deleted != wantSwept || sweep.Kept != 1 {
			t.Errorf("DeleteOlderThan = %+v, %v; want %d deleted, 1 kept", sweep, err, wantSwept)
		}
		if got := keys(t, b); !slices.Equal(got, []string{"uploads/p10/a.png"}) {
			t.Errorf("left: %q", got)
		}
		if versioned != "" {
			if left := versionInfo(t, versioned, "uploads/p2/"); len(left) != 0 {
				t.Errorf("p2 versions left after the sweep: %d", len(left))
			}
		}
	})
}
