package console_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/staff"
)

func cookieOf(r resp, name string) (string, bool) {
	for _, c := range r.Header.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(c, name+"="); ok {
			v, _, _ = strings.Cut(v, ";")
			return v, true
		}
	}
	return "", false
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	t.Run("password then code opens a session and returns to the page asked for", func(t *testing.T) {
		b := setup(t)
		b.staff.SignInPasswordFn = func(email, pw string) (staff.Pending, error) {
			if email != "ann@example.com" || pw != "correct horse battery" {
				return staff.Pending{}, staff.ErrBadCredentials
			}
			return staff.Pending{Token: "p1", TOTP: true, Expires: time.Now().Add(5 * time.Minute)}, nil
		}
		b.staff.SignInTOTPFn = func(tok, code string) (staff.Session, error) {
			if tok != "p1" || code != "123456" {
				return staff.Session{}, staff.ErrBadCredentials
			}
			return staff.Session{Token: "tok-reviewer", AbsoluteExpires: time.Now().Add(12 * time.Hour)}, nil
		}
		ck := map[string]string{"steward_console_csrf": seed}
		page := b.do("GET", "/console/requests/"+reqID, nil, ck)
		if page.Status != 303 || !strings.Contains(page.Header.Get("Location"), "/console/signin?next=") {
			t.Fatalf("unsigned GET: %d %s", page.Status, page.Header.Get("Location"))
		}
		form := b.do("GET", "/console/signin?next=/console/requests/"+reqID, nil, ck)
		token := csrfRe.FindStringSubmatch(form.Body)[1]
		bad := b.do("POST", "/console/signin", url.Values{"csrf": {token}, "email": {"ann@example.com"}, "password": {"nope"}}, ck)
		if bad.Status != 401 || !strings.Contains(bad.Body, "not right") || strings.Contains(bad.Body, "nope") {
			t.Fatalf("wrong password: %d", bad.Status)
		}
		r := b.do("POST", "/console/signin", url.Values{"csrf": {token}, "email": {"ann@example.com"}, "password": {"correct horse battery"},
			"next": {"/console/requests/" + reqID}}, ck)
		if r.Status != 303 || !strings.HasPrefix(r.Header.Get("Location"), "/console/signin/factor") {
			t.Fatalf("after password: %d %s", r.Status, r.Header.Get("Location"))
		}
		pending, ok := cookieOf(r, "steward_staff_pending")
		if !ok || pending != "p1" {
			t.Fatalf("pending cookie %q", pending)
		}
		ck["steward_staff_pending"] = pending
		factor := b.do("GET", r.Header.Get("Location"), nil, ck)
		if factor.Status != 200 || !strings.Contains(factor.Body, `id="code"`) {
			t.Fatalf("factor page: %d", factor.Status)
		}
		// The token is bound to the pending sign-in now.
		token = csrfRe.FindStringSubmatch(factor.Body)[1]
		wrong := b.do("POST", "/console/signin/totp", url.Values{"csrf": {token}, "code": {"000000"}, "next": {"/console/requests/" + reqID}}, ck)
		if wrong.Status != 401 || !strings.Contains(wrong.Body, `aria-invalid="true"`) {
			t.Fatalf("wrong code: %d", wrong.Status)
		}
		ok2 := b.do("POST", "/console/signin/totp", url.Values{"csrf": {token}, "code": {"123 456"}, "next": {"/console/requests/" + reqID}}, ck)
		if ok2.Status != 303 || ok2.Header.Get("Location") != "/console/requests/"+reqID {
			t.Fatalf("right code: %d %s", ok2.Status, ok2.Header.Get("Location"))
		}
		sc := ""
		for _, c := range ok2.Header.Values("Set-Cookie") {
			if strings.HasPrefix(c, "steward_staff=tok-reviewer") {
				sc = strings.ToLower(c)
			}
		}
		for _, want := range []string{"httponly", "secure", "samesite=lax", "path=/console/"} {
			if !strings.Contains(sc, want) {
				t.Errorf("session cookie %q lacks %s", sc, want)
			}
		}
	})
	t.Run("a lock says until when", func(t *testing.T) {
		b := setup(t)
		until := time.Date(2031, 5, 4, 10, 30, 0, 0, time.UTC)
		b.staff.SignInTOTPFn = func(string, string) (staff.Session, error) { return staff.Session{}, &staff.LockedError{Until: until} }
		ck := map[string]string{"steward_console_csrf": seed, "steward_staff_pending": "p1"}
		tok := csrfRe.FindStringSubmatch(b.do("GET", "/console/signin/factor", nil, ck).Body)[1]
		r := b.do("POST", "/console/signin/totp", url.Values{"csrf": {tok}, "code": {"111111"}}, ck)
		if r.Status != 423 || !strings.Contains(r.Body, "4 May 2031 10:30 UTC") {
			t.Fatalf("locked: %d %s", r.Status, r.Body)
		}
	})
	t.Run("the pause between failures is a 429 on the same page", func(t *testing.T) {
		b := setup(t)
		b.staff.SignInTOTPFn = func(string, string) (staff.Session, error) {
			return staff.Session{}, &staff.LockedError{Until: b.clk.Now().Add(2 * time.Second), Backoff: true}
		}
		ck := map[string]string{"steward_console_csrf": seed, "steward_staff_pending": "p1"}
		tok := csrfRe.FindStringSubmatch(b.do("GET", "/console/signin/factor", nil, ck).Body)[1]
		r := b.do("POST", "/console/signin/totp", url.Values{"csrf": {tok}, "code": {"111111"}}, ck)
		if r.Status != 429 || r.Header.Get("Retry-After") == "" || !strings.Contains(r.Body, `id="code"`) {
			t.Fatalf("backoff: %d", r.Status)
		}
	})
	t.Run("an expired pending sign-in starts again", func(t *testing.T) {
		b := setup(t)
		b.staff.PendingFn = func(string) (staff.Pending, error) { return staff.Pending{}, staff.ErrPendingExpired }
		r := b.do("GET", "/console/signin/factor", nil, map[string]string{"steward_staff_pending": "old"})
		if r.Status != 303 || !strings.Contains(r.Header.Get("Location"), "timeout=1") {
			t.Fatalf("%d %s", r.Status, r.Header.Get("Location"))
		}
	})
	t.Run("no second factor yet goes to enrolment, which shows the secret once", func(t *testing.T) {
		b := setup(t)
		b.staff.PendingFn = func(tok string) (staff.Pending, error) {
			return staff.Pending{Token: tok, NeedsEnrolment: true, Expires: time.Now().Add(time.Minute)}, nil
		}
		ck := map[string]string{"steward_console_csrf": seed, "steward_staff_pending": "p1"}
		if r := b.do("GET", "/console/signin/factor", nil, ck); r.Status != 303 || !strings.HasPrefix(r.Header.Get("Location"), "/console/signin/enrol") {
			t.Fatalf("factor without one: %d %s", r.Status, r.Header.Get("Location"))
		}
		page := b.do("GET", "/console/signin/enrol", nil, ck)
		tok := csrfRe.FindStringSubmatch(page.Body)[1]
		r := b.do("POST", "/console/signin/enrol/totp", url.Values{"csrf": {tok}}, ck)
		if r.Status != 200 || !strings.Contains(r.Body, "JBSWY3DPEHPK3PXP") || !strings.Contains(r.Body, `src="data:image/png;base64,`) {
			t.Fatalf("enrolment: %d", r.Status)
		}
	})
}

func TestSessions(t *testing.T) {
	t.Parallel()
	t.Run("an idle-expired session goes to sign-in saying so", func(t *testing.T) {
		b := setup(t)
		b.staff.AuthenticateFn = func(string) (staff.Principal, error) { return staff.Principal{}, staff.ErrNoSession }
		r := b.do("GET", "/console/requests", nil, as("reviewer"))
		if r.Status != 303 || !strings.Contains(r.Header.Get("Location"), "expired=1") {
			t.Fatalf("%d %s", r.Status, r.Header.Get("Location"))
		}
		if v, ok := cookieOf(r, "steward_staff"); !ok || v != "" {
			t.Fatalf("session cookie not cleared: %q", v)
		}
		page := b.do("GET", r.Header.Get("Location"), nil, nil)
		if !strings.Contains(page.Body, "without activity") {
			t.Fatal("sign-in page does not say the session expired")
		}
	})
	t.Run("sign out ends the session", func(t *testing.T) {
		b := setup(t)
		r := b.post("reviewer", "/console/signout", nil)
		if r.Status != 303 || !strings.Contains(r.Header.Get("Location"), "signedout=1") {
			t.Fatalf("%d %s", r.Status, r.Header.Get("Location"))
		}
	})
	t.Run("a service failure is a 500 page, not a sign-in loop", func(t *testing.T) {
		b := setup(t)
		b.staff.AuthenticateFn = func(string) (staff.Principal, error) { return staff.Principal{}, errors.New("db down") }
		if r := b.do("GET", "/console/requests", nil, as("reviewer")); r.Status != 500 || strings.Contains(r.Body, "db down") {
			t.Fatalf("%d", r.Status)
		}
	})
}

func TestSafety(t *testing.T) {
	t.Parallel()
	b := setup(t)
	t.Run("headers on every page", func(t *testing.T) {
		for _, p := range []string{"/console/signin", "/console/requests", "/console/nope"} {
			r := b.do("GET", p, nil, as("reviewer"))
			for h, want := range map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
				"Content-Security-Policy": "script-src 'self'", "Strict-Transport-Security": "max-age"} {
				if !strings.Contains(r.Header.Get(h), want) {
					t.Errorf("%s: %s = %q", p, h, r.Header.Get(h))
				}
			}
			if strings.Contains(r.Body, "<script>") || strings.Contains(r.Body, " style=") {
				t.Errorf("%s: inline script or style", p)
			}
		}
	})
	t.Run("a POST without the token is refused and audited", func(t *testing.T) {
		r := b.do("POST", "/console/requests/"+reqID+"/approve", url.Values{"reason": {"x"}}, as("reviewer"))
		if r.Status != 403 || b.requests.lastCall().Name != "" {
			t.Fatalf("%d %+v", r.Status, b.requests.lastCall())
		}
		if d := b.staff.deniedCalls(); len(d) == 0 || !strings.Contains(d[len(d)-1], "csrf") {
			t.Fatalf("not audited: %v", d)
		}
	})
	t.Run("a token from another session is refused", func(t *testing.T) {
		tok := b.csrf(as("admin"))
		r := b.do("POST", "/console/requests/"+reqID+"/approve", url.Values{"csrf": {tok}}, as("reviewer"))
		if r.Status != 403 {
			t.Fatalf("%d", r.Status)
		}
	})
	t.Run("another site's Origin is refused", func(t *testing.T) {
		ck := as("reviewer")
		tok := b.csrf(ck)
		r := b.do("POST", "/console/requests/"+reqID+"/approve", url.Values{"csrf": {tok}}, ck, "Origin", "https://evil.example")
		if r.Status != 403 {
			t.Fatalf("%d", r.Status)
		}
	})
	t.Run("next never leaves the console", func(t *testing.T) {
		bb := setup(t)
		ck := map[string]string{"steward_console_csrf": seed, "steward_staff_pending": "p1"}
		tok := csrfRe.FindStringSubmatch(bb.do("GET", "/console/signin/factor", nil, ck).Body)[1]
		for _, next := range []string{"https://evil.example/", "//evil.example/console/", "/console//evil", "/console/../privacy"} {
			r := bb.do("POST", "/console/signin/totp", url.Values{"csrf": {tok}, "code": {"1"}, "next": {next}}, ck)
			if loc := r.Header.Get("Location"); loc != "/console/requests" {
				t.Errorf("next %q → %q", next, loc)
			}
		}
	})
}

func TestQueue(t *testing.T) {
	t.Parallel()
	t.Run("filters reach the service; overdue and at-risk are marked", func(t *testing.T) {
		b := setup(t)
		var got dsar.Filter
		now := b.clk.Now()
		b.requests.ListFn = func(f dsar.Filter) ([]dsar.Request, string, error) {
			got = f
			return []dsar.Request{
				{ID: reqID, Type: "erasure", Status: dsar.InProgress, Channel: "web", Regime: "gdpr", DueAt: now.Add(-time.Hour), Overdue: true},
				{ID: taskID, Type: "access", Status: dsar.Verified, Channel: "bot", Regime: "gdpr", DueAt: now.Add(3 * 24 * time.Hour)},
				{ID: evID, Type: "access", Status: dsar.Verified, Channel: "bot", Regime: "gdpr", DueAt: now.Add(20 * 24 * time.Hour)},
			}, "next-cursor", nil
		}
		r := b.do("GET", "/console/requests?type=erasure&regime=gdpr&channel=web&product=bot&q=email:leak@example.com", nil, as("auditor"))
		if r.Status != 200 {
			t.Fatalf("%d %s", r.Status, r.Body)
		}
		if got.Type != "erasure" || got.Regime != "gdpr" || got.Channel != "web" || got.Product != "bot" || got.Status != "open" || !got.Identity.IsZero() {
			t.Fatalf("filter %+v (a GET never searches)", got)
		}
		if strings.Count(r.Body, "badge-overdue") != 1 || strings.Count(r.Body, "badge-risk") != 1 {
			t.Fatalf("marks: overdue %d, at risk %d", strings.Count(r.Body, "badge-overdue"), strings.Count(r.Body, "badge-risk"))
		}
		if !strings.Contains(r.Body, "cursor=next-cursor") || !strings.Contains(r.Body, "product=bot") {
			t.Fatal("no next page link, or it drops the product")
		}
		if !strings.Contains(r.Body, `<option value="bot" selected>`) {
			t.Fatal("the product filter is not shown as chosen")
		}
	})
	t.Run("the product filter goes with a search", func(t *testing.T) {
		b := setup(t)
		var got dsar.Filter
		b.requests.ListFn = func(f dsar.Filter) ([]dsar.Request, string, error) {
			got = f
			return nil, "", nil
		}
		r := b.post("reviewer", "/console/requests", url.Values{"q": {"tg:12345"}, "product": {"bot"}})
		if r.Status != 200 || got.Product != "bot" || got.Identity.String() != "tg:12345" {
			t.Fatalf("%d filter %+v", r.Status, got)
		}
	})
	t.Run("a search is a POST through the identity, never echoed in a link", func(t *testing.T) {
		b := setup(t)
		var got dsar.Filter
		b.requests.ListFn = func(f dsar.Filter) ([]dsar.Request, string, error) {
			got = f
			return []dsar.Request{{ID: reqID, Type: "erasure", Status: dsar.InProgress, Channel: "web", DueAt: time.Now()}}, "c2", nil
		}
		r := b.post("reviewer", "/console/requests", url.Values{"q": {"email:Ann@Example.com"}, "status": {"all"}})
		if r.Status != 200 || got.Identity.String() != "email:ann@example.com" || got.Status != "" {
			t.Fatalf("%d filter %+v", r.Status, got)
		}
		if strings.Contains(r.Body, "href=\"/console/requests?") && strings.Contains(r.Body, "ann%40example") {
			t.Fatal("the identity is in a link")
		}
	})
	t.Run("bad filters are 422 with the field", func(t *testing.T) {
		b := setup(t)
		for _, q := range []string{"status=nope", "type=teleport", "regime=mars", "channel=fax", "product=mars", "cursor=%3Cx%3E"} {
			if r := b.do("GET", "/console/requests?"+q, nil, as("reviewer")); r.Status != 422 {
				t.Errorf("%s: %d", q, r.Status)
			}
		}
		if r := b.post("reviewer", "/console/requests", url.Values{"q": {"ann@example.com"}}); r.Status != 422 || !strings.Contains(r.Body, "email:ann@example.com") {
			t.Errorf("identity without its kind: %d", r.Status)
		}
	})
}

func TestRequestPage(t *testing.T) {
	t.Parallel()
	t.Run("an action goes through the service as the member, with the reason", func(t *testing.T) {
		b := setup(t)
		r := b.post("reviewer", "/console/requests/"+reqID+"/deny", url.Values{"reason": {"not verifiable"}})
		if r.Status != 303 || r.Header.Get("Location") != "/console/requests/"+reqID+"?done=deny" {
			t.Fatalf("%d %s", r.Status, r.Header.Get("Location"))
		}
		c := b.requests.lastCall()
		if c.Name != "deny" || c.ID != reqID || c.Actor != principalFor("reviewer").Actor() || c.Note != "not verifiable" || !strings.HasPrefix(c.Actor, "staff:") {
			t.Fatalf("call %+v", c)
		}
		if page := b.do("GET", r.Header.Get("Location"), nil, as("reviewer")); !strings.Contains(page.Body, `id="flash"`) {
			t.Fatal("no flash after the action")
		}
	})
	t.Run("a refusal by the service is shown on the request", func(t *testing.T) {
		b := setup(t)
		b.requests.ActErr = apperr.New(apperr.Conflict, "cannot approve a request that is denied")
		r := b.post("reviewer", "/console/requests/"+reqID+"/approve", nil)
		if r.Status != 409 || !strings.Contains(r.Body, "cannot approve a request that is denied") || !strings.Contains(r.Body, `id="status"`) {
			t.Fatalf("%d", r.Status)
		}
	})
	t.Run("manual task completion carries the note", func(t *testing.T) {
		b := setup(t)
		b.requests.GetFn = func(string) (dsar.Detail, error) { return detail(dsar.InProgress), nil }
		page := b.do("GET", "/console/requests/"+reqID, nil, as("reviewer"))
		if !strings.Contains(page.Body, "Delete the contact in the CRM.") || !strings.Contains(page.Body, `data-action="task.complete"`) {
			t.Fatal("manual task without instructions or its form")
		}
		b.post("reviewer", "/console/requests/"+reqID+"/tasks/"+taskID+"/complete", url.Values{"note": {"deleted in CRM"}})
		if c := b.requests.lastCall(); c.Name != "complete" || c.Task != taskID || c.Note != "deleted in CRM" {
			t.Fatalf("%+v", c)
		}
	})
	t.Run("identities are revealed on the POST's own page only", func(t *testing.T) {
		b := setup(t)
		r := b.post("reviewer", "/console/requests/"+reqID+"/identities", nil)
		if r.Status != 200 || !strings.Contains(r.Body, "email:ann@example.com") {
			t.Fatalf("%d", r.Status)
		}
		if page := b.do("GET", "/console/requests/"+reqID, nil, as("reviewer")); strings.Contains(page.Body, "ann@example.com") {
			t.Fatal("the identity shows again")
		}
	})
	t.Run("re-plan parses identities one per line", func(t *testing.T) {
		b := setup(t)
		b.post("reviewer", "/console/requests/"+reqID+"/replan", url.Values{"identities": {"email:b@example.com\n\n tg:42 \n"}, "note": {"new address"}})
		if c := b.requests.lastCall(); c.Name != "replan" || c.Task != "email:b@example.com,tg:42" {
			t.Fatalf("%+v", c)
		}
		if r := b.post("reviewer", "/console/requests/"+reqID+"/replan", url.Values{"identities": {"nonsense"}}); r.Status != 422 {
			t.Fatalf("bad identity: %d", r.Status)
		}
	})
	t.Run("the package download is audited as the member", func(t *testing.T) {
		b := setup(t)
		r := b.do("GET", "/console/requests/"+reqID+"/package", nil, as("reviewer"))
		if r.Status != 200 || r.Body != "zip" || b.packages.actor != principalFor("reviewer").Actor() {
			t.Fatalf("%d %q %q", r.Status, r.Body, b.packages.actor)
		}
	})
	t.Run("unknown ids are 404", func(t *testing.T) {
		b := setup(t)
		for _, p := range []string{"/console/requests/not-a-uuid", "/console/nowhere"} {
			if r := b.do("GET", p, nil, as("reviewer")); r.Status != 404 {
				t.Errorf("%s: %d", p, r.Status)
			}
		}
		b.requests.GetFn = func(string) (dsar.Detail, error) {
			return dsar.Detail{}, apperr.New(apperr.NotFound, "no such privacy request")
		}
		if r := b.do("GET", "/console/requests/"+reqID, nil, as("reviewer")); r.Status != 404 {
			t.Errorf("missing request: %d", r.Status)
		}
	})
}

func TestOtherPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	t.Run("consent lookup by POST with receipts", func(t *testing.T) {
		r := b.post("auditor", "/console/consent", url.Values{"subject": {"email:ann@example.com"}})
		if r.Status != 200 || !strings.Contains(r.Body, "/console/consent/receipts/"+evID) {
			t.Fatalf("%d", r.Status)
		}
		rc := b.do("GET", "/console/consent/receipts/"+evID, nil, as("auditor"))
		if rc.Status != 200 || !strings.Contains(rc.Body, `"jws": "eyJ.x.y"`) {
			t.Fatalf("receipt %d %s", rc.Status, rc.Body)
		}
	})
	t.Run("audit verify shows the head", func(t *testing.T) {
		r := b.do("GET", "/console/audit/verify", nil, as("auditor"))
		if r.Status != 200 || !strings.Contains(r.Body, `data-ok="true"`) || !strings.Contains(r.Body, ">ab<") {
			t.Fatalf("%d", r.Status)
		}
	})
	t.Run("a hold is placed and lifted as the member", func(t *testing.T) {
		r := b.post("reviewer", "/console/retention/holds", url.Values{"scope": {"subject"}, "value": {"email:ann@example.com"}, "reason": {"court order"}, "expires": {"2031-01-31"}})
		if r.Status != 303 || b.retention.actor != principalFor("reviewer").Actor() {
			t.Fatalf("%d %s", r.Status, b.retention.actor)
		}
		if r := b.post("reviewer", "/console/retention/holds", url.Values{"scope": {"planet"}, "value": {"x"}, "reason": {"y"}}); r.Status != 422 {
			t.Fatalf("bad scope: %d", r.Status)
		}
	})
	t.Run("a new key's secret is shown once", func(t *testing.T) {
		r := b.post("admin", "/console/keys", url.Values{"name": {"ci"}, "role": {"auditor"}})
		if r.Status != 201 || !strings.Contains(r.Body, "stw_secret_once") {
			t.Fatalf("%d", r.Status)
		}
		if page := b.do("GET", "/console/keys", nil, as("admin")); strings.Contains(page.Body, "stw_secret_once") {
			t.Fatal("secret shown again")
		}
	})
	t.Run("keys are created and revoked as the member", func(t *testing.T) {
		admin := principalFor("admin").Actor()
		r := b.post("admin", "/console/keys", url.Values{"name": {"ci"}, "role": {"auditor"}, "expires": {"2031-01-31"}})
		if r.Status != 201 || b.keys.actor != admin || !strings.HasPrefix(admin, "staff:") {
			t.Fatalf("%d %q", r.Status, b.keys.actor)
		}
		if e := b.keys.created.ExpiresAt; e == nil || !e.Equal(time.Date(2031, 1, 31, 0, 0, 0, 0, time.UTC)) {
			t.Fatalf("expiry %v", e)
		}
		b.keys.actor = ""
		if r := b.post("admin", "/console/keys", url.Values{"name": {"ci"}, "role": {"auditor"}, "expires": {"next week"}}); r.Status != 422 || b.keys.actor != "" {
			t.Fatalf("bad expiry: %d", r.Status)
		}
		if r := b.post("admin", "/console/keys/"+keyID+"/revoke", nil); r.Status != 303 || b.keys.actor != admin {
			t.Fatalf("revoke: %d %q", r.Status, b.keys.actor)
		}
		if r := b.post("admin", "/console/keys/not-a-key/revoke", nil); r.Status != 404 {
			t.Fatalf("bad id: %d", r.Status)
		}
	})
	t.Run("keys show their last use and expiry", func(t *testing.T) {
		page := b.do("GET", "/console/keys", nil, as("admin"))
		for _, want := range []string{`datetime="2026-03-01T12:00:00Z"`, `datetime="2030-06-01T00:00:00Z"`, "not used yet", "never"} {
			if !strings.Contains(page.Body, want) {
				t.Fatalf("keys page lacks %q", want)
			}
		}
	})
	t.Run("policy explains every field", func(t *testing.T) {
		r := b.do("GET", "/console/policy?request=erasure&regime=gdpr", nil, as("reviewer"))
		if r.Status != 200 || !strings.Contains(r.Body, `id="fields"`) || !strings.Contains(r.Body, b.engine.Revision()) {
			t.Fatalf("%d", r.Status)
		}
		if r := b.do("GET", "/console/policy?request=teleport", nil, as("reviewer")); r.Status != 422 {
			t.Fatalf("bad type: %d", r.Status)
		}
	})
	t.Run("pages render in every language", func(t *testing.T) {
		for _, lang := range []string{"en", "ru", "uz"} {
			for _, p := range []string{"/console/requests", "/console/requests/" + reqID, "/console/audit", "/console/retention", "/console/keys", "/console/policy", "/console/consent"} {
				r := b.do("GET", p+"?lang="+lang, nil, as("admin"))
				if r.Status != 200 || !strings.Contains(r.Body, `<html lang="`+lang+`">`) {
					t.Errorf("%s %s: %d", lang, p, r.Status)
				}
			}
		}
	})
}
