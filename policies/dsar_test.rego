package steward.dsar_test

import data.steward.dsar

decide(request_type, regime, f) := d if {
	d := dsar.decision with input as {"request_type": request_type, "regime": regime, "field": f}
}

field(dataset, name, category, retention, purpose) := {
	"system": "app_db", "dataset": dataset, "field": name, "category": category,
	"retention": retention, "purpose": purpose, "identity": "account_id",
}

email := field("users", "email", "user.contact.email", "account", "essential")

display_name := field("users", "name", "user.name", "account", "essential")

language := field("users", "locale", "user.preferences.language", "account", "essential")

password_hash := field("users", "password_hash", "user.authorization.credentials", "account", "essential")

prompt := field("jobs", "prompt", "user.content.prompt", "ai_content", "essential")

log_ip := field("request_logs", "ip", "system.log.ip_address", "logs_analytics", "")

payment_amount := field("payments", "amount", "user.financial.payment", "payments", "payments")

payment_email := field("payments", "receipt_email", "user.contact.email", "payments", "payments")

payment_customer := field("payments", "stripe_customer_id", "user.unique_id", "payments", "payments")

payment_ip := field("payments", "checkout_ip", "user.device.ip_address", "payments", "payments")

billing_name := field("payments", "billing_name", "user.name", "payments", "payments")

credit_amount := field("credit_ledger", "delta", "user.financial.credits", "credit_logs", "payments")

credit_user := field("credit_ledger", "user_id", "user.unique_id", "credit_logs", "payments")

credit_note := field("credit_ledger", "note", "user.content.note", "credit_logs", "payments")

newsletter_email := field("newsletter", "email", "user.contact.email", "marketing_preferences", "marketing")

newsletter_state := field("newsletter", "subscribed", "user.preferences.marketing", "marketing_preferences", "marketing")

analytics_event := field("events", "visitor_id", "user.unique_id", "logs_analytics", "analytics")

# A field processed for a consent purpose that is not direct marketing
# (functional cookies: web "non-essential cookies | Consent"). Analytics is
# on legitimate interests ("Legitimate interests (you can opt out of
# analytics in settings)").
consent_event := field("events", "visitor_id", "user.unique_id", "logs_analytics", "functional")

security_event := field("security_log", "ip", "user.device.ip_address", "security_logs", "")

card := field("charges", "payment_method_details.card", "user.financial.payment_method", "payments", "payments")

regimes := ["gdpr", "uk_gdpr", "ccpa", "lgpd", "us_state", "vcdpa", "cpa", "default", "us"]

# GDPR Art. 15 / CCPA §1798.110 / LGPD Art. 18 II / web: "Access, correct, or
# delete personal data." Every personal field the data map reaches is
# disclosed, system logs included.
test_access_includes_every_personal_field if {
	every regime in regimes {
		every f in [email, display_name, language, prompt, log_ip, payment_amount, newsletter_state, analytics_event] {
			d := decide("access", regime, f)
			d.action == "include"
			d.rule == "access_disclosed"
			d.citation != ""
		}
	}
}

test_access_cites_the_regime if {
	decide("access", "gdpr", email).citation == "GDPR Art. 15 (right of access)"
	contains(decide("access", "ccpa", email).citation, "§1798.110")
	contains(decide("access", "lgpd", email).citation, "Art. 18 II")
	contains(decide("access", "default", email).citation, "Access, correct, or delete personal data.")
	decide("access", "us", email).citation == decide("access", "default", email).citation
}

# GDPR Art. 20 and bot §6.4: "Right to Data Portability: Receive your data in
# a structured, machine-readable format."
test_export_is_portable if {
	d := decide("export", "gdpr", prompt)
	d.action == "include"
	d.rule == "export_portable"
	contains(d.basis, "machine-readable")
	contains(decide("export", "default", prompt).citation, "Receive your data in a structured, machine-readable format.")
}

# A password hash is a security secret, not information about the person:
# masked with a fixed string in every regime, saying what kind of data is
# held (GDPR Art. 32; Cal. Code Regs. tit. 11 §7024(d)).
test_credentials_masked_with_fixed_string_in_export if {
	every regime in regimes {
		every rt in ["access", "export"] {
			d := decide(rt, regime, password_hash)
			d.action == "mask"
			d.strategy == "fixed"
			d.rule == "withheld_credential"
			startswith(d.value, "[withheld: ")
			contains(d.basis, "security secret")
			contains(d.citation, "§7024(d)")
		}
	}
}

# Cal. Code Regs. tit. 11 §7024(d): financial account numbers are never
# disclosed to a Californian; the GDPR has no such carve-out.
test_ccpa_withholds_financial_account_numbers if {
	d := decide("access", "ccpa", card)
	d.action == "mask"
	d.rule == "withheld_sensitive_identifier"
	contains(d.citation, "§7024(d)")
	decide("access", "gdpr", card).action == "include"
}

# The payment card details on a charge are not needed for accounting: masked
# on erasure while the charge itself is retained.
test_erasure_masks_card_details if {
	d := decide("erasure", "gdpr", card)
	d.action == "mask"
	d.strategy == "null"
}

# GDPR Art. 17(1); web: "When we receive a deletion request and have no other
# legal obligations, we erase or anonymize data within 30 days."
test_erasure_deletes_by_default if {
	every regime in regimes {
		every f in [email, display_name, language, password_hash, prompt, log_ip, analytics_event] {
			d := decide("erasure", regime, f)
			d.action == "delete"
			d.rule == "erasure_delete"
			d.until == ""
			contains(d.basis, "within 30 days")
			contains(d.citation, "we erase or anonymize data within 30 days")
		}
	}
	startswith(decide("erasure", "gdpr", email).citation, "GDPR Art. 17(1)")
}

test_erasure_of_unmapped_retention_deletes if {
	decide("erasure", "gdpr", field("x", "y", "user.contact.email", "no_such_rule", "")).action == "delete"
}

# The web promise admits only legal obligations as an exception, so security
# logs are erased too (bot §4.3 would allow keeping them; see retention.json).
test_erasure_deletes_security_logs if {
	decide("erasure", "gdpr", security_event).action == "delete"
}

# Web: "Payment and invoice records: retained for 5 years to meet accounting
# and tax obligations." GDPR Art. 17(3)(b), CCPA §1798.105(d)(8), LGPD Art.
# 16 I: the fields accounting needs are retained, with the basis and until.
test_erasure_retains_payment_records_for_accounting if {
	every f in [payment_amount, billing_name] {
		d := decide("erasure", "gdpr", f)
		d.action == "retain"
		d.rule == "erasure_exception_legal_obligation"
		d.until == "5 years from the record date"
		contains(d.basis, "accounting and tax obligations")
		startswith(d.citation, "GDPR Art. 17(3)(b)")
		contains(d.citation, "Payment and invoice records: retained for 5 years to meet accounting and tax obligations.")
	}
	startswith(decide("erasure", "ccpa", payment_amount).citation, "Cal. Civ. Code §1798.105(d)(8)")
	startswith(decide("erasure", "lgpd", payment_amount).citation, "LGPD Art. 16 I")
	startswith(decide("erasure", "vcdpa", payment_amount).citation, "Va. Code §59.1-582(A)")
	startswith(decide("erasure", "cpa", payment_amount).citation, "C.R.S. §6-1-1304(3)(a)")
	contains(decide("erasure", "default", payment_amount).citation, "have no other legal obligations")
}

# ...and every field of the record that accounting does not need is masked,
# the decision saying so: identifiers by keyed hash (a later audit or dispute
# can still be matched), everything else nulled.
test_erasure_masks_payment_fields_not_needed_for_accounting if {
	e := decide("erasure", "gdpr", payment_email)
	e.action == "mask"
	e.strategy == "null"
	e.rule == "erasure_exception_masked"
	e.until == "5 years from the record date"
	contains(e.basis, "not needed for that, so it is masked (null)")
	decide("erasure", "gdpr", payment_ip).strategy == "null"
	c := decide("erasure", "ccpa", payment_customer)
	c.action == "mask"
	c.strategy == "keyed_hash"
	startswith(c.citation, "Cal. Civ. Code §1798.105(d)(8)")
}

# Web: "Credit transaction logs: retained for 2 years for dispute resolution
# and reconciliation." GDPR Art. 17(3)(e): kept for legal claims; the user id
# is pseudonymized and free text dropped.
test_erasure_retains_credit_logs_for_disputes if {
	d := decide("erasure", "gdpr", credit_amount)
	d.action == "retain"
	d.rule == "erasure_exception_legal_claims"
	d.until == "2 years from the record date"
	startswith(d.citation, "GDPR Art. 17(3)(e)")
	contains(d.citation, "Credit transaction logs: retained for 2 years for dispute resolution and reconciliation.")
	u := decide("erasure", "gdpr", credit_user)
	u.action == "mask"
	u.strategy == "keyed_hash"
	u.until == "2 years from the record date"
	decide("erasure", "gdpr", credit_note).strategy == "null"
	contains(decide("erasure", "ccpa", credit_amount).citation, "§1798.145(a)")
}

# Web: "Marketing preferences: kept until you unsubscribe or withdraw
# consent." After erasure the opt-out itself survives, pseudonymized, so the
# person is never mailed again and consent can be proved (GDPR Art. 7(1),
# Art. 21(3); CAN-SPAM 15 U.S.C. §7704(a)(4)).
test_erasure_keeps_opt_out_record_pseudonymized if {
	e := decide("erasure", "gdpr", newsletter_email)
	e.action == "mask"
	e.strategy == "keyed_hash"
	contains(e.basis, "pseudonymized")
	contains(e.basis, "not messaged again")
	contains(e.citation, "Art. 7(1)")
	s := decide("erasure", "gdpr", newsletter_state)
	s.action == "retain"
	s.rule == "erasure_exception_opt_out_record"
	s.until == "the opt-out no longer needs to be honoured"
	contains(decide("erasure", "ccpa", newsletter_email).citation, "§7704(a)(4)")
}

# GDPR Art. 16, CCPA §1798.106, bot §6.1: "To update your information or
# correct inaccuracies, contact our support." Contact details, names and
# preferences can be corrected.
test_rectification_applies_to_contact_names_preferences if {
	every regime in regimes {
		every f in [email, display_name, language, newsletter_email] {
			d := decide("rectification", regime, f)
			d.action == "rectify"
			d.rule == "rectification_applies"
		}
	}
	contains(decide("rectification", "default", email).citation, "To update your information or correct inaccuracies, contact our support.")
}

# Billing names and addresses are corrected going forward; an issued invoice
# is amended by a document referring to it (Directive 2006/112/EC Art. 219),
# never rewritten.
test_rectification_amends_billing_records if {
	b := decide("rectification", "gdpr", billing_name)
	b.action == "rectify"
	b.rule == "rectification_amend_record"
	contains(b.basis, "not rewritten")
	contains(b.citation, "Art. 219")
	decide("rectification", "gdpr", payment_amount).rule == "rectification_not_applicable"
}

# ...not to system logs or other records of what happened.
test_rectification_not_applied_to_logs_or_records if {
	l := decide("rectification", "gdpr", log_ip)
	l.action == "retain"
	l.rule == "rectification_record_of_events"
	c := decide("rectification", "gdpr", credit_amount)
	c.action == "retain"
	c.rule == "rectification_record_of_events"
	v := decide("rectification", "gdpr", field("verifications", "identifier", "user.contact.email", "security_logs", "provide_service"))
	v.rule == "rectification_record_of_events"
	s := decide("rectification", "gdpr", field("x", "host", "system.operations", "", ""))
	s.rule == "rectification_system_record"
	p := decide("rectification", "gdpr", prompt)
	p.action == "retain"
	p.rule == "rectification_not_applicable"
}

# GDPR Art. 18 / LGPD Art. 18 IV (blocking) / web: "Restrict or object to
# processing based on legitimate interests." Processing is marked restricted.
test_restriction_marks_processing_restricted if {
	every regime in ["gdpr", "uk_gdpr", "lgpd", "default", "us"] {
		every f in [email, prompt, payment_amount] {
			d := decide("restriction", regime, f)
			d.action == "retain"
			d.restricted == true
			d.rule == "processing_restricted"
			d.until == "the restriction is lifted"
		}
	}
	startswith(decide("restriction", "gdpr", email).citation, "GDPR Art. 18")
}

# The CCPA and the Virginia and Colorado laws have no right to restriction:
# processing continues and the reply says so.
test_no_restriction_right_in_us_laws if {
	every regime in ["ccpa", "vcdpa", "cpa", "us_state"] {
		d := decide("restriction", regime, email)
		d.action == "retain"
		d.restricted == false
		d.rule == "restriction_not_a_right"
		contains(d.basis, "grants no right to restrict processing")
	}
}

# GDPR Art. 21(2)-(3), web: "Opt out of marketing communications.", bot
# §6.3 broadcast opt-out: direct marketing stops on objection, everywhere.
test_objection_stops_direct_marketing_everywhere if {
	every regime in regimes {
		d := decide("objection", regime, newsletter_email)
		d.restricted == true
		d.rule == "objection_direct_marketing"
	}
	startswith(decide("objection", "gdpr", newsletter_email).citation, "GDPR Art. 21(2)-(3)")
	contains(decide("objection", "default", newsletter_email).citation, "Opt out of marketing communications.")
}

# GDPR Art. 21(1): processing on legitimate interests is restricted pending
# compelling grounds; Art. 7(3): objecting to consent-based processing
# withdraws the consent; contract and legal-obligation processing is not
# reached.
test_objection_by_legal_basis if {
	li := decide("objection", "gdpr", log_ip)
	li.restricted == true
	li.rule == "objection_legitimate_interests"
	c := decide("objection", "gdpr", consent_event)
	c.restricted == true
	c.rule == "objection_consent_withdrawn"
	startswith(c.citation, "GDPR Art. 7(3)")
	k := decide("objection", "gdpr", payment_amount)
	k.restricted == false
	k.rule == "objection_not_applicable_basis"
	contains(k.basis, "a legal obligation and contractual necessity")
}

# The data map's processing purposes carry the legal basis the policy states:
# "Prevent abuse, enforce quotas, secure uploads, investigate incidents |
# Legitimate interests"; "Provide core features ... | Contractual necessity";
# bot "Provide broadcast messages (if you've consented to receive them)".
test_objection_reads_data_map_purposes if {
	s := decide("objection", "gdpr", field("risk_flags", "reason", "user.security.risk", "security_logs", "security"))
	s.rule == "objection_legitimate_interests"
	p := decide("objection", "gdpr", field("users", "name", "user.name", "account", "provide_service"))
	p.rule == "objection_not_applicable_basis"
	contains(p.basis, "contractual necessity")
	b := decide("objection", "gdpr", field("tg_broadcast_optouts", "tg_user_id", "user.unique_id", "marketing_preferences", "bot_broadcast"))
	b.rule == "objection_direct_marketing"
	b.restricted
}

# US laws give an opt-out of sale, sharing and targeted advertising, not a
# general objection; web: "We do not sell personal data."
test_us_objection_is_an_opt_out_only if {
	every regime in ["ccpa", "vcdpa", "cpa", "us_state"] {
		d := decide("objection", regime, security_event)
		d.restricted == false
		d.rule == "objection_opt_out_only"
		contains(d.citation, "We do not sell personal data.")
	}
}

# Web: "Improve experience, analyze usage, run testing programs | Legitimate
# interests (you can opt out of analytics in settings)": promised to
# everyone, so an objection stops analytics under US laws too.
test_analytics_opt_out_promised_everywhere if {
	every regime in ["ccpa", "vcdpa", "cpa", "us_state"] {
		d := decide("objection", regime, log_ip)
		d.restricted == true
		d.rule == "objection_promised_opt_out"
		contains(d.citation, "you can opt out of analytics in settings")
	}
}

# Web: "You may withdraw consent at any time; processing before withdrawal
# remains lawful." Consent-based processing stops on objection everywhere.
test_consent_withdrawn_everywhere if {
	every regime in regimes {
		d := decide("objection", regime, consent_event)
		d.restricted == true
		d.rule == "objection_consent_withdrawn"
		contains(d.citation, "You may withdraw consent at any time")
	}
}

test_unknown_request_type_undefined if {
	not dsar.decision with input as {"request_type": "telepathy", "regime": "gdpr", "field": email}
	not dsar.decision with input as {"request_type": "access", "regime": "gdpr"}
}

# Every request type has an explained answer for every regime and field.
test_every_decision_is_explained if {
	every regime in regimes {
		every rt in dsar.request_types {
			every f in [email, password_hash, log_ip, payment_customer, newsletter_state, security_event] {
				d := decide(rt, regime, f)
				d.action in {"include", "delete", "mask", "retain", "rectify"}
				d.strategy in {"", "null", "fixed", "keyed_hash", "pseudonym", "truncate_date"}
				d.rule != ""
				d.basis != ""
				d.citation != ""
			}
		}
	}
}

# The reference data map: erasing any field of any dataset gets an explained
# answer, which never keeps a field without saying until when (the other
# request types are checked on representative fields above).
test_every_data_map_field_decided if {
	count(data_map_fields) > 0
	count(badly_decided) == 0
}

data_map_fields contains [sprintf("%s.%s.%s", [sn, dn, fname]), {
	"system": sn, "dataset": dn, "field": fname, "category": f.category,
	"retention": ds.retention, "purpose": ds.purpose, "identity": "",
}] if {
	some sn, s in data.steward.datamap.systems
	some dn, ds in s.datasets
	some fname, f in ds.fields
}

badly_decided contains name if {
	some [name, f] in data_map_fields
	not well_erased(f)
}

well_erased(f) if {
	d := decide("erasure", "gdpr", f)
	d.rule != ""
	d.citation != ""
	says_until(d)
}

says_until(d) if d.action == "delete"

says_until(d) if d.until != ""

test_workflow_approval_for_irreversible_or_disclosing_requests if {
	every t in {"erasure", "export", "rectification"} {
		dsar.workflow.approval_required with input as {"request_type": t, "regime": "gdpr"}
	}
	every t in {"access", "restriction", "objection"} {
		not dsar.workflow.approval_required with input as {"request_type": t, "regime": "gdpr"}
	}
	not dsar.workflow with input as {"request_type": "nonsense", "regime": "gdpr"}
}

# CCPA Regs. §7063(a): an authorized agent's request waits for staff to
# check the signed authorization, even where the person's own would not.
test_workflow_agent_requests_wait_for_review if {
	every t in ["access", "export", "erasure", "rectification", "restriction", "objection"] {
		w := dsar.workflow with input as {"request_type": t, "regime": "ccpa", "channel": "agent"}
		w.approval_required
		w.rule == "approval_agent"
	}
	not dsar.workflow.approval_required with input as {"request_type": "access", "regime": "ccpa", "channel": "web"}
	not dsar.workflow with input as {"request_type": "nonsense", "regime": "ccpa", "channel": "agent"}
}
