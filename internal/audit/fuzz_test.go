package audit_test

import (
	"encoding/json"
	"testing"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
)

var checkpointDocs = []string{
	`{"seq":20,"hash":"` + "aa" + "00000000000000000000000000000000000000000000000000000000000000"[:62] + `","time":"2026-11-22T10:00:00Z","key_id":"k","signature":"` + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==" + `","public_key":""}`,
	`{}`, `[]`, `{"seq":-1}`, `{"seq":1,"hash":"zz"}`, `not json`,
}

func TestParseCheckpointDocument(t *testing.T) {
	t.Parallel()
	c, err := audit.ParseCheckpointDocument([]byte(checkpointDocs[0]))
	if err != nil || c.Seq != 20 || len(c.Hash) != 32 || len(c.Signature) != 64 {
		t.Fatalf("%+v %v", c, err)
	}
	for _, d := range checkpointDocs[1:] {
		if _, err := audit.ParseCheckpointDocument([]byte(d)); err == nil {
			t.Errorf("accepted %q", d)
		}
	}
}

func FuzzParseCheckpointDocument(f *testing.F) {
	for _, d := range checkpointDocs {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := audit.ParseCheckpointDocument(b)
		if err != nil {
			return
		}
		// Whatever is accepted round-trips through the exported form.
		doc := c.Document(nil)
		raw, _ := json.Marshal(doc)
		c2, err := audit.ParseCheckpointDocument(raw)
		if err != nil || c2.Seq != c.Seq || string(c2.Hash) != string(c.Hash) || !c2.At.Equal(c.At) {
			t.Fatalf("round trip of %q: %v", b, err)
		}
	})
}

var filterCases = []struct{ action, cursor, since, until string }{
	{"key.created", "", "", ""},
	{"consent.*", "", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"},
	{"", "YToxMg", "", ""},
	{"Bad Action", "", "", ""},
	{"", "zzz", "", ""},
	{"", "", "2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z"},
	{"", "", "yesterday", ""},
}

// FuzzFilter checks the audit query parameters: any refusal is a clear
// invalid_request, and an accepted cursor is one the API could have issued.
func FuzzFilter(f *testing.F) {
	for _, c := range filterCases {
		f.Add(c.action, c.cursor, c.since, c.until, false)
	}
	f.Fuzz(func(t *testing.T, action, cursor, since, until string, desc bool) {
		fl := audit.Filter{Action: action, Cursor: cursor, Desc: desc}
		var err error
		check := func(err error) {
			if ae, ok := apperr.As(err); !ok || ae.Code != apperr.Invalid || len(ae.Fields) == 0 {
				t.Fatalf("not a field-level invalid_request: %v", err)
			}
		}
		if fl.Since, err = audit.ParseTime("since", since); err != nil {
			check(err)
			return
		}
		if fl.Until, err = audit.ParseTime("until", until); err != nil {
			check(err)
			return
		}
		if err := fl.Validate(); err != nil {
			check(err)
			return
		}
		if fl.Since != nil && fl.Until != nil && !fl.Since.Before(*fl.Until) {
			t.Fatal("backwards range accepted")
		}
	})
}
