// Command steward-demo sets up the demo deployment that `make run` starts
// (scripts/run.sh): `steward-demo seed` fills the reference application's
// database and object store, `steward-demo peers` serves the Stripe and
// Creem fakes, the Resend and Telegram stand-ins and the reference bot's
// opt-out webhook receiver, `steward-demo connectors` writes the connectors
// file, `steward-demo webhook` registers that receiver with Steward. It is
// a separate binary so that the steward server links none of those fakes;
// the work is done in internal/demo.
package main

import (
	"context"
	"os"

	"github.com/steward-privacy/steward/internal/demo"
)

func main() {
	os.Exit(demo.Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}
