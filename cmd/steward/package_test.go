package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/dsar"
)

// unzipped reads every entry of a ZIP.
func unzipped(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("not a ZIP: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		c, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[f.Name] = c
	}
	return out
}

// TestNothingFoundAndStaffPackage runs, through the API, an access request
// made under an address that holds nothing: it pauses for staff instead of
// sending an empty package; staff re-plan it with the address the person
// signed up with, it completes with their records, and staff download the
// package it produced (audited; never an auditor). A second request that
// really finds nothing is confirmed by resuming it: its package says so.
func TestNothingFoundAndStaffPackage(t *testing.T) {
	t.Parallel()
	g := newRequestsRig(t)
	ctx := context.Background()
	reviewer, auditor := g.e.keys["reviewer"], g.e.keys["auditor"]
	em := connectors.Identity{Type: "email", Value: "real@example.com"}
	user := connectors.Identity{Type: "user", Value: "u-77"}
	if err := g.store.Put(ctx, "app_db", "users", "u-77", []connectors.Identity{em, user}, map[string]any{"id": "u-77", "email": "real@example.com", "name": "Rea"}); err != nil {
		t.Fatal(err)
	}
	if err := g.store.Link(ctx, em, user); err != nil {
		t.Fatal(err)
	}
	var reviewerKeyID string
	if err := g.e.pool.QueryRow(ctx, `SELECT id FROM api_keys WHERE name = 'test-reviewer'`).Scan(&reviewerKeyID); err != nil {
		t.Fatal(err)
	}
	staffAccess := func(subject string) string {
		c := g.create(reviewer, map[string]any{"type": "access", "subject": subject, "region": "DE", "channel": "staff",
			"note": "letter of 3 March", "identity_verified": true}, 201)
		return c.Request.ID
	}
	pkgPath := func(id string) string { return "/v1/privacy-requests/" + id + "/package" }

	id := staffAccess("email:typo@example.com")
	if res := g.r.do("GET", pkgPath(id), reviewer, nil); res.status != 404 || res.problem(t).Code != "not_found" {
		t.Fatalf("package before there is one: %d %s", res.status, res.body)
	}
	g.waitFor(id, dsar.InProgress, dsar.Paused)
	g.finishManual(id)
	d := g.waitFor(id, dsar.Paused)
	if d.PausedFrom != dsar.InProgress || !strings.Contains(d.PauseReason, "No records were found for the given identities in any system") {
		t.Fatalf("paused from %s: %q", d.PausedFrom, d.PauseReason)
	}
	if n := countRows(t, g.e.pool, "export_packages"); n != 0 {
		t.Errorf("%d packages built for a request that found nothing", n)
	}
	if res := g.r.do("GET", pkgPath(id), reviewer, nil); res.status != 404 {
		t.Errorf("package of a paused request: %d %s", res.status, res.body)
	}

	// Re-planned with the address the person signed up with.
	if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/replan", reviewer, map[string]any{"identities": []string{"real@example.com"}}); res.status != 400 {
		t.Errorf("re-plan with a malformed identity: %d %s", res.status, res.body)
	}
	if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/replan", auditor, map[string]any{"identities": []string{"email:real@example.com"}}); res.status != 403 {
		t.Errorf("re-plan by an auditor: %d %s", res.status, res.body)
	}
	res := g.r.do("POST", "/v1/privacy-requests/"+id+"/replan", reviewer, map[string]any{"identities": []string{"email:Real@Example.com"}, "note": "the person signed up with another address"})
	var replanned dsar.Request
	if res.status != 200 {
		t.Fatalf("re-plan: %d %s", res.status, res.body)
	}
	res.json(t, &replanned)
	if replanned.Status != dsar.Verified || replanned.PlannedAt != nil {
		t.Errorf("re-planned request: %+v", replanned)
	}
	g.waitFor(id, dsar.InProgress, dsar.Paused, dsar.Completed)
	g.finishManual(id)
	if d := g.waitFor(id, dsar.Completed, dsar.Paused); d.Status != dsar.Completed {
		t.Fatalf("after re-planning: %s (%q)", d.Status, d.PauseReason)
	}
	if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/replan", reviewer, nil); res.status != 409 {
		t.Errorf("re-plan of a completed request: %d %s", res.status, res.body)
	}

	// Staff download the package; an auditor may not.
	if res := g.r.do("GET", pkgPath(id), auditor, nil); res.status != 403 || !strings.Contains(res.problem(t).Detail, "requests.download_package") {
		t.Errorf("auditor download: %d %s", res.status, res.body)
	}
	pkgs, err := g.r.app.exports.ForRequest(ctx, id)
	if err != nil || len(pkgs) != 1 {
		t.Fatalf("packages %+v, %v", pkgs, err)
	}
	res = g.r.do("GET", pkgPath(id), reviewer, nil)
	if res.status != 200 {
		t.Fatalf("staff download: %d %s", res.status, res.body)
	}
	sum := sha256.Sum256(res.body)
	if hex.EncodeToString(sum[:]) != pkgs[0].SHA256 || int64(len(res.body)) != pkgs[0].Size {
		t.Errorf("downloaded %d bytes %x, stored %d bytes %s", len(res.body), sum, pkgs[0].Size, pkgs[0].SHA256)
	}
	for h, want := range map[string]string{"Content-Type": "application/zip", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
		"X-Content-Type-Options": "nosniff", "Digest": "sha-256=" + pkgs[0].SHA256,
		"Content-Disposition": `attachment; filename="personal-data-` + id + `.zip"`} {
		if got := res.header.Get(h); got != want {
			t.Errorf("%s: %q, want %q", h, got, want)
		}
	}
	entries := unzipped(t, res.body)
	var data struct {
		Records []struct{ System, Dataset, Key string } `json:"records"`
		Subject struct {
			IdentityKinds []string `json:"identity_kinds"`
		} `json:"subject"`
		Controller struct{ Name string } `json:"controller"`
	}
	if err := json.Unmarshal(entries["data.json"], &data); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range data.Records {
		found = found || r.Dataset == "users" && r.Key == "u-77"
	}
	if !found || data.Controller.Name != "Nano Banana Pro" {
		t.Errorf("package records %+v, controller %q", data.Records, data.Controller.Name)
	}
	var audited int
	var details string
	if err := g.e.pool.QueryRow(ctx, `SELECT count(*), coalesce(max(details::text), '') FROM (SELECT actor, action, target_id, details FROM audit_log
		UNION ALL SELECT actor, action, target_id, details FROM audit_pending) a
		WHERE action = 'export.staff_downloaded' AND target_id = $1 AND actor = $2`, id, "key:"+reviewerKeyID).Scan(&audited, &details); err != nil {
		t.Fatal(err)
	}
	if audited != 1 || !strings.Contains(details, pkgs[0].ID) || strings.Contains(details, "real@example.com") || strings.Contains(details, "u-77") {
		t.Errorf("audit: %d staff downloads, details %s", audited, details)
	}
	if after, _ := g.r.app.exports.ForRequest(ctx, id); after[0].Downloads != 0 {
		t.Errorf("a staff download counted as the person's: %d", after[0].Downloads)
	}

	// Nothing held, confirmed by resuming: the package says so.
	none := staffAccess("email:nobody@example.com")
	g.waitFor(none, dsar.InProgress, dsar.Paused)
	g.finishManual(none)
	g.waitFor(none, dsar.Paused)
	if res := g.r.do("POST", "/v1/privacy-requests/"+none+"/resume", reviewer, nil); res.status != 200 {
		t.Fatalf("resume: %d %s", res.status, res.body)
	}
	d = g.waitFor(none, dsar.Completed)
	confirmed := false
	for _, e := range d.Timeline {
		confirmed = confirmed || e.Event == "nothing_found_confirmed" && e.Actor == "key:"+reviewerKeyID
	}
	if !confirmed {
		t.Error("the timeline does not show staff confirming that nothing is held")
	}
	res = g.r.do("GET", pkgPath(none), g.e.keys["admin"], nil)
	if res.status != 200 {
		t.Fatalf("admin download: %d %s", res.status, res.body)
	}
	entries = unzipped(t, res.body)
	if !bytes.Contains(entries["index.html"], []byte("Nothing found: we hold no personal data about you")) {
		t.Error("the package does not say that nothing is held")
	}
	if err := json.Unmarshal(entries["data.json"], &data); err != nil || len(data.Records) != 0 {
		t.Errorf("records %+v, %v", data.Records, err)
	}
}
