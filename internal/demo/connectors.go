package demo

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/steward-privacy/steward/internal/config"
)

type connectorsOptions struct {
	DatabaseURL, S3Endpoint, S3AccessKey, S3SecretKey, StripeURL, CreemURL string
}

func connectorsCmd(cfg config.Config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("connectors", flag.ContinueOnError)
	dbFlag := databaseFlag(fs)
	var o connectorsOptions
	fs.StringVar(&o.S3Endpoint, "s3-endpoint", "", "the object store's S3 endpoint")
	fs.StringVar(&o.S3AccessKey, "s3-access-key", s3AccessKey, "S3 access key")
	fs.StringVar(&o.S3SecretKey, "s3-secret-key", s3SecretKey, "S3 secret key")
	fs.StringVar(&o.StripeURL, "stripe-url", "", "the Stripe fake's base URL")
	fs.StringVar(&o.CreemURL, "creem-url", "", "the Creem fake's base URL")
	out := fs.String("out", "", "file to write (default: standard output)")
	if helped, err := parseFlags(fs, args, stdout); helped || err != nil {
		return err
	}
	if o.S3Endpoint == "" || o.StripeURL == "" || o.CreemURL == "" {
		return usageError{"--s3-endpoint, --stripe-url and --creem-url are required"}
	}
	var err error
	if o.DatabaseURL, err = databaseURL(cfg, *dbFlag); err != nil {
		return err
	}
	b, err := connectorsFile(o)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	// It holds the database URL, which may carry a password.
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, *out)
}

// connectorsFile is the connectors file of the demo deployment, checked by
// the same parser Steward uses.
func connectorsFile(o connectorsOptions) ([]byte, error) {
	q := strconv.Quote // a YAML double-quoted scalar takes Go's escapes
	src := fmt.Sprintf(`# The demo deployment's connectors, written by `+"`steward-demo connectors`"+` (scripts/run.sh).
# Use with STEWARD_CONNECTORS=%s
app_db:
  postgres:
    dsn: %s
    schema: app
    restrict_columns: {users: processing_restricted}
bot_db:
  postgres:
    dsn: %s
    schema: bot
    restrict_columns: {tg_users: processing_restricted}
object_store:
  objectstore:
    s3: {bucket: %s, endpoint: %s, region: %s, access_key_id: %s, secret_access_key: %s, path_style: true}
stripe:
  stripe: {api_key: %s, base_url: %s}
creem:
  creem: {api_key: %s, base_url: %s, webhook_secret: %s, store: %s, support_contact: %s}
`, "var/demo/connectors.yaml", q(o.DatabaseURL), q(o.DatabaseURL),
		q(Bucket), q(o.S3Endpoint), q(s3Region), q(o.S3AccessKey), q(o.S3SecretKey),
		q(stripeKey), q(o.StripeURL),
		q(creemKey), q(o.CreemURL), q(creemWebhook), q(creemStore), q(creemSupport))
	if _, err := config.ParseConnectors("demo connectors", []byte(src), func(string) (string, bool) { return "", false }); err != nil {
		return nil, err
	}
	return []byte(src), nil
}
