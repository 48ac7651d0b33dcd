package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
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
	Postgres *PostgresSpec `yaml:"postgres"`
}

// PostgresSpec configures connectors/postgres for one system.
type PostgresSpec struct {
	DSN                     string            `yaml:"dsn"`
	Schema                  string            `yaml:"schema"`
	ReadOnly                bool              `yaml:"read_only"`
	BatchSize               int               `yaml:"batch_size"`
	SubjectBatch            int               `yaml:"subject_batch"`
	LockTimeout             Duration          `yaml:"lock_timeout"`
	StatementTimeout        Duration          `yaml:"statement_timeout"`
	RestrictColumns         map[string]string `yaml:"restrict_columns"`
	EmailCaseInsensitive    bool              `yaml:"email_case_insensitive"`
	AllowMissingForeignKeys bool              `yaml:"allow_missing_foreign_keys"`
	MaxConns                int               `yaml:"max_conns"`
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
	envRef    = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)
	systemID  = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	sqlIdent  = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	errNoKind = errors.New("set one connector kind (postgres)")
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
	if s.Postgres == nil {
		return append(ps, errNoKind.Error())
	}
	pg := s.Postgres
	dsn, missing := expand(pg.DSN, lookup)
	for _, v := range missing {
		ps = append(ps, fmt.Sprintf("postgres.dsn: environment variable %s is not set", v))
	}
	pg.DSN = dsn
	if pg.DSN == "" && len(missing) == 0 {
		ps = append(ps, "postgres.dsn is required")
	}
	if pg.Schema != "" && !sqlIdent.MatchString(pg.Schema) {
		ps = append(ps, fmt.Sprintf("postgres.schema %q: lowercase letters, digits and _", pg.Schema))
	}
	for name, v := range map[string]int{"batch_size": pg.BatchSize, "subject_batch": pg.SubjectBatch, "max_conns": pg.MaxConns} {
		if v < 0 || v > 100_000 {
			ps = append(ps, fmt.Sprintf("postgres.%s: want 1 to 100000 (0 for the default)", name))
		}
	}
	for _, ds := range slices.Sorted(maps.Keys(pg.RestrictColumns)) {
		if !sqlIdent.MatchString(ds) || !sqlIdent.MatchString(pg.RestrictColumns[ds]) {
			ps = append(ps, fmt.Sprintf("postgres.restrict_columns.%s: dataset and column are lowercase identifiers", ds))
		}
	}
	if pg.ReadOnly && len(pg.RestrictColumns) > 0 {
		ps = append(ps, "postgres.restrict_columns: a read_only connector cannot restrict")
	}
	slices.Sort(ps)
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
