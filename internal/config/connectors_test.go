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
    email_case_sensitive: true
    max_conns: 2
bot_db:
  postgres: {dsn: "${BOT_URL}", read_only: true}
object_store:
  objectstore:
    s3: {bucket: media, endpoint: "http://127.0.0.1:7070", region: us-east-1, access_key_id: K, secret_access_key: "${APP_PW}", path_style: true}
    page_size: 500
stripe:
  stripe: {api_key: "sk_test_${APP_PW}", base_url: "http://127.0.0.1:12111", cancel_subscriptions: false}
creem:
  creem: {api_key: "${APP_PW}", webhook_secret: "${APP_PW}", support_contact: support@creem.io}
media_gcs:
  objectstore: {url: "gs://media-bucket"}
`, ""},
	{"unknown key", "app_db:\n  postgres:\n    dsn: x\n    dns: y\n", "field dns not found"},
	{"unknown kind", "app_db:\n  mysql: {dsn: x}\n", "field mysql not found"},
	{"no kind", "app_db: {}\n", "set exactly one connector kind"},
	{"two kinds", "app_db:\n  postgres: {dsn: x}\n  stripe: {api_key: k}\n", "set exactly one connector kind"},
	{"objectstore url and s3", "m:\n  objectstore: {url: 'file:///x', s3: {bucket: b}}\n", "set url or s3, not both"},
	{"objectstore neither", "m:\n  objectstore: {page_size: 5}\n", "set url or s3, not both"},
	{"objectstore bad url", "m:\n  objectstore: {url: 'not a url'}\n", "objectstore.url"},
	{"objectstore no bucket", "m:\n  objectstore: {s3: {endpoint: 'http://x'}}\n", "objectstore.s3.bucket is required"},
	{"objectstore half keys", "m:\n  objectstore: {s3: {bucket: b, access_key_id: K}}\n", "set both access_key_id and secret_access_key"},
	{"objectstore bad endpoint", "m:\n  objectstore: {s3: {bucket: b, endpoint: 'ftp://x'}}\n", "objectstore.s3.endpoint"},
	{"objectstore page size", "m:\n  objectstore: {url: 'file:///x', page_size: 5000}\n", "objectstore.page_size"},
	{"stripe no key", "stripe:\n  stripe: {base_url: 'http://x'}\n", "stripe.api_key is required"},
	{"stripe unset key", "stripe:\n  stripe: {api_key: '${NOPE}'}\n", "environment variable NOPE is not set"},
	{"stripe bad url", "stripe:\n  stripe: {api_key: k, base_url: 'x'}\n", "stripe.base_url"},
	{"creem no key", "creem:\n  creem: {webhook_secret: s}\n", "creem.api_key is required"},
	{"creem retries", "creem:\n  creem: {api_key: k, max_retries: 99}\n", "creem.max_retries"},
	{"unset variable", "app_db:\n  postgres: {dsn: '${NOPE}'}\n", "environment variable NOPE is not set"},
	{"no dsn", "app_db:\n  postgres: {schema: app}\n", "postgres.dsn is required"},
	{"bad schema", "app_db:\n  postgres: {dsn: x, schema: 'a; drop'}\n", "postgres.schema"},
	{"bad duration", "app_db:\n  postgres: {dsn: x, lock_timeout: soon}\n", "want a positive duration"},
	{"negative batch", "app_db:\n  postgres: {dsn: x, batch_size: -1}\n", "postgres.batch_size"},
	{"bad system id", "App-DB:\n  postgres: {dsn: x}\n", "system ids"},
	{"bad restrict column", "app_db:\n  postgres: {dsn: x, restrict_columns: {users: 'x y'}}\n", "restrict_columns.users"},
	{"old opt-in accepted", "app_db:\n  postgres: {dsn: x, email_case_insensitive: true}\n", ""},
	{"old opt-in false refused", "app_db:\n  postgres: {dsn: x, email_case_insensitive: false}\n", "set email_case_sensitive: true instead"},
	{"contradicting email options", "app_db:\n  postgres: {dsn: x, email_case_insensitive: true, email_case_sensitive: true}\n", "contradict"},
	{"mixed-case names", "app_db:\n  postgres: {dsn: x, schema: App, restrict_columns: {users: isRestricted}}\n", ""},
	{"bad restrict dataset", "app_db:\n  postgres: {dsn: x, restrict_columns: {Users: flag}}\n", "restrict_columns.Users"},
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
		pg.RestrictColumns["users"] != "processing_restricted" || !pg.EmailCaseSensitive || pg.EmailCaseInsensitive != nil || pg.MaxConns != 2 {
		t.Fatalf("parsed %+v", pg)
	}
	if !c["bot_db"].Postgres.ReadOnly || c["bot_db"].Postgres.DSN != "postgres://bot" {
		t.Fatalf("bot_db parsed %+v", c["bot_db"].Postgres)
	}
	if s3 := c["object_store"].ObjectStore.S3; s3 == nil || s3.SecretAccessKey != "s3cret-value" || !s3.PathStyle || s3.Bucket != "media" || c["object_store"].ObjectStore.PageSize != 500 {
		t.Fatalf("object_store parsed %+v", c["object_store"].ObjectStore)
	}
	if st := c["stripe"].Stripe; st.APIKey != "sk_test_s3cret-value" || st.CancelSubscriptions == nil || *st.CancelSubscriptions {
		t.Fatalf("stripe parsed %+v", st)
	}
	if cr := c["creem"].Creem; cr.WebhookSecret != "s3cret-value" || cr.SupportContact != "support@creem.io" {
		t.Fatalf("creem parsed %+v", cr)
	}
	if c["media_gcs"].ObjectStore.URL != "gs://media-bucket" {
		t.Fatalf("media_gcs parsed %+v", c["media_gcs"].ObjectStore)
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
			ok := systemID.MatchString(sys)
			switch {
			case spec.Postgres != nil:
				ok = ok && spec.Postgres.DSN != "" && spec.ObjectStore == nil && spec.Stripe == nil && spec.Creem == nil
			case spec.ObjectStore != nil:
				ok = ok && (spec.ObjectStore.URL == "") != (spec.ObjectStore.S3 == nil) && spec.Stripe == nil && spec.Creem == nil
			case spec.Stripe != nil:
				ok = ok && spec.Stripe.APIKey != "" && spec.Creem == nil
			case spec.Creem != nil:
				ok = ok && spec.Creem.APIKey != ""
			default:
				ok = false
			}
			if !ok {
				t.Fatalf("accepted an invalid entry %q: %+v", sys, spec)
			}
		}
	})
}
