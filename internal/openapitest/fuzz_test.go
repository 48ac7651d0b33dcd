package openapitest_test

import (
	"bytes"
	"math/rand/v2"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/openapitest"
)

func TestLoadRequestsReadsEveryOperation(t *testing.T) {
	specs, err := openapitest.LoadRequests(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapitest.Load(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range specs {
		names = append(names, s.Name())
		if !s.Public && s.Action == "" {
			t.Errorf("%s: keyed operation without an action", s.Name())
		}
	}
	if !reflect.DeepEqual(names, doc.Operations()) {
		t.Fatalf("LoadRequests lists %v\nOperations lists %v", names, doc.Operations())
	}
}

func TestLoadRequestsRefusesAnOperationWithoutItsPermission(t *testing.T) {
	doc := `{"openapi":"3.1.0","paths":{"/x":{"get":{"description":"Reads x.","responses":{"200":{"description":"ok"}}}}}}`
	if _, err := openapitest.LoadRequests([]byte(doc)); err == nil || !strings.Contains(err.Error(), "GET /x") {
		t.Fatalf("err = %v, want one naming GET /x", err)
	}
}

func TestFuzzIsSeededAndHostile(t *testing.T) {
	specs, err := openapitest.LoadRequests(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	var spec openapitest.RequestSpec
	for _, s := range specs {
		if s.Name() == "POST /v1/legal-holds/{id}/lift" {
			spec = s
		}
	}
	base := openapitest.Base{PathParams: map[string]string{"id": "0190b6f4-0000-7000-8000-000000000000"}, Query: url.Values{}}
	a := openapitest.Fuzz(spec, base, rand.New(rand.NewPCG(1, 2)))
	b := openapitest.Fuzz(spec, base, rand.New(rand.NewPCG(1, 2)))
	if !reflect.DeepEqual(a, b) {
		t.Fatal("the same seed generated different inputs")
	}
	want := map[string]func(openapitest.Input) bool{
		"body reason: invalid UTF-8": func(in openapitest.Input) bool { return bytes.Contains(in.Body, []byte("\xff\xfe")) },
		"body reason: raw NUL byte":  func(in openapitest.Input) bool { return bytes.IndexByte(in.Body, 0) >= 0 },
		"body reason: NUL byte":      func(in openapitest.Input) bool { return bytes.Contains(in.Body, []byte(`\u0000`)) },
		"body reason: missing":       func(in openapitest.Input) bool { return string(in.Body) == "{}" },
		"body reason: too long":      func(in openapitest.Input) bool { return len(in.Body) > 2000 },
		"path id: upper case":        func(in openapitest.Input) bool { return strings.Contains(in.Path, "0190B6F4") },
		"path id: encoded slash traversal": func(in openapitest.Input) bool {
			return strings.Contains(in.Path, "..%2f")
		},
		"body: wrong content type": func(in openapitest.Input) bool { return in.ContentType == "text/plain" },
		"body: none":               func(in openapitest.Input) bool { return in.Body == nil },
	}
	for _, in := range a {
		if check, ok := want[in.Name]; ok {
			if !check(in) {
				t.Errorf("%s: %q %q", in.Name, in.Path, in.Body)
			}
			delete(want, in.Name)
		}
	}
	for name := range want {
		t.Errorf("no input %q", name)
	}
}
