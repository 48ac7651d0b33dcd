package objectstore_test

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"golang.org/x/sync/errgroup"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/objectstore"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/testpeer"
)

// The package's one versitygw, started by the first test that needs it
// (fuzzing and local-directory tests do not); each test makes its own
// buckets.
var (
	peerOnce sync.Once
	peer     *testpeer.S3Server
	peerErr  error
)

func gateway(t testing.TB) *testpeer.S3Server {
	t.Helper()
	peerOnce.Do(func() { peer, peerErr = testpeer.StartS3() })
	if peerErr != nil {
		t.Fatal(peerErr)
	}
	return peer
}

func TestMain(m *testing.M) {
	code := m.Run()
	if peer != nil {
		peer.Stop()
	}
	os.Exit(code)
}

const system = "object_store"

var bucketSeq atomic.Int64

// s3Bucket creates a new bucket on the gateway and opens it through
// s3blob; the name is returned for raw SDK calls.
func s3Bucket(t testing.TB, versioned bool) (*blob.Bucket, string) {
	t.Helper()
	gw := gateway(t)
	name := fmt.Sprintf("steward-%d-%d", time.Now().UnixNano()%1e6, bucketSeq.Add(1))
	gw.CreateBucket(t, name, versioned)
	return gw.OpenBucket(t, name), name
}

// fileBucket opens a fresh local-directory bucket.
func fileBucket(t testing.TB) (*blob.Bucket, string) {
	t.Helper()
	dir := t.TempDir()
	b, err := fileblob.OpenBucket(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, dir
}

// objectMap is the object_store system of policies/data/datamap.yaml,
// with extra datasets keyed as given (dataset id -> key template).
func objectMap(extra map[string]string) *datamap.Map {
	fields := func() map[string]datamap.Field {
		return map[string]datamap.Field{
			"body":          {Category: "user.content.image"},
			"content_type":  {Category: "system.operations"},
			"last_modified": {Category: "system.operations"},
		}
	}
	ds := map[string]datamap.Dataset{
		"uploads":   {Prefix: "uploads/{user_id}/", Timestamp: "last_modified", Fields: fields()},
		"masks":     {Prefix: "masks/{user_id}/", Timestamp: "last_modified", Fields: fields()},
		"generated": {Prefix: "generated/{user_id}/", Timestamp: "last_modified", Fields: fields()},
	}
	for id, prefix := range extra {
		ds[id] = datamap.Dataset{Prefix: prefix, Timestamp: "last_modified", Fields: fields()}
	}
	return &datamap.Map{Version: 1, Systems: map[string]datamap.System{
		system: {Name: "Object storage", Kind: datamap.KindObjectStore, Connector: datamap.ConnectorObjectStore, Datasets: ds},
	}}
}

func static(m *datamap.Map) func() *datamap.Map { return func() *datamap.Map { return m } }

// newConnector opens a connector on b with the test data map unless cfg
// says otherwise.
func newConnector(t testing.TB, b *blob.Bucket, mod func(*objectstore.Config)) *objectstore.Connector {
	t.Helper()
	cfg := objectstore.Config{System: system, Bucket: b, DataMap: static(objectMap(nil)), PageSize: 7,
		Clock: clock.NewFake(time.Now().Add(time.Hour))}
	if mod != nil {
		mod(&cfg)
	}
	c, err := objectstore.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// put writes objects (key -> content) concurrently.
func put(t testing.TB, b *blob.Bucket, objs map[string]string) {
	t.Helper()
	var g errgroup.Group
	g.SetLimit(16)
	for k, v := range objs {
		g.Go(func() error {
			return b.WriteAll(context.Background(), k, []byte(v), &blob.WriterOptions{ContentType: contentType(k)})
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

func contentType(key string) string {
	switch {
	case strings.HasSuffix(key, ".png"):
		return "image/png"
	case strings.HasSuffix(key, ".jpg"):
		return "image/jpeg"
	}
	return "application/octet-stream"
}

// keys lists every key in the bucket, sorted.
func keys(t testing.TB, b *blob.Bucket) []string {
	t.Helper()
	var out []string
	it := b.List(nil)
	for {
		o, err := it.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o.Key)
	}
	slices.Sort(out)
	return out
}

// digest is a checksum of every object in the bucket (key, size, content
// hash) except those under the excluded prefixes: other subjects' data,
// which no operation on one subject may change.
func digest(t testing.TB, b *blob.Bucket, exclude ...string) int {
	t.Helper()
	h := crc32.NewIEEE()
	n := 0
	it := b.List(nil)
	for {
		o, err := it.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(exclude, func(p string) bool { return strings.HasPrefix(o.Key, p) }) {
			continue
		}
		n++
		fmt.Fprintf(h, "%s\x00%d\x00%x\n", o.Key, o.Size, o.MD5)
	}
	return int(h.Sum32()) ^ n<<20
}

// versions lists every version and delete marker under prefix through
// the SDK, as "key@version" (markers as "key@version!").
func versions(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	var out []string
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	for {
		res, err := gateway(t).Client().ListObjectVersions(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range res.Versions {
			out = append(out, aws.ToString(v.Key)+"@"+aws.ToString(v.VersionId))
		}
		for _, m := range res.DeleteMarkers {
			out = append(out, aws.ToString(m.Key)+"@"+aws.ToString(m.VersionId)+"!")
		}
		if !aws.ToBool(res.IsTruncated) {
			break
		}
		in.KeyMarker, in.VersionIdMarker = res.NextKeyMarker, res.NextVersionIdMarker
	}
	slices.Sort(out)
	return out
}

// version is one version or delete marker, as the SDK lists it.
type version struct {
	key, id string
	size    int64
	mod     time.Time
	marker  bool
}

func versionInfo(t testing.TB, bucket, prefix string) []version {
	t.Helper()
	var out []version
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)}
	for {
		res, err := gateway(t).Client().ListObjectVersions(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range res.Versions {
			out = append(out, version{aws.ToString(v.Key), aws.ToString(v.VersionId), aws.ToInt64(v.Size), aws.ToTime(v.LastModified), false})
		}
		for _, m := range res.DeleteMarkers {
			out = append(out, version{aws.ToString(m.Key), aws.ToString(m.VersionId), 0, aws.ToTime(m.LastModified), true})
		}
		if !aws.ToBool(res.IsTruncated) {
			return out
		}
		in.KeyMarker, in.VersionIdMarker = res.NextKeyMarker, res.NextVersionIdMarker
	}
}

func user(v string) connectors.Identity { return connectors.Identity{Type: "user", Value: v} }

func target(dataset string, ids ...connectors.Identity) connectors.Target {
	return connectors.Target{System: system, Dataset: dataset, Identities: ids, RequestID: "r", IdempotencyKey: "r/1"}
}

func plan(action string, fields ...string) []connectors.FieldPlan {
	if len(fields) == 0 {
		fields = []string{"body", "content_type", "last_modified"}
	}
	out := make([]connectors.FieldPlan, len(fields))
	for i, f := range fields {
		out[i] = connectors.FieldPlan{Field: f, Category: "user.content.image", Action: action}
		if action == connectors.ActionRetain {
			out[i].Basis, out[i].Until = "contract", "account closure"
		}
	}
	return out
}

// memSink is a small Sink for tests outside the suite, recording content.
type memSink struct {
	mu      sync.Mutex
	records []connectors.Record
	files   map[string][]byte
}

func (s *memSink) Record(_ context.Context, r connectors.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records = append(s.records, r)
	return nil
}

func (s *memSink) File(_ context.Context, f connectors.File, r io.Reader) error {
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files == nil {
		s.files = map[string][]byte{}
	}
	s.files[f.Name] = b.Bytes()
	return nil
}

func (s *memSink) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.records {
		out = append(out, r.Key)
	}
	slices.Sort(out)
	return out
}
