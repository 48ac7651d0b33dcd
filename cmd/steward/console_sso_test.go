package main

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/staff/oidctest"
)

// TestConsoleSSO: a replica configured with STEWARD_STAFF_OIDC_* against
// the stand-in provider offers single sign-on on the console's sign-in page,
// and a member whose provider reports a second factor signs in over plain
// HTTP (a cookie jar following the redirects, no browser), audited as
// themselves; the client secret is in no log line.
func TestConsoleSSO(t *testing.T) {
	t.Parallel()
	const secret = "oidc-client-secret-do-not-log"
	var provider *oidctest.Provider
	g := newConsoleRigWith(t, nil, func(base string) map[string]string {
		// The default redirect URL is the console's own callback.
		provider = oidctest.New(t, "steward-console", secret, base+"/console/signin/oidc/callback")
		return map[string]string{
			"STEWARD_STAFF_OIDC_ISSUER":        provider.Issuer,
			"STEWARD_STAFF_OIDC_CLIENT_ID":     "steward-console",
			"STEWARD_STAFF_OIDC_CLIENT_SECRET": secret,
		}
	})
	g.account("sso@example.com", "reviewer")
	provider.SetUser(oidctest.User{Subject: "u-1", Email: "sso@example.com", EmailVerified: true, AMR: []string{"pwd", "mfa"}})
	provider.SetClock(func() time.Time { return g.r.app.clock.Now() })

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(u string) (*http.Response, string) {
		t.Helper()
		res, err := client.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}

	res, page := get(g.r.base + "/console/signin")
	if res.StatusCode != 200 || !strings.Contains(page, `href="/console/signin/oidc" id="sso"`) {
		t.Fatalf("sign-in page %d offers no single sign-on", res.StatusCode)
	}
	// The console → the provider (signs the user in at once) → the
	// callback → the queue, signed in.
	res, page = get(g.r.base + "/console/signin/oidc")
	if res.StatusCode != 200 || res.Request.URL.Path != "/console/requests" {
		t.Fatalf("after single sign-on: %d at %s", res.StatusCode, res.Request.URL)
	}
	if !strings.Contains(page, "sso@example.com") && !strings.Contains(page, "reviewer") {
		t.Fatal("the queue does not show the member signed in")
	}
	var actor string
	if err := g.e.pool.QueryRow(context.Background(), `
		SELECT actor FROM (SELECT actor, action FROM audit_pending UNION ALL SELECT actor, action FROM audit_log) e
		WHERE action = 'staff.signed_in' LIMIT 1`).Scan(&actor); err != nil {
		t.Fatalf("no staff.signed_in entry: %v", err)
	}
	if !strings.HasPrefix(actor, "staff:") {
		t.Fatalf("signed in as %q", actor)
	}
	if strings.Contains(g.r.logs.String(), secret) {
		t.Fatal("the client secret is in the log")
	}
}
