package alerts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenAddress is returned when a webhook would reach an address
// recon refuses to dial (loopback, private, link-local, ...): the check runs
// on the resolved IP at dial time, so DNS names pointing inward are caught.
var ErrForbiddenAddress = errors.New("forbidden address")

var forbiddenPrefixes = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network", incl. unspecified
		"10.0.0.0/8",      // RFC 1918
		"100.64.0.0/10",   // CGNAT
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, cloud metadata 169.254.169.254
		"172.16.0.0/12",   // RFC 1918
		"192.0.0.0/24",    // IETF protocol assignments
		"192.168.0.0/16",  // RFC 1918
		"198.18.0.0/15",   // benchmarking
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, broadcast
		"::/128",          // unspecified
		"::1/128",         // loopback
		"64:ff9b::/96",    // NAT64 (embeds an IPv4 address)
		"64:ff9b:1::/48",  // local-use NAT64
		"2002::/16",       // 6to4 (embeds an IPv4 address)
		"fc00::/7",        // unique local
		"fe80::/10",       // link-local
		"ff00::/8",        // multicast
		"2001:db8::/32",   // documentation
		"100::/64",        // discard
		"::ffff:0:0/96",   // IPv4-mapped, should have been unmapped
		"::ffff:0:0:0/96", // IPv4-translated
		"2001::/32",       // Teredo (embeds an IPv4 address)
		"2001:10::/28",    // ORCHID
		"fec0::/10",       // deprecated site-local
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// checkIP says why ip may not be dialled, or returns nil.
func checkIP(ip netip.Addr, allowLoopback bool) error {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if allowLoopback && ip.IsLoopback() {
		return nil
	}
	for _, p := range forbiddenPrefixes {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s is in %s", ErrForbiddenAddress, ip, p)
		}
	}
	return nil
}

// dialControl is the net.Dialer Control func: it sees the address actually
// being connected to, after DNS.
func dialControl(allowLoopback bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("%w: %q: %v", ErrForbiddenAddress, address, err)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("%w: %q is not an IP address", ErrForbiddenAddress, host)
		}
		return checkIP(ip, allowLoopback)
	}
}

// parseLegacyIPv4 reads the inet_aton notations browsers and libc accept
// ("2130706433", "0x7f000001", "0177.0.0.1", "127.1") so that a URL
// written that way is dialled (and checked) as the address it means, not
// handed to a resolver that may or may not interpret it.
func parseLegacyIPv4(host string) (netip.Addr, bool) {
	parts := strings.Split(host, ".")
	if len(parts) > 4 || host == "" {
		return netip.Addr{}, false
	}
	vals := make([]uint64, len(parts))
	for i, p := range parts {
		base := 10
		switch {
		case strings.HasPrefix(p, "0x") || strings.HasPrefix(p, "0X"):
			base, p = 16, p[2:]
		case len(p) > 1 && p[0] == '0':
			base, p = 8, p[1:]
		}
		if p == "" && base != 8 {
			return netip.Addr{}, false
		}
		if p == "" {
			p = "0"
		}
		v, err := strconv.ParseUint(p, base, 32)
		if err != nil {
			return netip.Addr{}, false
		}
		vals[i] = v
	}
	var n uint64
	last := len(vals) - 1
	for i, v := range vals[:last] {
		if v > 255 {
			return netip.Addr{}, false
		}
		n |= v << (8 * (3 - i))
	}
	if vals[last] >= 1<<(8*(4-last)) {
		return netip.Addr{}, false
	}
	n |= vals[last]
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// canonicalHost rewrites a numeric host in any notation to its IP text.
func canonicalHost(host string) string {
	if ip, ok := parseLegacyIPv4(host); ok {
		return ip.String()
	}
	return host
}

// checkURL validates an endpoint URL when the config is read: http(s), a
// host, no credentials, and no literal address that is refused anyway.
// Names are checked again, resolved, at dial time.
func checkURL(raw string, allowLoopback bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: scheme must be http or https", raw)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%q: no host", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q: credentials in URLs are not allowed", raw)
	}
	host := canonicalHost(u.Hostname())
	if ip, err := netip.ParseAddr(host); err == nil {
		if err := checkIP(ip, allowLoopback); err != nil {
			return nil, fmt.Errorf("%q: %w", raw, err)
		}
	}
	return u, nil
}

// safeDialer dials only addresses checkIP accepts, after rewriting legacy
// numeric notations.
func safeDialer(allowLoopback bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second, Control: dialControl(allowLoopback)}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		return d.DialContext(ctx, network, net.JoinHostPort(canonicalHost(host), port))
	}
}

// newClient is the webhook HTTP client: no proxy (a proxy would dial for
// us, unchecked), no redirects, checked dials.
func newClient(dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 0, // the per-attempt context bounds the whole exchange
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
