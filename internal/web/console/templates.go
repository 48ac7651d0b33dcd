package console

import (
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/steward-privacy/steward/internal/web"
)

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", n, err)
		}
		out[base] = t
	}
	return out, nil
}

var funcs = template.FuncMap{
	"t":          T,
	"date":       web.FormatDate,
	"datetime":   formatTime,
	"stylesheet": func() string { return web.StylesheetPath },
	"has":        func(list []string, s string) bool { return slices.Contains(list, s) },
	"deref": func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	},
	"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"human": func(s string) string { return strings.ReplaceAll(s, "_", " ") },
	"json": func(b json.RawMessage) string {
		if len(b) == 0 {
			return ""
		}
		return string(b)
	},
	"short": func(s string) string {
		if len(s) > 8 {
			return s[:8]
		}
		return s
	},
	"abs": func(n int) int {
		if n < 0 {
			return -n
		}
		return n
	},
	"ints": func(ns []int) string {
		s := make([]string, len(ns))
		for i, n := range ns {
			s[i] = fmt.Sprint(n)
		}
		return strings.Join(s, ", ")
	},
	"hex":  func(b []byte) string { return fmt.Sprintf("%x", b) },
	"list": func(s ...string) []string { return s },
}

// formatTime is a date with the time of day (UTC), for locks, the
// timeline and the log.
func formatTime(lang string, t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return web.FormatDate(lang, t) + " " + t.UTC().Format("15:04") + " UTC"
}

func urlQuery(s string) string { return url.QueryEscape(s) }
