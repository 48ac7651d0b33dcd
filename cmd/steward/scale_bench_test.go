package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/keyring"
)

// seedLedger puts subjects tg:from … tg:to-1 into the consent ledger, each
// with one grant of "broadcast" for the bot product, straight in SQL: the
// keyed lookup hashes are computed here with the deployment's keyring (so
// a check finds them) and copied in, the events and the current state are
// derived in the database. The sealed identity is a placeholder: a check
// never opens it.
func seedLedger(b *testing.B, e *env, from, to int) {
	b.Helper()
	ctx := context.Background()
	kr, err := keyring.Parse(e.vars["STEWARD_IDENTITY_KEYS"])
	if err != nil {
		b.Fatal(err)
	}
	kid := kr.ActiveKID()
	now := time.Now()
	i := from
	n, err := e.pool.CopyFrom(ctx, pgx.Identifier{"subjects"}, []string{"kind", "lookup_hash", "hash_kid", "ciphertext", "enc_kid", "created_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i >= to {
				return nil, nil
			}
			h := kr.Hash(identity.MustParse("tg:" + strconv.Itoa(i)))
			i++
			return []any{"tg", h, kid, []byte{0}, kid, now}, nil
		}))
	if err != nil || int(n) != to-from {
		b.Fatalf("seed subjects: %d of %d: %v", n, to-from, err)
	}
	for _, q := range []string{
		`INSERT INTO consent_events (id, subject_id, subject_kind, purpose, state, source, notice_version, jurisdiction, language, product, gpc, policy_revision, recorded_at)
		 SELECT gen_random_uuid(), s.id, 'tg', 'broadcast', 'granted', 'bot', '1.0', 'DE', 'en', 'bot', false, 'bench', now()
		 FROM subjects s WHERE s.ciphertext = '\x00'::bytea AND NOT EXISTS (SELECT 1 FROM consent_state c WHERE c.subject_id = s.id)`,
		`INSERT INTO consent_state (subject_id, purpose, state, source, notice_version, gpc, event_id, updated_at)
		 SELECT e.subject_id, e.purpose, e.state, e.source, e.notice_version, e.gpc, e.id, e.recorded_at
		 FROM consent_events e WHERE e.policy_revision = 'bench' ON CONFLICT DO NOTHING`,
		`ANALYZE subjects`, `ANALYZE consent_events`, `ANALYZE consent_state`,
	} {
		if _, err := e.pool.Exec(ctx, q); err != nil {
			b.Fatalf("seed ledger: %v", err)
		}
	}
}

// checkOnce asks base for one consent decision and returns how long the
// answer took; it must allow when the subject was seeded with a grant and
// deny otherwise.
func checkOnce(b *testing.B, hc *http.Client, base, key string, tg int, seeded bool) time.Duration {
	q := url.Values{"subject": {"tg:" + strconv.Itoa(tg)}, "purpose": {"broadcast"}, "jurisdiction": {"DE"}}
	req, _ := http.NewRequest("GET", base+"/v1/consent/check?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+key)
	start := time.Now()
	res, err := hc.Do(req)
	if err != nil {
		b.Error(err)
		return 0
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	d := time.Since(start)
	var c checkResp
	if res.StatusCode != 200 || json.Unmarshal(body, &c) != nil || c.Allow != seeded {
		b.Errorf("check tg:%d: %d %s", tg, res.StatusCode, body)
	}
	return d
}

func p50(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// ledgerSize is the large ledger of BenchmarkConsentCheckLedgerSize:
// STEWARD_BENCH_LEDGER_N, default 1,000,000 subjects.
func ledgerSize(b *testing.B) int {
	n := 1_000_000
	if v := os.Getenv("STEWARD_BENCH_LEDGER_N"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2_000 {
			b.Fatalf("STEWARD_BENCH_LEDGER_N=%q: want at least 2000", v)
		}
	}
	return n
}

// BenchmarkConsentCheckLedgerSize measures the consent check through a
// whole replica (HTTP, authentication, policy) when the subject is not in
// the replica's cache, so every check reads the ledger: first with 1,000
// subjects in it, then with 1,000,000 (STEWARD_BENCH_LEDGER_N). Each of
// the 1,000 checks per size asks about a different seeded subject. Reports
// both medians and their ratio (1M/1k): an index missing on the check's
// path shows here as a ratio far above 1.
func BenchmarkConsentCheckLedgerSize(b *testing.B) {
	big := ledgerSize(b)
	e := newEnv(b, nil)
	r := e.start()
	key := e.keys["frontend"]
	hc := &http.Client{Timeout: 10 * time.Second}
	const small, checks = 1_000, 1_000
	measure := func(lo, hi int) []time.Duration {
		// Distinct subjects, never checked before: each check misses the
		// cache and reads the ledger.
		picks := rand.Perm(hi - lo)[:checks]
		out := make([]time.Duration, 0, checks)
		for _, p := range picks {
			out = append(out, checkOnce(b, hc, r.base, key, lo+p, true))
		}
		return out
	}
	const base = 10_000_000
	seedLedger(b, e, base, base+small)
	for i := range 1_000 { // warm the connections, the plans and the policy memo
		checkOnce(b, hc, r.base, key, 20_000_000+i, false)
	}
	smallLat := measure(base, base+small)
	start := time.Now()
	seedLedger(b, e, base+small, base+big)
	b.Logf("seeded %d more subjects in %v", big-small, time.Since(start).Round(time.Second))
	b.ResetTimer()
	bigLat := measure(base+small, base+big)
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	ps, pb := p50(smallLat), p50(bigLat)
	b.ReportMetric(ms(ps), "p50-ms-1k")
	b.ReportMetric(ms(pb), "p50-ms-big")
	b.ReportMetric(float64(pb)/float64(ps), "p50-ratio-big/1k")
	b.ReportMetric(0, "ns/op")
	fmt.Printf("BenchmarkConsentCheckLedgerSize: consent check (cache miss) p50 %.2f ms with %d subjects, %.2f ms with %d; ratio %.2f\n",
		ms(ps), small, ms(pb), big, float64(pb)/float64(ps))
}

// BenchmarkConsentCheckTwoReplicas measures consent-check throughput
// (checks per second over 3 s, 16 concurrent clients, 10,000 seeded
// subjects, so mostly cache hits after the first pass) against one replica,
// then with the same clients spread over two replicas sharing the
// database. Reports both and their ratio. On a machine with few cores the
// replicas and the clients share them, which the ratio shows honestly.
func BenchmarkConsentCheckTwoReplicas(b *testing.B) {
	e := newEnv(b, nil)
	r1, r2 := e.start(), e.start()
	key := e.keys["frontend"]
	const base, subjects, clients = 10_000_000, 10_000, 16
	seedLedger(b, e, base, base+subjects)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	run := func(bases []string, d time.Duration) float64 {
		var total atomic.Int64
		var wg sync.WaitGroup
		deadline := time.Now().Add(d)
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(c), 1))
				for time.Now().Before(deadline) {
					checkOnce(b, hc, bases[c%len(bases)], key, base+rng.IntN(subjects), true)
					total.Add(1)
				}
			}()
		}
		wg.Wait()
		return float64(total.Load()) / d.Seconds()
	}
	run([]string{r1.base, r2.base}, time.Second) // warm both replicas' caches and pools
	b.ResetTimer()
	one := run([]string{r1.base}, 3*time.Second)
	two := run([]string{r1.base, r2.base}, 3*time.Second)
	b.StopTimer()
	b.ReportMetric(one, "checks/s-1-replica")
	b.ReportMetric(two, "checks/s-2-replicas")
	b.ReportMetric(two/one, "ratio-2/1")
	b.ReportMetric(0, "ns/op")
	fmt.Printf("BenchmarkConsentCheckTwoReplicas: %d clients, %d subjects: one replica %.0f checks/s, two replicas %.0f checks/s; ratio %.2f\n",
		clients, subjects, one, two, two/one)
}
