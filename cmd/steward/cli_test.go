package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/internal/db/dbtest"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestCLI(t *testing.T) {
	t.Parallel()
	url, _ := dbtest.New(t)
	env := map[string]string{"DATABASE_URL": url}

	t.Run("version", func(t *testing.T) {
		code, out, _ := runCLI(t, env, "version")
		if code != 0 || !strings.HasPrefix(out, "steward ") {
			t.Fatalf("%d %q", code, out)
		}
	})
	t.Run("migrate status lists applied migrations", func(t *testing.T) {
		code, out, errs := runCLI(t, env, "migrate", "status")
		if code != 0 || !strings.Contains(out, "00001") || !strings.Contains(out, "applied") {
			t.Fatalf("%d %q %q", code, out, errs)
		}
	})
	t.Run("keys create, list and revoke", func(t *testing.T) {
		code, out, errs := runCLI(t, env, "keys", "create", "--name", "web-frontend", "--role", "frontend")
		if code != 0 || !strings.Contains(out, "secret: stw_") || !strings.Contains(out, "shown only now") {
			t.Fatalf("%d %q %q", code, out, errs)
		}
		var id, secret string
		for _, line := range strings.Split(out, "\n") {
			if v, ok := strings.CutPrefix(line, "id:"); ok {
				id = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(line, "secret:"); ok {
				secret = strings.TrimSpace(v)
			}
		}
		_, list, _ := runCLI(t, env, "keys", "list")
		if !strings.Contains(list, id) || !strings.Contains(list, "web-frontend") || strings.Contains(list, secret) {
			t.Fatalf("list: %q", list)
		}
		if code, out, _ := runCLI(t, env, "keys", "revoke", id); code != 0 || !strings.Contains(out, "revoked "+id) {
			t.Fatalf("%d %q", code, out)
		}
		_, list, _ = runCLI(t, env, "keys", "list")
		if strings.Contains(list, id) && !strings.Contains(list, "Z\n") {
			t.Fatalf("revocation time not listed: %q", list)
		}
		if code, _, errs := runCLI(t, env, "keys", "revoke", "key_nope"); code != 1 || !strings.Contains(errs, "no API key") {
			t.Fatalf("%d %q", code, errs)
		}
	})
	t.Run("keys create refuses an unknown role with the list of roles", func(t *testing.T) {
		code, _, errs := runCLI(t, env, "keys", "create", "--name", "x", "--role", "root")
		if code != 2 || !strings.Contains(errs, "frontend") {
			t.Fatalf("%d %q", code, errs)
		}
	})
	t.Run("policy test runs the Rego tests", func(t *testing.T) {
		code, out, errs := runCLI(t, env, "policy", "test", "-v")
		if code != 0 || !strings.Contains(out, "PASS") {
			t.Fatalf("%d %q %q", code, out, errs)
		}
	})
	t.Run("policy test fails on a failing policy", func(t *testing.T) {
		dir := t.TempDir()
		copyPolicies(t, dir)
		writeFile(t, dir+"/extra_test.rego", "package steward.extra_test\n\ntest_fails if { 1 == 2 }\n")
		code, out, _ := runCLI(t, map[string]string{"STEWARD_POLICY_DIR": dir}, "policy", "test")
		if code != 1 || !strings.Contains(out, "FAIL") {
			t.Fatalf("%d %q", code, out)
		}
	})
	t.Run("policy data prints the data document", func(t *testing.T) {
		code, out, _ := runCLI(t, env, "policy", "data")
		if code != 0 || !strings.Contains(out, `"purposes"`) || !strings.Contains(out, `"model_training"`) {
			t.Fatalf("%d %q", code, out)
		}
	})
	t.Run("policy eval answers ad-hoc questions", func(t *testing.T) {
		in := t.TempDir() + "/in.json"
		writeFile(t, in, `{"purpose":"marketing","jurisdiction":"US-CA","gpc":true}`)
		code, out, errs := runCLI(t, env, "policy", "eval", "consent", "--input", in)
		if code != 0 || !strings.Contains(out, `"reason": "gpc_opt_out"`) || !strings.Contains(out, `"policy_revision"`) {
			t.Fatalf("%d %q %q", code, out, errs)
		}
		if code, _, errs := runCLI(t, env, "policy", "eval", "consent; drop", "--input", in); code != 1 || !strings.Contains(errs, "not a decision name") {
			t.Fatalf("%d %q", code, errs)
		}
		writeFile(t, in, `{not json`)
		if code, _, errs := runCLI(t, env, "policy", "eval", "consent", "--input", in); code != 1 || !strings.Contains(errs, "not JSON") {
			t.Fatalf("%d %q", code, errs)
		}
		if code, _, _ := runCLI(t, env, "policy", "eval", "consent"); code != 2 {
			t.Fatalf("missing --input: %d", code)
		}
	})
	t.Run("unknown command is a usage error", func(t *testing.T) {
		if code, _, errs := runCLI(t, env, "frobnicate"); code != 2 || !strings.Contains(errs, "Usage") {
			t.Fatalf("%d %q", code, errs)
		}
	})
	t.Run("serve without secrets refuses to start", func(t *testing.T) {
		code, _, errs := runCLI(t, env, "serve")
		if code != 1 || !strings.Contains(errs, "STEWARD_IDENTITY_KEYS") {
			t.Fatalf("%d %q", code, errs)
		}
	})
	t.Run("migrate down then up again", func(t *testing.T) {
		url2, _ := dbtest.New(t)
		env2 := map[string]string{"DATABASE_URL": url2}
		for _, args := range [][]string{{"migrate", "down"}, {"migrate", "up"}} {
			if code, out, errs := runCLI(t, env2, args...); code != 0 {
				t.Fatalf("%v: %d %q %q", args, code, out, errs)
			}
		}
	})
}
