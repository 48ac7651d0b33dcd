package steward.deadlines_test

import data.steward.deadlines

decide(regime, request_type, jurisdiction) := d if {
	d := deadlines.decision with input as {"regime": regime, "request_type": request_type, "jurisdiction": jurisdiction}
}

# GDPR Art. 12(3): "within one month of receipt of the request. That period
# may be extended by two further months where necessary ... The controller
# shall inform the data subject of any such extension within one month of
# receipt of the request". Art. 12(6): reasonable doubts about identity.
test_gdpr_one_month_extendable_by_two if {
	every rt in deadlines.request_types {
		d := decide("gdpr", rt, "DE")
		d.regime == "gdpr"
		d.respond_within == {"amount": 1, "unit": "months"}
		d.acknowledge_within == null
		d.extension == {"amount": 2, "unit": "months", "notice_within": {"amount": 1, "unit": "months"}}
		d.verification == "reasonable"
		startswith(d.citation, "GDPR Art. 12(3)")
		startswith(d.verification_citation, "GDPR Art. 12(6)")
	}
}

# UK GDPR Art. 12(3): the same month, extendable by two.
test_uk_gdpr_one_month_extendable_by_two if {
	d := decide("uk_gdpr", "access", "GB")
	d.respond_within == {"amount": 1, "unit": "months"}
	d.extension.amount == 2
	startswith(d.citation, "UK GDPR Art. 12(3)")
}

# Cal. Code Regs. tit. 11 §7021: confirm within 10 business days, respond
# within 45 calendar days, up to 45 more with notice and explanation.
test_ccpa_ten_business_days_then_45_extendable_by_45 if {
	every rt in ["access", "export", "erasure", "rectification"] {
		d := decide("ccpa", rt, "US-CA")
		d.regime == "ccpa"
		d.acknowledge_within == {"amount": 10, "unit": "business_days"}
		d.respond_within == {"amount": 45, "unit": "days"}
		d.extension == {"amount": 45, "unit": "days", "notice_within": {"amount": 45, "unit": "days"}}
		contains(d.citation, "§7021")
	}
}

# Cal. Code Regs. tit. 11 §7062: a reasonable degree of certainty for
# deletion, a reasonably high degree for specific pieces of information.
test_ccpa_verification_levels if {
	decide("ccpa", "access", "US-CA").verification == "high"
	decide("ccpa", "export", "US-CA").verification == "high"
	contains(decide("ccpa", "access", "US-CA").verification_citation, "§7062(c)")
	decide("ccpa", "erasure", "US-CA").verification == "reasonable"
	contains(decide("ccpa", "erasure", "US-CA").verification_citation, "§7062(d)")
	decide("ccpa", "rectification", "US-CA").verification == "reasonable"
}

# Cal. Code Regs. tit. 11 §7026: an opt-out is honoured within 15 business
# days and need not be verified.
test_ccpa_opt_out_15_business_days_unverified if {
	d := decide("ccpa", "objection", "US-CA")
	d.respond_within == {"amount": 15, "unit": "business_days"}
	d.extension == null
	d.verification == "none"
	d.rule == "ccpa_7026_opt_out_15_business_days"
}

# The CCPA has no restriction right: the reply saying so is due under the
# customer's 30-day promise.
test_ccpa_restriction_answered_under_the_promise if {
	d := decide("ccpa", "restriction", "US-CA")
	d.respond_within == {"amount": 30, "unit": "days"}
	d.rule == "ccpa_no_restriction_right"
}

# LGPD Art. 19: simplified confirmation immediately, complete statement
# within 15 days.
test_lgpd_15_days if {
	every rt in deadlines.request_types {
		d := decide("lgpd", rt, "BR")
		d.respond_within == {"amount": 15, "unit": "days"}
		d.extension == null
		contains(d.citation, "Art. 19")
	}
	decide("lgpd", "access", "BR").acknowledge_within == {"amount": 0, "unit": "days"}
	decide("lgpd", "erasure", "BR").acknowledge_within == null
}

# Va. Code §59.1-577(B) and C.R.S. §6-1-1306(2): 45 days, extendable once by
# 45. Virginia and Colorado map to their own law whatever consent regime the
# caller resolved (data/deadlines.json jurisdiction_regimes).
test_virginia_and_colorado_45_days_extendable if {
	va := decide("us_state", "erasure", "US-VA")
	va.regime == "vcdpa"
	va.respond_within == {"amount": 45, "unit": "days"}
	va.extension.amount == 45
	contains(va.citation, "§59.1-577(B)")
	co := decide("us_state", "access", "us-co")
	co.regime == "cpa"
	co.extension.amount == 45
	contains(co.citation, "§6-1-1306(2)")
}

test_jurisdiction_overrides_passed_regime if {
	decide("gdpr", "erasure", "US-VA").regime == "vcdpa"
}

# Anything else: web "Contact support@nano-bananapro.com and we will respond
# within 30 days (extensions will be explained if needed)." and, for
# erasure, "we erase or anonymize data within 30 days".
test_default_is_the_customers_30_day_promise if {
	every regime in ["us_state", "us", "default", "atlantis"] {
		d := decide(regime, "access", "")
		d.regime == "default"
		d.respond_within == {"amount": 30, "unit": "days"}
		d.extension == null
		contains(d.citation, "we will respond within 30 days")
	}
	e := decide("default", "erasure", "JP")
	e.rule == "customer_promise_erasure_30_days"
	contains(e.citation, "we erase or anonymize data within 30 days")
	contains(e.verification_citation, "We will verify identity (challenge login, recent invoice, signed instruction, etc.).")
}

# The promises bind under every law: erasure within 30 days and no
# extension past it; other requests within 30 days, extensions explained.
test_promises_bind_every_regime if {
	every regime in ["gdpr", "uk_gdpr", "ccpa", "lgpd", "default"] {
		e := decide(regime, "erasure", "")
		e.promised_within.amount == 30
		e.promised_within.unit == "days"
		e.promised_within.extendable == false
		contains(e.promised_within.citation, "we erase or anonymize data within 30 days")
		a := decide(regime, "access", "")
		a.promised_within.amount == 30
		a.promised_within.extendable == true
		contains(a.promised_within.citation, "extensions will be explained if needed")
	}
}

test_unknown_request_type_undefined if {
	not deadlines.decision with input as {"regime": "gdpr", "request_type": "telepathy", "jurisdiction": "DE"}
}

test_missing_jurisdiction_uses_regime if {
	d := deadlines.decision with input as {"regime": "ccpa", "request_type": "erasure"}
	d.regime == "ccpa"
}

# Every configured regime answers every request type with a rule, a citation
# and a known verification level.
test_every_regime_and_type_answered if {
	every regime, _ in data.steward.deadlines.regimes {
		every rt in deadlines.request_types {
			d := decide(regime, rt, "")
			d.regime == regime
			d.rule != ""
			d.citation != ""
			d.verification_citation != ""
			d.verification in {"none", "reasonable", "high", "account_login"}
			d.respond_within.unit in {"months", "days", "business_days"}
			d.respond_within.amount > 0
		}
	}
}

# Cal. Code Regs. tit. 11 §7062(c) and §7024(d): specific pieces of personal
# information (a CCPA access or export package) are looked at by staff before
# the person gets the link; elsewhere, and for requests that produce no
# package, nothing is held.
test_package_review_for_ccpa_specific_pieces if {
	decide("ccpa", "access", "US-CA").package_review == true
	decide("ccpa", "export", "US-CA").package_review == true
	contains(decide("ccpa", "access", "US-CA").package_review_reason, "§7062(c)")
	decide("ccpa", "erasure", "US-CA").package_review == false
	decide("ccpa", "objection", "US-CA").package_review == false
	decide("gdpr", "access", "DE").package_review == false
	decide("gdpr", "export", "DE").package_review == false
	decide("default", "access", "").package_review == false
}
