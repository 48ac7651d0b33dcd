// Package demo is the steward-demo command: it sets up the reference
// deployment `make run` starts (scripts/run.sh). `steward-demo seed`
// (re)creates the reference application's database (internal/refapp) and
// fills its object store, `steward-demo peers` serves fakes of the payment
// providers (connectors/stripe/stripefake, connectors/creem/creemfake), a
// Resend stand-in (internal/notify/resendtest) and a Telegram Bot API
// stand-in (internal/notify/telegramtest) and the reference bot's opt-out
// webhook receiver (OptOutReceiver) on loopback ports, `steward-demo
// connectors` writes the connectors file that points Steward at all of
// them, and `steward-demo webhook` registers the receiver with Steward.
//
// It links those fakes, so only cmd/steward-demo and tests import it: the
// steward server binary must not (cmd/steward's TestServerBinaryImports
// checks).
package demo

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/steward-privacy/steward/internal/config"
)

// The demo deployment's fixed names and throwaway credentials. They guard
// nothing but loopback fakes and a local gateway; scripts/run.sh uses the
// same values.
const (
	// AppDatabase is the reference application's database, on
	// DATABASE_URL's server unless --database names another.
	AppDatabase = "steward_demo_app"
	// Bucket holds the web people's uploads, masks and generated images.
	Bucket = "media"

	s3AccessKey    = "steward-demo-access"
	s3SecretKey    = "steward-demo-secret-key"
	s3Region       = "us-east-1"
	stripeKey      = "sk_test_steward_demo"
	creemKey       = "creem_test_steward_demo"
	creemWebhook   = "whsec_steward_demo"
	telegramToken  = "7000000042:AAH_steward_demo_bot_not_a_secret"
	creemStore     = "Nano Banana Pro"
	creemSupport   = "support@creem.io"
	webSeed        = 1
	botSeed        = 2
	defaultPeople  = 300
	objectWorkers  = 16
	s3WaitDuration = 30 * time.Second
)

const usage = `steward-demo — the demo deployment that make run starts (scripts/run.sh)

Usage:
  steward-demo seed       [--database URL] [--people N] [--s3-endpoint URL --s3-access-key K --s3-secret-key S --bucket B]
                          (re)create the reference application's database and fill the object store
  steward-demo peers      [--database URL] --stripe ADDR --creem ADDR [--resend ADDR] [--telegram ADDR]
                          [--optouts ADDR --optouts-secret-file F] [--ready-file F] [--mail-log F] [--chat-log F]
                          serve the Stripe and Creem fakes, the Resend and Telegram stand-ins and the reference
                          bot's opt-out webhook receiver, linked to the database's people
  steward-demo connectors [--database URL] --s3-endpoint URL [--s3-access-key K --s3-secret-key S]
                          --stripe-url URL --creem-url URL [--out FILE]
                          write the connectors file that points Steward at all of them
  steward-demo webhook    --steward-url URL --receiver-url URL --secret-file F   (STEWARD_DEMO_ADMIN_KEY set)
                          register the opt-out receiver with Steward once (idempotent), its secret into F
  steward-demo COMMAND --help
                          the command's flags

--database defaults to database ` + AppDatabase + ` on DATABASE_URL's server.
Configuration is read from the environment, as steward reads it; see docs/configuration.md.
`

// Run is the steward-demo command without the process: args are its
// arguments (without the program name), e.g. "seed", "--people", "25".
// It returns the exit code: 0 when done, 2 for a usage error (printed with
// the usage), 1 for any other failure.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "steward-demo: want one of seed, peers, connectors, webhook\n\n%s", usage)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		fmt.Fprintln(stderr, "steward-demo: config:", err)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "seed":
		err = seedCmd(ctx, cfg, rest, stdout, stderr)
	case "peers":
		err = peersCmd(ctx, cfg, rest, stdout, stderr)
	case "connectors":
		err = connectorsCmd(cfg, rest, stdout)
	case "webhook":
		err = webhookCmd(ctx, rest, stdout, getenv)
	default:
		fmt.Fprintf(stderr, "steward-demo: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "steward-demo %s: %v\n\n%s", cmd, err, usage)
			return 2
		}
		fmt.Fprintf(stderr, "steward-demo %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// parseFlags parses args; --help prints the flags to stdout and reports
// helped.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (helped bool, err error) {
	fs.SetOutput(io.Discard)
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "Usage of steward-demo %s:\n", fs.Name())
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return true, nil
	}
	if err != nil {
		return false, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return false, usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	return false, nil
}

// databaseFlag adds --database, defaulting to the demo database on
// DATABASE_URL's server.
func databaseFlag(fs *flag.FlagSet) *string {
	return fs.String("database", "", "the demo application's database URL (default: database "+AppDatabase+" on DATABASE_URL's server)")
}

func databaseURL(cfg config.Config, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if cfg.DatabaseURL == "" {
		return "", usageError{"DATABASE_URL is not set: pass --database"}
	}
	return WithDatabaseName(cfg.DatabaseURL, AppDatabase)
}

// WithDatabaseName returns dsn (a postgres:// URL or key=value settings)
// naming database name instead.
func WithDatabaseName(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", errors.New("database URL does not parse")
		}
		u.Path, u.RawPath = "/"+name, ""
		return u.String(), nil
	}
	// Key=value settings: a later dbname wins.
	return strings.TrimSpace(dsn) + " dbname=" + name, nil
}

// ensureDatabase creates dsn's database if it does not exist, connecting
// to the server's "postgres" database to do so.
func ensureDatabase(ctx context.Context, dsn string) error {
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return errors.New("demo database URL does not parse")
	}
	name := cc.Database
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		return conn.Close(ctx)
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "3D000" { // invalid_catalog_name
		return fmt.Errorf("connect to the demo database: %w", err)
	}
	admin, err := WithDatabaseName(dsn, "postgres")
	if err != nil {
		return err
	}
	ac, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to the server to create database %s: %w", name, err)
	}
	defer ac.Close(ctx)
	if _, err := ac.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		if !errors.As(err, &pe) || pe.Code != "42P04" { // duplicate_database: created meanwhile
			return fmt.Errorf("create database %s: %w", name, err)
		}
	}
	return nil
}
