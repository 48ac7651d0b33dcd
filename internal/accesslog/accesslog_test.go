package accesslog

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"testing"
	"time"
)

// timeField is the only part of a line that differs between two loggers.
var timeField = regexp.MustCompile(`^\{"time":"[^"]+",`)

// Write produces the line slog's JSON handler produces for the same
// attributes, byte for byte apart from the time, including escaping of
// hostile text; a derived logger and the handler's level work as slog's.
func TestWriteMatchesSlog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, e := range []Entry{
		{Level: slog.LevelInfo, RequestID: "a1b2c3-9z", Method: "GET", Route: "/v1/consent/check", Status: 200, Duration: 1234567 * time.Nanosecond, BytesOut: 120, KeyID: "key_01", Role: "frontend"},
		{Level: slog.LevelError, RequestID: "r", Method: "POST", Route: "unmatched", Status: 503, Duration: 0, BytesOut: 0},
		{Level: slog.LevelInfo, RequestID: "q\"\\\n\r\t\x00\x1f<>&", Method: "G\xffET", Route: "/v1/\u2028\u2029é", Status: 404, Duration: -time.Microsecond, KeyID: "k", Role: ""},
	} {
		var fast, want bytes.Buffer
		NewJSON(&fast, slog.LevelInfo).Write(ctx, &e)
		attrs := []slog.Attr{
			slog.String("request_id", e.RequestID), slog.String("method", e.Method), slog.String("route", e.Route),
			slog.Int("status", e.Status), slog.Int64("duration_us", e.Duration.Microseconds()), slog.Int("bytes_out", e.BytesOut),
		}
		if e.KeyID != "" {
			attrs = append(attrs, slog.String("key_id", e.KeyID), slog.String("role", e.Role))
		}
		slog.New(slog.NewJSONHandler(&want, &slog.HandlerOptions{Level: slog.LevelInfo})).LogAttrs(ctx, e.Level, "http_request", attrs...)
		got, exp := timeField.ReplaceAllString(fast.String(), "{"), timeField.ReplaceAllString(want.String(), "{")
		if got != exp || !timeField.MatchString(fast.String()) {
			t.Errorf("access line differs from slog's:\n got %q\nwant %q", fast.String(), want.String())
		}
	}

	var out bytes.Buffer
	h := NewJSON(&out, slog.LevelWarn)
	h.Write(ctx, &Entry{Level: slog.LevelInfo, RequestID: "x", Method: "GET", Route: "/", Status: 200})
	if out.Len() != 0 {
		t.Fatalf("an info line was written at level warn: %q", out.String())
	}
	slog.New(h).With("component", "api").Warn("hello", "n", 1)
	if !regexp.MustCompile(`"level":"WARN","msg":"hello","component":"api","n":1}\n$`).Match(out.Bytes()) {
		t.Fatalf("the handler does not log as slog's JSON handler: %q", out.String())
	}
}

func BenchmarkWrite(b *testing.B) {
	h := NewJSON(discard{}, slog.LevelInfo)
	e := Entry{Level: slog.LevelInfo, RequestID: "a1b2c3d4e5f6-1x3", Method: "GET", Route: "/v1/consent/check", Status: 200, Duration: 42 * time.Microsecond, BytesOut: 160, KeyID: "key_01HZX", Role: "frontend"}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Write(ctx, &e)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
