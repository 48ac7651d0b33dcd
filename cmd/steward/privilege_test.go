package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestServesWithLeastPrivilegeRole applies docs/least-privilege.sql and runs
// a replica as that role: consent, checks, GPC, sealing and verify work, and
// the role cannot change the audit record or consent proof even with the
// triggers out of the way.
func TestServesWithLeastPrivilegeRole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := context.Background()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	role := "steward_app_" + hex.EncodeToString(b)
	script, err := os.ReadFile("../../docs/least-privilege.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Exec(ctx, "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The test database is dropped after this cleanup runs (cleanups
		// run last-in first-out), so drop what the role owns first.
		_, _ = e.pool.Exec(context.Background(), "DROP OWNED BY "+role)
		_, _ = e.pool.Exec(context.Background(), "DROP ROLE IF EXISTS "+role)
	})
	if _, err := e.pool.Exec(ctx, strings.ReplaceAll(string(script), "steward_app", role)); err != nil {
		t.Fatalf("least-privilege.sql: %v", err)
	}
	// Every table the migrations made is granted to the role: a table the
	// script forgets fails here, not in production at the first request
	// that needs it.
	rows, err := e.pool.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname NOT LIKE 'recordstore_%'
		  AND NOT has_table_privilege($1, c.oid, 'SELECT, INSERT, UPDATE, DELETE') ORDER BY 1`, role)
	if err != nil {
		t.Fatal(err)
	}
	ungranted, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(ungranted) > 0 {
		t.Errorf("docs/least-privilege.sql grants nothing on %v", ungranted)
	}
	u, _ := url.Parse(e.url)
	u.User = url.User(role)
	cfg := e.cfg
	cfg.DatabaseURL = u.String()
	app := &env{t: t, url: cfg.DatabaseURL, pool: e.pool, cfg: cfg, keys: e.keys}
	lp := app.start()
	fk := e.keys["frontend"]
	lp.record(fk, grant("tg:4040", "broadcast", "granted", "source", "bot", "notice_version", "1.0"))
	if c := lp.check(fk, "tg:4040", "broadcast", "DE"); !c.Allow {
		t.Fatalf("%+v", c)
	}
	lp.check(fk, "visitor:leastpriv01", "marketing", "US-CA", "Sec-GPC", "1")
	lp.seal()
	res := lp.do("GET", "/v1/admin/audit/verify", e.keys["auditor"], nil)
	if !strings.Contains(string(res.body), `"ok":true`) {
		t.Fatalf("verify as the app role: %s", res.body)
	}
	// A privacy request runs as the app role too: intake, River jobs,
	// planning, an extension (which restarts reminders) and a cancel.
	res = lp.do("POST", "/v1/privacy-requests", fk, map[string]any{"type": "access", "subject": "tg:4041", "region": "DE", "channel": "bot", "identity_asserted": true})
	var created struct {
		Request struct {
			ID string `json:"id"`
		} `json:"request"`
	}
	if res.status != 201 {
		t.Fatalf("create request as the app role: %d %s", res.status, res.body)
	}
	res.json(t, &created)
	rv := e.keys["reviewer"]
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		res = lp.do("GET", "/v1/privacy-requests/"+created.Request.ID, rv, nil)
		if strings.Contains(string(res.body), `"status":"in_progress"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request did not start as the app role: %s", res.body)
		}
	}
	for _, step := range []struct{ path, reason string }{{"extend", "many systems to search"}, {"cancel", "withdrawn"}} {
		if res := lp.do("POST", "/v1/privacy-requests/"+created.Request.ID+"/"+step.path, rv, map[string]any{"reason": step.reason}); res.status != 200 {
			t.Errorf("%s as the app role: %d %s", step.path, res.status, res.body)
		}
	}
	conn, err := pgx.Connect(ctx, cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, stmt := range []string{
		"ALTER TABLE audit_log DISABLE TRIGGER USER",
		"UPDATE audit_log SET actor = 'system:x'",
		"DELETE FROM audit_log",
		"TRUNCATE audit_log",
		"UPDATE consent_events SET state = 'denied'",
		"DELETE FROM consent_events",
		"UPDATE audit_checkpoints SET seq = 0",
	} {
		_, err := conn.Exec(ctx, stmt)
		// Deleting consent events is granted for erasure's one exception
		// (consent.Forget), and refused by the ledger's trigger outside it.
		guarded := strings.HasPrefix(stmt, "DELETE FROM consent_events") && err != nil && strings.Contains(err.Error(), "append-only")
		if err == nil || !(guarded || strings.Contains(err.Error(), "permission denied") || strings.Contains(err.Error(), "must be owner")) {
			t.Errorf("%s as %s: %v", stmt, role, err)
		}
	}
	// Opening the guard's door by hand is not enough: a grant goes only
	// once its person was forgotten (their identity shredded), so the role
	// cannot quietly delete a living person's proof of consent.
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('steward.consent_forget', 'on', true)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM consent_events WHERE state = 'granted'`)
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("deleting a living person's grant with the guard's setting on: %v", err)
	}
	if n := countRows(t, e.pool, "consent_events"); n == 0 {
		t.Error("the ledger is empty")
	}
}
