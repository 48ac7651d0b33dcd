package dsar_test

import (
	"bytes"
	"encoding/json"
	"html"
	"io"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/exportpkg"
	"github.com/steward-privacy/steward/internal/testutil"
)

// packageEntry reads one entry of a completed request's package, through
// the link on the person's status page.
func (r *rig) packageEntry(id, statusToken, name string) []byte {
	r.t.Helper()
	zr := r.packageZip(id, statusToken)
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

// TestAccessPackageTellsWithheld: an access request whose task left
// records for staff review (a shared address) completes with a package
// that says so: index.html tells the person how many records were not
// included and why, per system and dataset, and data.json lists them under
// withheld (schema-valid) — counts only, never the reference, the number
// of other holders, or a value. The completion email says how many were
// not included and whom to ask (the controller's contact).
func TestAccessPackageTellsWithheld(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOpts{registry: reviewRegistry, exports: true})
	r.seedWebUser("held@example.com", "u-held", "")
	id, token := r.verifiedWebAccess("held@example.com")
	r.wait(id, dsar.InProgress, dsar.Completed)
	r.completeManual(id)
	r.wait(id, dsar.Completed)

	p := r.download(id, token)
	_, sec, ok := strings.Cut(p.index, `<section id="withheld">`)
	if !ok {
		t.Fatalf("the package's report has no withheld section")
	}
	sec, _, _ = strings.Cut(sec, "</section>")
	for _, want := range []string{
		"2 records were not included because other people&#39;s data is in them (for example, a shared address).",
		"Our staff review them; ask us if you want to know more.",
		"· addresses</td>", "other people&#39;s records use it too", `<td class="num">2</td>`,
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("the withheld section lacks %q:\n%s", want, sec)
		}
	}
	for _, secret := range []string{"held@example.com", "u-held", "Ann Example", "address_id", sharedAddress.Reference} {
		if strings.Contains(sec, secret) {
			t.Errorf("the withheld section holds %q", secret)
		}
	}

	raw := r.packageEntry(id, token, exportpkg.PathData)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if err := testutil.ExportSchema(t).Validate(inst); err != nil {
		t.Fatalf("data.json does not validate: %v", err)
	}
	var data struct {
		Withheld []map[string]any `json:"withheld"`
	}
	if err := json.Unmarshal(raw, &data); err != nil {
		t.Fatal(err)
	}
	if len(data.Withheld) != 1 {
		t.Fatalf("data.json withheld = %v, want one item", data.Withheld)
	}
	w := data.Withheld[0]
	if len(w) != 4 || w["system"] != "app_db" || w["dataset"] != "addresses" || w["reason"] != "held_by_others" || w["records"] != 2.0 {
		t.Errorf("data.json withheld = %v, want app_db/addresses held_by_others 2, nothing else", w)
	}
	if strings.Contains(string(raw), sharedAddress.Reference) {
		t.Error("data.json holds the review item's reference")
	}

	// The email: how many, and whom to ask (app_db is the web product's,
	// whose controller's contact is in products.json).
	var told bool
	for _, m := range r.deliver() {
		if !strings.Contains(m.Subject, id) || !strings.Contains(m.Subject, "completed") {
			continue
		}
		told = true
		for _, want := range []string{
			"2 records were not included in your data because other people's data is in them",
			"write to us at support@nano-bananapro.com and quote the request ID",
		} {
			if !strings.Contains(m.Text, want) || !strings.Contains(m.HTML, html.EscapeString(want)) {
				t.Errorf("the completion email lacks %q:\n%s", want, m.Text)
			}
		}
		for _, secret := range []string{"u-held", "Ann Example", "address_id", sharedAddress.Reference} {
			if strings.Contains(m.Text, secret) {
				t.Errorf("the completion email holds %q", secret)
			}
		}
	}
	if !told {
		t.Error("no completion email")
	}
}
