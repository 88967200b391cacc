package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// webhookSecret is the chaos run's bank webhook secret (whsec_ + base64).
const webhookSecret = "whsec_Y2hhb3MtY2hhb3MtY2hhb3MtY2hhb3MtY2hhb3M="

// Env is what scenarios act on: the services, the binary and the running
// pipeline (one ingest, one matcher, one sink).
type Env struct {
	Svc    *Services
	Bin    string
	LogDir string
	Tier   Tier
	Seed   uint64
	Logf   func(string, ...any)
	ctx    context.Context

	mu      sync.Mutex
	Ingest  *Proc
	Matcher *Proc
	Sink    *Proc
	runs    int
}

// exited names the components that ended by themselves, with their last
// log lines: a fault of Kafka or ClickHouse must not end any of them.
func (e *Env) exited() error {
	var out []string
	for _, p := range []struct {
		name string
		p    *Proc
	}{{"ingest", e.Ingest}, {"matcher", e.Matcher}, {"sink", e.Sink}} {
		if p.p != nil && p.p.ExitedByItself() {
			out = append(out, p.name+" exited by itself:\n"+p.p.Tail(10))
		}
	}
	if len(out) == 0 {
		return nil
	}
	return errors.New(strings.Join(out, "\n"))
}

func (e *Env) ingestBase() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.Ingest.Base
}

// Checker over this env.
func (e *Env) Checker() *Checker {
	return &Checker{Brokers: e.Svc.Brokers(), CHHTTP: e.Svc.CHHTTP(), API: e.ingestBase}
}

// NewRun is a fresh run id (digits) and workload of n transactions.
func (e *Env) NewRun(n int) *Workload {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.runs++
	run := fmt.Sprintf("%06d%03d", e.Seed%1_000_000, e.runs)
	return Generate(e.Seed+uint64(e.runs), run, e.Tier.Loans, n)
}

func (e *Env) start(name string, args ...string) (*Proc, error) {
	return e.startWith(nil, name, args...)
}

// startWith is start with more environment.
func (e *Env) startWith(more []string, name string, args ...string) (*Proc, error) {
	env := append([]string{"RECON_WEBHOOK_SECRETS=" + webhookSecret, "RECON_WEBHOOK_ACCOUNT_IBAN=FR7600000000000000000000000"}, more...)
	p, err := Start(e.Bin, e.LogDir, name, env, append([]string{args[0], "--brokers", e.Svc.Brokers()}, args[1:]...)...)
	if err != nil {
		return nil, err
	}
	return p, p.Healthy(3 * time.Minute)
}

// StartIngest starts (or replaces) the ingest process; env is added to
// its environment (RECON_INGEST_FILE_TXN_RECORDS=100).
func (e *Env) StartIngest(env ...string) error {
	dir, _ := os.MkdirTemp(e.LogDir, "ingest-data")
	p, err := e.startWith(env, "ingest", "ingest", "--instance", "chaos-ingest", "--data-dir", dir)
	e.mu.Lock()
	e.Ingest = p
	e.mu.Unlock()
	return err
}

// StartMatcher starts a matcher with a stable instance name, its local
// state under the run's matcher data dir.
func (e *Env) StartMatcher(instance string) (*Proc, error) {
	return e.start("match-"+instance, "match", "--instance", instance, "--data-dir", e.matcherData())
}

// matcherData is the data dir every matcher of the run uses (each keeps
// its stores under matcher/<instance>).
func (e *Env) matcherData() string { return filepath.Join(e.LogDir, "matcher-data") }

// matcherStore is where an instance keeps its local state.
func (e *Env) matcherStore(instance string) string {
	return filepath.Join(e.matcherData(), "matcher", instance)
}

// StartSink starts (or replaces) the ClickHouse sink.
func (e *Env) StartSink() error {
	p, err := e.start("sink", "sink", "--instance", "chaos-sink", "--clickhouse", e.Svc.CHProxy.Addr)
	e.Sink = p
	return err
}

func (e *Env) startPipeline() error {
	if err := e.StartIngest(); err != nil {
		return err
	}
	m, err := e.StartMatcher("m1")
	e.Matcher = m
	if err != nil {
		return err
	}
	return e.StartSink()
}

// healPipeline restarts whatever a scenario left dead.
func (e *Env) healPipeline() error {
	if e.Ingest == nil || e.Ingest.Exited() {
		if err := e.StartIngest(); err != nil {
			return err
		}
	}
	if e.Matcher == nil || e.Matcher.Exited() {
		m, err := e.StartMatcher("m1")
		e.Matcher = m
		if err != nil {
			return err
		}
	}
	if e.Sink == nil || e.Sink.Exited() {
		return e.StartSink()
	}
	return nil
}

func (e *Env) stopAll() {
	for _, p := range []*Proc{e.Matcher, e.Sink, e.Ingest} {
		if p != nil {
			p.Stop()
		}
	}
}

// restartMatcher SIGKILLs the matcher and starts it again at once.
func (e *Env) restartMatcher() error {
	e.Matcher.Signal(syscall.SIGKILL)
	m, err := Start(e.Bin, e.LogDir, "match-m1", nil, "match", "--brokers", e.Svc.Brokers(), "--instance", "m1", "--data-dir", e.matcherData())
	e.Matcher = m
	return err
}
