package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/staff"
	"github.com/steward-privacy/steward/internal/web/console"
)

// staffStdin is where `staff create` reads a password when
// STEWARD_STAFF_PASSWORD is not set (a variable, so tests can feed it).
var staffStdin io.Reader = os.Stdin

// staffConfig derives the console's sign-in settings from Steward's
// configuration. The WebAuthn relying party is the host people reach the
// console at: STEWARD_STAFF_URL, else STEWARD_PUBLIC_URL, else this
// replica's own address, with a loopback or unspecified address named
// "localhost" (browsers accept passkeys for http://localhost, never for a
// bare IP address). Passkeys stay off when the host is an IP address.
func staffConfig(cfg config.Config) staff.Config {
	origin := ""
	for _, raw := range []string{cfg.StaffURL, cfg.PublicURL} {
		if u, err := url.Parse(raw); err == nil && raw != "" && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
			origin = u.Scheme + "://" + u.Host
			break
		}
	}
	if origin == "" {
		host, port, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			host, port = "localhost", "8080"
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && (ip.IsLoopback() || ip.IsUnspecified())) {
			host = "localhost"
		}
		origin = "http://" + net.JoinHostPort(host, port)
	}
	sc := staff.Config{RPOrigins: []string{origin}}
	if u, err := url.Parse(origin); err == nil && net.ParseIP(u.Hostname()) == nil {
		sc.RPID = u.Hostname()
	}
	if o := cfg.StaffOIDC; o != nil {
		sc.OIDC = &staff.OIDCConfig{Issuer: o.Issuer, ClientID: o.ClientID, ClientSecret: o.ClientSecret, RedirectURL: o.RedirectURL}
		if sc.OIDC.RedirectURL == "" {
			sc.OIDC.RedirectURL = origin + console.Prefix + "/signin/oidc/callback"
		}
	}
	return sc
}

// newStaff wires the staff service on a built application, with single
// sign-on when STEWARD_STAFF_OIDC_ISSUER is set.
func newStaff(a *application, kr *keyring.Keyring) (*staff.Service, error) {
	sc := staffConfig(a.cfg)
	if sc.RPID == "" {
		a.log.Warn("staff passkeys are off: the console's host is an IP address (set STEWARD_STAFF_URL or STEWARD_PUBLIC_URL)", "origin", sc.RPOrigins[0])
	}
	if o := a.cfg.StaffOIDC; o != nil {
		a.log.Info("staff single sign-on on", "oidc", *o, "redirect_url", sc.OIDC.RedirectURL) // LogValue: no secret
	}
	return staff.New(sc, staff.Deps{
		Pool: a.pool, Keys: kr, Audit: a.audit, Clock: a.clock, Log: a.log.With("component", "staff"),
		IsRole: func(role string) bool { _, ok := a.policies.Current().Roles[role]; return ok },
	})
}

func staffCmd(ctx context.Context, cfg config.Config, args []string, stdout io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		return usageError{"want create, list, disable, enable, reset-mfa or unlock"}
	}
	a, err := build(ctx, cfg, slog.New(slog.DiscardHandler), clock.Real{}, needStore)
	if err != nil {
		return err
	}
	defer a.close() // also seals the audit entries the change wrote
	kr, err := keyring.Parse(cfg.IdentityKeys)
	if err != nil {
		return fmt.Errorf("STEWARD_IDENTITY_KEYS: %w", err)
	}
	svc, err := newStaff(a, kr)
	if err != nil {
		return err
	}
	const actor = "system:cli"
	switch args[0] {
	case "create":
		fs := flag.NewFlagSet("staff create", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		email := fs.String("email", "", "the staff member's email (their sign-in name)")
		name := fs.String("name", "", "their name, as the console shows it")
		role := fs.String("role", "", "a role of the policy bundle: reviewer, auditor, admin, …")
		ifMissing := fs.Bool("if-missing", false, "do nothing when an account with this email exists")
		if err := fs.Parse(args[1:]); err != nil {
			return usageError{err.Error()}
		}
		if fs.NArg() > 0 {
			return usageError{"the password is read from STEWARD_STAFF_PASSWORD or standard input, never from the command line"}
		}
		if *email == "" || *name == "" || *role == "" {
			return usageError{"want: staff create --email E --name N --role R"}
		}
		if *ifMissing {
			list, err := svc.Accounts(ctx)
			if err != nil {
				return err
			}
			for _, acc := range list {
				if strings.EqualFold(acc.Email, strings.TrimSpace(*email)) {
					fmt.Fprintf(stdout, "exists: %s (%s, %s)\n", acc.ID, acc.Email, acc.Role)
					return nil
				}
			}
		}
		password, err := staffPassword(getenv)
		if err != nil {
			return err
		}
		acc, err := svc.CreateAccount(ctx, *email, *name, *role, password, actor)
		if err != nil {
			if ae, ok := apperr.As(err); ok && ae.Code == apperr.Invalid && strings.HasPrefix(ae.Message, "role:") {
				names := make([]string, 0, len(a.policies.Current().Roles))
				for r := range a.policies.Current().Roles {
					names = append(names, r)
				}
				sort.Strings(names)
				return usageError{fmt.Sprintf("%s (roles: %v)", ae.Message, names)}
			}
			if errors.Is(err, staff.ErrEmailTaken) {
				return fmt.Errorf("a staff account with email %s exists", strings.ToLower(strings.TrimSpace(*email)))
			}
			return cliError(err)
		}
		fmt.Fprintf(stdout, "id:    %s\nemail: %s\nname:  %s\nrole:  %s\n\nAt the first sign-in the console asks for a second factor (an authenticator app or a passkey).\n",
			acc.ID, acc.Email, acc.Name, acc.Role)
		return nil
	case "list":
		list, err := svc.Accounts(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tROLE\tSECOND FACTOR\tSTATUS\tLAST SIGN-IN")
		for _, acc := range list {
			var factors []string
			if acc.TOTP {
				factors = append(factors, "totp")
			}
			if acc.Passkeys > 0 {
				factors = append(factors, fmt.Sprintf("%d passkey(s)", acc.Passkeys))
			}
			if len(factors) == 0 {
				factors = append(factors, "none yet")
			}
			status := "active"
			switch {
			case acc.Disabled:
				status = "disabled"
			case acc.LockedUntil.After(now):
				status = "locked until " + acc.LockedUntil.UTC().Format(time.RFC3339)
			}
			last := "-"
			if !acc.LastSignIn.IsZero() {
				last = acc.LastSignIn.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", acc.ID, acc.Email, acc.Name, acc.Role, strings.Join(factors, ", "), status, last)
		}
		return tw.Flush()
	case "disable", "enable", "reset-mfa", "unlock":
		if len(args) != 2 {
			return usageError{fmt.Sprintf("want: staff %s ACCOUNT_ID", args[0])}
		}
		do := map[string]func(context.Context, string, string) error{
			"disable": svc.Disable, "enable": svc.Enable, "reset-mfa": svc.ResetMFA, "unlock": svc.Unlock,
		}[args[0]]
		if err := do(ctx, args[1], actor); err != nil {
			if errors.Is(err, staff.ErrNoAccount) {
				return fmt.Errorf("no staff account %q", args[1])
			}
			return err
		}
		fmt.Fprintf(stdout, "%s: %s\n", map[string]string{
			"disable": "disabled (its sessions ended)", "enable": "enabled",
			"reset-mfa": "second factor removed (its sessions ended; the next sign-in enrols a new one)", "unlock": "unlocked",
		}[args[0]], args[1])
		return nil
	}
	return usageError{fmt.Sprintf("unknown staff command %q", args[0])}
}

// staffPassword reads the new account's password: STEWARD_STAFF_PASSWORD,
// else the first line of standard input. Never a flag: a command line is
// visible to every user of the machine and kept in shell history.
func staffPassword(getenv func(string) string) (string, error) {
	if p := getenv("STEWARD_STAFF_PASSWORD"); p != "" {
		return p, nil
	}
	line, err := bufio.NewReader(io.LimitReader(staffStdin, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usageError{"no password: set STEWARD_STAFF_PASSWORD or pipe it on standard input"}
	}
	return line, nil
}
