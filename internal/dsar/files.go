package dsar

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"

	"github.com/jackc/pgx/v5"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/sealstream"
)

// Files an access task discloses are streamed into the file store as they
// are read — never held in memory, never in the database — each sealed
// under a fresh key (internal/sealstream) that is itself sealed by the
// master keyring and kept, with the file's description, in
// privacy_request_files. Blob keys hold only ids (request, task, run,
// sequence): the object key the file came from usually holds the person's
// user id, and it stays sealed.

// StoredFile describes one disclosed file as stored.
type StoredFile struct {
	TaskID string `json:"task_id"`
	Seq    int    `json:"seq"`
	System string `json:"system"`
	connectors.File
	// SHA256 is the hex digest of the plaintext, for the package manifest.
	SHA256 string `json:"sha256"`
}

func fileBlobPrefix(requestID, taskID string) string {
	return "requests/" + requestID + "/" + taskID + "/"
}

func fileAAD(requestID, taskID string, seq int) []byte {
	return []byte("steward/file/v1\x00" + requestID + "\x00" + taskID + "\x00" + strconv.Itoa(seq))
}

// countingHash counts and hashes what passes through it.
type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// storeFile seals content into the file store and records it in tx. A
// failure leaves at most an orphaned blob under the task's prefix, which
// the task's next run deletes before it starts.
func (s *Service) storeFile(ctx context.Context, tx pgx.Tx, requestID, taskID string, run, seq int, f connectors.File, content io.Reader) error {
	key, err := sealstream.NewKey()
	if err != nil {
		return err
	}
	kid, wrapped, err := s.Keys.Seal(key, sealAAD(requestID, "filekey:"+taskID+":"+strconv.Itoa(seq)))
	if err != nil {
		return fmt.Errorf("dsar: wrap file key: %w", err)
	}
	blobKey := fileBlobPrefix(requestID, taskID) + strconv.Itoa(run) + "/" + strconv.Itoa(seq)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bw, err := s.Files.NewWriter(wctx, blobKey, &blob.WriterOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return connectors.Retryable(fmt.Errorf("dsar: file store: %w", err), 0)
	}
	sum := &countingHash{h: sha256.New()}
	sw, err := sealstream.NewWriter(bw, key, fileAAD(requestID, taskID, seq))
	if err == nil {
		_, err = io.Copy(sw, io.TeeReader(content, sum))
	}
	if err == nil {
		err = sw.Close()
	}
	if err != nil {
		cancel() // gocloud: a cancelled context makes Close discard the blob
		_ = bw.Close()
		return fmt.Errorf("dsar: store file: %w", err)
	}
	if err := bw.Close(); err != nil {
		return connectors.Retryable(fmt.Errorf("dsar: file store: %w", err), 0)
	}
	if f.Size > 0 && f.Size != sum.n {
		// The object changed between listing and reading: the export
		// would describe one version and hold another.
		return connectors.Retryable(fmt.Errorf("dsar: file %d of task %s: listed as %d bytes, read %d (changed while read?)", seq, taskID, f.Size, sum.n), 0)
	}
	f.Size = sum.n
	mkid, meta, err := s.seal(requestID, "file:"+taskID+":"+strconv.Itoa(seq), f)
	if err != nil {
		return fmt.Errorf("dsar: seal file description: %w", err)
	}
	if mkid != kid {
		// Both sealed within microseconds by the same keyring; a rotation
		// in between would make the row unopenable under one kid.
		return connectors.Retryable(errors.New("dsar: keyring rotated while storing a file"), 0)
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO privacy_request_files (task_id, seq, blob_key, kid, wrapped_key, meta, size, sha256)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, taskID, seq, blobKey, kid, wrapped, meta, sum.n, sum.h.Sum(nil)); err != nil {
		return fmt.Errorf("dsar: record file: %w", err)
	}
	return nil
}

// clearFiles removes what an earlier run of the task stored: its rows (in
// tx) and every blob under the task's prefix.
func (s *Service) clearFiles(ctx context.Context, tx pgx.Tx, requestID, taskID string) error {
	if _, err := tx.Exec(ctx, `DELETE FROM privacy_request_files WHERE task_id = $1`, taskID); err != nil {
		return fmt.Errorf("dsar: clear files: %w", err)
	}
	if s.Files == nil {
		return nil
	}
	return deletePrefix(ctx, s.Files, fileBlobPrefix(requestID, taskID))
}

// deletePrefix deletes every blob under prefix.
func deletePrefix(ctx context.Context, b *blob.Bucket, prefix string) error {
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return connectors.Retryable(fmt.Errorf("dsar: list file store: %w", err), 0)
		}
		if obj.IsDir {
			continue
		}
		if err := b.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return connectors.Retryable(fmt.Errorf("dsar: delete from file store: %w", err), 0)
		}
	}
}

// DisclosedFiles lists the files the access tasks of a request disclosed,
// in task and file order.
func (s *Service) DisclosedFiles(ctx context.Context, requestID string) ([]StoredFile, error) {
	if !ValidID(requestID) {
		return nil, apperr.New(apperr.NotFound, "no such request")
	}
	var out []StoredFile
	err := s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT f.task_id::text, f.seq, t.system, f.kid, f.meta, f.size, f.sha256 FROM privacy_request_files f
			JOIN privacy_request_tasks t ON t.id = f.task_id
			WHERE t.request_id = $1 ORDER BY t.seq, f.seq`, requestID)
		if err != nil {
			return fmt.Errorf("dsar: load files: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var sf StoredFile
			var kid string
			var meta, sum []byte
			var size int64
			if err := rows.Scan(&sf.TaskID, &sf.Seq, &sf.System, &kid, &meta, &size, &sum); err != nil {
				return err
			}
			if err := s.open(requestID, "file:"+sf.TaskID+":"+strconv.Itoa(sf.Seq), kid, meta, &sf.File); err != nil {
				return fmt.Errorf("dsar: open file description: %w", err)
			}
			sf.Size, sf.SHA256 = size, hex.EncodeToString(sum)
			out = append(out, sf)
		}
		return rows.Err()
	})
	return out, err
}

// OpenFile streams one disclosed file, decrypting as it reads. A reader of
// a tampered blob fails with sealstream.ErrCorrupt.
func (s *Service) OpenFile(ctx context.Context, requestID, taskID string, seq int) (io.ReadCloser, error) {
	if s.Files == nil {
		return nil, errors.New("dsar: no file store")
	}
	if !ValidID(requestID) || !ValidID(taskID) {
		return nil, apperr.New(apperr.NotFound, "no such file")
	}
	var blobKey, kid string
	var wrapped []byte
	err := s.Pool.QueryRow(ctx, `
		SELECT f.blob_key, f.kid, f.wrapped_key FROM privacy_request_files f
		JOIN privacy_request_tasks t ON t.id = f.task_id
		WHERE t.request_id = $1 AND f.task_id = $2 AND f.seq = $3`, requestID, taskID, seq).Scan(&blobKey, &kid, &wrapped)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, apperr.New(apperr.NotFound, "no such file")
	}
	if err != nil {
		return nil, fmt.Errorf("dsar: load file: %w", err)
	}
	key, err := s.Keys.Open(kid, wrapped, sealAAD(requestID, "filekey:"+taskID+":"+strconv.Itoa(seq)))
	if err != nil {
		return nil, fmt.Errorf("dsar: unwrap file key: %w", err)
	}
	br, err := s.Files.NewReader(ctx, blobKey, nil)
	if err != nil {
		return nil, fmt.Errorf("dsar: open file: %w", err)
	}
	sr, err := sealstream.NewReader(br, key, fileAAD(requestID, taskID, seq))
	if err != nil {
		_ = br.Close()
		return nil, fmt.Errorf("dsar: open file: %w", err)
	}
	return struct {
		io.Reader
		io.Closer
	}{sr, br}, nil
}
