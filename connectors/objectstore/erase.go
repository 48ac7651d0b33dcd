package objectstore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/steward-privacy/steward/connectors"
)

// maxPasses bounds the erase loop. A pass deletes what it lists; the pass
// after it lists the prefixes again and is the verification. Another pass
// has work only when something was uploaded under the prefix meanwhile
// (the application still serving the person); after maxPasses such
// passes the task fails as retryable rather than chase an upload loop.
const maxPasses = 3

// Erase deletes the subject's objects in the target dataset. An object is
// one value (its content): it cannot lose some fields and keep others, so
// it is deleted when the plan deletes or masks any of its fields, and kept
// (reported in Retained) only when the plan retains every field. In a
// versioned S3 bucket every version and delete marker under the prefix
// goes, or the "deleted" photo would still be one request away. It ends
// with a pass that lists the prefixes again and finds nothing, which the
// result reports as Verified. Deleted counts objects, Bytes the content
// removed (every version's).
func (c *Connector) Erase(ctx context.Context, p connectors.EraseParams) (connectors.EraseResult, error) {
	var res connectors.EraseResult
	m, err := c.enter(ctx, opErase)
	if err != nil {
		return res, err
	}
	ds, err := m.dataset(c.cfg.System, opErase, p.Target)
	if err != nil {
		return res, err
	}
	if err := ds.checkPlan(c.cfg.System, opErase, p.Fields); err != nil {
		return res, err
	}
	prefixes, err := c.prefixes(ds, opErase, p.Identities)
	if err != nil {
		return res, err
	}
	subject := c.hash(strings.Join(prefixes, "\n"))
	if !erases(p.Fields) {
		n := 0
		for _, prefix := range prefixes {
			if err := c.walk(ctx, ds, prefix, nil, func(objs []object) error { n += len(objs); return nil }); err != nil {
				return res, c.fail(ctx, opErase, ds.id, err)
			}
		}
		res.Retained, res.Verified = retained(p.Fields, n), true
		c.log.Info("objectstore erase: every field retained", "system", c.cfg.System, "dataset", ds.id, "subject", subject, "kept", n)
		return res, nil
	}
	versioned, err := c.isVersioned(ctx)
	if err != nil {
		return res, c.fail(ctx, opErase, ds.id, err)
	}
	for pass := 1; ; pass++ {
		st, err := c.erasePass(ctx, ds, prefixes, versioned)
		res.Deleted += st.objects
		res.Bytes += st.bytes
		if err != nil {
			return res, c.fail(ctx, opErase, ds.id, err)
		}
		if st.found == 0 {
			res.Verified = true
			if res.Deleted > 0 {
				res.Note = c.note
			}
			c.log.Info("objectstore erase", "system", c.cfg.System, "dataset", ds.id, "subject", subject,
				"prefixes", len(prefixes), "deleted", res.Deleted, "bytes", res.Bytes, "passes", pass, "versioned", versioned)
			return res, nil
		}
		if pass > maxPasses {
			c.log.Warn("objectstore erase: objects keep appearing", "system", c.cfg.System, "dataset", ds.id, "subject", subject, "passes", pass)
			return res, c.fail(ctx, opErase, ds.id, connectors.Retryable(
				fmt.Errorf("objects keep appearing under the subject's prefix after %d passes (is the application still writing them?)", maxPasses), 0))
		}
	}
}

// erases reports whether the plan deletes or masks any field, which for
// an object means deleting it.
func erases(fields []connectors.FieldPlan) bool {
	for _, f := range fields {
		if f.Action == connectors.ActionDelete || f.Action == connectors.ActionMask {
			return true
		}
	}
	return false
}

func retained(fields []connectors.FieldPlan, n int) []connectors.Retained {
	if n == 0 {
		return nil
	}
	var out []connectors.Retained
	for _, f := range fields {
		if f.Action == connectors.ActionRetain {
			out = append(out, connectors.Retained{Field: f.Field, Basis: f.Basis, Until: f.Until, Records: n})
		}
	}
	return out
}

// passStats count one pass: what it listed, and of that what it deleted.
type passStats struct {
	found   int
	objects int
	bytes   int64
}

// erasePass lists every prefix once and deletes what it finds, a page at
// a time.
func (c *Connector) erasePass(ctx context.Context, ds *dataset, prefixes []string, versioned bool) (passStats, error) {
	var st passStats
	last := "" // the last key counted: a key's versions list together
	page := func(objs []object) error {
		st.found += len(objs)
		gone, err := c.remove(ctx, objs)
		st.count(objs, gone, &last)
		return err
	}
	for _, prefix := range prefixes {
		var err error
		if versioned {
			err = c.walkVersions(ctx, ds, prefix, nil, page)
		} else {
			err = c.walk(ctx, ds, prefix, nil, page)
		}
		if err != nil {
			return st, err
		}
	}
	return st, nil
}

// count adds the deleted objects of a page, in listing order: an object
// counts once however many of its versions went, and a delete marker
// removes no content.
func (st *passStats) count(listed, gone []object, last *string) {
	type id struct{ key, version string }
	del := make(map[id]bool, len(gone))
	for _, o := range gone {
		del[id{o.raw, o.version}] = true
	}
	for _, o := range listed {
		if !del[id{o.raw, o.version}] || o.marker {
			continue
		}
		st.bytes += o.size
		if o.version == "" || o.raw != *last {
			st.objects++
			*last = o.raw
		}
	}
}

// isVersioned asks an S3 bucket whether versioning is, or ever was, on.
// Other stores go through gocloud's portable API, which has no versions.
func (c *Connector) isVersioned(ctx context.Context) (bool, error) {
	if c.s3 == nil {
		return false, nil
	}
	if c.versioned.Load() {
		return true, nil
	}
	out, err := c.s3.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(c.s3Bucket)})
	if err != nil {
		var ae smithy.APIError
		if details(err).status == http.StatusNotImplemented || errors.As(err, &ae) && ae.ErrorCode() == "NotImplemented" {
			// An S3-compatible store without versioning.
			return false, nil
		}
		return false, err
	}
	if out.Status != "" {
		c.versioned.Store(true)
		return true, nil
	}
	return false, nil
}

// RetentionResult counts what DeleteOlderThan did.
type RetentionResult struct {
	// Deleted counts objects deleted (in a versioned bucket, object
	// versions), Bytes their content.
	Deleted int   `json:"deleted"`
	Bytes   int64 `json:"bytes"`
	// Kept counts objects old enough to go that keep protected (a legal
	// hold).
	Kept int `json:"kept"`
}

// DeleteOlderThan is the retention sweep of one dataset: it lists the
// dataset's whole key space (its template up to the first placeholder,
// e.g. "uploads/") and deletes every object of the dataset last modified
// before cutoff, except those keep protects. Keys under that head that do
// not fit the template (no valid id where the placeholder is) are not the
// dataset's and are left alone. Deletes go in batches (S3 DeleteObjects,
// 1,000 keys a call) or DeleteConcurrency at a time. In a versioned S3
// bucket each version older than cutoff goes, and delete markers older
// than cutoff with it. keep may be nil; it is asked only about due
// objects of the dataset, once per key and page, and gets the object key,
// which is personal data.
func (c *Connector) DeleteOlderThan(ctx context.Context, dataset string, cutoff time.Time, keep func(key string) bool) (RetentionResult, error) {
	var res RetentionResult
	m, err := c.enter(ctx, opAge)
	if err != nil {
		return res, err
	}
	ds := m.datasets[dataset]
	if ds == nil {
		return res, connectors.Permanent(fmt.Errorf("objectstore %s: %s: no dataset %q in the data map", c.cfg.System, opAge, dataset))
	}
	st, err := c.sweepOlderThan(ctx, ds, ageSweep{op: opAge, cutoff: cutoff, keep: keep})
	return RetentionResult{Deleted: st.deleted, Bytes: st.bytes, Kept: st.held}, err
}
