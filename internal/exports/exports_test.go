package exports_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"gocloud.dev/blob/fileblob"

	"github.com/steward-privacy/steward/internal/apperr"
	"github.com/steward-privacy/steward/internal/audit"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/db/dbtest"
	"github.com/steward-privacy/steward/internal/exports"
	"github.com/steward-privacy/steward/internal/keyring"
)

type rig struct {
	store *exports.Store
	pool  *pgxpool.Pool
	clk   *clock.Fake
	dir   string
}

func newRig(t testing.TB) *rig {
	t.Helper()
	_, pool := dbtest.New(t)
	dir := t.TempDir()
	b, err := fileblob.OpenBucket(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	clk := clock.NewFake(time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC))
	return &rig{pool: pool, clk: clk, dir: dir, store: &exports.Store{
		Pool: pool, Bucket: b, Keys: keyring.NewRandom("k1"), Audit: audit.New(clk, "test"), Clock: clk}}
}

// request inserts a privacy request row for packages to belong to.
func (r *rig) request(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	var sid int64
	if err := r.pool.QueryRow(ctx, `INSERT INTO subjects (kind, lookup_hash, hash_kid, ciphertext, enc_kid, created_at) VALUES ('email', $1, 'k1', '\x00', 'k1', now()) RETURNING id`,
		[]byte(uuid.NewString())).Scan(&sid); err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	if _, err := r.pool.Exec(ctx, `INSERT INTO privacy_requests (id, type, status, channel, language, region, regime, subject_id, subject_kind,
		status_token_hash, received_at, due_at, original_due_at, created_by, policy_revision, updated_at)
		VALUES ($1, 'access', 'completed', 'web', 'en', 'DE', 'gdpr', $2, 'email', $3, now(), now(), now(), 'test', 'r', now())`,
		id, sid, []byte(id)); err != nil {
		t.Fatal(err)
	}
	return id
}

func (r *rig) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := r.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func isCode(err error, c apperr.Code) bool { return err != nil && apperr.CodeOf(err) == c }

func TestCreateDownloadExpire(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	req := r.request(t)
	content := make([]byte, 1<<20+123)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	p, token, err := r.store.Create(ctx, req, func(w io.Writer) error {
		// In odd pieces, as a ZIP writer would write.
		for rest := content; len(rest) > 0; {
			n := min(len(rest), 7777)
			if _, err := w.Write(rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	if p.Size != int64(len(content)) || p.SHA256 != hex.EncodeToString(sum[:]) || !p.ExpiresAt.Equal(r.clk.Now().Add(exports.DefaultTTL)) {
		t.Fatalf("package %+v", p)
	}
	if !strings.HasPrefix(token, "sxp_") {
		t.Fatalf("token %q", token)
	}
	// At rest: sealed, and the table holds only the link's hash.
	var blobs []string
	_ = filepath.WalkDir(r.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(p) != ".attrs" {
			blobs = append(blobs, p)
		}
		return err
	})
	if len(blobs) != 1 {
		t.Fatalf("blobs %v", blobs)
	}
	raw, _ := os.ReadFile(blobs[0])
	if bytes.Contains(raw, content[:64]) {
		t.Fatal("package stored in the clear")
	}
	if n := r.count(t, `SELECT count(*) FROM export_packages WHERE token_hash = $1`, []byte(token)); n != 0 {
		t.Fatal("the token itself is stored")
	}

	for i := 1; i <= 2; i++ {
		got, rc, err := r.store.Open(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil || !bytes.Equal(b, content) {
			t.Fatalf("download %d: %v (equal %v)", i, err, bytes.Equal(b, content))
		}
		if got.Downloads != i || got.ID != p.ID {
			t.Errorf("download %d: package %+v", i, got)
		}
	}
	if n := r.count(t, `SELECT count(*) FROM audit_pending WHERE action = 'export.downloaded' AND target_id = $1`, req); n != 2 {
		t.Errorf("%d downloads audited, want 2", n)
	}

	// Tampered links are refused, whichever byte changes.
	body := strings.TrimPrefix(token, "sxp_")
	raw2, _ := base64.RawURLEncoding.DecodeString(body)
	for _, i := range []int{0, 17, 30, len(raw2) - 1} {
		b := bytes.Clone(raw2)
		b[i] ^= 0x40
		if _, _, err := r.store.Open(ctx, "sxp_"+base64.RawURLEncoding.EncodeToString(b)); !isCode(err, apperr.NotFound) {
			t.Errorf("byte %d flipped: %v", i, err)
		}
	}
	for _, bad := range []string{"", "sxp_", "sxp_!!!", token[:len(token)-1], "xyz" + token[3:], token + "A", strings.Repeat("A", 5000)} {
		if _, _, err := r.store.Open(ctx, bad); !isCode(err, apperr.NotFound) {
			t.Errorf("token %.20q: %v", bad, err)
		}
	}
	// A link signed under another keyring is refused.
	other := *r.store
	other.Keys = keyring.NewRandom("k1")
	if _, _, err := other.Open(ctx, token); !isCode(err, apperr.NotFound) {
		t.Errorf("link checked under another key: %v", err)
	}

	// Expiry: the link stops working, then the package is deleted.
	r.clk.Advance(exports.DefaultTTL)
	if _, _, err := r.store.Open(ctx, token); !isCode(err, apperr.Gone) {
		t.Errorf("expired link: %v", err)
	}
	n, err := r.store.ExpireDue(ctx)
	if err != nil || n != 1 {
		t.Fatalf("ExpireDue: %d, %v", n, err)
	}
	if _, err := os.Stat(blobs[0]); !os.IsNotExist(err) {
		t.Errorf("expired package still on disk: %v", err)
	}
	if n, err := r.store.ExpireDue(ctx); err != nil || n != 0 {
		t.Errorf("second ExpireDue: %d, %v", n, err)
	}
	list, err := r.store.ForRequest(ctx, req)
	if err != nil || len(list) != 1 || list[0].DeletedAt == nil || list[0].Downloads != 2 {
		t.Fatalf("ForRequest: %+v, %v", list, err)
	}
	if n := r.count(t, `SELECT count(*) FROM audit_pending WHERE action IN ('export.created', 'export.expired') AND target_id = $1`, req); n != 2 {
		t.Errorf("%d create/expire audit entries, want 2", n)
	}
}

func TestFailedWriteLeavesNothing(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	req := r.request(t)
	_, _, err := r.store.Create(ctx, req, func(w io.Writer) error {
		_, _ = w.Write([]byte("partial package"))
		return io.ErrUnexpectedEOF
	})
	if err == nil {
		t.Fatal("a failed write created a package")
	}
	if n := r.count(t, `SELECT count(*) FROM export_packages`); n != 0 {
		t.Errorf("%d package rows after a failed write", n)
	}
	entries, _ := os.ReadDir(r.dir)
	var files int
	_ = filepath.WalkDir(r.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files++
		}
		return err
	})
	if files != 0 {
		t.Errorf("%d files left in the store after a failed write (%d entries)", files, len(entries))
	}
}

// FuzzOpenToken: no string makes Open panic or succeed without being a link
// the store issued.
func FuzzOpenToken(f *testing.F) {
	f.Add("")
	f.Add("sxp_")
	f.Add("sxp_" + strings.Repeat("A", 96))
	f.Add("sxp_" + base64.RawURLEncoding.EncodeToString(make([]byte, 72)))
	st := &exports.Store{Keys: keyring.NewRandom("k1"), Clock: clock.NewFake(time.Now())}
	f.Fuzz(func(t *testing.T, token string) {
		// No pool: a token that passed the signature check would reach the
		// database and panic on the nil pool, failing the fuzz run.
		if _, _, err := st.Open(context.Background(), token); err == nil {
			t.Fatalf("token %q opened without a package", token)
		}
	})
}

// TestOpenForStaff: staff download a request's newest package without its
// link; each download is audited with the staff key and not counted as the
// person's; a request without a live package has none to give.
func TestOpenForStaff(t *testing.T) {
	t.Parallel()
	r := newRig(t)
	ctx := context.Background()
	req := r.request(t)
	put := func(content string) exports.Package {
		p, _, err := r.store.Create(ctx, req, func(w io.Writer) error {
			_, err := io.WriteString(w, content)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	put("the first build")
	r.clk.Advance(time.Minute)
	newest := put("the package the person was sent")

	p, rc, err := r.store.OpenForStaff(ctx, req, "key:k_reviewer")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	_ = rc.Close()
	if err != nil || string(b) != "the package the person was sent" || p.ID != newest.ID || p.SHA256 != newest.SHA256 {
		t.Fatalf("opened %+v: %q, %v", p, b, err)
	}
	if n := r.count(t, `SELECT count(*) FROM audit_pending WHERE action = 'export.staff_downloaded' AND actor = 'key:k_reviewer'
		AND target_id = $1 AND details->>'package_id' = $2`, req, newest.ID); n != 1 {
		t.Errorf("%d audit entries of the staff download", n)
	}
	if n := r.count(t, `SELECT coalesce(sum(downloads), 0) FROM export_packages WHERE request_id = $1`, req); n != 0 {
		t.Errorf("a staff download counted as the person's: %d", n)
	}

	for name, id := range map[string]string{"a request without packages": r.request(t), "not an id": "../etc", "an unknown request": uuid.NewString()} {
		if _, _, err := r.store.OpenForStaff(ctx, id, "key:k_reviewer"); !isCode(err, apperr.NotFound) {
			t.Errorf("%s: %v", name, err)
		}
	}
	r.clk.Advance(exports.DefaultTTL)
	if _, _, err := r.store.OpenForStaff(ctx, req, "key:k_reviewer"); !isCode(err, apperr.NotFound) {
		t.Errorf("expired package: %v", err)
	}
	if n := r.count(t, `SELECT count(*) FROM audit_pending WHERE action = 'export.staff_downloaded'`); n != 1 {
		t.Errorf("%d staff downloads audited, want the one that happened", n)
	}
}
