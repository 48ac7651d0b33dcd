package console

// Action is something a staff member does in the console, and the authz
// action the API guards the same operation with (policies/data/roles.json).
// The console never decides by itself: it asks the policy with Policy.
type Action struct {
	Name   string // the console's name, used in data-action attributes and audit entries
	Policy string // the authz action of the same API operation
}

// Actions are every console action. A page shows a control only when the
// member's role may do its action, and its handler checks again.
var Actions = []Action{
	// GET /v1/privacy-requests and /{id} (requests.read).
	{"queue.view", "requests.read"},
	{"request.view", "requests.read"},
	// POST /v1/privacy-requests/{id}/... (requests.manage).
	{"request.approve", "requests.manage"},
	{"request.deny", "requests.manage"},
	{"request.extend", "requests.manage"},
	{"request.pause", "requests.manage"},
	{"request.resume", "requests.manage"},
	{"request.cancel", "requests.manage"},
	{"request.retry-planning", "requests.manage"},
	{"request.replan", "requests.manage"},
	{"request.reveal", "requests.manage"},
	{"task.retry", "requests.manage"},
	{"task.complete", "requests.manage"},
	{"task.acknowledge-review", "requests.manage"},
	// POST /v1/privacy-requests/{id}/documents/agent_authorization/review,
	// /release-package and /recipients/{system}/told (requests.manage).
	{"request.review-document", "requests.manage"},
	{"request.open-document", "requests.manage"},
	{"request.release-package", "requests.manage"},
	{"recipient.told", "requests.manage"},
	// GET /v1/privacy-requests/{id}/package.
	{"request.package", "requests.download_package"},
	// GET /v1/consents, /history; /receipts/{id}.
	{"consent.view", "consent.read"},
	{"consent.receipt", "consent.receipt"},
	// GET /v1/admin/audit; /verify.
	{"audit.view", "audit.read"},
	{"audit.verify", "audit.verify"},
	// GET /v1/retention/plan, /runs, /v1/legal-holds; POST /v1/retention/runs;
	// POST /v1/legal-holds and /{id}/lift.
	{"retention.view", "retention.read"},
	{"retention.run", "retention.run"},
	{"holds.place", "holds.manage"},
	{"holds.lift", "holds.manage"},
	// API keys: the `steward keys` commands; keys.manage in the bundle.
	{"keys.view", "keys.manage"},
	{"keys.create", "keys.manage"},
	{"keys.revoke", "keys.manage"},
	// The policy page: what every field gets is what request plans show
	// (requests.read); the reload history comes from the audit log
	// (audit.read). The bundle has no policy.* permission of its own.
	{"policy.view", "requests.read"},
	{"policy.history", "audit.read"},
}

var actionPolicy = func() map[string]string {
	m := make(map[string]string, len(Actions))
	for _, a := range Actions {
		m[a.Name] = a.Policy
	}
	return m
}()

func policyAction(name string) (string, bool) {
	p, ok := actionPolicy[name]
	return p, ok
}
