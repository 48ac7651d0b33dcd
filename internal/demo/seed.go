package demo

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/refapp"
)

type seedOptions struct {
	DatabaseURL string
	People      int
	S3          s3Options
	Now         time.Time
	Log         io.Writer
}

type s3Options struct {
	Endpoint, AccessKey, SecretKey, Bucket string
}

// seedResult names the people a demo user can make requests for.
type seedResult struct {
	Web, Bot []refapp.Person
	Objects  int
}

func seedCmd(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	dbFlag := databaseFlag(fs)
	people := fs.Int("people", defaultPeople, "people per product (web and bot)")
	var s3o s3Options
	fs.StringVar(&s3o.Endpoint, "s3-endpoint", "", "S3 endpoint of the object store (e.g. http://127.0.0.1:7070); empty: no objects")
	fs.StringVar(&s3o.AccessKey, "s3-access-key", s3AccessKey, "S3 access key")
	fs.StringVar(&s3o.SecretKey, "s3-secret-key", s3SecretKey, "S3 secret key")
	fs.StringVar(&s3o.Bucket, "bucket", Bucket, "bucket for the people's uploads and generated images")
	if helped, err := parseFlags(fs, args, stdout); helped || err != nil {
		return err
	}
	if *people < 1 {
		return usageError{"--people must be at least 1"}
	}
	dsn, err := databaseURL(cfg, *dbFlag)
	if err != nil {
		return err
	}
	res, err := seed(ctx, seedOptions{DatabaseURL: dsn, People: *people, S3: s3o, Log: stderr})
	if err != nil {
		return err
	}
	// One KEY=value a line, for scripts/run.sh.
	fmt.Fprintf(stdout, "DEMO_APP_DATABASE_URL=%s\nDEMO_EMAIL=%s\nDEMO_USER_ID=%s\nDEMO_TG=%d\nDEMO_PEOPLE=%d\nDEMO_OBJECTS=%d\n",
		dsn, res.Web[0].Email, res.Web[0].UserID, res.Bot[0].TelegramID, len(res.Web), res.Objects)
	return nil
}

// seed (re)creates the reference application: database and schemas app
// (web) and bot, their people, and the web people's objects. Running it
// again starts the demo afresh with the same people.
func seed(ctx context.Context, o seedOptions) (seedResult, error) {
	var res seedResult
	logf := func(format string, a ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, "demo seed: "+format+"\n", a...)
		}
	}
	if o.Now.IsZero() {
		// Stable within a day, recent enough for retention to leave alone.
		o.Now = time.Now().UTC().Truncate(24 * time.Hour)
	}
	if err := ensureDatabase(ctx, o.DatabaseURL); err != nil {
		return res, err
	}
	pool, err := pgxpool.New(ctx, o.DatabaseURL)
	if err != nil {
		return res, fmt.Errorf("connect to the demo database: %w", err)
	}
	defer pool.Close()
	for _, p := range []struct {
		schema  string
		product refapp.Product
		seed    int64
		out     *[]refapp.Person
	}{{"app", refapp.Web, webSeed, &res.Web}, {"bot", refapp.Bot, botSeed, &res.Bot}} {
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{p.schema}.Sanitize()+" CASCADE"); err != nil {
			return res, fmt.Errorf("drop schema %s: %w", p.schema, err)
		}
		if err := refapp.CreateSchema(ctx, pool, p.schema, p.product); err != nil {
			return res, err
		}
		people, err := refapp.Generate(ctx, pool, p.schema, p.product, refapp.Options{People: o.People, Seed: p.seed, Now: o.Now})
		if err != nil {
			return res, err
		}
		*p.out = people
		logf("schema %s: %d %s people", p.schema, len(people), p.product)
	}
	if o.S3.Endpoint == "" {
		logf("no --s3-endpoint: no objects")
		return res, nil
	}
	n, err := seedObjects(ctx, pool, o.S3)
	if err != nil {
		return res, err
	}
	res.Objects = n
	logf("bucket %s: %d objects (uploads/, masks/, generated/ per person)", o.S3.Bucket, n)
	return res, nil
}

func s3Client(s s3Options) *s3.Client {
	cfg := aws.Config{
		Region:                     s3Region,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		BaseEndpoint:               aws.String(s.Endpoint),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
}

// seedObjects empties the bucket (creating it if needed, waiting for a
// gateway still starting) and puts one small image for every object key
// the web application's job_assets rows name.
func seedObjects(ctx context.Context, pool *pgxpool.Pool, s s3Options) (int, error) {
	client := s3Client(s)
	deadline := time.Now().Add(s3WaitDuration)
	for {
		_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.Bucket)})
		var owned *s3types.BucketAlreadyOwnedByYou
		var exists *s3types.BucketAlreadyExists
		if err == nil || errors.As(err, &owned) || errors.As(err, &exists) {
			break
		}
		var ne net.Error
		var oe *net.OpError
		if time.Now().After(deadline) || (!errors.As(err, &oe) && !errors.As(err, &ne)) {
			return 0, fmt.Errorf("create bucket %s at %s: %w", s.Bucket, s.Endpoint, err)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	// Empty it: erasures of an earlier run are undone by the fresh copy.
	var old []string
	pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("list bucket %s: %w", s.Bucket, err)
		}
		for _, o := range page.Contents {
			old = append(old, aws.ToString(o.Key))
		}
	}
	if err := each(ctx, old, func(ctx context.Context, key string) error {
		_, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key)})
		return err
	}); err != nil {
		return 0, fmt.Errorf("empty bucket %s: %w", s.Bucket, err)
	}

	rows, err := pool.Query(ctx, "SELECT object_key FROM app.job_assets ORDER BY object_key")
	if err != nil {
		return 0, fmt.Errorf("read object keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("read object keys: %w", err)
	}
	err = each(ctx, keys, func(ctx context.Context, key string) error {
		body, ctype := Object(key)
		_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key),
			Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String(ctype)})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("put objects: %w", err)
	}
	return len(keys), nil
}

// each runs fn for every item, objectWorkers at a time, and returns the
// first error.
func each(ctx context.Context, items []string, fn func(context.Context, string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan string)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range min(objectWorkers, max(len(items), 1)) {
		wg.Go(func() {
			for it := range work {
				if err := fn(ctx, it); err != nil {
					once.Do(func() { first = fmt.Errorf("%s: %w", it, err); cancel() })
				}
			}
		})
	}
feed:
	for _, it := range items {
		select {
		case work <- it:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// Object is what seed stores under key, and its content type: a small
// image (a zip holding one for .zip) whose colours derive from key.
func Object(key string) ([]byte, string) {
	h := sha256.Sum256([]byte(key))
	img := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for y := range 16 {
		for x := range 16 {
			img.Set(x, y, color.NRGBA{R: h[0] + uint8(x*8), G: h[1] + uint8(y*8), B: h[2], A: 255})
		}
	}
	var pngBuf bytes.Buffer
	_ = png.Encode(&pngBuf, img)
	switch strings.ToLower(path.Ext(key)) {
	case ".jpg", ".jpeg":
		var b bytes.Buffer
		_ = jpeg.Encode(&b, img, &jpeg.Options{Quality: 60})
		return b.Bytes(), "image/jpeg"
	case ".zip":
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		if w, err := zw.Create("image-1.png"); err == nil {
			_, _ = w.Write(pngBuf.Bytes())
		}
		_ = zw.Close()
		return b.Bytes(), "application/zip"
	}
	return pngBuf.Bytes(), "image/png"
}
