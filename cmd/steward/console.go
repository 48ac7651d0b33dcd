package main

import (
	"log/slog"

	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clientip"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/receipt"
	"github.com/steward-privacy/steward/internal/web/console"
)

// buildConsole wires the staff console (/console) on the staff sign-in
// service build made (a.staff, staffcmd.go). The console acts
// through the same services as the API: requests, exports, consent,
// retention, keys, the audit reader and the policy holder (which decides
// authorization with the bundle in force).
func (a *application) buildConsole(cfg config.Config, clk clock.Clock, log *slog.Logger, proxies *clientip.Resolver,
	receipts *receipt.Signer, trust audit.Keys) error {
	c, err := console.New(console.Config{
		PublicURL: cfg.PublicURL,
		// Derived from the identity keys, like the center's: every replica
		// signs the same CSRF tokens.
		Secret: a.kr.HashValue("steward staff console csrf v1"),
		OIDC:   a.staff.SSO(),
	}, console.Deps{
		Log: log.With("component", "console"), Clock: clk, Staff: a.staff, Requests: a.requests, Packages: a.exports,
		Consent: a.consent, Receipts: receipts, Audit: audit.Reader{Pool: a.pool, Keys: trust}, Retention: a.retain,
		Keys: a.keys, Policies: a.policies, ClientIP: proxies,
	})
	if err != nil {
		return err
	}
	a.console = c
	return nil
}
