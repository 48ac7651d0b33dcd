package dsar

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/steward-privacy/steward/internal/apperr"
)

// MaxDocumentSize bounds an uploaded document: a scanned, signed page or
// two as PDF or a phone photo fits; an archive of anything else does not.
const MaxDocumentSize = 4 << 20

// DocAgentAuthorization is an authorized agent's signed authorization.
const DocAgentAuthorization = "agent_authorization"

// Document is a file uploaded with a request.
type Document struct {
	Name        string // the file name as uploaded (personal data: sealed)
	ContentType string // detected from the content, never taken from the upload
	Content     []byte
	Size        int
	SHA256      string // hex
}

// documentTypes are the formats a signed authorization comes in, by their
// leading bytes. The browser's Content-Type is not trusted: a file staff
// open must be what it claims to be.
var documentTypes = []struct {
	magic []byte
	ctype string
}{
	{[]byte("%PDF-"), "application/pdf"},
	{[]byte("\x89PNG\r\n\x1a\n"), "image/png"},
	{[]byte("\xff\xd8\xff"), "image/jpeg"},
}

// DetectDocument returns the media type of an acceptable document, or ""
// when the content is not a PDF, PNG or JPEG.
func DetectDocument(content []byte) string {
	for _, t := range documentTypes {
		if bytes.HasPrefix(content, t.magic) {
			return t.ctype
		}
	}
	return ""
}

// validateDocument checks an uploaded document and fills in what is
// derived from its content.
func validateDocument(d *Document) error {
	if len(d.Content) == 0 {
		return apperr.Field("authorization_document", "is empty")
	}
	if len(d.Content) > MaxDocumentSize {
		return apperr.Field("authorization_document", "larger than %d MiB", MaxDocumentSize>>20)
	}
	ct := DetectDocument(d.Content)
	if ct == "" {
		return apperr.Field("authorization_document", "must be a PDF, PNG or JPEG file")
	}
	d.Name = strings.TrimSpace(d.Name)
	if len(d.Name) > 200 || !utf8.ValidString(d.Name) || strings.ContainsAny(d.Name, "\x00/\\") {
		d.Name = "authorization" + map[string]string{"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}[ct]
	}
	d.ContentType, d.Size = ct, len(d.Content)
	sum := sha256.Sum256(d.Content)
	d.SHA256 = hex.EncodeToString(sum[:])
	return nil
}

type documentMeta struct {
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
}

// storeDocument seals d into the request's documents, in tx.
func (s *Service) storeDocument(ctx context.Context, tx pgx.Tx, requestID, kind string, d Document) error {
	kid, content, err := s.Keys.Seal(d.Content, sealAAD(requestID, "document:"+kind))
	if err != nil {
		return fmt.Errorf("dsar: seal document: %w", err)
	}
	// Both halves under one key id: sealed together, rotated together.
	mkid, meta, err := s.seal(requestID, "document-meta:"+kind, documentMeta{Name: d.Name, ContentType: d.ContentType})
	if err != nil {
		return fmt.Errorf("dsar: seal document: %w", err)
	}
	if mkid != kid {
		return errors.New("dsar: keyring rotated while sealing a document")
	}
	sum, _ := hex.DecodeString(d.SHA256)
	if _, err := tx.Exec(ctx, `
		INSERT INTO privacy_request_documents (request_id, kind, kid, content, meta, size, sha256, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		requestID, kind, kid, content, meta, d.Size, sum, s.Clock.Now()); err != nil {
		return fmt.Errorf("dsar: store document: %w", err)
	}
	return nil
}

// DocumentInfo is what staff see of a document before opening it.
type DocumentInfo struct {
	Kind   string `json:"kind"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

// documents lists a request's documents without opening them.
func (s *Service) documents(ctx context.Context, tx pgx.Tx, requestID string) ([]DocumentInfo, error) {
	rows, err := tx.Query(ctx, `SELECT kind, size, sha256 FROM privacy_request_documents WHERE request_id = $1 ORDER BY kind`, requestID)
	if err != nil {
		return nil, fmt.Errorf("dsar: list documents: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (DocumentInfo, error) {
		var d DocumentInfo
		var sum []byte
		err := r.Scan(&d.Kind, &d.Size, &sum)
		d.SHA256 = hex.EncodeToString(sum)
		return d, err
	})
}

// OpenDocument opens one of a request's documents for staff. Opening is
// recorded on the request's timeline (and so in the audit log) with the
// document's hash: who looked at an agent's authorization, and when.
func (s *Service) OpenDocument(ctx context.Context, requestID, kind, actor string) (Document, error) {
	var d Document
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := s.lock(ctx, tx, requestID); err != nil {
			return err
		}
		var kid string
		var content, meta, sum []byte
		err := tx.QueryRow(ctx, `SELECT kid, content, meta, sha256 FROM privacy_request_documents WHERE request_id = $1 AND kind = $2`,
			requestID, kind).Scan(&kid, &content, &meta, &sum)
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.New(apperr.NotFound, "this request has no such document")
		}
		if err != nil {
			return fmt.Errorf("dsar: read document: %w", err)
		}
		plain, err := s.Keys.Open(kid, content, sealAAD(requestID, "document:"+kind))
		if err != nil {
			return fmt.Errorf("dsar: open document: %w", err)
		}
		var m documentMeta
		if err := s.open(requestID, "document-meta:"+kind, kid, meta, &m); err != nil {
			return fmt.Errorf("dsar: open document: %w", err)
		}
		d = Document{Name: m.Name, ContentType: m.ContentType, Content: plain, Size: len(plain), SHA256: hex.EncodeToString(sum)}
		return s.event(ctx, tx, requestID, "document_opened", "", "", actor, "", map[string]any{"kind": kind, "sha256": d.SHA256})
	})
	return d, err
}
