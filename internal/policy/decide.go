package policy

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// ConsentInput is everything a consent decision depends on. It is comparable
// on purpose: it is the memo key.
type ConsentInput struct {
	Purpose      string
	Jurisdiction string // upper-cased ISO 3166 code, "" when unknown
	Product      string
	Age          int // -1 when unknown
	GPC          bool
	// Restricted: a restriction of processing (GDPR Art. 18) is in force
	// for the subject (internal/restrictions).
	Restricted bool
	Stored     Stored
}

// Stored is the subject's current recorded choice for the purpose.
type Stored struct {
	Present     bool
	State       string
	Source      string
	NoticeMajor int
	GPC         bool // the choice was made while the browser sent Sec-GPC: 1
}

// Decision is the consent policy's answer with its explanation.
type Decision struct {
	Allow  bool   `json:"allow"`
	Reason string `json:"reason"`
	Rule   string `json:"rule"`
	Regime string `json:"regime"`
	// LegalBasis is the purpose's legal basis (policies/data/purposes.json).
	LegalBasis string `json:"legal_basis"`
	// Revision is the bundle that decided; carried with the answer so a
	// reload between deciding and responding cannot mislabel it.
	Revision string `json:"policy_revision"`
	// RestrictionID and RequestID name the restriction in force and the
	// privacy request that set it, when Reason is "restricted" (set by
	// internal/consent after the policy decided).
	RestrictionID string `json:"restriction_id,omitempty"`
	RequestID     string `json:"request_id,omitempty"`
}

// DecideConsent returns the decision of policies/consent.rego for in.
func (e *Engine) DecideConsent(ctx context.Context, in ConsentInput) (Decision, error) {
	// Ages at or above every product's minimum decide alike, so they share
	// one memo entry.
	if in.Age > e.maxMinAge {
		in.Age = e.maxMinAge
	}
	if d, ok := e.consentMemo.Load(in); ok {
		return d.(Decision), nil
	}
	d, err := e.evalConsent(ctx, in)
	if err != nil {
		return Decision{}, err
	}
	e.remember(&e.consentMemo, in, d)
	return d, nil
}

func (e *Engine) remember(m interface{ LoadOrStore(k, v any) (any, bool) }, k, v any) {
	if e.memoSize.Load() >= memoLimit {
		return
	}
	if _, loaded := m.LoadOrStore(k, v); !loaded {
		e.memoSize.Add(1)
	}
}

func (e *Engine) evalConsent(ctx context.Context, in ConsentInput) (Decision, error) {
	obj := ast.NewObject(
		ast.Item(ast.StringTerm("purpose"), ast.StringTerm(in.Purpose)),
		ast.Item(ast.StringTerm("product"), ast.StringTerm(in.Product)),
		ast.Item(ast.StringTerm("gpc"), ast.BooleanTerm(in.GPC)),
	)
	if in.Restricted {
		obj.Insert(ast.StringTerm("restricted"), ast.BooleanTerm(true))
	}
	if in.Jurisdiction != "" {
		obj.Insert(ast.StringTerm("jurisdiction"), ast.StringTerm(in.Jurisdiction))
	}
	if in.Age >= 0 {
		obj.Insert(ast.StringTerm("age"), ast.IntNumberTerm(in.Age))
	}
	if in.Stored.Present {
		obj.Insert(ast.StringTerm("stored"), ast.NewTerm(ast.NewObject(
			ast.Item(ast.StringTerm("state"), ast.StringTerm(in.Stored.State)),
			ast.Item(ast.StringTerm("source"), ast.StringTerm(in.Stored.Source)),
			ast.Item(ast.StringTerm("notice_major"), ast.IntNumberTerm(in.Stored.NoticeMajor)),
			ast.Item(ast.StringTerm("gpc"), ast.BooleanTerm(in.Stored.GPC)),
		)))
	}
	rs, err := e.consentQ.Eval(ctx, rego.EvalParsedInput(obj))
	if err != nil {
		return Decision{}, fmt.Errorf("consent decision: %w", err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Decision{}, fmt.Errorf("consent decision: policy gave no decision for purpose %q", in.Purpose)
	}
	m, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return Decision{}, fmt.Errorf("consent decision: unexpected result %T", rs[0].Expressions[0].Value)
	}
	var d Decision
	d.Allow, _ = m["allow"].(bool)
	d.Reason, _ = m["reason"].(string)
	d.Rule, _ = m["rule"].(string)
	d.Regime, _ = m["regime"].(string)
	d.LegalBasis, _ = m["legal_basis"].(string)
	d.Revision = e.revision
	if d.Reason == "" {
		return Decision{}, fmt.Errorf("consent decision: result has no reason")
	}
	return d, nil
}

// AuthzDecision is the authz policy's answer.
type AuthzDecision struct {
	Allow  bool
	Reason string
}

// Authorize asks policies/authz.rego whether role may perform action on
// subjects of the given kinds (nil when the action names no subject).
func (e *Engine) Authorize(ctx context.Context, role, action string, kinds []string) (AuthzDecision, error) {
	kinds = uniqueSorted(kinds)
	// One kind, as on every consent check, is its own join: no allocation.
	key := authzKey{role, action, strings.Join(kinds, ",")}
	if d, ok := e.authzMemo.Load(key); ok {
		return d, nil
	}
	d, err := e.evalAuthz(ctx, role, action, kinds)
	if err != nil {
		return AuthzDecision{}, err
	}
	if e.authzMemo.Len() < authzMemoLimit {
		e.authzMemo.LoadOrAdd(key, func(k authzKey) (authzKey, AuthzDecision) {
			return authzKey{strings.Clone(k.role), strings.Clone(k.action), strings.Clone(k.kinds)}, d
		})
	}
	return d, nil
}

func (e *Engine) evalAuthz(ctx context.Context, role, action string, kinds []string) (AuthzDecision, error) {
	terms := make([]*ast.Term, len(kinds))
	for i, k := range kinds {
		terms[i] = ast.StringTerm(k)
	}
	obj := ast.NewObject(
		ast.Item(ast.StringTerm("role"), ast.StringTerm(role)),
		ast.Item(ast.StringTerm("action"), ast.StringTerm(action)),
		ast.Item(ast.StringTerm("subject_kinds"), ast.ArrayTerm(terms...)),
	)
	rs, err := e.authzQ.Eval(ctx, rego.EvalParsedInput(obj))
	if err != nil {
		return AuthzDecision{}, fmt.Errorf("authz decision: %w", err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return AuthzDecision{Allow: false, Reason: "no authz decision"}, nil
	}
	m, _ := rs[0].Expressions[0].Value.(map[string]any)
	allow, _ := m["allow"].(bool)
	reason, _ := m["reason"].(string)
	return AuthzDecision{Allow: allow, Reason: reason}, nil
}

func uniqueSorted(in []string) []string {
	if len(in) <= 1 {
		return in
	}
	out := append([]string(nil), in...)
	sort.Strings(out)
	j := 0
	for i := range out {
		if i == 0 || out[i] != out[j-1] {
			out[j] = out[i]
			j++
		}
	}
	return out[:j]
}
