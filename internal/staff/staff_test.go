package staff_test

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/staff"
)

const (
	rpID   = "steward.example"
	origin = "https://steward.example"
	ip     = "203.0.113.7"
)

// cheap keeps argon2id fast under -race; the cost is a parameter like any
// other, and TestPasswordRehash changes it.
var cheap = staff.PasswordParams{Memory: 1024, Time: 1, Threads: 1}

type fixture struct {
	svc  *staff.Service
	pool *pgxpool.Pool
	clk  *clock.Fake
	keys *keyring.Keyring
	log  *audit.Log
	// secrets are values no audit entry may contain.
	secrets []string
}

func setup(t *testing.T, mod func(*staff.Config)) *fixture {
	t.Helper()
	_, pool := dbtest.New(t)
	f := &fixture{pool: pool, clk: clock.NewFake(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)), keys: keyring.NewRandom("k1")}
	f.log = audit.New(f.clk, "rev-test")
	cfg := staff.Config{RPID: rpID, RPOrigins: []string{origin}, Password: cheap}
	if mod != nil {
		mod(&cfg)
	}
	f.svc = f.service(t, cfg)
	f.secrets = []string{ip}
	t.Cleanup(func() {
		if !t.Failed() {
			f.assertNoSecrets(t)
		}
	})
	return f
}

func (f *fixture) service(t *testing.T, cfg staff.Config) *staff.Service {
	t.Helper()
	svc, err := staff.New(cfg, staff.Deps{
		Pool: f.pool, Keys: f.keys, Audit: f.log, Clock: f.clk,
		IsRole: func(r string) bool { return r == "admin" || r == "reviewer" || r == "auditor" },
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// create makes an account and remembers its password as a secret.
func (f *fixture) create(t *testing.T, email, role string) (staff.Account, string) {
	t.Helper()
	password := "pw-" + hex.EncodeToString([]byte(email))[:12] + "-long"
	a, err := f.svc.CreateAccount(context.Background(), email, "Test "+role, role, password, "system:test")
	if err != nil {
		t.Fatalf("create %s: %v", email, err)
	}
	f.secrets = append(f.secrets, password, email)
	return a, password
}

// enrolTOTP signs in with the password, enrols TOTP and returns the
// session and the secret (base32).
func (f *fixture) enrolTOTP(t *testing.T, email, password string) (staff.Session, string) {
	t.Helper()
	ctx := context.Background()
	p, err := f.svc.SignInPassword(ctx, email, password, ip)
	if err != nil || !p.NeedsEnrolment {
		t.Fatalf("password step: %+v %v", p, err)
	}
	e, err := f.svc.BeginTOTPEnrolment(ctx, p.Token)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.URL, "otpauth://totp/") || len(e.QRPNG) < 100 || string(e.QRPNG[1:4]) != "PNG" {
		t.Fatalf("enrolment: %q %d bytes", e.URL, len(e.QRPNG))
	}
	s, err := f.svc.FinishTOTPEnrolment(ctx, p.Token, f.code(t, e.Secret, 0), ip)
	if err != nil {
		t.Fatalf("finish enrolment: %v", err)
	}
	f.secrets = append(f.secrets, e.Secret, p.Token, s.Token)
	return s, e.Secret
}

// code is the TOTP code for the fake time plus steps 30-second steps.
func (f *fixture) code(t *testing.T, secret string, steps int) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, f.clk.Now().Add(time.Duration(steps)*30*time.Second),
		totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signIn is password + TOTP for an enrolled account.
func (f *fixture) signIn(t *testing.T, email, password, secret string) staff.Session {
	t.Helper()
	ctx := context.Background()
	p, err := f.svc.SignInPassword(ctx, email, password, ip)
	if err != nil || !p.TOTP || p.NeedsEnrolment {
		t.Fatalf("password step: %+v %v", p, err)
	}
	// A fresh step, so the code is not a replay of the last one.
	f.clk.Advance(30 * time.Second)
	s, err := f.svc.SignInTOTP(ctx, p.Token, f.code(t, secret, 0), ip)
	if err != nil {
		t.Fatalf("totp step: %v", err)
	}
	f.secrets = append(f.secrets, p.Token, s.Token)
	return s
}

type entry struct{ actor, action, targetType, targetID, details string }

// entries reads every audit entry written so far (nothing seals here, so
// they are all pending).
func (f *fixture) entries(t *testing.T) []entry {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `SELECT actor, action, target_type, target_id, details::text FROM audit_pending ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []entry
	for rows.Next() {
		var e entry
		if err := rows.Scan(&e.actor, &e.action, &e.targetType, &e.targetID, &e.details); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func (f *fixture) actions(t *testing.T, action string) []entry {
	t.Helper()
	var out []entry
	for _, e := range f.entries(t) {
		if e.action == action {
			out = append(out, e)
		}
	}
	return out
}

// assertNoSecrets: no password, code, token, TOTP secret, email or IP in
// any audit entry, nor in any staff table in the clear.
func (f *fixture) assertNoSecrets(t *testing.T) {
	t.Helper()
	for _, e := range f.entries(t) {
		all := strings.ToLower(e.actor + " " + e.action + " " + e.targetID + " " + e.details)
		for _, s := range f.secrets {
			if s != "" && strings.Contains(all, strings.ToLower(s)) {
				t.Errorf("audit entry %s %s holds a secret %q: %s", e.action, e.targetID, s, e.details)
			}
		}
	}
	var dump string
	if err := f.pool.QueryRow(context.Background(), `SELECT
		coalesce((SELECT string_agg(t::text, ' ') FROM staff_sessions t), '') ||
		coalesce((SELECT string_agg(t::text, ' ') FROM staff_pending t), '') ||
		coalesce((SELECT string_agg(t::text, ' ') FROM staff_oidc_states t), '') ||
		coalesce((SELECT string_agg(t.password_hash || coalesce(encode(t.totp_ct, 'escape'), ''), ' ') FROM staff_accounts t), '')`).Scan(&dump); err != nil {
		t.Fatal(err)
	}
	for _, s := range f.secrets {
		if s != "" && !strings.Contains(s, "@") && strings.Contains(dump, s) {
			t.Errorf("a staff table holds %q in the clear", s)
		}
	}
}

func TestCreateAccount(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	a, _ := f.create(t, "Ann@Example.com ", "admin")
	if a.Email != "ann@example.com" || a.Role != "admin" || a.ID == "" || a.TOTP || a.Passkeys != 0 {
		t.Fatalf("%+v", a)
	}
	t.Run("refused input names its field", func(t *testing.T) {
		for _, c := range []struct{ email, name, role, password, field string }{
			{"not-an-email", "N", "admin", "long enough password", "email"},
			{"Ben <ben@example.com>", "N", "admin", "long enough password", "email"},
			{"ben@example.com", "", "admin", "long enough password", "name"},
			{"ben@example.com", "N\x00", "admin", "long enough password", "name"},
			{"ben@example.com", "N", "root", "long enough password", "role"},
			{"ben@example.com", "N", "admin", "short", "password"},
			{"benjamin@example.com", "N", "admin", "my benjamin password", "password"},
		} {
			_, err := f.svc.CreateAccount(ctx, c.email, c.name, c.role, c.password, "system:test")
			ae, ok := apperr.As(err)
			if !ok || ae.Code != apperr.Invalid || len(ae.Fields) != 1 || ae.Fields[0].Field != c.field {
				t.Errorf("%+v: %v", c, err)
			}
		}
		_, err := f.svc.CreateAccount(ctx, "ben@example.com", "N", "admin", "short", "system:test")
		if !errors.Is(err, staff.ErrWeakPassword) {
			t.Errorf("weak password: %v", err)
		}
	})
	t.Run("an email is one account, whatever its case", func(t *testing.T) {
		_, err := f.svc.CreateAccount(ctx, "ANN@example.com", "Ann again", "reviewer", "another long password", "system:test")
		if !errors.Is(err, staff.ErrEmailTaken) || apperr.CodeOf(err) != apperr.Conflict {
			t.Fatalf("%v", err)
		}
	})
	t.Run("list and get", func(t *testing.T) {
		f.create(t, "bob@example.com", "auditor")
		list, err := f.svc.Accounts(ctx)
		if err != nil || len(list) != 2 || list[0].Email != "ann@example.com" || list[1].Role != "auditor" {
			t.Fatalf("%+v %v", list, err)
		}
		got, err := f.svc.Get(ctx, a.ID)
		if err != nil || got.ID != a.ID || !got.CreatedAt.Equal(a.CreatedAt) {
			t.Fatalf("%+v %v", got, err)
		}
		for _, id := range []string{"nope", strings.ToUpper(a.ID), "00000000-0000-0000-0000-000000000000"} {
			if _, err := f.svc.Get(ctx, id); !errors.Is(err, staff.ErrNoAccount) || apperr.CodeOf(err) != apperr.NotFound {
				t.Errorf("Get(%q): %v", id, err)
			}
		}
	})
	t.Run("the audit entry names the account and role, not the person", func(t *testing.T) {
		es := f.actions(t, "staff.account_created")
		if len(es) != 2 || es[0].actor != "system:test" || es[0].targetID != a.ID || es[0].details != `{"role": "admin"}` {
			t.Fatalf("%+v", es)
		}
	})
}

func TestPasswordStep(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	a, password := f.create(t, "ann@example.com", "reviewer")
	t.Run("an unknown email, a wrong password and a disabled account look the same", func(t *testing.T) {
		if _, err := f.svc.SignInPassword(ctx, "nobody@example.com", password, ip); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("unknown: %v", err)
		}
		if _, err := f.svc.SignInPassword(ctx, "ann@example.com", password+"x", ip); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("wrong: %v", err)
		}
		f.clk.Advance(time.Minute)
		if err := f.svc.Disable(ctx, a.ID, "system:test"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.SignInPassword(ctx, "ann@example.com", password, ip); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("disabled: %v", err)
		}
		if err := f.svc.Enable(ctx, a.ID, "system:test"); err != nil {
			t.Fatal(err)
		}
		f.secrets = append(f.secrets, "nobody@example.com")
	})
	t.Run("the right password opens a pending sign-in that needs enrolment", func(t *testing.T) {
		p, err := f.svc.SignInPassword(ctx, " ANN@example.com", password, ip)
		if err != nil || !p.NeedsEnrolment || p.TOTP || p.Passkey || !p.Expires.Equal(f.clk.Now().Add(5*time.Minute)) {
			t.Fatalf("%+v %v", p, err)
		}
		f.secrets = append(f.secrets, p.Token)
		got, err := f.svc.Pending(ctx, p.Token)
		if err != nil || got != p {
			t.Fatalf("%+v %v", got, err)
		}
		for _, tok := range []string{"", "stp_nope", p.Token + "x", strings.Replace(p.Token, "stp_", "sts_", 1)} {
			if _, err := f.svc.Pending(ctx, tok); !errors.Is(err, staff.ErrPendingExpired) {
				t.Errorf("Pending(%q): %v", tok, err)
			}
		}
		f.clk.Advance(5 * time.Minute)
		if _, err := f.svc.Pending(ctx, p.Token); !errors.Is(err, staff.ErrPendingExpired) {
			t.Fatalf("after its TTL: %v", err)
		}
		if _, err := f.svc.BeginTOTPEnrolment(ctx, p.Token); !errors.Is(err, staff.ErrPendingExpired) {
			t.Fatalf("enrolment after its TTL: %v", err)
		}
	})
	t.Run("failures are audited with their reason and no secret", func(t *testing.T) {
		reasons := map[string]bool{}
		for _, e := range f.actions(t, "staff.signin_failed") {
			if e.actor != "system:staff" {
				t.Errorf("actor %q", e.actor)
			}
			for _, r := range []string{"unknown_account", "wrong_password", "disabled"} {
				if strings.Contains(e.details, `"reason": "`+r+`"`) {
					reasons[r] = true
				}
			}
			if !strings.Contains(e.details, `"ip_hash": "`+hex.EncodeToString(f.keys.HashIP(ip))+`"`) {
				t.Errorf("no ip hash: %s", e.details)
			}
		}
		if len(reasons) != 3 {
			t.Fatalf("reasons audited: %v", reasons)
		}
		if es := f.actions(t, "staff.signin_started"); len(es) != 1 || es[0].actor != "staff:"+a.ID {
			t.Fatalf("%+v", es)
		}
	})
}

func TestPasswordRehash(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	a, password := f.create(t, "ann@example.com", "admin")
	stored := func() string {
		var h string
		if err := f.pool.QueryRow(ctx, `SELECT password_hash FROM staff_accounts WHERE id = $1`, a.ID).Scan(&h); err != nil {
			t.Fatal(err)
		}
		return h
	}
	if h := stored(); !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("%q", h)
	}
	stronger := f.service(t, staff.Config{Password: staff.PasswordParams{Memory: 2048, Time: 2, Threads: 1}})
	if _, err := stronger.SignInPassword(ctx, a.Email, "wrong password!", ip); !errors.Is(err, staff.ErrBadCredentials) {
		t.Fatal(err)
	}
	if h := stored(); !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("a failed sign-in rehashed: %q", h)
	}
	if _, err := stronger.SignInPassword(ctx, a.Email, password, ip); err != nil {
		t.Fatal(err)
	}
	if h := stored(); !strings.HasPrefix(h, "$argon2id$v=19$m=2048,t=2,p=1$") {
		t.Fatalf("not rehashed with the new parameters: %q", h)
	}
	if _, err := stronger.SignInPassword(ctx, a.Email, password, ip); err != nil {
		t.Fatalf("the rehashed password: %v", err)
	}
}

func TestTOTP(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	a, password := f.create(t, "ann@example.com", "reviewer")
	sess, secret := f.enrolTOTP(t, a.Email, password)
	if sess.Principal.AccountID != a.ID || sess.Principal.Method != "totp" || sess.Principal.Role != "reviewer" ||
		!strings.HasPrefix(sess.Token, "sts_") || !sess.IdleExpires.Equal(f.clk.Now().Add(30*time.Minute)) ||
		!sess.AbsoluteExpires.Equal(f.clk.Now().Add(12*time.Hour)) {
		t.Fatalf("%+v", sess)
	}
	if got, _ := f.svc.Get(ctx, a.ID); !got.TOTP || !got.LastSignIn.Equal(f.clk.Now()) {
		t.Fatalf("%+v", got)
	}
	var kid string
	var ct []byte
	if err := f.pool.QueryRow(ctx, `SELECT totp_kid, totp_ct FROM staff_accounts WHERE id = $1`, a.ID).Scan(&kid, &ct); err != nil || kid != "k1" || len(ct) < 20 {
		t.Fatalf("the secret is not sealed: %q %d %v", kid, len(ct), err)
	}

	t.Run("the enrolment's code cannot be used again", func(t *testing.T) {
		p, err := f.svc.SignInPassword(ctx, a.Email, password, ip)
		if err != nil || !p.TOTP || p.NeedsEnrolment {
			t.Fatalf("%+v %v", p, err)
		}
		if _, err := f.svc.SignInTOTP(ctx, p.Token, f.code(t, secret, 0), ip); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("replayed code: %v", err)
		}
		f.clk.Advance(30 * time.Second)
		s, err := f.svc.SignInTOTP(ctx, p.Token, f.code(t, secret, 0), ip)
		if err != nil {
			t.Fatalf("next step's code: %v", err)
		}
		f.secrets = append(f.secrets, p.Token, s.Token)
		t.Run("and the pending token is useless once used", func(t *testing.T) {
			if _, err := f.svc.SignInTOTP(ctx, p.Token, f.code(t, secret, 1), ip); !errors.Is(err, staff.ErrPendingExpired) {
				t.Fatalf("%v", err)
			}
			if s.Token == sess.Token {
				t.Fatal("the session token was not fresh")
			}
		})
	})
	t.Run("one step of drift either way is accepted, two are not", func(t *testing.T) {
		f.clk.Advance(5 * time.Minute)
		p, _ := f.svc.SignInPassword(ctx, a.Email, password, ip)
		f.secrets = append(f.secrets, p.Token)
		if _, err := f.svc.SignInTOTP(ctx, p.Token, f.code(t, secret, 2), ip); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("two ahead: %v", err)
		}
		f.clk.Advance(time.Minute) // past the backoff-free window
		if _, err := f.svc.SignInTOTP(ctx, p.Token, f.code(t, secret, -1), ip); err != nil {
			t.Fatalf("one behind: %v", err)
		}
	})
	t.Run("a code from before the last accepted one is a replay", func(t *testing.T) {
		f.clk.Advance(10 * time.Minute)
		p, _ := f.svc.SignInPassword(ctx, a.Email, password, ip)
		if _, err := f.svc.SignInTOTP(ctx, p.Token, f.code(t, secret, 1), ip); err != nil {
			t.Fatalf("one ahead: %v", err)
		}
		p, _ = f.svc.SignInPassword(ctx, a.Email, password, ip)
		f.secrets = append(f.secrets, p.Token)
		if _, err := f.svc.SignInTOTP(ctx, p.Token, f.code(t, secret, 0), ip); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("the current step after the next one was used: %v", err)
		}
		es := f.actions(t, "staff.signin_failed")
		if last := es[len(es)-1]; !strings.Contains(last.details, `"reason": "replayed_code"`) {
			t.Fatalf("%+v", last)
		}
	})
	t.Run("enrolment is refused once a factor exists", func(t *testing.T) {
		p, _ := f.svc.SignInPassword(ctx, a.Email, password, ip)
		f.secrets = append(f.secrets, p.Token)
		if _, err := f.svc.BeginTOTPEnrolment(ctx, p.Token); !errors.Is(err, staff.ErrWrongStep) {
			t.Fatalf("%v", err)
		}
		if _, err := f.svc.BeginPasskeyEnrolment(ctx, p.Token); !errors.Is(err, staff.ErrWrongStep) {
			t.Fatalf("%v", err)
		}
	})
	if es := f.actions(t, "staff.totp_enrolled"); len(es) != 1 || es[0].actor != "staff:"+a.ID {
		t.Fatalf("%+v", es)
	}
}

func TestTOTPEnrolmentCode(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	a, password := f.create(t, "ann@example.com", "admin")
	p, _ := f.svc.SignInPassword(ctx, a.Email, password, ip)
	f.secrets = append(f.secrets, p.Token)
	if _, err := f.svc.FinishTOTPEnrolment(ctx, p.Token, "123456", ip); !errors.Is(err, staff.ErrWrongStep) {
		t.Fatalf("finish before begin: %v", err)
	}
	if _, err := f.svc.SignInTOTP(ctx, p.Token, "123456", ip); !errors.Is(err, staff.ErrWrongStep) {
		t.Fatalf("a code for an account without TOTP: %v", err)
	}
	e1, _ := f.svc.BeginTOTPEnrolment(ctx, p.Token)
	e2, err := f.svc.BeginTOTPEnrolment(ctx, p.Token)
	if err != nil || e1.Secret == e2.Secret {
		t.Fatalf("a second begin must replace the secret: %v", err)
	}
	f.secrets = append(f.secrets, e1.Secret, e2.Secret)
	// Wrong codes at enrolment are refused without locking anyone out.
	for range 6 {
		if _, err := f.svc.FinishTOTPEnrolment(ctx, p.Token, f.code(t, e1.Secret, 0), ip); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("the replaced secret's code: %v", err)
		}
	}
	s, err := f.svc.FinishTOTPEnrolment(ctx, p.Token, f.code(t, e2.Secret, 0), ip)
	if err != nil {
		t.Fatalf("%v", err)
	}
	f.secrets = append(f.secrets, s.Token)
}

func TestLockout(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	a, password := f.create(t, "ann@example.com", "reviewer")
	_, secret := f.enrolTOTP(t, a.Email, password)
	f.clk.Advance(time.Minute)
	p, err := f.svc.SignInPassword(ctx, a.Email, password, ip)
	if err != nil {
		t.Fatal(err)
	}
	f.secrets = append(f.secrets, p.Token)
	wrong := func() string {
		c := f.code(t, secret, 0)
		return string("0123456789"[(c[0]-'0'+1)%10]) + c[1:]
	}
	t.Run("consecutive failures back off", func(t *testing.T) {
		for range 2 {
			if _, err := f.svc.SignInTOTP(ctx, p.Token, wrong(), ip); !errors.Is(err, staff.ErrBadCredentials) {
				t.Fatal(err)
			}
		}
		_, err := f.svc.SignInTOTP(ctx, p.Token, f.code(t, secret, 0), ip)
		var le *staff.LockedError
		if !errors.As(err, &le) || !le.Backoff || !le.Until.Equal(f.clk.Now().Add(time.Second)) {
			t.Fatalf("third attempt at once: %v", err)
		}
	})
	t.Run("the fifth failure locks the account", func(t *testing.T) {
		for i := 3; i <= 5; i++ {
			f.clk.Advance(time.Minute)
			_, err := f.svc.SignInTOTP(ctx, p.Token, wrong(), ip)
			var le *staff.LockedError
			if i < 5 && !errors.Is(err, staff.ErrBadCredentials) {
				t.Fatalf("failure %d: %v", i, err)
			}
			if i == 5 && (!errors.As(err, &le) || le.Backoff || !le.Until.Equal(f.clk.Now().Add(15*time.Minute))) {
				t.Fatalf("failure 5: %v", err)
			}
		}
		if got, _ := f.svc.Get(ctx, a.ID); !got.LockedUntil.Equal(f.clk.Now().Add(15 * time.Minute)) {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("a locked account is refused even with the right code and password", func(t *testing.T) {
		f.clk.Advance(time.Minute)
		var le *staff.LockedError
		if _, err := f.svc.SignInTOTP(ctx, p.Token, f.code(t, secret, 0), ip); !errors.As(err, &le) {
			t.Fatalf("right code: %v", err)
		}
		if _, err := f.svc.SignInPassword(ctx, a.Email, password, ip); !errors.As(err, &le) || le.Backoff {
			t.Fatalf("right password: %v", err)
		}
	})
	t.Run("it unlocks after LockFor, with the count started over", func(t *testing.T) {
		f.clk.Advance(14 * time.Minute)
		p, err := f.svc.SignInPassword(ctx, a.Email, password, ip)
		if err != nil {
			t.Fatalf("%v", err)
		}
		f.secrets = append(f.secrets, p.Token)
		// One failure after the lock is failure 1, not 6.
		if _, err := f.svc.SignInTOTP(ctx, p.Token, wrong(), ip); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("%v", err)
		}
		s, err := f.svc.SignInTOTP(ctx, p.Token, f.code(t, secret, 0), ip)
		if err != nil {
			t.Fatalf("%v", err)
		}
		f.secrets = append(f.secrets, s.Token)
		if got, _ := f.svc.Get(ctx, a.ID); !got.LockedUntil.IsZero() {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("a wrong password counts too, and an admin can unlock", func(t *testing.T) {
		for i := 1; i <= 5; i++ {
			f.clk.Advance(time.Minute)
			_, err := f.svc.SignInPassword(ctx, a.Email, "not the password", ip)
			if i == 5 {
				var le *staff.LockedError
				if !errors.As(err, &le) {
					t.Fatalf("failure 5: %v", err)
				}
			}
		}
		if err := f.svc.Unlock(ctx, a.ID, "system:test"); err != nil {
			t.Fatal(err)
		}
		p, err := f.svc.SignInPassword(ctx, a.Email, password, ip)
		if err != nil {
			t.Fatalf("after unlock: %v", err)
		}
		f.secrets = append(f.secrets, p.Token)
	})
	t.Run("the audit log has the locks and every failure", func(t *testing.T) {
		if es := f.actions(t, "staff.locked"); len(es) != 2 || es[0].actor != "system:staff" || es[0].targetID != a.ID {
			t.Fatalf("%+v", es)
		}
		if es := f.actions(t, "staff.unlocked"); len(es) != 1 {
			t.Fatalf("%+v", es)
		}
		n := 0
		for _, e := range f.actions(t, "staff.signin_failed") {
			if strings.Contains(e.details, `"reason": "locked"`) || strings.Contains(e.details, `"reason": "backoff"`) {
				n++
			}
		}
		if n != 3 {
			t.Fatalf("refusals audited: %d", n)
		}
	})
}

func TestSessions(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	a, password := f.create(t, "ann@example.com", "auditor")
	s, secret := f.enrolTOTP(t, a.Email, password)

	t.Run("a session authenticates and lists without its token or address", func(t *testing.T) {
		p, err := f.svc.Authenticate(ctx, s.Token)
		if err != nil || p != s.Principal || p.Actor() != "staff:"+a.ID {
			t.Fatalf("%+v %v", p, err)
		}
		list, err := f.svc.Sessions(ctx, a.ID)
		if err != nil || len(list) != 1 || list[0].ID != p.SessionID || list[0].Method != "totp" ||
			hex.EncodeToString(list[0].IPHash) != hex.EncodeToString(f.keys.HashIP(ip)) {
			t.Fatalf("%+v %v", list, err)
		}
		for _, tok := range []string{"", "sts_x", s.Token + "A", "stp_" + s.Token[4:]} {
			if _, err := f.svc.Authenticate(ctx, tok); !errors.Is(err, staff.ErrNoSession) {
				t.Errorf("Authenticate(%q): %v", tok, err)
			}
		}
	})
	t.Run("idle past the limit signs out", func(t *testing.T) {
		s := f.signIn(t, a.Email, password, secret)
		for range 3 {
			f.clk.Advance(29 * time.Minute)
			if _, err := f.svc.Authenticate(ctx, s.Token); err != nil {
				t.Fatalf("active session: %v", err)
			}
		}
		f.clk.Advance(30 * time.Minute)
		if _, err := f.svc.Authenticate(ctx, s.Token); !errors.Is(err, staff.ErrNoSession) {
			t.Fatalf("idle 30 min: %v", err)
		}
		f.clk.Advance(-30 * time.Minute)
		if _, err := f.svc.Authenticate(ctx, s.Token); !errors.Is(err, staff.ErrNoSession) {
			t.Fatalf("an expired session is gone for good: %v", err)
		}
	})
	t.Run("idle is exact to the stored last activity despite the throttle", func(t *testing.T) {
		s := f.signIn(t, a.Email, password, secret)
		f.clk.Advance(59 * time.Second) // within TouchEvery: not written
		if _, err := f.svc.Authenticate(ctx, s.Token); err != nil {
			t.Fatal(err)
		}
		f.clk.Advance(30*time.Minute - 59*time.Second - time.Microsecond)
		if _, err := f.svc.Authenticate(ctx, s.Token); err != nil {
			t.Fatalf("a microsecond before the limit: %v", err)
		}
		f.clk.Advance(30*time.Minute + time.Microsecond)
		if _, err := f.svc.Authenticate(ctx, s.Token); !errors.Is(err, staff.ErrNoSession) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("the absolute limit ends even an active session", func(t *testing.T) {
		s := f.signIn(t, a.Email, password, secret)
		for i := 0; i < 12*3-1; i++ {
			f.clk.Advance(20 * time.Minute)
			if _, err := f.svc.Authenticate(ctx, s.Token); err != nil {
				t.Fatalf("after %d min: %v", (i+1)*20, err)
			}
		}
		f.clk.Advance(20 * time.Minute)
		if _, err := f.svc.Authenticate(ctx, s.Token); !errors.Is(err, staff.ErrNoSession) {
			t.Fatalf("after 12 h: %v", err)
		}
		found := map[string]bool{}
		for _, e := range f.actions(t, "staff.session_expired") {
			for _, r := range []string{"idle_timeout", "absolute_timeout"} {
				if strings.Contains(e.details, r) {
					found[r] = true
				}
			}
		}
		if len(found) != 2 {
			t.Fatalf("%v", found)
		}
	})
	t.Run("sign out and revoke end sessions at once", func(t *testing.T) {
		s1 := f.signIn(t, a.Email, password, secret)
		s2 := f.signIn(t, a.Email, password, secret)
		if err := f.svc.SignOut(ctx, s1.Token); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.SignOut(ctx, s1.Token); err != nil {
			t.Fatalf("signing out twice: %v", err)
		}
		if _, err := f.svc.Authenticate(ctx, s1.Token); !errors.Is(err, staff.ErrNoSession) {
			t.Fatalf("%v", err)
		}
		if err := f.svc.RevokeSession(ctx, s2.Principal.SessionID, "staff:"+a.ID); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.RevokeSession(ctx, s2.Principal.SessionID, "staff:"+a.ID); !errors.Is(err, staff.ErrNoSession) {
			t.Fatalf("%v", err)
		}
		if _, err := f.svc.Authenticate(ctx, s2.Token); !errors.Is(err, staff.ErrNoSession) {
			t.Fatalf("%v", err)
		}
		if len(f.actions(t, "staff.signed_out")) != 1 || len(f.actions(t, "staff.session_revoked")) != 1 {
			t.Fatal("sign-out and revocation not audited once each")
		}
	})
	t.Run("role changes apply at once; disabling and resetting MFA end sessions", func(t *testing.T) {
		s := f.signIn(t, a.Email, password, secret)
		if err := f.svc.SetRole(ctx, a.ID, "reviewer", "system:test"); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.SetRole(ctx, a.ID, "root", "system:test"); apperr.CodeOf(err) != apperr.Invalid {
			t.Fatalf("%v", err)
		}
		if p, _ := f.svc.Authenticate(ctx, s.Token); p.Role != "reviewer" {
			t.Fatalf("%+v", p)
		}
		if err := f.svc.Disable(ctx, a.ID, "system:test"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authenticate(ctx, s.Token); !errors.Is(err, staff.ErrNoSession) {
			t.Fatalf("%v", err)
		}
		if err := f.svc.Enable(ctx, a.ID, "system:test"); err != nil {
			t.Fatal(err)
		}
		s = f.signIn(t, a.Email, password, secret)
		if err := f.svc.ResetMFA(ctx, a.ID, "system:test"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Authenticate(ctx, s.Token); !errors.Is(err, staff.ErrNoSession) {
			t.Fatalf("%v", err)
		}
		p, err := f.svc.SignInPassword(ctx, a.Email, password, ip)
		if err != nil || !p.NeedsEnrolment {
			t.Fatalf("after an MFA reset: %+v %v", p, err)
		}
		f.secrets = append(f.secrets, p.Token)
	})
	t.Run("a new password signs out everywhere", func(t *testing.T) {
		_, secret := f.enrolTOTP(t, a.Email, password)
		s := f.signIn(t, a.Email, password, secret)
		if err := f.svc.SetPassword(ctx, a.ID, "short", "system:test"); !errors.Is(err, staff.ErrWeakPassword) {
			t.Fatalf("%v", err)
		}
		if err := f.svc.SetPassword(ctx, a.ID, "a brand new passphrase", "staff:"+a.ID); err != nil {
			t.Fatal(err)
		}
		f.secrets = append(f.secrets, "a brand new passphrase")
		if _, err := f.svc.Authenticate(ctx, s.Token); !errors.Is(err, staff.ErrNoSession) {
			t.Fatalf("%v", err)
		}
		if _, err := f.svc.SignInPassword(ctx, a.Email, password, ip); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("old password: %v", err)
		}
		f.clk.Advance(time.Minute)
		if _, err := f.svc.SignInPassword(ctx, a.Email, "a brand new passphrase", ip); err != nil {
			t.Fatalf("new password: %v", err)
		}
	})
}

func TestPurgeExpired(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	a, password := f.create(t, "ann@example.com", "auditor")
	s, _ := f.enrolTOTP(t, a.Email, password)
	p, _ := f.svc.SignInPassword(ctx, a.Email, password, ip)
	f.secrets = append(f.secrets, p.Token)
	if n, err := f.svc.PurgeExpired(ctx); err != nil || n != 0 {
		t.Fatalf("nothing expired yet: %d %v", n, err)
	}
	f.clk.Advance(31 * time.Minute)
	if n, err := f.svc.PurgeExpired(ctx); err != nil || n != 2 {
		t.Fatalf("a session and a pending sign-in: %d %v", n, err)
	}
	if _, err := f.svc.Authenticate(ctx, s.Token); !errors.Is(err, staff.ErrNoSession) {
		t.Fatal(err)
	}
	if es := f.actions(t, "staff.session_expired"); len(es) != 1 || !strings.Contains(es[0].details, "idle_timeout") {
		t.Fatalf("%+v", es)
	}
}

func TestDenied(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := context.Background()
	a, _ := f.create(t, "ann@example.com", "auditor")
	p := staff.Principal{AccountID: a.ID, Role: "auditor", SessionID: "0f8fad5b-d9cb-469f-a165-70867728950e"}
	if err := f.svc.Denied(ctx, p, "requests.approve", "forbidden", ip); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Denied(ctx, staff.Principal{}, "requests.approve", "csrf token from ann@example.com", ip); err != nil {
		t.Fatal(err)
	}
	es := f.actions(t, "staff.denied")
	if len(es) != 2 || es[0].actor != "staff:"+a.ID || es[0].targetID != "requests.approve" || !strings.Contains(es[0].details, `"reason": "forbidden"`) ||
		es[1].actor != "system:staff" || !strings.Contains(es[1].details, `"reason": "other"`) {
		t.Fatalf("%+v", es)
	}
}
