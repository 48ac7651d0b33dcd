package exportpkg

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

func TestSafePath(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, want string }{
		{"object_store/uploads/ref-1.png", "files/object_store/uploads/ref-1.png"},
		{"../../../etc/shadow", "files/etc/shadow"},
		{"/var/log/x", "files/var/log/x"},
		{`..\..\windows\system32\drivers\etc\hosts`, "files/windows/system32/drivers/etc/hosts"},
		{"a/./b//c", "files/a/b/c"},
		{"", "files/file"},
		{"..", "files/file"},
		{"...", "files/file"},
		{"trailing. ", "files/trailing"},
		{"what?<is>:this|*\"", "files/what__is__this___"},
		{"nul", "files/_nul"},
		{"LPT1.log", "files/_LPT1.log"},
		{"com10.txt", "files/com10.txt"},
		{"tab\there\x00nul\x7f", "files/tab_here_nul_"},
		{"photo\u202egnp.exe", "files/photo_gnp.exe"},
		{"bad\xffutf8.txt", "files/bad_utf8.txt"},
		{"Кот/фото.jpg", "files/Кот/фото.jpg"},
		{strings.Repeat("я", 300) + ".png", "files/" + strings.Repeat("я", (maxSegment-4)/2) + ".png"},
	}
	for _, c := range cases {
		if got := newNamer(DirFiles).add(safePath(c.name)); got != c.want {
			t.Errorf("%q -> %q, want %q", c.name, got, c.want)
		}
	}
}

func TestNamerUnique(t *testing.T) {
	t.Parallel()
	n := newNamer(DirFiles)
	got := []string{}
	for _, name := range []string{"a.png", "A.PNG", "a.png", "a-2.png", "dir", "dir/x", "dir/x/y", "Dir/X", ".bashrc", ".bashrc"} {
		got = append(got, n.add(safePath(name)))
	}
	want := []string{"files/a.png", "files/A-2.PNG", "files/a-3.png", "files/a-2-2.png", "files/dir", "files/dir-2/x", "files/dir-2/x-2/y", "files/Dir-2/X-3", "files/.bashrc", "files/.bashrc-2"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("name %d: %q, want %q (all: %q)", i, got[i], want[i], got)
		}
	}
}

// checkSafe fails t if p is not a safe, relative entry name under root.
func checkSafe(t *testing.T, root, p string) {
	t.Helper()
	if !strings.HasPrefix(p, root+"/") {
		t.Fatalf("%q is not under %s/", p, root)
	}
	if !utf8.ValidString(p) || strings.ContainsAny(p, "\\:*?\"<>|") || len(p) > len(root)+maxSegments*(maxSegment+1)+1 {
		t.Fatalf("unsafe name %q", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.HasSuffix(seg, ".") || strings.HasSuffix(seg, " ") || len(seg) > maxSegment {
			t.Fatalf("unsafe segment %q in %q", seg, p)
		}
		if reservedName(seg) {
			t.Fatalf("reserved segment %q in %q", seg, p)
		}
		for _, r := range seg {
			if unicode.IsControl(r) || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) {
				t.Fatalf("control character %U in %q", r, p)
			}
		}
	}
}

func FuzzSafePath(f *testing.F) {
	for _, s := range []string{"object_store/uploads/ref-1.png", "../../x", `C:\a\b`, "CON", "a/./b", "\u202e", "a\x00b", "dir", "dir/x", "...", "AUX.tar.gz"} {
		f.Add(s, "dir")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		n := newNamer(DirFiles)
		seen := map[string]bool{}
		// Two names, each twice: every result safe and unique, a file never
		// a directory of another.
		for _, name := range []string{a, b, a, b} {
			p := n.add(safePath(name))
			checkSafe(t, DirFiles, p)
			lp := strings.ToLower(p)
			if seen[lp] {
				t.Fatalf("%q handed out twice", p)
			}
			for q := range seen {
				if strings.HasPrefix(lp, q+"/") || strings.HasPrefix(q, lp+"/") {
					t.Fatalf("%q and %q: a file is also a directory", p, q)
				}
			}
			seen[lp] = true
		}
	})
}

func TestNeutralize(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@x": "'@x", "\tx": "'\tx", "\rx": "'\rx", "\nx": "'\nx",
		"  =x": "'  =x", "＝x": "'＝x", "plain": "plain", "": "", "a=b": "a=b", "'=x": "'=x", "   ": "   ",
	}
	for in, want := range cases {
		if got := neutralize(in); got != want {
			t.Errorf("neutralize(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzCellText(f *testing.F) {
	for _, s := range []string{"=cmd|' /C calc'!A0", "-5", "  @x", "plain", "\t", "＋1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, v := range []any{s, []any{s}, map[string]any{"k": s}} {
			got, err := cellText(v)
			if err != nil {
				t.Fatal(err)
			}
			trimmed := strings.TrimLeft(got, " ")
			if r, _ := utf8.DecodeRuneInString(trimmed); strings.ContainsRune("=+-@\t\r\n＝＋－＠", r) && trimmed != "" {
				t.Fatalf("cellText(%q) = %q starts a formula", v, got)
			}
		}
	})
}

// FuzzBuild builds packages from hostile names, keys and values and checks
// each opens, its data.json is valid JSON holding the value, its CSV parses
// with the value neutralized, and its entry names are safe.
func FuzzBuild(f *testing.F) {
	for _, s := range []string{"=1+1", "../x", "a\x00b", "<script>", "\xff", "CON", "кот", ""} {
		f.Add(s, s, s)
	}
	generated := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, name, key, value string) {
		in := Input{RequestID: "r", RequestType: "access", GeneratedAt: generated,
			Records: []Record{rec("sys", "ds", key, fv("f", "user.content.message", value), fv(value+"x", "c", value))},
			Files:   []File{memFile("sys", "ds", key, name, "", []byte(value), true)}}
		var buf bytes.Buffer
		if _, err := Build(context.Background(), &buf, in); err != nil {
			t.Fatal(err)
		}
		zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		for _, zf := range zr.File {
			if strings.HasPrefix(zf.Name, DirFiles+"/") {
				checkSafe(t, DirFiles, zf.Name)
			}
			rc, err := zf.Open()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatalf("%s: %v", zf.Name, err)
			}
			switch {
			case zf.Name == PathData:
				var doc struct {
					Records []struct{ Fields []struct{ Value string } }
				}
				if err := json.Unmarshal(b, &doc); err != nil {
					t.Fatalf("data.json: %v", err)
				}
				want, _ := json.Marshal(value) // invalid UTF-8 becomes U+FFFD, byte by byte
				var w string
				_ = json.Unmarshal(want, &w)
				if got := doc.Records[0].Fields[0].Value; got != w {
					t.Fatalf("data.json holds %q for %q", got, value)
				}
			case strings.HasPrefix(zf.Name, DirCSV+"/"):
				rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte(utf8BOM)))).ReadAll()
				if err != nil {
					t.Fatalf("%s: %v", zf.Name, err)
				}
				if len(rows) != 2 || len(rows[1]) != 3 {
					t.Fatalf("%s: %q", zf.Name, rows)
				}
				for _, cell := range append(rows[0], rows[1]...) {
					trimmed := strings.TrimLeft(cell, " ")
					if r, _ := utf8.DecodeRuneInString(trimmed); trimmed != "" && strings.ContainsRune("=+-@\t\r\n＝＋－＠", r) {
						t.Fatalf("%s: cell %q starts a formula", zf.Name, cell)
					}
				}
			}
		}
	})
}
