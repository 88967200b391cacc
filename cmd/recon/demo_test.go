package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// summaryWriter collects what the demo prints and closes done when the
// summary's last line is in.
type summaryWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	done chan struct{}
}

func (w *summaryWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, _ := w.buf.Write(p)
	if bytes.Contains(w.buf.Bytes(), []byte("Ctrl-C stops recon.")) && w.done != nil {
		close(w.done)
		w.done = nil
	}
	return n, nil
}

func (w *summaryWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestRunDemo runs `recon run --demo` on the embedded broker (a free port, a
// temporary data directory) and checks what it prints — each loan's
// payments, the one suspense item, the bank balance — and, from the metrics,
// that the webhook event repeating a camt entry was recognised as a
// duplicate and posted nothing.
func TestRunDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole pipeline")
	}
	for _, k := range []string{"RECON_KAFKA_BROKERS", "RECON_CLICKHOUSE_ADDR", "RECON_ALERTS_CONFIG", "RECON_API_TOKENS", "RECON_API_TOKENS_FILE",
		"RECON_WEBHOOK_BEARER_TOKENS", "RECON_WEBHOOK_SECRETS", "RECON_OWN_ACCOUNTS", "RECON_PARTITIONS"} {
		t.Setenv(k, "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := &summaryWriter{done: make(chan struct{})}
	summary := out.done
	args := []string{"--demo", "--kafka-port", strconv.Itoa(freePort(t)), "--http", "127.0.0.1:0", "--data-dir", t.TempDir()}
	code := make(chan int, 1)
	go func() { code <- serve(ctx, "run", args, allComponents, out) }()
	select {
	case <-summary:
	case c := <-code:
		t.Fatalf("recon run --demo exited with %d before its summary:\n%s", c, out)
	case <-ctx.Done():
		t.Fatalf("no demo summary within the time limit:\n%s", out)
	}
	printed := out.String()
	t.Log(printed)

	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`loan L-1001 +owed +2096\.25 +paid +1050\.00 +outstanding +1046\.25 +overpaid +0\.00 +repaying`),
		regexp.MustCompile(`loan L-1002 +owed +2612\.50 +paid +2000\.00 +outstanding +612\.50 +overpaid +0\.00 +repaying`),
		regexp.MustCompile(`loan L-1003 +owed +5000\.00 +paid +800\.00 +outstanding +4200\.00 +overpaid +0\.00 +repaying`),
		regexp.MustCompile(`(?m)^suspense: 1 item\(s\)$`),
		regexp.MustCompile(`(?m)^  \S+ 1320\.00 EUR: `),
		regexp.MustCompile(`bank account FR46 3000 1007 9400 0000 0000 106: 5155(\.00)? EUR booked by recon`),
	} {
		if !want.MatchString(printed) {
			t.Errorf("the demo's summary lacks %s", want)
		}
	}

	base := regexp.MustCompile(`curl (http://\S+)/v1/loans/`).FindStringSubmatch(printed)
	if base == nil {
		t.Fatal("the summary names no API address")
	}
	// Six bank records went in (four camt entries, two events): all six are
	// decided, and the one repeating camt entry N1 is a duplicate.
	var decisions map[string]float64
	for total := 0.0; total < 6; {
		decisions = matcherDecisions(t, base[1])
		total = 0
		for _, n := range decisions {
			total += n
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the matcher decided %v of the demo's 6 bank records", decisions)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if decisions["duplicate"] != 1 {
		t.Errorf("decisions %v: want exactly 1 duplicate", decisions)
	}

	cancel()
	if c := <-code; c != 0 {
		t.Errorf("recon run --demo exited with %d after its context ended", c)
	}
}

// matcherDecisions reads recon_matcher_decisions_total by outcome from
// the text exposition format.
func matcherDecisions(t *testing.T, base string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line := regexp.MustCompile(`^recon_matcher_decisions_total\{outcome="([^"]+)"\} (\S+)$`)
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := line.FindStringSubmatch(sc.Text()); m != nil {
			n, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("metrics: %q: %v", sc.Text(), err)
			}
			out[m[1]] = n
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
