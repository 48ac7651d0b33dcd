package api

import (
	"encoding/json"
	"testing"
)

// The consent check's hand-written encoding is encoding/json's, byte for
// byte, and gives up (so the handler falls back) on anything to escape.
func TestCheckResultAppendJSONMatchesEncodingJSON(t *testing.T) {
	for _, r := range []checkResult{
		{Allow: true, Reason: "opt_out_default", Rule: "ccpa.opt_out", Regime: "ccpa", LegalBasis: "consent", PolicyRevision: "sha256:abc"},
		{Allow: false, Reason: "restricted", Regime: "gdpr", PolicyRevision: "r1", RestrictionID: "0192-aa", RequestID: "0192-bb"},
		{},
		{Reason: `quote"`, PolicyRevision: "x"},
		{Reason: "a<b&c>", PolicyRevision: "x"},
		{Rule: "ünï", PolicyRevision: "x"},
		{Rule: "tab\t", PolicyRevision: "x"},
		{RequestID: `back\slash`},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := r.appendJSON(nil)
		if ok && string(got) != string(want) {
			t.Errorf("appendJSON(%+v) = %s, encoding/json %s", r, got, want)
		}
		// Non-ASCII text falls back too (rare enough not to matter).
		if needsEscape := string(want) != string(mustPlain(t, r)); ok && needsEscape {
			t.Errorf("appendJSON(%+v) answered a value that needs escaping", r)
		}
		if !ok && r.Reason == "opt_out_default" {
			t.Errorf("appendJSON(%+v) fell back on plain ASCII", r)
		}
	}
}

// mustPlain encodes r with every string as it is, unescaped: it equals
// encoding/json's output exactly when nothing needed escaping.
func mustPlain(t *testing.T, r checkResult) []byte {
	t.Helper()
	b := []byte(`{"allow":`)
	if r.Allow {
		b = append(b, "true"...)
	} else {
		b = append(b, "false"...)
	}
	for _, kv := range [][3]string{{"reason", r.Reason, ""}, {"rule", r.Rule, ""}, {"regime", r.Regime, ""}, {"legal_basis", r.LegalBasis, ""},
		{"policy_revision", r.PolicyRevision, ""}, {"restriction_id", r.RestrictionID, "omit"}, {"request_id", r.RequestID, "omit"}} {
		if kv[2] == "omit" && kv[1] == "" {
			continue
		}
		b = append(b, `,"`+kv[0]+`":"`+kv[1]+`"`...)
	}
	return append(b, '}')
}
