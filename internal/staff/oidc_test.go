package staff_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/staff"
	"github.com/steward-privacy/steward/internal/staff/oidctest"
)

const redirectURL = "https://steward.example/console/signin/oidc/callback"

func setupOIDC(t *testing.T) (*fixture, *oidctest.Provider) {
	t.Helper()
	idp := oidctest.New(t, "steward-console", "client-secret-1234", redirectURL)
	f := setup(t, func(c *staff.Config) {
		c.OIDC = &staff.OIDCConfig{Issuer: idp.Issuer, ClientID: "steward-console", ClientSecret: "client-secret-1234", RedirectURL: redirectURL}
	})
	idp.SetClock(f.clk.Now)
	f.secrets = append(f.secrets, "client-secret-1234")
	return f, idp
}

// sso runs the browser's part: start, the provider, back with the code.
func sso(t *testing.T, f *fixture, idp *oidctest.Provider) (state string, back url.Values) {
	t.Helper()
	redirect, state, err := f.svc.OIDCStart(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(redirect)
	q := u.Query()
	if !strings.HasPrefix(redirect, idp.Issuer+"/authorize?") || q.Get("state") != state || q.Get("nonce") == "" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("redirect_uri") != redirectURL {
		t.Fatalf("authorize URL %s", redirect)
	}
	back, err = idp.SignIn(redirect)
	if err != nil || back.Get("code") == "" || back.Get("state") != state {
		t.Fatalf("%v %v", back, err)
	}
	f.secrets = append(f.secrets, state, q.Get("nonce"), back.Get("code"))
	return state, back
}

func TestOIDC(t *testing.T) {
	t.Parallel()
	f, idp := setupOIDC(t)
	ctx := context.Background()
	acc, password := f.create(t, "ann@example.com", "auditor")

	t.Run("a provider sign-in with mfa in amr is a full sign-in", func(t *testing.T) {
		idp.SetUser(oidctest.User{Subject: "u-1", Email: "Ann@Example.com", EmailVerified: true, AMR: []string{"pwd", "mfa"}})
		state, back := sso(t, f, idp)
		s, p, err := f.svc.OIDCCallback(ctx, back.Get("state"), state, back.Get("code"), ip)
		if err != nil || s == nil || p != nil {
			t.Fatalf("%+v %+v %v", s, p, err)
		}
		f.secrets = append(f.secrets, s.Token)
		if s.Principal.AccountID != acc.ID || s.Principal.Method != "oidc" || s.Principal.Role != "auditor" {
			t.Fatalf("%+v", s.Principal)
		}
		t.Run("and its state is used up", func(t *testing.T) {
			if _, _, err := f.svc.OIDCCallback(ctx, state, state, back.Get("code"), ip); !errors.Is(err, staff.ErrPendingExpired) {
				t.Fatalf("%v", err)
			}
		})
	})
	t.Run("hwk counts as a second factor too", func(t *testing.T) {
		idp.SetUser(oidctest.User{Subject: "u-1", Email: "ann@example.com", EmailVerified: true, AMR: []string{"hwk", "user"}})
		state, back := sso(t, f, idp)
		s, _, err := f.svc.OIDCCallback(ctx, state, state, back.Get("code"), ip)
		if err != nil || s == nil {
			t.Fatalf("%v", err)
		}
		f.secrets = append(f.secrets, s.Token)
	})
	t.Run("without a second factor at the provider the account's own is asked for", func(t *testing.T) {
		for _, amr := range [][]string{nil, {"pwd"}} {
			idp.SetUser(oidctest.User{Subject: "u-1", Email: "ann@example.com", EmailVerified: true, AMR: amr})
			state, back := sso(t, f, idp)
			s, p, err := f.svc.OIDCCallback(ctx, state, state, back.Get("code"), ip)
			if err != nil || s != nil || p == nil || !p.NeedsEnrolment {
				t.Fatalf("amr %v: %+v %+v %v", amr, s, p, err)
			}
			f.secrets = append(f.secrets, p.Token)
		}
		// …and is completed like a password sign-in: enrol TOTP here.
		_, secret := f.enrolTOTP(t, acc.Email, password)
		idp.SetUser(oidctest.User{Subject: "u-1", Email: "ann@example.com", EmailVerified: true, AMR: []string{"pwd"}})
		state, back := sso(t, f, idp)
		_, p, err := f.svc.OIDCCallback(ctx, state, state, back.Get("code"), ip)
		if err != nil || p == nil || !p.TOTP {
			t.Fatalf("%+v %v", p, err)
		}
		f.secrets = append(f.secrets, p.Token)
		f.clk.Advance(30 * time.Second)
		s, err := f.svc.SignInTOTP(ctx, p.Token, f.code(t, secret, 0), ip)
		if err != nil {
			t.Fatal(err)
		}
		f.secrets = append(f.secrets, s.Token)
		if es := f.actions(t, "staff.signed_in"); !strings.Contains(es[len(es)-1].details, `"first_factor": "oidc"`) {
			t.Fatalf("%+v", es[len(es)-1])
		}
	})
	t.Run("a state that is not the browser's is refused", func(t *testing.T) {
		idp.SetUser(oidctest.User{Subject: "u-1", Email: "ann@example.com", EmailVerified: true, AMR: []string{"mfa"}})
		state, back := sso(t, f, idp)
		_, other, _ := f.svc.OIDCStart(ctx)
		f.secrets = append(f.secrets, other)
		for _, cookie := range []string{"", other, state + "x"} {
			if _, _, err := f.svc.OIDCCallback(ctx, state, cookie, back.Get("code"), ip); !errors.Is(err, staff.ErrSSO) {
				t.Fatalf("cookie %q: %v", cookie, err)
			}
		}
		// An attacker's own state and code, in the victim's browser whose
		// cookie holds another state, is the same refusal.
		if _, _, err := f.svc.OIDCCallback(ctx, other, state, back.Get("code"), ip); !errors.Is(err, staff.ErrSSO) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("an unknown email is refused like a wrong password", func(t *testing.T) {
		idp.SetUser(oidctest.User{Subject: "u-2", Email: "mallory@example.com", EmailVerified: true, AMR: []string{"mfa"}})
		f.secrets = append(f.secrets, "mallory@example.com")
		state, back := sso(t, f, idp)
		if _, _, err := f.svc.OIDCCallback(ctx, state, state, back.Get("code"), ip); !errors.Is(err, staff.ErrBadCredentials) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("an unverified email is refused", func(t *testing.T) {
		idp.SetUser(oidctest.User{Subject: "u-1", Email: "ann@example.com", EmailVerified: false, AMR: []string{"mfa"}})
		state, back := sso(t, f, idp)
		if _, _, err := f.svc.OIDCCallback(ctx, state, state, back.Get("code"), ip); !errors.Is(err, staff.ErrSSO) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("an ID token with another nonce, audience or an expiry passed is refused", func(t *testing.T) {
		idp.SetUser(oidctest.User{Subject: "u-1", Email: "ann@example.com", EmailVerified: true, AMR: []string{"mfa"}})
		for name, tamper := range map[string]func(map[string]any){
			"nonce":    func(c map[string]any) { c["nonce"] = "someone-elses" },
			"audience": func(c map[string]any) { c["aud"] = "another-client" },
			"expiry":   func(c map[string]any) { c["exp"] = f.clk.Now().Add(-time.Minute).Unix() },
			"issuer":   func(c map[string]any) { c["iss"] = "https://idp.evil.example" },
		} {
			idp.Tamper(tamper)
			state, back := sso(t, f, idp)
			if _, _, err := f.svc.OIDCCallback(ctx, state, state, back.Get("code"), ip); !errors.Is(err, staff.ErrSSO) {
				t.Fatalf("%s: %v", name, err)
			}
		}
		idp.Tamper(nil)
	})
	t.Run("a code is exchanged once", func(t *testing.T) {
		state, back := sso(t, f, idp)
		s, _, err := f.svc.OIDCCallback(ctx, state, state, back.Get("code"), ip)
		if err != nil {
			t.Fatal(err)
		}
		f.secrets = append(f.secrets, s.Token)
		_, state2, _ := f.svc.OIDCStart(ctx)
		f.secrets = append(f.secrets, state2)
		if _, _, err := f.svc.OIDCCallback(ctx, state2, state2, back.Get("code"), ip); !errors.Is(err, staff.ErrSSO) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("a state older than the pending TTL is refused", func(t *testing.T) {
		state, back := sso(t, f, idp)
		f.clk.Advance(6 * time.Minute)
		if _, _, err := f.svc.OIDCCallback(ctx, state, state, back.Get("code"), ip); !errors.Is(err, staff.ErrPendingExpired) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("every refusal is audited with its reason", func(t *testing.T) {
		reasons := map[string]bool{}
		for _, e := range f.actions(t, "staff.signin_failed") {
			for _, r := range []string{"state_mismatch", "unknown_account", "email_unverified", "id_token_refused", "nonce_mismatch", "token_exchange", "state_expired"} {
				if strings.Contains(e.details, `"`+r+`"`) {
					reasons[r] = true
				}
			}
		}
		if len(reasons) != 7 {
			for _, e := range f.actions(t, "staff.signin_failed") {
				t.Log(e.details)
			}
			t.Fatalf("%v", reasons)
		}
	})
}

func TestOIDCNotConfigured(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	if _, _, err := f.svc.OIDCStart(context.Background()); !errors.Is(err, staff.ErrUnavailable) {
		t.Fatalf("%v", err)
	}
	if f.svc.SSO() {
		t.Fatal("SSO() without a provider")
	}
}
