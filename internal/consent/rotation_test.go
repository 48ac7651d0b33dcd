package consent_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/consent"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/rekey"
	"github.com/steward-privacy/steward/policies"
)

// serviceWith is a consent service over pool with keyring spec, as a
// replica restarted with a new STEWARD_IDENTITY_KEYS would have.
func serviceWith(t *testing.T, pool *pgxpool.Pool, spec string) (*consent.Service, *keyring.Keyring) {
	t.Helper()
	kr, err := keyring.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := policy.Load(context.Background(), policies.FS)
	if err != nil {
		t.Fatal(err)
	}
	h := &engines{}
	h.e.Store(eng)
	cache := consent.NewCache(100)
	cache.EnableWithoutListener()
	return consent.NewService(pool, kr, h, clock.Real{}, slog.New(slog.DiscardHandler), cache, consent.Options{Notifier: &sent{}}), kr
}

func keySecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func keyState(t *testing.T, st rekey.Status, kid string) rekey.KeyState {
	t.Helper()
	for _, k := range st.Keys() {
		if k.KID == kid {
			return k
		}
	}
	t.Fatalf("no key %s in %+v", kid, st.Keys())
	return rekey.KeyState{}
}

// An erased person's opt-out (GDPR Art. 21(3); the notices' "Opt out of
// marketing communications") outlives erasure and key rotation (issue 19:
// "after which the old key can be removed and the service says so"): the
// old key, needed only for erased people's lookup hashes, is kept as
// lookup-only, which opens nothing; removing it entirely is refused with
// the count; and once the people come back (a check or a record with the
// identity in hand) their rows move to the new key and it can go.
func TestErasedOptOutSurvivesKeyRetirement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	k1, k2 := "k1:"+keySecret(), "k2:"+keySecret()
	svc1, kr1 := serviceWith(t, pool, k1)
	ann, bob, dan, carol := subject(t, "email:ann@example.com"), subject(t, "email:bob@example.com"), subject(t, "user:dan"), subject(t, "email:carol@example.com")
	for _, s := range []identity.Subject{ann, bob, dan} {
		if _, err := svc1.Record(ctx, consent.RecordInput{Subject: s, Purpose: "marketing", State: consent.Withdrawn, Source: "web_settings", NoticeVersion: "2.0", Jurisdiction: "DE"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc1.Record(ctx, consent.RecordInput{Subject: carol, Purpose: "analytics", State: consent.Granted, Source: "web_settings", NoticeVersion: "2.0", Jurisdiction: "DE"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc1.Forget(ctx, nil, []identity.Subject{ann, bob, dan}, "system:dsar"); err != nil {
		t.Fatal(err)
	}
	// A restriction is stored under the hash alone: it follows ann's row.
	if _, err := pool.Exec(ctx, `INSERT INTO processing_restrictions (system, dataset, lookup_hash, restricted_at, restriction_id) VALUES ('app_db', 'users', $1, now(), gen_random_uuid())`, kr1.Hash(ann)); err != nil {
		t.Fatal(err)
	}
	check := func(svc *consent.Service, s identity.Subject, purpose string) policy.Decision {
		t.Helper()
		d, err := svc.Check(ctx, consent.CheckInput{Subject: s, Purpose: purpose, Jurisdiction: "DE", Age: -1})
		if err != nil {
			t.Fatalf("check %s: %v", purpose, err)
		}
		return d
	}
	rk := func(spec string) *rekey.Service {
		kr, err := keyring.Parse(spec)
		if err != nil {
			t.Fatal(err)
		}
		return &rekey.Service{Pool: pool, Keys: kr}
	}

	// Demoting k1 while carol is still sealed under it is refused, and
	// nothing opens under a lookup-only key.
	early := rk(k2 + "," + k1 + ":lookup")
	if _, err := early.Check(ctx); !errors.Is(err, rekey.ErrDemotedTooEarly) || !strings.Contains(err.Error(), "subjects: 1") {
		t.Fatalf("check with k1 demoted before re-encryption: %v", err)
	}
	if _, err := early.RunOnce(ctx); !errors.Is(err, keyring.ErrLookupOnly) {
		t.Fatalf("re-encryption opened under a lookup-only key: %v", err)
	}

	// Re-encryption moves carol; the three erased people hold k1 for
	// lookups only: it can be demoted, not removed.
	full := rk(k2 + "," + k1)
	if _, err := full.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := full.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if k := keyState(t, st, "k1"); k.Verdict != rekey.VerdictLookupOnly || k.SealedRows != 0 || k.ErasedRows != 3 ||
		strings.Join(st.Demotable(), ",") != "k1" || len(st.Retirable()) != 0 {
		t.Fatalf("after re-encryption: %+v demotable %v retirable %v", k, st.Demotable(), st.Retirable())
	}
	_, err = rk(k2).Check(ctx)
	if !errors.Is(err, rekey.ErrMissingKey) || !strings.Contains(err.Error(), `3 rows under key "k1"`) || !strings.Contains(err.Error(), "lookup-only") {
		t.Fatalf("start-up with k1 removed while erased people use it: %v", err)
	}

	demoted := k2 + "," + k1 + ":lookup"
	if st, err = rk(demoted).Check(ctx); err != nil {
		t.Fatalf("start-up with k1 lookup-only: %v", err)
	}
	if k := keyState(t, st, "k1"); k.Configured != "lookup-only" || k.Verdict != rekey.VerdictLookupOnly || len(st.Demotable()) != 0 {
		t.Fatalf("k1 lookup-only: %+v", k)
	}
	svc2, kr2 := serviceWith(t, pool, demoted)
	// Ann comes back through a check: still refused, and her row (and her
	// restriction) move to k2.
	// (Her restriction, found under k1's hash, answers first.)
	if d := check(svc2, ann, "marketing"); d.Allow || d.Reason != "restricted" {
		t.Fatalf("ann's opt-out after rotation: %+v", d)
	}
	// Bob comes back through a record of another purpose.
	if _, err := svc2.Record(ctx, consent.RecordInput{Subject: bob, Purpose: "analytics", State: consent.Granted, Source: "web_settings", NoticeVersion: "2.0", Jurisdiction: "DE"}); err != nil {
		t.Fatal(err)
	}
	st, _ = rk(demoted).Status(ctx)
	if k := keyState(t, st, "k1"); k.ErasedRows != 1 || k.HashOnlyRows != 1 {
		t.Fatalf("after ann and bob came back, dan alone should hold k1: %+v (%+v)", k, st.Rows)
	}
	if d := check(svc2, dan, "marketing"); d.Allow || d.Reason != "withdrawn" {
		t.Fatalf("dan's opt-out with k1 lookup-only: %+v", d)
	}
	st, _ = rk(demoted).Status(ctx)
	if strings.Join(st.Retirable(), ",") != "k1" || keyState(t, st, "k1").Verdict != rekey.VerdictRemove {
		t.Fatalf("k1 should be removable: %+v %v", st.Keys(), st.Rows)
	}

	// k1 gone: every opt-out still refuses, the restriction is found.
	if _, err := rk(k2).Check(ctx); err != nil {
		t.Fatalf("start-up without k1: %v", err)
	}
	svc3, _ := serviceWith(t, pool, k2)
	for _, s := range []identity.Subject{ann, bob, dan} {
		want := "withdrawn"
		if s == ann {
			want = "restricted"
		}
		if d := check(svc3, s, "marketing"); d.Allow || d.Reason != want {
			t.Fatalf("%s's opt-out without k1: %+v", s, d)
		}
	}
	cur, err := svc3.Current(ctx, ann)
	if err != nil {
		t.Fatal(err)
	}
	withdrawn := false
	for _, p := range cur {
		withdrawn = withdrawn || p.Purpose == "marketing" && p.State == consent.Withdrawn
	}
	if !withdrawn {
		t.Fatalf("ann's marketing state without k1: %+v", cur)
	}
	if d := check(svc3, bob, "analytics"); !d.Allow {
		t.Fatalf("bob's new grant: %+v", d)
	}
	var restricted bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM processing_restrictions WHERE lookup_hash = $1)`, kr2.Hash(ann)).Scan(&restricted); err != nil || !restricted {
		t.Fatalf("ann's restriction did not follow her row: %v", err)
	}
}
