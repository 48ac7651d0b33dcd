package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/retention"
)

// cliError turns an application error into a usage error naming the
// offending input, as the API's problem document would.
func cliError(err error) error {
	ae, ok := apperr.As(err)
	if !ok || ae.Code != apperr.Invalid {
		return err
	}
	msg := ae.Message
	for _, f := range ae.Fields {
		msg += fmt.Sprintf("; %s: %s", f.Field, f.Message)
	}
	return usageError{msg}
}

func retentionCmd(ctx context.Context, cfg config.Config, args []string, stdout io.Writer, log *slog.Logger) error {
	if len(args) == 0 {
		return usageError{"want: retention plan|run|runs"}
	}
	fs := flag.NewFlagSet("retention "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dataset := fs.String("dataset", "", "one dataset, system.dataset")
	dryRun := fs.Bool("dry-run", false, "count what is due; change nothing")
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int("limit", 10, "runs to list")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	if args[0] == "run" {
		// A run without --dry-run deletes for real: the flag must be given
		// either way (--dry-run or --dry-run=false), as the API requires
		// dry_run in the body; checked before connecting to anything.
		stated := false
		fs.Visit(func(f *flag.Flag) { stated = stated || f.Name == "dry-run" })
		if !stated {
			return usageError{"retention run: state --dry-run (count only) or --dry-run=false (delete and anonymize for real)"}
		}
	}
	a, err := build(ctx, cfg, log, clock.Real{}, needConnectors)
	if err != nil {
		return err
	}
	defer a.close() // also seals the entries the command wrote
	svc := a.retain
	switch args[0] {
	case "plan":
		items, err := svc.Plan(ctx, *dataset)
		if err != nil {
			return cliError(err)
		}
		if *asJSON {
			return printJSON(stdout, map[string]any{"rules": items})
		}
		return retention.WritePlan(stdout, items)
	case "run":
		r, err := svc.RunNow(ctx, retention.RunOptions{Trigger: retention.TriggerCLI, Actor: "system:cli", DryRun: *dryRun, Dataset: *dataset})
		if err != nil {
			return cliError(err)
		}
		if *asJSON {
			if err := printJSON(stdout, r); err != nil {
				return err
			}
		} else if err := retention.WriteRun(stdout, r); err != nil {
			return err
		}
		if r.Status == retention.StatusFailed {
			return errors.New("retention run failed for some datasets (see last_error)")
		}
		return nil
	case "runs":
		runs, err := svc.ListRuns(ctx, *limit)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, map[string]any{"runs": runs})
		}
		return retention.WriteRuns(stdout, runs)
	}
	return usageError{fmt.Sprintf("unknown retention command %q", args[0])}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func holdsCmd(ctx context.Context, cfg config.Config, args []string, stdout io.Writer, log *slog.Logger) error {
	if len(args) == 0 {
		return usageError{"want: holds list|create|lift"}
	}
	fs := flag.NewFlagSet("holds "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	subject := fs.String("subject", "", "hold one person's records: an identity such as email:a@example.com")
	dataset := fs.String("dataset", "", "hold a whole dataset: system.dataset")
	category := fs.String("category", "", "hold every dataset with data of this category (e.g. user.financial)")
	reason := fs.String("reason", "", "why (the case, the authority's request)")
	expires := fs.String("expires", "", "when the hold ends by itself (RFC 3339); default: until lifted")
	all := fs.Bool("all", false, "list lifted and expired holds too")
	asJSON := fs.Bool("json", false, "print JSON")
	rest := args[1:]
	var id string
	if args[0] == "lift" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	var in retention.HoldInput
	if args[0] == "create" {
		in = retention.HoldInput{Subject: *subject, Dataset: *dataset, Category: *category, Reason: *reason}
		if *expires != "" {
			t, err := time.Parse(time.RFC3339, *expires)
			if err != nil {
				return usageError{"--expires: want an RFC 3339 time such as 2027-01-31T00:00:00Z"}
			}
			in.ExpiresAt = &t
		}
	}
	if args[0] == "lift" && id == "" {
		return usageError{"want: holds lift HOLD_ID --reason R"}
	}
	a, err := build(ctx, cfg, log, clock.Real{}, needConnectors)
	if err != nil {
		return err
	}
	defer a.close() // also seals the entries the command wrote
	svc := a.retain
	switch args[0] {
	case "list":
		hs, err := svc.ListHolds(ctx, *all)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(stdout, map[string]any{"holds": hs})
		}
		return retention.WriteHolds(stdout, hs)
	case "create":
		h, err := svc.CreateHold(ctx, in, "system:cli")
		if err != nil {
			return cliError(err)
		}
		return printJSON(stdout, h)
	case "lift":
		h, err := svc.LiftHold(ctx, id, *reason, "system:cli")
		if err != nil {
			return cliError(err)
		}
		return printJSON(stdout, h)
	}
	return usageError{fmt.Sprintf("unknown holds command %q", args[0])}
}
