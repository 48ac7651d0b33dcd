# Deadlines: by when must a data-subject request be acknowledged and
# answered, may the deadline be extended, and how sure must we be of who is
# asking?
#
# Input:
#   {"regime": "ccpa", "request_type": "erasure", "jurisdiction": "US-CA"}
#
# "regime" is the consent regime internal/consent resolved for the person
# (data/jurisdictions.json); a jurisdiction with its own deadline law (US-VA,
# US-CO) overrides it through data/deadlines.json "jurisdiction_regimes".
# Anything without an entry gets the customer's own promise ("default").
#
# Output:
#   {"regime": ..., "respond_within": {"amount": 1, "unit": "months"},
#    "acknowledge_within": {...} | null,
#    "extension": {"amount": 2, "unit": "months", "notice_within": {...}} | null,
#    "promised_within": {"amount": 30, "unit": "days", "extendable": false, "citation": ...},
#    "verification": "none" | "reasonable" | "high" | "account_login",
#    "package_review": true | false, "package_review_reason": ...,
#    "rule": ..., "citation": ..., "verification_citation": ...}
#
# "verification" is the level of certainty of who is asking that internal/dsar
# requires before it discloses or deletes anything (the level each
# verification method reaches is in docs/privacy-requests.md). "package_review"
# says whether staff look at an access or export package before the person is
# given the link; a regime or request type without the key needs no review.
#
# Units are "months" (calendar months, ending on the same day of the month or
# the month's last day), "days" (calendar days) and "business_days".
#
# The privacy policies promise 30 days to everyone, whatever the law says, so
# a request is due at the earlier of respond_within and promised_within. The
# erasure promise ("we erase or anonymize data within 30 days") names no
# extension, so it is not extendable: an extension may never take an erasure
# past it. The general promise says "extensions will be explained if needed",
# so a statutory extension, with its notice, may take other requests past it.
package steward.deadlines

request_types := {"access", "export", "erasure", "rectification", "restriction", "objection"}

# data.steward.deadlines is both this package and data/deadlines.json: read
# the data keys one by one.
by_jurisdiction := data.steward.deadlines.jurisdiction_regimes

configured := data.steward.deadlines.regimes

regime_name := name if {
	name := by_jurisdiction[upper(input.jurisdiction)]
} else := input.regime if {
	configured[input.regime]
} else := "default"

base := configured[regime_name]

override := object.get(base.request_types, input.request_type, {})

# A request type's entry overrides its regime's, key by key (null included:
# an override can remove an extension).
pick(key) := object.get(override, key, base[key])

promise := data.steward.deadlines.promises[input.request_type] if {
	input.request_type in object.keys(data.steward.deadlines.promises)
} else := data.steward.deadlines.promises["default"]

decision := {
	"regime": regime_name,
	"respond_within": pick("respond_within"),
	"acknowledge_within": pick("acknowledge_within"),
	"extension": pick("extension"),
	"promised_within": promise,
	"verification": pick("verification"),
	"rule": pick("rule"),
	"citation": pick("citation"),
	"verification_citation": pick("verification_citation"),
	"package_review": package_review,
	"package_review_reason": object.get(override, "package_review_reason", object.get(base, "package_review_reason", "")),
} if {
	input.request_type in request_types
}

# Only a request that produces a package (access, export) can hold one for
# review; the key is read from the request type's entry, then the regime's.
package_review := object.get(override, "package_review", object.get(base, "package_review", false)) if {
	input.request_type in {"access", "export"}
} else := false
