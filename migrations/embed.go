// Package migrations holds Steward's numbered SQL schema migrations, embedded
// into the binary and applied with goose (see internal/db).
package migrations

import "embed"

// FS holds the *.sql migrations.
//
//go:embed *.sql
var FS embed.FS
