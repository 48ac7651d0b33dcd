package clientip

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

var cases = []struct {
	name, peer, xff, want string
	trusted               []string
}{
	{"no proxies: the peer", "203.0.113.9", "198.51.100.1", "203.0.113.9", nil},
	{"untrusted peer's header ignored", "203.0.113.9", "198.51.100.1", "203.0.113.9", []string{"10.0.0.0/8"}},
	{"one trusted proxy", "10.0.0.2", "198.51.100.1", "198.51.100.1", []string{"10.0.0.0/8"}},
	{"client cannot choose: the right-most untrusted wins", "10.0.0.2", "1.1.1.1, 198.51.100.1", "198.51.100.1", []string{"10.0.0.0/8"}},
	{"two trusted hops", "10.0.0.2", "198.51.100.1, 10.0.0.7", "198.51.100.1", []string{"10.0.0.0/8"}},
	{"all trusted: the left-most", "10.0.0.2", "10.0.0.5, 10.0.0.7", "10.0.0.5", []string{"10.0.0.0/8"}},
	{"ports stripped", "10.0.0.2", "198.51.100.1:4444", "198.51.100.1", []string{"10.0.0.2"}},
	{"ipv6 with port", "10.0.0.2", "[2001:db8::1]:443", "2001:db8::1", []string{"10.0.0.2"}},
	{"garbage stops the walk", "10.0.0.2", "198.51.100.1, not-an-ip", "10.0.0.2", []string{"10.0.0.0/8"}},
	{"mapped v4 peer", "::ffff:10.0.0.2", "198.51.100.1", "198.51.100.1", []string{"10.0.0.0/8"}},
	{"empty header", "10.0.0.2", "", "10.0.0.2", []string{"10.0.0.0/8"}},
}

// TestOf: the client is the right-most address not a trusted proxy; a
// peer that is no address is the unspecified one; an untrusted peer costs
// no allocation.
func TestOf(t *testing.T) {
	for _, c := range cases {
		r, err := New(c.trusted)
		if err != nil {
			t.Fatal(err)
		}
		var xff []byte
		if c.xff != "" {
			xff = []byte(c.xff)
		}
		if got := r.Of(net.ParseIP(c.peer), xff); got.String() != c.want {
			t.Errorf("%s: Of(%q, %q) = %s, want %s", c.name, c.peer, c.xff, got, c.want)
		}
	}
	if got := (*Resolver)(nil).Of(net.IP{1, 2, 3}, nil); got != netip.IPv4Unspecified() {
		t.Errorf("Of(3 bytes) = %s", got)
	}
	if n := testing.AllocsPerRun(100, func() { (*Resolver)(nil).Of(net.ParseIP("203.0.113.9"), []byte("198.51.100.1")) }); n > 1 {
		// net.ParseIP's own result is the one allocation allowed.
		t.Errorf("Of allocates %.0f times for an untrusted peer", n)
	}
}

func TestNewRefusesGarbage(t *testing.T) {
	if _, err := New([]string{"10.0.0.0/33"}); err == nil {
		t.Fatal("accepted a bad CIDR")
	}
	if _, err := New([]string{"proxy.internal"}); err == nil {
		t.Fatal("accepted a host name")
	}
}

func FuzzOf(f *testing.F) {
	for _, c := range cases {
		f.Add(c.peer, c.xff)
	}
	r, _ := New([]string{"10.0.0.0/8", "2001:db8::/32"})
	f.Fuzz(func(t *testing.T, peer, xff string) {
		ip := net.ParseIP(peer)
		if ip == nil {
			return
		}
		a := r.Of(ip, []byte(xff))
		if !a.IsValid() || a.Is4In6() {
			t.Fatalf("Of(%q, %q) = %s: not a plain address", peer, xff, a)
		}
		// The answer is the peer or an address from the header.
		p, _ := netip.AddrFromSlice(ip)
		if a != p.Unmap() {
			inHeader := false
			for _, part := range strings.Split(xff, ",") {
				s := strings.TrimSpace(part)
				if ap, err := netip.ParseAddrPort(s); err == nil {
					s = ap.Addr().String()
				}
				if x, err := netip.ParseAddr(s); err == nil && x.Unmap() == a {
					inHeader = true
				}
			}
			if !inHeader {
				t.Fatalf("Of(%q, %q) = %s: neither the peer nor in the header", peer, xff, a)
			}
		}
	})
}
