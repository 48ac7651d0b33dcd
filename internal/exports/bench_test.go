package exports_test

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"testing"
	"time"

	"github.com/steward-privacy/steward/internal/exports"
	"github.com/steward-privacy/steward/internal/rss"
)

// BenchmarkPackageRoundTrip stores a 1 GiB package sealed in a file-backed
// store and downloads it back (decrypting as it streams), as the export
// endpoint does, reporting peak RSS (target < 100 MiB) and MB/s; baseline
// in the same run: writing and reading the same bytes as a plain file in
// the same directory.
func BenchmarkPackageRoundTrip(b *testing.B) {
	const size = 1 << 30
	rg := newRig(b)
	st, dir := rg.store, rg.dir
	block := make([]byte, 1<<20)
	_, _ = rand.Read(block)
	req := rg.request(b)
	ctx := context.Background()
	var ours, raw time.Duration
	var peak int64
	for range b.N {
		sampler := rss.Start()
		start := time.Now()
		_, token, err := st.Create(ctx, req, func(w io.Writer) error {
			for i := 0; i < size/len(block); i++ {
				if _, err := w.Write(block); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		_, rc, err := st.Open(ctx, token)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, rc)
		_ = rc.Close()
		if err != nil || n != size {
			b.Fatalf("downloaded %d bytes: %v", n, err)
		}
		ours += time.Since(start)
		peak = max(peak, sampler.Stop())

		start = time.Now()
		f, err := os.Create(dir + "/plain")
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < size/len(block); i++ {
			if _, err := f.Write(block); err != nil {
				b.Fatal(err)
			}
		}
		_ = f.Close()
		f, _ = os.Open(dir + "/plain")
		if _, err := io.Copy(io.Discard, f); err != nil {
			b.Fatal(err)
		}
		_ = f.Close()
		_ = os.Remove(dir + "/plain")
		raw += time.Since(start)
		rg.clk.Advance(exports.DefaultTTL) // expire it, so the store holds one package at a time
		if _, err := st.ExpireDue(ctx); err != nil {
			b.Fatal(err)
		}
	}
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(rss.MiB(peak), "peak-RSS-MiB")
	b.ReportMetric(mb/ours.Seconds(), "MB/s")
	b.ReportMetric(mb/raw.Seconds(), "plain-file-MB/s")
	b.ReportMetric(raw.Seconds()/ours.Seconds(), "ratio")
}
