package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/policy"
)

// policyExplain implements `steward policy explain --request T --regime R`:
// for every field of the data map, the action the DSAR policy takes and why.
func policyExplain(ctx context.Context, cfg config.Config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("policy explain", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	request := fs.String("request", "", "request type: "+strings.Join(policy.RequestTypes(), ", "))
	regime := fs.String("regime", "gdpr", "legal regime, e.g. gdpr, uk_gdpr, ccpa, lgpd, vcdpa, cpa, default")
	format := fs.String("format", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	valid := false
	for _, t := range policy.RequestTypes() {
		valid = valid || t == *request
	}
	if !valid {
		return usageError{fmt.Sprintf("--request must be one of %s", strings.Join(policy.RequestTypes(), ", "))}
	}
	if *format != "text" && *format != "json" {
		return usageError{"--format must be text or json"}
	}
	engine, err := loadPolicy(ctx, cfg)
	if err != nil {
		return err
	}
	rows, err := engine.ExplainDSAR(ctx, *request, *regime)
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"request": *request, "regime": *regime, "policy_revision": engine.Revision(), "fields": rows})
	}
	fmt.Fprintf(stdout, "%s request under %s — policy revision %s — %d fields\n\n", *request, *regime, engine.Revision(), len(rows))
	return policy.WriteFieldDecisions(stdout, rows)
}
