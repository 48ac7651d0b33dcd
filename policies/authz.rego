# Authorization: which caller role may do which action. Default deny: an action
# nobody listed is refused. Roles and their permissions live in data/roles.json
# so that reviewing who can do what is reviewing one file.
package steward.authz

default allow := false

role := data.steward.roles[input.role]

allow if {
	input.action in role.permissions
	subjects_allowed
}

# Roles marked visitor_only (the publishable sdk key) may act only on
# anonymous visitor: subjects, and must name at least one.
subjects_allowed if not role.visitor_only

subjects_allowed if {
	role.visitor_only
	count(object.get(input, "subject_kinds", [])) > 0
	every kind in input.subject_kinds {
		kind == "visitor"
	}
}

default reason := "allowed"

reason := "unknown role" if not role

else := sprintf("role %s may not perform %s", [input.role, input.action]) if not input.action in role.permissions

else := "this key may only act on visitor: subjects" if not subjects_allowed

decision := {"allow": allow, "reason": reason}
