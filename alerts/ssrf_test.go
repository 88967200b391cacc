package alerts

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestParseLegacyIPv4(t *testing.T) {
	for in, want := range map[string]string{
		"2130706433": "127.0.0.1", "0x7f000001": "127.0.0.1", "0177.0.0.1": "127.0.0.1",
		"127.1": "127.0.0.1", "0xA9FEA9FE": "169.254.169.254", "10.0.0.1": "10.0.0.1", "0": "0.0.0.0",
	} {
		got, ok := parseLegacyIPv4(in)
		if !ok || got.String() != want {
			t.Errorf("parseLegacyIPv4(%q) = %v %v, want %s", in, got, ok, want)
		}
	}
	for _, in := range []string{"example.com", "1.2.3.4.5", "256.1.1.1", "0x", "4294967296", "1.2.3.256", ""} {
		if got, ok := parseLegacyIPv4(in); ok {
			t.Errorf("parseLegacyIPv4(%q) = %v, want no address", in, got)
		}
	}
}

func TestCheckIP(t *testing.T) {
	for _, s := range []string{"127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
		"fe80::1", "fc00::1", "fd12::1", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "100.64.0.1", "100.127.255.255",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "255.255.255.255"} {
		if err := checkIP(netip.MustParseAddr(s), false); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("checkIP(%s) = %v, want forbidden", s, err)
		}
	}
	for _, s := range []string{"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "100.128.0.1", "8.8.8.8"} {
		if err := checkIP(netip.MustParseAddr(s), false); err != nil {
			t.Errorf("checkIP(%s) = %v, want allowed", s, err)
		}
	}
	if err := checkIP(netip.MustParseAddr("::ffff:127.0.0.1"), true); err != nil {
		t.Errorf("mapped loopback with loopback allowed: %v", err)
	}
	if err := checkIP(netip.MustParseAddr("169.254.169.254"), true); err == nil {
		t.Error("allow_loopback must not open link-local")
	}
}

// TestSSRFDial sends real requests through the webhook client: refused at
// dial time whatever the notation, unless loopback is allowed.
func TestSSRFDial(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	tests := []struct {
		host          string
		okIfLoopback  bool // reachable (not forbidden) when loopback is allowed
		reachableHere bool // the test server answers on it
	}{
		{"127.0.0.1", true, true},
		{"[::1]", true, false},
		{"169.254.169.254", false, false},
		{"10.0.0.1", false, false},
		{"2130706433", true, true},
		{"0x7f000001", true, true},
		{"localhost", true, true},
		{"[::ffff:127.0.0.1]", true, true},
		{"[::ffff:169.254.169.254]", false, false},
		{"0.0.0.0", false, false},
	}
	for _, loopback := range []bool{false, true} {
		client := newClient(safeDialer(loopback))
		for _, tt := range tests {
			url := "http://" + tt.host + ":" + port + "/"
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
			resp, err := client.Do(req)
			cancel()
			if resp != nil {
				resp.Body.Close()
			}
			forbidden := errors.Is(err, ErrForbiddenAddress)
			switch {
			case !loopback || !tt.okIfLoopback:
				if !forbidden {
					t.Errorf("loopback=%v %s: err = %v, want forbidden at dial", loopback, url, err)
				}
			case forbidden:
				t.Errorf("loopback=%v %s: forbidden, want allowed: %v", loopback, url, err)
			case tt.reachableHere && err != nil:
				t.Errorf("loopback=%v %s: %v", loopback, url, err)
			}
		}
	}
}
