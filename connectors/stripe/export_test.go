package stripe

import (
	"context"
	"time"
)

// SetInject makes the next calls of op fail with the error fn returns (nil
// lets a call through); tests use it to check error classification.
func SetInject(c *Connector, fn func(op string) error) { c.inject = fn }

// SetSleep replaces the wait between retries, so tests can record the
// waits without sleeping.
func SetSleep(c *Connector, fn func(ctx context.Context, d time.Duration) error) { c.sleep = fn }
