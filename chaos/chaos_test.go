package chaos

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/reconhq/recon"
)

func TestGenerateIsSeeded(t *testing.T) {
	a, b := Generate(42, "000000001", 10, 500), Generate(42, "000000001", 10, 500)
	if len(a.Sightings) != len(b.Sightings) || a.BankNet.String() != b.BankNet.String() {
		t.Fatalf("same seed, different workloads")
	}
	if len(a.IDs()) != 500 || len(a.Sightings) <= 500 {
		t.Fatalf("%d identities, %d sightings", len(a.IDs()), len(a.Sightings))
	}
	sum := a.BankNet.Sub(a.BankNet)
	for _, t := range a.Distinct {
		sum = sum.Add(t.Amount)
	}
	if !sum.Equal(a.BankNet) {
		t.Fatalf("bank net %s, distinct sum %s", a.BankNet, sum)
	}
}

func TestSumMetric(t *testing.T) {
	b := []byte("# HELP x\nrecon_a_total{s=\"1\"} 2\nrecon_a_total{s=\"2\"} 3\nrecon_ab 7\nrecon_a 1\n")
	if got := sumMetric(b, "recon_a_total"); got != 5 {
		t.Fatalf("got %v", got)
	}
}

func TestTableMarksFailures(t *testing.T) {
	rows := []Row{{Num: "1", Name: "baseline", Result: "PASS", Evidence: "e"}, {Num: "2", Name: "x", Result: "FAIL: safety violated", Detail: []string{"d"}}}
	var buf bytes.Buffer
	Table(&buf, rows)
	if !bytes.Contains(buf.Bytes(), []byte("FAIL")) || !AnyFailed(rows) || AnyFailed(rows[:1]) {
		t.Fatalf("table:\n%s", buf.String())
	}
}

// TestIntegrationChaosCI runs the CI tier on Kafka and ClickHouse of its
// own (it kills and pauses them), whatever RECON_KAFKA_BROKERS says. It
// needs the tools deploy/local needs (java, ClickHouse installed).
func TestIntegrationChaosCI(t *testing.T) {
	if os.Getenv("RECON_REQUIRE_SERVICES") != "1" && os.Getenv("RECON_CHAOS") != "1" {
		t.Skip("chaos CI tier: set RECON_REQUIRE_SERVICES=1 (make test-integration) or RECON_CHAOS=1")
	}
	repo, _ := filepath.Abs("..")
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	start := time.Now()
	seed := uint64(time.Now().UnixNano())
	rows, err := Run(ctx, Config{Repo: repo, Tier: Tiers["ci"], Seed: seed, Out: testWriter{t}, LogDir: t.TempDir()})
	var buf bytes.Buffer
	Table(&buf, rows)
	t.Logf("seed %d, %s\n%s", seed, time.Since(start).Round(time.Second), buf.String())
	if err != nil {
		t.Fatal(err)
	}
	if AnyFailed(rows) {
		t.Fatal("a scenario failed")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// The workload's IBANs are ones ingest accepts.
func TestGeneratedIBANsAreValid(t *testing.T) {
	w := Generate(7, "000000002", 10, 500)
	if err := recon.ValidIBAN(w.Acct); err != nil {
		t.Fatalf("account %s: %v", w.Acct, err)
	}
	for _, l := range w.Loans {
		if err := recon.ValidIBAN(l.VirtualIBAN); err != nil {
			t.Errorf("loan %s: %s: %v", l.LoanID, l.VirtualIBAN, err)
		}
	}
	for _, s := range w.Sightings {
		if v := s.T.VirtualIBAN; v != "" && recon.ValidIBAN(v) != nil {
			t.Errorf("sighting: virtual IBAN %s: %v", v, recon.ValidIBAN(v))
		}
	}
}
