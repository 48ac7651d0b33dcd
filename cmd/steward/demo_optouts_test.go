package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/demo"
	"github.com/steward-privacy/steward/internal/refapp"
)

// TestDemoWebhookKeepsTheBotsOptOutsInStep wires the demo as scripts/run.sh
// does: `steward-demo peers --optouts` serves the reference bot's receiver,
// `steward-demo webhook` registers it through the API with an admin key
// (idempotently) and hands it the secret through a 0600 file, and a
// broadcast withdrawal recorded through the consent API then reaches the
// bot's tg_broadcast_optouts, a grant removes it. Issue 19: "the reference
// bot's opt-out table is kept in step in the demo"; the bot notice promises
// broadcasts can be refused at any time (GDPR Art. 7(3), Art. 21(3)).
func TestDemoWebhookKeepsTheBotsOptOutsInStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, map[string]string{"STEWARD_WEBHOOKS_ALLOW_LOOPBACK": "true"})
	r := e.start()

	// The application's schemas, as seed leaves them (no people needed
	// but the bot user the opt-out is for).
	for schema, p := range map[string]refapp.Product{"app": refapp.Web, "bot": refapp.Bot} {
		if err := refapp.CreateSchema(ctx, e.pool, schema, p); err != nil {
			t.Fatal(err)
		}
	}
	const tg = int64(700555)
	if _, err := e.pool.Exec(ctx, `INSERT INTO bot.tg_users (tg_id, first_name) VALUES ($1, 'Ann')`, tg); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	secretFile, ready := filepath.Join(dir, "optouts-webhook.secret"), filepath.Join(dir, "peers.ready")
	addrs := freeAddrs(t, 3)
	pctx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	var perr bytes.Buffer
	go func() {
		done <- demo.Run(pctx, []string{"peers", "--database", e.url, "--stripe", addrs[0], "--creem", addrs[1],
			"--optouts", addrs[2], "--optouts-secret-file", secretFile, "--ready-file", ready}, &bytes.Buffer{}, &perr,
			func(string) string { return "" })
	}()
	t.Cleanup(func() {
		stop()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("peers: exit %d\n%s", code, perr.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("peers did not stop")
		}
	})
	var receiverURL string
	for deadline := time.Now().Add(30 * time.Second); receiverURL == ""; {
		if b, err := os.ReadFile(ready); err == nil {
			receiverURL = parseEnvLines(string(b))["DEMO_OPTOUTS_URL"]
		}
		if receiverURL == "" {
			if time.Now().After(deadline) {
				t.Fatalf("peers not ready:\n%s", perr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !strings.HasPrefix(receiverURL, "http://"+addrs[2]+"/") {
		t.Fatalf("DEMO_OPTOUTS_URL=%q, want on %s", receiverURL, addrs[2])
	}

	register := func(key string) (string, string, int) {
		var out, errb bytes.Buffer
		code := demo.Run(ctx, []string{"webhook", "--steward-url", r.base, "--receiver-url", receiverURL,
			"--secret-file", secretFile, "--wait", "10s"}, &out, &errb, func(name string) string {
			if name == "STEWARD_DEMO_ADMIN_KEY" {
				return key
			}
			return ""
		})
		return out.String(), errb.String(), code
	}
	endpoints := func() int {
		t.Helper()
		res := r.do("GET", "/v1/webhooks/endpoints", e.keys["admin"], nil)
		var list struct {
			Endpoints []struct{ Description, URL string }
		}
		res.json(t, &list)
		n := 0
		for _, ep := range list.Endpoints {
			if ep.Description == demo.OptOutsDescription && ep.URL == receiverURL {
				n++
			}
		}
		return n
	}

	t.Run("a key without webhooks.manage cannot register it", func(t *testing.T) {
		if _, errs, code := register(e.keys["reviewer"]); code != 1 || !strings.Contains(errs, "403") {
			t.Fatalf("exit %d\n%s", code, errs)
		}
		if _, err := os.Stat(secretFile); err == nil {
			t.Fatal("a secret file was written")
		}
	})

	t.Run("registered once, the secret in a 0600 file", func(t *testing.T) {
		out, errs, code := register(e.keys["admin"])
		if code != 0 || !strings.Contains(out, "registered") {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
		fi, err := os.Stat(secretFile)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("secret file: %v %v", fi, err)
		}
		b, _ := os.ReadFile(secretFile)
		if !strings.HasPrefix(string(b), "whsec_") || strings.Contains(out+errs, strings.TrimSpace(string(b))) {
			t.Fatal("the secret is not in the file, or was printed")
		}
		out, errs, code = register(e.keys["admin"])
		if code != 0 || !strings.Contains(out, "already registered") {
			t.Fatalf("second run: exit %d\n%s%s", code, out, errs)
		}
		if n := endpoints(); n != 1 {
			t.Fatalf("%d demo endpoints, want 1", n)
		}
	})

	optedOut := func() bool {
		t.Helper()
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM bot.tg_broadcast_optouts WHERE tg_user_id = $1`, tg).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	deliver := func() {
		t.Helper()
		if _, err := r.app.worker.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	record := func(state string) {
		t.Helper()
		r.record(e.keys["frontend"], map[string]any{"subject": "tg:700555", "purpose": "broadcast", "state": state,
			"source": "bot", "notice_version": "1.0", "jurisdiction": "DE"})
	}

	t.Run("a withdrawal through the API reaches the bot's table, a grant removes it", func(t *testing.T) {
		record("withdrawn")
		deliver()
		if !optedOut() {
			t.Fatalf("no opt-out row in bot.tg_broadcast_optouts\n%s", perr.String())
		}
		record("granted")
		deliver()
		if optedOut() {
			t.Fatal("the opt-out row is still there after a grant")
		}
	})

	t.Run("a lost secret file re-registers, replacing the old endpoint", func(t *testing.T) {
		if err := os.Remove(secretFile); err != nil {
			t.Fatal(err)
		}
		if out, errs, code := register(e.keys["admin"]); code != 0 || !strings.Contains(out, "registered") {
			t.Fatalf("exit %d\n%s%s", code, out, errs)
		}
		if n := endpoints(); n != 1 {
			t.Fatalf("%d demo endpoints, want 1", n)
		}
		record("withdrawn")
		deliver()
		if !optedOut() {
			t.Fatal("no opt-out row after re-registration")
		}
	})
}
