package rekey_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/rekey"
	"github.com/steward-privacy/steward/internal/subjects"
)

func secret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func ring(t *testing.T, spec string) *keyring.Keyring {
	t.Helper()
	kr, err := keyring.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// The associated data the owning packages seal with, written out here on
// purpose: a change to tables.go that drifts from them fails this test.
func dsarAAD(req, what string) []byte { return []byte("steward dsar v1\x00" + req + "\x00" + what) }
func holdAAD(id string) []byte        { return []byte("legal_hold:" + id) }
func totpAAD(id string) []byte        { return []byte("steward staff totp v1\x00" + id) }

var sessionAAD = []byte("steward web v1\x00session")

type seeded struct {
	emails    []string
	requestID string
	holdID    string
	staffID   string
	session   []byte
}

// seed writes, under kr, what each owner writes: subjects through
// subjects.Upsert, the rest as the owners' SQL does.
func seed(t *testing.T, pool *pgxpool.Pool, kr *keyring.Keyring) seeded {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	var s seeded
	var firstID int64
	for i := range 5 {
		email := "person" + string(rune('a'+i)) + "@example.com"
		s.emails = append(s.emails, email)
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			r, err := subjects.Upsert(ctx, tx, kr, identity.MustParse("email:"+email), now)
			if i == 0 {
				firstID = r.ID
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	seal := func(plain, aad []byte) (string, []byte) {
		kid, ct, err := kr.Seal(plain, aad)
		if err != nil {
			t.Fatal(err)
		}
		return kid, ct
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s.requestID = uuid.NewString()
	contact, _ := json.Marshal(s.emails[0])
	ckid, cct := seal(contact, dsarAAD(s.requestID, "contact"))
	exec(`INSERT INTO privacy_requests (id, type, status, channel, language, region, regime, subject_id, subject_kind,
		status_token_hash, contact_kid, contact_ct, received_at, due_at, original_due_at, created_by, policy_revision, updated_at)
		VALUES ($1, 'access', 'received', 'web', 'en', 'DE', 'gdpr', $2, 'email', $3, $4, $5, $6, $6, $6, 'test', 'r', $6)`,
		s.requestID, firstID, []byte(s.requestID), ckid, cct, now)
	subj := identity.MustParse("email:" + s.emails[0])
	ident, _ := json.Marshal(subj.String())
	ikid, ict := seal(ident, dsarAAD(s.requestID, "identity"))
	exec(`INSERT INTO privacy_request_identities (request_id, kind, lookup_hash, kid, ciphertext, source) VALUES ($1, 'email', $2, $3, $4, 'given')`,
		s.requestID, kr.Hash(subj), ikid, ict)
	exec(`INSERT INTO processing_restrictions (system, dataset, lookup_hash, restricted_at, restriction_id) VALUES ('app_db', 'users', $1, $2, gen_random_uuid())`,
		kr.Hash(subj), now)
	s.holdID = uuid.NewString()
	hkid, hct := seal([]byte("email:"+s.emails[1]), holdAAD(s.holdID))
	exec(`INSERT INTO legal_holds (id, scope, subject_kind, subject_hash, subject_kid, subject_ct, reason, created_by, created_at)
		VALUES ($1, 'subject', 'email', $2, $3, $4, 'litigation', 'system:test', $5)`,
		s.holdID, kr.Hash(identity.MustParse("email:"+s.emails[1])), hkid, hct, now)
	s.staffID = uuid.NewString()
	tkid, tct := seal([]byte("totp secret"), totpAAD(s.staffID))
	exec(`INSERT INTO staff_accounts (id, email, name, role, password_hash, totp_kid, totp_ct, created_at, updated_at)
		VALUES ($1, 'staff@example.com', 'Staff', 'reviewer', 'x', $2, $3, $4, $4)`, s.staffID, tkid, tct, now)
	s.session = []byte("token hash")
	pkid, pct := seal([]byte("email:"+s.emails[2]), sessionAAD)
	exec(`INSERT INTO person_sessions (token_hash, subject_kid, subject_ct, product, method, created_at, last_seen, expires_at)
		VALUES ($1, $2, $3, 'web', 'email_code', $4, $4, $4)`, s.session, pkid, pct, now)
	return s
}

func TestRekey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	k1, k2 := "k1:"+secret(), "k2:"+secret()
	s := seed(t, pool, ring(t, k1))

	t.Run("removing k1 before re-encryption is refused with the count", func(t *testing.T) {
		svc := &rekey.Service{Pool: pool, Keys: ring(t, k2)}
		_, err := svc.Check(ctx)
		if !errors.Is(err, rekey.ErrMissingKey) {
			t.Fatalf("check: %v", err)
		}
		// 5 subjects, contact, identity, hold, TOTP, session.
		for _, want := range []string{`10 rows under key "k1"`, "subjects: 5", "legal_holds: 1", "staff_accounts.totp: 1"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q lacks %q", err, want)
			}
		}
	})

	rotated := ring(t, k2+","+k1)
	svc := &rekey.Service{Pool: pool, Keys: rotated, Batch: 2}
	st, err := svc.Check(ctx)
	if err != nil || st.Remaining() != 10 || len(st.Retirable()) != 0 {
		t.Fatalf("status after rotation: %+v %v", st, err)
	}

	// A crash after the first batch: the next run resumes from the rows.
	cctx, cancel := context.WithCancel(ctx)
	batches := 0
	rekey.SetAfterBatch(svc, func(string, int) { batches++; cancel() })
	n, err := svc.RunOnce(cctx)
	if !errors.Is(err, context.Canceled) || n != 2 || batches != 1 {
		t.Fatalf("interrupted run: n=%d batches=%d err=%v", n, batches, err)
	}
	if st, _ := svc.Status(ctx); st.Remaining() != 8 {
		t.Fatalf("after the crash: %+v", st)
	}
	rekey.SetAfterBatch(svc, nil)
	if n, err := svc.RunOnce(ctx); err != nil || n != 8 {
		t.Fatalf("resumed run: %d %v", n, err)
	}
	st, err = svc.Status(ctx)
	if err != nil || st.Remaining() != 0 || strings.Join(st.Retirable(), ",") != "k1" {
		t.Fatalf("status after re-encryption: %+v %v", st, err)
	}
	if n, err := svc.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("a second run moved %d: %v", n, err)
	}

	// k1 removed: everything opens and every lookup finds its row.
	only := ring(t, k2)
	if _, err := (&rekey.Service{Pool: pool, Keys: only}).Check(ctx); err != nil {
		t.Fatalf("check without k1: %v", err)
	}
	for _, email := range s.emails {
		subj := identity.MustParse("email:" + email)
		var ct []byte
		var kid string
		if err := pool.QueryRow(ctx, `SELECT enc_kid, ciphertext FROM subjects WHERE lookup_hash = ANY($1)`, only.Hashes(subj)).Scan(&kid, &ct); err != nil {
			t.Fatalf("subject lookup: %v", err)
		}
		if pt, err := only.Open(kid, ct, []byte("email")); err != nil || string(pt) != subj.String() {
			t.Fatalf("subject open: %q %v", pt, err)
		}
	}
	subj := identity.MustParse("email:" + s.emails[0])
	open := func(q string, aad []byte, args ...any) string {
		t.Helper()
		var kid string
		var ct []byte
		if err := pool.QueryRow(ctx, q, args...).Scan(&kid, &ct); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		pt, err := only.Open(kid, ct, aad)
		if err != nil || kid != "k2" {
			t.Fatalf("%s: open under %s: %v", q, kid, err)
		}
		return string(pt)
	}
	if got := open(`SELECT contact_kid, contact_ct FROM privacy_requests WHERE id = $1`, dsarAAD(s.requestID, "contact"), s.requestID); !strings.Contains(got, s.emails[0]) {
		t.Errorf("contact: %q", got)
	}
	open(`SELECT kid, ciphertext FROM privacy_request_identities WHERE request_id = $1 AND lookup_hash = $2`, dsarAAD(s.requestID, "identity"), s.requestID, only.Hash(subj))
	open(`SELECT subject_kid, subject_ct FROM legal_holds WHERE subject_hash = $1`, holdAAD(s.holdID), only.Hash(identity.MustParse("email:"+s.emails[1])))
	open(`SELECT totp_kid, totp_ct FROM staff_accounts WHERE id = $1`, totpAAD(s.staffID), s.staffID)
	open(`SELECT subject_kid, subject_ct FROM person_sessions WHERE token_hash = $1`, sessionAAD, s.session)
	var restricted bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM processing_restrictions WHERE lookup_hash = ANY($1))`, only.Hashes(subj)).Scan(&restricted); err != nil || !restricted {
		t.Errorf("restriction not found under the new key: %v", err)
	}
}

// A person erased from the ledger keeps only a keyed hash (proof of their
// opt-out): there is nothing to hash again, so the key stays needed, for
// lookups only: removing it is refused, demoting it to lookup-only is
// accepted, and status says which.
func TestErasedSubjectPinsItsKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	k1, k2 := "k1:"+secret(), "k2:"+secret()
	seed(t, pool, ring(t, k1))
	if _, err := pool.Exec(ctx, `UPDATE subjects SET ciphertext = '', enc_kid = '', forgotten_at = now() WHERE id = (SELECT min(id) FROM subjects)`); err != nil {
		t.Fatal(err)
	}
	svc := &rekey.Service{Pool: pool, Keys: ring(t, k2+","+k1), Batch: 3}
	if _, err := svc.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := svc.Status(ctx)
	if err != nil || st.Remaining() != 1 || len(st.Retirable()) != 0 || !st.Rows[0].Stuck || !strings.Contains(st.Rows[0].Group, "erased") {
		t.Fatalf("status: %+v %v", st, err)
	}
	if _, err := (&rekey.Service{Pool: pool, Keys: ring(t, k2)}).Check(ctx); !errors.Is(err, rekey.ErrMissingKey) ||
		!strings.Contains(err.Error(), "1 rows") || !strings.Contains(err.Error(), "k1:BASE64:lookup") {
		t.Fatalf("check: %v", err)
	}
	if d := st.Demotable(); strings.Join(d, ",") != "k1" {
		t.Fatalf("demotable: %v (%+v)", d, st.Keys())
	}
	st, err = (&rekey.Service{Pool: pool, Keys: ring(t, k2+","+k1+":lookup")}).Check(ctx)
	if err != nil {
		t.Fatalf("check with k1 lookup-only: %v", err)
	}
	keys := st.Keys()
	if len(keys) != 2 || keys[0].Verdict != rekey.VerdictActive || keys[1].Verdict != rekey.VerdictLookupOnly ||
		keys[1].Configured != "lookup-only" || keys[1].ErasedRows != 1 || keys[1].SealedRows != 0 || len(st.Demotable()) != 0 {
		t.Fatalf("keys: %+v", keys)
	}
}

// A key demoted to lookup-only while sealed rows still use it is refused
// at start-up with the counts: nothing could open those rows.
func TestLookupOnlyTooEarlyIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := dbtest.New(t)
	k1, k2 := "k1:"+secret(), "k2:"+secret()
	seed(t, pool, ring(t, k1))
	svc := &rekey.Service{Pool: pool, Keys: ring(t, k2+","+k1+":lookup")}
	st, err := svc.Check(ctx)
	if !errors.Is(err, rekey.ErrDemotedTooEarly) || !strings.Contains(err.Error(), `key "k1" is lookup-only but 10 sealed rows`) {
		t.Fatalf("check: %v", err)
	}
	if strings.Join(st.DemotedTooEarly(), ",") != "k1" {
		t.Fatalf("status: %+v", st.Keys())
	}
	if _, err := svc.RunOnce(ctx); !errors.Is(err, keyring.ErrLookupOnly) {
		t.Fatalf("re-encryption under a lookup-only key: %v", err)
	}
}
