package chaos

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestReady is the regression test of a NO-FAULT by chance: a kill timed
// only by the clock landed on a matcher still restoring. ready must wait
// for /healthz and for transactions committed past since, and say which
// of the two never came.
func TestReady(t *testing.T) {
	tests := []struct {
		name      string
		healthyAt int     // /healthz answers 200 from this request on (-1: never)
		records   float64 // recon_matcher_records_total once healthy
		since     float64
		want      string // "" ready, else a substring of why not
	}{
		{"restored and committing", 3, 40, 0, ""},
		{"committing past since", 0, 40, 39, ""},
		{"restoring for ever", -1, 0, 0, "not ready (/healthz)"},
		{"ready, nothing committed", 0, 0, 0, "committed no transaction"},
		{"ready, nothing committed since", 0, 40, 40, "committed no transaction"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/healthz":
					if n := int(calls.Add(1)); tt.healthyAt < 0 || n <= tt.healthyAt {
						http.Error(w, "matcher: post stage joining its group", http.StatusServiceUnavailable)
						return
					}
					fmt.Fprintln(w, "ok")
				case "/metrics":
					fmt.Fprintf(w, "recon_matcher_records_total{stage=\"route\"} %v\n", tt.records)
				}
			}))
			defer srv.Close()
			p := &Proc{Name: "match-m1", Base: srv.URL, done: make(chan struct{})}
			_, why, err := ready(p, tt.since, 500*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if (tt.want == "") != (why == "") || !strings.Contains(why, tt.want) {
				t.Fatalf("why %q, want %q", why, tt.want)
			}
		})
	}
}

func TestReadyFailsOnACrash(t *testing.T) {
	p := &Proc{Name: "match-m1", Base: "http://127.0.0.1:1", Log: "/nonexistent", done: make(chan struct{})}
	close(p.done) // exited, and not by the harness
	if _, _, err := ready(p, 0, time.Second); err == nil {
		t.Fatal("a matcher that exited by itself is not an error")
	}
}
