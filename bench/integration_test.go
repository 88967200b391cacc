package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIntegrationBench runs a small workload through the baseline and the
// pipeline on the real services and checks the result is correct. It
// checks no speed: this is a benchmark, not a timed test.
func TestIntegrationBench(t *testing.T) {
	brokers, ch := os.Getenv("RECON_KAFKA_BROKERS"), os.Getenv("RECON_CLICKHOUSE_ADDR")
	if brokers == "" || ch == "" {
		if os.Getenv("RECON_REQUIRE_SERVICES") == "1" {
			t.Fatal("RECON_REQUIRE_SERVICES=1 but RECON_KAFKA_BROKERS or RECON_CLICKHOUSE_ADDR is unset")
		}
		t.Skip("integration test: set RECON_KAFKA_BROKERS and RECON_CLICKHOUSE_ADDR")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "recon")
	if out, err := exec.Command("go", "build", "-o", exe, "../cmd/recon").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rep, err := Run(context.Background(), Options{Brokers: strings.Split(brokers, ","), ClickHouse: ch, Loans: 300, Events: 2000,
		Seed: 5, Partitions: 3, Exe: exe, WorkDir: dir, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Correct {
		t.Fatalf("not correct: %v", rep.Problems)
	}
	if rep.EventsPerSec <= 0 || rep.BaselineEventsPerSec <= 0 || rep.Alerts != len(mustGen(t).Expect.LargeCredits) {
		t.Fatalf("report incomplete: %+v", rep)
	}
}

func mustGen(t *testing.T) *Workload {
	w, err := Generate(GenConfig{Seed: 5, Run: "X", Loans: 300, Events: 2000})
	if err != nil {
		t.Fatal(err)
	}
	return w
}
