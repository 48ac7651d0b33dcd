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

# Analytics is on legitimate interests with an opt-out (web: "Improve
# experience, analyze usage ... | Legitimate interests (you can opt out of
# analytics in settings)"): allowed without a record where the law is opt-out.
test_california_opt_out_default if {
	d := decide({"purpose": "analytics", "jurisdiction": "US-CA", "gpc": false})
	d.allow
	d.reason == "opt_out_default"
	d.legal_basis == "legitimate_interests"
}

# Web: "Marketing emails, Crisp outreach, non-essential cookies | Consent";
# bot 2.3: "Provide broadcast messages (if you've consented to receive
# them)". Consent is the legal basis everywhere: no record, no marketing and
# no broadcast, in opt-out regimes too (issue 19).
test_consent_purposes_need_a_record_everywhere if {
	every j in ["US", "US-CA", "US-TX", "DE", "GB", "BR", "JP"] {
		m := decide({"purpose": "marketing", "jurisdiction": j, "product": "web"})
		not m.allow
		m.reason == "no_consent"
		m.rule == "consent_required_everywhere"
		b := decide({"purpose": "broadcast", "jurisdiction": j, "product": "bot"})
		not b.allow
		b.reason == "no_consent"
		f := decide({"purpose": "functional", "jurisdiction": j, "product": "web"})
		not f.allow
	}
	decide({"purpose": "marketing", "jurisdiction": "US", "product": "web", "stored": {"state": "granted", "source": "web_banner", "notice_major": 2, "gpc": false}}).allow
	decide({"purpose": "broadcast", "jurisdiction": "US", "product": "bot", "stored": {"state": "granted", "source": "bot", "notice_major": 1, "gpc": false}}).allow
}

# Every purpose whose legal basis is consent is refused without a record in
# an opt-out regime: no consent purpose can fall through to the opt-out
# default.
test_no_consent_purpose_has_an_opt_out_default if {
	cases := {[name, prod] | some name, p in data.steward.purposes; p.legal_basis == "consent"; not p.essential; some prod in p.products}
	count(cases) >= 5
	every c in cases {
		not decide({"purpose": c[0], "jurisdiction": "US", "product": c[1]}).allow
	}
}

# Web (Data sharing and processors): "AI execution: default routing to our
# selected AI model providers; we do not call other third-party models
# without your consent." Explicit consent, in every regime.
test_third_party_models_need_explicit_consent if {
	every j in ["US", "US-CA", "DE", "JP"] {
		d := decide({"purpose": "third_party_models", "jurisdiction": j, "product": "web"})
		not d.allow
		d.reason == "explicit_consent_required"
		d.legal_basis == "consent"
	}
	decide({"purpose": "third_party_models", "jurisdiction": "US-CA", "product": "web", "stored": {"state": "granted", "source": "web_settings", "notice_major": 2, "gpc": false}}).allow
	not decide({"purpose": "third_party_models", "jurisdiction": "DE", "product": "web", "stored": {"state": "withdrawn", "source": "web_settings", "notice_major": 2, "gpc": false}}).allow
}

# A purpose the product does not have is never allowed (the API refuses the
# question itself with 400): marketing is the web's, broadcasts the bot's.
test_purpose_not_offered_by_product if {
	m := decide({"purpose": "marketing", "jurisdiction": "US-CA", "product": "bot", "stored": {"state": "granted", "source": "bot", "notice_major": 1, "gpc": false}})
	not m.allow
	m.reason == "not_offered"
	m.rule == "purpose_not_offered"
	b := decide({"purpose": "broadcast", "jurisdiction": "DE", "product": "web"})
	not b.allow
	b.reason == "not_offered"
}

# GDPR Art. 18(2): restricted data is, with the exception of storage, not
# processed; web: "Restrict or object to processing"; bot 6.4 "Right to
# Restriction: Limit how we use your data." A stored grant does not lift it;
# the essential service stays (storage and what the person asks for).
test_restriction_refuses_every_purpose_but_essential if {
	grant := {"state": "granted", "source": "web_settings", "notice_major": 2, "gpc": false}
	every p in ["marketing", "analytics", "functional", "model_training", "third_party_models"] {
		d := decide({"purpose": p, "jurisdiction": "US-CA", "product": "web", "restricted": true, "stored": grant})
		not d.allow
		d.reason == "restricted"
		d.rule == "processing_restricted"
	}
	decide({"purpose": "essential", "jurisdiction": "DE", "product": "web", "restricted": true}).allow
	decide({"purpose": "marketing", "jurisdiction": "DE", "product": "web", "restricted": false, "stored": grant}).allow
}

# Web (Minors): "Our services target users aged 16 or older"; bot 7: "not
# directed to individuals under the age of 13". A known age under the
# product's minimum refuses every consent-based purpose, granted or not.
test_minimum_age_refuses_every_consent_purpose if {
	cases := {[name, prod] | some name, p in data.steward.purposes; p.legal_basis == "consent"; not p.essential; some prod in p.products}
	count(cases) >= 5
	every c in cases {
		min := data.steward.products[c[1]].minimum_age
		d := decide({"purpose": c[0], "jurisdiction": "US-CA", "product": c[1], "age": min - 1, "stored": {"state": "granted", "source": "api", "notice_major": 9, "gpc": false}})
		not d.allow
		d.reason == "below_minimum_age"
	}
}

# An unknown age is not a minor's: the rule needs the age to be known.
test_unknown_age_is_not_refused if {
	decide({"purpose": "broadcast", "jurisdiction": "DE", "product": "bot", "stored": {"state": "granted", "source": "bot", "notice_major": 1, "gpc": false}}).allow
}

test_california_gpc_denies_marketing if {
	d := decide({"purpose": "marketing", "jurisdiction": "US-CA", "gpc": true})
	not d.allow
	d.reason == "gpc_opt_out"
}

# GPC is an opt-out of sale and sharing; analytics on legitimate interests
# is not that, so the signal leaves it alone.
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
	grant := {"state": "granted", "source": "bot", "notice_major": 2, "gpc": false}
	not decide({"purpose": "marketing", "jurisdiction": "US-CA", "product": "web", "age": 14, "stored": grant}).allow
	decide({"purpose": "broadcast", "jurisdiction": "US-CA", "product": "bot", "age": 14, "stored": grant}).allow
	d := decide({"purpose": "broadcast", "jurisdiction": "US-CA", "product": "bot", "age": 12, "stored": grant})
	not d.allow
	d.reason == "below_minimum_age"
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
