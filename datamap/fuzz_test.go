package datamap_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/steward-privacy/steward/datamap"
)

// FuzzParse feeds arbitrary files to Parse. It must never panic; a refusal
// is an *Error whose problems each name the file and fit on one line (they
// are printed to terminals and logs); and an accepted map re-validates and
// survives a round trip through its own YAML form unchanged.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	for _, tc := range problemCases {
		f.Add([]byte(edit(f, tc.edits...)))
	}
	f.Add(referenceSource(f))
	refs := testRefs(f)
	f.Fuzz(func(t *testing.T, src []byte) {
		m, err := datamap.Parse("f.yaml", src, refs)
		if err != nil {
			var de *datamap.Error
			if !errors.As(err, &de) || len(de.Problems) == 0 {
				t.Fatalf("error %T %v is not a *datamap.Error with problems", err, err)
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(de.Problems) {
				t.Fatalf("%d problems print as %d lines:\n%s", len(de.Problems), n, err)
			}
			lines := bytes.Count(src, []byte("\n")) + 1
			for _, p := range de.Problems {
				if p.File != "f.yaml" || p.Message == "" || p.Line < 0 || p.Line > lines+1 {
					t.Fatalf("bad problem %+v (file has %d lines)", p, lines)
				}
			}
			return
		}
		if err := m.Validate(refs); err != nil {
			t.Fatalf("accepted map fails Validate: %v", err)
		}
		out, err := yaml.Marshal(m)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		m2, err := datamap.Parse("f2.yaml", out, refs)
		if err != nil {
			t.Fatalf("round trip refused: %v\n%s", err, out)
		}
		a, _ := json.Marshal(m)
		b, _ := json.Marshal(m2)
		if !bytes.Equal(a, b) {
			t.Fatalf("round trip changed the map\n%s\n%s", a, b)
		}
		for _, fr := range m.Fields() {
			if _, err := m.ReachPath(fr.System, fr.Dataset); err != nil {
				t.Fatalf("accepted map has an unreachable dataset: %v", err)
			}
		}
	})
}
