package steward.retention_test

import data.steward.retention

decide(inp) := d if {
	d := retention.decision with input as inp
}

at(rule, age) := decide({"rule": rule, "age_days": age, "legal_hold": false, "withdrawn": false, "account_deleted": false})

# Web: "Payment and invoice records: retained for 5 years to meet accounting
# and tax obligations." Five years is 1827 days at most (two leap days): kept
# through the fifth anniversary, deleted after.
test_payments_kept_five_years_for_accounting_and_tax if {
	d := at("payments", 1826)
	d.action == "keep"
	d.rule == "within_retention_period"
	d.basis == "legal_obligation"
	d.keep_days == 1827
	contains(d.citation, "Payment and invoice records: retained for 5 years to meet accounting and tax obligations.")
}

test_payments_deleted_after_five_years if {
	d := at("payments", 2000)
	d.action == "delete"
	d.rule == "retention_period_elapsed"
	d.schedule == "payments"
	contains(d.reason, "5 years")
}

# Payments are kept for the legal obligation even after the account goes.
test_payments_outlive_account_deletion if {
	d := decide({"rule": "payments", "age_days": 10, "account_deleted": true})
	d.action == "keep"
}

# Web: "Credit transaction logs: retained for 2 years for dispute resolution
# and reconciliation."
test_credit_logs_two_years_for_disputes if {
	at("credit_logs", 730).action == "keep"
	d := at("credit_logs", 731)
	d.action == "delete"
	d.keep_days == 731
	contains(d.citation, "Credit transaction logs: retained for 2 years for dispute resolution and reconciliation.")
}

# Web: "AI jobs and generated content: retained for 30 days by default and can
# be deleted anytime from your creation history."
test_ai_content_thirty_days if {
	at("ai_content", 29).action == "keep"
	d := at("ai_content", 30)
	d.action == "delete"
	d.keep_days == 30
	contains(d.citation, "AI jobs and generated content: retained for 30 days by default")
}

# Web: "Logs and analytics: retained up to 180 days before being aggregated or
# anonymized." Anonymized, not deleted, at 180 days.
test_logs_and_analytics_anonymized_at_180_days if {
	at("logs_analytics", 179).action == "keep"
	d := at("logs_analytics", 180)
	d.action == "anonymize"
	d.keep_days == 180
	contains(d.citation, "Logs and analytics: retained up to 180 days before being aggregated or anonymized.")
}

# Security logs fall under the web's "Logs" sentence; the bot names no period,
# so the same 180 days is the operator's choice and says so.
test_security_logs_anonymized_at_180_days if {
	d := at("security_logs", 200)
	d.action == "anonymize"
	contains(d.citation, "Operator's choice")
}

# Web: "Marketing preferences: kept until you unsubscribe or withdraw
# consent." No age limit while consent stands; on withdrawal the preference
# is reduced to a pseudonymous opt-out record (anonymize).
test_marketing_preferences_kept_until_withdrawal if {
	d := at("marketing_preferences", 5000)
	d.action == "keep"
	d.rule == "retained_until_event"
	d.keep_days == null
	contains(d.reason, "unsubscribes or withdraws consent")
}

test_marketing_preferences_end_on_withdrawal if {
	d := decide({"rule": "marketing_preferences", "age_days": 3, "withdrawn": true})
	d.action == "anonymize"
	d.rule == "retention_event_reached"
	contains(d.reason, "within 30 days")
	contains(d.citation, "Marketing preferences: kept until you unsubscribe or withdraw consent.")
}

# Web: "When we receive a deletion request and have no other legal
# obligations, we erase or anonymize data within 30 days." Bot §4.1/§4.3:
# account data is kept while the account is active and removed within 30
# days of a deletion request.
test_account_data_kept_while_active_deleted_with_account if {
	at("account", 4000).action == "keep"
	d := decide({"rule": "account", "age_days": 4000, "account_deleted": true})
	d.action == "delete"
	contains(d.reason, "the account was deleted")
	contains(d.reason, "within 30 days")
	contains(d.citation, "If you request account deletion, we will remove your personal information within 30 days")
}

test_deletion_request_completed_within_30_days if {
	data.steward.retention.deletion_request_days == 30
	contains(data.steward.retention.deletion_request_citation, "we erase or anonymize data within 30 days")
	contains(data.steward.retention.deletion_request_citation, "we will remove your personal information within 30 days")
}

# Bot §4.2: "Prompts and Parameters: Stored indefinitely for service
# improvement and dispute resolution." Kept with no age limit; §4.3 removes
# the personal link when the account is deleted (anonymize).
test_bot_prompts_stored_indefinitely_while_account_exists if {
	d := at("bot_generation_history", 100000)
	d.action == "keep"
	d.keep_days == null
	contains(d.citation, "Prompts and Parameters: Stored indefinitely for service improvement and dispute resolution.")
}

test_bot_prompts_anonymized_on_account_deletion if {
	d := decide({"rule": "bot_generation_history", "age_days": 1, "account_deleted": true})
	d.action == "anonymize"
}

# Bot §4.2: "Generated Images: Temporary URLs from Wavespeed expire according
# to their retention policy (typically 24-72 hours)."
test_bot_generated_image_urls_72_hours if {
	at("provider_temporary", 2).action == "keep"
	at("provider_temporary", 3).action == "delete"
	contains(at("provider_temporary", 3).citation, "typically 24-72 hours")
}

# Bot §9: "Session Management: Redis storage for bot state and temporary
# data." No period named: 7 days idle or account deletion (operator's
# choice, stated).
test_bot_state_temporary if {
	at("bot_state", 6).action == "keep"
	at("bot_state", 7).action == "delete"
	decide({"rule": "bot_state", "age_days": 0, "account_deleted": true}).action == "delete"
	contains(at("bot_state", 1).citation, "Operator's choice")
}

# Bot §1.2: "IP addresses (temporary, for rate limiting and security)". The
# policy names no period; the citation says 7 days is the operator's choice.
test_bot_ip_addresses_temporary if {
	at("rate_limit", 6).action == "keep"
	d := at("rate_limit", 7)
	d.action == "delete"
	contains(d.citation, "IP addresses (temporary, for rate limiting and security)")
	contains(d.citation, "Operator's choice")
}

# Support conversations: no period in either policy; 2 years or account
# deletion, whichever comes first (operator's choice, stated).
test_support_two_years_or_account_deletion if {
	contains(at("support", 100).reason, "or until the account is deleted if sooner")
	at("support", 730).action == "delete"
	decide({"rule": "support", "age_days": 1, "account_deleted": true}).action == "delete"
	contains(at("support", 1).citation, "Operator's choice")
}

# A legal hold always keeps, whatever the rule and age, and says so.
test_legal_hold_always_keeps if {
	every rule in object.keys(data.steward.retention.rules) {
		d := decide({"rule": rule, "age_days": 100000, "legal_hold": true, "withdrawn": true, "account_deleted": true})
		d.action == "keep"
		d.rule == "legal_hold"
		contains(d.reason, "legal hold")
	}
}

test_unknown_rule_undefined if {
	not retention.decision with input as {"rule": "forever", "age_days": 1}
}

# Every rule cites the privacy-policy sentence it implements, and rules
# without a period in the seed say the period is the operator's choice.
test_every_rule_cites_its_sentence if {
	every _, r in data.steward.retention.rules {
		contains(r.citation, "policy")
		contains(r.citation, "\"")
		r.action in {"delete", "anonymize"}
		r.product in {"web", "bot", "both"}
		r.basis in {"contract", "legal_obligation", "legitimate_interests", "consent"}
		r.until in {null, "account_deletion", "withdrawal"}
		r.rectification in {"applies", "records", "amend"}
		is_string(r.period) == is_number(r.days)
	}
}

# Steward's own consent ledger has a period in the schedule (issue 19: "its
# retention is in the schedule"): an event's user agent and IP hash are
# cleared after it, under the schedule's citation of Art. 7(1).
test_control_plane_consent_ledger_details_have_a_period if {
	cp := data.steward.retention.control_plane
	is_number(cp.consent_detail_days)
	cp.consent_detail_days > 0
	contains(cp.citation, "Art. 7(1)")
	contains(cp.note, "user agent and IP hash")
}
