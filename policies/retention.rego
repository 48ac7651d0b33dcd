# Retention: how long may a record be kept, and what happens to it after?
#
# Input (built by internal/retention for one record, or one dataset's oldest
# record):
#   {"rule": "payments", "age_days": 2000, "legal_hold": false,
#    "withdrawn": false, "account_deleted": false}
#
# "rule" names an entry of data/retention.json (the retention schedule, one
# entry per promise in the privacy policies, each citing the sentence it
# implements). An unknown rule has no decision: the caller reports it rather
# than guessing a period.
#
# Output:
#   {"action": "keep" | "delete" | "anonymize", "rule": <the clause that
#    decided>, "schedule": <the retention rule id>, "basis": ..., "citation":
#    ..., "keep_days": N | null, "reason": ...}
#
# The answer depends on age_days only through "age_days >= the rule's days",
# and the reason does not quote the age, so internal/policy can memoize one
# answer per side of the threshold.
#
# "anonymize" means: mask the record's identifying fields with the strategies
# of the schedule entry's "mask" table (falling back to the global "masking"
# table), keeping the rest.
package steward.retention

# data.steward.retention is both this package and data/retention.json; name
# the data keys one by one (the whole document would include these rules).
r := data.steward.retention.rules[input.rule]

deletion_days := data.steward.retention.deletion_request_days

legal_hold if input.legal_hold == true

# The end-of-retention event named by the rule has happened.
event_reached if {
	r.until == "account_deletion"
	input.account_deleted == true
}

event_reached if {
	r.until == "withdrawal"
	input.withdrawn == true
}

event_text := {
	"account_deletion": "the account was deleted",
	"withdrawal": "consent was withdrawn",
}

until_text := {
	"account_deletion": "until the account is deleted",
	"withdrawal": "until the person unsubscribes or withdraws consent",
}

age := object.get(input, "age_days", 0)

period_elapsed if {
	r.days != null
	age >= r.days
}

# The action, in words, for the reason.
action_text := {
	"delete": "delete it",
	"anonymize": "anonymize it (identifying fields masked)",
}

or_sooner := sprintf(", or %s if sooner", [until_text[r.until]]) if {
	r.until != null
} else := ""

result(action, rule, reason) := {
	"action": action,
	"rule": rule,
	"schedule": input.rule,
	"basis": r.basis,
	"citation": r.citation,
	"keep_days": r.days,
	"reason": reason,
}

decision := result("keep", "legal_hold", "legal hold: kept whatever its age until the hold is released; the retention rule resumes then") if {
	r
	legal_hold
} else := result(r.action, "retention_event_reached", sprintf("%s: %s within %d days", [event_text[r.until], action_text[r.action], deletion_days])) if {
	event_reached
} else := result(r.action, "retention_period_elapsed", sprintf("older than its retention period of %s (%d days): %s", [r.period, r.days, action_text[r.action]])) if {
	period_elapsed
} else := result("keep", "within_retention_period", sprintf("within its retention period of %s (%d days)%s", [r.period, r.days, or_sooner])) if {
	r.days != null
} else := result("keep", "retained_until_event", sprintf("kept %s", [until_text[r.until]])) if {
	r.until != null
} else := result("keep", "retained_indefinitely", "kept with no time limit, as the policy states") if {
	r
}
