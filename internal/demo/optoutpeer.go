package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/internal/stdwebhook"
)

// OptOutsDescription names the demo's webhook endpoint in Steward, so that
// `steward-demo webhook` finds the one it registered on an earlier run
// (and only that one) when it looks for it again.
const OptOutsDescription = "steward-demo: reference bot broadcast opt-outs"

// optOutStandIn serves OptOutReceiver for the demo's bot schema on a
// fixed loopback address. The endpoint's signing secret is read from a
// file that `steward-demo webhook` writes once Steward is up: the peers
// start before Steward does, so the secret cannot be known at start, and
// reading it per message (re-read when the file changes) also follows a
// re-registration or a rotation without a restart. Until the file exists
// every message is answered 503, which Steward's outbox retries.
type optOutStandIn struct {
	URL  string
	srv  *http.Server
	pool *pgxpool.Pool
	recv OptOutReceiver // Verifier set per message
	file string

	mu     sync.Mutex
	secret string
	v      *stdwebhook.Verifier
}

func startOptOuts(ctx context.Context, addr, databaseURL, schema, secretFile string, log *slog.Logger) (*optOutStandIn, error) {
	if secretFile == "" {
		return nil, usageError{"--optouts needs --optouts-secret-file"}
	}
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("opt-out receiver: connect to the demo database: %w", err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("opt-out receiver: listen on %s: %w", addr, err)
	}
	o := &optOutStandIn{URL: "http://" + l.Addr().String() + "/steward", pool: pool, file: secretFile,
		recv: OptOutReceiver{Pool: pool, Schema: schema, Log: log}}
	mux := http.NewServeMux()
	mux.Handle("/steward", o)
	o.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: mux}
	go func() { _ = o.srv.Serve(l) }()
	return o, nil
}

// verifier returns the verifier for the secret currently in the file.
func (o *optOutStandIn) verifier() (*stdwebhook.Verifier, error) {
	b, err := os.ReadFile(o.file)
	if err != nil {
		return nil, fmt.Errorf("read the endpoint secret: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.v != nil && secret == o.secret {
		return o.v, nil
	}
	v, err := stdwebhook.NewVerifier(secret)
	if err != nil {
		return nil, fmt.Errorf("endpoint secret: %w", err)
	}
	o.secret, o.v = secret, v
	return v, nil
}

func (o *optOutStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v, err := o.verifier()
	if err != nil {
		if o.recv.Log != nil {
			o.recv.Log.WarnContext(r.Context(), "opt-out receiver has no endpoint secret yet", "err", err)
		}
		http.Error(w, "not registered yet", http.StatusServiceUnavailable)
		return
	}
	recv := o.recv
	recv.Verifier = v
	recv.ServeHTTP(w, r)
}

func (o *optOutStandIn) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = o.srv.Shutdown(ctx)
	o.pool.Close()
}

// webhookOptions are `steward-demo webhook`'s inputs.
type webhookOptions struct {
	StewardURL, ReceiverURL, SecretFile string
	AdminKey                            string
	Wait                                time.Duration
	Client                              *http.Client
}

func webhookCmd(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	var o webhookOptions
	fs.StringVar(&o.StewardURL, "steward-url", "", "Steward's base URL, e.g. http://127.0.0.1:8080")
	fs.StringVar(&o.ReceiverURL, "receiver-url", "", "the opt-out receiver's URL (DEMO_OPTOUTS_URL in the peers' ready file)")
	fs.StringVar(&o.SecretFile, "secret-file", "", "file the endpoint's signing secret is written to (mode 0600), read by the receiver")
	fs.DurationVar(&o.Wait, "wait", 60*time.Second, "how long to wait for Steward's /readyz")
	if helped, err := parseFlags(fs, args, stdout); helped || err != nil {
		return err
	}
	if o.StewardURL == "" || o.ReceiverURL == "" || o.SecretFile == "" {
		return usageError{"--steward-url, --receiver-url and --secret-file are required"}
	}
	// From the environment, not a flag: a key on the command line is
	// visible to every user of the machine (ps).
	if o.AdminKey = getenv("STEWARD_DEMO_ADMIN_KEY"); o.AdminKey == "" {
		return usageError{"STEWARD_DEMO_ADMIN_KEY (an admin API key) is not set"}
	}
	created, err := RegisterOptOutsEndpoint(ctx, o)
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintf(stdout, "demo webhook: registered %s for consent.changed; secret in %s\n", o.ReceiverURL, o.SecretFile)
	} else {
		fmt.Fprintf(stdout, "demo webhook: %s is already registered\n", o.ReceiverURL)
	}
	return nil
}

// RegisterOptOutsEndpoint makes sure Steward has exactly one demo endpoint
// (OptOutsDescription) delivering consent.changed with identities to
// o.ReceiverURL, and that o.SecretFile holds its secret. It is idempotent:
// an enabled endpoint for that URL with a secret file already written is
// kept (created is false); otherwise (first run, the receiver's port
// moved, the file was lost, the endpoint was disabled) the demo's old
// endpoints are deleted and a new one is registered, since Steward shows a
// secret only once. It goes through the API, as any subscriber would,
// after waiting up to o.Wait for Steward to be ready.
func RegisterOptOutsEndpoint(ctx context.Context, o webhookOptions) (created bool, err error) {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	base := strings.TrimRight(o.StewardURL, "/")
	if err := waitReady(ctx, o.Client, base+"/readyz", o.Wait); err != nil {
		return false, err
	}
	call := func(method, path string, in, out any) error {
		var body io.Reader
		if in != nil {
			b, err := json.Marshal(in)
			if err != nil {
				return err
			}
			body = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, base+path, body)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+o.AdminKey)
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := o.Client.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		if res.StatusCode/100 != 2 {
			// Steward's error body names no secret; it says what to fix.
			return fmt.Errorf("%s %s: %s: %s", method, path, res.Status, bytes.TrimSpace(b))
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				return fmt.Errorf("%s %s: %w", method, path, err)
			}
		}
		return nil
	}

	var list struct {
		Endpoints []struct {
			ID          string `json:"id"`
			URL         string `json:"url"`
			Description string `json:"description"`
			Enabled     bool   `json:"enabled"`
		} `json:"endpoints"`
	}
	if err := call(http.MethodGet, "/v1/webhooks/endpoints", nil, &list); err != nil {
		return false, fmt.Errorf("list webhook endpoints: %w", err)
	}
	_, statErr := os.Stat(o.SecretFile)
	kept := false
	var stale []string
	for _, ep := range list.Endpoints {
		if ep.Description != OptOutsDescription {
			continue
		}
		if !kept && ep.URL == o.ReceiverURL && ep.Enabled && statErr == nil {
			kept = true // any further demo endpoint is a leftover
			continue
		}
		stale = append(stale, ep.ID)
	}
	for _, id := range stale {
		if err := call(http.MethodDelete, "/v1/webhooks/endpoints/"+id, nil, nil); err != nil {
			return false, fmt.Errorf("delete the demo's old webhook endpoint: %w", err)
		}
	}
	if kept {
		return false, nil
	}
	var ep struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if err := call(http.MethodPost, "/v1/webhooks/endpoints", map[string]any{
		"url": o.ReceiverURL, "description": OptOutsDescription,
		"event_types": []string{"consent.changed"}, "include_identities": true,
	}, &ep); err != nil {
		return false, fmt.Errorf("register the demo's webhook endpoint (is STEWARD_WEBHOOKS_ALLOW_LOOPBACK on?): %w", err)
	}
	if ep.Secret == "" {
		return false, errors.New("register the demo's webhook endpoint: the answer holds no secret")
	}
	if err := writeSecret(o.SecretFile, ep.Secret); err != nil {
		return false, err
	}
	return true, nil
}

// writeSecret writes the secret with mode 0600, atomically, so the
// receiver never reads half of it.
func writeSecret(path, secret string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write the endpoint secret: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".webhook-secret-*")
	if err != nil {
		return fmt.Errorf("write the endpoint secret: %w", err)
	}
	defer os.Remove(f.Name()) //nolint:errcheck // gone after the rename
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.WriteString(secret + "\n")
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write the endpoint secret: %w", err)
	}
	return nil
}

func waitReady(ctx context.Context, c *http.Client, url string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		res, err := c.Do(req)
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("steward at %s is not ready after %s", url, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
