package policy

import (
	"context"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
)

// prepareDecisions prepares the retention, dsar and deadlines queries.
// Called by Load after the consent and authz queries are prepared.
func (e *Engine) prepareDecisions(ctx context.Context, compiler *ast.Compiler, store storage.Store) error {
	return nil
}
