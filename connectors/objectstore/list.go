package objectstore

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// object is one listed object, or one version of it.
type object struct {
	// key is the object's key as gocloud names it; raw is the key as the
	// store does. They differ only for keys gocloud escapes (control
	// characters, "../"), and deletes and reads must use the store's.
	key, raw string
	size     int64
	mod      time.Time
	// version is the S3 version id, set only when listing versions.
	version string
	// marker is an S3 delete marker: a version without content.
	marker bool
}

// filter decides, per listed object, whether an operation takes it.
type filter func(ctx context.Context, o object) (bool, error)

// walk lists the current objects under prefix, a page at a time, and
// hands fn those of the dataset (neither a narrower dataset's nor, with a
// tag, untagged) that keep accepts. fn may delete what it is given: the
// next page starts after the last key listed.
func (c *Connector) walk(ctx context.Context, ds *dataset, prefix string, keep filter, fn func([]object) error) error {
	return c.walkAfter(ctx, ds, prefix, "", keep, fn)
}

// walkAfter is walk starting after the store key after ("" for the
// start). Only S3 can be asked to start there (StartAfter, or Marker for
// the legacy list call); gocloud's portable ListOptions cannot say it, so
// other stores list from the start and the caller's filter must pass over
// the keys up to after itself.
func (c *Connector) walkAfter(ctx context.Context, ds *dataset, prefix, after string, keep filter, fn func([]object) error) error {
	token := blob.FirstPageToken
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return err
		}
		opts := &blob.ListOptions{Prefix: prefix}
		if after != "" && first {
			// Only the first call: the later ones continue from a token.
			opts.BeforeList = func(as func(any) bool) error {
				var v2 *s3.ListObjectsV2Input
				var v1 *s3.ListObjectsInput
				switch {
				case as(&v2):
					v2.StartAfter = aws.String(after)
				case as(&v1):
					v1.Marker = aws.String(after)
				}
				return nil
			}
		}
		page, next, err := c.bucket.ListPage(ctx, token, c.cfg.PageSize, opts)
		if err != nil {
			return err
		}
		objs := make([]object, 0, len(page))
		for _, lo := range page {
			if lo.IsDir {
				continue
			}
			o := object{key: lo.Key, raw: lo.Key, size: lo.Size, mod: lo.ModTime}
			var so s3types.Object
			if lo.As(&so) && so.Key != nil {
				o.raw = *so.Key
			}
			ok, err := c.accept(ctx, ds, prefix, o, keep)
			if err != nil {
				return err
			}
			if ok {
				objs = append(objs, o)
			}
		}
		if len(objs) > 0 {
			if err := fn(objs); err != nil {
				return err
			}
		}
		if len(next) == 0 {
			return nil
		}
		token = next
	}
}

// walkVersions is walk over every version and delete marker under prefix
// in a versioned S3 bucket.
//
// Pages of versions are resumed from a (key, version) marker, and deleting
// the marker's own version before the next page is asked for makes some
// servers (versitygw) skip the rest of that key's versions; others list the
// marker's entry again. So the versions of each page's last key are held
// back and handed out with the next page (a key's versions then also go in
// one batch), and entries listed again are dropped before anything
// (keep, a tag check, a count) sees them twice.
func (c *Connector) walkVersions(ctx context.Context, ds *dataset, prefix string, keep filter, fn func([]object) error) error {
	return c.walkVersionsAfter(ctx, ds, prefix, "", keep, fn)
}

// walkVersionsAfter is walkVersions starting after every version of the
// key after ("" for the start): a key marker without a version marker.
// Not every server honours that (versitygw lists from the start), so the
// caller's filter must pass over the keys up to after itself, as for
// walkAfter.
func (c *Connector) walkVersionsAfter(ctx context.Context, ds *dataset, prefix, after string, keep filter, fn func([]object) error) error {
	in := &s3.ListObjectVersionsInput{
		Bucket:  aws.String(c.s3Bucket),
		Prefix:  aws.String(prefix),
		MaxKeys: aws.Int32(int32(c.cfg.PageSize)),
	}
	if after != "" {
		in.KeyMarker = aws.String(after)
	}
	type vid struct{ key, version string }
	var (
		held     []object         // the previous page's last key, accepted
		boundary = map[vid]bool{} // every entry listed for that key
		lastKey  string
	)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		out, err := c.s3.ListObjectVersions(ctx, in)
		if err != nil {
			return err
		}
		listed := make([]object, 0, len(out.Versions)+len(out.DeleteMarkers))
		for _, v := range out.Versions {
			k := aws.ToString(v.Key)
			listed = append(listed, object{key: k, raw: k, size: aws.ToInt64(v.Size), mod: aws.ToTime(v.LastModified), version: aws.ToString(v.VersionId)})
		}
		for _, m := range out.DeleteMarkers {
			k := aws.ToString(m.Key)
			listed = append(listed, object{key: k, raw: k, mod: aws.ToTime(m.LastModified), version: aws.ToString(m.VersionId), marker: true})
		}
		// S3 lists versions and markers apart; by key they interleave.
		slices.SortStableFunc(listed, func(a, b object) int { return strings.Compare(a.raw, b.raw) })
		truncated := aws.ToBool(out.IsTruncated) && len(listed) > 0
		last := ""
		if truncated {
			last = listed[len(listed)-1].raw
		}
		next := map[vid]bool{}
		if last == lastKey {
			// One key's versions span pages: remember them all.
			next = boundary
		}
		batch := held
		held = nil
		for _, o := range listed {
			id := vid{o.raw, o.version}
			if boundary[id] {
				continue // listed again across the page boundary
			}
			if o.raw == last {
				next[id] = true
			}
			ok, err := c.accept(ctx, ds, prefix, o, keep)
			if err != nil {
				return err
			}
			if ok {
				batch = append(batch, o)
			}
		}
		if truncated {
			i := len(batch)
			for i > 0 && batch[i-1].raw == last {
				i--
			}
			batch, held = batch[:i], slices.Clone(batch[i:])
		}
		lastKey, boundary = last, next
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
		}
		if !truncated {
			return nil
		}
		in.KeyMarker, in.VersionIdMarker = out.NextKeyMarker, out.NextVersionIdMarker
	}
}

// accept checks a listed object lies under the prefix asked for (a store
// that answers otherwise is not trusted with a delete), belongs to the
// dataset, and passes keep.
func (c *Connector) accept(ctx context.Context, ds *dataset, prefix string, o object, keep filter) (bool, error) {
	if !strings.HasPrefix(o.key, prefix) || !strings.HasPrefix(o.raw, prefix) {
		return false, errOutside
	}
	if !ds.owns(o.raw) {
		return false, nil
	}
	if keep != nil {
		if ok, err := keep(ctx, o); !ok || err != nil {
			return false, err
		}
	}
	return c.tagged(ctx, ds, o)
}

// tagged reports whether o carries the dataset's tag (always, without
// one). Delete markers carry nothing and are never tagged.
func (c *Connector) tagged(ctx context.Context, ds *dataset, o object) (bool, error) {
	if ds.tag == nil {
		return true, nil
	}
	if o.marker {
		return false, nil
	}
	var md map[string]string
	if o.version != "" {
		out, err := c.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(c.s3Bucket), Key: aws.String(o.raw), VersionId: aws.String(o.version)})
		if isNotFound(err) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		md = out.Metadata
	} else {
		attrs, err := c.bucket.Attributes(ctx, o.key)
		if gcerrors.Code(err) == gcerrors.NotFound {
			return false, nil // deleted since it was listed
		}
		if err != nil {
			return false, err
		}
		md = attrs.Metadata
	}
	for k, v := range md {
		if strings.EqualFold(k, ds.tag.Key) {
			return v == ds.tag.Value, nil
		}
	}
	return false, nil
}

// readOptions make a read address the store's own key (see object.key).
func readOptions(o object) *blob.ReaderOptions {
	if o.raw == o.key {
		return nil
	}
	return &blob.ReaderOptions{BeforeRead: func(as func(any) bool) error {
		var in *s3.GetObjectInput
		if as(&in) {
			in.Key = aws.String(o.raw)
		}
		return nil
	}}
}

// isNotFound reports an S3 SDK error saying the key or version is gone.
func isNotFound(err error) bool {
	if err == nil {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NoSuchVersion", "NotFound":
			return true
		}
	}
	return details(err).status == http.StatusNotFound && !isNoSuchBucket(err)
}

func isNoSuchBucket(err error) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket"
}
