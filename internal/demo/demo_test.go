package demo

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/config"
)

// The whole demo deployment (seed, peers, connectors, then Steward
// answering requests through the connectors file) is tested in
// cmd/steward's TestDemoDeployment, which needs Steward's test harness.

// TestRunErrors covers the commands' usage errors and the database URL
// they derive from DATABASE_URL.
func TestRunErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{}, {"nope"}, {"seed", "--people", "0", "--database", "postgres://x/y"},
		{"connectors", "--database", "postgres://x/y"}, {"peers", "extra"},
		{"webhook", "--steward-url", "http://127.0.0.1:1"}, {"peers", "--optouts", "127.0.0.1:0", "--database", "postgres://x/y"}} {
		var errb bytes.Buffer
		if code := Run(context.Background(), args, io.Discard, &errb, func(string) string { return "" }); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
		if !strings.Contains(errb.String(), "Usage:\n  steward-demo seed") {
			t.Errorf("%v: the usage is not printed:\n%s", args, errb.String())
		}
	}
	for _, cmd := range []string{"seed", "peers", "connectors"} {
		var out bytes.Buffer
		if code := Run(context.Background(), []string{cmd, "--help"}, &out, io.Discard, func(string) string { return "" }); code != 0 || !strings.Contains(out.String(), "-database") {
			t.Errorf("%s --help: exit %d\n%s", cmd, code, out.String())
		}
	}
	for in, want := range map[string]string{
		"postgres://u:p@127.0.0.1:5432/steward?sslmode=disable": "postgres://u:p@127.0.0.1:5432/" + AppDatabase + "?sslmode=disable",
		"host=127.0.0.1 dbname=steward":                         "host=127.0.0.1 dbname=steward dbname=" + AppDatabase,
	} {
		got, err := databaseURL(config.Config{DatabaseURL: in}, "")
		if err != nil || got != want {
			t.Errorf("databaseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
		if cc, err := pgx.ParseConfig(got); err != nil || cc.Database != AppDatabase {
			t.Errorf("%q does not name the demo database: %v", got, err)
		}
	}
}

// TestRunHelpAndConnectors: help goes to standard output with exit 0; a
// failure that is no usage error exits 1 without the usage; and
// `connectors` without --out prints a file Steward's parser accepts,
// naming the demo database on DATABASE_URL's server.
func TestRunHelpAndConnectors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, arg := range []string{"help", "-h", "--help"} {
		var out bytes.Buffer
		if code := Run(ctx, []string{arg}, &out, io.Discard, func(string) string { return "" }); code != 0 ||
			!strings.HasPrefix(out.String(), "steward-demo") || !strings.Contains(out.String(), "steward-demo peers") {
			t.Errorf("%s: exit %d\n%s", arg, code, out.String())
		}
	}

	env := func(name string) string {
		if name == "DATABASE_URL" {
			return "postgres://u:p@127.0.0.1:5432/steward?sslmode=disable"
		}
		return ""
	}
	var out, errb bytes.Buffer
	code := Run(ctx, []string{"connectors", "--s3-endpoint", "http://127.0.0.1:7070", "--stripe-url", "http://127.0.0.1:12111",
		"--creem-url", "http://127.0.0.1:12112"}, &out, &errb, env)
	if code != 0 {
		t.Fatalf("connectors: exit %d\n%s", code, errb.String())
	}
	specs, err := config.ParseConnectors("demo", out.Bytes(), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if len(specs) != 5 || specs["app_db"].Postgres == nil || !strings.Contains(specs["app_db"].Postgres.DSN, "/"+AppDatabase+"?") ||
		specs["object_store"].ObjectStore == nil || specs["object_store"].ObjectStore.S3.Bucket != Bucket {
		t.Errorf("connectors file:\n%s", out.String())
	}

	// Writing into a directory that cannot be made is a failure, not a usage error.
	errb.Reset()
	code = Run(ctx, []string{"connectors", "--s3-endpoint", "x", "--stripe-url", "x", "--creem-url", "x",
		"--out", "/dev/null/connectors.yaml"}, io.Discard, &errb, env)
	if code != 1 || strings.Contains(errb.String(), "Usage:") || !strings.HasPrefix(errb.String(), "steward-demo connectors: ") {
		t.Errorf("unwritable --out: exit %d\n%s", code, errb.String())
	}
}
