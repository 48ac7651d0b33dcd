package main

import (
	"io"
	"log/slog"

	"github.com/steward-privacy/steward/internal/accesslog"
)

// newLogger is the process's logger: JSON lines on w from level up, with
// the API's access log written through accesslog's cheaper entrance.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(accesslog.NewJSON(w, level))
}
