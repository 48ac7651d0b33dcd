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
	"net"
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

// Of is the client's address given the connection's peer and the
// X-Forwarded-For header(s) (joined with commas; nil when absent). Without
// a trusted peer, the header is ignored. It allocates nothing unless the
// peer is a trusted proxy that forwarded an address: the rate limiter asks
// it for every request. A peer that is not an IP address is the
// unspecified IPv4 address.
func (r *Resolver) Of(peer net.IP, forwardedFor []byte) netip.Addr {
	p, ok := netip.AddrFromSlice(peer)
	if !ok {
		return netip.IPv4Unspecified()
	}
	client := p.Unmap()
	if !r.Trusted(client) || len(forwardedFor) == 0 {
		return client
	}
	return r.forwarded(client, string(forwardedFor))
}

// forwarded walks X-Forwarded-For from the right, starting at a trusted
// peer: the client is the first address that is not a trusted proxy.
func (r *Resolver) forwarded(client netip.Addr, forwardedFor string) netip.Addr {
	parts := strings.Split(forwardedFor, ",")
	for i := len(parts) - 1; i >= 0; i-- {
		s := strings.TrimSpace(parts[i])
		a, err := netip.ParseAddr(s)
		if err != nil {
			// An entry may carry a port ("1.2.3.4:5678", "[::1]:80").
			ap, perr := netip.ParseAddrPort(s)
			if perr != nil {
				// Garbage from an untrusted hop: the last address we
				// could believe is the client.
				return client
			}
			a = ap.Addr()
		}
		client = a.Unmap()
		if !r.Trusted(client) {
			return client
		}
	}
	return client
}
