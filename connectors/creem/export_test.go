package creem

import (
	"context"
	"net/http"
	"time"
)

// SetInject makes the next calls of op fail with the error fn returns (nil
// lets a call through); tests use it to check error classification.
func SetInject(c *Connector, fn func(op string) error) { c.inject = fn }

// SetSleep replaces the wait between retries, so tests observe the waits
// without spending them.
func SetSleep(c *Connector, fn func(ctx context.Context, d time.Duration) error) { c.sleep = fn }

// ParseRetryAfter exposes the Retry-After reading.
func ParseRetryAfter(h http.Header, now time.Time) time.Duration { return parseRetryAfter(h, now) }
