package exportpkg

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/testutil"
)

// normalizeJSON round-trips v through JSON, numbers kept as json.Number, so
// an input value compares with what data.json holds.
func normalizeJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBuild(t *testing.T) {
	t.Parallel()
	fx := realistic(t, "en")
	in := fx.in
	p := build(t, in)

	t.Run("manifest lists every other entry with its size and hash, and comes last", func(t *testing.T) {
		names := p.names()
		if names[len(names)-1] != PathManifest {
			t.Fatalf("last entry is %s", names[len(names)-1])
		}
		var written Manifest
		if err := json.Unmarshal(p.read(t, PathManifest), &written); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(written, p.manifest) {
			t.Fatalf("manifest.json differs from the returned manifest:\n%+v\n%+v", written, p.manifest)
		}
		if written.Format != Format || written.RequestID != in.RequestID || !written.GeneratedAt.Equal(in.GeneratedAt) {
			t.Fatalf("manifest header: %+v", written)
		}
		if len(written.Entries) != len(names)-1 {
			t.Fatalf("manifest has %d entries, the archive %d besides it", len(written.Entries), len(names)-1)
		}
		for i, e := range written.Entries {
			if e.Path != names[i] {
				t.Fatalf("manifest entry %d is %s, archive entry %s", i, e.Path, names[i])
			}
			b := p.read(t, e.Path)
			sum := sha256.Sum256(b)
			if int64(len(b)) != e.Size || hex.EncodeToString(sum[:]) != e.SHA256 {
				t.Errorf("%s: manifest says %d bytes %s, entry is %d bytes %x", e.Path, e.Size, e.SHA256, len(b), sum)
			}
		}
	})

	t.Run("data.json validates against the schema and holds every record", func(t *testing.T) {
		raw := p.read(t, PathData)
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		if err := testutil.ExportSchema(t).Validate(inst); err != nil {
			t.Fatalf("data.json does not validate: %v", err)
		}
		var doc struct {
			Format      string
			RequestID   string `json:"request_id"`
			RequestType string `json:"request_type"`
			Subject     struct {
				IdentityKinds []string `json:"identity_kinds"`
			}
			Records []struct {
				System, Dataset, Key string
				Fields               []struct {
					Field, Category string
					CategoryName    string `json:"category_name"`
					Value           any
				}
			}
			Files []struct {
				Path, Name, Key, SHA256 string
				Size                    int64
			}
			Retained []struct {
				Field, Basis, Until string
				CategoryName        string `json:"category_name"`
			}
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		if doc.Format != "steward-export/1" || doc.RequestID != in.RequestID || doc.RequestType != "access" {
			t.Fatalf("header: %s %s %s", doc.Format, doc.RequestID, doc.RequestType)
		}
		if !slices.Equal(doc.Subject.IdentityKinds, []string{"email", "tg"}) {
			t.Fatalf("identity kinds %v", doc.Subject.IdentityKinds)
		}
		if len(doc.Records) != len(in.Records) {
			t.Fatalf("%d records, want %d", len(doc.Records), len(in.Records))
		}
		for i, want := range in.Records {
			got := doc.Records[i]
			if got.System != want.System || got.Dataset != want.Dataset || got.Key != want.Key || len(got.Fields) != len(want.Fields) {
				t.Fatalf("record %d: %s/%s/%s with %d fields", i, got.System, got.Dataset, got.Key, len(got.Fields))
			}
			for j, wf := range want.Fields {
				gf := got.Fields[j]
				if gf.Field != wf.Field || gf.Category != wf.Category {
					t.Fatalf("record %d field %d: %s %s", i, j, gf.Field, gf.Category)
				}
				if wantName := in.Categories[wf.Category].Name; gf.CategoryName != wantName || wantName == "" {
					t.Errorf("record %d field %s: category name %q, want %q", i, wf.Field, gf.CategoryName, wantName)
				}
				if w := normalizeJSON(t, wf.Value); !reflect.DeepEqual(gf.Value, w) {
					t.Errorf("record %d field %s: value %#v, want %#v", i, wf.Field, gf.Value, w)
				}
			}
		}
		if len(doc.Files) != len(in.Files) {
			t.Fatalf("%d files listed, want %d", len(doc.Files), len(in.Files))
		}
		for i, f := range doc.Files {
			if f.Name != in.Files[i].Name || f.SHA256 != hexSHA(fx.contents[i]) || f.Size != int64(len(fx.contents[i])) || p.byName[f.Path] == nil {
				t.Errorf("file %d listed as %+v", i, f)
			}
		}
		if len(doc.Retained) != 2 || doc.Retained[0].CategoryName != in.Categories["user.financial.payment"].Name ||
			doc.Retained[1].Until != "the opt-out no longer needs to be honoured" {
			t.Errorf("retained: %+v", doc.Retained)
		}
		if !bytes.Contains(raw, []byte(`"<script>alert(\"x\")</script>"`)) {
			t.Error("data.json escapes markup; it is JSON, not HTML, and should keep values as they are")
		}
	})

	t.Run("each dataset has a CSV with its rows and columns, formulas neutralized", func(t *testing.T) {
		want := map[string]int{
			"csv/app_db/users.csv": 1, "csv/app_db/generation_jobs.csv": 3, "csv/app_db/payments.csv": 1, "csv/app_db/sessions.csv": 1,
			"csv/object_store/uploads.csv": 1, "csv/stripe/customers.csv": 1, "csv/bot_db/tg_users.csv": 1, "csv/legacy/notes.csv": 1,
		}
		var got []string
		for _, n := range p.names() {
			if strings.HasPrefix(n, "csv/") {
				got = append(got, n)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("CSVs %v, want %v", got, want)
		}
		tables := map[string][][]string{}
		for name, rows := range want {
			raw := p.read(t, name)
			if !bytes.HasPrefix(raw, []byte("\ufeff")) {
				t.Errorf("%s: no UTF-8 byte order mark", name)
			}
			r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(raw, []byte("\ufeff"))))
			all, err := r.ReadAll() // also checks every row has the header's width
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if len(all) != rows+1 || all[0][0] != KeyColumn {
				t.Fatalf("%s: %d rows, header %v", name, len(all), all[0])
			}
			tables[name] = all
		}
		cell := func(table, key, col string) string {
			t.Helper()
			all := tables[table]
			c := slices.Index(all[0], col)
			if c < 0 {
				t.Fatalf("%s has no column %s: %v", table, col, all[0])
			}
			for _, row := range all[1:] {
				if row[0] == key {
					return row[c]
				}
			}
			t.Fatalf("%s has no row %s", table, key)
			return ""
		}
		users := tables["csv/app_db/users.csv"][0]
		// The data map's fields by name, then the extra field.
		wantCols := []string{KeyColumn, "ban_reason", "banned", "created_at", "creem_customer_id", "email", "email_verified", "id", "image",
			"language", "name", "role", "stripe_customer_id", "updated_at", "nickname"}
		if !slices.Equal(users, wantCols) {
			t.Errorf("users columns %v, want %v", users, wantCols)
		}
		jobs := "csv/app_db/generation_jobs.csv"
		checks := []struct{ table, key, col, want string }{
			{jobs, "job-1", "prompt", "'" + injection},
			{jobs, "job-1", "negative_prompt", "'-2+3"},
			{jobs, "job-1", "error", "'@SUM(A1:A9)"},
			{jobs, "job-1", "status", "'\tcmd|' /C calc'!A0"},
			{jobs, "job-3", "prompt", "' =1+1"},
			{jobs, "job-1", "runtime_ms", "-12.5"}, // a number stays a number
			{jobs, "job-1", "seed", "42"},
			{jobs, "job-1", "output_count", "4"},
			{jobs, "job-1", "style_tags", `["noir","ретро","<script>alert(\"x\")</script>"]`},
			{jobs, "job-1", "parameters", `{"cfg":7.5,"size":{"h":768,"w":1024},"steps":30,"tags":[]}`},
			{jobs, "job-2", "prompt", "кот в шляпе, \"quoted\", comma, newline\nsecond line"},
			{jobs, "job-2", "seed", ""},
			{jobs, "job-2", "parameters", "{}"},
			{jobs, "job-3", "seed", ""}, // absent
			{"csv/app_db/users.csv", "7f3c0b52-1d1e-4c55-9b0a-0c1f7a6b1e01", "name", "Анна Łukasz 🍌 — O‘g‘iloy"},
			{"csv/app_db/users.csv", "7f3c0b52-1d1e-4c55-9b0a-0c1f7a6b1e01", "email_verified", "true"},
			{"csv/app_db/users.csv", "7f3c0b52-1d1e-4c55-9b0a-0c1f7a6b1e01", "banned", "false"},
			{"csv/app_db/users.csv", "7f3c0b52-1d1e-4c55-9b0a-0c1f7a6b1e01", "image", ""},
			{"csv/app_db/users.csv", "7f3c0b52-1d1e-4c55-9b0a-0c1f7a6b1e01", "nickname", "'+79991234567"},
			{"csv/stripe/customers.csv", "cus_Q1", "address", `{"city":"Tashkent","country":"UZ","line1":null}`},
			{"csv/bot_db/tg_users.csv", "123456789", "tg_id", "123456789"},
			{"csv/bot_db/tg_users.csv", "123456789", "credits_balance", "-3"},
			{"csv/bot_db/tg_users.csv", "123456789", "username", "'@ana_banana"},
			{"csv/legacy/notes.csv", "n-1", "text", "old note"},
		}
		for _, c := range checks {
			if got := cell(c.table, c.key, c.col); got != c.want {
				t.Errorf("%s %s.%s = %q, want %q", c.table, c.key, c.col, got, c.want)
			}
		}
	})

	t.Run("files are byte-identical under safe, unique names", func(t *testing.T) {
		want := []string{
			"files/object_store/uploads/ref-1.png",
			"files/object_store/uploads/ref-1-2.png",
			"files/object_store/uploads/REF-1-3.PNG",
			"files/etc/passwd",
			"files/C_/Users/ana/notes.txt",
			"files/abs/_CON.txt",
			"files/object_store/uploads/a&b #1 100%.webp",
			"files/object_store/uploads-2",
			"files/bot/кот_gnp.exe",
		}
		seen := map[string]bool{}
		for i, name := range want {
			if got := p.read(t, name); !bytes.Equal(got, fx.contents[i]) {
				t.Errorf("%s: %d bytes differ from the %d stored", name, len(got), len(fx.contents[i]))
			}
			if seen[strings.ToLower(name)] {
				t.Errorf("%s is not unique ignoring case", name)
			}
			seen[strings.ToLower(name)] = true
		}
		for _, f := range p.zr.File {
			n := f.Name
			if strings.HasPrefix(n, "/") || strings.Contains(n, `\`) || slices.Contains(strings.Split(n, "/"), "..") {
				t.Errorf("unsafe entry name %q", n)
			}
		}
		methods := map[string]uint16{
			"files/object_store/uploads/ref-1.png": zip.Store, "files/object_store/uploads/a&b #1 100%.webp": zip.Store,
			"files/C_/Users/ana/notes.txt": zip.Deflate, "files/etc/passwd": zip.Deflate, "files/bot/кот_gnp.exe": zip.Deflate,
			PathData: zip.Deflate, PathIndex: zip.Deflate, PathManifest: zip.Deflate,
		}
		for name, m := range methods {
			if got := p.byName[name].Method; got != m {
				t.Errorf("%s: method %d, want %d", name, got, m)
			}
		}
		if f := p.byName["files/C_/Users/ana/notes.txt"]; f.CompressedSize64*3 > f.UncompressedSize64 {
			t.Errorf("text compressed only to %d of %d bytes", f.CompressedSize64, f.UncompressedSize64)
		}
	})

	t.Run("the report links every CSV and file and escapes markup", func(t *testing.T) {
		html := string(p.read(t, PathIndex))
		for _, n := range p.names() {
			if strings.HasPrefix(n, "csv/") || strings.HasPrefix(n, "files/") {
				if !strings.Contains(html, `href="`+hrefHTML(n)+`"`) {
					t.Errorf("index.html does not link %s (as %s)", n, hrefHTML(n))
				}
			}
		}
		if strings.Contains(html, "<script") || strings.Contains(html, "Pro <Ltd>") {
			t.Error("index.html holds unescaped markup from the input")
		}
		if !strings.Contains(html, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") || !strings.Contains(html, "Nano Banana Pro &lt;Ltd&gt;") {
			t.Error("index.html lost the escaped markup")
		}
		// Self-contained: nothing fetched, no script.
		if m := regexp.MustCompile(`(?i)<(img|link|iframe|object|embed|audio|video|source)\b|\bsrc=|url\(|https?://[^<"]*"`).FindString(html); m != "" {
			t.Errorf("index.html reaches outside itself: %s", m)
		}
	})

	t.Run("the same input builds the same bytes", func(t *testing.T) {
		again := build(t, realistic(t, "en").in)
		if !bytes.Equal(again.raw, p.raw) {
			t.Error("two builds of one input differ")
		}
	})
}

// hrefHTML is how html/template writes href(p) into an attribute.
func hrefHTML(p string) string {
	return strings.ReplaceAll(href(p), "&", "&amp;")
}

func TestBuildIsReadableByUnzip(t *testing.T) {
	t.Parallel()
	// An independent reader: scripts/ensure-peers.sh installs it (apt-get install unzip).
	if _, err := exec.LookPath("unzip"); err != nil {
		t.Fatal("unzip is not installed (apt-get install unzip; make test does, through scripts/ensure-peers.sh): ", err)
	}
	var buf bytes.Buffer
	if _, err := Build(context.Background(), &buf, realistic(t, "ru").in); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "p.zip")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	// Info-ZIP's unzip (installed by scripts/ensure-peers.sh) is an independent reader.
	out, err := exec.Command("unzip", "-t", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors detected") {
		t.Fatalf("unzip -t: %v\n%s", err, out)
	}
}

func TestBuildFailures(t *testing.T) {
	t.Parallel()
	base := func() Input {
		return Input{RequestID: "r1", RequestType: "export", GeneratedAt: realistic(t, "en").in.GeneratedAt,
			Records: []Record{rec("app_db", "users", "u1", fv("email", "user.contact.email", "a@example.com"))}}
	}
	withFile := func(f File) Input {
		in := base()
		in.Files = []File{f}
		return in
	}
	content := blob(9, 100<<10)
	changed := memFile("object_store", "uploads", "k", "a.png", "image/png", content, true)
	changed.SHA256 = hexSHA(append([]byte{1}, content[1:]...))
	resized := memFile("object_store", "uploads", "k", "a.png", "image/png", content, true)
	resized.Size++
	openErr := errors.New("blob store unavailable")
	failOpen := memFile("object_store", "uploads", "k", "a.png", "image/png", content, true)
	failOpen.Open = func(context.Context) (io.ReadCloser, error) { return nil, openErr }
	readErr := errors.New("connection reset")
	failRead := memFile("object_store", "uploads", "k", "a.png", "image/png", content, true)
	failRead.Open = func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(bytes.NewReader(content[:1000]), iotestErrReader{readErr})), nil
	}
	nan := base()
	nan.Records[0].Fields[0].Value = math.NaN()
	badKind := base()
	badKind.SubjectKinds = []string{"email:a@example.com"}
	noOpen := withFile(memFile("s", "d", "k", "a", "", nil, false))
	noOpen.Files[0].Open = nil
	badSHA := withFile(memFile("s", "d", "k", "a", "", nil, false))
	badSHA.Files[0].SHA256 = "xyz"
	noID := base()
	noID.RequestID = ""
	badType := base()
	badType.RequestType = "gimme"
	noTime := base()
	noTime.GeneratedAt = time.Time{}
	noSystem := base()
	noSystem.Records[0].System = ""
	badAction := base()
	badAction.Retained = []RetainedItem{{System: "s", Dataset: "d", Field: "f", Action: "delete"}}

	cases := []struct {
		name string
		in   Input
		is   error
	}{
		{"a file whose content does not match its SHA-256 fails", withFile(changed), ErrFileChanged},
		{"a file whose size changed fails", withFile(resized), ErrFileChanged},
		{"a failing Open fails", withFile(failOpen), openErr},
		{"a read failing midway fails", withFile(failRead), readErr},
		{"a value that is not JSON fails", nan, nil},
		{"an identity value given as a kind is refused", badKind, ErrInvalidInput},
		{"a file without Open is refused", noOpen, ErrInvalidInput},
		{"a malformed digest is refused", badSHA, ErrInvalidInput},
		{"a request without an id is refused", noID, ErrInvalidInput},
		{"an unknown request type is refused", badType, ErrInvalidInput},
		{"a package without a date is refused", noTime, ErrInvalidInput},
		{"a record without a system is refused", noSystem, ErrInvalidInput},
		{"an unknown retained action is refused", badAction, ErrInvalidInput},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := Build(context.Background(), io.Discard, c.in)
			if err == nil {
				t.Fatal("Build succeeded")
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("error %v is not %v", err, c.is)
			}
			if strings.Contains(err.Error(), "a@example.com") {
				t.Fatalf("the error quotes personal data: %v", err)
			}
		})
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

func TestBuildStopsWhenCanceled(t *testing.T) {
	t.Parallel()
	t.Run("mid-file", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		in := realistic(t, "en").in
		var read int64
		// An endless file: only cancellation can end the build.
		in.Files = []File{{System: "object_store", File: connectors.File{Dataset: "uploads", Key: "k", Name: "endless.png"},
			Open: func(context.Context) (io.ReadCloser, error) {
				return io.NopCloser(readerFunc(func(p []byte) (int, error) {
					switch read += int64(len(p)); {
					case read > 256<<20:
						return 0, errors.New("the build went on reading after its context was canceled")
					case read > 8<<20:
						cancel()
					}
					return len(p), nil
				})), nil
			}}}
		_, err := Build(ctx, io.Discard, in)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("before it starts", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var w countWriter
		_, err := Build(ctx, &w, realistic(t, "en").in)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if w.n > 0 {
			t.Fatalf("wrote %d bytes after cancellation", w.n)
		}
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

type countWriter struct{ n int64 }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// TestBuildStreamsFiles builds a package with a 64 MiB file and checks the
// build allocated a small fraction of it: the content is streamed, never
// held.
func TestBuildStreamsFiles(t *testing.T) {
	const size = 64 << 20
	in := realistic(t, "en").in
	block := blob(7, 1<<20)
	h := sha256.New()
	for range size / len(block) {
		h.Write(block)
	}
	in.Files = []File{{System: "object_store", File: connectors.File{Dataset: "uploads", Key: "k", Name: "big.mp4", Size: size},
		SHA256: hex.EncodeToString(h.Sum(nil)),
		Open:   func(context.Context) (io.ReadCloser, error) { return io.NopCloser(newRepeatReader(block, size)), nil }}}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var w countWriter
	if _, err := Build(context.Background(), &w, in); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if w.n < size {
		t.Fatalf("wrote %d bytes", w.n)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Fatalf("building a package with a %d MiB file allocated %d MiB", size>>20, alloc>>20)
	}
}
