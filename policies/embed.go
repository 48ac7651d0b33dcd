// Package policies is Steward's default OPA policy bundle: the Rego rules
// (consent, authz, retention, dsar, deadlines) and the data they
// read (purposes, products, jurisdictions, roles, notices) and the texts of
// the privacy notices (notices/<product>/<version>/<lang>.md). It is embedded in the binary
// and can be replaced at run time with STEWARD_POLICY_DIR.
package policies

import "embed"

// FS holds the Rego modules, their tests and the data files.
//
//go:embed *.rego data/*.json data/*.yaml notices
var FS embed.FS
