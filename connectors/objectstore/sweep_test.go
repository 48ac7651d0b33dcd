package objectstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/objectstore"
	"github.com/steward-privacy/steward/internal/clock"
)

// maxAge is the retention rule the sweeps below enforce.
const maxAge = 30 * 24 * time.Hour

// modTimes are the modification times the sweep goes by: the listing's
// (a HEAD's Last-Modified has whole seconds, an S3 listing may have
// more), or in a versioned bucket the latest entry the versions listing
// has for the key.
func modTimes(t *testing.T, b *blob.Bucket, versioned string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	if versioned != "" {
		for _, v := range versionInfo(t, versioned, "") {
			if v.mod.After(out[v.key]) {
				out[v.key] = v.mod
			}
		}
		return out
	}
	it := b.List(nil)
	for {
		o, err := it.Next(context.Background())
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[o.Key] = o.ModTime
	}
}

// agedConnector returns a connector whose clock stands maxAge after a
// cutoff strictly between the last modification of the old keys and the
// first of the new ones, and that cutoff as now - maxAge by that clock.
// The old keys must have been written at least a second before the new.
func agedConnector(t *testing.T, b *blob.Bucket, versioned string, old, new []string) (*objectstore.Connector, time.Time) {
	t.Helper()
	mods := modTimes(t, b, versioned)
	var last, first time.Time
	for _, k := range old {
		m, ok := mods[k]
		if !ok {
			t.Fatalf("setup: %s not listed", k)
		}
		if m.After(last) {
			last = m
		}
	}
	for _, k := range new {
		m, ok := mods[k]
		if !ok {
			t.Fatalf("setup: %s not listed", k)
		}
		if first.IsZero() || m.Before(first) {
			first = m
		}
	}
	if !last.Before(first) {
		t.Fatalf("setup: the old objects (last modified %v) are not older than the new ones (%v)", last, first)
	}
	fake := clock.NewFake(last.Add(first.Sub(last) / 2).Add(maxAge))
	c := newConnector(t, b, func(cfg *objectstore.Config) { cfg.Clock = fake })
	cutoff := fake.Now().Add(-maxAge)
	if !last.Before(cutoff) || !cutoff.Before(first) {
		t.Fatalf("setup: cutoff %v not strictly between %v and %v", cutoff, last, first)
	}
	return c, cutoff
}

func sweepParams(dataset string, cutoff time.Time) connectors.SweepParams {
	return connectors.SweepParams{System: system, Dataset: dataset, Timestamp: "last_modified", Cutoff: cutoff, Fields: plan(connectors.ActionDelete)}
}

func email(v string) connectors.Identity { return connectors.Identity{Type: "email", Value: v} }

// The sweep deletes the dataset's objects modified before the cutoff (the
// one just past it) and keeps the one just inside, a held subject's old
// objects and every other dataset's; a dry run before it counts the same
// objects and deletes nothing, and a second sweep finds nothing more.
func TestSweep(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *blob.Bucket, versioned string) {
		ctx := context.Background()
		old := map[string]string{
			"uploads/h1/a.png":     "held",
			"uploads/h1/sub/b.png": "held nested",
			"uploads/stray.txt":    "not a subject's key",
			"generated/u1/a.png":   "another dataset",
			"uploads/u3/gone.png":  "deleted by the app",
		}
		var due []string // the old objects of uploads no hold protects
		var wantBytes int64
		for i := range 17 {
			k := fmt.Sprintf("uploads/u%d/%02d.png", 1+i%2, i)
			old[k] = strings.Repeat("x", i+1)
			due = append(due, k)
			wantBytes += int64(i + 1)
		}
		put(t, b, old)
		if err := b.Delete(ctx, "uploads/u3/gone.png"); err != nil { // versioned: a version and a marker
			t.Fatal(err)
		}
		oldKeys := append(slices.Clone(due), "uploads/h1/a.png", "uploads/h1/sub/b.png")
		if versioned != "" {
			// versitygw dates a delete marker to the nanosecond and
			// versions to the second: the marker may be the newest old
			// entry.
			oldKeys = append(oldKeys, "uploads/u3/gone.png")
		}
		time.Sleep(1100 * time.Millisecond)
		fresh := map[string]string{"uploads/u1/new.png": "just inside", "uploads/h1/new.png": "held and new"}
		put(t, b, fresh)
		c, cutoff := agedConnector(t, b, versioned, oldKeys, slices.Collect(maps.Keys(fresh)))
		wantMatched, wantDeleted := len(due)+2, len(due)
		if versioned != "" {
			// The version the app's delete left behind is due too (its
			// marker goes with it, uncounted).
			wantMatched++
			wantDeleted++
			wantBytes += int64(len("deleted by the app"))
		}
		held := [][]connectors.Identity{
			{user("h1"), email("h1@example.com")},
			{email("nobody@example.com")}, // fills no prefix of uploads
		}

		before := digest(t, b)
		p := sweepParams("uploads", cutoff)
		p.Held, p.DryRun = held, true
		p.Progress = func(context.Context, connectors.SweepBatch) error {
			t.Error("a dry run reported progress")
			return nil
		}
		dry, err := c.Sweep(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if want := (connectors.SweepResult{Matched: int64(wantMatched), Held: 2}); dry != want {
			t.Errorf("dry run = %+v, want %+v", dry, want)
		}
		if digest(t, b) != before {
			t.Error("the dry run changed the bucket")
		}

		var batches []connectors.SweepBatch
		p.DryRun = false
		p.Progress = func(_ context.Context, b connectors.SweepBatch) error {
			batches = append(batches, b)
			return nil
		}
		res, err := c.Sweep(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if res.Matched != int64(wantMatched) || res.Deleted != int64(wantDeleted) || res.Bytes != wantBytes || res.Held != 2 || res.Kept != 0 {
			t.Errorf("Sweep = %+v; want %d matched, %d deleted, %d bytes, 2 held", res, wantMatched, wantDeleted, wantBytes)
		}
		want := []string{"generated/u1/a.png", "uploads/h1/a.png", "uploads/h1/new.png", "uploads/h1/sub/b.png", "uploads/stray.txt", "uploads/u1/new.png"}
		if got := keys(t, b); !slices.Equal(got, want) {
			t.Errorf("left after the sweep: %q, want %q", got, want)
		}
		if versioned != "" {
			for _, prefix := range []string{"uploads/u2/", "uploads/u3/"} {
				if left := versions(t, versioned, prefix); len(left) != 0 {
					t.Errorf("versions left under %s: %q", prefix, left)
				}
			}
		}
		// Seven keys a page: the sweep went in several batches, each
		// after the last, and they add up to the result.
		if len(batches) < 2 {
			t.Errorf("%d progress batches; want several", len(batches))
		}
		var sum connectors.SweepBatch
		for i, bt := range batches {
			sum.Deleted += bt.Deleted
			sum.Bytes += bt.Bytes
			if !strings.HasPrefix(bt.Cursor, "uploads/") || i > 0 && bt.Cursor <= batches[i-1].Cursor {
				t.Errorf("batch %d cursor %q does not follow %q", i, bt.Cursor, batches[max(i-1, 0)].Cursor)
			}
		}
		if sum.Deleted != res.Deleted || sum.Bytes != res.Bytes || sum.Anonymized != 0 {
			t.Errorf("batches sum to %+v; the result is %+v", sum, res)
		}

		batches = nil
		again, err := c.Sweep(ctx, p)
		if want := (connectors.SweepResult{Matched: 2, Held: 2}); err != nil || again != want {
			t.Errorf("second sweep = %+v, %v; want %+v", again, err, want)
		}
		for _, bt := range batches {
			if bt.Deleted != 0 || bt.Bytes != 0 {
				t.Errorf("second sweep reported a batch with deletes: %+v", bt)
			}
		}

		// The hold lifted: the held subject's old objects go, the new one
		// stays.
		p.Held, p.Progress = nil, nil
		lifted, err := c.Sweep(ctx, p)
		if want := (connectors.SweepResult{Matched: 2, Deleted: 2, Bytes: int64(len("held") + len("held nested"))}); err != nil || lifted != want {
			t.Errorf("sweep after the hold = %+v, %v; want %+v", lifted, err, want)
		}
		want = []string{"generated/u1/a.png", "uploads/h1/new.png", "uploads/stray.txt", "uploads/u1/new.png"}
		if got := keys(t, b); !slices.Equal(got, want) {
			t.Errorf("left after the hold was lifted: %q, want %q", got, want)
		}
	})
}

// A sweep stopped after its first batch resumes after that batch's
// cursor: what was deleted is not counted again, and neither are the held
// objects before the cursor, on stores that start the listing there (S3)
// and on those that list from the start and pass over them.
func TestSweepResume(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *blob.Bucket, versioned string) {
		ctx := context.Background()
		objs := map[string]string{"uploads/a0/1.png": "held", "uploads/a0/2.png": "held"}
		var all []string
		for i := range 30 {
			k := fmt.Sprintf("uploads/r%02d/x.png", i)
			objs[k] = "old"
			all = append(all, k)
		}
		put(t, b, objs)
		time.Sleep(1100 * time.Millisecond)
		put(t, b, map[string]string{"uploads/r99/new.png": "new"})
		c, cutoff := agedConnector(t, b, versioned, all, []string{"uploads/r99/new.png"})

		errStop := errors.New("the job was stopped")
		var first connectors.SweepBatch
		p := sweepParams("uploads", cutoff)
		p.Held = [][]connectors.Identity{{user("a0")}}
		p.Progress = func(_ context.Context, b connectors.SweepBatch) error {
			first = b
			return errStop
		}
		res, err := c.Sweep(ctx, p)
		if !errors.Is(err, errStop) {
			t.Fatalf("Sweep whose progress fails: %v", err)
		}
		if first.Deleted == 0 || res.Deleted != first.Deleted || res.Held != 2 || first.Cursor == "" {
			t.Fatalf("stopped sweep = %+v, first batch %+v; want the batch's deletes and the 2 held objects", res, first)
		}

		p.Resume, p.Progress = first.Cursor, nil
		rest, err := c.Sweep(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		if left := int64(len(all)) - first.Deleted; rest.Deleted != left || rest.Matched != left || rest.Held != 0 {
			t.Errorf("resumed sweep = %+v; want %d matched and deleted, none held again", rest, left)
		}
		want := []string{"uploads/a0/1.png", "uploads/a0/2.png", "uploads/r99/new.png"}
		if got := keys(t, b); !slices.Equal(got, want) {
			t.Errorf("left: %q, want %q", got, want)
		}
	})
}

// A plan that retains every field deletes nothing: an object cannot keep
// some fields and lose others. The due objects are counted as kept.
func TestSweepRetainOnly(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *blob.Bucket, versioned string) {
		ctx := context.Background()
		put(t, b, map[string]string{"uploads/k1/a.png": "a", "uploads/k2/b.png": "b", "uploads/k3/c.png": "c"})
		time.Sleep(1100 * time.Millisecond)
		put(t, b, map[string]string{"uploads/k1/new.png": "new"})
		c, cutoff := agedConnector(t, b, versioned, []string{"uploads/k1/a.png", "uploads/k2/b.png", "uploads/k3/c.png"}, []string{"uploads/k1/new.png"})
		before := digest(t, b)
		p := sweepParams("uploads", cutoff)
		p.Fields = plan(connectors.ActionRetain)
		p.Held = [][]connectors.Identity{{user("k1")}}
		res, err := c.Sweep(ctx, p)
		if err != nil || res.Matched != 3 || res.Kept != 3 || res.Deleted != 0 || res.Held != 0 || res.Note == "" {
			t.Errorf("retain-only sweep = %+v, %v; want 3 matched and kept, with a note", res, err)
		}
		if digest(t, b) != before {
			t.Error("a retain-only sweep changed the bucket")
		}
		// Masking a field of an object deletes it, as in Erase.
		p.Fields = append(plan(connectors.ActionRetain, "content_type"), plan(connectors.ActionMask, "body")...)
		res, err = c.Sweep(ctx, p)
		if err != nil || res.Matched != 3 || res.Deleted != 2 || res.Held != 1 {
			t.Errorf("sweep masking the body = %+v, %v; want 3 matched, 2 deleted, 1 held", res, err)
		}
	})
}

// Input the data map or the caller got wrong is a permanent error, and
// nothing is deleted.
func TestSweepRefuses(t *testing.T) {
	t.Parallel()
	for _, bk := range []struct {
		name string
		open func(t *testing.T) (*blob.Bucket, string)
	}{
		{"s3", func(t *testing.T) (*blob.Bucket, string) { b, _ := s3Bucket(t, false); return b, "" }},
		{"fileblob", func(t *testing.T) (*blob.Bucket, string) { b, _ := fileBucket(t); return b, "" }},
	} {
		t.Run(bk.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b, _ := bk.open(t)
			put(t, b, map[string]string{"uploads/z1/a.png": "a", "generated/z1/a.png": "b"})
			now := time.Now().Add(time.Hour)
			c := newConnector(t, b, func(cfg *objectstore.Config) {
				cfg.Clock = clock.NewFake(now)
				cfg.DataMap = static(objectMap(map[string]string{"top": "{user_id}/files/"}))
			})
			cutoff := now.Add(-time.Minute) // every object is due
			before := digest(t, b)
			for name, mod := range map[string]func(p *connectors.SweepParams){
				"unknown dataset":     func(p *connectors.SweepParams) { p.Dataset = "nope" },
				"another system":      func(p *connectors.SweepParams) { p.System = "postgres" },
				"timestamp field":     func(p *connectors.SweepParams) { p.Timestamp = "created_at" },
				"no fields":           func(p *connectors.SweepParams) { p.Fields = nil },
				"unknown field":       func(p *connectors.SweepParams) { p.Fields = plan(connectors.ActionDelete, "exif") },
				"zero cutoff":         func(p *connectors.SweepParams) { p.Cutoff = time.Time{} },
				"future cutoff":       func(p *connectors.SweepParams) { p.Cutoff = now.Add(time.Minute) },
				"no fixed head":       func(p *connectors.SweepParams) { p.Dataset = "top" },
				"foreign cursor":      func(p *connectors.SweepParams) { p.Resume = "generated/z1/a.png" },
				"too many prefixes":   func(p *connectors.SweepParams) { p.Held = [][]connectors.Identity{manyUsers(300)} },
				"dry run, bad system": func(p *connectors.SweepParams) { p.System, p.DryRun = "postgres", true },
			} {
				p := sweepParams("uploads", cutoff)
				mod(&p)
				res, err := c.Sweep(ctx, p)
				if retry, _ := connectors.Classify(err); err == nil || retry {
					t.Errorf("%s: want a permanent error, got %+v, %v", name, res, err)
				}
				if name == "timestamp field" && (err == nil || !strings.Contains(err.Error(), "created_at")) {
					t.Errorf("%s: the error does not name the field: %v", name, err)
				}
			}
			if digest(t, b) != before {
				t.Error("a refused sweep changed the bucket")
			}
			// An empty timestamp is the data map's default, not a mistake.
			p := sweepParams("uploads", cutoff)
			p.Timestamp = ""
			if res, err := c.Sweep(ctx, p); err != nil || res.Deleted != 1 {
				t.Errorf("sweep without a timestamp field = %+v, %v; want 1 deleted", res, err)
			}
		})
	}
}

func manyUsers(n int) []connectors.Identity {
	out := make([]connectors.Identity, n)
	for i := range out {
		out[i] = user(fmt.Sprint("m", i))
	}
	return out
}

// On S3 a resumed sweep asks the store to start after the cursor rather
// than list the ground already covered again.
func TestSweepResumeStartsAfterOnS3(t *testing.T) {
	t.Parallel()
	for _, versioned := range []bool{false, true} {
		t.Run(fmt.Sprint("versioned=", versioned), func(t *testing.T) {
			t.Parallel()
			_, name := s3Bucket(t, versioned)
			p := newProxy(t)
			b := p.bucket(t, name)
			put(t, b, map[string]string{"uploads/s1/a.png": "a", "uploads/s2/b.png": "b"})
			var mu sync.Mutex
			var lists []url.Values
			p.set(func(r *http.Request) *fault {
				q := r.URL.Query()
				if r.Method == http.MethodGet && (q.Has("list-type") || q.Has("versions")) {
					mu.Lock()
					lists = append(lists, q)
					mu.Unlock()
				}
				return nil
			})
			now := time.Now().Add(time.Hour)
			c := newConnector(t, b, func(cfg *objectstore.Config) { cfg.Clock = clock.NewFake(now) })
			sp := sweepParams("uploads", now.Add(-time.Minute))
			sp.Resume = "uploads/s1/a.png"
			res, err := c.Sweep(context.Background(), sp)
			if err != nil || res.Deleted != 1 || res.Matched != 1 {
				t.Errorf("resumed sweep = %+v, %v; want the one key after the cursor", res, err)
			}
			if got := keys(t, b); !slices.Equal(got, []string{"uploads/s1/a.png"}) {
				t.Errorf("left: %q", got)
			}
			mu.Lock()
			defer mu.Unlock()
			param := "start-after"
			if versioned {
				param = "key-marker"
			}
			if len(lists) == 0 || lists[0].Get(param) != sp.Resume {
				t.Errorf("list requests %v; want the first to carry %s=%s", lists, param, sp.Resume)
			}
		})
	}
}
