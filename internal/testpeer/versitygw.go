package testpeer

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
)

// VersityGWInstall is how to get the versitygw binary; the tests name it
// when the binary is missing.
const VersityGWInstall = "go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"

// ErrVersityGWNotFound is returned by StartS3 when no versitygw binary is
// found.
var ErrVersityGWNotFound = errors.New("versitygw not found: run make test (scripts/ensure-peers.sh installs it) or " + VersityGWInstall)

// S3Server is a running versitygw: a real S3 API over HTTP on a loopback
// port, storing objects in a temporary directory. Buckets may be versioned
// (the gateway always runs with a versioning directory).
type S3Server struct {
	// Endpoint is the base URL, e.g. http://127.0.0.1:41234.
	Endpoint  string
	AccessKey string
	SecretKey string
	Region    string
	// Dir holds the buckets (one directory each).
	Dir string

	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	out    *versityGWLog // the gateway's output, for failure reports
	tmp    string        // removed on Stop when StartS3 created it
	client *s3.Client
	stop   sync.Once
}

// S3Option configures StartS3.
type S3Option func(*versityGWOptions)

type versityGWOptions struct {
	dir string
}

// WithDir stores the buckets under dir instead of a new temporary
// directory (which the caller then owns and removes).
func WithDir(dir string) S3Option { return func(o *versityGWOptions) { o.dir = dir } }

// S3 starts a versitygw for the test and stops it when the test ends. It
// fails the test when the binary is missing: a connector test that did not
// run must not look like one that passed.
func S3(t testing.TB, opts ...S3Option) *S3Server {
	t.Helper()
	o := []S3Option{WithDir(t.TempDir())}
	s, err := StartS3(append(o, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartS3 starts a versitygw outside a test, for TestMain (one server per
// package). The caller must call Stop.
func StartS3(opts ...S3Option) (*S3Server, error) {
	var o versityGWOptions
	for _, fn := range opts {
		fn(&o)
	}
	bin, err := findBinary("versitygw")
	if err != nil {
		return nil, ErrVersityGWNotFound
	}
	tmp := ""
	if o.dir == "" {
		if o.dir, err = os.MkdirTemp("", "versitygw-"); err != nil {
			return nil, err
		}
		tmp = o.dir
	}
	// The free port is found by binding and releasing it, so another
	// process can take it before the gateway does; a gateway that exits
	// at once is tried again on a new port.
	var last error
	for range 5 {
		s, err := startVersityGW(bin, o.dir)
		if err == nil {
			s.tmp = tmp
			return s, nil
		}
		last = err
	}
	if tmp != "" {
		_ = os.RemoveAll(tmp)
	}
	return nil, last
}

func startVersityGW(bin, dir string) (*S3Server, error) {
	root, vers := filepath.Join(dir, "buckets"), filepath.Join(dir, "versions")
	for _, d := range []string{root, vers} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	port, err := versityGWPort()
	if err != nil {
		return nil, err
	}
	s := &S3Server{
		Endpoint: "http://" + port,
		// Keys of its own: the port was free when chosen but another
		// package's gateway may have taken it since, and an unknown
		// key is how wait tells that gateway from ours.
		AccessKey: "steward-test-" + rand.Text()[:12],
		SecretKey: rand.Text(),
		Region:    "us-east-1",
		Dir:       root,
		done:      make(chan struct{}),
		out:       &versityGWLog{},
	}
	s.cmd = exec.Command(bin, "--access", s.AccessKey, "--secret", s.SecretKey, "--region", s.Region,
		"--port", port, "--health", "/health", "--quiet",
		"posix", "--versioning-dir", vers, root)
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	s.client = s.NewClient(func(o *s3.Options) { o.RetryMaxAttempts = 1 })
	if err := s.wait(15 * time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	s.client = s.NewClient(nil)
	return s, nil
}

// wait polls until the gateway answers a request signed with its own
// keys. The health endpoint alone is not enough: when another test
// process's gateway took the port first, it answers /health while ours
// fails to bind and exits, and the tests would share (and the other
// process's Stop would later delete) its buckets.
func (s *S3Server) wait(limit time.Duration) error {
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("versitygw exited at start: %s", s.out.String())
		default:
		}
		resp, err := hc.Get(s.Endpoint + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && s.ours() {
				return nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("versitygw did not answer on %s within %v: %s", s.Endpoint, limit, s.out.String())
}

// ours reports whether the gateway on the port accepts this server's
// keys, which only the process started with them does.
func (s *S3Server) ours() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := s.client.ListBuckets(ctx, &s3.ListBucketsInput{})
	return err == nil
}

// Stop kills the gateway (this process's own child) and waits for it.
func (s *S3Server) Stop() {
	s.stop.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Kill()
			<-s.done
		}
		if s.tmp != "" {
			_ = os.RemoveAll(s.tmp)
		}
	})
}

// AWSConfig is an SDK configuration with the gateway's static
// credentials, so tests never touch the process environment (t.Setenv
// would forbid parallel tests).
func (s *S3Server) AWSConfig() aws.Config {
	return aws.Config{
		Region:       s.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
		BaseEndpoint: aws.String(s.Endpoint),
		// The gateway verifies checksums only when asked to.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
}

// NewClient returns an S3 client for the gateway (path-style addressing),
// with optFns applied last: e.g. another BaseEndpoint for a proxy, or
// RetryMaxAttempts 1.
func (s *S3Server) NewClient(optFn func(*s3.Options)) *s3.Client {
	return s3.NewFromConfig(s.AWSConfig(), func(o *s3.Options) {
		o.UsePathStyle = true
		if optFn != nil {
			optFn(o)
		}
	})
}

// Client is a shared S3 client for the gateway.
func (s *S3Server) Client() *s3.Client { return s.client }

// CreateBucket creates a bucket, with versioning enabled when versioned.
func (s *S3Server) CreateBucket(t testing.TB, name string, versioned bool) {
	t.Helper()
	if err := s.CreateBucketErr(context.Background(), name, versioned); err != nil {
		t.Fatal(err)
	}
}

// CreateBucketErr is CreateBucket for TestMain and benchmarks' setup.
func (s *S3Server) CreateBucketErr(ctx context.Context, name string, versioned bool) error {
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	if !versioned {
		return nil
	}
	_, err := s.client.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{
		Bucket:                  aws.String(name),
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled},
	})
	if err != nil {
		return fmt.Errorf("enable versioning on %s: %w", name, err)
	}
	return nil
}

// OpenBucket opens the bucket through gocloud's s3blob driver with the
// gateway's credentials, and closes it when the test ends.
func (s *S3Server) OpenBucket(t testing.TB, name string) *blob.Bucket {
	t.Helper()
	b, err := s.OpenBucketErr(context.Background(), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// OpenBucketErr opens the bucket through s3blob with a client from
// NewClient(optFn). The caller closes it.
func (s *S3Server) OpenBucketErr(ctx context.Context, name string, optFn func(*s3.Options)) (*blob.Bucket, error) {
	return s3blob.OpenBucketV2(ctx, s.NewClient(optFn), name, &s3blob.Options{
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	})
}

// BucketURL is the gocloud URL of the bucket, the form a configuration
// file takes:
//
//	s3://NAME?endpoint=http://127.0.0.1:PORT&region=us-east-1&use_path_style=true&request_checksum_calculation=when_required
//
// The URL carries no credentials: s3blob takes them from the SDK's default
// chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile, a role).
// Tests that open it must set those for the process, so they cannot run in
// parallel; parallel tests use OpenBucket instead.
func (s *S3Server) BucketURL(name string) string {
	q := url.Values{}
	q.Set("endpoint", s.Endpoint)
	q.Set("region", s.Region)
	q.Set("use_path_style", "true")
	q.Set("request_checksum_calculation", "when_required")
	q.Set("response_checksum_validation", "when_required")
	return "s3://" + name + "?" + q.Encode()
}

// versityGWPort returns a loopback address with a port nobody listens on now.
func versityGWPort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// versityGWLog keeps the first 64 KiB of the gateway's output.
type versityGWLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *versityGWLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := 64<<10 - b.b.Len(); room > 0 {
		b.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *versityGWLog) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(b.b.String())
}
