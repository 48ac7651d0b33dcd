package main

import (
	"context"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// totpCode is the TOTP code of a base32 secret at t, as an authenticator
// app computes it (6 digits, 30 s, SHA-1).
func totpCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// staffMember creates an account of role and signs it in through the
// staff API (password, then TOTP enrolment): the session token and the
// TOTP secret.
func staffMember(t testing.TB, a *application, email, role string) (token, secret string) {
	t.Helper()
	ctx := context.Background()
	const pw = "correct horse battery staple"
	if _, err := a.staff.CreateAccount(ctx, email, role, role, pw, "system:test"); err != nil {
		t.Fatal(err)
	}
	p, err := a.staff.SignInPassword(ctx, email, pw, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	enr, err := a.staff.BeginTOTPEnrolment(ctx, p.Token)
	if err != nil {
		t.Fatal(err)
	}
	s, err := a.staff.FinishTOTPEnrolment(ctx, p.Token, totpCode(t, enr.Secret, a.clock.Now()), "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return s.Token, enr.Secret
}

// BenchmarkConsoleQueue renders the console's queue page (open requests by
// due date, the first page of 50) with 100,000 requests in the database,
// through the whole server: session check, authz decision, dsar.List and
// the template. Baseline, in the same run: the raw indexed query of the
// same page. Reports both medians and their ratio.
func BenchmarkConsoleQueue(b *testing.B) {
	e := newEnv(b, nil)
	r := e.start()
	ctx := context.Background()
	const n = 100_000
	for _, q := range []string{
		`INSERT INTO subjects (kind, lookup_hash, hash_kid, ciphertext, enc_kid, created_at)
		 SELECT 'email', sha256(('bench-subject-' || g)::bytea), 'k1', '\x00'::bytea, 'k1', now() FROM generate_series(1, 100000) g`,
		`INSERT INTO privacy_requests (id, type, status, channel, language, region, regime, subject_id, subject_kind, status_token_hash,
		   received_at, due_at, original_due_at, created_by, policy_revision, updated_at)
		 SELECT gen_random_uuid(), (ARRAY['access','erasure','export'])[1 + g % 3],
		        (ARRAY['in_progress','awaiting_approval','completed','verified'])[1 + g % 4],
		        (ARRAY['web','bot','staff'])[1 + g % 3], 'en', 'DE', (ARRAY['gdpr','uk_gdpr','ccpa'])[1 + g % 3], s.id, 'email',
		        sha256(('bench-token-' || g)::bytea), now() - interval '10 days',
		        now() + ((g % 60) - 10) * interval '1 day' + g * interval '1 second',
		        now() + ((g % 60) - 10) * interval '1 day' + g * interval '1 second', 'key:bench', 'bench', now()
		 FROM (SELECT id, row_number() OVER (ORDER BY id) AS g FROM subjects WHERE hash_kid = 'k1' AND ciphertext = '\x00'::bytea) s`,
		`ANALYZE privacy_requests`,
	} {
		if _, err := e.pool.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	var count int
	if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM privacy_requests`).Scan(&count); err != nil || count < n {
		b.Fatalf("seeded %d requests: %v", count, err)
	}
	tok, _ := staffMember(b, r.app, "bench@example.com", "reviewer")
	client := &http.Client{Timeout: 10 * time.Second}
	page := func() time.Duration {
		req, _ := http.NewRequest("GET", r.base+"/console/requests", nil)
		req.Header.Set("Cookie", "steward_staff="+tok)
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		d := time.Since(start)
		if res.StatusCode != 200 || strings.Count(string(body), "data-request=") != 50 {
			b.Fatalf("queue page: %d, %d rows", res.StatusCode, strings.Count(string(body), "data-request="))
		}
		return d
	}
	raw := func() time.Duration {
		start := time.Now()
		rows, err := e.pool.Query(ctx, `SELECT id::text, type, status, channel, regime, received_at, due_at FROM privacy_requests
			WHERE status NOT IN ('completed', 'denied', 'canceled') ORDER BY due_at, id LIMIT 51`)
		if err != nil {
			b.Fatal(err)
		}
		k := 0
		for rows.Next() {
			var id, typ, st, ch, reg string
			var rec, due time.Time
			if err := rows.Scan(&id, &typ, &st, &ch, &reg, &rec, &due); err != nil {
				b.Fatal(err)
			}
			k++
		}
		rows.Close()
		if k != 51 {
			b.Fatalf("raw query: %d rows", k)
		}
		return time.Since(start)
	}
	for range 20 { // warm the pool, the policy memo and the plan cache
		page()
		raw()
	}
	var pages, raws []time.Duration
	for b.Loop() {
		pages = append(pages, page())
		raws = append(raws, raw())
	}
	med := func(ds []time.Duration) float64 {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return float64(ds[len(ds)/2].Microseconds()) / 1000
	}
	pm, rm := med(pages), med(raws)
	b.ReportMetric(pm, "page-p50-ms")
	b.ReportMetric(rm, "raw-query-p50-ms")
	b.ReportMetric(pm/rm, "page/raw")
}
