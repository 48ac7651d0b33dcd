package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// TestExportDownload downloads a stored package through its link: the
// bytes come back decrypted with the headers a browser needs, each
// download is audited, and a tampered link is a problem+json 404.
func TestExportDownload(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	r := e.start()
	g := &requestsRig{t: t, e: e, r: r}
	c := g.create(e.keys["reviewer"], map[string]any{"type": "access", "subject": "email:dl@example.com", "region": "DE", "channel": "staff",
		"note": "letter", "identity_verified": true}, 201)
	content := bytes.Repeat([]byte("PK\x03\x04 not really a zip "), 50_000)
	p, token, err := r.app.exports.Create(context.Background(), c.Request.ID, func(w io.Writer) error {
		_, err := w.Write(content)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	res := r.do("GET", "/v1/exports/"+token, "", nil)
	if res.status != 200 || !bytes.Equal(res.body, content) {
		t.Fatalf("download: %d, %d bytes (want %d)", res.status, len(res.body), len(content))
	}
	for h, want := range map[string]string{"Content-Type": "application/zip", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
		"Digest": "sha-256=" + p.SHA256} {
		if got := res.header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	if cd := res.header.Get("Content-Disposition"); !strings.Contains(cd, "attachment") || !strings.Contains(cd, c.Request.ID) {
		t.Errorf("Content-Disposition %q", cd)
	}
	tampered := token[:len(token)-2] + "AA"
	if tampered == token {
		tampered = token[:len(token)-2] + "BB"
	}
	bad := r.do("GET", "/v1/exports/"+tampered, "", nil)
	if bad.status != 404 || bad.problem(t).Code != "not_found" || bytes.Contains(bad.body, content[:20]) {
		t.Fatalf("tampered link: %d %s", bad.status, bad.body)
	}
	list, err := r.app.exports.ForRequest(context.Background(), c.Request.ID)
	if err != nil || len(list) != 1 || list[0].Downloads != 1 {
		t.Fatalf("packages %+v %v", list, err)
	}

	// Past its expiry the package goes, and its link answers 410 Gone.
	if _, err := e.pool.Exec(context.Background(), `UPDATE export_packages SET expires_at = now() - interval '1 second' WHERE id = $1`, p.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := r.app.exports.ExpireDue(context.Background()); err != nil || n != 1 {
		t.Fatalf("ExpireDue: %d, %v", n, err)
	}
	gone := r.do("GET", "/v1/exports/"+token, "", nil)
	if gone.status != 410 || gone.problem(t).Code != "gone" {
		t.Fatalf("expired link: %d %s", gone.status, gone.body)
	}
}
