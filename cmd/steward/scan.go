package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/connectors/postgres"
)

// scanConnectTimeout bounds connecting to the scanned database when its DSN
// sets no connect_timeout: an unreachable host should fail in seconds.
const scanConnectTimeout = 5 * time.Second

// scanTimeout bounds the whole scan: two catalog queries.
const scanTimeout = 2 * time.Minute

// systemIDRe is the data map's rule for system ids.
var systemIDRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

const datamapUsage = "want: datamap scan --postgres DSN [--schema public] [--system app_db] [--name N] [--out FILE]"

// datamapCmd implements `steward datamap scan`: it reads a live database's
// catalog and writes a draft data map for review (postgres.Scan says what
// is guessed and how). It only reads, in a read-only transaction.
func datamapCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "scan" {
		return usageError{datamapUsage}
	}
	fs := flag.NewFlagSet("datamap scan", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dsn := fs.String("postgres", "", "URL or DSN of the PostgreSQL database to scan")
	schema := fs.String("schema", "public", "the schema whose tables to scan")
	system := fs.String("system", postgres.DefaultScanSystem, "the draft system's id")
	name := fs.String("name", "", "the system's name in words (TODO when empty)")
	out := fs.String("out", "", "write the draft to this new file instead of standard output")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("unexpected argument %q; %s", fs.Arg(0), datamapUsage)}
	case *dsn == "":
		return usageError{"--postgres is required: the URL or DSN of the database to scan"}
	case *schema == "":
		return usageError{"--schema must not be empty"}
	case !systemIDRe.MatchString(*system):
		return usageError{fmt.Sprintf("--system %q must match %s", *system, systemIDRe)}
	}

	ctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	cat, err := scanCatalog(ctx, *dsn, *schema)
	if err != nil {
		return err
	}
	if len(cat.Tables) == 0 {
		return fmt.Errorf("schema %q has no tables to scan (does it exist? --schema names it; the default is public)", *schema)
	}
	draft, err := postgres.Scan(cat, postgres.ScanOptions{System: *system, Name: *name})
	if err != nil {
		return err
	}
	if *out == "" {
		_, err := stdout.Write(draft)
		return err
	}
	if err := writeNewFile(*out, draft); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote a draft data map of %d tables of schema %q to %s; review every TODO and \"# review:\" line\n", len(cat.Tables), *schema, *out)
	return nil
}

// scanCatalog connects to the database (one connection) and reads the
// schema's catalog in one read-only snapshot.
func scanCatalog(ctx context.Context, dsn, schema string) (*postgres.Catalog, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx masks the password in its parse errors.
		return nil, fmt.Errorf("--postgres: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = scanConnectTimeout
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the database to scan: %w", err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // read-only; nothing to keep
	return postgres.LoadCatalog(ctx, tx, schema)
}

// writeNewFile writes a file that must not exist yet: a draft never
// replaces a file, least of all the reviewed data map.
func writeNewFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("--out %s already exists; a draft does not overwrite a file (remove it or choose another name)", path)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return err
	}
	return nil
}
