package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/reconhq/recon/bench"
)

// benchCmd runs `recon bench`: the seeded workload through the baseline
// relay and the pipeline on real Kafka and ClickHouse, ending with one JSON
// line. `recon bench component NAME --spec JSON` is how it starts each
// component as its own process (not for people).
func benchCmd(ctx context.Context, args []string) int {
	if len(args) > 0 && args[0] == "component" {
		return benchComponent(ctx, args[1:])
	}
	fs := flag.NewFlagSet("recon bench", flag.ContinueOnError)
	var defaults envDefaults
	brokers := fs.String("brokers", env("RECON_KAFKA_BROKERS", "127.0.0.1:19092"), "Kafka brokers (default: deploy/local's)")
	ch := fs.String("clickhouse", env("RECON_CLICKHOUSE_ADDR", "127.0.0.1:19000"), "ClickHouse native address (default: deploy/local's); the run writes to its own database recon_bench_<run>")
	loans := fs.Int("loans", 100_000, "loans, each with a virtual IBAN, a mandate and a 12-month schedule")
	events := fs.Int("events", 200_000, "bank transactions")
	rate := fs.Int("rate", 0, "events per second; 0 = as fast as possible (throughput); e.g. 2000 for the latency target")
	seed := fs.Uint64("seed", 1, "workload seed")
	partitions := fs.Int("partitions", defaults.int("RECON_PARTITIONS", 3), "partitions of recon's topics (must match existing topics)")
	maxPoll := fs.Int("max-poll-records", 0, "records per matcher/relay transaction; 0 = the matcher's default")
	work := fs.String("work-dir", filepath.Join(os.TempDir(), "recon-bench"), "where component logs and profiles go")
	profile := fs.Bool("profile", false, "write a CPU profile of the matcher to <work-dir>/matcher-<run>.pprof")
	noBaseline := fs.Bool("no-baseline", false, "skip the baseline relay (ratio is then 0)")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up after this long (--state: 2h)")
	state := fs.Bool("state", false, "grow history and measure restart and memory instead of throughput: loans (default 1,000,000) and events (default 2,100,000, ≥ 2,000,000 journal entries; e.g. 10000000) in two halves, then the matcher restarted with its data dir, with its stores deleted, and a second instance joining")
	restartSignal := fs.String("restart-signal", bench.SignalKill, "--state: how the matcher ends before the restart with its data dir: kill (SIGKILL, a crash) or term (SIGTERM, a deploy)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := defaults.err(); err != nil {
		return fail("%v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fail("bench: %v", err)
	}
	o := bench.Options{Brokers: strings.Split(*brokers, ","), ClickHouse: *ch, Loans: *loans, Events: *events, Rate: *rate,
		Seed: *seed, Partitions: int32(*partitions), Exe: exe, WorkDir: *work, MaxPollRecords: *maxPoll, Timeout: *timeout,
		NoBaseline: *noBaseline, Progress: os.Stderr}
	if *state {
		return benchState(ctx, o, set, *restartSignal)
	}
	if *profile {
		o.MatcherProfile = filepath.Join(*work, "matcher.pprof")
	}
	rep, err := bench.Run(ctx, o)
	if err != nil {
		return fail("bench: %v (logs in %s)", err, *work)
	}
	b, _ := json.Marshal(rep)
	fmt.Println(string(b))
	if o.MatcherProfile != "" {
		fmt.Fprintf(os.Stderr, "bench: matcher CPU profile: go tool pprof -top %s\n", o.MatcherProfile)
	}
	return 0
}

// benchState runs `recon bench --state`: the sizes and timeout not set
// on the command line are the state run's.
func benchState(ctx context.Context, o bench.Options, set map[string]bool, signal string) int {
	if !set["loans"] {
		o.Loans = 1_000_000
	}
	if !set["events"] {
		o.Events = 2_100_000 // about 2 % are duplicates, which post nothing
	}
	if !set["timeout"] {
		o.Timeout = 2 * time.Hour
	}
	rep, err := bench.RunState(ctx, bench.StateOptions{Options: o, RestartSignal: signal})
	if err != nil {
		return fail("bench --state: %v (logs in %s)", err, o.WorkDir)
	}
	b, _ := json.Marshal(rep)
	fmt.Println(string(b))
	return 0
}

func benchComponent(ctx context.Context, args []string) int {
	if len(args) == 0 {
		return fail("usage: recon bench component NAME --spec JSON")
	}
	name := args[0]
	fs := flag.NewFlagSet("recon bench component", flag.ContinueOnError)
	specJSON := fs.String("spec", "", "the component's bench.ChildSpec as JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	var spec bench.ChildSpec
	if err := json.Unmarshal([]byte(*specJSON), &spec); err != nil {
		return fail("bench component %s: --spec: %v", name, err)
	}
	if err := bench.RunChild(ctx, name, spec, os.Stdout); err != nil {
		return fail("bench component %s: %v", name, err)
	}
	return 0
}
