package objectstore

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"time"

	"gocloud.dev/gcerrors"

	"github.com/steward-privacy/steward/connectors"
)

// Access discloses the subject's objects in the target dataset: one record
// per object (its key, and the planned fields among body, content_type,
// last_modified, size and metadata.NAME), and, when the plan asks for the
// body, the object's content as a file of the export. Content is streamed
// from the store into the sink as the sink reads it: a 2 GiB video costs
// the connector a read buffer, not 2 GiB.
func (c *Connector) Access(ctx context.Context, p connectors.AccessParams, sink connectors.Sink) (connectors.AccessResult, error) {
	var res connectors.AccessResult
	m, err := c.enter(ctx, opAccess)
	if err != nil {
		return res, err
	}
	ds, err := m.dataset(c.cfg.System, opAccess, p.Target)
	if err != nil {
		return res, err
	}
	if err := ds.checkPlan(c.cfg.System, opAccess, p.Fields); err != nil {
		return res, err
	}
	prefixes, err := c.prefixes(ds, opAccess, p.Identities)
	if err != nil {
		return res, err
	}
	a := &accessor{c: c, ds: ds, fields: p.Fields, sink: sink, res: &res, multi: len(prefixes) > 1}
	for _, f := range p.Fields {
		switch {
		case f.Field == "body":
			a.body = true
		case strings.HasPrefix(f.Field, metadataField):
			a.attrs = true
		case f.Field == "content_type":
			a.contentType = true
		}
	}
	for _, prefix := range prefixes {
		err := c.walk(ctx, ds, prefix, nil, func(objs []object) error {
			for _, o := range objs {
				if err := a.disclose(ctx, prefix, o); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return res, c.fail(ctx, opAccess, ds.id, err)
		}
	}
	c.log.Info("objectstore access", "system", c.cfg.System, "dataset", ds.id, "subject", c.hash(strings.Join(prefixes, "\n")),
		"prefixes", len(prefixes), "records", res.Records, "files", res.Files, "bytes", res.Bytes)
	return res, nil
}

type accessor struct {
	c      *Connector
	ds     *dataset
	fields []connectors.FieldPlan
	sink   connectors.Sink
	res    *connectors.AccessResult
	// multi: the subject reaches several prefixes of the dataset, so file
	// names keep the key from the first placeholder on, or two ids'
	// "a.png" would collide in the export.
	multi bool
	// What the plan needs beyond the listing.
	body, attrs, contentType bool
}

// disclose sends one object: its content first, then its record, so a
// record never names a file that did not arrive.
func (a *accessor) disclose(ctx context.Context, prefix string, o object) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rel := strings.TrimPrefix(o.raw, prefix)
	if a.multi {
		rel = strings.TrimPrefix(o.raw, a.ds.tmpl.Head())
	}
	name := exportName(a.c.cfg.System, a.ds.id, rel)
	var contentType string
	var metadata map[string]string
	if a.attrs || (a.contentType && !a.body) {
		attrs, err := a.c.bucket.Attributes(ctx, o.key)
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil // deleted since it was listed
		}
		if err != nil {
			return err
		}
		contentType, metadata = attrs.ContentType, attrs.Metadata
	}
	if a.body {
		r, err := a.c.bucket.NewReader(ctx, o.key, readOptions(o))
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		contentType = r.ContentType()
		cr := &countingReader{r: r}
		f := connectors.File{Dataset: a.ds.id, Key: o.raw, Name: name, ContentType: contentType, Size: r.Size()}
		err = a.sink.File(ctx, f, cr)
		r.Close()
		if err != nil {
			if cr.err != nil && errors.Is(err, cr.err) {
				return cr.err // the store failed mid-read, not the sink
			}
			return &sinkError{err}
		}
		a.res.Files++
		a.res.Bytes += cr.n
	}
	rec := connectors.Record{Dataset: a.ds.id, Key: o.raw}
	for _, f := range a.fields {
		var v any
		switch {
		case f.Field == "body":
			v = name
		case f.Field == "content_type":
			v = contentType
		case f.Field == "last_modified":
			// Seconds: every store lists at least that, and a repeated
			// export must read the same.
			v = o.mod.UTC().Truncate(time.Second).Format(time.RFC3339)
		case f.Field == "size":
			v = o.size
		case strings.HasPrefix(f.Field, metadataField):
			if mv, ok := lookupFold(metadata, strings.TrimPrefix(f.Field, metadataField)); ok {
				v = mv
			}
		default:
			v = a.placeholderValue(f.Field, o.raw)
		}
		rec.Fields = append(rec.Fields, connectors.FieldValue{Field: f.Field, Category: f.Category, Value: v})
	}
	if err := a.sink.Record(ctx, rec); err != nil {
		return &sinkError{err}
	}
	a.res.Records++
	return nil
}

// placeholderValue is the value a key holds at the named placeholder of
// the template (a mapped field such as user_id), or nil.
func (a *accessor) placeholderValue(name, key string) any {
	rest := key
	for _, p := range a.ds.tmpl.parts {
		if p.name == "" {
			if !strings.HasPrefix(rest, p.lit) {
				return nil
			}
			rest = rest[len(p.lit):]
			continue
		}
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return nil
		}
		if p.name == name {
			return rest[:i]
		}
		rest = rest[i:]
	}
	return nil
}

func lookupFold(m map[string]string, k string) (string, bool) {
	for mk, v := range m {
		if strings.EqualFold(mk, k) {
			return v, true
		}
	}
	return "", false
}

// exportName is the path of an object's content in the export:
// system/dataset/ then the key below the prefix, segment by segment, with
// every segment made safe for an archive: no empty, "." or ".." segment
// (a key may legally hold them, an archive path must not), and control
// characters and the like escaped.
func exportName(system, dataset, rel string) string {
	segs := strings.Split(rel, "/")
	for i, s := range segs {
		switch s {
		case "":
			segs[i] = "_"
		case ".":
			segs[i] = "%2E"
		case "..":
			segs[i] = "%2E%2E"
		default:
			segs[i] = url.PathEscape(s)
		}
	}
	return system + "/" + dataset + "/" + strings.Join(segs, "/")
}

// countingReader counts what the sink read, and keeps the store's read
// error so a failure mid-stream is classified as the store's.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF {
		c.err = err
	}
	return n, err
}
