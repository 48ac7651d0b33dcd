package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/steward-privacy/steward/connectors/creem"
	"github.com/steward-privacy/steward/connectors/creem/creemfake"
	"github.com/steward-privacy/steward/connectors/stripe/stripefake"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/notify/resendtest"
	"github.com/steward-privacy/steward/internal/refapp"
	"github.com/steward-privacy/steward/internal/testpeer"
	"github.com/steward-privacy/steward/internal/testutil"
)

// TestAllConnectorsEndToEnd runs a web user's access and erasure requests
// through the engine and every connector kind, configured by a connectors
// file: the application database (postgres), their uploads and generated
// images in a real S3 server (versitygw), their Stripe customer (the
// stateful fake) and their Creem customer (the Creem fake).
func TestAllConnectorsEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mail := resendtest.New(t)
	e := newEnv(t, map[string]string{
		"STEWARD_RESEND_API_KEY": "re_test", "STEWARD_RESEND_BASE_URL": mail.URL, "STEWARD_EMAIL_FROM": "Privacy <privacy@example.com>",
	})
	if err := refapp.CreateSchema(ctx, e.pool, "app", refapp.Web); err != nil {
		t.Fatal(err)
	}
	web, err := refapp.Generate(ctx, e.pool, "app", refapp.Web, refapp.Options{People: 20, Seed: 11, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	p, other := web[0], web[1]

	// Objects: the person's uploads and generated images, and another
	// person's, in a real S3 server.
	s3srv := testpeer.S3(t)
	s3srv.CreateBucket(t, "media", false)
	put := func(key string, body []byte) {
		t.Helper()
		if _, err := s3srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String(key),
			Body: bytes.NewReader(body), ContentType: aws.String("image/png")}); err != nil {
			t.Fatal(err)
		}
	}
	objects := map[string][]byte{}
	for _, key := range []string{"uploads/" + p.UserID + "/ref-1.png", "uploads/" + p.UserID + "/ref-2.png", "generated/" + p.UserID + "/out-1.png"} {
		b := make([]byte, 150<<10)
		_, _ = rand.Read(b)
		objects[key] = b
		put(key, b)
	}
	for _, key := range []string{"uploads/" + other.UserID + "/ref-1.png", "generated/" + other.UserID + "/out-1.png"} {
		put(key, []byte("someone else's image"))
	}
	listed := func(prefix string) int {
		t.Helper()
		out, err := s3srv.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("media"), Prefix: aws.String(prefix)})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Contents)
	}

	// Stripe: the person's customer (linked from the app database), a card
	// and a charge; and another person's customer.
	sf := stripefake.New()
	t.Cleanup(sf.Close)
	cus := sf.AddCustomer(stripefake.Customer{Email: p.Email, Name: "Ann Example", Phone: "+49301234567",
		Address: &stripefake.Address{Line1: "Hauptstr. 1", City: "Berlin", PostalCode: "10115", Country: "DE"}, Metadata: map[string]string{"user_id": p.UserID}})
	pm := sf.AddPaymentMethod(stripefake.PaymentMethod{Customer: cus, Card: stripefake.Card{Brand: "visa", Last4: "4242", ExpMonth: 12, ExpYear: 2030},
		BillingDetails: stripefake.BillingDetails{Name: "Ann Example", Email: p.Email}})
	sf.AddCharge(stripefake.Charge{Customer: cus, PaymentMethod: pm, Amount: 1999, ReceiptEmail: p.Email,
		BillingDetails: stripefake.BillingDetails{Name: "Ann Example", Email: p.Email}, Card: stripefake.Card{Brand: "visa", Last4: "4242"}})
	otherCus := sf.AddCustomer(stripefake.Customer{Email: other.Email, Name: "Bob Other", Metadata: map[string]string{"user_id": other.UserID}})
	otherBefore, _ := sf.Customer(otherCus)

	// Creem: the person's customer and a transaction.
	cf := creemfake.New("creem_test_key")
	t.Cleanup(cf.Close)
	ccus := cf.AddCustomer(creemfake.Customer{Email: p.Email, Name: "Ann Example", Country: "DE"})
	ctxn := cf.AddTransaction(creemfake.Transaction{Customer: ccus})
	cf.AddCustomer(creemfake.Customer{Email: other.Email, Name: "Bob Other", Country: "FR"})

	for col, v := range map[string]string{"stripe_customer_id": cus, "creem_customer_id": ccus} {
		if _, err := e.pool.Exec(ctx, fmt.Sprintf("UPDATE app.users SET %s = $1 WHERE id = $2", col), v, p.UserID); err != nil {
			t.Fatal(err)
		}
	}

	file := filepath.Join(t.TempDir(), "connectors.yaml")
	conf := fmt.Sprintf(`app_db:
  postgres: {dsn: %q, schema: app, restrict_columns: {users: processing_restricted}}
object_store:
  objectstore:
    s3: {bucket: media, endpoint: %q, region: us-east-1, access_key_id: %q, secret_access_key: %q, path_style: true}
stripe:
  stripe: {api_key: sk_test_steward, base_url: %q}
creem:
  creem: {api_key: creem_test_key, base_url: %q, webhook_secret: whsec_test, store: Nano Banana Pro}
`, e.url, s3srv.Endpoint, s3srv.AccessKey, s3srv.SecretKey, sf.URL(), cf.URL())
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	e.cfg.ConnectorsFile = file
	g := &requestsRig{t: t, e: e, r: e.start(), fake: mail}
	reviewer := e.keys["reviewer"]
	staff := func(typ string) string {
		c := g.create(reviewer, map[string]any{"type": typ, "subject": "email:" + p.Email, "region": "DE", "channel": "staff",
			"note": "letter received", "identity_verified": true}, 201)
		return c.Request.ID
	}
	// settle completes manual tasks as they appear (vendor systems, and
	// erasures a connector handed to staff) until the request ends.
	settle := func(id string) dsar.Detail {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			d := g.detail(id)
			switch d.Status {
			case dsar.Completed:
				return d
			case dsar.Failed:
				for _, task := range d.Tasks {
					if task.Status == dsar.TaskFailed {
						t.Errorf("task %s/%s failed: %s", task.System, task.Dataset, task.Error)
					}
				}
				t.FailNow()
			}
			if time.Now().After(deadline) {
				t.Fatalf("request %s stuck in %s", id, d.Status)
			}
			for _, task := range d.Tasks {
				if task.Mode == dsar.ModeManual && task.Status == dsar.TaskPending && d.Status == dsar.InProgress {
					res := g.r.do("POST", "/v1/privacy-requests/"+id+"/tasks/"+task.ID+"/complete", reviewer, map[string]any{"note": "done at the vendor"})
					if res.status != 200 && res.status != 409 {
						t.Fatalf("complete task: %d %s", res.status, res.body)
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	t.Run("access discloses rows, files and processor records", func(t *testing.T) {
		id := staff("access")
		g.waitFor(id, dsar.InProgress, dsar.Completed)
		d := settle(id)
		recs, err := g.r.app.requests.Records(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, r := range recs {
			got[r.Dataset]++
		}
		for ds, want := range map[string]int{"uploads": 2, "generated": 1, "customers": 2, "payment_methods": 1, "charges": 1, "transactions": 1, "users": 1} {
			if got[ds] != want {
				t.Errorf("%s: %d records disclosed, want %d (all: %v)", ds, got[ds], want, got)
			}
		}
		files, err := g.r.app.requests.DisclosedFiles(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != len(objects) {
			t.Fatalf("%d files disclosed, want %d", len(files), len(objects))
		}
		for _, f := range files {
			want, ok := objects[f.Key]
			if !ok {
				t.Errorf("disclosed %q, which is not the person's", f.Key)
				continue
			}
			sum := sha256.Sum256(want)
			if f.SHA256 != hex.EncodeToString(sum[:]) || f.Size != int64(len(want)) {
				t.Errorf("%s: stored %d bytes %s, want %d bytes %x", f.Key, f.Size, f.SHA256, len(want), sum)
			}
			rc, err := g.r.app.requests.OpenFile(ctx, id, f.TaskID, f.Seq)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			_ = rc.Close()
			if err != nil || !bytes.Equal(b, want) {
				t.Errorf("%s: reading the stored file back: %v", f.Key, err)
			}
		}
		checkPackage(t, g, p.Email, id, objects)
		kinds := map[string]bool{}
		for _, task := range d.Tasks {
			if task.Mode == dsar.ModeAutomated {
				kinds[task.System] = true
			}
		}
		for _, sys := range []string{"app_db", "object_store", "stripe", "creem"} {
			if !kinds[sys] {
				t.Errorf("no automated task ran on %s", sys)
			}
		}
	})

	t.Run("erasure removes objects, redacts Stripe, hands Creem to staff", func(t *testing.T) {
		id := staff("erasure")
		g.waitFor(id, dsar.AwaitingApproval)
		if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/approve", reviewer, map[string]any{"note": "ok"}); res.status != 200 {
			t.Fatalf("approve: %d %s", res.status, res.body)
		}
		d := settle(id)
		if n := listed("uploads/"+p.UserID+"/") + listed("generated/"+p.UserID+"/"); n != 0 {
			t.Errorf("%d of the person's objects left in the bucket", n)
		}
		if n := listed("uploads/"+other.UserID+"/") + listed("generated/"+other.UserID+"/"); n != 2 {
			t.Errorf("the other person has %d objects, want 2", n)
		}
		// The policy keeps the customer under the accounting obligation,
		// redacted: contact details gone, the card detached.
		if c, ok := sf.Customer(cus); sf.Deleted(cus) || !ok {
			t.Errorf("Stripe customer deleted (%v) or missing (%v); the plan redacts it", sf.Deleted(cus), !ok)
		} else if c["email"] != nil || c["phone"] != nil {
			t.Errorf("Stripe customer still holds email %v / phone %v", c["email"], c["phone"])
		}
		if m, ok := sf.PaymentMethod(pm); ok && m["customer"] != nil {
			t.Errorf("payment method still attached to %v", m["customer"])
		}
		if after, _ := sf.Customer(otherCus); fmt.Sprint(after) != fmt.Sprint(otherBefore) {
			t.Errorf("another person's Stripe customer changed")
		}
		var creemTasks int
		for _, task := range d.Tasks {
			if task.System != "creem" || task.Operation != dsar.OpErase {
				continue
			}
			if task.Dataset == "subscriptions" {
				// The person has none: nothing to ask Creem for.
				if task.Mode != dsar.ModeAutomated || task.Status != dsar.TaskSucceeded {
					t.Errorf("creem subscriptions erase: mode %s status %s, want automated and succeeded", task.Mode, task.Status)
				}
				continue
			}
			if task.Mode != dsar.ModeManual || task.CompletedBy == "" {
				t.Errorf("creem erase task %s: mode %s, completed by %q; want handed to staff", task.Dataset, task.Mode, task.CompletedBy)
			}
			if task.Dataset == "customers" && !strings.Contains(task.Instructions, ccus) {
				t.Errorf("creem customers instructions do not name %s: %q", ccus, task.Instructions)
			}
			if task.Dataset == "transactions" && !strings.Contains(task.Instructions, ctxn) {
				t.Errorf("creem transactions instructions do not name %s: %q", ctxn, task.Instructions)
			}
			if strings.Contains(task.Instructions, p.Email) {
				t.Errorf("creem instructions contain the person's email")
			}
			creemTasks++
		}
		if creemTasks == 0 {
			t.Error("no creem erase task")
		}
		for _, task := range d.Tasks {
			if task.System == "object_store" && task.Operation == dsar.OpErase && !strings.Contains(string(task.Result), `"verified":true`) {
				t.Errorf("object_store/%s erase result %s, want verified", task.Dataset, task.Result)
			}
		}

		// The erasure proof: per system what went, what stayed and why.
		res := g.r.do("GET", "/v1/privacy-requests/"+id+"/report", reviewer, nil)
		if res.status != 200 {
			t.Fatalf("report: %d %s", res.status, res.body)
		}
		var rep dsar.Report
		if err := json.Unmarshal(res.body, &rep); err != nil {
			t.Fatal(err)
		}
		if !rep.Complete {
			t.Errorf("report not complete: %s", res.body)
		}
		sys := map[string]dsar.SystemReport{}
		for _, s := range rep.Systems {
			sys[s.System] = s
		}
		if s := sys["object_store"]; s.Deleted != len(objects) {
			t.Errorf("report: object_store deleted %d, want %d", s.Deleted, len(objects))
		}
		if s := sys["stripe"]; s.Masked == 0 || len(s.Retained) == 0 || len(s.Notes) == 0 {
			t.Errorf("report: stripe masked %d, retained %d, notes %q", s.Masked, len(s.Retained), s.Notes)
		}
		if s := sys["app_db"]; s.Deleted == 0 || !slices.ContainsFunc(s.Retained, func(r dsar.ReportRetained) bool { return r.Dataset == "payments" }) {
			t.Errorf("report: app_db deleted %d, retained %+v", s.Deleted, s.Retained)
		}
		creemNotes := 0
		for _, ds := range sys["creem"].Datasets {
			if ds.Mode == dsar.ModeManual && ds.StaffNote != "" {
				creemNotes++
			}
		}
		if creemNotes == 0 {
			t.Errorf("report: no staff note on creem's handed-over tasks: %+v", sys["creem"])
		}
		if bytes.Contains(res.body, []byte(p.Email)) {
			t.Error("the report contains the person's email")
		}

		// Asked again, the person's email reaches only what was retained:
		// no objects, no uploads, no sessions.
		again := staff("access")
		g.waitFor(again, dsar.InProgress, dsar.Completed)
		settle(again)
		recs, err := g.r.app.requests.Records(ctx, again)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			switch r.Dataset {
			case "uploads", "generated", "sessions", "accounts", "payment_methods":
				t.Errorf("re-access after erasure disclosed %s record %s", r.Dataset, r.Key)
			}
		}
		if files, _ := g.r.app.requests.DisclosedFiles(ctx, again); len(files) != 0 {
			t.Errorf("re-access after erasure disclosed %d files", len(files))
		}
		// Its package names what the erasure kept, with the basis.
		prior, err := g.r.app.requests.PriorRetained(ctx, again)
		if err != nil || len(prior) == 0 {
			t.Fatalf("retained items of the erasure: %d, %v", len(prior), err)
		}
		entries := checkPackage(t, g, p.Email, again, nil)
		if !bytes.Contains(entries["index.html"], []byte("payments")) || !bytes.Contains(entries["index.html"], []byte("accounting")) {
			t.Error("the re-access package's report does not list the retained payment records and their basis")
		}

		// And the audit chain verifies, through the API and `steward audit verify`.
		g.r.seal()
		if v := g.r.do("GET", "/v1/admin/audit/verify", e.keys["auditor"], nil); v.status != 200 || !bytes.Contains(v.body, []byte(`"ok":true`)) {
			t.Errorf("audit verify: %d %s", v.status, v.body)
		}
		env := map[string]string{"DATABASE_URL": e.url, "STEWARD_AUDIT_SIGNING_KEY": e.cfg.AuditSigningKey}
		if code, out, errs := runCLI(t, env, "audit", "verify"); code != 0 || !strings.HasPrefix(out, "OK ") {
			t.Errorf("steward audit verify: %d %q %q", code, out, errs)
		}
	})

	t.Run("creem webhooks are verified and recorded", func(t *testing.T) {
		body := []byte(`{"id":"evt_1","eventType":"checkout.completed","created_at":1735689600000,"object":{"id":"ch_1","object":"checkout","customer":{"id":"` + ccus + `","object":"customer","email":"` + p.Email + `"}}}`)
		good := creem.SignWebhook([]byte("whsec_test"), body)
		if res := g.r.do("POST", "/v1/webhooks/creem", "", body, "creem-signature", good); res.status != 200 {
			t.Fatalf("signed webhook: %d %s", res.status, res.body)
		}
		for _, sig := range []string{"", strings.Repeat("0", 64), creem.SignWebhook([]byte("other"), body)} {
			if res := g.r.do("POST", "/v1/webhooks/creem", "", body, "creem-signature", sig); res.status != 401 || !strings.Contains(string(res.body), "unauthenticated") {
				t.Errorf("signature %q: %d %s", sig, res.status, res.body)
			}
		}
		tampered := bytes.Replace(body, []byte("evt_1"), []byte("evt_2"), 1)
		if res := g.r.do("POST", "/v1/webhooks/creem", "", tampered, "creem-signature", good); res.status != 401 {
			t.Errorf("tampered body: %d %s", res.status, res.body)
		}
		var n int
		var details string
		if err := e.pool.QueryRow(ctx, `SELECT count(*), coalesce(max(details::text), '') FROM (SELECT action, details FROM audit_log UNION ALL SELECT action, details FROM audit_pending) a
			WHERE action = 'creem.webhook_received'`).Scan(&n, &details); err != nil {
			t.Fatal(err)
		}
		if n != 1 || !strings.Contains(details, "evt_1") || strings.Contains(details, p.Email) {
			t.Errorf("audit: %d webhook entries, details %s", n, details)
		}
	})
}

var linkRe = regexp.MustCompile(`https?://\S+/v1/exports/sxp_[A-Za-z0-9_-]+`)

// checkPackage finds the download link in the completion email, downloads
// the package and checks it holds the person's records and files, with a
// manifest whose hashes match.
func checkPackage(t *testing.T, g *requestsRig, to, requestID string, objects map[string][]byte) map[string][]byte {
	t.Helper()
	if _, err := g.r.app.worker.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	var link string
	for _, m := range g.fake.Emails() {
		if len(m.To) == 1 && m.To[0] == to && strings.Contains(m.Subject, requestID) {
			if l := linkRe.FindString(m.Text); l != "" {
				link = l
			}
		}
	}
	if link == "" {
		t.Fatal("no download link emailed")
	}
	res := g.r.do("GET", link[strings.Index(link, "/v1/exports/"):], "", nil)
	if res.status != 200 || res.header.Get("Content-Type") != "application/zip" {
		t.Fatalf("download: %d %s", res.status, res.header.Get("Content-Type"))
	}
	zr, err := zip.NewReader(bytes.NewReader(res.body), int64(len(res.body)))
	if err != nil {
		t.Fatalf("package is not a ZIP: %v", err)
	}
	entries := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		entries[f.Name] = b
	}
	for _, name := range []string{"data.json", "index.html", "manifest.json"} {
		if len(entries[name]) == 0 {
			t.Errorf("package lacks %s (has %d entries)", name, len(entries))
		}
	}
	var manifest struct {
		Entries []struct {
			Path   string `json:"path"`
			Size   int64  `json:"size"`
			SHA256 string `json:"sha256"`
		} `json:"entries"`
	}
	if err := json.Unmarshal(entries["manifest.json"], &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest.Entries) != len(entries)-1 {
		t.Errorf("manifest lists %d entries, the package has %d besides it", len(manifest.Entries), len(entries)-1)
	}
	for _, m := range manifest.Entries {
		sum := sha256.Sum256(entries[m.Path])
		if hex.EncodeToString(sum[:]) != m.SHA256 || int64(len(entries[m.Path])) != m.Size {
			t.Errorf("manifest entry %s does not match the package", m.Path)
		}
	}
	// Every object is in the package, byte for byte.
	found := 0
	for name, b := range entries {
		for key, want := range objects {
			if strings.HasPrefix(name, "files/") && strings.HasSuffix(key, name[strings.LastIndex(name, "/"):]) && bytes.Equal(b, want) {
				found++
			}
		}
	}
	if found != len(objects) {
		t.Errorf("%d of %d objects found in the package's files/", found, len(objects))
	}
	var data struct {
		Records []map[string]any `json:"records"`
	}
	if err := json.Unmarshal(entries["data.json"], &data); err != nil {
		t.Fatalf("data.json: %v", err)
	}
	// data.json is what its published schema says.
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(entries["data.json"]))
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.ExportSchema(t).Validate(inst); err != nil {
		t.Errorf("data.json does not validate against docs/export-data.schema.json: %v", err)
	}
	systems := map[string]bool{}
	for _, r := range data.Records {
		if s, ok := r["system"].(string); ok {
			systems[s] = true
		}
	}
	if objects != nil {
		for _, sys := range []string{"app_db", "object_store", "stripe", "creem"} {
			if !systems[sys] {
				t.Errorf("data.json has no records of %s (%d records)", sys, len(data.Records))
			}
		}
	}
	if objects != nil && !bytes.Contains(entries["data.json"], []byte(to)) {
		t.Error("data.json does not contain the person's email")
	}
	return entries
}
