package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/steward-privacy/steward/connectors/postgres"
	"github.com/steward-privacy/steward/datamap"
)

// scanTimeout bounds the whole scan: two catalog queries.
const scanTimeout = 2 * time.Minute

const datamapUsage = "want: datamap scan --postgres DSN [--schema public] [--system app_db] [--name N] [--out FILE]"

// scanHelp heads `steward datamap scan --help`; the flags follow it.
const scanHelp = `Usage: steward datamap scan --postgres DSN [--schema public] [--system app_db] [--name N] [--out FILE]

Reads the catalog of a live PostgreSQL database (in a read-only transaction)
and writes a draft data map of one schema's tables for review: identities,
references and data categories are guessed, and every guess is marked with
TODO or "# review:". The draft goes to standard output, or to a new file with
--out (an existing file is never overwritten).

Flags:
`

// datamapCmd implements `steward datamap scan`: it reads a live database's
// catalog and writes a draft data map for review (postgres.Scan says what
// is guessed and how). It only reads, in a read-only transaction.
func datamapCmd(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		args = []string{"scan", "--help"} // scan is datamap's one command
	}
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
	if err := fs.Parse(args[1:]); errors.Is(err, flag.ErrHelp) {
		// Asked for: the scan's own usage on standard output, and success.
		fmt.Fprint(stdout, scanHelp)
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return nil
	} else if err != nil {
		return usageError{err.Error()}
	}
	switch {
	case fs.NArg() > 0 && isHelp(fs.Arg(0)):
		return datamapCmd(ctx, []string{"scan", "--help"}, stdout)
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("unexpected argument %q; %s", fs.Arg(0), datamapUsage)}
	case *dsn == "":
		return usageError{"--postgres is required: the URL or DSN of the database to scan"}
	case *schema == "":
		return usageError{"--schema must not be empty"}
	case !datamap.ValidID(*system):
		return usageError{fmt.Sprintf("--system %q must be a data-map id: lower case letters, digits and _, starting with a letter, at most 63", *system)}
	}

	ctx, cancel := context.WithTimeout(ctx, scanTimeout)
	defer cancel()
	cat, err := postgres.ReadCatalog(ctx, *dsn, *schema)
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

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
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
