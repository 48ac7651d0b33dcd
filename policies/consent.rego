# Consent decisions: may this subject's data be used for this purpose, here?
#
# Input (built by internal/consent; the stored object is absent when the
# subject has no record for the purpose):
#   {"purpose": "marketing", "jurisdiction": "US-CA", "product": "web",
#    "age": 15, "gpc": true,
#    "stored": {"state": "granted", "source": "web_banner", "notice_major": 2, "gpc": false}}
#
# The rules are ordered: the first that applies decides, and its name is
# returned as `rule` so every answer can be explained.
package steward.consent

purposes := data.steward.purposes

jurisdictions := data.steward.jurisdictions

purpose := purposes[input.purpose]

product := data.steward.products[object.get(input, "product", "web")]

# A subdivision (US-CA) wins over its country (US); anything unmapped is the
# default regime, which is opt-in: the safe reading of an unknown law.
regime_name := name if {
	name := jurisdictions.subdivisions[upper(input.jurisdiction)]
} else := name if {
	name := jurisdictions.countries[split(upper(input.jurisdiction), "-")[0]]
} else := "default"

regime := jurisdictions.regimes[regime_name]

current_notice_major := to_number(split(product.notice_version, ".")[0])

refusal_reason := "gpc_opt_out" if {
	input.stored.source == "gpc"
} else := input.stored.state

granted_under_gpc if {
	input.stored.state == "granted"
	input.stored.gpc == true
}

# Every answer names its rule, the regime and the purpose's legal basis.
result(allow, reason, rule) := {"allow": allow, "reason": reason, "rule": rule, "regime": regime_name, "legal_basis": purpose.legal_basis}

decision := result(true, "essential", "essential_always_allowed") if {
	purpose.essential
} else := result(false, "below_minimum_age", "minor_restricted_purpose") if {
	purpose.minor_restricted
	input.age < product.minimum_age
} else := result(false, refusal_reason, "stored_refusal") if {
	purpose
	input.stored.state in {"denied", "withdrawn"}
} else := result(false, "reconsent_required", "notice_major_version_changed") if {
	purpose
	input.stored.state == "granted"
	input.stored.notice_major < current_notice_major
} else := result(false, "gpc_opt_out", "global_privacy_control") if {
	purpose.gpc_applies
	regime.honours_gpc
	input.gpc == true
	not granted_under_gpc
} else := result(true, "granted", "stored_grant") if {
	purpose
	input.stored.state == "granted"
} else := result(false, "explicit_consent_required", "explicit_consent_purpose") if {
	purpose.requires_explicit_consent
} else := result(true, "opt_out_default", "opt_out_regime_default") if {
	purpose
	regime.model == "opt_out"
} else := result(false, "no_consent", "opt_in_regime_default") if {
	purpose
}
