package config

import (
	"strings"
	"testing"
	"time"
)

var connectorCases = []struct {
	name, src string
	wantErr   string // substring; "" = valid
}{
	{"empty", "", ""},
	{"full", `
app_db:
  postgres:
    dsn: postgres://steward:${APP_PW}@db:5432/app
    schema: app
    batch_size: 200
    subject_batch: 500
    lock_timeout: 1s
    statement_timeout: 20s
    restrict_columns: {users: processing_restricted}
    email_case_insensitive: true
    max_conns: 2
bot_db:
  postgres: {dsn: "${BOT_URL}", read_only: true}
`, ""},
	{"unknown key", "app_db:\n  postgres:\n    dsn: x\n    dns: y\n", "field dns not found"},
	{"unknown kind", "app_db:\n  mysql: {dsn: x}\n", "field mysql not found"},
	{"no kind", "app_db: {}\n", "set one connector kind"},
	{"unset variable", "app_db:\n  postgres: {dsn: '${NOPE}'}\n", "environment variable NOPE is not set"},
	{"no dsn", "app_db:\n  postgres: {schema: app}\n", "postgres.dsn is required"},
	{"bad schema", "app_db:\n  postgres: {dsn: x, schema: 'a; drop'}\n", "postgres.schema"},
	{"bad duration", "app_db:\n  postgres: {dsn: x, lock_timeout: soon}\n", "want a positive duration"},
	{"negative batch", "app_db:\n  postgres: {dsn: x, batch_size: -1}\n", "postgres.batch_size"},
	{"bad system id", "App-DB:\n  postgres: {dsn: x}\n", "system ids"},
	{"bad restrict column", "app_db:\n  postgres: {dsn: x, restrict_columns: {users: 'x y'}}\n", "restrict_columns.users"},
	{"read-only restrict", "app_db:\n  postgres: {dsn: x, read_only: true, restrict_columns: {users: flag}}\n", "read_only connector cannot restrict"},
	{"not a map", "- a\n- b\n", "cannot unmarshal"},
}

func lookup(name string) (string, bool) {
	v, ok := map[string]string{"APP_PW": "s3cret-value", "BOT_URL": "postgres://bot"}[name]
	return v, ok
}

func TestParseConnectors(t *testing.T) {
	for _, tc := range connectorCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConnectors("connectors.yaml", []byte(tc.src), lookup)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q (got %+v)", err, tc.wantErr, got)
			}
			if strings.Contains(err.Error(), "s3cret-value") {
				t.Fatalf("error leaks a secret: %v", err)
			}
		})
	}
	c, err := ParseConnectors("c.yaml", []byte(connectorCases[1].src), lookup)
	if err != nil {
		t.Fatal(err)
	}
	pg := c["app_db"].Postgres
	if pg.DSN != "postgres://steward:s3cret-value@db:5432/app" || pg.Schema != "app" || time.Duration(pg.LockTimeout) != time.Second ||
		pg.RestrictColumns["users"] != "processing_restricted" || !pg.EmailCaseInsensitive || pg.MaxConns != 2 {
		t.Fatalf("parsed %+v", pg)
	}
	if !c["bot_db"].Postgres.ReadOnly || c["bot_db"].Postgres.DSN != "postgres://bot" {
		t.Fatalf("bot_db parsed %+v", c["bot_db"].Postgres)
	}
}

func FuzzParseConnectors(f *testing.F) {
	for _, tc := range connectorCases {
		f.Add([]byte(tc.src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		c, err := ParseConnectors("fuzz.yaml", src, lookup)
		if err != nil {
			return
		}
		for sys, spec := range c {
			if !systemID.MatchString(sys) || spec.Postgres == nil || spec.Postgres.DSN == "" {
				t.Fatalf("accepted an invalid entry %q: %+v", sys, spec)
			}
		}
	})
}
