package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/notify/resendtest"
	"github.com/steward-privacy/steward/internal/refapp"
)

// digestExcept is a digest of every row of the web tables that is not the
// user's, to show their erasure left everyone else alone.
func digestExcept(t *testing.T, pool *pgxpool.Pool, userID string) string {
	t.Helper()
	var parts []string
	for _, table := range []string{"users", "sessions", "accounts", "payments", "invoices", "generation_jobs", "credit_transactions", "support_tickets"} {
		col := "user_id"
		if table == "users" {
			col = "id"
		}
		var d string
		q := fmt.Sprintf("SELECT coalesce(md5(string_agg(md5(x::text), '' ORDER BY x::text)), '') FROM app.%s x WHERE x.%s IS DISTINCT FROM $1", table, col)
		if err := pool.QueryRow(context.Background(), q, userID).Scan(&d); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, table+"="+d)
	}
	return strings.Join(parts, " ")
}

// TestPostgresConnectorEndToEnd runs access and erasure requests through
// the engine and the postgres connector configured by a connectors file,
// against the reference web and bot databases.
func TestPostgresConnectorEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fake := resendtest.New(t)
	e := newEnv(t, map[string]string{
		"STEWARD_RESEND_API_KEY": "re_test", "STEWARD_RESEND_BASE_URL": fake.URL, "STEWARD_EMAIL_FROM": "Privacy <privacy@example.com>",
	})
	if err := refapp.CreateSchema(ctx, e.pool, "app", refapp.Web); err != nil {
		t.Fatal(err)
	}
	if err := refapp.CreateSchema(ctx, e.pool, "bot", refapp.Bot); err != nil {
		t.Fatal(err)
	}
	web, err := refapp.Generate(ctx, e.pool, "app", refapp.Web, refapp.Options{People: 40, Seed: 7, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	bot, err := refapp.Generate(ctx, e.pool, "bot", refapp.Bot, refapp.Options{People: 40, Seed: 8, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "connectors.yaml")
	conf := fmt.Sprintf(`app_db:
  postgres: {dsn: %q, schema: app, restrict_columns: {users: processing_restricted}, batch_size: 50}
bot_db:
  postgres: {dsn: %q, schema: bot, restrict_columns: {tg_users: processing_restricted}}
`, e.url, e.url)
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	e.cfg.ConnectorsFile = file
	g := &requestsRig{t: t, e: e, r: e.start(), fake: fake}
	reviewer := e.keys["reviewer"]
	staff := func(typ, subject string) string {
		c := g.create(reviewer, map[string]any{"type": typ, "subject": subject, "region": "DE", "channel": "staff",
			"note": "letter received", "identity_verified": true}, 201)
		return c.Request.ID
	}
	// finish completes the manual tasks (vendor systems) once planned.
	finish := func(id string) {
		g.waitFor(id, dsar.InProgress, dsar.Completed)
		g.finishManual(id)
	}
	recordsBy := func(id string) map[string]int {
		recs, err := g.r.app.requests.Records(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, r := range recs {
			out[r.Dataset]++
		}
		return out
	}

	p := web[0]
	t.Run("web access finds every row of the person, and only theirs", func(t *testing.T) {
		id := staff("access", "email:"+p.Email)
		finish(id)
		d := g.waitFor(id, dsar.Completed)
		got := recordsBy(id)
		for table, n := range p.Rows {
			if got[table] != n {
				t.Errorf("%s: %d records exported, the person has %d rows", table, got[table], n)
			}
		}
		for ds, n := range got {
			if p.Rows[ds] == 0 && !strings.HasPrefix(ds, "tg_") {
				t.Errorf("%s: %d records exported, the person has none", ds, n)
			}
		}
		automated := 0
		for _, task := range d.Tasks {
			if task.Mode == dsar.ModeAutomated {
				automated++
				if task.System != "app_db" {
					t.Errorf("automated task on %s", task.System)
				}
			}
		}
		if automated < 20 {
			t.Errorf("%d automated app_db tasks, want one per dataset", automated)
		}
	})

	t.Run("bot access by Telegram id, package from the status page", func(t *testing.T) {
		b := bot[0]
		c := g.create(reviewer, map[string]any{"type": "access", "subject": fmt.Sprintf("tg:%d", b.TelegramID), "region": "DE", "channel": "staff",
			"note": "asked in the bot", "identity_verified": true}, 201)
		id := c.Request.ID
		finish(id)
		g.waitFor(id, dsar.Completed)
		got := recordsBy(id)
		for table, n := range b.Rows {
			if got[table] != n {
				t.Errorf("%s: %d records exported, the person has %d rows", table, got[table], n)
			}
		}
		// A Telegram user has no email: the bot shows the link from the
		// status page, which the status token opens.
		st := g.r.do("GET", "/v1/privacy-requests/"+id+"/status", "", nil, "Steward-Status-Token", c.StatusToken)
		var status dsar.PublicStatus
		if err := json.Unmarshal(st.body, &status); err != nil || st.status != 200 || status.DownloadURL == "" {
			t.Fatalf("status: %d %s", st.status, st.body)
		}
		res := g.r.do("GET", status.DownloadURL[strings.Index(status.DownloadURL, "/v1/exports/"):], "", nil)
		zr, err := zip.NewReader(bytes.NewReader(res.body), int64(len(res.body)))
		if res.status != 200 || err != nil {
			t.Fatalf("download: %d %v", res.status, err)
		}
		names := map[string]bool{}
		for _, f := range zr.File {
			names[f.Name] = true
		}
		for table, n := range b.Rows {
			if n > 0 && !names["csv/bot_db/"+table+".csv"] {
				t.Errorf("the package has no csv/bot_db/%s.csv (the person has %d rows)", table, n)
			}
		}
		// The person has prompts, star payments and referrals (the
		// generator's seed), so the check above covered each.
		for _, want := range []string{"tg_generations", "tg_payments", "tg_referrals"} {
			if b.Rows[want] == 0 || !names["csv/bot_db/"+want+".csv"] {
				t.Errorf("%s: %d rows, in the package %v", want, b.Rows[want], names["csv/bot_db/"+want+".csv"])
			}
		}
	})

	t.Run("web erasure: retained payments keep a tombstone, nobody else touched", func(t *testing.T) {
		before := digestExcept(t, e.pool, p.UserID)
		id := staff("erasure", "email:"+p.Email)
		g.waitFor(id, dsar.AwaitingApproval)
		if res := g.r.do("POST", "/v1/privacy-requests/"+id+"/approve", reviewer, map[string]any{"note": "ok"}); res.status != 200 {
			t.Fatalf("approve: %d %s", res.status, res.body)
		}
		finish(id)
		d := g.waitFor(id, dsar.Completed, dsar.Failed)
		if d.Status != dsar.Completed {
			for _, task := range d.Tasks {
				if task.Status == dsar.TaskFailed {
					t.Errorf("task %s/%s failed: %s", task.System, task.Dataset, task.Error)
				}
			}
			t.FailNow()
		}
		for _, q := range []string{
			"SELECT count(*) FROM app.sessions WHERE user_id = $1",
			"SELECT count(*) FROM app.generation_jobs WHERE user_id = $1",
			"SELECT count(*) FROM app.accounts WHERE user_id = $1",
			// A NOT NULL text column gets a keyed hash instead of null.
			"SELECT count(*) FROM app.users WHERE id = $1 AND (name NOT LIKE 'kh:%' OR email NOT LIKE 'kh:%' OR image IS NOT NULL)",
		} {
			if n := countWhere(t, e.pool, q, p.UserID); n != 0 {
				t.Errorf("%s: %d rows left", q, n)
			}
		}
		if n := countWhere(t, e.pool, "SELECT count(*) FROM app.payments WHERE user_id = $1", p.UserID); n != p.Rows["payments"] {
			t.Errorf("payments kept: %d, want all %d (5-year accounting retention)", n, p.Rows["payments"])
		}
		if after := digestExcept(t, e.pool, p.UserID); after != before {
			t.Errorf("other people's rows changed:\n%s\n%s", before, after)
		}
		// Asked again, the email finds nothing: the account is a tombstone
		// without it. A search that finds nothing waits for staff, who
		// confirm it by resuming; only then does the request complete.
		again := staff("access", "email:"+p.Email)
		g.waitFor(again, dsar.InProgress, dsar.Paused)
		g.finishManual(again)
		if d := g.waitFor(again, dsar.Paused); !strings.Contains(d.PauseReason, "No records were found") {
			t.Errorf("re-access after erasure paused with %q", d.PauseReason)
		}
		if got := recordsBy(again); got["users"] != 0 || got["sessions"] != 0 {
			t.Errorf("re-access after erasure found %v", got)
		}
		if res := g.r.do("POST", "/v1/privacy-requests/"+again+"/resume", reviewer, nil); res.status != 200 {
			t.Fatalf("resume: %d %s", res.status, res.body)
		}
		g.waitFor(again, dsar.Completed)
	})
}

func countWhere(t *testing.T, pool *pgxpool.Pool, q string, args ...any) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
