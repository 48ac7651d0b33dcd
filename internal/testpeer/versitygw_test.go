package testpeer

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
)

func TestS3(t *testing.T) {
	s := S3(t)
	ctx := context.Background()
	if !strings.HasPrefix(s.Endpoint, "http://127.0.0.1:") {
		t.Errorf("Endpoint %q is not a loopback URL", s.Endpoint)
	}
	s.CreateBucket(t, "plain", false)
	s.CreateBucket(t, "versioned", true)

	// Through gocloud, with the static credentials.
	b := s.OpenBucket(t, "plain")
	if err := b.WriteAll(ctx, "uploads/1/a.txt", []byte("hello"), &blob.WriterOptions{ContentType: "text/plain"}); err != nil {
		t.Fatal(err)
	}
	got, err := b.ReadAll(ctx, "uploads/1/a.txt")
	if err != nil || string(got) != "hello" {
		t.Fatalf("read back %q, %v", got, err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, "plain", "uploads", "1", "a.txt")); err != nil {
		t.Errorf("the object is not a file under Dir: %v", err)
	}

	// A versioned bucket keeps overwritten versions.
	c := s.Client()
	for _, body := range []string{"v1", "v2"} {
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("versioned"), Key: aws.String("k"), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String("versioned")})
	if err != nil || len(out.Versions) != 2 {
		t.Errorf("versions of an overwritten key: %d, %v; want 2", len(out.Versions), err)
	}
	vs, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String("plain")})
	if err != nil || vs.Status != "" {
		t.Errorf("the plain bucket's versioning: %q, %v", vs.Status, err)
	}

	// Wrong credentials are refused: the gateway really checks them.
	bad := s3.NewFromConfig(s.AWSConfig(), func(o *s3.Options) {
		o.UsePathStyle = true
		o.Credentials = aws.NewCredentialsCache(aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: "wrong"}, nil
		}))
	})
	if _, err := bad.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("plain")}); err == nil {
		t.Error("a wrong secret was accepted")
	}

	// The URL form opens with credentials from the environment (so this
	// test is not parallel).
	t.Setenv("AWS_ACCESS_KEY_ID", s.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", s.SecretKey)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	ub, err := blob.OpenBucket(ctx, s.BucketURL("plain"))
	if err != nil {
		t.Fatal(err)
	}
	defer ub.Close()
	if got, err := ub.ReadAll(ctx, "uploads/1/a.txt"); err != nil || string(got) != "hello" {
		t.Errorf("through BucketURL: %q, %v", got, err)
	}

	// Stop ends the process; the port stops answering.
	s.Stop()
	if resp, err := http.Get(s.Endpoint + "/health"); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		t.Error("the gateway still answers after Stop")
	}
	s.Stop() // and a second Stop (t.Cleanup's) is harmless
}

// Two servers side by side: ports and directories do not clash.
func TestS3Parallel(t *testing.T) {
	t.Parallel()
	a, b := S3(t), S3(t)
	if a.Endpoint == b.Endpoint || a.Dir == b.Dir {
		t.Fatalf("two servers share %s / %s", a.Endpoint, a.Dir)
	}
	for _, s := range []*S3Server{a, b} {
		s.CreateBucket(t, "same-name", false)
	}
}

// Without the binary, starting fails naming the install command; with it
// in a GOPATH's bin (not on PATH), it is found there.
func TestS3NotFound(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	orig := binDirs
	t.Cleanup(func() { binDirs = orig })
	binDirs = func() []string { return []string{filepath.Join(dir, "bin")} }

	s, err := StartS3()
	if err == nil {
		s.Stop()
		t.Fatal("StartS3 found a binary in an empty environment")
	}
	want := "versitygw not found: run make test (scripts/ensure-peers.sh installs it) or go install github.com/versity/versitygw/cmd/versitygw@v1.8.0"
	if err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	bin := filepath.Join(dir, "bin", "versitygw")
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := findBinary("versitygw"); err != nil || p != bin {
		t.Errorf("findBinary = %q, %v; want %s", p, err, bin)
	}
	// A binary that exits at once is an error with its output, not a hang.
	if s, err := StartS3(); err == nil {
		s.Stop()
		t.Error("StartS3 succeeded with a binary that exits")
	}
}
