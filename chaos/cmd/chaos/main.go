// Command chaos runs recon's fault scenarios (docs/RELIABILITY.md) on Kafka
// and ClickHouse instances of its own and prints a table: scenario, fault
// evidence, result, recovery time. It exits 1 on any safety violation or
// unproven fault.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/reconhq/recon/chaos"
)

func main() {
	tier := flag.String("tier", "ci", "ci (seconds-long outages, ~100k events) or long (minutes-long outages)")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "generator seed (printed; pass it to replay)")
	only := flag.String("only", "", "comma-separated scenario numbers (default all)")
	repo := flag.String("repo", ".", "recon checkout (where deploy/local lives)")
	flag.Parse()
	t, ok := chaos.Tiers[*tier]
	if !ok {
		fmt.Fprintf(os.Stderr, "chaos: unknown tier %q\n", *tier)
		os.Exit(2)
	}
	cfg := chaos.Config{Repo: *repo, Tier: t, Seed: *seed, Only: map[string]bool{}}
	for _, n := range strings.Split(*only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			cfg.Only[n] = true
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	rows, err := chaos.Run(ctx, cfg)
	chaos.Table(os.Stdout, rows)
	fmt.Printf("tier %s, seed %d, %s\n", t.Name, *seed, time.Since(start).Round(time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	if chaos.AnyFailed(rows) {
		os.Exit(1)
	}
}
