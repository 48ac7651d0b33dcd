package objectstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"golang.org/x/sync/errgroup"

	"github.com/steward-privacy/steward/connectors"
	"github.com/steward-privacy/steward/connectors/objectstore"
	"github.com/steward-privacy/steward/internal/clock"
	"github.com/steward-privacy/steward/internal/rss"
)

// hashSink hashes every file's content and keeps nothing: what a real
// export sink (an encrypting archive writer) costs, minus the writing.
type hashSink struct {
	mu    sync.Mutex
	h     hash.Hash
	bytes int64
}

func newHashSink() *hashSink { return &hashSink{h: sha256.New()} }

func (s *hashSink) Record(context.Context, connectors.Record) error { return nil }

func (s *hashSink) File(_ context.Context, _ connectors.File, r io.Reader) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := io.Copy(s.h, r)
	s.bytes += n
	return err
}

// BenchmarkExportRSS exports a subject with 1 GiB of objects (64 x 16 MiB)
// from versitygw through Access into a sink that hashes and discards, and
// reports the process's peak resident memory while doing so and the
// throughput, against reading the same objects with the SDK's GetObject
// into the same sink in the same run.
//
//	go test -run '^$' -bench BenchmarkExportRSS -benchtime 2x ./connectors/objectstore/
func BenchmarkExportRSS(b *testing.B) {
	const objects, size = 64, 16 << 20
	ctx := context.Background()
	bucket, name := s3Bucket(b, false)
	client := gateway(b).Client()
	var g errgroup.Group
	g.SetLimit(4)
	for i := range objects {
		g.Go(func() error {
			body := make([]byte, size) // seekable: the SDK signs the payload over plain HTTP
			rand.NewChaCha8([32]byte{byte(i)}).Read(body)
			_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(name), Key: aws.String(fmt.Sprintf("uploads/bench/%02d.bin", i)),
				Body: bytes.NewReader(body), ContentLength: aws.Int64(size), ContentType: aws.String("application/octet-stream")})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	c := newConnector(b, bucket, func(cfg *objectstore.Config) { cfg.PageSize = 1000 })
	fields := plan(connectors.ActionInclude)
	total := int64(objects * size)

	var connSec, rawSec, peak, base float64
	b.ResetTimer()
	for b.Loop() {
		base = rss.MiB(rss.Settle())
		sink := newHashSink()
		sampler := rss.Start()
		start := time.Now()
		res, err := c.Access(ctx, connectors.AccessParams{Target: target("uploads", user("bench")), Fields: fields}, sink)
		connSec += time.Since(start).Seconds()
		peak = max(peak, rss.MiB(sampler.Stop()))
		if err != nil || res.Bytes != total || sink.bytes != total {
			b.Fatalf("Access: %+v, %v (sink %d bytes)", res, err, sink.bytes)
		}

		// Baseline: the SDK alone, the same objects into the same sink.
		raw := newHashSink()
		start = time.Now()
		for i := range objects {
			out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(name), Key: aws.String(fmt.Sprintf("uploads/bench/%02d.bin", i))})
			if err != nil {
				b.Fatal(err)
			}
			err = raw.File(ctx, connectors.File{}, out.Body)
			out.Body.Close()
			if err != nil {
				b.Fatal(err)
			}
		}
		rawSec += time.Since(start).Seconds()
		if !bytes.Equal(raw.h.Sum(nil), sink.h.Sum(nil)) {
			b.Fatal("the export's content differs from the SDK's")
		}
	}
	n := float64(b.N)
	mbs, rawMBs := float64(total)/1e6/(connSec/n), float64(total)/1e6/(rawSec/n)
	b.ReportMetric(peak, "peak-RSS-MiB")
	b.ReportMetric(base, "base-RSS-MiB")
	b.ReportMetric(mbs, "export-MB/s")
	b.ReportMetric(rawMBs, "sdk-MB/s")
	b.ReportMetric(mbs/rawMBs, "ratio")
}

// BenchmarkDeletePrefix deletes 10,000 objects under one prefix with the
// retention sweep (DeleteOlderThan) and with Erase, against the SDK's
// ListObjectsV2 + DeleteObjects (1,000 keys a call) on the same server in
// the same run, and reports objects per second and the ratios.
//
//	go test -run '^$' -bench BenchmarkDeletePrefix -benchtime 2x ./connectors/objectstore/
func BenchmarkDeletePrefix(b *testing.B) {
	const count = 10_000
	ctx := context.Background()
	bucket, name := s3Bucket(b, false)
	client := gateway(b).Client()
	c := newConnector(b, bucket, func(cfg *objectstore.Config) {
		cfg.PageSize = 1000
		cfg.Clock = clock.NewFake(time.Now().Add(time.Hour))
	})
	fill := func() {
		b.Helper()
		var g errgroup.Group
		g.SetLimit(32)
		for i := range count {
			g.Go(func() error {
				_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(name), Key: aws.String(fmt.Sprintf("uploads/del/%05d.png", i)),
					Body: strings.NewReader("x"), ContentType: aws.String("image/png")})
				return err
			})
		}
		if err := g.Wait(); err != nil {
			b.Fatal(err)
		}
	}
	timed := func(fn func() int) float64 {
		b.Helper()
		b.StopTimer()
		fill()
		b.StartTimer()
		start := time.Now()
		if n := fn(); n != count {
			b.Fatalf("deleted %d of %d", n, count)
		}
		return time.Since(start).Seconds()
	}
	var sweepSec, eraseSec, rawSec float64
	b.ResetTimer()
	for b.Loop() {
		sweepSec += timed(func() int {
			res, err := c.DeleteOlderThan(ctx, "uploads", time.Now().Add(30*time.Minute), nil)
			if err != nil {
				b.Fatal(err)
			}
			return res.Deleted
		})
		eraseSec += timed(func() int {
			res, err := c.Erase(ctx, connectors.EraseParams{Target: target("uploads", user("del")), Fields: plan(connectors.ActionDelete)})
			if err != nil || !res.Verified {
				b.Fatal(res, err)
			}
			return res.Deleted
		})
		rawSec += timed(func() int { return rawDeletePrefix(b, client, name, "uploads/del/") })
	}
	n := float64(b.N)
	sweep, erase, raw := count/(sweepSec/n), count/(eraseSec/n), count/(rawSec/n)
	b.ReportMetric(sweep, "sweep-objects/s")
	b.ReportMetric(erase, "erase-objects/s")
	b.ReportMetric(raw, "sdk-objects/s")
	b.ReportMetric(sweep/raw, "sweep-ratio")
	b.ReportMetric(erase/raw, "erase-ratio")
}

// rawDeletePrefix is the baseline: list a page, delete it in one call.
func rawDeletePrefix(b *testing.B, client *s3.Client, bucket, prefix string) int {
	ctx := context.Background()
	deleted := 0
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(1000)}
	for {
		out, err := client.ListObjectsV2(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		if len(out.Contents) > 0 {
			ids := make([]s3types.ObjectIdentifier, len(out.Contents))
			for i, o := range out.Contents {
				ids[i] = s3types.ObjectIdentifier{Key: o.Key}
			}
			res, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucket), Delete: &s3types.Delete{Objects: ids}})
			if err != nil || len(res.Errors) > 0 {
				b.Fatal(err, res.Errors)
			}
			deleted += len(res.Deleted)
		}
		if !aws.ToBool(out.IsTruncated) {
			return deleted
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}
