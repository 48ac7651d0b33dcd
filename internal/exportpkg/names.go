package exportpkg

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Entry names come from connectors (an object key's tail, a Telegram file
// name), so they are made safe to extract anywhere: relative, no "..", no
// backslashes, nothing Windows refuses (<>:"|?*, control characters,
// trailing dots and spaces, CON and friends), no bidirectional controls that
// would disguise an extension, and unique even on case-insensitive
// filesystems, a file never sharing its path with a directory.

const (
	maxSegment  = 200 // bytes; filesystems allow 255
	maxSegments = 16
)

// safeSegment makes one path segment safe; it returns "" for a segment that
// is nothing but dots and spaces ("", ".", ".."), which is dropped.
func safeSegment(s string) string {
	s = strings.ToValidUTF8(s, "_")
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0),
			r == 0x2028 || r == 0x2029 || r == 0xfeff || r == 0x200e || r == 0x200f,
			r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069,
			strings.ContainsRune(`<>:"|?*/\`, r):
			b.WriteByte('_')
		default:
			b.WriteRune(r)
		}
	}
	// Windows drops trailing dots and spaces, which would merge names.
	s = strings.TrimRight(b.String(), ". ")
	if s == "" {
		return ""
	}
	if reservedName(s) {
		s = "_" + s
	}
	return truncate(s, maxSegment)
}

// reservedName reports a name Windows reserves for a device, with or
// without an extension: CON, PRN, AUX, NUL, COM0-9, LPT0-9 (and the
// superscript-digit forms).
func reservedName(s string) bool {
	base, _, _ := strings.Cut(s, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(base) >= 4 && (strings.HasPrefix(base, "COM") || strings.HasPrefix(base, "LPT")) {
		switch base[3:] {
		case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³":
			return true
		}
	}
	return false
}

// truncate shortens s to at most n bytes on a rune boundary, keeping a
// short extension.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	ext := ""
	if i := strings.LastIndexByte(s, '.'); i > 0 && len(s)-i <= 16 && len(s)-i < n {
		ext = s[i:]
	}
	head := s[:n-len(ext)]
	for !utf8.ValidString(head) {
		head = head[:len(head)-1]
	}
	return head + ext
}

// safePath splits a connector's file name into safe segments; backslashes
// count as separators, and "", "." and ".." segments are dropped.
func safePath(name string) []string {
	name = strings.ReplaceAll(name, `\`, "/")
	var segs []string
	for _, seg := range strings.Split(name, "/") {
		if seg = safeSegment(seg); seg != "" {
			segs = append(segs, seg)
		}
	}
	if len(segs) == 0 {
		return []string{"file"}
	}
	if len(segs) > maxSegments {
		tail := truncate(strings.Join(segs[maxSegments-1:], "_"), maxSegment)
		segs = append(segs[:maxSegments-1], tail)
	}
	return segs
}

// namer hands out unique paths under a root directory. Paths are compared
// case-insensitively (Windows and macOS extract "A.png" and "a.png" to one
// file), and a path is never both a file and a directory.
type namer struct {
	root  string
	files map[string]bool // lower-cased paths of files
	dirs  map[string]bool // lower-cased paths of directories
}

func newNamer(root string) *namer {
	return &namer{root: root, files: map[string]bool{}, dirs: map[string]bool{}}
}

// add returns a unique path for the safe segments segs (from safePath):
// root/segs..., with "-2", "-3", ... before the extension of a name, or at
// the end of a directory's, that is already taken.
func (n *namer) add(segs []string) string {
	dir := n.root
	for _, seg := range segs[:len(segs)-1] {
		cand := seg
		for k := 2; n.files[strings.ToLower(dir+"/"+cand)]; k++ {
			cand = truncate(seg, maxSegment-8) + "-" + strconv.Itoa(k)
		}
		dir += "/" + cand
		n.dirs[strings.ToLower(dir)] = true
	}
	base := segs[len(segs)-1]
	cand := base
	for k := 2; ; k++ {
		key := strings.ToLower(dir + "/" + cand)
		if !n.files[key] && !n.dirs[key] {
			n.files[key] = true
			return dir + "/" + cand
		}
		cand = withSuffix(base, k)
	}
}

// withSuffix inserts -k before name's extension: photo.png -> photo-2.png.
func withSuffix(name string, k int) string {
	stem, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i > 0 && len(name)-i <= 16 {
		stem, ext = name[:i], name[i:]
	}
	suffix := "-" + strconv.Itoa(k)
	return truncate(stem, maxSegment-len(ext)-len(suffix)) + suffix + ext
}
