package objectstore

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/steward-privacy/steward/connectors"
)

// maxBatch is the most keys one S3 DeleteObjects call takes.
const maxBatch = 1000

// remove deletes objs (objects, or versions when they carry one) and
// returns those the store deleted. An object already gone is not an
// error: another run got there first, and it is not counted twice.
func (c *Connector) remove(ctx context.Context, objs []object) ([]object, error) {
	if c.s3 != nil {
		return c.removeS3(ctx, objs)
	}
	var (
		mu      sync.Mutex
		deleted []object
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.cfg.DeleteConcurrency)
	for _, o := range objs {
		g.Go(func() error {
			err := c.bucket.Delete(gctx, o.key)
			switch {
			case gcerrors.Code(err) == gcerrors.NotFound:
				return nil
			case err != nil:
				return err
			}
			mu.Lock()
			deleted = append(deleted, o)
			mu.Unlock()
			return nil
		})
	}
	// Wait returns the first failure, not the cancellations it caused.
	err := g.Wait()
	return deleted, err
}

// removeS3 deletes with DeleteObjects, up to maxBatch keys (or versions)
// a call: one request instead of a thousand.
func (c *Connector) removeS3(ctx context.Context, objs []object) ([]object, error) {
	var deleted []object
	for batch := range slices.Chunk(objs, maxBatch) {
		if err := ctx.Err(); err != nil {
			return deleted, err
		}
		ids := make([]s3types.ObjectIdentifier, len(batch))
		type id struct{ key, version string }
		byID := make(map[id]object, len(batch))
		for i, o := range batch {
			ids[i] = s3types.ObjectIdentifier{Key: aws.String(o.raw)}
			if o.version != "" {
				ids[i].VersionId = aws.String(o.version)
			}
			byID[id{o.raw, o.version}] = o
		}
		out, err := c.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(c.s3Bucket),
			Delete: &s3types.Delete{Objects: ids, Quiet: aws.Bool(false)},
		})
		if err != nil {
			return deleted, err
		}
		for _, d := range out.Deleted {
			if o, ok := byID[id{aws.ToString(d.Key), aws.ToString(d.VersionId)}]; ok {
				deleted = append(deleted, o)
				delete(byID, id{o.raw, o.version})
			}
		}
		var first *keyError
		failed := 0
		for _, e := range out.Errors {
			switch code := aws.ToString(e.Code); code {
			case "NoSuchKey", "NoSuchVersion":
			default:
				failed++
				if first == nil {
					first = &keyError{code: code, msg: aws.ToString(e.Message)}
				}
			}
		}
		if first != nil {
			return deleted, fmt.Errorf("%d of %d deletes refused: %w", failed, len(batch), first.classified())
		}
	}
	return deleted, nil
}

// keyError is one key's failure inside a DeleteObjects answer, which
// carries an S3 error code but no HTTP status of its own.
type keyError struct{ code, msg string }

func (e *keyError) Error() string { return e.code + ": " + redact(e.msg) }

// classified classifies a per-key failure by its code.
func (e *keyError) classified() error {
	if retryableCodes[e.code] {
		return connectors.Retryable(e, 0)
	}
	return connectors.Permanent(e)
}
