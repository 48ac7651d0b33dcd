// Package exports keeps the packages access and portability requests
// produce and hands them to the person safely.
//
// A package is personal data in bulk — everything a company holds about
// someone, in one file — so it is never at rest in the clear: it is sealed
// as it is written (internal/sealstream, AES-256-GCM in chunks) under a key
// of its own, which is wrapped by the master keyring and kept in the
// database. The person downloads it through a signed link that expires
// (7 days by default): the token names the package and its expiry and
// carries an HMAC under a key derived from the keyring, so a tampered or
// made-up token is refused before any lookup; the database keeps only the
// token's SHA-256, so a copy of the table cannot download anything. Each
// download is counted and audited; expired packages are deleted.
package exports

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/keyring"
	"github.com/steward-privacy/steward/internal/sealstream"
)

// DefaultTTL is how long a download link works.
const DefaultTTL = 7 * 24 * time.Hour

// linkKeyLabel derives the link-signing key from the identity keyring, so a
// deployment has one secret to keep. Rotating the keyring's active key
// invalidates outstanding links (the packages stay; staff can issue a new
// link).
const linkKeyLabel = "steward/exports/link-key/v1"

// tokenPrefix marks a download token, so one pasted in the wrong place is
// recognisable (and secret scanners can find it).
const tokenPrefix = "sxp_"

// token layout: package id (16) | expiry, unix seconds (8) | nonce (16) | HMAC-SHA256 (32).
const (
	tokenBody = 16 + 8 + 16
	tokenLen  = tokenBody + sha256.Size
)

// Store keeps export packages.
type Store struct {
	Pool   *pgxpool.Pool
	Bucket *blob.Bucket
	Keys   *keyring.Keyring
	Audit  *audit.Log
	Clock  clock.Clock
	// TTL is how long a link works; DefaultTTL when zero.
	TTL time.Duration
}

// Package describes a stored package (never its content or link).
type Package struct {
	ID             string     `json:"id"`
	RequestID      string     `json:"request_id"`
	Size           int64      `json:"size"`
	SHA256         string     `json:"sha256"`
	CreatedAt      time.Time  `json:"created_at"`
	ExpiresAt      time.Time  `json:"expires_at"`
	Downloads      int        `json:"downloads"`
	LastDownloadAt *time.Time `json:"last_download_at,omitempty"`
	DeletedAt      *time.Time `json:"deleted_at,omitempty"`
}

func (s *Store) now() time.Time {
	if s.Clock == nil {
		return time.Now().UTC()
	}
	return s.Clock.Now()
}

func (s *Store) ttl() time.Duration {
	if s.TTL <= 0 {
		return DefaultTTL
	}
	return s.TTL
}

func blobKey(requestID, id string) string { return "exports/" + requestID + "/" + id }

func aad(id string) []byte { return []byte("steward/export/v1\x00" + id) }

// countingHash counts and hashes the plaintext written through it.
type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// Create runs write with a writer that seals into the export store, then
// records the package and returns it with its download link token. A
// failed write leaves nothing behind.
func (s *Store) Create(ctx context.Context, requestID string, write func(w io.Writer) error) (Package, string, error) {
	id := uuid.NewString()
	key, err := sealstream.NewKey()
	if err != nil {
		return Package{}, "", err
	}
	kid, wrapped, err := s.Keys.Seal(key, aad(id))
	if err != nil {
		return Package{}, "", fmt.Errorf("exports: wrap key: %w", err)
	}
	bk := blobKey(requestID, id)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bw, err := s.Bucket.NewWriter(wctx, bk, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return Package{}, "", fmt.Errorf("exports: open store: %w", err)
	}
	sw, err := sealstream.NewWriter(bw, key, aad(id))
	if err != nil {
		cancel()
		_ = bw.Close()
		return Package{}, "", err
	}
	sum := &countingHash{h: sha256.New()}
	err = write(io.MultiWriter(sw, sum))
	if err == nil {
		err = sw.Close()
	}
	if err != nil {
		cancel() // gocloud discards a blob whose writer's context is cancelled
		_ = bw.Close()
		return Package{}, "", fmt.Errorf("exports: write package: %w", err)
	}
	if err := bw.Close(); err != nil {
		return Package{}, "", fmt.Errorf("exports: store package: %w", err)
	}
	now := s.now()
	p := Package{ID: id, RequestID: requestID, Size: sum.n, SHA256: hex.EncodeToString(sum.h.Sum(nil)),
		CreatedAt: now, ExpiresAt: now.Add(s.ttl())}
	token, err := s.sign(id, p.ExpiresAt)
	if err != nil {
		return Package{}, "", err
	}
	th := sha256.Sum256([]byte(token))
	digest, _ := hex.DecodeString(p.SHA256)
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO export_packages (id, request_id, blob_key, kid, wrapped_key, token_hash, size, sha256, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			id, requestID, bk, kid, wrapped, th[:], p.Size, digest, p.CreatedAt, p.ExpiresAt); err != nil {
			return fmt.Errorf("exports: record package: %w", err)
		}
		return s.Audit.Append(ctx, tx, audit.Record{Actor: "system:exports", Action: "export.created", TargetType: "privacy_request",
			TargetID: requestID, Details: map[string]any{"package_id": id, "size": p.Size, "sha256": p.SHA256, "expires_at": p.ExpiresAt}})
	})
	if err != nil {
		_ = s.Bucket.Delete(context.WithoutCancel(ctx), bk)
		return Package{}, "", err
	}
	return p, token, nil
}

func (s *Store) linkKey() []byte { return s.Keys.HashValue(linkKeyLabel) }

func (s *Store) sign(id string, expires time.Time) (string, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", err
	}
	b := make([]byte, tokenBody, tokenLen)
	copy(b, u[:])
	binary.BigEndian.PutUint64(b[16:], uint64(expires.Unix()))
	if _, err := rand.Read(b[24:40]); err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, s.linkKey())
	m.Write(b)
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(m.Sum(b)), nil
}

// errBadLink is what every unusable link gets: whether it was made up,
// tampered with, or names a package that never existed is not told apart.
var errBadLink = apperr.New(apperr.NotFound, "this download link is not valid")

// ErrExpired is returned for a genuine link past its expiry (or whose
// package was deleted): the person should ask for a new one.
var ErrExpired = apperr.New(apperr.Gone, "this download link has expired; ask for a new one")

// parse checks a token's form and signature and returns the package id and
// expiry it carries.
func (s *Store) parse(token string) (string, time.Time, error) {
	raw, ok := bytes.CutPrefix([]byte(token), []byte(tokenPrefix))
	if !ok || len(raw) > 2*tokenLen {
		return "", time.Time{}, errBadLink
	}
	b, err := base64.RawURLEncoding.DecodeString(string(raw))
	if err != nil || len(b) != tokenLen {
		return "", time.Time{}, errBadLink
	}
	m := hmac.New(sha256.New, s.linkKey())
	m.Write(b[:tokenBody])
	if !hmac.Equal(m.Sum(nil), b[tokenBody:]) {
		return "", time.Time{}, errBadLink
	}
	id, err := uuid.FromBytes(b[:16])
	if err != nil {
		return "", time.Time{}, errBadLink
	}
	return id.String(), time.Unix(int64(binary.BigEndian.Uint64(b[16:24])), 0).UTC(), nil
}

// Open checks a download link and streams the package, decrypting as it
// goes. The download is counted and audited before the first byte. A
// stream that fails part-way (a tampered blob) ends in an error, never in
// unauthenticated bytes.
func (s *Store) Open(ctx context.Context, token string) (Package, io.ReadCloser, error) {
	id, exp, err := s.parse(token)
	if err != nil {
		return Package{}, nil, err
	}
	now := s.now()
	if !now.Before(exp) {
		return Package{}, nil, ErrExpired
	}
	th := sha256.Sum256([]byte(token))
	var p Package
	var bk, kid string
	var wrapped, digest []byte
	err = pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			UPDATE export_packages SET downloads = downloads + 1, last_download_at = $3
			WHERE id = $1 AND token_hash = $2 AND deleted_at IS NULL AND expires_at > $3
			RETURNING request_id::text, blob_key, kid, wrapped_key, size, sha256, created_at, expires_at, downloads`,
			id, th[:], now).Scan(&p.RequestID, &bk, &kid, &wrapped, &p.Size, &digest, &p.CreatedAt, &p.ExpiresAt, &p.Downloads)
		if errors.Is(err, pgx.ErrNoRows) {
			// Signed by us and not expired by its own clock: the package
			// was deleted or expired early.
			return ErrExpired
		}
		if err != nil {
			return fmt.Errorf("exports: find package: %w", err)
		}
		p.ID, p.SHA256, p.LastDownloadAt = id, hex.EncodeToString(digest), &now
		return s.Audit.Append(ctx, tx, audit.Record{Actor: "system:exports", Action: "export.downloaded", TargetType: "privacy_request",
			TargetID: p.RequestID, Details: map[string]any{"package_id": id, "download": p.Downloads}})
	})
	if err != nil {
		return Package{}, nil, err
	}
	rc, err := s.stream(ctx, id, bk, kid, wrapped, ErrExpired)
	if err != nil {
		return Package{}, nil, err
	}
	return p, rc, nil
}

// stream opens a stored package's blob and decrypts it as it is read.
// missing is the error for a blob that is gone.
func (s *Store) stream(ctx context.Context, id, bk, kid string, wrapped []byte, missing error) (io.ReadCloser, error) {
	key, err := s.Keys.Open(kid, wrapped, aad(id))
	if err != nil {
		return nil, fmt.Errorf("exports: unwrap key: %w", err)
	}
	br, err := s.Bucket.NewReader(ctx, bk, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, missing
		}
		return nil, fmt.Errorf("exports: open package: %w", err)
	}
	sr, err := sealstream.NewReader(br, key, aad(id))
	if err != nil {
		_ = br.Close()
		return nil, fmt.Errorf("exports: open package: %w", err)
	}
	return struct {
		io.Reader
		io.Closer
	}{sr, br}, nil
}

// ErrNoPackage is what staff get for a request without a package to
// download: none was built (not an access or export request, not finished,
// or it found nothing and waits for staff), or it expired and was deleted.
var ErrNoPackage = apperr.New(apperr.NotFound, "this request has no package to download (none was built, or it expired and was deleted)")

// OpenForStaff streams a request's newest package, decrypting as it goes,
// to staff (actor: "key:<id>"), without its link: staff check what a
// person received, or hand it over another way. The download is audited
// before the first byte (export.staff_downloaded: the actor, the request,
// the package; no personal data) and is not counted as the person's. A
// package past its expiry is treated as deleted, as it is about to be.
func (s *Store) OpenForStaff(ctx context.Context, requestID, actor string) (Package, io.ReadCloser, error) {
	if _, err := uuid.Parse(requestID); err != nil {
		return Package{}, nil, ErrNoPackage
	}
	now := s.now()
	var p Package
	var bk, kid string
	var wrapped, digest []byte
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			SELECT id::text, request_id::text, blob_key, kid, wrapped_key, size, sha256, created_at, expires_at, downloads, last_download_at
			FROM export_packages WHERE request_id = $1 AND deleted_at IS NULL AND expires_at > $2
			ORDER BY created_at DESC, id LIMIT 1`, requestID, now).Scan(&p.ID, &p.RequestID, &bk, &kid, &wrapped, &p.Size, &digest,
			&p.CreatedAt, &p.ExpiresAt, &p.Downloads, &p.LastDownloadAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNoPackage
		}
		if err != nil {
			return fmt.Errorf("exports: find package: %w", err)
		}
		p.SHA256 = hex.EncodeToString(digest)
		return s.Audit.Append(ctx, tx, audit.Record{Actor: actor, Action: "export.staff_downloaded", TargetType: "privacy_request",
			TargetID: p.RequestID, Details: map[string]any{"package_id": p.ID, "size": p.Size, "sha256": p.SHA256}})
	})
	if err != nil {
		return Package{}, nil, err
	}
	rc, err := s.stream(ctx, p.ID, bk, kid, wrapped, ErrNoPackage)
	if err != nil {
		return Package{}, nil, err
	}
	return p, rc, nil
}

// ExpireDue deletes the packages whose links have expired: their blobs go,
// their rows stay marked deleted, as the record that they existed. It
// CountDue counts the packages ExpireDue would delete now (a retention
// plan's figure).
func (s *Store) CountDue(ctx context.Context) (int, error) {
	var n int
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM export_packages WHERE deleted_at IS NULL AND expires_at <= $1`, s.now()).Scan(&n); err != nil {
		return 0, fmt.Errorf("exports: count expired: %w", err)
	}
	return n, nil
}

// returns how many it deleted.
func (s *Store) ExpireDue(ctx context.Context) (int, error) {
	now := s.now()
	rows, err := s.Pool.Query(ctx, `SELECT id::text, request_id::text, blob_key FROM export_packages WHERE deleted_at IS NULL AND expires_at <= $1 ORDER BY expires_at LIMIT 1000`, now)
	if err != nil {
		return 0, fmt.Errorf("exports: find expired: %w", err)
	}
	type due struct{ id, req, key string }
	var list []due
	for rows.Next() {
		var d due
		if err := rows.Scan(&d.id, &d.req, &d.key); err != nil {
			rows.Close()
			return 0, err
		}
		list = append(list, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, d := range list {
		if err := s.Bucket.Delete(ctx, d.key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return n, fmt.Errorf("exports: delete package: %w", err)
		}
		err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, `UPDATE export_packages SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL`, d.id, now)
			if err != nil || tag.RowsAffected() == 0 {
				return err
			}
			return s.Audit.Append(ctx, tx, audit.Record{Actor: "system:exports", Action: "export.expired", TargetType: "privacy_request",
				TargetID: d.req, Details: map[string]any{"package_id": d.id}})
		})
		if err != nil {
			return n, fmt.Errorf("exports: mark deleted: %w", err)
		}
		n++
	}
	return n, nil
}

// ForRequest lists a request's packages, newest first.
func (s *Store) ForRequest(ctx context.Context, requestID string) ([]Package, error) {
	if _, err := uuid.Parse(requestID); err != nil {
		return nil, apperr.New(apperr.NotFound, "no such request")
	}
	rows, err := s.Pool.Query(ctx, `
		SELECT id::text, request_id::text, size, sha256, created_at, expires_at, downloads, last_download_at, deleted_at
		FROM export_packages WHERE request_id = $1 ORDER BY created_at DESC`, requestID)
	if err != nil {
		return nil, fmt.Errorf("exports: list: %w", err)
	}
	defer rows.Close()
	var out []Package
	for rows.Next() {
		var p Package
		var digest []byte
		if err := rows.Scan(&p.ID, &p.RequestID, &p.Size, &digest, &p.CreatedAt, &p.ExpiresAt, &p.Downloads, &p.LastDownloadAt, &p.DeletedAt); err != nil {
			return nil, err
		}
		p.SHA256 = hex.EncodeToString(digest)
		out = append(out, p)
	}
	return out, rows.Err()
}

// OpenFileStore opens the store of disclosed files and export packages
// (STEWARD_FILE_STORE, any gocloud blob URL whose driver the binary links). A relative file://
// URL ("file://./var/files") is made absolute and its directory created,
// so the default works from a fresh checkout.
func OpenFileStore(ctx context.Context, u string) (*blob.Bucket, error) {
	if rest, ok := strings.CutPrefix(u, "file://./"); ok {
		path, query, _ := strings.Cut(rest, "?")
		abs, err := filepath.Abs(path)
		if err != nil {
			return nil, fmt.Errorf("STEWARD_FILE_STORE: %w", err)
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return nil, fmt.Errorf("STEWARD_FILE_STORE: %w", err)
		}
		u = "file://" + filepath.ToSlash(abs)
		if query != "" {
			u += "?" + query
		}
	}
	b, err := blob.OpenBucket(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("STEWARD_FILE_STORE: %w", err)
	}
	return b, nil
}
