// Package objectstore is the connector for object storage: S3 and
// S3-compatible stores, Google Cloud Storage, Azure Blob Storage and a local
// directory, all through gocloud.dev/blob with one code path.
//
// Object storage is where a product keeps the heaviest personal data it
// has: uploaded photos, voice notes, generated images, exported archives.
// The leading open-source privacy tool reaches databases and SaaS APIs but
// not buckets, so a person's erasure request there ends with their photos
// still online. This connector closes that gap, driven by the data map: a
// dataset is a key template such as "uploads/{user_id}/", optionally
// narrowed by a metadata tag, and the subject's identities fill it in.
//
// Safety rules, enforced here rather than trusted to the map or the
// request:
//   - templates and identity values that could address another subject's
//     keys (dot segments, absolute keys, separators and encoded separators,
//     control characters, a placeholder not closed by '/') are refused; a
//     refused value reaches nothing rather than a wider prefix;
//   - every key the store lists is checked to lie under the prefix asked
//     for before it is read or deleted;
//   - objects are streamed into the export, never held in memory;
//   - erasure deletes every version of an object in a versioned S3 bucket
//     and ends with a pass that lists the prefix again and finds nothing;
//   - keys name people (they contain account ids), so logs carry counts and
//     keyed hashes, and errors carry the store's message, never a key.
package objectstore

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"

	// The drivers register their URL schemes (s3://, gs://, azblob://,
	// file://) for Config.URL.
	_ "gocloud.dev/blob/azureblob"
	_ "gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/datamap"
	"github.com/steward-privacy/steward/identity"
)

// Config configures one connector: one data-map system in one bucket.
type Config struct {
	// System is the data-map system id (e.g. "object_store").
	System string
	// URL is the bucket as a gocloud URL, e.g.
	// "s3://bucket?region=eu-central-1",
	// "s3://bucket?endpoint=http://127.0.0.1:7070&region=us-east-1&use_path_style=true",
	// "gs://bucket", "azblob://container" or "file:///var/lib/objects".
	// Credentials come from the driver's usual chain (for S3 the AWS
	// environment variables, profile or role). Close closes a bucket
	// opened from URL.
	URL string
	// Bucket is an already opened bucket, used instead of URL; the
	// connector does not close it.
	Bucket *blob.Bucket
	// DataMap returns the current data map; the connector recompiles its
	// templates when it returns a new map (a policy reload).
	DataMap func() *datamap.Map
	// Tags narrows datasets to objects carrying a metadata entry: two
	// datasets under one key template (images and archives of the same
	// person) are told apart by it. Keyed by dataset id. Checking a tag
	// costs one metadata read per object.
	Tags map[string]Tag
	// Clock tells the time (cutoffs, Retry-After dates); default the wall
	// clock.
	Clock connectors.Clock
	// HashKey keys the hashes logged in place of object keys and prefixes;
	// default a random key per process (hashes then compare only within
	// one run).
	HashKey []byte
	Log     *slog.Logger
	// PageSize is how many objects one list call returns; default 1000 (the
	// S3 maximum, and the most one S3 DeleteObjects call takes).
	PageSize int
	// DeleteConcurrency bounds the single deletes in flight on stores
	// without a batch delete (everything but S3); default 16.
	DeleteConcurrency int
}

// Tag is a metadata entry an object must carry to belong to a dataset.
// Key is compared case-insensitively (S3 lower-cases metadata keys).
type Tag struct {
	Key   string
	Value string
}

// Connector reaches one system's datasets in one bucket. It is safe for
// concurrent use.
type Connector struct {
	cfg    Config
	bucket *blob.Bucket
	own    bool // opened from cfg.URL, so Close closes it
	log    *slog.Logger
	clock  connectors.Clock
	hkey   []byte

	// s3 and s3Bucket are set when the bucket is S3: versions and batch
	// deletes go through the SDK, which gocloud's portable API lacks.
	s3       *s3.Client
	s3Bucket string
	// note is what erasure cannot reach on this store, for the report.
	note string
	// versioned latches true once the bucket is seen versioned: S3
	// versioning can be suspended but never switched off again, so old
	// versions may exist from then on.
	versioned atomic.Bool

	mu    sync.Mutex
	model *model

	// inject, set only by tests (export_test.go), fails the next call of
	// an operation before it does anything.
	inject func(op string) error
}

// Operation names, as errors and the test hook name them.
const (
	opAccess = "access"
	opErase  = "erase"
	opAge    = "delete-older-than"
)

// New opens the bucket (unless given) and compiles every dataset of the
// system; a dataset without a usable key template is an error naming it.
// It makes no request to the store, so a store that is briefly down does
// not stop the service from starting.
func New(ctx context.Context, cfg Config) (*Connector, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c := &Connector{cfg: cfg, bucket: cfg.Bucket, log: cfg.Log, clock: cfg.Clock, hkey: cfg.HashKey}
	if c.hkey == nil {
		c.hkey = make([]byte, 32)
		_, _ = rand.Read(c.hkey)
	}
	if c.bucket == nil {
		b, err := blob.OpenBucket(ctx, cfg.URL)
		if err != nil {
			// The URL may carry an endpoint but never a person; the
			// driver's message names what is wrong with it.
			return nil, fmt.Errorf("objectstore %s: open bucket: %w", cfg.System, err)
		}
		c.bucket, c.own = b, true
	}
	if err := c.findS3(ctx); err != nil {
		c.Close()
		return nil, err
	}
	c.note = versionsNote(c.bucket)
	if _, err := c.current(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (cfg *Config) defaults() error {
	if cfg.System == "" {
		return errors.New("objectstore: Config.System is required")
	}
	if (cfg.URL == "") == (cfg.Bucket == nil) {
		return fmt.Errorf("objectstore %s: exactly one of Config.URL and Config.Bucket is required", cfg.System)
	}
	if cfg.DataMap == nil {
		return fmt.Errorf("objectstore %s: Config.DataMap is required", cfg.System)
	}
	if cfg.Clock == nil {
		cfg.Clock = connectors.WallClock{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.PageSize <= 0 || cfg.PageSize > 1000 {
		cfg.PageSize = 1000
	}
	if cfg.DeleteConcurrency <= 0 {
		cfg.DeleteConcurrency = 16
	}
	for ds, t := range cfg.Tags {
		if t.Key == "" {
			return fmt.Errorf("objectstore %s: Config.Tags[%q] has no key", cfg.System, ds)
		}
	}
	return nil
}

// errStopList aborts a list call before it is sent.
var errStopList = errors.New("objectstore: list call only inspected")

// findS3 reaches the S3 client under the bucket, and the bucket's name,
// which gocloud keeps to itself: a list call is prepared and inspected,
// then stopped before anything is sent.
func (c *Connector) findS3(ctx context.Context) error {
	var client *s3.Client
	if !c.bucket.As(&client) {
		return nil
	}
	name := ""
	_, _, err := c.bucket.ListPage(ctx, blob.FirstPageToken, 1, &blob.ListOptions{
		BeforeList: func(as func(any) bool) error {
			var v2 *s3.ListObjectsV2Input
			var v1 *s3.ListObjectsInput
			switch {
			case as(&v2):
				name = deref(v2.Bucket)
			case as(&v1):
				name = deref(v1.Bucket)
			}
			return errStopList
		},
	})
	if name == "" {
		return fmt.Errorf("objectstore %s: cannot tell the S3 bucket's name (%v)", c.cfg.System, err)
	}
	c.s3, c.s3Bucket = client, name
	return nil
}

// versionsNote says plainly what erasure leaves on stores whose versions
// gocloud cannot reach: GCS object versioning and soft delete, and Azure
// blob versioning and soft delete, keep copies of deleted objects that
// only the bucket's own policy expires.
func versionsNote(b *blob.Bucket) string {
	var gcs *storage.Client
	var az *container.Client
	switch {
	case b.As(&gcs):
		return "If the bucket has object versioning or soft delete on, Google Cloud Storage keeps noncurrent copies of the deleted objects until its own lifecycle or retention settings remove them."
	case b.As(&az):
		return "If the container has blob versioning or soft delete on, Azure Storage keeps previous versions or soft-deleted copies of the deleted blobs until its own lifecycle or retention settings remove them."
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Close closes the bucket when the connector opened it.
func (c *Connector) Close() error {
	if c.own {
		return c.bucket.Close()
	}
	return nil
}

// Capabilities: access and erasure. An object store cannot tell whose an
// id is (ResolveIdentities), and neither correcting nor flagging a file
// is something a bucket can do, so staff get those as manual tasks.
func (c *Connector) Capabilities() connectors.Capabilities {
	return connectors.Capabilities{Access: true, Erase: true}
}

// ResolveIdentities is not supported: keys hold ids but say nothing about
// which other ids belong to the same person.
func (c *Connector) ResolveIdentities(context.Context, []connectors.Identity) ([]connectors.Identity, error) {
	return nil, connectors.ErrUnsupported
}

// Rectify is not supported: an object's content cannot be corrected field
// by field.
func (c *Connector) Rectify(context.Context, connectors.RectifyParams) (connectors.RectifyResult, error) {
	return connectors.RectifyResult{}, connectors.ErrUnsupported
}

// Restrict is not supported: a bucket has nowhere to mark processing
// restricted.
func (c *Connector) Restrict(context.Context, connectors.RestrictParams) (connectors.RestrictResult, error) {
	return connectors.RestrictResult{}, connectors.ErrUnsupported
}

// model is the system's datasets compiled from one data map.
type model struct {
	dm       *datamap.Map
	datasets map[string]*dataset
}

// dataset is one compiled dataset.
type dataset struct {
	id     string
	tmpl   *Template
	fields map[string]string // field -> category
	tag    *Tag
	// narrower are the templates of the system's other datasets that lie
	// inside this one ("uploads/{user_id}/thumbs/" inside
	// "uploads/{user_id}/"): their keys are theirs, not this dataset's.
	narrower []*Template
}

// owns reports whether a listed key (under one of the dataset's prefixes)
// belongs to the dataset rather than to a narrower one.
func (ds *dataset) owns(key string) bool {
	for _, n := range ds.narrower {
		if n.Match(key) {
			return false
		}
	}
	return true
}

// current returns the model for the current data map, compiling it when
// the map changed since the last call.
func (c *Connector) current() (*model, error) {
	dm := c.cfg.DataMap()
	if dm == nil {
		return nil, connectors.Permanent(fmt.Errorf("objectstore %s: no data map loaded", c.cfg.System))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.model != nil && c.model.dm == dm {
		return c.model, nil
	}
	m, err := compile(dm, c.cfg)
	if err != nil {
		return nil, connectors.Permanent(err)
	}
	c.model = m
	c.log.Info("objectstore connector: data map compiled", "system", c.cfg.System, "datasets", len(m.datasets))
	return m, nil
}

// objectFields are the fields an object has; "metadata.NAME" fields are
// its user metadata.
var objectFields = []string{"body", "content_type", "last_modified", "size"}

const metadataField = "metadata."

func compile(dm *datamap.Map, cfg Config) (*model, error) {
	sys, ok := dm.Systems[cfg.System]
	if !ok {
		return nil, fmt.Errorf("objectstore %s: no such system in the data map", cfg.System)
	}
	if len(sys.Datasets) == 0 {
		return nil, fmt.Errorf("objectstore %s: the system has no datasets", cfg.System)
	}
	m := &model{dm: dm, datasets: map[string]*dataset{}}
	var problems []string
	for _, id := range slices.Sorted(maps.Keys(sys.Datasets)) {
		d := sys.Datasets[id]
		t, err := ParseTemplate(d.Prefix, func(name string) (string, bool) { return placeholderType(dm, d, name) })
		if err != nil {
			problems = append(problems, fmt.Sprintf("dataset %s: %v", id, err))
			continue
		}
		ds := &dataset{id: id, tmpl: t, fields: map[string]string{}}
		for f, fd := range d.Fields {
			if !slices.Contains(objectFields, f) && !strings.HasPrefix(f, metadataField) && !isTemplateField(t, f) {
				problems = append(problems, fmt.Sprintf("dataset %s: field %q is not something an object has (%s, metadata.NAME, or a placeholder of the key template)", id, f, strings.Join(objectFields, ", ")))
			}
			ds.fields[f] = fd.Category
		}
		if tag, ok := cfg.Tags[id]; ok {
			ds.tag = &tag
		}
		m.datasets[id] = ds
	}
	for id := range cfg.Tags {
		if _, ok := sys.Datasets[id]; !ok {
			problems = append(problems, fmt.Sprintf("Config.Tags names dataset %q, which the system does not have", id))
		}
	}
	// Datasets sharing keys: a narrower template's keys are excluded from
	// the wider dataset; two identical templates must be told apart by
	// tags, or erasing one would erase the other.
	ids := slices.Sorted(maps.Keys(m.datasets))
	for _, a := range ids {
		for _, b := range ids {
			if a == b {
				continue
			}
			da, db := m.datasets[a], m.datasets[b]
			na, nb := da.tmpl.normal(), db.tmpl.normal()
			switch {
			case na == nb && a < b && (da.tag == nil || db.tag == nil || *da.tag == *db.tag):
				problems = append(problems, fmt.Sprintf("datasets %s and %s have the same key template %q: give them different Config.Tags, or erasing one erases the other", a, b, da.tmpl))
			case na != nb && strings.HasPrefix(nb, na):
				da.narrower = append(da.narrower, db.tmpl)
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("objectstore %s: %s", cfg.System, strings.Join(problems, "; "))
	}
	return m, nil
}

// normal is the template with placeholders named by type, so that
// "{user}" and "{user_id}" compare equal.
func (t *Template) normal() string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.lit)
		} else {
			b.WriteString("{" + p.typ + "}")
		}
	}
	return b.String()
}

func isTemplateField(t *Template, f string) bool {
	return slices.ContainsFunc(t.parts, func(p part) bool { return p.name == f })
}

// placeholderType resolves a placeholder as the data map does: a field of
// the dataset that is an identity (its type) or a reference (the type of
// the identity field it refers to, or none: values that come from another
// dataset cannot be had from an object store alone), else an identity type
// name, with an optional "_id" ("{user_id}", "{tg}").
func placeholderType(dm *datamap.Map, ds datamap.Dataset, name string) (string, bool) {
	if _, isField := ds.Fields[name]; isField {
		for _, id := range ds.Identities {
			if id.Field == name {
				return id.Type, true
			}
		}
		for _, r := range ds.References {
			if r.Field != name {
				continue
			}
			parts := strings.SplitN(r.To, ".", 3)
			if len(parts) == 3 {
				for _, id := range dm.Systems[parts[0]].Datasets[parts[1]].Identities {
					if id.Field == parts[2] {
						return id.Type, true
					}
				}
			}
			return "", true
		}
	}
	switch t := identity.Type(strings.TrimSuffix(name, "_id")); t {
	case identity.Email, identity.Telegram, identity.User, identity.Visitor, identity.Stripe, identity.Creem, identity.OAuth:
		return string(t), true
	}
	return "", false
}

// enter starts an operation: a cancelled context stops it before anything
// is done, then the test hook, then the current model.
func (c *Connector) enter(ctx context.Context, op string) (*model, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objectstore %s: %s: %w", c.cfg.System, op, err)
	}
	if c.inject != nil {
		if err := c.inject(op); err != nil {
			return nil, err
		}
	}
	return c.current()
}

// dataset returns the target's dataset, or a permanent error: the plan
// names something this connector does not hold.
func (m *model) dataset(system, op string, t connectors.Target) (*dataset, error) {
	if t.System != system {
		return nil, connectors.Permanent(fmt.Errorf("objectstore %s: %s: target system %q is not this connector's", system, op, t.System))
	}
	ds := m.datasets[t.Dataset]
	if ds == nil {
		return nil, connectors.Permanent(fmt.Errorf("objectstore %s: %s: no dataset %q in the data map", system, op, t.Dataset))
	}
	return ds, nil
}

// checkPlan refuses a plan naming fields the dataset does not map.
func (ds *dataset) checkPlan(system, op string, fields []connectors.FieldPlan) error {
	if len(fields) == 0 {
		return connectors.Permanent(fmt.Errorf("objectstore %s: %s %s: the plan has no fields", system, op, ds.id))
	}
	for _, f := range fields {
		if _, ok := ds.fields[f.Field]; !ok {
			return connectors.Permanent(fmt.Errorf("objectstore %s: %s %s: field %q is not in the data map's dataset", system, op, ds.id, f.Field))
		}
	}
	return nil
}

// prefixes expands the dataset's template for the target's identities.
func (c *Connector) prefixes(ds *dataset, op string, ids []connectors.Identity) ([]string, error) {
	ps, err := ds.tmpl.Expand(ids)
	if err != nil {
		return nil, connectors.Permanent(fmt.Errorf("objectstore %s: %s %s: %w", c.cfg.System, op, ds.id, err))
	}
	return ps, nil
}

// hash is a keyed hash of a key or prefix, for logs: it tells two runs on
// the same subject apart from runs on different ones without naming
// anyone.
func (c *Connector) hash(s string) string {
	m := hmac.New(sha256.New, c.hkey)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

var _ connectors.Connector = (*Connector)(nil)
