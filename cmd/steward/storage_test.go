package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/policies"
)

func copyPolicies(t *testing.T, dir string) {
	t.Helper()
	err := fs.WalkDir(policies.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, p), 0o755)
		}
		b, err := fs.ReadFile(policies.FS, p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, p), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPersonalDataIsNotStoredInTheClear dumps every text column the consent
// path writes and looks for the identities and addresses it was given.
func TestPersonalDataIsNotStoredInTheClear(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.start()
	fk := e.keys["frontend"]
	r.record(fk, grant("email:Secret.Person@Example.net", "marketing", "granted", "ip", "192.0.2.44", "linked_subjects", []string{"tg:555000111", "oauth:google:1099887766"}))
	r.check(fk, "email:secret.person@example.net", "marketing", "US-CA", "Sec-GPC", "1")
	ctx := context.Background()
	var dump string
	err := e.pool.QueryRow(ctx, `
		SELECT string_agg(t, ' ') FROM (
			SELECT row_to_json(s)::text AS t FROM subjects s
			UNION ALL SELECT row_to_json(e)::text FROM consent_events e
			UNION ALL SELECT row_to_json(c)::text FROM consent_state c
			UNION ALL SELECT row_to_json(l)::text FROM subject_links l) x`).Scan(&dump)
	if err != nil {
		t.Fatal(err)
	}
	for _, pii := range []string{"secret.person", "Secret.Person", "example.net", "192.0.2.44", "555000111", "1099887766"} {
		if strings.Contains(dump, pii) {
			t.Errorf("database holds %q in the clear", pii)
		}
	}
	// The values are recoverable with the key (they are encrypted, not lost).
	var n int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM subjects WHERE length(ciphertext) > 28 AND length(lookup_hash) = 32 AND hash_kid = 'k1' AND enc_kid = 'k1'`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("subjects with hash and ciphertext: %d %v", n, err)
	}
}

func TestConsentEventsAreAppendOnly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.start()
	r.record(e.keys["frontend"], grant("tg:8", "analytics", "granted", "notice_version", "1.0"))
	ctx := context.Background()
	for _, stmt := range []string{
		`UPDATE consent_events SET state = 'denied'`,
		`DELETE FROM consent_events`,
		`TRUNCATE consent_events CASCADE`,
	} {
		if _, err := e.pool.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", stmt, err)
		}
	}
}
