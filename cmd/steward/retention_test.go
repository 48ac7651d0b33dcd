package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/refapp"
	"github.com/steward-privacy/steward/internal/retention"
	"github.com/steward-privacy/steward/internal/testpeer"
)

// TestRetentionEndToEnd enforces the reference schedule on the reference
// web product with an injected clock: rows and objects just past their
// period go, those just inside stay; a legal hold protects one person's;
// anonymization keeps the row without the person; a dry run and the plan
// change nothing; holds are audited; bad input is refused with a problem
// document; two replicas firing the same scheduled moment make one run.
func TestRetentionEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, nil)
	if err := refapp.CreateSchema(ctx, e.pool, "app", refapp.Web); err != nil {
		t.Fatal(err)
	}
	web, err := refapp.Generate(ctx, e.pool, "app", refapp.Web, refapp.Options{People: 12, Seed: 5, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	ann, held := web[0], web[1]

	// Objects: old ones, then (a second later, so their times differ) new
	// ones. The run's clock is set so that the 30-day cutoff of generated
	// content falls between the two.
	s3srv := testpeer.S3(t)
	s3srv.CreateBucket(t, "media", false)
	put := func(keys ...string) {
		for _, k := range keys {
			if _, err := s3srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("media"), Key: aws.String(k),
				Body: bytes.NewReader([]byte("image " + k))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	oldKeys := []string{"generated/" + ann.UserID + "/old.png", "generated/" + held.UserID + "/old.png", "uploads/" + ann.UserID + "/old.png"}
	newKeys := []string{"generated/" + ann.UserID + "/new.png", "uploads/" + held.UserID + "/new.png"}
	put(oldKeys...)
	time.Sleep(1100 * time.Millisecond)
	put(newKeys...)
	modTimes := map[string]time.Time{}
	out, err := s3srv.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("media")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		modTimes[*o.Key] = *o.LastModified
	}
	var oldest, newest time.Time
	for _, k := range oldKeys {
		if m := modTimes[k]; m.After(newest) {
			newest = m
		}
	}
	for _, k := range newKeys {
		if m := modTimes[k]; oldest.IsZero() || m.Before(oldest) {
			oldest = m
		}
	}
	if !newest.Before(oldest) {
		t.Fatalf("object times do not separate: old up to %v, new from %v", newest, oldest)
	}
	boundary := newest.Add(oldest.Sub(newest) / 2)
	now := boundary.Add(30 * 24 * time.Hour).Truncate(time.Minute).Add(time.Minute)
	boundary = now.Add(-30 * 24 * time.Hour) // the cutoff the run will use
	if !newest.Before(boundary) || !boundary.Before(oldest) {
		// The minute rounding moved the cutoff past an object; use the
		// exact moment instead (runs keep microseconds).
		now = newest.Add(oldest.Sub(newest) / 2).Add(30 * 24 * time.Hour).Truncate(time.Microsecond)
	}
	e.clock = clock.NewFake(now)
	cutoff := now.Add(-30 * 24 * time.Hour)

	// Rows: every generated job inside the period, then three of the test's
	// own: Ann's just past and just inside the cutoff, the held person's
	// long past. And a visitor seen just over 180 days ago (anonymized).
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := e.pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE app.generation_jobs SET created_at = $1`, now.Add(-24*time.Hour))
	exec(`UPDATE app.job_assets SET created_at = $1`, now.Add(-24*time.Hour))
	job := func(user string, at time.Time) string {
		var id string
		if err := e.pool.QueryRow(ctx, `INSERT INTO app.generation_jobs (user_id, prompt, model, status, created_at)
			VALUES ($1, 'a cat in a hat', 'model-x', 'succeeded', $2) RETURNING id::text`, user, at).Scan(&id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	annPast, annInside := job(ann.UserID, cutoff.Add(-time.Second)), job(ann.UserID, cutoff.Add(time.Second))
	heldPast := job(held.UserID, cutoff.Add(-24*time.Hour))
	// A due job whose asset is due too: the asset references the job, so
	// the run sweeps job_assets before generation_jobs and both go in it.
	withAsset := job(ann.UserID, cutoff.Add(-2*time.Hour))
	exec(`INSERT INTO app.job_assets (job_id, kind, object_key, created_at) VALUES ($1, 'output', 'generated/x.png', $2)`,
		withAsset, cutoff.Add(-2*time.Hour))
	exec(`UPDATE app.visitors SET last_seen_at = $1`, now.Add(-24*time.Hour))
	exec(`UPDATE app.visitors SET last_seen_at = $2, ip_address = '203.0.113.7', user_agent = 'Firefox' WHERE id = $1`,
		ann.VisitorID, now.Add(-180*24*time.Hour-time.Second))

	file := filepath.Join(t.TempDir(), "connectors.yaml")
	conf := fmt.Sprintf(`app_db:
  postgres: {dsn: %q, schema: app}
object_store:
  objectstore:
    s3: {bucket: media, endpoint: %q, region: us-east-1, access_key_id: %q, secret_access_key: %q, path_style: true}
`, e.url, s3srv.Endpoint, s3srv.AccessKey, s3srv.SecretKey)
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	e.cfg.ConnectorsFile = file
	e.vars["STEWARD_CONNECTORS"] = file
	r := e.start()
	admin, reviewer, auditor, frontend := e.keys["admin"], e.keys["reviewer"], e.keys["auditor"], e.keys["frontend"]

	exists := func(table, id string) bool {
		t.Helper()
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM app.`+table+` WHERE id::text = $1`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	objects := func() map[string]bool {
		t.Helper()
		out, err := s3srv.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("media")})
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, o := range out.Contents {
			m[*o.Key] = true
		}
		return m
	}
	waitRun := func(id string) retention.Run {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			var run retention.Run
			res := r.do("GET", "/v1/retention/runs/"+id, auditor, nil)
			res.json(t, &run)
			if run.Status != retention.StatusRunning {
				return run
			}
			if time.Now().After(deadline) {
				t.Fatalf("run %s still running: %s", id, res.body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	dataset := func(run retention.Run, sys, ds string) retention.DatasetRun {
		t.Helper()
		for _, d := range run.Datasets {
			if d.System == sys && d.Dataset == ds {
				return d
			}
		}
		t.Fatalf("run %s has no %s.%s", run.ID, sys, ds)
		return retention.DatasetRun{}
	}

	// The hold, through the API: on the person's email, which the
	// connectors resolve to the account id their rows and objects use.
	var hold retention.Hold
	t.Run("holds: bad input is refused and changes nothing", func(t *testing.T) {
		for _, tc := range []struct {
			body  string
			field string
		}{
			{`{"subject":"email:` + held.Email + `","reason":"case 7","expires_at":"2001-01-01T00:00:00Z"}`, "expires_at"},
			{`{"dataset":"app_db.nothing","reason":"case 7"}`, "dataset"},
			{`{"category":"user.nonsense","reason":"case 7"}`, "category"},
			{`{"subject":"email:` + held.Email + `"}`, "reason"},
			{`{"subject":"nobody","reason":"r"}`, "subject"},
		} {
			res := r.do("POST", "/v1/legal-holds", reviewer, tc.body)
			if p := res.problem(t); res.status != 400 || !strings.Contains(string(res.body), `"`+tc.field+`"`) {
				t.Errorf("%s: %d %+v", tc.body, res.status, p)
			}
		}
		if res := r.do("POST", "/v1/legal-holds", reviewer, `{"dataset":"app_db.users","category":"user","reason":"r"}`); res.status != 400 {
			t.Errorf("two scopes: %d %s", res.status, res.body)
		}
		if res := r.do("POST", "/v1/legal-holds", frontend, `{"dataset":"app_db.users","reason":"r"}`); res.status != 403 {
			t.Errorf("frontend key placed a hold: %d", res.status)
		}
		if n := countRows(t, e.pool, "legal_holds"); n != 0 {
			t.Errorf("refused holds left %d rows", n)
		}
	})
	t.Run("a hold is placed, listed and audited without the subject in the clear", func(t *testing.T) {
		res := r.do("POST", "/v1/legal-holds", reviewer, map[string]any{"subject": "email:" + held.Email, "reason": "Case 2026-17: preservation letter"})
		if res.status != 201 {
			t.Fatalf("place hold: %d %s", res.status, res.body)
		}
		res.json(t, &hold)
		if hold.Scope != retention.ScopeSubject || hold.SubjectKind != "email" || !hold.Active || bytes.Contains(res.body, []byte(held.Email)) {
			t.Errorf("hold: %s", res.body)
		}
		list := r.do("GET", "/v1/legal-holds", auditor, nil)
		if list.status != 200 || !bytes.Contains(list.body, []byte(hold.ID)) {
			t.Errorf("list: %d %s", list.status, list.body)
		}
		if got := r.do("GET", "/v1/legal-holds/"+hold.ID, auditor, nil); got.status != 200 {
			t.Errorf("get: %d", got.status)
		}
		r.seal()
		var details string
		if err := e.pool.QueryRow(ctx, `SELECT details::text FROM audit_log WHERE action = 'retention.hold_created' AND target_id = $1`, hold.ID).Scan(&details); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(details, held.Email) || strings.Contains(details, "preservation") || !strings.Contains(details, "subject_hash") {
			t.Errorf("audit details: %s", details)
		}
	})

	t.Run("the plan and a dry run count what is due and change nothing", func(t *testing.T) {
		code, out, errs := runCLI(t, e.vars, "retention", "plan", "--dataset", "app_db.generation_jobs")
		if code != 0 || !strings.Contains(out, "app_db.generation_jobs") || !strings.Contains(out, "30 days") {
			t.Fatalf("retention plan: %d %q %q", code, out, errs)
		}
		var plan struct{ Rules []retention.PlanItem }
		r.do("GET", "/v1/retention/plan?dataset=app_db.generation_jobs", auditor, nil).json(t, &plan)
		if len(plan.Rules) != 1 || plan.Rules[0].Due != 3 || plan.Rules[0].Held != 1 || plan.Rules[0].Status != "due" || !plan.Rules[0].Cutoff.Equal(cutoff) {
			t.Errorf("plan: %+v (want 3 due, 1 held, cutoff %v)", plan.Rules, cutoff)
		}
		res := r.do("POST", "/v1/retention/runs", admin, map[string]any{"dry_run": true})
		if res.status != 202 {
			t.Fatalf("dry run: %d %s", res.status, res.body)
		}
		var run retention.Run
		res.json(t, &run)
		run = waitRun(run.ID)
		jobs := dataset(run, "app_db", "generation_jobs")
		if run.Status != "completed" || jobs.Matched == nil || *jobs.Matched != 3 || jobs.Deleted != 0 || jobs.Held != 1 {
			t.Errorf("dry run: %+v / %+v", run, jobs)
		}
		if !exists("generation_jobs", annPast) || len(objects()) != len(oldKeys)+len(newKeys) {
			t.Error("the dry run changed data")
		}
	})

	t.Run("a run sweeps what is due, keeps what is inside or held", func(t *testing.T) {
		if res := r.do("POST", "/v1/retention/runs", admin, map[string]any{"dry_run": false, "dataset": "app_db.nothing"}); res.status != 400 {
			t.Errorf("run of an unknown dataset: %d %s", res.status, res.body)
		}
		if res := r.do("POST", "/v1/retention/runs", reviewer, map[string]any{"dry_run": false}); res.status != 403 {
			t.Errorf("reviewer started a run: %d", res.status)
		}
		// A real run deletes: it must be asked for, never the default of
		// an empty body (which once started one).
		runsBefore := countRows(t, e.pool, "retention_runs")
		if res := r.do("POST", "/v1/retention/runs", admin, nil); res.status != 415 {
			t.Errorf("run without a body: %d %s", res.status, res.body)
		}
		for _, body := range []string{"null", "{}", `{"dataset":"app_db.generation_jobs"}`} {
			res := r.do("POST", "/v1/retention/runs", admin, body)
			if res.status != 400 || len(res.problem(t).Errors) != 1 || res.problem(t).Errors[0].Field != "dry_run" {
				t.Errorf("run with %s: %d %s", body, res.status, res.body)
			}
		}
		if n := countRows(t, e.pool, "retention_runs"); n != runsBefore {
			t.Errorf("refused runs wrote %d rows", n-runsBefore)
		}
		res := r.do("POST", "/v1/retention/runs", admin, map[string]any{"dry_run": false})
		if res.status != 202 {
			t.Fatalf("run: %d %s", res.status, res.body)
		}
		var run retention.Run
		res.json(t, &run)
		run = waitRun(run.ID)
		for _, d := range run.Datasets {
			if d.Status == retention.StatusFailed {
				t.Errorf("%s.%s failed: %s", d.System, d.Dataset, d.LastError)
			}
		}
		if run.Status != "completed" {
			t.Errorf("run status %s", run.Status)
		}
		jobs := dataset(run, "app_db", "generation_jobs")
		if jobs.Status != retention.StatusSucceeded || jobs.Deleted != 2 || jobs.Held != 1 || jobs.Kept != 0 || jobs.Matched == nil || *jobs.Matched != 3 {
			t.Errorf("generation_jobs: %+v (matched %v)", jobs, jobs.Matched)
		}
		if exists("generation_jobs", withAsset) {
			t.Error("the due job whose due asset went in the same run is still there")
		}
		if exists("generation_jobs", annPast) || !exists("generation_jobs", annInside) || !exists("generation_jobs", heldPast) {
			t.Errorf("rows: just past present=%v, just inside present=%v, held present=%v",
				exists("generation_jobs", annPast), exists("generation_jobs", annInside), exists("generation_jobs", heldPast))
		}
		objs := objects()
		if objs["generated/"+ann.UserID+"/old.png"] || objs["uploads/"+ann.UserID+"/old.png"] {
			t.Errorf("objects past the period remain: %v", objs)
		}
		for _, k := range append(newKeys, "generated/"+held.UserID+"/old.png") {
			if !objs[k] {
				t.Errorf("object %s (inside the period or held) was deleted", k)
			}
		}
		if g := dataset(run, "object_store", "generated"); g.Deleted != 1 || g.Held != 1 {
			t.Errorf("object_store.generated: %+v", g)
		}
		// Anonymized: the visitor stays, without the person.
		var ip, ua *string
		var user *string
		if err := e.pool.QueryRow(ctx, `SELECT ip_address, user_agent, user_id FROM app.visitors WHERE id = $1`, ann.VisitorID).Scan(&ip, &ua, &user); err != nil {
			t.Fatalf("the anonymized visitor row is gone: %v", err)
		}
		if ip != nil || ua != nil || user != nil {
			t.Errorf("visitor not anonymized: ip=%v ua=%v user=%v", ip, ua, user)
		}
		if v := dataset(run, "app_db", "visitors"); v.Anonymized < 1 || v.Deleted != 0 {
			t.Errorf("visitors: %+v", v)
		}
		// Stripe and Creem have no connector here: staff are told.
		if s := dataset(run, "stripe", "charges"); s.Status != retention.StatusManual || s.Note == "" {
			t.Errorf("stripe.charges: %+v", s)
		}
		r.seal()
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'retention.swept' AND target_id = $1`, run.ID).Scan(&n); err != nil || n != len(run.Datasets) {
			t.Errorf("retention.swept events: %d, want %d (%v)", n, len(run.Datasets), err)
		}
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'retention.run_completed' AND target_id = $1`, run.ID).Scan(&n); err != nil || n != 1 {
			t.Errorf("retention.run_completed events: %d (%v)", n, err)
		}
		var list struct{ Runs []retention.Run }
		r.do("GET", "/v1/retention/runs?limit=5", auditor, nil).json(t, &list)
		found := false
		for i, x := range list.Runs {
			found = found || x.ID == run.ID
			if i > 0 && x.At.After(list.Runs[i-1].At) {
				t.Errorf("runs not newest first: %v after %v", x.At, list.Runs[i-1].At)
			}
		}
		if len(list.Runs) < 2 || !found {
			t.Errorf("runs list: %d runs, this one listed: %v", len(list.Runs), found)
		}
		m := r.do("GET", "/metrics", "", nil)
		if !bytes.Contains(m.body, []byte(`steward_retention_records_total{dataset="generation_jobs",outcome="deleted",system="app_db"} 2`)) {
			t.Errorf("metrics lack the sweep:\n%s", grepLines(string(m.body), "steward_retention"))
		}
	})

	t.Run("lifting the hold lets the next run sweep", func(t *testing.T) {
		if res := r.do("POST", "/v1/legal-holds/"+hold.ID+"/lift", reviewer, `{}`); res.status != 400 {
			t.Errorf("lift without a reason: %d", res.status)
		}
		res := r.do("POST", "/v1/legal-holds/"+hold.ID+"/lift", reviewer, `{"reason":"case closed"}`)
		if res.status != 200 {
			t.Fatalf("lift: %d %s", res.status, res.body)
		}
		if again := r.do("POST", "/v1/legal-holds/"+hold.ID+"/lift", reviewer, `{"reason":"twice"}`); again.status != 409 {
			t.Errorf("lift twice: %d", again.status)
		}
		// The CLI runs on the real clock: age the held row by it.
		exec(`UPDATE app.generation_jobs SET created_at = $1 WHERE id = $2`, time.Now().Add(-31*24*time.Hour), heldPast)
		exec(`UPDATE app.generation_jobs SET created_at = $1 WHERE id = $2`, time.Now().Add(-29*24*time.Hour), annInside)
		code, out, errs := runCLI(t, e.vars, "retention", "run", "--dry-run=false", "--dataset", "app_db.generation_jobs")
		if code != 0 || !strings.Contains(out, "succeeded") {
			t.Fatalf("retention run: %d %q %q", code, out, errs)
		}
		if exists("generation_jobs", heldPast) || !exists("generation_jobs", annInside) {
			t.Error("after the lift, the formerly held row should go and the inside row stay")
		}
	})

	t.Run("a dataset hold through the CLI stops its sweep", func(t *testing.T) {
		code, out, errs := runCLI(t, e.vars, "holds", "create", "--dataset", "app_db.generation_jobs", "--reason", "regulator inquiry")
		if code != 0 || !strings.Contains(out, `"scope": "dataset"`) {
			t.Fatalf("holds create: %d %q %q", code, out, errs)
		}
		if code, _, errs := runCLI(t, e.vars, "holds", "create", "--category", "user.financial", "--reason", "r", "--expires", "2001-01-01T00:00:00Z"); code != 2 || !strings.Contains(errs, "expires_at") {
			t.Errorf("hold expiring in the past: %d %q", code, errs)
		}
		exec(`UPDATE app.generation_jobs SET created_at = $1 WHERE id = $2`, time.Now().Add(-31*24*time.Hour), annInside)
		code, out, errs = runCLI(t, e.vars, "retention", "run", "--dry-run=false", "--dataset", "app_db.generation_jobs")
		if code != 0 || !strings.Contains(out, "held") || !exists("generation_jobs", annInside) {
			t.Errorf("run under a dataset hold: %d %q %q (row present: %v)", code, out, errs, exists("generation_jobs", annInside))
		}
		code, out, _ = runCLI(t, e.vars, "holds", "list")
		if code != 0 || !strings.Contains(out, "app_db.generation_jobs") {
			t.Errorf("holds list: %d %q", code, out)
		}
	})

	t.Run("two replicas firing the same scheduled moment make one run", func(t *testing.T) {
		r2 := e.start()
		var wg sync.WaitGroup
		for _, a := range []*application{r.app, r2.app} {
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = a.retain.RunScheduled(ctx) }()
		}
		wg.Wait()
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM retention_runs WHERE trigger = 'schedule'`).Scan(&n); err != nil || n != 1 {
			t.Errorf("scheduled runs: %d (%v), want 1", n, err)
		}
	})

	t.Run("the audit chain verifies", func(t *testing.T) {
		r.seal()
		if v := r.do("GET", "/v1/admin/audit/verify", auditor, nil); v.status != 200 || !bytes.Contains(v.body, []byte(`"ok":true`)) {
			t.Errorf("audit verify: %d %s", v.status, v.body)
		}
	})
}

// A sweep whose batch fails half way is retried from where it stopped:
// the run records the failure, and its counts add up to exactly the rows
// that were due, none counted twice.
func TestRetentionSweepResumesAfterAFailedBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, map[string]string{"STEWARD_RETENTION_PACE": "0"})
	if err := refapp.CreateSchema(ctx, e.pool, "app", refapp.Web); err != nil {
		t.Fatal(err)
	}
	const due = 2000
	// One row in the middle cannot be deleted the first time: its batch
	// fails as when the application holds the row's lock past the
	// sweep's lock_timeout (retryable). A sequence is not rolled back
	// with the failed batch, so the second time it goes.
	for _, sql := range []string{
		`INSERT INTO app.generation_jobs (prompt, model, status, created_at)
			SELECT CASE WHEN i = 1200 THEN 'boom' ELSE 'p' || i END, 'm', 'succeeded', now() - interval '400 days'
			FROM generate_series(1, 2000) AS i`,
		`INSERT INTO app.generation_jobs (prompt, model, status, created_at) SELECT 'recent', 'm', 'succeeded', now() FROM generate_series(1, 10)`,
		`CREATE SEQUENCE app.fail_once`,
		`CREATE FUNCTION app.fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF OLD.prompt = 'boom' AND nextval('app.fail_once') = 1 THEN
					RAISE EXCEPTION 'could not obtain lock on row' USING ERRCODE = 'lock_not_available';
				END IF;
				RETURN OLD;
			END $$`,
		`CREATE TRIGGER fail_once BEFORE DELETE ON app.generation_jobs FOR EACH ROW EXECUTE FUNCTION app.fail_once()`,
	} {
		if _, err := e.pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "connectors.yaml")
	if err := os.WriteFile(file, []byte(fmt.Sprintf("app_db:\n  postgres: {dsn: %q, schema: app, sweep_batch: 100}\n", e.url)), 0o600); err != nil {
		t.Fatal(err)
	}
	e.cfg.ConnectorsFile = file
	r := e.start()
	run, err := r.app.retain.RunNow(ctx, retention.RunOptions{Trigger: retention.TriggerCLI, Actor: "system:test", Dataset: "app_db.generation_jobs"})
	if err != nil {
		t.Fatal(err)
	}
	d := run.Datasets[0]
	if d.Status != retention.StatusSucceeded || d.Errors != 1 || d.Deleted != due || d.Matched == nil || *d.Matched != due {
		t.Fatalf("run: %+v (matched %v), want %d matched and deleted after one failed attempt", d, d.Matched, due)
	}
	var left, recent int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE prompt <> 'recent'), count(*) FILTER (WHERE prompt = 'recent') FROM app.generation_jobs`).Scan(&left, &recent); err != nil {
		t.Fatal(err)
	}
	if left != 0 || recent != 10 {
		t.Errorf("after the run: %d due rows left, %d recent rows (want 0 and 10)", left, recent)
	}
}

// Two replicas with the scheduler on, firing every minute: the one that
// holds the scheduler's advisory lock starts the minute's run, the other
// skips it (it never reaches the run's unique moment).
func TestScheduledSweepOnOneReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, map[string]string{"STEWARD_RETENTION_SCHEDULE": "* * * * *"})
	r1, r2 := e.start(), e.start()
	deadline := time.Now().Add(75 * time.Second)
	var n int
	for n == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no scheduled run within 75 s")
		}
		time.Sleep(200 * time.Millisecond)
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM retention_runs WHERE trigger = 'schedule'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second) // let a second firing, if any, arrive
	started := 0
	for _, r := range []*replica{r1, r2} {
		started += strings.Count(r.logs.String(), `"msg":"retention run started"`)
		if strings.Contains(r.logs.String(), "already started elsewhere") {
			t.Error("both replicas fired the scheduled sweep; only the elected one should")
		}
	}
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM retention_runs WHERE trigger = 'schedule'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != started || n < 1 {
		t.Errorf("scheduled runs %d, runs started by the replicas %d", n, started)
	}
	var at time.Time
	if err := e.pool.QueryRow(ctx, `SELECT at FROM retention_runs WHERE trigger = 'schedule' ORDER BY at LIMIT 1`).Scan(&at); err != nil || at.Second() != 0 {
		t.Errorf("the scheduled run's moment %v is not a whole minute (%v)", at, err)
	}
}
