package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/keyring"
)

func TestStaffCLI(t *testing.T) {
	t.Parallel()
	url, pool := dbtest.New(t)
	keys := "k1:" + strings.Repeat("A", 43) + "="
	if _, err := keyring.Parse(keys); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": url, "STEWARD_IDENTITY_KEYS": keys, "STEWARD_STAFF_PASSWORD": "correct horse battery staple"}
	var id string

	t.Run("create reads the password from the environment, never a flag", func(t *testing.T) {
		code, out, errs := runCLI(t, env, "staff", "create", "--email", "Admin@Example.com", "--name", "First Admin", "--role", "admin")
		if code != 0 || !strings.Contains(out, "email: admin@example.com") || !strings.Contains(out, "role:  admin") || strings.Contains(out, "battery") {
			t.Fatalf("%d %q %q", code, out, errs)
		}
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "id:"); ok {
				id = strings.TrimSpace(v)
			}
		}
		if code, _, errs := runCLI(t, env, "staff", "create", "--email", "b@example.com", "--name", "B", "--role", "admin", "hunter2hunter2"); code != 2 || !strings.Contains(errs, "never from the command line") {
			t.Fatalf("%d %q", code, errs)
		}
	})
	t.Run("create reads standard input when the variable is unset", func(t *testing.T) {
		staffStdin = strings.NewReader("staple battery horse correct\n")
		defer func() { staffStdin = os.Stdin }()
		noPw := map[string]string{"DATABASE_URL": url, "STEWARD_IDENTITY_KEYS": keys}
		if code, out, errs := runCLI(t, noPw, "staff", "create", "--email", "rev@example.com", "--name", "Rev", "--role", "reviewer"); code != 0 {
			t.Fatalf("%d %q %q", code, out, errs)
		}
	})
	t.Run("refusals say why", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			env  map[string]string
			code int
			want string
		}{
			{[]string{"--email", "x@example.com", "--name", "X", "--role", "root"}, env, 2, "auditor"},
			{[]string{"--email", "x@example.com", "--name", "X", "--role", "admin"}, map[string]string{"DATABASE_URL": url, "STEWARD_IDENTITY_KEYS": keys, "STEWARD_STAFF_PASSWORD": "short"}, 2, "at least 12"},
			{[]string{"--email", "admin@example.com", "--name", "X", "--role", "admin"}, env, 1, "exists"},
			{[]string{"--name", "X", "--role", "admin"}, env, 2, "--email"},
		} {
			code, _, errs := runCLI(t, c.env, append([]string{"staff", "create"}, c.args...)...)
			if code != c.code || !strings.Contains(errs, c.want) {
				t.Errorf("%v: %d %q", c.args, code, errs)
			}
		}
	})
	t.Run("create --if-missing is idempotent", func(t *testing.T) {
		code, out, errs := runCLI(t, env, "staff", "create", "--email", "admin@example.com", "--name", "X", "--role", "admin", "--if-missing")
		if code != 0 || !strings.Contains(out, "exists: "+id) {
			t.Fatalf("%d %q %q", code, out, errs)
		}
	})
	t.Run("list, lock, unlock, disable, reset", func(t *testing.T) {
		code, out, _ := runCLI(t, env, "staff", "list")
		if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "none yet") || !strings.Contains(out, "rev@example.com") {
			t.Fatalf("%d %q", code, out)
		}
		if _, err := pool.Exec(context.Background(), `UPDATE staff_accounts SET locked_until = now() + interval '10 minutes' WHERE id = $1`, id); err != nil {
			t.Fatal(err)
		}
		if _, out, _ := runCLI(t, env, "staff", "list"); !strings.Contains(out, "locked until") {
			t.Fatalf("%q", out)
		}
		for _, cmd := range []string{"unlock", "disable", "reset-mfa", "enable"} {
			if code, out, errs := runCLI(t, env, "staff", cmd, id); code != 0 || !strings.Contains(out, id) {
				t.Fatalf("%s: %d %q %q", cmd, code, out, errs)
			}
		}
		if _, out, _ := runCLI(t, env, "staff", "list"); strings.Contains(out, "locked until") || strings.Contains(out, "disabled") {
			t.Fatalf("%q", out)
		}
		if code, _, errs := runCLI(t, env, "staff", "disable", "not-an-id"); code != 1 || !strings.Contains(errs, "no staff account") {
			t.Fatalf("%d %q", code, errs)
		}
		if code, _, _ := runCLI(t, env, "staff", "frobnicate"); code != 2 {
			t.Fatalf("%d", code)
		}
	})
	t.Run("every change is audited as the CLI, without the password", func(t *testing.T) {
		rows, err := pool.Query(context.Background(), `SELECT actor, action, details::text FROM audit_log WHERE action LIKE 'staff.%'
			UNION ALL SELECT actor, action, details::text FROM audit_pending WHERE action LIKE 'staff.%'`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		actions := map[string]bool{}
		for rows.Next() {
			var actor, action, details string
			if err := rows.Scan(&actor, &action, &details); err != nil {
				t.Fatal(err)
			}
			if actor != "system:cli" || strings.Contains(details, "battery") || strings.Contains(details, "@") {
				t.Errorf("%s %s %s", actor, action, details)
			}
			actions[action] = true
		}
		for _, a := range []string{"staff.account_created", "staff.unlocked", "staff.account_disabled", "staff.mfa_reset", "staff.account_enabled"} {
			if !actions[a] {
				t.Errorf("no %s entry: %v", a, actions)
			}
		}
	})
}

func TestStaffConfig(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		cfg          config.Config
		rpID, origin string
	}{
		{config.Config{Addr: "127.0.0.1:8080"}, "localhost", "http://localhost:8080"},
		{config.Config{Addr: ":9090"}, "localhost", "http://localhost:9090"},
		{config.Config{Addr: "10.0.0.5:8080"}, "", "http://10.0.0.5:8080"},
		{config.Config{Addr: "127.0.0.1:8080", PublicURL: "https://privacy.example.com"}, "privacy.example.com", "https://privacy.example.com"},
		{config.Config{Addr: "127.0.0.1:8080", PublicURL: "https://privacy.example.com", StaffURL: "https://staff.example.com:8443/console/"}, "staff.example.com", "https://staff.example.com:8443"},
	} {
		sc := staffConfig(c.cfg)
		if sc.RPID != c.rpID || len(sc.RPOrigins) != 1 || sc.RPOrigins[0] != c.origin {
			t.Errorf("%+v: %q %v", c.cfg, sc.RPID, sc.RPOrigins)
		}
	}
}

// TestStaffConfigOIDC: STEWARD_STAFF_OIDC_* reach the staff service, the
// redirect URL defaulting to the console's callback; the secret never
// shows in the configuration's log form.
func TestStaffConfigOIDC(t *testing.T) {
	t.Parallel()
	vars := map[string]string{
		"STEWARD_PUBLIC_URL": "https://privacy.example.com", "STEWARD_STAFF_OIDC_ISSUER": "https://idp.example.com/",
		"STEWARD_STAFF_OIDC_CLIENT_ID": "steward", "STEWARD_STAFF_OIDC_CLIENT_SECRET": "s3cret-value",
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	if err != nil {
		t.Fatal(err)
	}
	o := staffConfig(cfg).OIDC
	if o == nil || o.Issuer != "https://idp.example.com" || o.ClientID != "steward" || o.ClientSecret != "s3cret-value" ||
		o.RedirectURL != "https://privacy.example.com/console/signin/oidc/callback" {
		t.Fatalf("%+v", o)
	}
	if s := fmt.Sprint(*cfg.StaffOIDC) + fmt.Sprintf("%v", cfg.StaffOIDC.LogValue()); strings.Contains(s, "s3cret-value") {
		t.Fatalf("secret shown: %s", s)
	}
	vars["STEWARD_STAFF_OIDC_REDIRECT_URL"] = "https://staff.example.com/cb"
	if cfg, err = config.Load(func(k string) string { return vars[k] }); err != nil || staffConfig(cfg).OIDC.RedirectURL != "https://staff.example.com/cb" {
		t.Fatalf("explicit redirect: %v", err)
	}
	delete(vars, "STEWARD_STAFF_OIDC_ISSUER")
	if _, err := config.Load(func(k string) string { return vars[k] }); err == nil {
		t.Fatal("client id without an issuer accepted")
	}
	if staffConfig(config.Config{Addr: ":8080"}).OIDC != nil {
		t.Fatal("single sign-on on without configuration")
	}
}
