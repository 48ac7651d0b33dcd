// Package exportpkg builds the package a person receives for an access
// (GDPR Art. 15) or portability (Art. 20) request: one ZIP holding
//
//	files/<name>              the person's files, byte for byte
//	data.json                 every record, machine-readable (format steward-export/1,
//	                          schema in docs/export-data.schema.json)
//	csv/<system>/<dataset>.csv the same records as one table per dataset
//	index.html                a self-contained report in the person's language with
//	                          what Art. 15 requires (purposes, legal bases, categories,
//	                          recipients, transfers, retention, sources, automated
//	                          decisions, rights, what an erasure kept)
//	manifest.json             size and SHA-256 of every other entry, written last
//
// The format is documented in docs/export-package.md.
//
// Build streams: the archive goes to an io.Writer that is usually an
// encrypting writer over an object-store upload, so it never seeks, never
// holds a file in memory and never writes a temporary file. Its memory does
// not grow with the size of the files; records are the caller's (the engine
// already holds them) and are encoded one at a time.
package exportpkg

import (
	"archive/zip"
	"bufio"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/policy"
)

// Format names the package layout and the data.json schema. Adding an
// optional member keeps it; any other change bumps it.
const Format = "steward-export/1"

// Entry names.
const (
	PathData     = "data.json"
	PathIndex    = "index.html"
	PathManifest = "manifest.json"
	DirCSV       = "csv"
	DirFiles     = "files"
)

var (
	// ErrInvalidInput is wrapped by every error about the Input itself.
	ErrInvalidInput = errors.New("exportpkg: invalid input")
	// ErrFileChanged means a file's content did not match the size or
	// SHA-256 recorded when it was stored: the package would hold something
	// other than what was disclosed.
	ErrFileChanged = errors.New("exportpkg: stored file changed")
)

// Input is everything one package is built from. It holds personal data
// (records, files); errors from Build never quote it.
type Input struct {
	RequestID   string
	RequestType string // access or export (any request type of the policy is accepted)
	Language    string // en, ru or uz; a tag such as ru-RU is reduced, anything else is en
	Regime      string // gdpr, uk_gdpr, ccpa, ... (recorded in data.json)
	ReceivedAt  time.Time
	GeneratedAt time.Time // required: the package states it, and it dates every entry

	// Controllers answer the request: the controller of each product the
	// person's data belongs to, usually one. The first is data.json's
	// "controller"; all of them are its "controllers" and the report's.
	Controllers []Controller
	// SubjectKinds are the kinds of identity the person gave (email, tg,
	// ...), never their values.
	SubjectKinds []string

	Records []Record
	Files   []File

	// Systems describe where the data is and why (DescribeSystems derives
	// them from the data map and the policy bundle). Their order is the
	// report's.
	Systems []SystemInfo
	// Categories names the data categories, by id (FactsFromEngine).
	Categories map[string]Category
	// Retained lists what an earlier erasure kept, with why and until when.
	Retained []RetainedItem
	// Withheld counts the records the request reached but did not
	// disclose because they are not the person's alone (connectors.Review):
	// counts and names only, never values. Items with no records are left
	// out.
	Withheld []WithheldItem
	// AutomatedDecisions states the automated decision-making (GDPR Art. 22)
	// the person is subject to; empty means none, and the report says so in
	// the person's language. A statement given here is shown as written.
	AutomatedDecisions string
}

// Controller is who answers the request (for one product's data).
type Controller struct {
	Name       string `json:"name"`
	Contact    string `json:"contact"`
	DPOContact string `json:"dpo_contact,omitempty"`
	// SupervisoryAuthority, when set, is named in the report next to the
	// right to complain.
	SupervisoryAuthority string `json:"supervisory_authority,omitempty"`
}

// Record is one disclosed record and the system it came from.
type Record struct {
	System string
	connectors.Record
}

// File is one disclosed file; its content is read from Open while the
// package is written.
type File struct {
	System string
	connectors.File
	// SHA256 is the hex digest recorded when the file was stored; when set,
	// the content read must match it (else ErrFileChanged).
	SHA256 string
	Open   func(ctx context.Context) (io.ReadCloser, error)
}

// SystemInfo describes one system holding the person's data.
type SystemInfo struct {
	ID                string
	Name              string
	Kind              string // the data map's kind: postgres, stripe, ...
	Processor         string // who runs it ("self" when the controller does)
	Regions           []string
	TransferSafeguard string
	Datasets          []DatasetInfo
}

// DatasetInfo describes one dataset of a system.
type DatasetInfo struct {
	ID          string
	Description string
	Purpose     Purpose
	// Fields are the dataset's fields, in the order of its CSV columns.
	Fields []FieldInfo
	// Categories are the distinct categories of Fields.
	Categories []string
	Recipients []Recipient
	Retention  Retention
	Source     Source
}

// FieldInfo is one field and its data category.
type FieldInfo struct {
	Name     string
	Category string
}

// Purpose is why a dataset is processed.
type Purpose struct {
	ID         string
	Name       string
	LegalBasis []string // contract, legal_obligation, legitimate_interests, consent, vital_interests, public_task
}

// Recipient is a system data of a dataset is disclosed to.
type Recipient struct {
	ID                string
	Name              string
	Processor         string
	Regions           []string
	TransferSafeguard string
}

// Retention says how long a dataset's records are kept.
type Retention struct {
	Rule   string // the retention rule id
	Period string // as the policy words it: "5 years", "72 hours"; "" when none
	Until  string // an event ending it sooner: account_deletion, withdrawal; ""
	Action string // what happens then: delete or anonymize
	Basis  string // the legal basis for keeping it
}

// Source kinds: where a dataset's data comes from (GDPR Art. 15(1)(g)).
const (
	SourceSubject   = "subject"   // the person, using the service
	SourceAutomatic = "automatic" // recorded automatically: logs, device, usage
	SourceProcessor = "processor" // a processor or platform (Source.Name)
)

// Source says where a dataset's data comes from.
type Source struct {
	Kind string
	Name string // the processor, for SourceProcessor
}

// Category is a data category's human name.
type Category struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// RetainedItem is a field an erasure kept (dsar.RetainedItem).
type RetainedItem struct {
	System   string `json:"system"`
	Dataset  string `json:"dataset"`
	Field    string `json:"field"`
	Category string `json:"category"`
	Action   string `json:"action,omitempty"` // retain or mask
	Basis    string `json:"basis"`
	Until    string `json:"until,omitempty"`
}

// WithheldItem is records a request reached but left out of the package
// because other people's data is in them (dsar: a task's review items):
// where they are, why, and how many; never their values.
type WithheldItem struct {
	System  string `json:"system"`
	Dataset string `json:"dataset"`
	Reason  string `json:"reason"` // a connectors.Review reason (shared, relationship, ...)
	Records int    `json:"records"`
}

// Manifest lists every entry of a package but itself.
type Manifest struct {
	Format      string          `json:"format"`
	RequestID   string          `json:"request_id"`
	GeneratedAt time.Time       `json:"generated_at"`
	Entries     []ManifestEntry `json:"entries"`
}

// ManifestEntry is one entry: its uncompressed size and the SHA-256 (hex)
// of its content.
type ManifestEntry struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Build writes the package for in to w as a ZIP and returns its manifest
// (also written, last, as manifest.json). It only writes to w, in order; on
// error what was written is not a valid package and must be discarded.
func Build(ctx context.Context, w io.Writer, in Input) (Manifest, error) {
	b, err := newBuilder(in)
	if err != nil {
		return Manifest{}, err
	}
	b.zw = zip.NewWriter(w)
	steps := []func(context.Context) error{b.writeFiles, b.writeData, b.writeCSVs, b.writeIndex, b.writeManifest}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return Manifest{}, err
		}
	}
	if err := b.zw.Close(); err != nil {
		return Manifest{}, fmt.Errorf("exportpkg: finish archive: %w", err)
	}
	return b.manifest, nil
}

// group is one dataset's records, in input order.
type group struct {
	system, dataset string
	info            *DatasetInfo // nil when Systems does not describe it
	sysInfo         *SystemInfo
	records         []int // indexes into in.Records
	files           int
	columns         []string
	csvPath         string
}

// plannedFile is a file and where it goes in the archive.
type plannedFile struct {
	*File
	path    string
	size    int64  // as read
	sha     string // as read
	renamed bool
}

type builder struct {
	in       Input
	lang     string
	mod      time.Time
	zw       *zip.Writer
	groups   []*group
	files    []plannedFile
	manifest Manifest
	buf      []byte // copy buffer, reused across files
}

var kindRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidInput, fmt.Sprintf(format, args...))
}

// newBuilder validates in and plans the archive: groups, columns and every
// entry's name.
func newBuilder(in Input) (*builder, error) {
	if strings.TrimSpace(in.RequestID) == "" {
		return nil, invalid("request id is required")
	}
	if !slices.Contains(policy.RequestTypes(), in.RequestType) {
		return nil, invalid("unknown request type %q", in.RequestType)
	}
	if in.GeneratedAt.IsZero() {
		return nil, invalid("generated_at is required")
	}
	kinds := make([]string, 0, len(in.SubjectKinds))
	for _, k := range in.SubjectKinds {
		// Kinds only: a value passed here by mistake (an email address) is
		// refused rather than written into the package's metadata.
		if !kindRe.MatchString(k) {
			return nil, invalid("subject kind %d is not an identity kind", len(kinds))
		}
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	in.SubjectKinds = slices.Compact(kinds)

	b := &builder{in: in, lang: normalizeLanguage(in.Language), mod: in.GeneratedAt.UTC().Truncate(time.Second)}
	b.manifest = Manifest{Format: Format, RequestID: in.RequestID, GeneratedAt: b.mod, Entries: []ManifestEntry{}}

	// Groups: every described dataset in the order given, then datasets
	// only the records or files name, sorted.
	byKey := map[[2]string]*group{}
	for si := range in.Systems {
		s := &in.Systems[si]
		for di := range s.Datasets {
			d := &s.Datasets[di]
			k := [2]string{s.ID, d.ID}
			if byKey[k] != nil {
				return nil, invalid("dataset %s/%s is described twice", s.ID, d.ID)
			}
			g := &group{system: s.ID, dataset: d.ID, info: d, sysInfo: s}
			byKey[k] = g
			b.groups = append(b.groups, g)
		}
	}
	var extra []*group
	get := func(system, dataset string) *group {
		k := [2]string{system, dataset}
		if g := byKey[k]; g != nil {
			return g
		}
		g := &group{system: system, dataset: dataset}
		byKey[k] = g
		extra = append(extra, g)
		return g
	}
	for i := range in.Records {
		r := &in.Records[i]
		if r.System == "" || r.Dataset == "" {
			return nil, invalid("record %d has no system or dataset", i)
		}
		for _, f := range r.Fields {
			if f.Field == "" {
				return nil, invalid("record %d (%s/%s) has a field without a name", i, r.System, r.Dataset)
			}
		}
		g := get(r.System, r.Dataset)
		g.records = append(g.records, i)
	}
	for i := range in.Files {
		f := &in.Files[i]
		if f.Open == nil {
			return nil, invalid("file %d has no Open", i)
		}
		if f.System == "" || f.Dataset == "" {
			return nil, invalid("file %d has no system or dataset", i)
		}
		if f.SHA256 != "" {
			if s, err := hex.DecodeString(f.SHA256); err != nil || len(s) != sha256.Size {
				return nil, invalid("file %d: sha256 is not a hex SHA-256 digest", i)
			}
		}
		get(f.System, f.Dataset).files++
	}
	for i, r := range in.Retained {
		if r.Action != "" && r.Action != connectors.ActionRetain && r.Action != connectors.ActionMask {
			return nil, invalid("retained item %d: action %q is not retain or mask", i, r.Action)
		}
	}
	withheld := make([]WithheldItem, 0, len(in.Withheld))
	for i, w := range in.Withheld {
		if w.System == "" || w.Dataset == "" {
			return nil, invalid("withheld item %d has no system or dataset", i)
		}
		if w.Records > 0 {
			w.Reason = cmp.Or(strings.TrimSpace(w.Reason), "other")
			withheld = append(withheld, w)
		}
	}
	b.in.Withheld = withheld
	slices.SortFunc(extra, func(a, b *group) int {
		return strings.Compare(a.system+"\x00"+a.dataset, b.system+"\x00"+b.dataset)
	})
	b.groups = append(b.groups, extra...)

	// Names. Files keep the connector's name under files/ where it is safe;
	// CSVs are named by ids, made safe the same way.
	fileNames, csvNames := newNamer(DirFiles), newNamer(DirCSV)
	b.files = make([]plannedFile, len(in.Files))
	for i := range in.Files {
		f := &in.Files[i]
		p := fileNames.add(safePath(f.Name))
		b.files[i] = plannedFile{File: f, path: p, renamed: p != DirFiles+"/"+f.Name}
	}
	for _, g := range b.groups {
		if len(g.records) == 0 {
			continue
		}
		sys, ds := safeSegment(g.system), safeSegment(g.dataset)
		if sys == "" {
			sys = "_"
		}
		if ds == "" {
			ds = "_"
		}
		g.csvPath = csvNames.add([]string{sys, ds + ".csv"})
		g.columns = b.columns(g)
	}
	return b, nil
}

// columns are a dataset's CSV columns after the record key: the described
// fields in order, then any other field the records carry, in the order
// first seen.
func (b *builder) columns(g *group) []string {
	var cols []string
	seen := map[string]bool{}
	if g.info != nil {
		for _, f := range g.info.Fields {
			if !seen[f.Name] {
				seen[f.Name] = true
				cols = append(cols, f.Name)
			}
		}
	}
	for _, i := range g.records {
		for _, f := range b.in.Records[i].Fields {
			if !seen[f.Field] {
				seen[f.Field] = true
				cols = append(cols, f.Field)
			}
		}
	}
	return cols
}

// hashWriter passes writes on and hashes and counts what was written.
type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (hw *hashWriter) Write(p []byte) (int, error) {
	n, err := hw.w.Write(p)
	hw.h.Write(p[:n])
	hw.n += int64(n)
	return n, err
}

func (hw *hashWriter) sum() string { return hex.EncodeToString(hw.h.Sum(nil)) }

// entry writes one archive entry with fill and records it in the manifest.
func (b *builder) entry(ctx context.Context, name string, method uint16, fill func(w io.Writer) error) (ManifestEntry, error) {
	if err := ctx.Err(); err != nil {
		return ManifestEntry{}, err
	}
	fh := &zip.FileHeader{Name: name, Method: method, Modified: b.mod}
	fh.SetMode(0o644)
	zf, err := b.zw.CreateHeader(fh)
	if err != nil {
		return ManifestEntry{}, fmt.Errorf("exportpkg: %s: %w", name, err)
	}
	hw := &hashWriter{w: zf, h: sha256.New()}
	if err := fill(hw); err != nil {
		return ManifestEntry{}, err
	}
	e := ManifestEntry{Path: name, Size: hw.n, SHA256: hw.sum()}
	b.manifest.Entries = append(b.manifest.Entries, e)
	return e, nil
}

// buffered runs fill over a buffered writer and flushes it.
func buffered(fill func(w *bufio.Writer) error) func(io.Writer) error {
	return func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 64<<10)
		if err := fill(bw); err != nil {
			return err
		}
		return bw.Flush()
	}
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// writeFiles streams every file into files/, checking each against the
// size and digest it was stored with. The entry's own hash (for the
// manifest) is the check: the content is hashed once.
func (b *builder) writeFiles(ctx context.Context) error {
	for i := range b.files {
		pf := &b.files[i]
		where := fmt.Sprintf("file %d (%s/%s)", i, pf.System, pf.Dataset) // never the name: it is personal data
		e, err := b.entry(ctx, pf.path, methodFor(pf.Name, pf.ContentType), func(w io.Writer) error {
			return b.copyFile(ctx, where, pf, w)
		})
		if err != nil {
			return err
		}
		if pf.Size > 0 && e.Size != pf.Size {
			return fmt.Errorf("%w: %s was stored as %d bytes, read %d", ErrFileChanged, where, pf.Size, e.Size)
		}
		if pf.SHA256 != "" && !strings.EqualFold(e.SHA256, pf.SHA256) {
			return fmt.Errorf("%w: %s does not match the SHA-256 it was stored with", ErrFileChanged, where)
		}
		pf.size, pf.sha = e.Size, e.SHA256
	}
	return nil
}

func (b *builder) copyFile(ctx context.Context, where string, pf *plannedFile, w io.Writer) error {
	rc, err := pf.Open(ctx)
	if err != nil {
		return fmt.Errorf("exportpkg: open %s: %w", where, err)
	}
	defer rc.Close()
	if b.buf == nil {
		b.buf = make([]byte, 256<<10)
	}
	if _, err := io.CopyBuffer(w, ctxReader{ctx, rc}, b.buf); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("exportpkg: copy %s: %w", where, err)
	}
	if err := rc.Close(); err != nil {
		return fmt.Errorf("exportpkg: close %s: %w", where, err)
	}
	return nil
}

// compressed are extensions and media types whose content is already
// compressed: deflating them again costs time and saves nothing.
var (
	compressedExt = map[string]bool{
		".png": true, ".jpg": true, ".jpeg": true, ".webp": true, ".gif": true, ".avif": true, ".heic": true,
		".zip": true, ".gz": true, ".tgz": true, ".bz2": true, ".xz": true, ".zst": true, ".7z": true, ".rar": true,
		".mp4": true, ".m4v": true, ".mov": true, ".webm": true, ".mkv": true, ".mp3": true, ".m4a": true, ".ogg": true, ".opus": true,
	}
	compressedType = map[string]bool{
		"image/png": true, "image/jpeg": true, "image/webp": true, "image/gif": true, "image/avif": true, "image/heic": true,
		"application/zip": true, "application/gzip": true, "application/x-gzip": true, "application/x-7z-compressed": true,
		"application/zstd": true, "application/x-xz": true, "application/x-bzip2": true, "application/vnd.rar": true,
	}
)

// methodFor picks Store for already-compressed media and Deflate for the rest.
func methodFor(name, contentType string) uint16 {
	ext := strings.ToLower(name)
	if i := strings.LastIndexByte(ext, '.'); i >= 0 && !strings.ContainsAny(ext[i:], `/\`) {
		if compressedExt[ext[i:]] {
			return zip.Store
		}
	}
	ct := strings.ToLower(strings.TrimSpace(contentType))
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = strings.TrimSpace(ct[:i])
	}
	if compressedType[ct] || strings.HasPrefix(ct, "video/") || strings.HasPrefix(ct, "audio/") {
		return zip.Store
	}
	return zip.Deflate
}

// writeManifest writes manifest.json, the last entry.
func (b *builder) writeManifest(ctx context.Context) error {
	m := b.manifest
	m.Entries = slices.Clone(m.Entries)
	_, err := b.entry(ctx, PathManifest, zip.Deflate, buffered(func(w *bufio.Writer) error {
		return writeJSON(w, m, "")
	}))
	b.manifest = m // it lists every entry but itself
	return err
}
