package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Connectors is the connectors file (STEWARD_CONNECTORS): for each
// data-map system Steward reaches itself, which connector and how. Systems
// not listed are handled by staff as manual tasks.
//
//	app_db:
//	  postgres:
//	    dsn: ${APP_DATABASE_URL}
//	    schema: public
//	    restrict_columns: {users: processing_restricted}
//
// Secrets stay in the environment: ${NAME} is replaced by the variable's
// value, and an unset variable is an error naming it.
type Connectors map[string]ConnectorSpec

// ConnectorSpec configures the connector of one system; exactly one kind is
// set.
type ConnectorSpec struct {
	Postgres    *PostgresSpec    `yaml:"postgres"`
	ObjectStore *ObjectStoreSpec `yaml:"objectstore"`
	Stripe      *StripeSpec      `yaml:"stripe"`
	Creem       *CreemSpec       `yaml:"creem"`
}

// ObjectStoreSpec configures connectors/objectstore: a gocloud.dev/blob
// URL (s3://, gs://, azblob://, file://; credentials from the driver's
// usual environment), or an S3-compatible endpoint with static keys.
type ObjectStoreSpec struct {
	URL               string  `yaml:"url"`
	S3                *S3Spec `yaml:"s3"`
	PageSize          int     `yaml:"page_size"`
	DeleteConcurrency int     `yaml:"delete_concurrency"`
}

// S3Spec is an S3-compatible bucket reached with static keys (MinIO,
// versitygw, R2, Spaces, ...).
type S3Spec struct {
	Bucket          string `yaml:"bucket"`
	Endpoint        string `yaml:"endpoint"`
	Region          string `yaml:"region"`
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	PathStyle       bool   `yaml:"path_style"`
}

// StripeSpec configures connectors/stripe.
type StripeSpec struct {
	APIKey  string `yaml:"api_key"`
	BaseURL string `yaml:"base_url"`
	// CancelSubscriptions, default true: an erased customer is not billed
	// again.
	CancelSubscriptions *bool `yaml:"cancel_subscriptions"`
	MaxRetries          int   `yaml:"max_retries"`
}

// CreemSpec configures connectors/creem and the Creem webhook receiver.
type CreemSpec struct {
	APIKey        string `yaml:"api_key"`
	BaseURL       string `yaml:"base_url"`
	WebhookSecret string `yaml:"webhook_secret"`
	// Store names the Creem store in the instructions staff send Creem.
	Store          string `yaml:"store"`
	SupportContact string `yaml:"support_contact"`
	MaxRetries     int    `yaml:"max_retries"`
	PageSize       int    `yaml:"page_size"`
}

// PostgresSpec configures connectors/postgres for one system.
type PostgresSpec struct {
	DSN              string            `yaml:"dsn"`
	Schema           string            `yaml:"schema"`
	ReadOnly         bool              `yaml:"read_only"`
	BatchSize        int               `yaml:"batch_size"`
	SubjectBatch     int               `yaml:"subject_batch"`
	SweepBatch       int               `yaml:"sweep_batch"`
	LockTimeout      Duration          `yaml:"lock_timeout"`
	StatementTimeout Duration          `yaml:"statement_timeout"`
	RestrictColumns  map[string]string `yaml:"restrict_columns"`
	// EmailCaseSensitive compares email identities exactly instead of
	// case-insensitively (the default; see postgres.Config).
	EmailCaseSensitive bool `yaml:"email_case_sensitive"`
	// EmailCaseInsensitive is the old opt-in, from when exact was the
	// default. It is still read so that files setting it true keep
	// loading (true is now the default and changes nothing); false is
	// refused, because it asked for what is now spelled
	// email_case_sensitive: true, and ignoring it would change how that
	// deployment matches without a word.
	EmailCaseInsensitive    *bool `yaml:"email_case_insensitive"`
	AllowMissingForeignKeys bool  `yaml:"allow_missing_foreign_keys"`
	MaxConns                int   `yaml:"max_conns"`
}

// Duration is a time.Duration written as "2s".
type Duration time.Duration

// UnmarshalYAML reads a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("want a duration such as 2s")
	}
	v, err := time.ParseDuration(s)
	if err != nil || v <= 0 {
		return fmt.Errorf("want a positive duration such as 2s, got %q", s)
	}
	*d = Duration(v)
	return nil
}

// MaxConnectorsFile bounds the file; it is a few dozen lines.
const MaxConnectorsFile = 1 << 20

var (
	envRef   = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	systemID = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	// sqlIdent is the data map's rule for Postgres names: mixed case (a
	// quoted identifier), digits, _ and $.
	sqlIdent  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}$`)
	errNoKind = errors.New("set exactly one connector kind (postgres, objectstore, stripe, creem)")
)

// LoadConnectors reads the connectors file at path; "" means none.
func LoadConnectors(path string, lookup func(string) (string, bool)) (Connectors, error) {
	if path == "" {
		return Connectors{}, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("STEWARD_CONNECTORS: %w", err)
	}
	return ParseConnectors(path, b, lookup)
}

// ParseConnectors parses a connectors file strictly (unknown keys are
// errors) and expands ${VAR} references with lookup. Errors never contain
// a variable's value: it is usually a password.
func ParseConnectors(name string, src []byte, lookup func(string) (string, bool)) (Connectors, error) {
	if len(src) > MaxConnectorsFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, MaxConnectorsFile)
	}
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	var out Connectors
	if err := dec.Decode(&out); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if out == nil {
		out = Connectors{}
	}
	var problems []string
	for _, sys := range slices.Sorted(maps.Keys(out)) {
		for _, p := range out[sys].check(sys, lookup) {
			problems = append(problems, fmt.Sprintf("%s: %s: %s", name, sys, p))
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return out, nil
}

func (s ConnectorSpec) check(sys string, lookup func(string) (string, bool)) []string {
	var ps []string
	if !systemID.MatchString(sys) {
		ps = append(ps, "system ids are lowercase letters, digits and _")
	}
	kinds := 0
	for _, set := range []bool{s.Postgres != nil, s.ObjectStore != nil, s.Stripe != nil, s.Creem != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return append(ps, errNoKind.Error())
	}
	var more []string
	switch {
	case s.ObjectStore != nil:
		more = s.ObjectStore.check(lookup)
	case s.Stripe != nil:
		more = s.Stripe.check(lookup)
	case s.Creem != nil:
		more = s.Creem.check(lookup)
	default:
		more = s.Postgres.check(lookup)
	}
	ps = append(ps, more...)
	slices.Sort(ps)
	return ps
}

// expandField expands *v's ${VAR} references in place, reporting unset
// variables and, when required, an empty result, under name.
func expandField(name string, v *string, required bool, lookup func(string) (string, bool)) []string {
	var ps []string
	out, missing := expand(*v, lookup)
	for _, m := range missing {
		ps = append(ps, fmt.Sprintf("%s: environment variable %s is not set", name, m))
	}
	*v = out
	if required && out == "" && len(missing) == 0 {
		ps = append(ps, name+" is required")
	}
	return ps
}

// httpURL reports whether v is an absolute http(s) URL.
func httpURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (o *ObjectStoreSpec) check(lookup func(string) (string, bool)) []string {
	var ps []string
	switch {
	case (o.URL == "") == (o.S3 == nil):
		ps = append(ps, "objectstore: set url or s3, not both")
	case o.S3 != nil:
		s3 := o.S3
		ps = append(ps, expandField("objectstore.s3.bucket", &s3.Bucket, true, lookup)...)
		ps = append(ps, expandField("objectstore.s3.endpoint", &s3.Endpoint, false, lookup)...)
		ps = append(ps, expandField("objectstore.s3.region", &s3.Region, false, lookup)...)
		ps = append(ps, expandField("objectstore.s3.access_key_id", &s3.AccessKeyID, false, lookup)...)
		ps = append(ps, expandField("objectstore.s3.secret_access_key", &s3.SecretAccessKey, false, lookup)...)
		if s3.Endpoint != "" && !httpURL(s3.Endpoint) {
			ps = append(ps, "objectstore.s3.endpoint: want an http(s) URL")
		}
		if (s3.AccessKeyID == "") != (s3.SecretAccessKey == "") {
			ps = append(ps, "objectstore.s3: set both access_key_id and secret_access_key, or neither (then the AWS environment)")
		}
	default:
		ps = append(ps, expandField("objectstore.url", &o.URL, true, lookup)...)
		if u, err := url.Parse(o.URL); o.URL != "" && (err != nil || u.Scheme == "") {
			ps = append(ps, "objectstore.url: want a bucket URL such as s3://bucket?region=eu-west-1")
		}
	}
	for name, v := range map[string]int{"page_size": o.PageSize, "delete_concurrency": o.DeleteConcurrency} {
		if v < 0 || v > 1000 {
			ps = append(ps, fmt.Sprintf("objectstore.%s: want 1 to 1000 (0 for the default)", name))
		}
	}
	return ps
}

func (s *StripeSpec) check(lookup func(string) (string, bool)) []string {
	ps := expandField("stripe.api_key", &s.APIKey, true, lookup)
	ps = append(ps, expandField("stripe.base_url", &s.BaseURL, false, lookup)...)
	if s.BaseURL != "" && !httpURL(s.BaseURL) {
		ps = append(ps, "stripe.base_url: want an http(s) URL")
	}
	if s.MaxRetries < 0 || s.MaxRetries > 10 {
		ps = append(ps, "stripe.max_retries: want 0 to 10")
	}
	return ps
}

func (c *CreemSpec) check(lookup func(string) (string, bool)) []string {
	ps := expandField("creem.api_key", &c.APIKey, true, lookup)
	ps = append(ps, expandField("creem.base_url", &c.BaseURL, false, lookup)...)
	ps = append(ps, expandField("creem.webhook_secret", &c.WebhookSecret, false, lookup)...)
	ps = append(ps, expandField("creem.support_contact", &c.SupportContact, false, lookup)...)
	if c.BaseURL != "" && !httpURL(c.BaseURL) {
		ps = append(ps, "creem.base_url: want an http(s) URL")
	}
	if c.MaxRetries < 0 || c.MaxRetries > 10 {
		ps = append(ps, "creem.max_retries: want 0 to 10")
	}
	if c.PageSize < 0 || c.PageSize > 1000 {
		ps = append(ps, "creem.page_size: want 1 to 1000 (0 for the default)")
	}
	return ps
}

func (pg *PostgresSpec) check(lookup func(string) (string, bool)) []string {
	var ps []string
	dsn, missing := expand(pg.DSN, lookup)
	for _, v := range missing {
		ps = append(ps, fmt.Sprintf("postgres.dsn: environment variable %s is not set", v))
	}
	pg.DSN = dsn
	if pg.DSN == "" && len(missing) == 0 {
		ps = append(ps, "postgres.dsn is required")
	}
	if pg.Schema != "" && !sqlIdent.MatchString(pg.Schema) {
		ps = append(ps, fmt.Sprintf("postgres.schema %q: letters, digits, _ and $, starting with a letter or _", pg.Schema))
	}
	switch ci := pg.EmailCaseInsensitive; {
	case ci == nil:
	case !*ci:
		ps = append(ps, "postgres.email_case_insensitive: false is no longer read: emails are compared case-insensitively by default; to compare them exactly, set email_case_sensitive: true instead")
	case pg.EmailCaseSensitive:
		ps = append(ps, "postgres.email_case_insensitive and email_case_sensitive contradict each other; keep email_case_sensitive (email_case_insensitive is the default now)")
	}
	for name, v := range map[string]int{"batch_size": pg.BatchSize, "subject_batch": pg.SubjectBatch, "sweep_batch": pg.SweepBatch, "max_conns": pg.MaxConns} {
		if v < 0 || v > 100_000 {
			ps = append(ps, fmt.Sprintf("postgres.%s: want 1 to 100000 (0 for the default)", name))
		}
	}
	for _, ds := range slices.Sorted(maps.Keys(pg.RestrictColumns)) {
		if !systemID.MatchString(ds) || !sqlIdent.MatchString(pg.RestrictColumns[ds]) {
			ps = append(ps, fmt.Sprintf("postgres.restrict_columns.%s: the dataset is a data-map dataset id (lowercase letters, digits and _) and the column a column name (letters, digits, _ and $)", ds))
		}
	}
	if pg.ReadOnly && len(pg.RestrictColumns) > 0 {
		ps = append(ps, "postgres.restrict_columns: a read_only connector cannot restrict")
	}
	return ps
}

// expand replaces ${VAR} references; it returns the names of unset ones.
func expand(s string, lookup func(string) (string, bool)) (string, []string) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := envRef.FindStringSubmatch(ref)[1]
		v, ok := lookup(name)
		if !ok || v == "" {
			missing = append(missing, name)
		}
		return v
	})
	return out, missing
}

// CreemWebhookSecret is the webhook secret of the first Creem system (by
// name) that has one; nil when none does, and Creem's webhooks are refused.
func (c Connectors) CreemWebhookSecret() []byte {
	for _, sys := range slices.Sorted(maps.Keys(c)) {
		if cr := c[sys].Creem; cr != nil && cr.WebhookSecret != "" {
			return []byte(cr.WebhookSecret)
		}
	}
	return nil
}
