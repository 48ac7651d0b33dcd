# Consent decisions: may this subject's data be used for this purpose, here?
#
# Input (built by internal/consent; the stored object is absent when the
# subject has no record for the purpose, age when it is unknown, restricted
# when no processing restriction is in force):
#   {"purpose": "marketing", "jurisdiction": "US-CA", "product": "web",
#    "age": 15, "gpc": true, "restricted": false,
#    "stored": {"state": "granted", "source": "web_banner", "notice_major": 2, "gpc": false}}
#
# The notices are the requirements (docs/promises.md maps each promise to
# its rule):
#   - a purpose whose legal basis is consent (marketing, broadcasts,
#     third-party models, non-essential cookies) needs a recorded grant in
#     every jurisdiction: the web notice lists "Marketing emails, Crisp
#     outreach, non-essential cookies | Consent" with no regional exception,
#     and the bot's broadcasts go out "if you've consented". Only purposes on
#     another basis (analytics: "Legitimate interests (you can opt out of
#     analytics in settings)") default to allowed in an opt-out regime;
#   - below the product's minimum age (web 16, bot 13) no consent-based
#     purpose is allowed when the age is known;
#   - a restriction of processing (GDPR Art. 18) stops every purpose but the
#     essential one until it is lifted;
#   - a purpose the product does not have is never answered "allowed" (the
#     API refuses the question with 400 before it gets here).
#
# The rules are ordered: the first that applies decides, and its name is
# returned as `rule` so every answer can be explained.
package steward.consent

purposes := data.steward.purposes

jurisdictions := data.steward.jurisdictions

purpose := purposes[input.purpose]

product_name := object.get(input, "product", "web")

product := data.steward.products[product_name]

purpose_offered if product_name in purpose.products

# Consent is the purpose's legal basis: it needs a recorded grant everywhere.
consent_based if purpose.legal_basis == "consent"

# The minimum age refuses every consent-based purpose (and any other marked
# minor_restricted) when the age is known: "Our services target users aged
# 16 or older" (web), "not directed to individuals under the age of 13" (bot).
age_refuses if {
	consent_based
	input.age < product.minimum_age
}

age_refuses if {
	purpose.minor_restricted
	input.age < product.minimum_age
}

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

decision := result(false, "not_offered", "purpose_not_offered") if {
	purpose
	not purpose_offered
} else := result(true, "essential", "essential_always_allowed") if {
	purpose.essential
} else := result(false, "restricted", "processing_restricted") if {
	purpose
	input.restricted == true
} else := result(false, "below_minimum_age", "minor_restricted_purpose") if {
	age_refuses
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
} else := result(false, "no_consent", "consent_required_everywhere") if {
	consent_based
} else := result(true, "opt_out_default", "opt_out_regime_default") if {
	purpose
	regime.model == "opt_out"
} else := result(false, "no_consent", "opt_in_regime_default") if {
	purpose
}
