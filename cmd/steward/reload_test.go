package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/policies"
)

// TestPolicyHotReloadUnderLoad edits the policy directory while checks run
// concurrently: no request fails, the new revision is served afterwards, and
// a broken bundle is refused (audited) while the last good one keeps serving.
func TestPolicyHotReloadUnderLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	copyPolicies(t, dir)
	e := newEnv(t, map[string]string{"STEWARD_POLICY_DIR": dir, "STEWARD_POLICY_WATCH": "20ms"})
	r := e.start()
	fk := e.keys["frontend"]
	before := r.check(fk, "user:reload-1", "analytics", "CH")
	if before.Regime != "default" {
		t.Fatalf("%+v", before)
	}

	var failures, served atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", r.base+"/v1/consent/check?subject=user:reload-1&purpose=analytics&jurisdiction=CH", nil)
				req.Header.Set("Authorization", "Bearer "+fk)
				res, err := client.Do(req)
				if err != nil {
					failures.Add(1)
					continue
				}
				res.Body.Close()
				if res.StatusCode != 200 {
					failures.Add(1)
				}
				served.Add(1)
			}
		}()
	}
	// Stopped however the test ends: a worker left running after a failed
	// assertion would spin against a stopped server for the rest of the run.
	stopped := false
	stopWorkers := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopWorkers()
	// Switzerland (revised FADP) is mapped to the GDPR-like opt-in regime.
	jur := filepath.Join(dir, "data", "jurisdictions.json")
	b, _ := os.ReadFile(jur)
	writeFile(t, jur, strings.Replace(string(b), `"countries": {`, `"countries": {"CH": "gdpr", `, 1))
	var after checkResp
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		after = r.check(fk, "user:reload-1", "analytics", "CH")
		if after.PolicyRevision != before.PolicyRevision {
			break
		}
	}
	if after.PolicyRevision == before.PolicyRevision || after.Regime != "gdpr" {
		t.Fatalf("after edit: %+v (before %+v)", after, before)
	}

	// A broken file is refused; the good revision keeps serving.
	writeFile(t, filepath.Join(dir, "consent.rego"), "package steward.consent\n\ndecision := {\n")
	time.Sleep(300 * time.Millisecond)
	stopWorkers()
	if failures.Load() != 0 || served.Load() < 10 {
		t.Fatalf("%d of %d requests failed during reloads", failures.Load(), served.Load())
	}
	if c := r.check(fk, "user:reload-1", "analytics", "CH"); c.PolicyRevision != after.PolicyRevision {
		t.Fatalf("a broken bundle replaced the good one: %+v", c)
	}
	r.seal()
	var loaded, rejected int
	_ = e.pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE action = 'policy.loaded'), count(*) FILTER (WHERE action = 'policy.rejected') FROM audit_log`).Scan(&loaded, &rejected)
	if loaded != 2 || rejected != 1 {
		t.Fatalf("audit: %d policy.loaded, %d policy.rejected", loaded, rejected)
	}
	var detail string
	_ = e.pool.QueryRow(context.Background(), `SELECT details->>'error' FROM audit_log WHERE action = 'policy.rejected'`).Scan(&detail)
	if !strings.Contains(detail, "consent.rego") {
		t.Fatalf("refusal does not name the file: %q", detail)
	}
}

func TestPolicyFromBundleArchive(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	err := fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := fs.ReadFile(policies.FS, p)
		if err := tw.WriteHeader(&tar.Header{Name: "/" + p, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tw.Close()
	gz.Close()
	file := filepath.Join(t.TempDir(), "bundle.tar.gz")
	writeFile(t, file, buf.String())
	cfg, err := config.Load(func(k string) string {
		if k == "STEWARD_POLICY_BUNDLE" {
			return file
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	archived, err := loadPolicy(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := loadPolicy(context.Background(), config.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if archived.Revision() != embedded.Revision() {
		t.Fatalf("same files, different revisions: %s %s", archived.Revision(), embedded.Revision())
	}
}
