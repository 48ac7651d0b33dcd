package dsar_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/exportpkg"
	"github.com/steward-privacy/steward/internal/policy"
	"github.com/steward-privacy/steward/policies"
)

// builtPackage is a request's package as the person downloads it.
type builtPackage struct {
	index string
	data  struct {
		Controller  exportpkg.Controller   `json:"controller"`
		Controllers []exportpkg.Controller `json:"controllers"`
		Subject     struct {
			IdentityKinds []string `json:"identity_kinds"`
		} `json:"subject"`
		Records []struct{ System, Dataset, Key string } `json:"records"`
		Files   []any                                   `json:"files"`
	}
}

// packageZip fetches a completed request's package through the link on
// the person's status page, as they would, and opens it.
func (r *rig) packageZip(id, statusToken string) *zip.Reader {
	r.t.Helper()
	ctx := context.Background()
	st, err := r.svc.Status(ctx, id, statusToken)
	if err != nil {
		r.t.Fatal(err)
	}
	token, ok := strings.CutPrefix(st.DownloadURL, exportLinkBase)
	if !ok {
		r.t.Fatalf("no download link on the status page: %+v", st)
	}
	_, rc, err := r.exports.Open(ctx, token)
	if err != nil {
		r.t.Fatal(err)
	}
	raw, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil {
		r.t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		r.t.Fatal(err)
	}
	return zr
}

// download fetches a completed request's package and reads its report and
// data.json.
func (r *rig) download(id, statusToken string) builtPackage {
	r.t.Helper()
	zr := r.packageZip(id, statusToken)
	read := func(name string) []byte {
		f, err := zr.Open(name)
		if err != nil {
			r.t.Fatalf("%s: %v", name, err)
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		if err != nil {
			r.t.Fatal(err)
		}
		return b
	}
	var p builtPackage
	p.index = string(read(exportpkg.PathIndex))
	if err := json.Unmarshal(read(exportpkg.PathData), &p.data); err != nil {
		r.t.Fatal(err)
	}
	return p
}

// completionEmails are the "your request has been completed" emails sent
// for a request.
func (r *rig) completionEmails(id string) int {
	r.t.Helper()
	n := 0
	for _, m := range r.deliver() {
		if strings.Contains(m.Subject, id) && strings.Contains(m.Subject, "completed") {
			n++
		}
	}
	return n
}

// verifiedWebAccess is an access request by email, verified with the code.
func (r *rig) verifiedWebAccess(email string) (id, statusToken string) {
	r.t.Helper()
	ctx := context.Background()
	c, err := r.svc.Create(ctx, webRequest("access", email))
	if err != nil {
		r.t.Fatal(err)
	}
	v, err := r.svc.Verify(ctx, c.Request.ID, r.code(email))
	if err != nil {
		r.t.Fatal(err)
	}
	return c.Request.ID, v.StatusToken
}

const nothingFoundEN = "Nothing found: we hold no personal data about you in these systems"

// TestNothingFoundPausesForStaff: an access request whose tasks all
// succeed and find nothing anywhere (here the person's address is in no
// system) is not packaged nor reported complete: it pauses for staff with
// the reason, audited, and the person is sent nothing. Resuming confirms
// the finding: the package says plainly that nothing is held, and only
// then does the request complete and the person hear of it.
func TestNothingFoundPausesForStaff(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{engine: loadSmallEngine(t), exports: true})
	ctx := context.Background()
	r.seedBotUser("900090") // someone else's data is there
	id, token := r.verifiedWebAccess("nobody@example.com")

	d := r.wait(id, dsar.Paused)
	r.idle()
	d = r.wait(id, dsar.Paused)
	if d.PausedFrom != dsar.InProgress || d.PauseReason != dsar.NothingFoundReason {
		t.Errorf("paused from %q with reason %q", d.PausedFrom, d.PauseReason)
	}
	if !strings.Contains(d.PauseReason, "No records were found for the given identities in any system") {
		t.Errorf("the reason is not in plain words: %q", d.PauseReason)
	}
	if len(d.Tasks) != 5 {
		t.Fatalf("%d tasks, want the five of the small map", len(d.Tasks))
	}
	for _, task := range d.Tasks {
		if task.Status != dsar.TaskSucceeded {
			t.Errorf("task %s %s", task.Dataset, task.Status)
		}
	}
	last := d.Timeline[len(d.Timeline)-1]
	if last.Event != "pause" || last.Actor != "system:dsar" || last.From != "in_progress" || last.To != "paused" || last.Note != dsar.NothingFoundReason {
		t.Errorf("last timeline entry %+v", last)
	}
	if n := r.count(`SELECT count(*) FROM audit_pending WHERE target_id = $1 AND action = 'privacy_request.pause'
		AND actor = 'system:dsar' AND details->>'cause' = 'nothing_found' AND details->>'tasks' = '5' AND details ? 'note_sha256'`, id); n != 1 {
		t.Errorf("%d audit entries of the pause, want 1", n)
	}
	if n := r.count(`SELECT count(*) FROM export_packages WHERE request_id = $1`, id); n != 0 {
		t.Errorf("%d packages built for a request that found nothing", n)
	}
	if n := r.completionEmails(id); n != 0 {
		t.Errorf("the person was told the request is complete (%d emails)", n)
	}
	st, err := r.svc.Status(ctx, id, token)
	if err != nil || st.Status != dsar.Paused || st.DownloadURL != "" {
		t.Errorf("the person's status: %+v, %v", st, err)
	}
	// Staff find it among the requests waiting for them, with the reason.
	list, _, err := r.svc.List(ctx, dsar.Filter{Status: "paused"})
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].PauseReason != dsar.NothingFoundReason {
		t.Fatalf("paused requests: %+v, %v", list, err)
	}

	// Resuming confirms that nothing is held.
	if _, err := r.svc.Resume(ctx, id, "key:reviewer"); err != nil {
		t.Fatal(err)
	}
	d = r.wait(id, dsar.Completed)
	events := eventNames(d.Timeline)
	at := slices.Index(events, "nothing_found_confirmed")
	if at < 0 || d.Timeline[at].Actor != "key:reviewer" || events[at-1] != "resume" || !slices.Contains(events[at:], "package_ready") {
		t.Errorf("timeline %v", events)
	}
	if slices.Contains(events[at:], "pause") {
		t.Errorf("paused again after the confirmation: %v", events)
	}
	if n := r.count(`SELECT count(*) FROM audit_pending WHERE target_id = $1 AND action = 'privacy_request.nothing_found_confirmed' AND actor = 'key:reviewer'`, id); n != 1 {
		t.Errorf("%d audit entries of the confirmation", n)
	}
	if d.PauseReason != "" {
		t.Errorf("a completed request shows a pause reason: %q", d.PauseReason)
	}
	p := r.download(id, token)
	if !strings.Contains(p.index, nothingFoundEN) {
		t.Error("the package does not say that nothing was found")
	}
	if len(p.data.Records) != 0 || len(p.data.Files) != 0 {
		t.Errorf("the package holds %d records and %d files", len(p.data.Records), len(p.data.Files))
	}
	// Nothing found: the product of the systems searched answers (the
	// small map's one system is the bot's).
	if p.data.Controller.Name != "Bananapics" || len(p.data.Controllers) != 1 {
		t.Errorf("controllers %+v", p.data.Controllers)
	}
	if n := r.completionEmails(id); n != 1 {
		t.Errorf("%d completion emails after the confirmation, want 1", n)
	}
}

// TestAccessWithDataIsNotPaused: a request that found records completes
// and packages as before, never pausing.
func TestAccessWithDataIsNotPaused(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{engine: loadSmallEngine(t), exports: true})
	ctx := context.Background()
	r.seedBotUser("900091")
	c, err := r.svc.Create(ctx, botRequest("access", "900091"))
	if err != nil {
		t.Fatal(err)
	}
	d := r.wait(c.Request.ID, dsar.Completed, dsar.Paused)
	if d.Status != dsar.Completed {
		t.Fatalf("status %s (%q)", d.Status, d.PauseReason)
	}
	events := eventNames(d.Timeline)
	if slices.Contains(events, "pause") || slices.Contains(events, "nothing_found_confirmed") {
		t.Errorf("timeline %v", events)
	}
	p := r.download(c.Request.ID, c.StatusToken)
	if len(p.data.Records) != 5 || strings.Contains(p.index, nothingFoundEN) {
		t.Errorf("%d records; nothing-found notice shown: %v", len(p.data.Records), strings.Contains(p.index, nothingFoundEN))
	}
	if p.data.Controller.Name != "Bananapics" {
		t.Errorf("controller %+v", p.data.Controller)
	}
}

// TestReplanWithAnAddedIdentity: staff re-plan a request that found
// nothing with the identity the person's data is really under; the second
// search finds it and the request completes without another pause.
func TestReplanWithAnAddedIdentity(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{engine: loadSmallEngine(t), exports: true})
	ctx := context.Background()
	r.seedBotUser("900092") // the person's account, known by Telegram only
	id, token := r.verifiedWebAccess("ann.other@example.com")
	r.wait(id, dsar.Paused)

	if _, err := r.svc.Replan(ctx, id, "key:reviewer", "", make([]identity.Subject, dsar.MaxAddedIdentities+1)); !isCode(err, apperr.Invalid) {
		t.Errorf("too many identities: %v", err)
	}
	note := "the person wrote that their account is the Telegram one"
	if _, err := r.svc.Replan(ctx, id, "key:reviewer", note, []identity.Subject{identity.MustParse("tg:900092")}); err != nil {
		t.Fatal(err)
	}
	d := r.wait(id, dsar.Completed, dsar.Paused)
	if d.Status != dsar.Completed {
		t.Fatalf("status %s after re-planning (%q)", d.Status, d.PauseReason)
	}
	sources := map[string]string{}
	for _, i := range d.Identities {
		sources[i.Kind] = i.Source
	}
	if sources["email"] != dsar.SourceGiven || sources["tg"] != dsar.SourceStaff+"key:reviewer" {
		t.Errorf("identities %v", sources)
	}
	if len(d.Tasks) != 5 || taskResults(t, d, "records") != 5 {
		t.Errorf("%d tasks disclosing %d records", len(d.Tasks), taskResults(t, d, "records"))
	}
	var replan *dsar.TimelineEntry
	for i, e := range d.Timeline {
		if e.Event == "replan" {
			replan = &d.Timeline[i]
		}
	}
	if replan == nil || replan.From != "paused" || replan.To != "verified" || replan.Actor != "key:reviewer" || replan.Note != note {
		t.Errorf("replan entry %+v", replan)
	}
	if n := r.count(`SELECT count(*) FROM audit_pending WHERE target_id = $1 AND action = 'privacy_request.replan' AND details->'added_identity_kinds' = '["tg"]'`, id); n != 1 {
		t.Errorf("%d audit entries of the re-plan", n)
	}
	p := r.download(id, token)
	if len(p.data.Records) != 5 || !slices.Equal(p.data.Subject.IdentityKinds, []string{"email", "tg"}) {
		t.Errorf("%d records; identity kinds %v", len(p.data.Records), p.data.Subject.IdentityKinds)
	}
	if strings.Contains(p.index, nothingFoundEN) {
		t.Error("a package with records says nothing was found")
	}
	// Only a paused request is planned again.
	if _, err := r.svc.Replan(ctx, id, "key:reviewer", "", nil); !isCode(err, apperr.Conflict) {
		t.Errorf("re-planning a completed request: %v", err)
	}
}

// TestPackageNamesTheControllerOfTheProduct: the controller answering is
// the one of the product whose systems hold the person's data, from the
// reference bundle's products.
func TestPackageNamesTheControllerOfTheProduct(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("a web person: the web product's controller", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, rigOpts{exports: true})
		r.seedWebUser("wendy@example.com", "u-web", "")
		id, token := r.verifiedWebAccess("wendy@example.com")
		r.wait(id, dsar.InProgress, dsar.Completed)
		r.completeManual(id)
		r.wait(id, dsar.Completed)
		p := r.download(id, token)
		want := exportpkg.Controller{Name: "Nano Banana Pro", Contact: "support@nano-bananapro.com"}
		if p.data.Controller != want || len(p.data.Controllers) != 1 {
			t.Errorf("controllers %+v", p.data.Controllers)
		}
	})
	t.Run("a bot person: the bot's controller", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, rigOpts{exports: true})
		r.seedBotUser("900094")
		c, err := r.svc.Create(ctx, botRequest("access", "900094"))
		if err != nil {
			t.Fatal(err)
		}
		r.wait(c.Request.ID, dsar.InProgress, dsar.Completed)
		r.completeManual(c.Request.ID)
		r.wait(c.Request.ID, dsar.Completed)
		p := r.download(c.Request.ID, c.StatusToken)
		want := exportpkg.Controller{Name: "Bananapics", Contact: "blogchikuz@gmail.com"}
		if p.data.Controller != want || len(p.data.Controllers) != 1 {
			t.Errorf("controllers %+v", p.data.Controllers)
		}
	})
	t.Run("a person of both products: each controller", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, rigOpts{exports: true})
		r.seedWebUser("bo@example.com", "u-both", "900095")
		id, token := r.verifiedWebAccess("bo@example.com")
		r.wait(id, dsar.InProgress, dsar.Completed)
		r.completeManual(id)
		r.wait(id, dsar.Completed)
		p := r.download(id, token)
		var names []string
		for _, c := range p.data.Controllers {
			names = append(names, c.Name)
		}
		if !slices.Equal(names, []string{"Bananapics", "Nano Banana Pro"}) || p.data.Controller.Name != names[0] {
			t.Errorf("controllers %v, controller %+v", names, p.data.Controller)
		}
		if !strings.Contains(p.index, "<dd>Bananapics</dd>") || !strings.Contains(p.index, "<dd>Nano Banana Pro</dd>") {
			t.Error("the report does not name both controllers")
		}
	})
	t.Run("a bundle whose product has another name", func(t *testing.T) {
		t.Parallel()
		e := loadStudioEngine(t)
		r := newRig(t, rigOpts{engine: e, exports: true})
		r.seedBotUser("900096")
		c, err := r.svc.Create(ctx, botRequest("access", "900096"))
		if err != nil {
			t.Fatal(err)
		}
		r.wait(c.Request.ID, dsar.Completed)
		p := r.download(c.Request.ID, c.StatusToken)
		want := exportpkg.Controller{Name: "Studio Pictures GmbH", Contact: "privacy@studio.example"}
		if p.data.Controller != want || len(p.data.Controllers) != 1 {
			t.Errorf("controllers %+v", p.data.Controllers)
		}
	})
}

// loadStudioEngine is the five-dataset bundle with its one system moved to
// a product named "studio", whose controller is nobody of the reference
// bundle.
func loadStudioEngine(t *testing.T) *policy.Engine {
	t.Helper()
	src := replaceDataMap(policies.FS, strings.Replace(fiveDatasetMap, "products: [bot]", "products: [studio]", 1)).(fstest.MapFS)
	raw, err := fs.ReadFile(src, "data/products.json")
	if err != nil {
		t.Fatal(err)
	}
	var products map[string]any
	if err := json.Unmarshal(raw, &products); err != nil {
		t.Fatal(err)
	}
	products["studio"] = map[string]any{"name": "Studio", "description": "A photo studio's app.", "minimum_age": 16, "notice_version": "1.0",
		"controller": map[string]any{"name": "Studio Pictures GmbH", "contact": "privacy@studio.example"}}
	b, err := json.Marshal(products)
	if err != nil {
		t.Fatal(err)
	}
	src["data/products.json"] = &fstest.MapFile{Data: b, Mode: 0o644}
	e, err := policy.Load(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestErasureThatFindsNothingPauses: an erasure whose tasks touched nothing
// anywhere (a wrong identity, or one an earlier run already removed) is
// not reported complete and verified; staff resume to confirm. One that
// found the person completes without a pause.
func TestErasureThatFindsNothingPauses(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{engine: loadSmallEngine(t)})
	ctx := context.Background()
	r.seedBotUser("900097") // someone else's data is there
	id := r.approvedErasure("900098")
	d := r.wait(id, dsar.Paused, dsar.Completed)
	if d.Status != dsar.Paused || d.PauseReason != dsar.NothingErasedReason {
		t.Fatalf("status %s, reason %q", d.Status, d.PauseReason)
	}
	if n := r.count(`SELECT count(*) FROM audit_pending WHERE target_id = $1 AND action = 'privacy_request.pause'
		AND actor = 'system:dsar' AND details->>'cause' = 'nothing_found'`, id); n != 1 {
		t.Errorf("%d audit entries of the pause, want 1", n)
	}
	if _, err := r.svc.Resume(ctx, id, "key:reviewer"); err != nil {
		t.Fatal(err)
	}
	d = r.wait(id, dsar.Completed, dsar.Paused)
	events := eventNames(d.Timeline)
	if d.Status != dsar.Completed || !slices.Contains(events, "nothing_found_confirmed") || slices.Contains(events[slices.Index(events, "nothing_found_confirmed"):], "pause") {
		t.Errorf("after the confirmation: %s, timeline %v", d.Status, events)
	}

	found := r.approvedErasure("900097")
	if d := r.wait(found, dsar.Completed, dsar.Paused); d.Status != dsar.Completed || slices.Contains(eventNames(d.Timeline), "pause") {
		t.Errorf("an erasure that found the person: %s, timeline %v", d.Status, eventNames(d.Timeline))
	}
}
