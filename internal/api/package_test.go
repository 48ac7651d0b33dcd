package api_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/identity"
	"github.com/steward-privacy/steward/internal/api"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/exports"
)

// TestStaffPackageDownload: staff get a request's package with the same
// bytes and headers as the person's link; a request without one, or a
// deployment keeping none, is a problem+json 404; a malformed id is refused
// before the store is asked.
func TestStaffPackageDownload(t *testing.T) {
	t.Parallel()
	t.Run("streams the package with the download headers", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		const zip = "PK\x03\x04 a package"
		var closed bool
		e.exports.OpenForStaffFn = func(_ context.Context, id, actor string) (exports.Package, io.ReadCloser, error) {
			return exports.Package{ID: "pkg-1", RequestID: id, Size: int64(len(zip)), SHA256: "0123abcd"},
				readCloser{strings.NewReader(zip), func() { closed = true }}, nil
		}
		res := e.do(req{method: "GET", path: "/v1/privacy-requests/" + reqID + "/package", role: "reviewer"})
		res.ok(t, 200, nil)
		if string(res.body) != zip {
			t.Errorf("body %q", res.body)
		}
		for h, want := range map[string]string{
			"Content-Type": "application/zip", "Content-Disposition": `attachment; filename="personal-data-` + reqID + `.zip"`,
			"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "Digest": "sha-256=0123abcd",
		} {
			if got := res.header.Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
		if !closed {
			t.Error("the package stream was not closed")
		}
		e.wantCalls(t, "Exports.OpenForStaff")
	})
	t.Run("no package is a 404 problem", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.exports.OpenForStaffFn = func(context.Context, string, string) (exports.Package, io.ReadCloser, error) {
			return exports.Package{}, nil, exports.ErrNoPackage
		}
		p := e.do(req{method: "GET", path: "/v1/privacy-requests/" + reqID + "/package", role: "admin"}).problem(t, 404, "not_found")
		if !strings.Contains(p.Detail, "no package") {
			t.Errorf("detail %q", p.Detail)
		}
		e.wantCalls(t, "Exports.OpenForStaff")
	})
	t.Run("a malformed id is not found, without asking the store", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.do(req{method: "GET", path: "/v1/privacy-requests/not-a-uuid/package", role: "reviewer"}).problem(t, 404, "not_found")
		e.wantCalls(t)
	})
	t.Run("a deployment without export packages is not found", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, func(d *api.Deps) { d.Exports = (*exports.Store)(nil) })
		p := e.do(req{method: "GET", path: "/v1/privacy-requests/" + reqID + "/package", role: "reviewer"}).problem(t, 404, "not_found")
		if !strings.Contains(p.Detail, "keeps no export packages") {
			t.Errorf("detail %q", p.Detail)
		}
	})
}

type readCloser struct {
	io.Reader
	close func()
}

func (r readCloser) Close() error {
	r.close()
	return nil
}

// TestReplanRefusesBadIdentities: identities are parsed like an intake
// subject; a bad one, or too many, is a 400 naming the field, and the
// service is not asked.
func TestReplanRefusesBadIdentities(t *testing.T) {
	t.Parallel()
	many := `"tg:1"` + strings.Repeat(`,"tg:1"`, dsar.MaxAddedIdentities)
	for name, c := range map[string]struct{ body, field string }{
		"not a subject":  {`{"identities":["ann@example.com"]}`, "identities[0]"},
		"a bad tg id":    {`{"identities":["email:a@example.com","tg:abc"]}`, "identities[1]"},
		"too many":       {`{"identities":[` + many + `]}`, "identities"},
		"an extra field": {`{"identities":[],"reason":"x"}`, ""},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			p := e.do(req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/replan", role: "reviewer", body: c.body}).problem(t, 400, "invalid_request")
			if c.field != "" && (len(p.Errors) != 1 || p.Errors[0].Field != c.field) {
				t.Errorf("errors %+v, want one on %s", p.Errors, c.field)
			}
			e.wantCalls(t)
		})
	}
	t.Run("no body re-plans as it is", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		var added []identity.Subject
		e.requests.ReplanFn = func(_ context.Context, id, _, _ string, add []identity.Subject) (dsar.Request, error) {
			added = add
			return dsar.Request{ID: id}, nil
		}
		e.do(req{method: "POST", path: "/v1/privacy-requests/" + reqID + "/replan", role: "reviewer"}).ok(t, 200, nil)
		if len(added) != 0 {
			t.Errorf("added %v", added)
		}
		e.wantCalls(t, "Requests.Replan")
	})
}
