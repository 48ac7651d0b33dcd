package main

// The demo subcommands set up the reference deployment `make run` starts
// (scripts/run.sh): the reference application's database, its object
// store, and fakes of the payment providers (and of Resend) on loopback
// ports, plus the connectors file that points Steward at all of them.

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/steward-privacy/steward/connectors/creem/creemfake"
	"github.com/steward-privacy/steward/connectors/stripe/stripefake"
	"github.com/steward-privacy/steward/internal/config"
	"github.com/steward-privacy/steward/internal/notify/resendtest"
	"github.com/steward-privacy/steward/internal/refapp"
)

// The demo deployment's fixed names and throwaway credentials. They guard
// nothing but loopback fakes and a local gateway; scripts/run.sh uses the
// same values.
const (
	demoAppDatabase    = "steward_demo_app"
	demoBucket         = "media"
	demoS3AccessKey    = "steward-demo-access"
	demoS3SecretKey    = "steward-demo-secret-key"
	demoS3Region       = "us-east-1"
	demoStripeKey      = "sk_test_steward_demo"
	demoCreemKey       = "creem_test_steward_demo"
	demoCreemWebhook   = "whsec_steward_demo"
	demoCreemStore     = "Nano Banana Pro"
	demoCreemSupport   = "support@creem.io"
	demoWebSeed        = 1
	demoBotSeed        = 2
	demoDefaultPeople  = 300
	demoObjectWorkers  = 16
	demoS3WaitDuration = 30 * time.Second
)

const demoUsage = `want one of:
  demo seed       [--database URL] [--people N] [--s3-endpoint URL --s3-access-key K --s3-secret-key S --bucket B]
  demo peers      [--database URL] --stripe ADDR --creem ADDR [--resend ADDR] [--ready-file F] [--mail-log F]
  demo connectors [--database URL] --s3-endpoint URL [--s3-access-key K --s3-secret-key S]
                  --stripe-url URL --creem-url URL [--out FILE]`

func demoCmd(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{demoUsage}
	}
	switch args[0] {
	case "seed":
		return demoSeedCmd(ctx, cfg, args[1:], stdout, stderr)
	case "peers":
		return demoPeersCmd(ctx, cfg, args[1:], stdout, stderr)
	case "connectors":
		return demoConnectorsCmd(cfg, args[1:], stdout)
	}
	return usageError{fmt.Sprintf("unknown demo command %q; %s", args[0], demoUsage)}
}

// parseDemoFlags parses args; --help prints the flags to stdout and
// reports helped.
func parseDemoFlags(fs *flag.FlagSet, args []string, stdout io.Writer) (helped bool, err error) {
	fs.SetOutput(io.Discard)
	err = fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stdout, "Usage of steward %s:\n", fs.Name())
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return true, nil
	}
	if err != nil {
		return false, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return false, usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	return false, nil
}

// demoDatabaseFlag adds --database, defaulting to the demo database on
// DATABASE_URL's server.
func demoDatabaseFlag(fs *flag.FlagSet) *string {
	return fs.String("database", "", "the demo application's database URL (default: database "+demoAppDatabase+" on DATABASE_URL's server)")
}

func demoDatabaseURL(cfg config.Config, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if cfg.DatabaseURL == "" {
		return "", usageError{"DATABASE_URL is not set: pass --database"}
	}
	return withDatabaseName(cfg.DatabaseURL, demoAppDatabase)
}

// withDatabaseName returns dsn (a postgres:// URL or key=value settings)
// naming database name instead.
func withDatabaseName(dsn, name string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", errors.New("database URL does not parse")
		}
		u.Path, u.RawPath = "/"+name, ""
		return u.String(), nil
	}
	// Key=value settings: a later dbname wins.
	return strings.TrimSpace(dsn) + " dbname=" + name, nil
}

// ensureDatabase creates dsn's database if it does not exist, connecting
// to the server's "postgres" database to do so.
func ensureDatabase(ctx context.Context, dsn string) error {
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return errors.New("demo database URL does not parse")
	}
	name := cc.Database
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		return conn.Close(ctx)
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "3D000" { // invalid_catalog_name
		return fmt.Errorf("connect to the demo database: %w", err)
	}
	admin, err := withDatabaseName(dsn, "postgres")
	if err != nil {
		return err
	}
	ac, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to the server to create database %s: %w", name, err)
	}
	defer ac.Close(ctx)
	if _, err := ac.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		if !errors.As(err, &pe) || pe.Code != "42P04" { // duplicate_database: created meanwhile
			return fmt.Errorf("create database %s: %w", name, err)
		}
	}
	return nil
}

// ---------------------------------------------------------------- seed

type demoSeedOptions struct {
	DatabaseURL string
	People      int
	S3          demoS3
	Now         time.Time
	Log         io.Writer
}

type demoS3 struct {
	Endpoint, AccessKey, SecretKey, Bucket string
}

// demoSeedResult names the people a demo user can make requests for.
type demoSeedResult struct {
	Web, Bot []refapp.Person
	Objects  int
}

func demoSeedCmd(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo seed", flag.ContinueOnError)
	dbFlag := demoDatabaseFlag(fs)
	people := fs.Int("people", demoDefaultPeople, "people per product (web and bot)")
	var s3o demoS3
	fs.StringVar(&s3o.Endpoint, "s3-endpoint", "", "S3 endpoint of the object store (e.g. http://127.0.0.1:7070); empty: no objects")
	fs.StringVar(&s3o.AccessKey, "s3-access-key", demoS3AccessKey, "S3 access key")
	fs.StringVar(&s3o.SecretKey, "s3-secret-key", demoS3SecretKey, "S3 secret key")
	fs.StringVar(&s3o.Bucket, "bucket", demoBucket, "bucket for the people's uploads and generated images")
	if helped, err := parseDemoFlags(fs, args, stdout); helped || err != nil {
		return err
	}
	if *people < 1 {
		return usageError{"demo seed: --people must be at least 1"}
	}
	dsn, err := demoDatabaseURL(cfg, *dbFlag)
	if err != nil {
		return err
	}
	res, err := demoSeed(ctx, demoSeedOptions{DatabaseURL: dsn, People: *people, S3: s3o, Log: stderr})
	if err != nil {
		return err
	}
	// One KEY=value a line, for scripts/run.sh.
	fmt.Fprintf(stdout, "DEMO_APP_DATABASE_URL=%s\nDEMO_EMAIL=%s\nDEMO_USER_ID=%s\nDEMO_TG=%d\nDEMO_PEOPLE=%d\nDEMO_OBJECTS=%d\n",
		dsn, res.Web[0].Email, res.Web[0].UserID, res.Bot[0].TelegramID, len(res.Web), res.Objects)
	return nil
}

// demoSeed (re)creates the reference application: database and schemas
// app (web) and bot, their people, and the web people's objects. Running
// it again starts the demo afresh with the same people.
func demoSeed(ctx context.Context, o demoSeedOptions) (demoSeedResult, error) {
	var res demoSeedResult
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
	}{{"app", refapp.Web, demoWebSeed, &res.Web}, {"bot", refapp.Bot, demoBotSeed, &res.Bot}} {
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
	n, err := demoSeedObjects(ctx, pool, o.S3)
	if err != nil {
		return res, err
	}
	res.Objects = n
	logf("bucket %s: %d objects (uploads/, masks/, generated/ per person)", o.S3.Bucket, n)
	return res, nil
}

func demoS3Client(s demoS3) *s3.Client {
	cfg := aws.Config{
		Region:                     demoS3Region,
		Credentials:                credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		BaseEndpoint:               aws.String(s.Endpoint),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
}

// demoSeedObjects empties the bucket (creating it if needed, waiting for a
// gateway still starting) and puts one small image for every object key
// the web application's job_assets rows name.
func demoSeedObjects(ctx context.Context, pool *pgxpool.Pool, s demoS3) (int, error) {
	client := demoS3Client(s)
	deadline := time.Now().Add(demoS3WaitDuration)
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
	if err := demoEach(ctx, old, func(ctx context.Context, key string) error {
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
	err = demoEach(ctx, keys, func(ctx context.Context, key string) error {
		body, ctype := demoObject(key)
		_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(key),
			Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String(ctype)})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("put objects: %w", err)
	}
	return len(keys), nil
}

// demoEach runs fn for every item, demoObjectWorkers at a time, and returns
// the first error.
func demoEach(ctx context.Context, items []string, fn func(context.Context, string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan string)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range min(demoObjectWorkers, max(len(items), 1)) {
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

// demoObject is a small image (a zip holding one for .zip) whose colours
// derive from key, and its content type.
func demoObject(key string) ([]byte, string) {
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

// ---------------------------------------------------------------- peers

type demoPeersOptions struct {
	DatabaseURL                       string
	StripeAddr, CreemAddr, ResendAddr string
	ReadyFile, MailLog                string
	Log                               io.Writer
}

// demoPeers are the fakes the peers command serves.
type demoPeers struct {
	stripe *stripefake.Server
	creem  *creemfake.Server
	resend *demoResend // nil without --resend
	linked int
}

func (p *demoPeers) close() {
	if p.resend != nil {
		p.resend.close()
	}
	if p.creem != nil {
		p.creem.Close()
	}
	if p.stripe != nil {
		p.stripe.Close()
	}
}

func demoPeersCmd(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo peers", flag.ContinueOnError)
	dbFlag := demoDatabaseFlag(fs)
	var o demoPeersOptions
	fs.StringVar(&o.StripeAddr, "stripe", "127.0.0.1:12111", "address the Stripe fake listens on")
	fs.StringVar(&o.CreemAddr, "creem", "127.0.0.1:12112", "address the Creem fake listens on")
	fs.StringVar(&o.ResendAddr, "resend", "", "address a Resend stand-in listens on (none when empty)")
	fs.StringVar(&o.ReadyFile, "ready-file", "", "file written, with the fakes' URLs, once they serve and the database is linked")
	fs.StringVar(&o.MailLog, "mail-log", "", "file the Resend stand-in appends every email to")
	if helped, err := parseDemoFlags(fs, args, stdout); helped || err != nil {
		return err
	}
	var err error
	if o.DatabaseURL, err = demoDatabaseURL(cfg, *dbFlag); err != nil {
		return err
	}
	o.Log = stderr
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	p, err := startDemoPeers(ctx, o)
	if err != nil {
		return err
	}
	defer p.close()
	fmt.Fprintf(stdout, "demo peers: Stripe fake on %s, Creem fake on %s", p.stripe.URL(), p.creem.URL())
	if p.resend != nil {
		fmt.Fprintf(stdout, ", Resend stand-in on %s", p.resend.URL)
	}
	fmt.Fprintf(stdout, "; %d web people linked. Stop with Ctrl-C.\n", p.linked)
	<-ctx.Done()
	fmt.Fprintln(stdout, "demo peers: stopped")
	return nil
}

// startDemoPeers starts the fakes on their addresses, gives every web
// person of the demo database a Stripe customer (card, charge, and their
// Stripe subscription) and a Creem customer (transaction, and their Creem
// subscription), writes the customer ids into app.users, and then writes
// the ready file.
func startDemoPeers(ctx context.Context, o demoPeersOptions) (_ *demoPeers, err error) {
	if o.ReadyFile != "" {
		if err := os.Remove(o.ReadyFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	pool, err := pgxpool.New(ctx, o.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("connect to the demo database: %w", err)
	}
	defer pool.Close()
	p := &demoPeers{}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if p.stripe, err = stripefake.NewAt(o.StripeAddr); err != nil {
		return nil, err
	}
	if p.creem, err = creemfake.NewAt(demoCreemKey, o.CreemAddr); err != nil {
		return nil, err
	}
	if o.ResendAddr != "" {
		if p.resend, err = startDemoResend(o.ResendAddr, o.MailLog, o.Log); err != nil {
			return nil, err
		}
	}
	if p.linked, err = demoSeedProviders(ctx, pool, p.stripe, p.creem); err != nil {
		return nil, err
	}
	if o.ReadyFile != "" {
		ready := fmt.Sprintf("DEMO_STRIPE_URL=%s\nDEMO_STRIPE_KEY=%s\nDEMO_CREEM_URL=%s\nDEMO_CREEM_KEY=%s\nDEMO_CREEM_WEBHOOK_SECRET=%s\n",
			p.stripe.URL(), demoStripeKey, p.creem.URL(), demoCreemKey, demoCreemWebhook)
		if p.resend != nil {
			ready += "DEMO_RESEND_URL=" + p.resend.URL + "\n"
		}
		tmp := o.ReadyFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ready), 0o644); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, o.ReadyFile); err != nil {
			return nil, err
		}
	}
	return p, nil
}

type demoUser struct {
	id, name, email, creemID             string
	line1, city, postal, country         string
	subProvider, subPlan, subStatus, sub string
}

// demoSeedProviders seeds the fakes from app.users and links them; it
// returns how many people it linked.
func demoSeedProviders(ctx context.Context, pool *pgxpool.Pool, sf *stripefake.Server, cf *creemfake.Server) (int, error) {
	// The oldest first: refapp's first person, the richest, gets the first ids.
	rows, err := pool.Query(ctx, `
		SELECT u.id, u.name, u.email, coalesce(u.creem_customer_id, ''),
		       coalesce(bp.address_line1, ''), coalesce(bp.city, ''), coalesce(bp.postal_code, ''), coalesce(bp.country, ''),
		       coalesce(s.provider, ''), coalesce(s.plan, ''), coalesce(s.status, ''), coalesce(s.provider_subscription_id, '')
		FROM app.users u
		LEFT JOIN LATERAL (SELECT * FROM app.billing_profiles b WHERE b.user_id = u.id ORDER BY b.created_at LIMIT 1) bp ON true
		LEFT JOIN LATERAL (SELECT * FROM app.subscriptions x WHERE x.user_id = u.id ORDER BY x.created_at DESC LIMIT 1) s ON true
		WHERE u.email LIKE '%@%'
		ORDER BY u.created_at, u.id`)
	if err != nil {
		return 0, fmt.Errorf("read demo users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (demoUser, error) {
		var u demoUser
		err := r.Scan(&u.id, &u.name, &u.email, &u.creemID, &u.line1, &u.city, &u.postal, &u.country,
			&u.subProvider, &u.subPlan, &u.subStatus, &u.sub)
		return u, err
	})
	if err != nil {
		return 0, fmt.Errorf("read demo users: %w", err)
	}
	brands := []stripefake.Card{{Brand: "visa", Last4: "4242"}, {Brand: "mastercard", Last4: "4444"}, {Brand: "amex", Last4: "8431"}}
	ids, stripeIDs, creemIDs := make([]string, len(users)), make([]string, len(users)), make([]string, len(users))
	var stripeSubs, stripeSubIDs []string
	for i, u := range users {
		addr := &stripefake.Address{Line1: u.line1, City: u.city, PostalCode: u.postal, Country: u.country}
		if u.line1 == "" {
			addr = &stripefake.Address{Line1: fmt.Sprintf("%d Demo Street", 1+i%200), City: "Berlin", PostalCode: "10115", Country: "DE"}
		}
		cus := sf.AddCustomer(stripefake.Customer{Email: u.email, Name: u.name, Address: addr, Metadata: map[string]string{"user_id": u.id}})
		c := brands[i%len(brands)]
		c.ExpMonth, c.ExpYear, c.Country = 1+i%12, 2027+i%4, addr.Country
		bd := stripefake.BillingDetails{Name: u.name, Email: u.email, Address: addr}
		pm := sf.AddPaymentMethod(stripefake.PaymentMethod{Customer: cus, Card: c, BillingDetails: bd})
		sf.AddCharge(stripefake.Charge{Customer: cus, PaymentMethod: pm, Amount: 999 + int64(i%4)*1000, Currency: "eur",
			ReceiptEmail: u.email, BillingDetails: bd, Card: c})
		if u.subProvider == "stripe" {
			sub := sf.AddSubscription(stripefake.Subscription{Customer: cus, Status: u.subStatus, DefaultPaymentMethod: pm,
				Prices: []string{"price_demo_" + demoSlug(u.subPlan)}})
			stripeSubs, stripeSubIDs = append(stripeSubs, u.sub), append(stripeSubIDs, sub)
		}

		ccid := u.creemID
		if ccid == "" {
			h := sha256.Sum256([]byte("creem:" + u.id))
			ccid = "cust_" + hex.EncodeToString(h[:])[:22]
		}
		country := u.country
		if country == "" {
			country = addr.Country
		}
		cf.AddCustomer(creemfake.Customer{ID: ccid, Email: u.email, Name: u.name, Country: country})
		var csub string
		if u.subProvider == "creem" {
			csub = cf.AddSubscription(creemfake.Subscription{ID: u.sub, Customer: ccid, ProductName: u.subPlan, Status: u.subStatus})
		}
		cf.AddTransaction(creemfake.Transaction{Customer: ccid, Subscription: csub, Amount: 1499 + int64(i%3)*1000, TaxCountry: country})
		ids[i], stripeIDs[i], creemIDs[i] = u.id, cus, ccid
	}

	tx, err := pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	// Clear first: the columns are unique, and a new id must not meet an
	// old one of another person on the way.
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE app.users SET stripe_customer_id = NULL, creem_customer_id = NULL
			WHERE stripe_customer_id IS NOT NULL OR creem_customer_id IS NOT NULL`, nil},
		{`UPDATE app.users u SET stripe_customer_id = v.s, creem_customer_id = v.c
			FROM unnest($1::text[], $2::text[], $3::text[]) AS v(id, s, c) WHERE u.id = v.id`, []any{ids, stripeIDs, creemIDs}},
		{`UPDATE app.subscriptions s SET provider_subscription_id = v.n
			FROM unnest($1::text[], $2::text[]) AS v(o, n) WHERE s.provider = 'stripe' AND s.provider_subscription_id = v.o`, []any{stripeSubs, stripeSubIDs}},
	} {
		if _, err := tx.Exec(ctx, q.sql, q.args...); err != nil {
			return 0, fmt.Errorf("link provider customers: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("link provider customers: %w", err)
	}
	return len(users), nil
}

func demoSlug(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, s)
}

// demoResend is internal/notify/resendtest served on a fixed address
// through a reverse proxy; every email it accepts is printed and appended
// to the mail log, so a demo user can read verification codes.
type demoResend struct {
	URL   string
	fake  *resendtest.Server
	srv   *http.Server
	mu    sync.Mutex
	shown int
	log   io.Writer
	file  string
}

func startDemoResend(addr, mailLog string, log io.Writer) (*demoResend, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("resend stand-in: listen on %s: %w", addr, err)
	}
	fake := resendtest.NewServer()
	target, err := url.Parse(fake.URL)
	if err != nil {
		_ = l.Close()
		fake.Close()
		return nil, err
	}
	r := &demoResend{URL: "http://" + l.Addr().String() + "/", fake: fake, log: log, file: mailLog}
	proxy := httputil.NewSingleHostReverseProxy(target)
	r.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		proxy.ServeHTTP(w, req)
		if req.Method == http.MethodPost && req.URL.Path == "/emails" {
			r.report()
		}
	})}
	go func() { _ = r.srv.Serve(l) }()
	return r, nil
}

// report prints the emails accepted since the last call.
func (r *demoResend) report() {
	r.mu.Lock()
	defer r.mu.Unlock()
	emails := r.fake.Emails()
	if len(emails) <= r.shown {
		return
	}
	var b strings.Builder
	for _, e := range emails[r.shown:] {
		fmt.Fprintf(&b, "\n=== demo mail %s  from %s  to %s\n=== subject: %s\n%s\n", time.Now().UTC().Format(time.RFC3339),
			e.From, strings.Join(e.To, ", "), e.Subject, strings.TrimSpace(e.Text))
	}
	r.shown = len(emails)
	if r.log != nil {
		fmt.Fprint(r.log, b.String())
	}
	if r.file != "" {
		if f, err := os.OpenFile(r.file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			_, _ = f.WriteString(b.String())
			_ = f.Close()
		}
	}
}

func (r *demoResend) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = r.srv.Shutdown(ctx)
	r.fake.Close()
}

// ---------------------------------------------------------------- connectors

type demoConnectorsOptions struct {
	DatabaseURL, S3Endpoint, S3AccessKey, S3SecretKey, StripeURL, CreemURL string
}

func demoConnectorsCmd(cfg config.Config, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demo connectors", flag.ContinueOnError)
	dbFlag := demoDatabaseFlag(fs)
	var o demoConnectorsOptions
	fs.StringVar(&o.S3Endpoint, "s3-endpoint", "", "the object store's S3 endpoint")
	fs.StringVar(&o.S3AccessKey, "s3-access-key", demoS3AccessKey, "S3 access key")
	fs.StringVar(&o.S3SecretKey, "s3-secret-key", demoS3SecretKey, "S3 secret key")
	fs.StringVar(&o.StripeURL, "stripe-url", "", "the Stripe fake's base URL")
	fs.StringVar(&o.CreemURL, "creem-url", "", "the Creem fake's base URL")
	out := fs.String("out", "", "file to write (default: standard output)")
	if helped, err := parseDemoFlags(fs, args, stdout); helped || err != nil {
		return err
	}
	if o.S3Endpoint == "" || o.StripeURL == "" || o.CreemURL == "" {
		return usageError{"demo connectors: --s3-endpoint, --stripe-url and --creem-url are required"}
	}
	var err error
	if o.DatabaseURL, err = demoDatabaseURL(cfg, *dbFlag); err != nil {
		return err
	}
	b, err := demoConnectorsFile(o)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(b)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	// It holds the database URL, which may carry a password.
	tmp := *out + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, *out)
}

// demoConnectorsFile is the connectors file of the demo deployment,
// checked by the same parser Steward uses.
func demoConnectorsFile(o demoConnectorsOptions) ([]byte, error) {
	q := strconv.Quote // a YAML double-quoted scalar takes Go's escapes
	src := fmt.Sprintf(`# The demo deployment's connectors, written by `+"`steward demo connectors`"+` (scripts/run.sh).
# Use with STEWARD_CONNECTORS=%s
app_db:
  postgres:
    dsn: %s
    schema: app
    restrict_columns: {users: processing_restricted}
bot_db:
  postgres:
    dsn: %s
    schema: bot
    restrict_columns: {tg_users: processing_restricted}
object_store:
  objectstore:
    s3: {bucket: %s, endpoint: %s, region: %s, access_key_id: %s, secret_access_key: %s, path_style: true}
stripe:
  stripe: {api_key: %s, base_url: %s}
creem:
  creem: {api_key: %s, base_url: %s, webhook_secret: %s, store: %s, support_contact: %s}
`, "var/demo/connectors.yaml", q(o.DatabaseURL), q(o.DatabaseURL),
		q(demoBucket), q(o.S3Endpoint), q(demoS3Region), q(o.S3AccessKey), q(o.S3SecretKey),
		q(demoStripeKey), q(o.StripeURL),
		q(demoCreemKey), q(o.CreemURL), q(demoCreemWebhook), q(demoCreemStore), q(demoCreemSupport))
	if _, err := config.ParseConnectors("demo connectors", []byte(src), func(string) (string, bool) { return "", false }); err != nil {
		return nil, err
	}
	return []byte(src), nil
}
