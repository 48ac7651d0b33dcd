// Package clientip finds the address of the client behind the proxies a
// deployment trusts. Rate limits, code-send limits and the consent
// ledger's IP hash count this address, so it must be the client's, not the
// load balancer's — and a client must not be able to choose it.
//
// X-Forwarded-For lists addresses left to right as proxies append them, so
// only its right end is trustworthy: walking from the right, every address
// that is a trusted proxy is skipped and the first one that is not is the
// client. (Taking the left-most entry, as many frameworks do, lets a client
// claim any address by sending the header itself.)
package clientip

import (
	"fmt"
	"net/netip"
	"strings"
)

// Resolver knows which peers are trusted proxies.
type Resolver struct {
	trusted []netip.Prefix
}

// New parses trusted proxies given as IPs or CIDRs.
func New(trusted []string) (*Resolver, error) {
	r := &Resolver{}
	for _, t := range trusted {
		t = strings.TrimSpace(t)
		if t == "" {
			continue
		}
		p, err := netip.ParsePrefix(t)
		if err != nil {
			a, aerr := netip.ParseAddr(t)
			if aerr != nil {
				return nil, fmt.Errorf("clientip: %q is not an IP address or CIDR", t)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r, nil
}

// Trusted reports whether addr is a trusted proxy.
func (r *Resolver) Trusted(addr netip.Addr) bool {
	if r == nil {
		return false
	}
	addr = addr.Unmap()
	for _, p := range r.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// IP is the client's address given the connection's peer and the
// X-Forwarded-For header(s) (joined with commas). Without a trusted peer,
// the header is ignored.
func (r *Resolver) IP(peer string, forwardedFor string) string {
	p, err := netip.ParseAddr(peer)
	if err != nil {
		return peer
	}
	client := p.Unmap()
	if !r.Trusted(client) || forwardedFor == "" {
		return client.String()
	}
	parts := strings.Split(forwardedFor, ",")
	for i := len(parts) - 1; i >= 0; i-- {
		s := strings.TrimSpace(parts[i])
		// An entry may carry a port ("1.2.3.4:5678", "[::1]:80").
		if ap, err := netip.ParseAddrPort(s); err == nil {
			s = ap.Addr().String()
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			// Garbage from an untrusted hop: the last address we could
			// believe is the client.
			return client.String()
		}
		client = a.Unmap()
		if !r.Trusted(client) {
			return client.String()
		}
	}
	return client.String()
}
