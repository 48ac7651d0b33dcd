// Package accesslog writes the API's access log cheaply. Formatting one
// JSON line per request through log/slog (a Record, its attributes, the
// handler's generic encoder and its lock) cost about a quarter of a
// consent check's server time; Handler is the process's slog handler with
// a second entrance, Write, that appends the same JSON line by hand to a
// pooled buffer and hands it to the output in one call. Every request is
// still logged: nothing is sampled.
package accesslog

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Entry is one access-log line. It carries the route pattern, never the
// path or query: subjects travel in the query string, and the log holds no
// personal data.
type Entry struct {
	// Time is the line's time; zero: now. The server passes the time it
	// read to measure the duration, saving a clock read per request.
	Time      time.Time
	Level     slog.Level
	RequestID string
	Method    string
	Route     string
	Status    int
	Duration  time.Duration
	BytesOut  int
	KeyID     string // "" when the request had no valid key
	Role      string
}

// Handler is slog's JSON handler on w, plus Write for access-log lines in
// the same format: a consumer of the log cannot tell the two apart.
type Handler struct {
	*slog.JSONHandler
	w     io.Writer
	level slog.Leveler
}

// NewJSON returns a JSON handler on w logging from level up. w should
// buffer (internal/logbuf): Write hands it one line per call.
func NewJSON(w io.Writer, level slog.Leveler) *Handler {
	return &Handler{JSONHandler: slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}), w: w, level: level}
}

var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Write logs e at e.Level as slog's JSONHandler would log
//
//	log.LogAttrs(ctx, e.Level, "http_request", request_id, method, route,
//		status, duration_us, bytes_out[, key_id, role])
//
// if the handler is enabled for that level.
func (h *Handler) Write(ctx context.Context, e *Entry) {
	if !h.Enabled(ctx, e.Level) {
		return
	}
	bp := bufs.Get().(*[]byte)
	b := (*bp)[:0]
	b = append(b, `{"time":"`...)
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	b = t.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":`...)
	b = appendString(b, e.Level.String())
	b = append(b, `,"msg":"http_request","request_id":`...)
	b = appendString(b, e.RequestID)
	b = append(b, `,"method":`...)
	b = appendString(b, e.Method)
	b = append(b, `,"route":`...)
	b = appendString(b, e.Route)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"duration_us":`...)
	b = strconv.AppendInt(b, e.Duration.Microseconds(), 10)
	b = append(b, `,"bytes_out":`...)
	b = strconv.AppendInt(b, int64(e.BytesOut), 10)
	if e.KeyID != "" {
		b = append(b, `,"key_id":`...)
		b = appendString(b, e.KeyID)
		b = append(b, `,"role":`...)
		b = appendString(b, e.Role)
	}
	b = append(b, "}\n"...)
	_, _ = h.w.Write(b) // as slog does, a failed log write is not the request's error
	if cap(b) <= 4<<10 {
		*bp = b
		bufs.Put(bp)
	}
}

// appendString appends s as a JSON string, escaped as slog's JSON handler
// escapes it (control characters, quotes, backslashes, U+2028, U+2029, and
// invalid UTF-8 as U+FFFD; no HTML escaping).
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
