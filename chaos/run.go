package chaos

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Tier scales the scenarios: the same code, outages in seconds (CI) or
// minutes (long).
type Tier struct {
	Name   string
	Loans  int           // loans per workload
	Txns   int           // distinct transactions per workload scenario
	Outage time.Duration // length of a broker pause, a ClickHouse outage
	Kills  int           // minimum matcher SIGKILLs
	Settle time.Duration // bound on waiting for convergence
}

// Tiers by name.
var Tiers = map[string]Tier{
	"ci":   {Name: "ci", Loans: 200, Txns: 12000, Outage: 5 * time.Second, Kills: 6, Settle: 4 * time.Minute},
	"long": {Name: "long", Loans: 5000, Txns: 100000, Outage: 2 * time.Minute, Kills: 60, Settle: 30 * time.Minute},
}

// Row is one scenario's line in the table.
type Row struct {
	Num      string
	Name     string
	Evidence string        // proof that the fault happened
	Result   string        // PASS, FAIL (safety violation), NO-FAULT (fault not proven), NOT DONE
	Recovery time.Duration // from the end of the fault to convergence; 0 when not applicable
	Detail   []string      // violations
	Events   int           // inputs sent
}

// Failed says whether the row is a safety violation or an unproven fault.
func (r Row) Failed() bool { return r.Result != "PASS" && !strings.HasPrefix(r.Result, "NOT DONE") }

// Config of a run.
type Config struct {
	Repo   string // checkout root
	Tier   Tier
	Seed   uint64
	Only   map[string]bool // scenario numbers to run; empty: all
	Out    io.Writer       // progress
	LogDir string          // process logs; default a temp dir
}

// Run starts the services and the pipeline, runs the scenarios in order and
// returns their rows. The error is for the harness itself (services that
// would not start), not for safety violations, which are rows.
func Run(ctx context.Context, cfg Config) ([]Row, error) {
	if cfg.Out == nil {
		cfg.Out = os.Stderr
	}
	logf := func(format string, args ...any) {
		fmt.Fprintf(cfg.Out, "%s chaos: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	if cfg.LogDir == "" {
		d, err := os.MkdirTemp("", "recon-chaos-logs")
		if err != nil {
			return nil, err
		}
		cfg.LogDir = d
	}
	svc, err := NewServices(cfg.Repo, logf)
	if err != nil {
		return nil, err
	}
	defer svc.Close()
	if err := svc.StartKafka(); err != nil {
		return nil, err
	}
	if err := svc.StartClickHouse(); err != nil {
		return nil, err
	}
	bin, err := Binary(cfg.Repo, cfg.LogDir)
	if err != nil {
		return nil, err
	}
	e := &Env{Svc: svc, Bin: bin, LogDir: cfg.LogDir, Tier: cfg.Tier, Seed: cfg.Seed, Logf: logf, ctx: ctx}
	defer e.stopAll()
	if err := e.startPipeline(); err != nil {
		return nil, err
	}
	logf("services in %s (kafka %s, clickhouse %s), logs in %s, seed %d, tier %s",
		svc.Dir, svc.Brokers(), svc.ClickHouse(), cfg.LogDir, cfg.Seed, cfg.Tier.Name)
	var rows []Row
	for _, s := range Scenarios {
		if len(cfg.Only) > 0 && !cfg.Only[s.Num] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		logf("scenario %s: %s", s.Num, s.Name)
		start := time.Now()
		row := s.Run(e)
		row.Num, row.Name = s.Num, s.Name
		if err := e.exited(); err != nil && !strings.HasPrefix(row.Result, "FAIL") {
			// a component that ended by itself during a fault is a failure,
			// even if the pipeline healed after it
			row.Result = "FAIL: " + err.Error()
		}
		logf("scenario %s: %s in %s; %s", s.Num, row.Result, time.Since(start).Round(time.Second), row.Evidence)
		for _, d := range row.Detail {
			logf("  %s", d)
		}
		rows = append(rows, row)
		if err := e.healPipeline(); err != nil {
			return rows, err
		}
	}
	return rows, nil
}

// Table prints the rows.
func Table(w io.Writer, rows []Row) {
	fmt.Fprintf(w, "%-3s %-34s %-8s %-9s %s\n", "#", "scenario", "result", "recovery", "fault evidence")
	for _, r := range rows {
		rec := "-"
		if r.Recovery > 0 {
			rec = r.Recovery.Round(100 * time.Millisecond).String()
		}
		res := r.Result
		if i := strings.IndexByte(res, ':'); i > 0 {
			res = res[:i]
		}
		fmt.Fprintf(w, "%-3s %-34s %-8s %-9s %s\n", r.Num, trunc(r.Name, 34), res, rec, r.Evidence)
		if r.Result != res {
			fmt.Fprintf(w, "    %s\n", r.Result)
		}
		for _, d := range r.Detail {
			fmt.Fprintf(w, "    - %s\n", d)
		}
	}
	n := 0
	for _, r := range rows {
		n += r.Events
	}
	fmt.Fprintf(w, "%d scenarios, %d inputs sent\n", len(rows), n)
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// AnyFailed says whether some row is a safety violation or unproven fault.
func AnyFailed(rows []Row) bool {
	for _, r := range rows {
		if r.Failed() {
			return true
		}
	}
	return false
}
