package policy

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"testing/fstest"
)

// Source is where a bundle comes from: the embedded default, a directory, or
// an OPA bundle archive (.tar.gz). Open is called on every (re)load so edits
// on disk are picked up.
type Source struct {
	Name     string // for logs and audit: "embedded", a directory or an archive path
	open     func() (fs.FS, error)
	embedded bool
	overlay  bool
}

// Overlay reports whether the source lays a directory over a base bundle,
// whose own tests it leaves out: having no tests of its own is normal.
func (s Source) Overlay() bool { return s.overlay }

// Open returns the bundle's files as they are now.
func (s Source) Open() (fs.FS, error) { return s.open() }

// EmbeddedSource serves a compiled-in bundle.
func EmbeddedSource(fsys fs.FS) Source {
	return Source{Name: "embedded", open: func() (fs.FS, error) { return fsys, nil }, embedded: true}
}

// DirSource serves the bundle in a directory.
func DirSource(dir string) Source {
	return Source{Name: dir, open: func() (fs.FS, error) {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("policy directory %s: not a readable directory", dir)
		}
		return os.DirFS(dir), nil
	}}
}

// OverlaySource serves base (the embedded bundle) with the files of dir laid
// over it: a file of dir replaces base's file at the same path (your
// data/datamap.yaml, data/products.json, ... or a policy), a new one is
// added. A deployment keeps its own data map and products outside the
// binary, and takes the reference policies' improvements with each release.
//
// Base's Rego tests (*_test.rego) are left out of the result: they test
// base's policies with base's data as their fixture, and ran when the
// binary was tested; run against your data they would test your data, not
// the logic. Your own *_test.rego files in dir are kept, and run before
// the bundle serves, as for any bundle on disk. Everything else is
// validated as always (data map, products, purposes, retention).
func OverlaySource(base fs.FS, dir string) Source {
	return Source{Name: "overlay " + dir, overlay: true, open: func() (fs.FS, error) {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return nil, fmt.Errorf("policy overlay %s: not a readable directory", dir)
		}
		m := fstest.MapFS{}
		if err := copyInto(m, base, func(p string) bool { return !strings.HasSuffix(p, "_test.rego") }); err != nil {
			return nil, fmt.Errorf("policy overlay: base bundle: %w", err)
		}
		over := os.DirFS(dir)
		n := 0
		if err := copyInto(m, over, func(p string) bool {
			n++
			return true
		}); err != nil {
			return nil, fmt.Errorf("policy overlay %s: %w", dir, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("policy overlay %s: no files (put your data/datamap.yaml, data/products.json, ... there)", dir)
		}
		return m, nil
	}}
}

// copyInto copies the regular files of src that keep accepts into m.
func copyInto(m fstest.MapFS, src fs.FS, keep func(path string) bool) error {
	var total int64
	return fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir // .git and the like
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") || !keep(p) {
			return nil
		}
		b, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		if total += int64(len(b)); total > maxArchive {
			return fmt.Errorf("larger than %d bytes", maxArchive)
		}
		m[p] = &fstest.MapFile{Data: b, Mode: 0o644}
		return nil
	})
}

// maxArchive bounds what an archive may unpack to, so a hostile or broken
// file cannot exhaust memory.
const maxArchive = 64 << 20

// ArchiveSource serves an OPA bundle archive (gzipped tar), as built by
// `opa build` or any tar of the policies/ directory.
func ArchiveSource(file string) Source {
	return Source{Name: file, open: func() (fs.FS, error) { return readArchive(file) }}
}

func readArchive(file string) (fs.FS, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("policy bundle: %w", err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("policy bundle %s: not gzip: %w", file, err)
	}
	tr := tar.NewReader(gz)
	m := fstest.MapFS{}
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("policy bundle %s: %w", file, err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "/"))
		if name == "." || strings.HasPrefix(name, "../") || !fs.ValidPath(name) {
			return nil, fmt.Errorf("policy bundle %s: unsafe path %q", file, h.Name)
		}
		total += h.Size
		if total > maxArchive {
			return nil, fmt.Errorf("policy bundle %s: larger than %d bytes unpacked", file, maxArchive)
		}
		b, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return nil, fmt.Errorf("policy bundle %s: %s: %w", file, name, err)
		}
		m[name] = &fstest.MapFile{Data: b, Mode: 0o644}
	}
	return m, nil
}

// Fingerprint is a cheap content hash of the bundle's files, used by the
// watcher to notice a change without recompiling.
func Fingerprint(fsys fs.FS) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", p, len(b))
		h.Write(b)
		return nil
	})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
