package steward.authz_test

import data.steward.authz

test_unknown_role_denied if {
	not authz.allow with input as {"role": "intruder", "action": "consent.check"}
}

test_default_deny_unlisted_action if {
	not authz.allow with input as {"role": "frontend", "action": "keys.manage"}
}

test_frontend_checks_any_subject if {
	authz.allow with input as {"role": "frontend", "action": "consent.check", "subject_kinds": ["tg", "email"]}
}

test_sdk_visitor_only if {
	authz.allow with input as {"role": "sdk", "action": "consent.record", "subject_kinds": ["visitor"]}
	not authz.allow with input as {"role": "sdk", "action": "consent.record", "subject_kinds": ["email"]}
	not authz.allow with input as {"role": "sdk", "action": "consent.check", "subject_kinds": ["visitor", "tg"]}
	not authz.allow with input as {"role": "sdk", "action": "consent.check"}
}

test_reviewer_cannot_record if {
	not authz.allow with input as {"role": "reviewer", "action": "consent.record", "subject_kinds": ["email"]}
}

test_auditor_reads_audit_not_consent_writes if {
	authz.allow with input as {"role": "auditor", "action": "audit.read"}
	not authz.allow with input as {"role": "auditor", "action": "consent.record", "subject_kinds": ["tg"]}
}

test_reason_names_the_gap if {
	d := authz.decision with input as {"role": "reviewer", "action": "consent.record", "subject_kinds": ["tg"]}
	d.allow == false
	d.reason == "role reviewer may not perform consent.record"
	s := authz.decision with input as {"role": "sdk", "action": "consent.check", "subject_kinds": ["tg"]}
	s.reason == "this key may only act on visitor: subjects"
}

# A request's package is a person's data in bulk: staff who work requests
# may download it; the auditor's read-only view (requests.read) does not
# include it, nor may the front ends.
test_package_download_is_for_staff_who_work_requests if {
	authz.allow with input as {"role": "reviewer", "action": "requests.download_package"}
	authz.allow with input as {"role": "admin", "action": "requests.download_package"}
	not authz.allow with input as {"role": "auditor", "action": "requests.download_package"}
	not authz.allow with input as {"role": "frontend", "action": "requests.download_package"}
	not authz.allow with input as {"role": "sdk", "action": "requests.download_package", "subject_kinds": ["visitor"]}
	authz.allow with input as {"role": "auditor", "action": "requests.read"}
}

# GDPR Art. 18 (bot 6.4 "Right to Restriction"): staff who work requests and
# the auditor may see whether a person's processing is restricted and by
# which request; only staff who work requests (and admins) may lift one, and
# never the front ends, which only see "restricted" in the consent check.
test_restrictions_read_by_staff_and_auditor_lifted_by_staff if {
	every role in ["reviewer", "auditor", "admin"] {
		authz.allow with input as {"role": role, "action": "restrictions.read", "subject_kinds": ["email"]}
	}
	authz.allow with input as {"role": "reviewer", "action": "restrictions.manage"}
	authz.allow with input as {"role": "admin", "action": "restrictions.manage"}
	not authz.allow with input as {"role": "auditor", "action": "restrictions.manage"}
	not authz.allow with input as {"role": "frontend", "action": "restrictions.read", "subject_kinds": ["tg"]}
	not authz.allow with input as {"role": "frontend", "action": "restrictions.manage"}
	not authz.allow with input as {"role": "sdk", "action": "restrictions.read", "subject_kinds": ["visitor"]}
}

# Web (Policy updates): "For major changes we will also notify you via email
# or in-product messaging". Staff announce a new version; the front ends and
# the auditor's read-only view may not message everyone.
test_notice_announcement_is_for_staff if {
	authz.allow with input as {"role": "reviewer", "action": "notices.announce"}
	authz.allow with input as {"role": "admin", "action": "notices.announce"}
	not authz.allow with input as {"role": "auditor", "action": "notices.announce"}
	not authz.allow with input as {"role": "frontend", "action": "notices.announce"}
	not authz.allow with input as {"role": "sdk", "action": "notices.announce", "subject_kinds": ["visitor"]}
}

# Outbound webhook endpoints decide which systems hear of consent changes,
# and with include_identities which of them learn who changed them (GDPR
# Art. 5(1)(f), 25): only operators register, rotate, replay or delete
# them; staff who work requests, auditors and the front ends cannot.
test_webhooks_managed_by_admin_only if {
	authz.allow with input as {"role": "admin", "action": "webhooks.manage"}
	every role in ["reviewer", "auditor", "frontend", "sdk"] {
		not authz.allow with input as {"role": role, "action": "webhooks.manage"}
	}
}
