// Command steward is the Steward privacy control plane: the HTTP service and
// its operator commands (migrations, API keys, policy tests).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/steward-privacy/steward/internal/apikey"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/db"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/logbuf"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/internal/rekey"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `steward — privacy and data-governance control plane

Usage:
  steward serve                               run the HTTP API (migrates first)
  steward migrate up|down|status              manage the database schema
  steward keys create --name N --role R [--expires 720h] [--quiet]
  steward keys list
  steward keys revoke KEY_ID
  steward keys status [--json]                per identity key: removable, demotable to lookup-only, or still needed
  steward keys reencrypt [--batch N]          move every stored identity to the active identity key
  steward audit verify [--from CHECKPOINT.json]
                                              recompute the audit chain and check checkpoint signatures
  steward policy test [-v]                    run the Rego unit tests
  steward policy explain --request T --regime R  what a request does to every field of the data map, and why
  steward policy eval DECISION --input F.json ask a policy an ad-hoc question
  steward policy data                         print the policy data document (JSON)
  steward datamap scan --postgres DSN [--schema public] [--system app_db] [--name N] [--out FILE]
                                              draft a data map from a live database, for review
  steward retention plan [--dataset S.D] [--json]
                                              per retention rule: records due now, held, and what a run does
  steward retention run --dry-run[=false] [--dataset S.D] [--json]
                                              sweep now, in this process (a server sweeps on STEWARD_RETENTION_SCHEDULE)
  steward retention runs [--limit N] [--json] the latest runs
  steward holds list [--all] [--json]
  steward holds create (--subject ID | --dataset S.D | --category C) --reason R [--expires RFC3339]
  steward holds lift HOLD_ID --reason R       legal holds: held data is never swept
  steward staff create --email E --name N --role R [--if-missing]
                                              a console account; the password from STEWARD_STAFF_PASSWORD or stdin
  steward staff list
  steward staff disable|enable|reset-mfa|unlock ACCOUNT_ID
  steward version

Configuration is read from the environment; see docs/configuration.md.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run is main without the process: tests call it with their own args and env.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintln(stderr, "steward: config:", err)
		return 2
	}
	cmd, rest := args[0], args[1:]
	logOut := io.Writer(stderr)
	if cmd == "serve" {
		bw := logbuf.New(stderr, 200*time.Millisecond)
		defer bw.Close()
		logOut = bw
	}
	log := newLogger(logOut, cfg.LogLevel)
	switch cmd {
	case "serve":
		err = serve(ctx, cfg, log)
	case "migrate":
		err = migrate(ctx, cfg, rest, stdout, log)
	case "keys":
		err = keys(ctx, cfg, rest, stdout)
	case "policy":
		err = policyCmd(ctx, cfg, rest, stdout)
	case "audit":
		err = auditCmd(ctx, cfg, rest, stdout)
	case "datamap":
		err = datamapCmd(ctx, rest, stdout)
	case "retention":
		err = retentionCmd(ctx, cfg, rest, stdout, log)
	case "holds":
		err = holdsCmd(ctx, cfg, rest, stdout, log)
	case "staff":
		err = staffCmd(ctx, cfg, rest, stdout, getenv)
	case "version":
		fmt.Fprintln(stdout, versionString())
	default:
		fmt.Fprintf(stderr, "steward: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "steward %s: %v\n\n%s", cmd, err, usage)
			return 2
		}
		fmt.Fprintf(stderr, "steward %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	return fmt.Sprintf("steward %s (%s)", v, runtime.Version())
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	a, err := build(ctx, cfg, log, clock.Real{}, needServer)
	if err != nil {
		return err
	}
	a.start(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.http.Listen(cfg.Addr) }()
	log.Info("steward listening", "addr", cfg.Addr, "version", versionString(), "policy_revision", a.policies.Current().Revision())
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
wait:
	for {
		select {
		case err := <-errc:
			_ = a.shutdown(cfg.ShutdownTimeout)
			return fmt.Errorf("listen %s: %w", cfg.Addr, err)
		case <-hup:
			log.Info("SIGHUP: reloading policy", "source", a.policies.Source())
			_, _ = a.policies.Reload(ctx)
		case <-ctx.Done():
			break wait
		}
	}
	log.Info("shutting down: finishing in-flight requests", "timeout", cfg.ShutdownTimeout.String())
	if err := a.shutdown(cfg.ShutdownTimeout); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

func migrate(ctx context.Context, cfg config.Config, args []string, stdout io.Writer, log *slog.Logger) error {
	if len(args) != 1 {
		return usageError{"want one of up, down, status"}
	}
	if err := cfg.RequireDatabase(); err != nil {
		return err
	}
	switch args[0] {
	case "up":
		n, err := db.MigrateUp(ctx, cfg.SessionURL(), log)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "applied %d migration(s)\n", n)
		return nil
	case "down":
		return db.MigrateDown(ctx, cfg.SessionURL(), log)
	case "status":
		return db.MigrateStatus(ctx, cfg.SessionURL(), stdout)
	}
	return usageError{fmt.Sprintf("unknown migrate command %q", args[0])}
}

func keys(ctx context.Context, cfg config.Config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"want create, list, revoke, status or reencrypt"}
	}
	a, err := build(ctx, cfg, slog.New(slog.DiscardHandler), clock.Real{}, needStore)
	if err != nil {
		return err
	}
	defer a.close() // also seals the entry the change wrote
	engine, store := a.policies.Current(), a.keys
	switch args[0] {
	case "create":
		fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		name := fs.String("name", "", "key name, e.g. web-frontend")
		role := fs.String("role", "", "sdk, frontend, reviewer, admin or auditor")
		quiet := fs.Bool("quiet", false, "print only the secret")
		expires := fs.Duration("expires", 0, "expire the key after this long (e.g. 720h); never when 0")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{err.Error()}
		}
		in := apikey.CreateInput{Name: *name, Role: *role}
		if *expires < 0 {
			return usageError{"--expires must be positive"}
		} else if *expires > 0 {
			at := time.Now().Add(*expires)
			in.ExpiresAt = &at
		}
		roles := map[string]bool{}
		for r := range engine.Roles {
			roles[r] = true
		}
		k, secret, err := store.Create(ctx, in, roles, "system:cli")
		if err != nil {
			if ae, ok := apperr.As(err); ok {
				names := make([]string, 0, len(roles))
				for r := range roles {
					names = append(names, r)
				}
				sort.Strings(names)
				return usageError{fmt.Sprintf("%s (roles: %v)", ae.Message, names)}
			}
			return err
		}
		if *quiet {
			fmt.Fprintln(stdout, secret)
			return nil
		}
		fmt.Fprintf(stdout, "id:     %s\nname:   %s\nrole:   %s\n", k.ID, k.Name, k.Role)
		if k.ExpiresAt != nil {
			fmt.Fprintf(stdout, "expires: %s\n", k.ExpiresAt.UTC().Format(time.RFC3339))
		}
		fmt.Fprintf(stdout, "secret: %s\n\nThe secret is shown only now; Steward stores only its hash.\n", secret)
		return nil
	case "list":
		ks, err := store.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tPREFIX\tCREATED\tLAST USED\tEXPIRES\tREVOKED")
		at := func(t *time.Time) string {
			if t == nil {
				return "-"
			}
			return t.UTC().Format(time.RFC3339)
		}
		for _, k := range ks {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s…\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Role, k.Prefix, k.CreatedAt.UTC().Format(time.RFC3339), at(k.LastUsedAt), at(k.ExpiresAt), at(k.RevokedAt))
		}
		return tw.Flush()
	case "revoke":
		if len(args) != 2 {
			return usageError{"want: keys revoke KEY_ID"}
		}
		k, err := store.Revoke(ctx, args[1], "system:cli")
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s (%s) at %s\n", k.ID, k.Name, k.RevokedAt.UTC().Format(time.RFC3339))
		return nil
	case "status", "reencrypt":
		return identityKeys(ctx, a, args, stdout)
	}
	return usageError{fmt.Sprintf("unknown keys command %q", args[0])}
}

// identityKeys is `keys status` and `keys reencrypt`: where the stored
// identities stand against STEWARD_IDENTITY_KEYS, and moving them to the
// active key so older keys can be removed.
func identityKeys(ctx context.Context, a *application, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keys "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	batch := fs.Int("batch", rekey.DefaultBatch, "rows re-sealed per transaction")
	asJSON := fs.Bool("json", false, "print the status as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	if *batch <= 0 {
		return usageError{"--batch must be positive"}
	}
	kr, err := keyring.Parse(a.cfg.IdentityKeys)
	if err != nil {
		return fmt.Errorf("STEWARD_IDENTITY_KEYS: %w", err)
	}
	svc := &rekey.Service{Pool: a.pool, Keys: kr, Audit: a.audit, Batch: *batch}
	if args[0] == "reencrypt" {
		// A key rows need but the keyring lacks cannot be re-encrypted
		// from: refuse with the counts before moving anything.
		if _, err := svc.Check(ctx); err != nil {
			return err
		}
		n, err := svc.RunOnce(ctx)
		if err != nil {
			return fmt.Errorf("re-encrypted %d rows, then: %w", n, err)
		}
		fmt.Fprintf(stdout, "re-encrypted %d rows under key %s\n", n, kr.ActiveKID())
	}
	st, err := svc.Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := struct {
			rekey.Status
			Keys      []rekey.KeyState `json:"keys"`
			Retirable []string         `json:"retirable"`
			Demotable []string         `json:"demotable"`
			Missing   map[string]int64 `json:"missing"`
		}{st, st.Keys(), st.Retirable(), st.Demotable(), st.Missing()}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
		return keysRefusal(st)
	}
	fmt.Fprintf(stdout, "active key: %s\nconfigured: %s\n", st.Active, strings.Join(st.Configured, ", "))
	if len(st.LookupOnly) > 0 {
		fmt.Fprintf(stdout, "lookup-only: %s\n", strings.Join(st.LookupOnly, ", "))
	}
	if len(st.Rows) > 0 {
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GROUP\tKEY\tROWS\tNOTE")
		for _, c := range st.Rows {
			note := ""
			switch {
			case !slices.Contains(st.Configured, c.KID):
				note = "key not configured"
			case c.Stuck && c.HashOnly:
				note = "lookup hash only; moves when the person comes back (see docs/operations.md)"
			case c.Stuck:
				note = "cannot be re-encrypted (see docs/operations.md)"
			case c.HashOnly:
				note = "lookup hash only; re-encryption moves it"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", c.Group, c.KID, c.Rows, note)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stdout, "every stored identity is under the active key")
	}
	// One line per key, saying what may be done with it: the question an
	// operator retiring a key actually asks.
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tCONFIGURED\tSEALED\tHASH-ONLY\tVERDICT")
	for _, k := range st.Keys() {
		conf := k.Configured
		if conf == "" {
			conf = "no"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", k.KID, conf, k.SealedRows, k.HashOnlyRows, keyVerdict(k))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r := st.Retirable(); len(r) > 0 {
		fmt.Fprintf(stdout, "can be removed from STEWARD_IDENTITY_KEYS: %s\n", strings.Join(r, ", "))
	}
	if d := st.Demotable(); len(d) > 0 {
		fmt.Fprintf(stdout, "can be demoted to lookup-only (kid:base64:lookup): %s\n", strings.Join(d, ", "))
	}
	if n := st.NeededForSealed(); len(n) > 0 {
		fmt.Fprintf(stdout, "still needed for sealed data: %s\n", strings.Join(n, ", "))
	}
	return keysRefusal(st)
}

// keyVerdict is the VERDICT column of `keys status`.
func keyVerdict(k rekey.KeyState) string {
	switch k.Verdict {
	case rekey.VerdictActive:
		return "active"
	case rekey.VerdictRemove:
		return "can be removed"
	case rekey.VerdictLookupOnly:
		if k.Configured == "lookup-only" {
			return fmt.Sprintf("keep lookup-only: %d lookup hashes (%d erased subjects) still use it", k.HashOnlyRows, k.ErasedRows)
		}
		return "can be demoted to lookup-only"
	case rekey.VerdictNeeded:
		return "needed for sealed data: keep in full"
	case rekey.VerdictMissing:
		if k.SealedRows == 0 {
			return "not configured: put it back as lookup-only"
		}
		return "not configured: put it back"
	case rekey.VerdictDemotedTooEarly:
		return "lookup-only too early: configure it in full"
	}
	return string(k.Verdict)
}

// keysRefusal is the error `keys status` exits with when start-up would
// refuse the keyring.
func keysRefusal(st rekey.Status) error {
	if m := st.Missing(); len(m) > 0 {
		return fmt.Errorf("%w: rows still use %v; put the key back", rekey.ErrMissingKey, m)
	}
	if e := st.DemotedTooEarly(); len(e) > 0 {
		return fmt.Errorf("%w: %v; configure it in full and run `steward keys reencrypt`", rekey.ErrDemotedTooEarly, e)
	}
	return nil
}

func policyCmd(ctx context.Context, cfg config.Config, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"want test or data"}
	}
	switch args[0] {
	case "test":
		fs := flag.NewFlagSet("policy test", flag.ContinueOnError)
		verbose := fs.Bool("v", false, "list every test")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{err.Error()}
		}
		src := policySource(cfg)
		fsys, err := src.Open()
		if err != nil {
			return err
		}
		// Loading validates the data (and the data map) too.
		if _, err := policy.Load(ctx, fsys); err != nil {
			return err
		}
		_, failed, err := policy.RunTests(ctx, fsys, stdout, *verbose)
		if errors.Is(err, policy.ErrNoTests) && src.Overlay() {
			fmt.Fprintf(stdout, "the bundle loads and its data validates; %s has no Rego tests of its own (the embedded policies' tests ran when this binary was built)\n", src.Name)
			return nil
		}
		if err != nil {
			return err
		}
		if failed > 0 {
			return fmt.Errorf("%d policy test(s) failed", failed)
		}
		return nil
	case "explain":
		return policyExplain(ctx, cfg, args[1:], stdout)
	case "eval":
		fs := flag.NewFlagSet("policy eval", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		inputFile := fs.String("input", "", "JSON file with the input document (- for standard input)")
		if len(args) < 2 || strings.HasPrefix(args[1], "-") {
			return usageError{"want: policy eval DECISION --input FILE.json (DECISION: consent, authz, retention, dsar, deadlines)"}
		}
		if err := fs.Parse(args[2:]); err != nil {
			return usageError{err.Error()}
		}
		var raw []byte
		var err error
		switch *inputFile {
		case "":
			return usageError{"--input is required"}
		case "-":
			raw, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		default:
			raw, err = os.ReadFile(*inputFile)
		}
		if err != nil {
			return fmt.Errorf("read input: %w", err)
		}
		var input any
		if err := json.Unmarshal(raw, &input); err != nil {
			return fmt.Errorf("input is not JSON: %w", err)
		}
		engine, err := loadPolicy(ctx, cfg)
		if err != nil {
			return err
		}
		out, err := engine.Eval(ctx, args[1], input)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"decision": out, "policy_revision": engine.Revision()})
	case "data":
		engine, err := loadPolicy(ctx, cfg)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"steward": engine.Data()})
	}
	return usageError{fmt.Sprintf("unknown policy command %q", args[0])}
}

func auditCmd(ctx context.Context, cfg config.Config, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return usageError{"want: audit verify [--from CHECKPOINT.json]"}
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	from := fs.String("from", "", "start from this trusted checkpoint (a JSON document exported to object storage)")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	if err := cfg.RequireDatabase(); err != nil {
		return err
	}
	var doc []byte
	if *from != "" {
		b, err := os.ReadFile(*from)
		if err != nil {
			return fmt.Errorf("read checkpoint: %w", err)
		}
		doc = b
	}
	pool, err := openMain(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	_, keys, err := audit.LoadKeys(cfg.AuditSigningKey, cfg.AuditRetiredKeys)
	if err != nil {
		return err
	}
	if len(keys) == 0 {
		return errors.New("no checkpoint verification key: set STEWARD_AUDIT_SIGNING_KEY or STEWARD_AUDIT_RETIRED_KEYS")
	}
	var cp *audit.Checkpoint
	if doc != nil {
		c, err := audit.ParseCheckpointDocument(doc)
		if err != nil {
			return err
		}
		cp = &c
	}
	r, err := audit.Verify(ctx, pool, keys, cp)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, r.String())
	if r.Pending > 0 {
		fmt.Fprintf(stdout, "(%d entries appended but not yet sealed; a running server seals them)\n", r.Pending)
	}
	if !r.OK {
		return errVerifyFailed
	}
	return nil
}

// errVerifyFailed makes `audit verify` exit non-zero after printing why.
var errVerifyFailed = errors.New("audit log verification failed")
