package console

import (
	"io/fs"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/steward-privacy/steward/internal/dsar"
)

// TestCatalog: every message key a template or handler uses exists in every
// language, and no language has a key the others lack.
func TestCatalog(t *testing.T) {
	t.Parallel()
	used := map[string]bool{}
	lit := regexp.MustCompile(`t \$?\.Lang "([a-z_0-9.-]+)"`)
	names, _ := fs.Glob(templateFS, "templates/*.html")
	for _, n := range names {
		b, _ := templateFS.ReadFile(n)
		for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = true
		}
	}
	// Keys built with printf in templates and handlers.
	for _, s := range append([]string{"open", "all"}, statusNames()...) {
		used["st_"+s] = true
	}
	for _, s := range requestTypes {
		used["type_"+s] = true
	}
	for _, s := range channelNames {
		used["ch_"+s] = true
	}
	for _, s := range []string{"approve", "deny", "extend", "pause", "resume", "cancel", "retry-planning", "replan", "complete", "retry", "acknowledge"} {
		used["act_"+s] = true
	}
	for _, s := range []string{"approve", "deny", "extend", "pause", "cancel", "replan"} {
		used["reason_"+s] = true
	}
	for _, s := range []string{"pending", "running", "succeeded", "failed", "canceled"} {
		used["task_"+s] = true
	}
	used["mode_automated"], used["mode_manual"] = true, true
	for _, k := range doneKeys {
		used[k] = true
	}
	for k := range used {
		for _, lang := range []string{"en", "ru", "uz"} {
			if _, ok := messages[lang][k]; !ok {
				t.Errorf("%s lacks %q", lang, k)
			}
		}
	}
	for _, lang := range []string{"ru", "uz"} {
		if len(messages[lang]) != len(messages["en"]) {
			t.Errorf("%s has %d messages, en %d", lang, len(messages[lang]), len(messages["en"]))
		}
		for k, v := range messages["en"] {
			if strings.Count(messages[lang][k], "%") != strings.Count(v, "%") {
				t.Errorf("%s %q: placeholders differ from English", lang, k)
			}
		}
	}
}

func statusNames() []string {
	var out []string
	for _, s := range dsar.Statuses() {
		out = append(out, string(s))
	}
	return out
}

var queueCases = []string{
	"", "status=open", "status=all", "status=paused&type=erasure&regime=gdpr&channel=web", "product=bot", "product=nope",
	"status=nope", "type=x", "regime=mars", "channel=fax", "q=email:ann@example.com", "q=ann@example.com",
	"q=tg:12345", "cursor=eyJkIjoiMjAyNi0wMS0wMVQwMDowMDowMFoiLCJpIjoiYSJ9", "cursor=%3Cscript%3E", "q=%00%ff",
}

func TestParseQueue(t *testing.T) {
	t.Parallel()
	for _, raw := range queueCases {
		v, _ := url.ParseQuery(raw)
		q, errs := parseQueue(v, []string{"gdpr", "ccpa"}, []string{"bot", "web"})
		if strings.Contains(raw, "nope") || strings.Contains(raw, "mars") || strings.Contains(raw, "fax") || strings.Contains(raw, "type=x") ||
			strings.Contains(raw, "script") || raw == "q=ann@example.com" || raw == "q=%00%ff" {
			if len(errs) == 0 {
				t.Errorf("%q: no error", raw)
			}
			continue
		}
		if len(errs) > 0 {
			t.Errorf("%q: %v", raw, errs)
		}
		if raw == "q=email:ann@example.com" && q.Subject.String() != "email:ann@example.com" {
			t.Errorf("%q: subject %v", raw, q.Subject)
		}
	}
}

// FuzzParseQueue: any query string parses to known values or errors; the
// next-page query never carries the search.
func FuzzParseQueue(f *testing.F) {
	for _, c := range queueCases {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, errs := parseQueue(v, []string{"gdpr"}, []string{"web"})
		if len(errs) > 0 {
			return
		}
		if q.Status != "open" && q.Status != "all" && !validStatus(q.Status) {
			t.Fatalf("status %q accepted", q.Status)
		}
		if q.Search != "" && q.Subject.IsZero() {
			t.Fatalf("search %q without a subject", q.Search)
		}
		next := q.query(q.Cursor)
		if q.Search != "" && strings.Contains(next, url.QueryEscape(q.Search)) && q.Search != q.Cursor {
			t.Fatalf("search in the next page's query: %s", next)
		}
		if _, err := url.ParseQuery(next); err != nil {
			t.Fatalf("next query %q: %v", next, err)
		}
	})
}

func validStatus(s string) bool {
	for _, st := range dsar.Statuses() {
		if string(st) == s {
			return true
		}
	}
	return false
}

func FuzzParseIdentitiesAndHold(f *testing.F) {
	for _, c := range []string{"email:a@example.com\ntg:1", "", "\n\n", "nonsense", "scope=dataset", "email:a@b.c\r\ntg:2\r\n"} {
		f.Add(c, "subject", "2031-01-31")
	}
	f.Fuzz(func(t *testing.T, ids, scope, expires string) {
		subs, err := parseIdentities(ids)
		if err == nil {
			for _, s := range subs {
				if s.IsZero() {
					t.Fatal("zero subject accepted")
				}
			}
			if len(subs) > dsar.MaxAddedIdentities {
				t.Fatalf("%d identities accepted", len(subs))
			}
		}
		in, err := parseHold(func(k string) string {
			return map[string]string{"scope": scope, "value": ids, "reason": "r", "expires": expires}[k]
		})
		if err == nil {
			n := 0
			for _, s := range []string{in.Subject, in.Dataset, in.Category} {
				if s != "" {
					n++
				}
			}
			if n > 1 {
				t.Fatalf("more than one scope: %+v", in)
			}
		}
	})
}

func FuzzSafeNext(f *testing.F) {
	for _, c := range []string{"/console/requests", "//evil", "https://evil", "/console/../x", "/console/requests/\\evil", "/consolex"} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := safeNext(s)
		if !strings.HasPrefix(got, Prefix+"/") || strings.Contains(got, "//") || strings.ContainsAny(got, "\\\r\n") {
			t.Fatalf("safeNext(%q) = %q", s, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" {
			t.Fatalf("safeNext(%q) = %q leaves the console", s, got)
		}
	})
}
