package dsar_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"gocloud.dev/blob/fileblob"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/recordstore"
	"github.com/steward-privacy/steward/internal/dsar"
	"github.com/steward-privacy/steward/internal/policy"
)

// fileDiscloser adds one file to every access of its system's first
// dataset, as an object-store connector would, and can fail after the
// file has been handed over (the sink must then not keep it).
type fileDiscloser struct {
	connectors.Connector
	dataset  string
	content  []byte
	failOnce atomic.Bool
}

func (f *fileDiscloser) Access(ctx context.Context, p connectors.AccessParams, sink connectors.Sink) (connectors.AccessResult, error) {
	res, err := f.Connector.Access(ctx, p, sink)
	if err != nil || p.Dataset != f.dataset {
		return res, err
	}
	file := connectors.File{Dataset: p.Dataset, Key: "uploads/900070/cat.png", Name: "object_store/uploads/cat.png", ContentType: "image/png", Size: int64(len(f.content))}
	if err := sink.File(ctx, file, bytes.NewReader(f.content)); err != nil {
		return res, err
	}
	if f.failOnce.CompareAndSwap(true, false) {
		return res, connectors.Retryable(errors.New("connection reset after the file"), 0)
	}
	res.Files++
	res.Bytes += int64(len(f.content))
	return res, nil
}

func TestAccessStoresFilesSealed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bucket, err := fileblob.OpenBucket(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bucket.Close() })
	content := make([]byte, 300<<10)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	fd := &fileDiscloser{content: content}
	fd.failOnce.Store(true)
	r := newRig(t, rigOpts{files: bucket, registry: func(store *recordstore.Store, e *policy.Engine) connectors.Registry {
		fd.Connector = store
		fd.dataset = "tg_users"
		reg := allSystems(store, e)
		reg["bot_db"] = fd
		return reg
	}})
	ctx := context.Background()
	r.seedBotUser("900070")
	c, err := r.svc.Create(ctx, botRequest("access", "900070"))
	if err != nil {
		t.Fatal(err)
	}
	id := c.Request.ID
	r.wait(id, dsar.InProgress, dsar.Completed)
	r.completeManual(id)
	r.wait(id, dsar.Completed)

	files, err := r.svc.DisclosedFiles(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("%d files disclosed, want 1 (the failed first run's file must be gone): %+v", len(files), files)
	}
	f := files[0]
	sum := sha256.Sum256(content)
	if f.Key != "uploads/900070/cat.png" || f.Size != int64(len(content)) || f.SHA256 != hex.EncodeToString(sum[:]) || f.ContentType != "image/png" {
		t.Errorf("stored file %+v", f)
	}
	rc, err := r.svc.OpenFile(ctx, id, f.TaskID, f.Seq)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("opened file: %v, equal %v", err, bytes.Equal(got, content))
	}

	// On disk: exactly one blob (the retry removed the first run's), no
	// plaintext, no user id in its name.
	var blobs []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) != ".attrs" {
			blobs = append(blobs, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(blobs) != 1 {
		t.Fatalf("blobs in the file store: %v", blobs)
	}
	raw, err := os.ReadFile(blobs[0])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, content[:64]) || bytes.Contains([]byte(blobs[0]), []byte("900070")) {
		t.Error("the stored blob holds plaintext or the user id in its name")
	}

	// A flipped byte in the blob is detected on reading.
	raw[len(raw)/2] ^= 1
	if err := os.WriteFile(blobs[0], raw, 0o600); err != nil {
		t.Fatal(err)
	}
	rc, err = r.svc.OpenFile(ctx, id, f.TaskID, f.Seq)
	if err == nil {
		_, err = io.ReadAll(rc)
		_ = rc.Close()
	}
	if err == nil {
		t.Error("a tampered blob opened without error")
	}
	if _, err := r.svc.OpenFile(ctx, id, f.TaskID, f.Seq+1); err == nil {
		t.Error("a file that does not exist opened")
	}
}

func TestAccessFileWithoutStoreFailsTask(t *testing.T) {
	t.Parallel()
	fd := &fileDiscloser{content: []byte("x")}
	r := newRig(t, rigOpts{registry: func(store *recordstore.Store, e *policy.Engine) connectors.Registry {
		fd.Connector = store
		fd.dataset = "tg_users"
		reg := allSystems(store, e)
		reg["bot_db"] = fd
		return reg
	}})
	ctx := context.Background()
	r.seedBotUser("900071")
	c, err := r.svc.Create(ctx, botRequest("access", "900071"))
	if err != nil {
		t.Fatal(err)
	}
	d := r.wait(c.Request.ID, dsar.Failed)
	if !bytes.Contains([]byte(d.FailureReason), []byte("no file store")) {
		t.Errorf("failure reason %q", d.FailureReason)
	}
}
