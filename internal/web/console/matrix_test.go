package console_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/web/console"
)

// probe is how the matrix test exercises one console action: the page
// whose control it looks for, the request state that offers the control,
// and the endpoint the control sends to.
type probe struct {
	page   string      // GET: where the control (data-action) appears
	status dsar.Status // the fake request's status on request pages
	method string
	path   string
	form   url.Values
	// detail, if set, adjusts the fake request so that its state offers
	// the control (a held package, an opened agent document).
	detail func(*dsar.Detail)
}

var probes = map[string]probe{
	"queue.view":              {page: "/console/policy", method: "GET", path: "/console/requests"},
	"request.view":            {method: "GET", path: "/console/requests/" + reqID},
	"request.approve":         {page: "/console/requests/" + reqID, status: dsar.AwaitingApproval, method: "POST", path: "/console/requests/" + reqID + "/approve"},
	"request.deny":            {page: "/console/requests/" + reqID, status: dsar.AwaitingApproval, method: "POST", path: "/console/requests/" + reqID + "/deny", form: url.Values{"reason": {"no"}}},
	"request.extend":          {page: "/console/requests/" + reqID, status: dsar.AwaitingApproval, method: "POST", path: "/console/requests/" + reqID + "/extend", form: url.Values{"reason": {"complex"}}},
	"request.pause":           {page: "/console/requests/" + reqID, status: dsar.AwaitingApproval, method: "POST", path: "/console/requests/" + reqID + "/pause", form: url.Values{"reason": {"wait"}}},
	"request.resume":          {page: "/console/requests/" + reqID, status: dsar.Paused, method: "POST", path: "/console/requests/" + reqID + "/resume"},
	"request.cancel":          {page: "/console/requests/" + reqID, status: dsar.AwaitingApproval, method: "POST", path: "/console/requests/" + reqID + "/cancel", form: url.Values{"reason": {"dup"}}},
	"request.retry-planning":  {page: "/console/requests/" + reqID, status: dsar.Verified, method: "POST", path: "/console/requests/" + reqID + "/retry-planning"},
	"request.replan":          {page: "/console/requests/" + reqID, status: dsar.Failed, method: "POST", path: "/console/requests/" + reqID + "/replan", form: url.Values{"note": {"map fixed"}}},
	"request.reveal":          {page: "/console/requests/" + reqID, status: dsar.AwaitingApproval, method: "POST", path: "/console/requests/" + reqID + "/identities"},
	"task.retry":              {page: "/console/requests/" + reqID, status: dsar.InProgress, method: "POST", path: "/console/requests/" + reqID + "/tasks/" + taskID + "/retry"},
	"task.complete":           {page: "/console/requests/" + reqID, status: dsar.InProgress, method: "POST", path: "/console/requests/" + reqID + "/tasks/" + taskID + "/complete", form: url.Values{"note": {"done"}}},
	"task.acknowledge-review": {page: "/console/requests/" + reqID, status: dsar.InProgress, method: "POST", path: "/console/requests/" + reqID + "/tasks/" + taskID + "/acknowledge-review", form: url.Values{"note": {"ok"}}},
	"request.package":         {page: "/console/requests/" + reqID, status: dsar.Completed, method: "GET", path: "/console/requests/" + reqID + "/package"},
	"request.open-document":   {page: "/console/requests/" + reqID, status: dsar.AwaitingApproval, method: "GET", path: "/console/requests/" + reqID + "/documents/agent_authorization", detail: openedAgentDocument},
	"request.review-document": {page: "/console/requests/" + reqID, status: dsar.IdentityPending, method: "POST", path: "/console/requests/" + reqID + "/review-document", form: url.Values{"note": {"signature checks out"}}, detail: openedAgentDocument},
	"request.release-package": {page: "/console/requests/" + reqID, status: dsar.InProgress, method: "POST", path: "/console/requests/" + reqID + "/release-package", form: url.Values{"note": {"nothing withheld"}}, detail: heldPackage},
	"recipient.told":          {page: "/console/requests/" + reqID, status: dsar.Completed, method: "POST", path: "/console/requests/" + reqID + "/recipients/crm/told", form: url.Values{"note": {"emailed their DPO"}}},
	"consent.view":            {page: "/console/policy", method: "POST", path: "/console/consent", form: url.Values{"subject": {"email:ann@example.com"}}},
	"consent.receipt":         {page: "", method: "GET", path: "/console/consent/receipts/" + evID},
	"audit.view":              {page: "/console/policy", method: "GET", path: "/console/audit"},
	"audit.verify":            {page: "/console/audit", method: "GET", path: "/console/audit/verify"},
	"retention.view":          {page: "/console/policy", method: "GET", path: "/console/retention"},
	"retention.run":           {page: "/console/retention", method: "POST", path: "/console/retention/runs", form: url.Values{"dry_run": {"1"}}},
	"holds.place":             {page: "/console/retention", method: "POST", path: "/console/retention/holds", form: url.Values{"scope": {"dataset"}, "value": {"app_db.users"}, "reason": {"litigation"}}},
	"holds.lift":              {page: "/console/retention", method: "POST", path: "/console/retention/holds/" + holdID + "/lift", form: url.Values{"reason": {"settled"}}},
	"keys.view":               {page: "/console/policy", method: "GET", path: "/console/keys"},
	"keys.create":             {page: "/console/keys", method: "POST", path: "/console/keys", form: url.Values{"name": {"ci"}, "role": {"auditor"}}},
	"keys.revoke":             {page: "/console/keys", method: "POST", path: "/console/keys/" + keyID + "/revoke"},
	"policy.view":             {page: "/console/requests", method: "GET", path: "/console/policy"},
	"policy.history":          {page: "/console/policy"},
}

// heldPackage: an access request whose built package waits for release.
func heldPackage(d *dsar.Detail) { d.Type, d.PackageReview, d.PackageHeld = "access", true, true }

// openedAgentDocument: an agent's authorization that staff opened.
func openedAgentDocument(d *dsar.Detail) {
	d.Documents = []dsar.DocumentInfo{{Kind: dsar.DocAgentAuthorization, Size: 1200, SHA256: "ab"}}
	d.Timeline = append(d.Timeline, dsar.TimelineEntry{At: time.Now(), Event: "document_opened", Actor: "staff:7"})
}

// pageAction is the action that guards a page.
var pageAction = map[string]string{
	"/console/requests/" + reqID: "request.view", "/console/requests": "queue.view", "/console/policy": "policy.view",
	"/console/audit": "audit.view", "/console/retention": "retention.view", "/console/keys": "keys.view",
}

// TestRoleActionMatrix: for every role of the bundle and every console
// action, the control is shown and the request accepted exactly when
// authz.rego allows the action the API guards the same operation with; a
// refused request is a 403 and an audit entry.
func TestRoleActionMatrix(t *testing.T) {
	t.Parallel()
	e := loadEngine(t)
	var roles []string
	for r := range e.Roles {
		roles = append(roles, r)
	}
	slices.Sort(roles)
	if len(roles) < 5 {
		t.Fatalf("bundle has %d roles", len(roles))
	}
	for _, a := range console.Actions {
		if _, ok := probes[a.Name]; !ok {
			t.Fatalf("no probe for console action %s", a.Name)
		}
	}
	allowed := func(role, action string) bool {
		for _, a := range console.Actions {
			if a.Name == action {
				d, err := e.Authorize(context.Background(), role, a.Policy, nil)
				if err != nil {
					t.Fatal(err)
				}
				return d.Allow
			}
		}
		t.Fatalf("unknown action %s", action)
		return false
	}
	for _, role := range roles {
		for _, a := range console.Actions {
			t.Run(role+"/"+a.Name, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				p := probes[a.Name]
				want := allowed(role, a.Name)
				if p.status != "" {
					st := p.status
					b.requests.GetFn = func(string) (dsar.Detail, error) {
						d := detail(st)
						if st == dsar.Paused {
							d.PausedFrom = dsar.AwaitingApproval
						}
						if st == dsar.Verified {
							d.PlanError = "connector down"
						}
						if st == dsar.Completed {
							d.Type = "access"
							now := time.Now()
							d.CompletedAt = &now
						}
						if p.detail != nil {
							p.detail(&d)
						}
						return d, nil
					}
				}
				if p.page != "" {
					r := b.do("GET", p.page, nil, as(role))
					shown := strings.Contains(r.Body, `data-action="`+a.Name+`"`)
					// The navigation is on every page of a signed-in member,
					// a 403 page too; other controls need their page.
					wantShown := want && (p.page == "/console/policy" && strings.HasSuffix(a.Name, ".view") || allowed(role, pageAction[p.page]))
					if shown != wantShown {
						t.Errorf("control on %s shown=%v, want %v (status %d)", p.page, shown, wantShown, r.Status)
					}
				}
				if p.path == "" {
					return
				}
				var r resp
				if p.method == "POST" {
					form := url.Values{}
					for k, v := range p.form {
						form[k] = v
					}
					r = b.post(role, p.path, form)
				} else {
					r = b.do("GET", p.path, nil, as(role))
				}
				if want && r.Status == 403 {
					t.Fatalf("%s %s refused for %s: %s", p.method, p.path, role, r.Body)
				}
				if !want {
					if r.Status != 403 {
						t.Fatalf("%s %s for %s: status %d, want 403", p.method, p.path, role, r.Status)
					}
					if d := b.staff.deniedCalls(); len(d) == 0 || !strings.HasPrefix(d[len(d)-1], role+"|"+a.Name+"|") {
						t.Fatalf("refusal not audited: %v", d)
					}
				}
			})
		}
	}
}
