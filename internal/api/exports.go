package api

import (
	"context"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/exports"
)

// ExportStore opens export packages by their signed links (*exports.Store).
type ExportStore interface {
	// Open checks the link, counts and audits the download, and returns the
	// package and its decrypting stream, which the caller closes.
	Open(ctx context.Context, token string) (exports.Package, io.ReadCloser, error)
	// OpenForStaff audits a staff download (actor "key:<id>") of a
	// request's newest package and returns it with its decrypting stream;
	// not found when the request has none.
	OpenForStaff(ctx context.Context, requestID, actor string) (exports.Package, io.ReadCloser, error)
}

// downloadExport streams an export package to the person holding its link.
// The link is the credential (no API key): it is signed, expires, and every
// use is counted and audited. The package is decrypted as it streams, so a
// 1 GiB package never sits in memory.
func (s *server) downloadExport(c *fiber.Ctx) error {
	if s.Exports == nil {
		return apperr.New(apperr.NotFound, "this deployment keeps no export packages")
	}
	token := strings.Clone(c.Params("token"))
	p, rc, err := s.Exports.Open(c.UserContext(), token)
	if err != nil {
		return err
	}
	sendPackage(c, p, rc)
	return nil
}

// downloadRequestPackage streams a request's package to staff: the same
// bytes and headers as the person's link, authorized by the authz policy
// (requests.download_package) instead of the link, and audited with the
// caller's key. 404 when the request has no package (none was built yet,
// or it expired).
func (s *server) downloadRequestPackage(c *fiber.Ctx) error {
	if err := s.authorize(c, "requests.download_package"); err != nil {
		return err
	}
	id, err := requestID(c)
	if err != nil {
		return err
	}
	if s.Exports == nil {
		return apperr.New(apperr.NotFound, "this deployment keeps no export packages")
	}
	p, rc, err := s.Exports.OpenForStaff(c.UserContext(), id, "key:"+callerKey(c).ID)
	if err != nil {
		return err
	}
	sendPackage(c, p, rc)
	return nil
}

// sendPackage streams a package with the headers every download carries;
// fasthttp closes rc once the body is sent.
func sendPackage(c *fiber.Ctx, p exports.Package, rc io.ReadCloser) {
	c.Set(fiber.HeaderContentType, "application/zip")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="personal-data-`+p.RequestID+`.zip"`)
	// The link is a secret: keep it (and the package) out of caches and
	// referrers.
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set("Referrer-Policy", "no-referrer")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set("Digest", "sha-256="+p.SHA256)
	c.Context().SetBodyStream(rc, int(p.Size))
}
