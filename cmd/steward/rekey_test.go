package main

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/dsar"
)

// Identity keys can be retired (issue 19: "A re-encryption job moves every
// stored identity to the newest key, resumable, after which the old key can
// be removed and the service says so"): rows written by the real services
// under k1 move to k2 with `steward keys reencrypt`, k1 can then go, and a
// start without k1 before that is refused with the count.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	k1 := e.vars["STEWARD_IDENTITY_KEYS"]
	k2 := "k2:" + randB64(32)
	subject := "email:ann@example.com"

	r := e.start()
	if res := r.do("POST", "/v1/consents", e.keys["frontend"], grant(subject, "analytics", "granted")); res.status != 201 && res.status != 200 {
		t.Fatalf("consent: %d %s", res.status, res.body)
	}
	// Through the service rather than the API: what matters here is the
	// rows the real intake seals (contact, identities, details).
	if _, err := r.app.requests.Create(context.Background(), dsar.CreateInput{Type: "access", Subject: identity.MustParse(subject), Region: "DE",
		Channel: "staff", Note: "rotation", IdentityVerified: true, Actor: "system:test", IsStaff: true, CanAssert: true}); err != nil {
		t.Fatalf("request: %v", err)
	}
	r.stop()
	// The acknowledgment email waits in the outbox sealed under k1; the
	// worker empties a payload on delivery, done here by hand (no Resend).
	if _, err := e.pool.Exec(context.Background(), `UPDATE outbox SET status = 'delivered', delivered_at = now(), payload = '{}'`); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCLI(t, e.vars, "holds", "create", "--subject", subject, "--reason", "rotation test"); code != 0 {
		t.Fatalf("hold: %s", errs)
	}

	setKeys := func(spec string) {
		t.Helper()
		e.vars["STEWARD_IDENTITY_KEYS"] = spec
		cfg, err := config.Load(func(k string) string { return e.vars[k] })
		if err != nil {
			t.Fatal(err)
		}
		e.cfg = cfg
	}

	t.Run("removing k1 before re-encryption is refused at start-up with the count", func(t *testing.T) {
		setKeys(k2)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := build(ctx, e.cfg, slog.New(slog.DiscardHandler), clock.Real{}, needServer)
		if err == nil || !strings.Contains(err.Error(), `under key "k1"`) || !strings.Contains(err.Error(), "subjects: 1") {
			t.Fatalf("start without k1: %v", err)
		}
		if code, out, errs := runCLI(t, e.vars, "keys", "status"); code == 0 || !strings.Contains(out, "key not configured") {
			t.Fatalf("status without k1: %d %q %q", code, out, errs)
		}
	})

	setKeys(k2 + "," + k1)
	code, out, errs := runCLI(t, e.vars, "keys", "status")
	if code != 0 || !strings.Contains(out, "privacy_request_identities") || strings.Contains(out, "can be removed") ||
		!strings.Contains(out, "still needed for sealed data: k1") {
		t.Fatalf("status after rotation: %d %q %q", code, out, errs)
	}
	code, out, errs = runCLI(t, e.vars, "keys", "reencrypt", "--batch", "1")
	if code != 0 || !strings.Contains(out, "every stored identity is under the active key") || !strings.Contains(out, "can be removed from STEWARD_IDENTITY_KEYS: k1") {
		t.Fatalf("reencrypt: %d %q %q", code, out, errs)
	}
	var audited int
	if err := e.pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE actor = 'system:rekey' AND action LIKE 'identity_keys.reencrypt_%'`).Scan(&audited); err != nil || audited < 3 {
		t.Errorf("audit: %d entries %v", audited, err)
	}

	// k1 gone: Steward starts, says nothing is left on another key, and
	// finds the person's consent and request by their identity.
	setKeys(k2)
	r = e.start()
	defer r.stop()
	res := r.do("GET", "/v1/consents?subject="+subject, e.keys["frontend"], nil)
	if res.status != 200 || !strings.Contains(string(res.body), `"granted"`) {
		t.Fatalf("consent after retirement: %d %s", res.status, res.body)
	}
	reqs, _, err := r.app.requests.List(context.Background(), dsar.Filter{Identity: identity.MustParse(subject)})
	if err != nil || len(reqs) != 1 {
		t.Fatalf("request by identity after retirement: %d %v", len(reqs), err)
	}
	if res := r.do("GET", "/metrics", "", nil); !strings.Contains(string(res.body), "steward_identity_rows_on_retired_keys 0") {
		t.Errorf("metrics: no zero gauge")
	}
}
