package steward.consent_test

import data.steward.consent

decide(inp) := d if {
	d := consent.decision with input as inp
}

test_essential_always_allowed if {
	d := decide({"purpose": "essential", "jurisdiction": "DE", "stored": {"state": "withdrawn", "source": "web_settings", "notice_major": 2, "gpc": false}})
	d.allow
	d.reason == "essential"
}

test_unknown_purpose_undefined if {
	not consent.decision with input as {"purpose": "telepathy", "jurisdiction": "DE"}
}

test_opt_in_regimes_deny_without_record if {
	every j in ["DE", "FR", "EU", "GB", "BR", "NO", "de-BY"] {
		d := decide({"purpose": "analytics", "jurisdiction": j})
		not d.allow
		d.reason == "no_consent"
	}
}

test_regime_mapping if {
	decide({"purpose": "analytics", "jurisdiction": "DE"}).regime == "gdpr"
	decide({"purpose": "analytics", "jurisdiction": "GB"}).regime == "uk_gdpr"
	decide({"purpose": "analytics", "jurisdiction": "BR"}).regime == "lgpd"
	decide({"purpose": "analytics", "jurisdiction": "US-CA"}).regime == "ccpa"
	decide({"purpose": "analytics", "jurisdiction": "US-TX"}).regime == "us_state"
	decide({"purpose": "analytics", "jurisdiction": "JP"}).regime == "default"
	decide({"purpose": "analytics"}).regime == "default"
}

test_unknown_jurisdiction_is_opt_in if {
	not decide({"purpose": "analytics", "jurisdiction": "JP"}).allow
}

test_california_opt_out_default if {
	d := decide({"purpose": "marketing", "jurisdiction": "US-CA", "gpc": false})
	d.allow
	d.reason == "opt_out_default"
}

test_california_gpc_denies_marketing if {
	d := decide({"purpose": "marketing", "jurisdiction": "US-CA", "gpc": true})
	not d.allow
	d.reason == "gpc_opt_out"
}

test_gpc_does_not_touch_analytics if {
	decide({"purpose": "analytics", "jurisdiction": "US-CA", "gpc": true}).allow
}

test_gpc_overrides_grant_made_without_it if {
	d := decide({"purpose": "marketing", "jurisdiction": "US-CA", "gpc": true, "stored": {"state": "granted", "source": "web_banner", "notice_major": 2, "gpc": false}})
	not d.allow
	d.reason == "gpc_opt_out"
}

test_grant_made_with_gpc_on_is_an_informed_opt_in if {
	d := decide({"purpose": "marketing", "jurisdiction": "US-CA", "gpc": true, "stored": {"state": "granted", "source": "web_settings", "notice_major": 2, "gpc": true}})
	d.allow
	d.reason == "granted"
}

test_stored_gpc_signal_denies if {
	d := decide({"purpose": "marketing", "jurisdiction": "US-CA", "gpc": false, "stored": {"state": "denied", "source": "gpc", "notice_major": 2, "gpc": true}})
	not d.allow
	d.reason == "gpc_opt_out"
}

test_eu_grant_allows if {
	d := decide({"purpose": "marketing", "jurisdiction": "DE", "stored": {"state": "granted", "source": "web_banner", "notice_major": 2, "gpc": false}})
	d.allow
	d.reason == "granted"
	d.rule == "stored_grant"
}

test_withdrawal_denies if {
	d := decide({"purpose": "marketing", "jurisdiction": "US-CA", "stored": {"state": "withdrawn", "source": "web_settings", "notice_major": 2, "gpc": false}})
	not d.allow
	d.reason == "withdrawn"
}

test_minor_never_gets_marketing_or_training if {
	every p in ["marketing", "model_training"] {
		d := decide({"purpose": p, "jurisdiction": "US-CA", "product": "web", "age": 15, "stored": {"state": "granted", "source": "web_banner", "notice_major": 2, "gpc": false}})
		not d.allow
		d.reason == "below_minimum_age"
	}
}

test_minimum_age_is_per_product if {
	# 14 is under the web product's 16 but over the bot's 13.
	not decide({"purpose": "marketing", "jurisdiction": "US-CA", "product": "web", "age": 14}).allow
	decide({"purpose": "marketing", "jurisdiction": "US-CA", "product": "bot", "age": 14}).allow
	not decide({"purpose": "marketing", "jurisdiction": "US-CA", "product": "bot", "age": 12}).allow
}

test_minor_still_gets_analytics_where_allowed if {
	decide({"purpose": "analytics", "jurisdiction": "US-CA", "product": "web", "age": 15}).allow
}

test_reconsent_after_major_notice_change if {
	d := decide({"purpose": "analytics", "jurisdiction": "DE", "product": "web", "stored": {"state": "granted", "source": "web_banner", "notice_major": 1, "gpc": false}})
	not d.allow
	d.reason == "reconsent_required"
}

test_minor_notice_change_keeps_consent if {
	decide({"purpose": "analytics", "jurisdiction": "DE", "product": "web", "stored": {"state": "granted", "source": "web_banner", "notice_major": 2, "gpc": false}}).allow
}

test_model_training_needs_explicit_consent_even_in_california if {
	d := decide({"purpose": "model_training", "jurisdiction": "US-CA"})
	not d.allow
	d.reason == "explicit_consent_required"
	decide({"purpose": "model_training", "jurisdiction": "US-CA", "stored": {"state": "granted", "source": "web_settings", "notice_major": 2, "gpc": false}}).allow
}
