package exportpkg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/internal/rss"
)

// repeatReader yields n bytes by repeating block: generated content that
// costs a copy, not a random generator, to read.
type repeatReader struct {
	block []byte
	off   int
	left  int64
}

func newRepeatReader(block []byte, n int64) *repeatReader {
	return &repeatReader{block: block, left: n}
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.block[r.off:])
		n += c
		r.off = (r.off + c) % len(r.block)
	}
	r.left -= int64(n)
	return n, nil
}

// discard counts what it is given and keeps nothing; it is not an
// io.ReaderFrom, so io.Copy into it goes through a buffer as the package
// writer does.
type discard struct{ n int64 }

func (d *discard) Write(p []byte) (int, error) {
	d.n += int64(len(p))
	return len(p), nil
}

// BenchmarkBuild1GiB builds a package with 1 GiB of file content (64 x 16
// MiB, generated as it is read) plus a realistic set of records into a
// writer that counts and discards, and reports the process's peak resident
// memory and the throughput, against io.Copy of the same bytes from the same
// readers into the same kind of writer in the same run (and, for scale,
// that copy through SHA-256, which a verified package cannot avoid). "media" is all
// already-compressed files (stored, as uploads and generated images are);
// "mixed" makes one file in eight text, which is deflated.
//
//	go test -run '^$' -bench BenchmarkBuild1GiB -benchtime 2x ./internal/exportpkg/
func BenchmarkBuild1GiB(b *testing.B) {
	for _, bc := range []struct {
		name      string
		textEvery int // every n-th file is text; 0: none
	}{{"media", 0}, {"mixed", 8}} {
		b.Run(bc.name, func(b *testing.B) {
			const files, size = 64, 16 << 20
			const total = int64(files * size)
			media := blob(11, 1<<20) // incompressible, as images are
			text := []byte(strings.Repeat("2026-03-04T12:00:07Z INFO generation job finished: prompt \"кот в шляпе\", 1024x768, 4 outputs\n", 11000))[:1<<20]
			sum := func(block []byte) string {
				h := sha256.New()
				for range size / len(block) {
					h.Write(block)
				}
				return hex.EncodeToString(h.Sum(nil))
			}
			mediaSum, textSum := sum(media), sum(text)
			in := realistic(b, "en").in
			in.Files = nil
			blocks := make([][]byte, files)
			for i := range files {
				block, name, ct, digest := media, fmt.Sprintf("object_store/generated/%02d.png", i), "image/png", mediaSum
				if bc.textEvery > 0 && i%bc.textEvery == 0 {
					block, name, ct, digest = text, fmt.Sprintf("object_store/generated/%02d.txt", i), "text/plain", textSum
				}
				blocks[i] = block
				in.Files = append(in.Files, File{System: "object_store", File: connectors.File{Dataset: "generated", Key: name, Name: name, ContentType: ct, Size: size},
					SHA256: digest, Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(newRepeatReader(block, size)), nil }})
			}
			var buildSec, copySec, shaSec, peak, base float64
			var written int64
			b.ResetTimer()
			for b.Loop() {
				base = rss.MiB(rss.Settle())
				w := &discard{}
				sampler := rss.Start()
				start := time.Now()
				if _, err := Build(context.Background(), w, in); err != nil {
					b.Fatal(err)
				}
				buildSec += time.Since(start).Seconds()
				peak = max(peak, rss.MiB(sampler.Stop()))
				written = w.n

				// Baseline: the same bytes, io.Copy into the same writer.
				raw := &discard{}
				start = time.Now()
				for i := range files {
					if _, err := io.Copy(raw, newRepeatReader(blocks[i], size)); err != nil {
						b.Fatal(err)
					}
				}
				copySec += time.Since(start).Seconds()
				if raw.n != total {
					b.Fatalf("baseline copied %d bytes", raw.n)
				}

				// The floor for a verified copy: the same, through SHA-256.
				hashed := &discard{}
				start = time.Now()
				for i := range files {
					if _, err := io.Copy(io.MultiWriter(hashed, sha256.New()), newRepeatReader(blocks[i], size)); err != nil {
						b.Fatal(err)
					}
				}
				shaSec += time.Since(start).Seconds()
			}
			n := float64(b.N)
			mbs, rawMBs, shaMBs := float64(total)/1e6/(buildSec/n), float64(total)/1e6/(copySec/n), float64(total)/1e6/(shaSec/n)
			b.ReportMetric(peak, "peak-RSS-MiB")
			b.ReportMetric(base, "base-RSS-MiB")
			b.ReportMetric(float64(written)/(1<<20), "zip-MiB")
			b.ReportMetric(mbs, "build-MB/s")
			b.ReportMetric(rawMBs, "copy-MB/s")
			b.ReportMetric(mbs/rawMBs, "ratio")
			b.ReportMetric(shaMBs, "copy+sha256-MB/s")
			b.ReportMetric(mbs/shaMBs, "ratio-vs-sha256")
		})
	}
}
