# Data-subject requests: what happens to one field of one person's data when
# they exercise a right?
#
# Input (built by internal/dsar from the data map, one field at a time):
#   {"request_type": "erasure", "regime": "gdpr",
#    "field": {"system": "app_db", "dataset": "payments", "field": "amount",
#              "category": "user.financial.payment", "retention": "payments",
#              "purpose": "payments", "identity": "account_id"}}
#
# Output:
#   {"action": "include" | "delete" | "mask" | "retain" | "rectify",
#    "strategy": "null" | "fixed" | "keyed_hash" | "pseudonym" | "truncate_date" | "",
#    "value": <the replacement when strategy is "fixed", else "">,
#    "restricted": <processing of the field must be marked restricted>,
#    "basis": <why, in words a person can read>, "until": <how long a
#    retained or masked record stays, or a restriction lasts, read after
#    the word "until"; "" when nothing is kept>, "rule": <the clause that
#    decided>, "citation": <statute, then the policy sentence>}
#
# Actions: include = disclose to the person; delete = remove the value;
# mask = overwrite the value with the strategy's output, keeping the record;
# retain = leave the value (the basis and until say why and for how long;
# restricted = true when it may only be stored from now on); rectify = the
# person may correct this field, apply their correction.
#
# What survives an erasure is read from the retention schedule
# (data/retention.json: each rule's "erasure" block names the exception, the
# categories still needed and for how long); masking strategies come from the
# rule's "mask" table, then the global "masking" table. Field names are never
# hard-coded: decisions depend on category, retention rule and purpose.
package steward.dsar

masking := data.steward.retention.masking

deletion_days := data.steward.retention.deletion_request_days

deletion_citation := data.steward.retention.deletion_request_citation

request_types := {"access", "export", "erasure", "rectification", "restriction", "objection"}

field := input.field

category := field.category

# Direct references into the data document: naming the whole rules object in
# a rule of its own would copy it on every evaluation.
rrule := data.steward.retention.rules[field.retention]

# A category is under a prefix when it is the prefix or one of its children
# (fideslang categories are dotted: user.contact.email is under user.contact).
under(c, p) if c == p

under(c, p) if startswith(c, concat("", [p, "."]))

# The regime's rights and the provisions that carve exceptions out of them.
# A regime without a key (restriction in the US laws) does not grant that
# right. Anything not listed is the customer's own promise ("default").
law := {
	"gdpr": {
		"name": "The GDPR",
		"access": "GDPR Art. 15 (right of access)",
		"export": "GDPR Art. 20 (right to data portability)",
		"erasure": "GDPR Art. 17(1) (right to erasure)",
		"rectification": "GDPR Art. 16 (right to rectification, including by a supplementary statement)",
		"restriction": "GDPR Art. 18 (right to restriction of processing)",
		"objection": "GDPR Art. 21(1) (right to object to processing based on legitimate interests)",
		"objection_marketing": "GDPR Art. 21(2)-(3) (objection to direct marketing is absolute)",
		"withdrawal": "GDPR Art. 7(3) (withdrawal of consent, as easy as giving it)",
		"objection_scope": "general",
		"legal_obligation": "GDPR Art. 17(3)(b) (compliance with a legal obligation)",
		"legal_claims": "GDPR Art. 17(3)(e) (establishment, exercise or defence of legal claims)",
		"opt_out_record": "GDPR Art. 17(3)(b) with Art. 21(3) (no direct marketing after an objection) and Art. 7(1) (the controller must be able to demonstrate consent)",
		"withheld": "GDPR Art. 5(1)(f) and Art. 32 (integrity, confidentiality and security of processing)",
	},
	"uk_gdpr": {
		"name": "The UK GDPR",
		"access": "UK GDPR Art. 15 (right of access)",
		"export": "UK GDPR Art. 20 (right to data portability)",
		"erasure": "UK GDPR Art. 17(1) (right to erasure)",
		"rectification": "UK GDPR Art. 16 (right to rectification, including by a supplementary statement)",
		"restriction": "UK GDPR Art. 18 (right to restriction of processing)",
		"objection": "UK GDPR Art. 21(1) (right to object to processing based on legitimate interests)",
		"objection_marketing": "UK GDPR Art. 21(2)-(3) (objection to direct marketing is absolute)",
		"withdrawal": "UK GDPR Art. 7(3) (withdrawal of consent, as easy as giving it)",
		"objection_scope": "general",
		"legal_obligation": "UK GDPR Art. 17(3)(b) (compliance with a legal obligation)",
		"legal_claims": "UK GDPR Art. 17(3)(e) (establishment, exercise or defence of legal claims)",
		"opt_out_record": "UK GDPR Art. 17(3)(b) with Art. 21(3) (no direct marketing after an objection) and Art. 7(1) (the controller must be able to demonstrate consent)",
		"withheld": "UK GDPR Art. 5(1)(f) and Art. 32 (integrity, confidentiality and security of processing)",
	},
	"ccpa": {
		"name": "The CCPA/CPRA",
		"access": "Cal. Civ. Code §1798.100 and §1798.110 (right to know)",
		"export": "Cal. Civ. Code §1798.130(a)(3) (specific pieces in a portable, readily usable format)",
		"erasure": "Cal. Civ. Code §1798.105 (right to delete)",
		"rectification": "Cal. Civ. Code §1798.106 (right to correct)",
		"objection": "Cal. Civ. Code §1798.120 (right to opt out of sale or sharing)",
		"objection_marketing": "Cal. Civ. Code §1798.120 (right to opt out of sale or sharing, which covers cross-context behavioural advertising)",
		"withdrawal": "Cal. Civ. Code §1798.120 (right to opt out of sale or sharing)",
		"objection_scope": "opt_out",
		"legal_obligation": "Cal. Civ. Code §1798.105(d)(8) (comply with a legal obligation)",
		"legal_claims": "Cal. Civ. Code §1798.145(a) (exercise or defend legal claims)",
		"opt_out_record": "Cal. Civ. Code §1798.105(d)(8) (comply with a legal obligation: CAN-SPAM, 15 U.S.C. §7704(a)(4), requires an opt-out to be honoured) and §1798.105(d)(7) (solely internal uses reasonably aligned with the consumer's expectations)",
		"withheld": "Cal. Code Regs. tit. 11 §7024(d) (an account password, security questions and answers, government identification and financial account numbers are never disclosed; the business says it holds them)",
	},
	"lgpd": {
		"name": "The LGPD",
		"access": "LGPD Art. 18 II and Art. 19 (access)",
		"export": "LGPD Art. 18 V (portability)",
		"erasure": "LGPD Art. 18 IV and VI (anonymization, blocking or deletion; deletion of data processed with consent)",
		"rectification": "LGPD Art. 18 III (correction of incomplete, inaccurate or out-of-date data)",
		"restriction": "LGPD Art. 18 IV (blocking)",
		"objection": "LGPD Art. 18 §2 (opposition to processing carried out without consent)",
		"objection_marketing": "LGPD Art. 18 IX and Art. 8 §5 (revocation of consent)",
		"withdrawal": "LGPD Art. 18 IX and Art. 8 §5 (revocation of consent)",
		"objection_scope": "general",
		"legal_obligation": "LGPD Art. 16 I (retention to comply with a legal or regulatory obligation)",
		"legal_claims": "LGPD Art. 7 VI (regular exercise of rights in judicial, administrative or arbitral proceedings) with Art. 16 I",
		"opt_out_record": "LGPD Art. 16 I and Art. 8 §2 (the controller bears the burden of proving consent)",
		"withheld": "LGPD Art. 46 (security measures protecting data from unauthorized access)",
	},
	"vcdpa": {
		"name": "The Virginia CDPA",
		"access": "Va. Code §59.1-577(A)(1) (confirm and access)",
		"export": "Va. Code §59.1-577(A)(4) (a portable, readily usable copy)",
		"erasure": "Va. Code §59.1-577(A)(3) (delete)",
		"rectification": "Va. Code §59.1-577(A)(2) (correct)",
		"objection": "Va. Code §59.1-577(A)(5) (opt out of targeted advertising, sale and profiling)",
		"objection_marketing": "Va. Code §59.1-577(A)(5) (opt out of targeted advertising, sale and profiling)",
		"withdrawal": "Va. Code §59.1-577(A)(5) (opt out of targeted advertising, sale and profiling)",
		"objection_scope": "opt_out",
		"legal_obligation": "Va. Code §59.1-582(A) (comply with federal, state or local laws)",
		"legal_claims": "Va. Code §59.1-582(A) (investigate, establish, exercise, prepare for or defend legal claims)",
		"opt_out_record": "Va. Code §59.1-582(A) (comply with laws: CAN-SPAM, 15 U.S.C. §7704(a)(4), requires an opt-out to be honoured)",
		"withheld": "Va. Code §59.1-578(A)(3) (reasonable data security practices)",
	},
	"cpa": {
		"name": "The Colorado Privacy Act",
		"access": "C.R.S. §6-1-1306(1)(b) (right of access)",
		"export": "C.R.S. §6-1-1306(1)(e) (right to data portability)",
		"erasure": "C.R.S. §6-1-1306(1)(d) (right to deletion)",
		"rectification": "C.R.S. §6-1-1306(1)(c) (right to correction)",
		"objection": "C.R.S. §6-1-1306(1)(a) (right to opt out of targeted advertising, sale and profiling)",
		"objection_marketing": "C.R.S. §6-1-1306(1)(a) (right to opt out of targeted advertising, sale and profiling)",
		"withdrawal": "C.R.S. §6-1-1306(1)(a) (right to opt out)",
		"objection_scope": "opt_out",
		"legal_obligation": "C.R.S. §6-1-1304(3)(a) (comply with federal, state or local laws)",
		"legal_claims": "C.R.S. §6-1-1304(3)(a) (investigate, establish, exercise, prepare for or defend legal claims)",
		"opt_out_record": "C.R.S. §6-1-1304(3)(a) (comply with laws: CAN-SPAM, 15 U.S.C. §7704(a)(4), requires an opt-out to be honoured)",
		"withheld": "C.R.S. §6-1-1308(5) (duty of care: reasonable security)",
	},
	"us_state": {
		"name": "US state consumer privacy law",
		"access": "US state consumer privacy law (right to confirm and access)",
		"export": "US state consumer privacy law (right to a portable copy)",
		"erasure": "US state consumer privacy law (right to delete)",
		"rectification": "US state consumer privacy law (right to correct)",
		"objection": "US state consumer privacy law (right to opt out of targeted advertising, sale and profiling)",
		"objection_marketing": "US state consumer privacy law (right to opt out of targeted advertising, sale and profiling)",
		"withdrawal": "US state consumer privacy law (right to opt out)",
		"objection_scope": "opt_out",
		"legal_obligation": "US state consumer privacy law (exemption to comply with federal, state or local laws)",
		"legal_claims": "US state consumer privacy law (exemption to establish, exercise or defend legal claims)",
		"opt_out_record": "US state consumer privacy law (exemption to comply with laws: CAN-SPAM, 15 U.S.C. §7704(a)(4), requires an opt-out to be honoured)",
		"withheld": "US state consumer privacy law (reasonable data security duty)",
	},
	"default": {
		"name": "The privacy policy",
		"access": "web policy (Your rights): \"Access, correct, or delete personal data.\"; bot policy §6.1: \"You can view your profile information, balance, and transaction history through the bot's interface.\"",
		"export": "web policy (Your rights): \"Access, correct, or delete personal data.\"; bot policy §6.4: \"Right to Data Portability: Receive your data in a structured, machine-readable format.\"",
		"erasure": "web policy (Your rights): \"Access, correct, or delete personal data.\"; bot policy §6.2: \"You may request deletion of your account and associated data by contacting us.\"",
		"rectification": "web policy (Your rights): \"Access, correct, or delete personal data.\"; bot policy §6.1: \"To update your information or correct inaccuracies, contact our support.\"",
		"restriction": "web policy (Your rights): \"Restrict or object to processing based on legitimate interests.\"",
		"objection": "web policy (Your rights): \"Restrict or object to processing based on legitimate interests.\"",
		"objection_marketing": "web policy (Your rights): \"Opt out of marketing communications.\"; bot policy §6.3: \"Broadcast Messages: You can opt out of non-essential broadcast messages through bot settings or by contacting support.\"",
		"withdrawal": "web policy (Purposes and legal bases): \"You may withdraw consent at any time; processing before withdrawal remains lawful.\"",
		"objection_scope": "general",
		"legal_obligation": "web policy (Retention and deletion): \"When we receive a deletion request and have no other legal obligations, we erase or anonymize data within 30 days.\"",
		"legal_claims": "bot policy §4.3: \"If you request account deletion, we will remove your personal information within 30 days, except where retention is required for legal compliance, dispute resolution, or fraud prevention.\"",
		"opt_out_record": "web policy (Your rights): \"Opt out of marketing communications.\"",
		"withheld": "web policy (Security measures): \"We apply encryption in transit and at rest, hardware-backed encryption modules, granular permissions, admin MFA, environment isolation, audit logs, intrusion detection, and regular penetration testing.\"",
	},
}

# The consent regimes "us" (no comprehensive state law) and any name not
# listed fall back to the customer's promise, which grants every right.
regime_name := input.regime if {
	law[input.regime]
} else := "default"

L := law[regime_name]

# --- access and export ------------------------------------------------------

# Credentials (password hashes, session tokens, OAuth secrets) are never
# disclosed, under any regime: they are security secrets, not information
# about the person, and an export that leaks would hand over the account.
always_withheld := {"user.authorization"}

# Cal. Code Regs. tit. 11 §7024(d): never disclosed to a Californian either.
# (card details and tax ids are in data/categories.json; the others are
# listed for data maps that add them.)
ccpa_withheld := {
	"user.financial.payment_method",
	"user.financial.tax_id",
	"user.government_id",
	"user.biometric",
}

withheld_value := sprintf("[withheld: %s held, never disclosed]", [object.get(data.steward.categories, [category, "name"], category)])

withheld_citation := L.withheld if {
	regime_name == "ccpa"
} else := sprintf("%s; %s", [L.withheld, law.ccpa.withheld])

withheld_basis := "This value is a security secret or identifier that is never disclosed: an export can be forwarded or leaked, and disclosing it would put the account or the person at risk. The reply says that data of this kind is held."

access_decision := result_mask("fixed", withheld_value, withheld_basis, "", "withheld_credential", withheld_citation) if {
	some p in always_withheld
	under(category, p)
} else := result_mask("fixed", withheld_value, withheld_basis, "", "withheld_sensitive_identifier", L.withheld) if {
	regime_name == "ccpa"
	some p in ccpa_withheld
	under(category, p)
} else := result(
	"include", "",
	"Right to data portability: the field is exported in a structured, commonly used, machine-readable format (JSON)", "",
	"export_portable", L.export,
) if {
	input.request_type == "export"
} else := result("include", "", "Right of access: the person receives a copy of this field", "", "access_disclosed", L.access)

# --- erasure ----------------------------------------------------------------

exception := rrule.erasure.exception

kept_for_exception if {
	some p in rrule.erasure.keep_categories
	under(category, p)
}

# Longest matching prefix of a masking table; the schedule rule's own table
# wins over the global one.
longest(keys) := k if {
	some k in keys
	every o in keys {
		count(o) <= count(k)
	}
}

rule_mask_keys := [p | some p, _ in object.get(rrule, "mask", {}); under(category, p)]

global_mask_keys := [p | some p, _ in masking.by_category; under(category, p)]

mask_strategy := rrule.mask[longest(rule_mask_keys)] if {
	count(rule_mask_keys) > 0
} else := masking.by_category[longest(global_mask_keys)] if {
	count(global_mask_keys) > 0
} else := masking.default

mask_value := masking.fixed_value if {
	mask_strategy == "fixed"
} else := ""

erasure_decision := result(
	"retain", "",
	sprintf("%s. This field is needed for that, so it is kept, used for nothing else, and deleted when the period ends.", [rrule.erasure.basis]),
	rrule.erasure.until,
	sprintf("erasure_exception_%s", [exception]),
	sprintf("%s; %s", [L[exception], rrule.citation]),
) if {
	kept_for_exception
} else := result_mask(
	mask_strategy, mask_value,
	sprintf("%s. The record is kept, but this field is not needed for that, so it is masked (%s).", [rrule.erasure.basis, mask_strategy]),
	rrule.erasure.until,
	"erasure_exception_masked",
	sprintf("%s; %s", [L[exception], rrule.citation]),
) if {
	exception
} else := result(
	"delete", "",
	sprintf("Right to erasure: no exception applies, so the field is deleted within %d days.", [deletion_days]),
	"", "erasure_delete",
	sprintf("%s; %s", [L.erasure, deletion_citation]),
)

# --- rectification ----------------------------------------------------------

# Facts about the person they can correct: contact details, names, username
# and preferences (language included).
correctable := {"user.contact", "user.name", "user.account.username", "user.preferences"}

correctable_category if {
	some p in correctable
	under(category, p)
}

# The retention rule says how its records take a correction: "applies"
# (current data, corrected in place), "records" (logs and ledgers: a record
# of what happened, never rewritten) or "amend" (financial records: current
# data corrected, issued documents amended by a document referring to them).
rectification_mode := object.get(rrule, "rectification", "applies")

rectification_decision := result(
	"retain", "",
	"This field is part of a record of what happened (a credit transaction, a log entry), kept as evidence: it is not rewritten. The person's current data is corrected at its source, and a disputed entry is completed with a supplementary note.",
	"", "rectification_record_of_events", L.rectification,
) if {
	rectification_mode == "records"
} else := result(
	"retain", "",
	"System data records what the system observed; it is not a statement about the person that they can correct.",
	"", "rectification_system_record", L.rectification,
) if {
	under(category, "system")
} else := result(
	"rectify", "",
	"The person can correct this field in their current billing data. An invoice already issued is not rewritten: it is amended by a document that refers to it.",
	"", "rectification_amend_record",
	sprintf("%s; Council Directive 2006/112/EC Art. 219 (a document that amends and refers to the initial invoice is treated as an invoice)", [L.rectification]),
) if {
	rectification_mode == "amend"
	correctable_category
} else := result(
	"rectify", "",
	"The person can correct this field: inaccurate or incomplete data about them is corrected without undue delay, and recipients are told.",
	"", "rectification_applies", L.rectification,
) if {
	correctable_category
} else := result(
	"retain", "",
	"This field is not a fact about the person that they can correct (content they created, which they can delete instead, or a value the system assigned).",
	"", "rectification_not_applicable", L.rectification,
)

# --- restriction ------------------------------------------------------------

restriction_decision := result_restricted(
	"Processing restricted: the data is stored but not otherwise processed, except with the person's consent, for legal claims, to protect another person's rights or for an important public interest; the person is told before the restriction is lifted.",
	"the restriction is lifted",
	"processing_restricted", L.restriction,
) if {
	L.restriction
} else := result(
	"retain", "",
	sprintf("%s grants no right to restrict processing, so processing continues unchanged and the reply says so; erasure, correction and opt-out are the rights it provides.", [L.name]),
	"", "restriction_not_a_right",
	sprintf("%s: no right to restriction; web policy (Your rights) grants it \"Depending on regulations such as GDPR, CCPA, or LGPD\"", [L.name]),
)

# --- objection --------------------------------------------------------------

# The legal bases the field is processed under: its data-map purpose's
# (data/datamap.yaml processing_purposes), else its consent purpose's
# (data/purposes.json), else the basis its retention rule names.
processing_bases := {b | some b in data.steward.datamap.processing_purposes[field.purpose].legal_basis} if {
	data.steward.datamap.processing_purposes[field.purpose]
} else := {data.steward.purposes[field.purpose].legal_basis} if {
	data.steward.purposes[field.purpose]
} else := {rrule.basis} if {
	rrule
} else := set()

# Direct marketing: a consent purpose marked as such, or data kept only until
# consent is withdrawn (marketing preferences, broadcast opt-outs).
direct_marketing if data.steward.purposes[field.purpose].dpv == "dpv:DirectMarketing"

direct_marketing if rrule.until == "withdrawal"

# Bases the right to object does not reach (GDPR Art. 21(1) covers only
# Art. 6(1)(e) public task and (f) legitimate interests).
basis_text := {
	"contract": "contractual necessity",
	"legal_obligation": "a legal obligation",
	"vital_interests": "vital interests",
}

# Consent can be withdrawn under every regime: the web policy promises it to
# everyone.
withdrawal_citation := L.withdrawal if {
	regime_name == "default"
} else := sprintf("%s; %s", [L.withdrawal, law["default"].withdrawal])

# A promised opt-out (data/retention.json "opt_out") reaches what the law's
# own right to object does not: US laws, and processing the GDPR's Art. 21
# leaves alone. Where the law's right applies, its clause decides (and cites
# the statute).
promised_opt_out_applies if {
	rrule.opt_out
	L.objection_scope == "opt_out"
}

promised_opt_out_applies if {
	rrule.opt_out
	objection_not_applicable
}

objection_not_applicable if {
	count(processing_bases) > 0
	every b in processing_bases {
		basis_text[b]
	}
}

objection_decision := result_restricted(
	"Direct marketing stops on objection, without exception; only the opt-out record is kept.",
	"the person opts back in",
	"objection_direct_marketing", L.objection_marketing,
) if {
	direct_marketing
} else := result_restricted(
	"Processing based on consent stops: objecting to it withdraws the consent; processing before withdrawal remains lawful.",
	"the person consents again",
	"objection_consent_withdrawn", withdrawal_citation,
) if {
	"consent" in processing_bases
} else := result_restricted(
	"The privacy policy lets anyone opt out of this processing, whatever their law: it stops.",
	"the person opts back in",
	"objection_promised_opt_out", rrule.opt_out,
) if {
	promised_opt_out_applies
} else := result(
	"retain", "",
	sprintf("%s gives a right to opt out of sale, sharing or targeted advertising and profiling, not a general right to object; this field is not used for those, so its processing continues.", [L.name]),
	"", "objection_opt_out_only",
	sprintf("%s; web policy (Data sharing and processors): \"We do not sell personal data.\"", [L.objection]),
) if {
	L.objection_scope == "opt_out"
} else := result(
	"retain", "",
	sprintf("This field is processed for %s, not on legitimate interests or consent; the right to object does not reach it.", [concat(" and ", sort([basis_text[b] | some b in processing_bases]))]),
	"", "objection_not_applicable_basis", L.objection,
) if {
	objection_not_applicable
} else := result_restricted(
	"Processing based on legitimate interests stops unless compelling legitimate grounds that override the person's interests are documented, or it is needed for legal claims; it stays restricted while that is assessed.",
	"the objection is decided",
	"objection_legitimate_interests", L.objection,
)

# --- the decision -----------------------------------------------------------

# Every decision is built here, as one object literal (object.union would
# share a builtin's result type across compilers, which OPA's type checker
# then mutates concurrently).
decision_of(action, strategy, value, restricted, basis, until, rule, citation) := {
	"action": action,
	"strategy": strategy,
	"value": value,
	"restricted": restricted,
	"basis": basis,
	"until": until,
	"rule": rule,
	"citation": citation,
}

result(action, strategy, basis, until, rule, citation) := decision_of(action, strategy, "", false, basis, until, rule, citation)

result_mask(strategy, value, basis, until, rule, citation) := decision_of("mask", strategy, value, false, basis, until, rule, citation)

result_restricted(basis, until, rule, citation) := decision_of("retain", "", "", true, basis, until, rule, citation)

valid if {
	input.request_type in request_types
	is_string(field.category)
}

decision := access_decision if {
	valid
	input.request_type in {"access", "export"}
} else := erasure_decision if {
	valid
	input.request_type == "erasure"
} else := rectification_decision if {
	valid
	input.request_type == "rectification"
} else := restriction_decision if {
	valid
	input.request_type == "restriction"
} else := objection_decision if {
	valid
	input.request_type == "objection"
}

# --- workflow ---------------------------------------------------------------

# Whether a reviewer approves a request before Steward acts on it. Erasure
# cannot be undone, an export hands a complete machine-readable copy of a
# person's data to whoever proved control of one identity, and a correction
# changes data on the person's word: a person checks each before it runs.
# Access (a readable report), restriction and objection only stop or show
# processing, and an opt-out must not wait for staff, so they run at once.
#
# An authorized agent's request waits for a reviewer whatever its type: the
# signed authorization is checked first.
#
# Input: {"request_type": "erasure", "regime": "gdpr", "channel": "web"}
approval_reasons := {
	"erasure": "Erasure cannot be undone: a reviewer confirms the identity match and the retained items before anything is deleted.",
	"export": "An export hands a complete, portable copy of the data to whoever proved control of the identity: a reviewer confirms the match first.",
	"rectification": "A correction changes data on the person's word: a reviewer checks the new values before they are written.",
}

workflow := {
	"approval_required": true,
	"rule": "approval_agent",
	"reason": "An authorized agent acts on the person's signed authorization: a reviewer checks it before Steward acts on any request the agent makes.",
} if {
	# CCPA Regs. §7063(a): a business may require the authorized agent to
	# provide the consumer's signed permission; GDPR Art. 12(6) lets a
	# controller confirm who is asking. The web notice names "signed
	# instruction" as a verification method: staff look at it.
	input.channel == "agent"
	input.request_type in request_types
} else := {
	"approval_required": true,
	"rule": sprintf("approval_%s", [input.request_type]),
	"reason": approval_reasons[input.request_type],
} if {
	approval_reasons[input.request_type]
} else := {
	"approval_required": false,
	"rule": "no_approval",
	"reason": "Showing, restricting or stopping processing harms no one if the identity check passed: the request runs as soon as it is verified.",
} if {
	input.request_type in request_types
}
