package exportpkg

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// data.json is written member by member and record by record, so its size
// costs no memory: the envelope first, then each record as it is encoded,
// then the files, what an erasure kept and what was withheld.

type dataHeader struct {
	Format      string     `json:"format"`
	RequestID   string     `json:"request_id"`
	RequestType string     `json:"request_type"`
	Regime      string     `json:"regime,omitempty"`
	Language    string     `json:"language"`
	ReceivedAt  *time.Time `json:"received_at,omitempty"`
	GeneratedAt time.Time  `json:"generated_at"`
	// Controller is the first of Controllers, as steward-export/1 had it
	// before a package could name several.
	Controller  Controller   `json:"controller"`
	Controllers []Controller `json:"controllers"`
	Subject     struct {
		IdentityKinds []string `json:"identity_kinds"`
	} `json:"subject"`
}

type dataRecord struct {
	System  string      `json:"system"`
	Dataset string      `json:"dataset"`
	Key     string      `json:"key"`
	Fields  []dataField `json:"fields"`
}

type dataField struct {
	Field        string `json:"field"`
	Category     string `json:"category"`
	CategoryName string `json:"category_name"`
	Value        any    `json:"value"`
}

type dataFile struct {
	Path        string `json:"path"`
	System      string `json:"system"`
	Dataset     string `json:"dataset"`
	Key         string `json:"key"`
	Name        string `json:"name"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
}

type dataRetained struct {
	RetainedItem
	CategoryName string `json:"category_name"`
}

// jsonEncoder encodes values without HTML escaping (data.json is not HTML:
// a "<" in a value stays a "<") at a given indentation.
type jsonEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

func newJSONEncoder(prefix string) *jsonEncoder {
	e := &jsonEncoder{}
	e.enc = json.NewEncoder(&e.buf)
	e.enc.SetEscapeHTML(false)
	e.enc.SetIndent(prefix, "  ")
	return e
}

// encode returns v's JSON without the encoder's trailing newline; the bytes
// are valid until the next call.
func (e *jsonEncoder) encode(v any) ([]byte, error) {
	e.buf.Reset()
	if err := e.enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(e.buf.Bytes(), []byte("\n")), nil
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any, prefix string) error {
	b, err := newJSONEncoder(prefix).encode(v)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	_, err = io.WriteString(w, "\n")
	return err
}

// categoryName is a category's human name; the id itself when the catalogue
// does not know it.
func (b *builder) categoryName(id string) string {
	if c, ok := b.in.Categories[id]; ok && c.Name != "" {
		return c.Name
	}
	return id
}

func (b *builder) writeData(ctx context.Context) error {
	_, err := b.entry(ctx, PathData, zip.Deflate, buffered(func(w *bufio.Writer) error {
		return b.encodeData(ctx, w)
	}))
	return err
}

func (b *builder) encodeData(ctx context.Context, w *bufio.Writer) error {
	h := dataHeader{Format: Format, RequestID: b.in.RequestID, RequestType: b.in.RequestType, Regime: b.in.Regime,
		Language: b.lang, GeneratedAt: b.mod, Controllers: b.in.Controllers}
	if len(h.Controllers) > 0 {
		h.Controller = h.Controllers[0]
	} else {
		h.Controllers = []Controller{}
	}
	if !b.in.ReceivedAt.IsZero() {
		t := b.in.ReceivedAt.UTC()
		h.ReceivedAt = &t
	}
	h.Subject.IdentityKinds = b.in.SubjectKinds
	if h.Subject.IdentityKinds == nil {
		h.Subject.IdentityKinds = []string{}
	}
	top := newJSONEncoder("")
	head, err := top.encode(h)
	if err != nil {
		return fmt.Errorf("exportpkg: data.json: %w", err)
	}
	// The header's closing brace is left off so the arrays follow it.
	w.Write(bytes.TrimSuffix(head, []byte("\n}")))

	item := newJSONEncoder("    ")
	w.WriteString(",\n  \"records\": [")
	var fields []dataField
	for i := range b.in.Records {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		r := &b.in.Records[i]
		fields = fields[:0]
		for _, f := range r.Fields {
			fields = append(fields, dataField{Field: f.Field, Category: f.Category, CategoryName: b.categoryName(f.Category), Value: f.Value})
		}
		out, err := item.encode(dataRecord{System: r.System, Dataset: r.Dataset, Key: r.Key, Fields: fields})
		if err != nil {
			// The error names the value's type, never the value.
			return fmt.Errorf("exportpkg: record %d (%s/%s) is not representable as JSON: %w", i, r.System, r.Dataset, err)
		}
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteString("\n    ")
		w.Write(out)
	}
	if len(b.in.Records) > 0 {
		w.WriteString("\n  ")
	}
	w.WriteString("],\n  \"files\": [")
	for i, pf := range b.files {
		out, err := item.encode(dataFile{Path: pf.path, System: pf.System, Dataset: pf.Dataset, Key: pf.Key, Name: pf.Name,
			ContentType: pf.ContentType, Size: pf.size, SHA256: pf.sha})
		if err != nil {
			return fmt.Errorf("exportpkg: data.json: %w", err)
		}
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteString("\n    ")
		w.Write(out)
	}
	if len(b.files) > 0 {
		w.WriteString("\n  ")
	}
	w.WriteString("],\n  \"retained\": [")
	for i, r := range b.in.Retained {
		out, err := item.encode(dataRetained{RetainedItem: r, CategoryName: b.categoryName(r.Category)})
		if err != nil {
			return fmt.Errorf("exportpkg: data.json: %w", err)
		}
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteString("\n    ")
		w.Write(out)
	}
	if len(b.in.Retained) > 0 {
		w.WriteString("\n  ")
	}
	w.WriteString("]")
	// withheld is optional (steward-export/1 had none): written only when
	// something was withheld.
	if len(b.in.Withheld) > 0 {
		w.WriteString(",\n  \"withheld\": [")
		for i, r := range b.in.Withheld {
			out, err := item.encode(r)
			if err != nil {
				return fmt.Errorf("exportpkg: data.json: %w", err)
			}
			if i > 0 {
				w.WriteByte(',')
			}
			w.WriteString("\n    ")
			w.Write(out)
		}
		w.WriteString("\n  ]")
	}
	_, err = w.WriteString("\n}\n")
	return err
}
