package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.yaml.in/yaml/v3"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/connectortest"
	"github.com/steward-privacy/steward/connectors/creem/creemfake"
	"github.com/steward-privacy/steward/connectors/stripe/stripefake"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/refapp"
	"github.com/steward-privacy/steward/internal/testpeer"
	"github.com/steward-privacy/steward/policies"
)

// connectorPolicyDir writes the policy bundle with a data map trimmed to the
// systems Steward reaches itself (the web database, object storage, Stripe,
// Creem), so an access request has no manual tasks waiting for staff and
// its time is Steward's own.
func connectorPolicyDir(b testing.TB, keep ...string) string {
	b.Helper()
	dir := b.TempDir()
	err := fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(policies.FS, p)
		if err != nil {
			return err
		}
		if p == "data/datamap.yaml" {
			if data, err = trimDataMap(data, keep); err != nil {
				return err
			}
		}
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), data, 0o644)
	})
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

// trimDataMap keeps only the named systems, and drops recipients that name
// a system no longer there.
func trimDataMap(src []byte, keep []string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, err
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "systems" {
			continue
		}
		systems := root.Content[i+1]
		var kept []*yaml.Node
		for j := 0; j+1 < len(systems.Content); j += 2 {
			if slices.Contains(keep, systems.Content[j].Value) {
				kept = append(kept, systems.Content[j], systems.Content[j+1])
			}
		}
		systems.Content = kept
		var walk func(n *yaml.Node)
		walk = func(n *yaml.Node) {
			for k := 0; k+1 < len(n.Content); k += 2 {
				if n.Kind == yaml.MappingNode && n.Content[k].Value == "recipients" {
					seq := n.Content[k+1]
					var items []*yaml.Node
					for _, it := range seq.Content {
						if slices.Contains(keep, it.Value) {
							items = append(items, it)
						}
					}
					seq.Content = items
				}
			}
			for _, c := range n.Content {
				walk(c)
			}
		}
		walk(systems)
	}
	return yaml.Marshal(&doc)
}

// BenchmarkDemoAccessVerifiedToCompleted measures, for the demo web user,
// the time from an access request being verified to completed: planned,
// run on all four connector kinds (the web database, a real S3 server,
// the Stripe and Creem fakes), the package built, sealed and stored, the
// completion email queued. Staff-entered with the identity verified, so the
// clock starts at Create; no approval step. Requests run one at a time, so
// the figures are latency. Target: p50 < 1 s. Baseline in the same run:
// the same Access calls made directly on the same connectors, one after
// another, with nothing durable around them and no package — the bare
// work, to show what the engine and the package add.
func BenchmarkDemoAccessVerifiedToCompleted(b *testing.B) {
	ctx := context.Background()
	dir := connectorPolicyDir(b, "app_db", "object_store", "stripe", "creem")
	e := newEnv(b, map[string]string{"STEWARD_POLICY_DIR": dir})
	if err := refapp.CreateSchema(ctx, e.pool, "app", refapp.Web); err != nil {
		b.Fatal(err)
	}
	web, err := refapp.Generate(ctx, e.pool, "app", refapp.Web, refapp.Options{People: 200, Seed: 5, Now: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	s3srv := testpeer.S3(b)
	s3srv.CreateBucket(b, "media", false)
	sf := stripefake.New()
	b.Cleanup(sf.Close)
	cf := creemfake.New("creem_test_key")
	b.Cleanup(cf.Close)
	for _, p := range web {
		for _, key := range []string{"uploads/" + p.UserID + "/ref.png", "generated/" + p.UserID + "/out.png"} {
			body := make([]byte, 64<<10)
			_, _ = rand.Read(body)
			if _, err := s3srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
				b.Fatal(err)
			}
		}
		cus := sf.AddCustomer(stripefake.Customer{Email: p.Email, Name: "Demo Person", Metadata: map[string]string{"user_id": p.UserID}})
		sf.AddCharge(stripefake.Charge{Customer: cus, Amount: 990, ReceiptEmail: p.Email})
		ccus := cf.AddCustomer(creemfake.Customer{Email: p.Email, Name: "Demo Person", Country: "DE"})
		cf.AddTransaction(creemfake.Transaction{Customer: ccus})
		if _, err := e.pool.Exec(ctx, `UPDATE app.users SET stripe_customer_id = $1, creem_customer_id = $2 WHERE id = $3`, cus, ccus, p.UserID); err != nil {
			b.Fatal(err)
		}
	}
	file := filepath.Join(b.TempDir(), "connectors.yaml")
	conf := fmt.Sprintf(`app_db:
  postgres: {dsn: %q, schema: app}
object_store:
  objectstore:
    s3: {bucket: media, endpoint: %q, region: us-east-1, access_key_id: %q, secret_access_key: %q, path_style: true}
stripe:
  stripe: {api_key: sk_test_steward, base_url: %q}
creem:
  creem: {api_key: creem_test_key, base_url: %q}
`, e.url, s3srv.Endpoint, s3srv.AccessKey, s3srv.SecretKey, sf.URL(), cf.URL())
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	e.cfg.ConnectorsFile = file
	r := e.start()
	g := &requestsRig{t: b, e: e, r: r}

	var done []string // request ids, in the order of web
	measure := func(i int) time.Duration {
		p := web[i%len(web)]
		start := time.Now()
		c := g.create(e.keys["reviewer"], map[string]any{"type": "access", "subject": "email:" + p.Email, "region": "DE",
			"channel": "staff", "note": "bench", "identity_verified": true}, 201)
		deadline := start.Add(60 * time.Second)
		for {
			st, err := r.app.requests.Status(ctx, c.Request.ID, c.StatusToken)
			if err != nil {
				b.Fatal(err)
			}
			if st.Status == dsar.Completed {
				if st.DownloadURL == "" {
					b.Fatal("completed without a package link")
				}
				elapsed := time.Since(start)
				done = append(done, c.Request.ID)
				return elapsed
			}
			if st.Status == dsar.Failed || time.Now().After(deadline) {
				b.Fatalf("request %s: %s", c.Request.ID, st.Status)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// bare runs the automated tasks' Access calls of a completed request
	// directly, with the identities the engine resolved.
	bare := func(id string, p refapp.Person) time.Duration {
		d := g.detail(id)
		ids := []connectors.Identity{{Type: "email", Value: p.Email}, {Type: "user", Value: p.UserID}}
		var cus, ccus string
		if err := e.pool.QueryRow(ctx, `SELECT stripe_customer_id, creem_customer_id FROM app.users WHERE id = $1`, p.UserID).Scan(&cus, &ccus); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, connectors.Identity{Type: "stripe", Value: cus}, connectors.Identity{Type: "creem", Value: ccus})
		start := time.Now()
		for _, t := range d.Tasks {
			if t.Mode != dsar.ModeAutomated || t.Operation != dsar.OpAccess {
				continue
			}
			conn := r.app.connectors[t.System]
			if _, err := conn.Access(ctx, connectors.AccessParams{Target: connectors.Target{System: t.System, Dataset: t.Dataset, Identities: ids},
				Fields: t.Fields}, &connectortest.MemorySink{}); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	measure(len(web) - 1) // warm: first connections, prepared statements
	done = done[:0]
	var ds, base []time.Duration
	b.ResetTimer()
	for i := range b.N {
		ds = append(ds, measure(i))
	}
	b.StopTimer()
	// The baseline reads the same people again, after the measured runs.
	for i, id := range done {
		base = append(base, bare(id, web[i%len(web)]))
	}
	pct := func(d []time.Duration, q float64) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(ds, 0.5), "p50-ms")
	b.ReportMetric(pct(ds, 0.99), "p99-ms")
	b.ReportMetric(pct(base, 0.5), "bare-p50-ms")
	b.ReportMetric(pct(ds, 0.5)/pct(base, 0.5), "x-bare")
}
