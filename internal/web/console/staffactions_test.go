package console_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
)

// TestReviewReleaseAndRecipients covers the console's side of three staff
// steps the API already has: reviewing an agent's signed authorization
// (the web notice's "signed instruction"; CCPA §7063 lets a business ask
// an agent for signed permission), releasing a package the policy held for
// review (Cal. Code Regs. tit. 11 §7024(d), §7062(c)), and marking a
// recipient told (GDPR Art. 19). Each is shown only when the request's
// state calls for it and the role may do requests.manage, goes through the
// same dsar.Service method as the API with the member as the actor, and a
// refused POST is a 403 and an audit entry.
func TestReviewReleaseAndRecipients(t *testing.T) {
	t.Parallel()
	reviewer := principalFor("reviewer").Actor()
	page := func(b *bundle) string {
		t.Helper()
		r := b.do("GET", "/console/requests/"+reqID, nil, as("reviewer"))
		if r.Status != 200 {
			t.Fatalf("request page: %d", r.Status)
		}
		return r.Body
	}

	t.Run("the review button waits for an opened, unreviewed agent document", func(t *testing.T) {
		b := setup(t)
		d := detail(dsar.IdentityPending)
		b.requests.GetFn = func(string) (dsar.Detail, error) { return d, nil }
		if strings.Contains(page(b), `data-action="request.review-document"`) {
			t.Fatal("offered with no document")
		}
		d.Documents = []dsar.DocumentInfo{{Kind: dsar.DocAgentAuthorization, Size: 10, SHA256: "ab"}}
		if strings.Contains(page(b), `data-action="request.review-document"`) {
			t.Fatal("offered before staff opened the document")
		}
		// An opening by the system (e.g. a scan) is not a staff review.
		d.Timeline = append(d.Timeline, dsar.TimelineEntry{At: time.Now(), Event: "document_opened", Actor: "system:scan"})
		if strings.Contains(page(b), `data-action="request.review-document"`) {
			t.Fatal("offered after a system opening only")
		}
		d.Timeline = append(d.Timeline, dsar.TimelineEntry{At: time.Now(), Event: "document_opened", Actor: "staff:7"})
		body := page(b)
		if !strings.Contains(body, `data-action="request.review-document"`) || !strings.Contains(body, "Mark the authorization reviewed") {
			t.Fatal("not offered once opened")
		}
		d.Timeline = append(d.Timeline, dsar.TimelineEntry{At: time.Now(), Event: "document_reviewed", Actor: "staff:7"})
		if strings.Contains(page(b), `data-action="request.review-document"`) {
			t.Fatal("offered again after the review")
		}
	})

	t.Run("reviewing goes through ReviewDocument with the note", func(t *testing.T) {
		b := setup(t)
		r := b.post("reviewer", "/console/requests/"+reqID+"/review-document", url.Values{"note": {"signature matches the ID"}})
		if r.Status != 303 || r.Header.Get("Location") != "/console/requests/"+reqID+"?done=review-document" {
			t.Fatalf("%d %s", r.Status, r.Header.Get("Location"))
		}
		c := b.requests.lastCall()
		if c.Name != "review-document" || c.ID != reqID || c.Task != dsar.DocAgentAuthorization || c.Actor != reviewer || c.Note != "signature matches the ID" {
			t.Fatalf("call %+v", c)
		}
		if p := b.do("GET", r.Header.Get("Location"), nil, as("reviewer")); !strings.Contains(p.Body, "The authorization is marked reviewed.") {
			t.Fatal("no flash")
		}
		// The service's refusal (no note, not opened) is shown on the page.
		b.requests.ActErr = apperr.Field("note", "required: what was checked")
		if r := b.post("reviewer", "/console/requests/"+reqID+"/review-document", nil); r.Status != 422 || !strings.Contains(r.Body, "what was checked") {
			t.Fatalf("%d", r.Status)
		}
	})

	t.Run("release is offered for a held package and calls ReleasePackage", func(t *testing.T) {
		b := setup(t)
		d := detail(dsar.InProgress)
		d.Type, d.PackageReview = "access", true
		b.requests.GetFn = func(string) (dsar.Detail, error) { return d, nil }
		if strings.Contains(page(b), `data-action="request.release-package"`) {
			t.Fatal("offered before the package is held")
		}
		d.PackageHeld = true
		if body := page(b); !strings.Contains(body, `data-action="request.release-package"`) || !strings.Contains(body, "Release the package") {
			t.Fatal("not offered for a held package")
		}
		r := b.post("reviewer", "/console/requests/"+reqID+"/release-package", url.Values{"note": {"nothing §7024(d) lists"}})
		if r.Status != 303 || r.Header.Get("Location") != "/console/requests/"+reqID+"?done=release-package" {
			t.Fatalf("%d %s", r.Status, r.Header.Get("Location"))
		}
		if c := b.requests.lastCall(); c.Name != "release-package" || c.ID != reqID || c.Actor != reviewer || c.Note != "nothing §7024(d) lists" {
			t.Fatalf("call %+v", c)
		}
	})

	t.Run("recipients are listed with method and status; a pending one can be marked told", func(t *testing.T) {
		b := setup(t)
		told := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
		b.requests.RecipientsFn = func(string) ([]dsar.Recipient, error) {
			return []dsar.Recipient{
				{System: "crm", Name: "Acme CRM", Method: "staff", Status: "pending"},
				{System: "mailer", Name: "Mailer", Method: "webhook", Status: "done", DoneAt: &told, DoneBy: "system:webhooks"},
			}, nil
		}
		body := page(b)
		for _, want := range []string{"Acme CRM", "By staff", "Pending", "Signed webhook", "system:webhooks",
			`action="/console/requests/` + reqID + `/recipients/crm/told"`} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %q", want)
			}
		}
		if strings.Contains(body, `/recipients/mailer/told"`) {
			t.Error("a done recipient is offered again")
		}
		r := b.post("reviewer", "/console/requests/"+reqID+"/recipients/crm/told", url.Values{"note": {"emailed their DPO"}})
		if r.Status != 303 || r.Header.Get("Location") != "/console/requests/"+reqID+"?done=recipient-told" {
			t.Fatalf("%d %s", r.Status, r.Header.Get("Location"))
		}
		if c := b.requests.lastCall(); c.Name != "recipient-told" || c.Task != "crm" || c.Actor != reviewer || c.Note != "emailed their DPO" {
			t.Fatalf("call %+v", c)
		}
		before := len(b.requests.calls)
		if r := b.post("reviewer", "/console/requests/"+reqID+"/recipients/Not-A-System/told", url.Values{"note": {"x"}}); r.Status != 404 || len(b.requests.calls) != before {
			t.Fatalf("bad system id: %d", r.Status)
		}
	})

	t.Run("an auditor sees no control and is refused, audited", func(t *testing.T) {
		b := setup(t)
		d := detail(dsar.InProgress)
		d.Type, d.PackageReview, d.PackageHeld = "access", true, true
		d.Documents = []dsar.DocumentInfo{{Kind: dsar.DocAgentAuthorization}}
		d.Timeline = append(d.Timeline, dsar.TimelineEntry{At: time.Now(), Event: "document_opened", Actor: "staff:7"})
		b.requests.GetFn = func(string) (dsar.Detail, error) { return d, nil }
		body := b.do("GET", "/console/requests/"+reqID, nil, as("auditor")).Body
		for _, a := range []string{"request.review-document", "request.release-package", "recipient.told"} {
			if strings.Contains(body, `data-action="`+a+`"`) {
				t.Errorf("%s shown to an auditor", a)
			}
		}
		if !strings.Contains(body, `id="recipient-crm"`) {
			t.Error("the recipients list is hidden from a reader")
		}
		for action, path := range map[string]string{
			"request.review-document": "/review-document", "request.release-package": "/release-package", "recipient.told": "/recipients/crm/told",
		} {
			r := b.post("auditor", "/console/requests/"+reqID+path, url.Values{"note": {"x"}})
			if r.Status != 403 || b.requests.lastCall().Name != "" {
				t.Fatalf("%s: %d %+v", path, r.Status, b.requests.lastCall())
			}
			if d := b.staff.deniedCalls(); len(d) == 0 || !strings.HasPrefix(d[len(d)-1], "auditor|"+action+"|") {
				t.Fatalf("%s: refusal not audited: %v", path, d)
			}
		}
	})
}
