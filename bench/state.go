package bench

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/schemas"
)

// Restart signals of a state run: how the matcher is ended before the
// restart with its data directory present.
const (
	SignalKill = "kill" // SIGKILL: a crash, the case the stores must survive
	SignalTerm = "term" // SIGTERM: a deploy
)

// StateOptions of a state run: Options (Rate, NoBaseline and
// MatcherProfile do not apply) and how the matcher is ended before its
// first restart.
type StateOptions struct {
	Options
	RestartSignal string // SignalKill (default) or SignalTerm
}

// StateReport is a state run's result, printed as one JSON line. RSS
// figures are MiB: "_rss_mib" is the process's peak (VmHWM), "after" and
// "half" figures its resident set (VmRSS) at that moment.
type StateReport struct {
	Run            string `json:"run"`
	Loans          int    `json:"loans"`
	Events         int    `json:"events"`
	JournalEntries int    `json:"journal_entries"` // the run's entries on the journal
	// MatcherLoans is the matcher's table: this run's loans and those
	// earlier runs left on the broker.
	MatcherLoans  int64  `json:"matcher_loans"`
	Seed          uint64 `json:"seed"`
	Partitions    int32  `json:"partitions"`
	RestartSignal string `json:"restart_signal"`
	// Process start to ready: with the data directory kept; with the
	// matcher's stores (DataDir/matcher) deleted; a second instance
	// joining until both hold the state of their partitions.
	RestartReadyMs         float64 `json:"restart_ready_ms"`
	RestartFromChangelogMs float64 `json:"restart_from_changelog_ms"`
	RebalanceReadyMs       float64 `json:"rebalance_ready_ms"`
	// StoresPresent: the matcher had written stores under its data
	// directory when it was restarted; StoreMiB their size on disk.
	StoresPresent           bool               `json:"stores_present"`
	StoreMiB                float64            `json:"store_mib"`
	MatcherRSSMiB           float64            `json:"matcher_rss_mib"`
	MatcherRSSFirstHalfMiB  float64            `json:"matcher_rss_first_half_mib"`
	MatcherRSSSecondHalfMiB float64            `json:"matcher_rss_second_half_mib"`
	RSSGrowthPct            float64            `json:"rss_growth_pct"`
	AlertsRSSMiB            float64            `json:"alerts_rss_mib"`
	AlertsRSSAfterMiB       float64            `json:"alerts_rss_after_mib"`
	SinkRSSMiB              float64            `json:"sink_rss_mib"`
	SinkRSSAfterMiB         float64            `json:"sink_rss_after_mib"`
	PeakRSSMiB              map[string]float64 `json:"peak_rss_mib"` // every process of the run, the bench's own too
	// ProbeMs is, after the restart, the restart from changelogs and the
	// rebalance, how long a one-cent probe took from produce to posted:
	// ready is not yet posting. RebalanceReadyMs includes the rebalance's.
	ProbeMs      map[string]float64 `json:"probe_ms"`
	EventsPerSec float64            `json:"events_per_sec"`
	Phases       []Phase            `json:"phases"`
	Correct      bool               `json:"correct"`
	Problems     []string           `json:"problems,omitempty"`
	DurationS    float64            `json:"duration_s"`
}

// Phase is one step of a state run and how long it took.
type Phase struct {
	Name string  `json:"name"`
	S    float64 `json:"s"`
}

// phases keeps the run's steps: begin ends the current one.
type phases struct {
	say   func(format string, args ...any)
	list  []Phase
	name  string
	began time.Time
}

func (ps *phases) begin(name string, now time.Time) {
	ps.end(now)
	ps.name, ps.began = name, now
	ps.say("%s ...", name)
}

func (ps *phases) end(now time.Time) {
	if ps.name == "" {
		return
	}
	s := math.Round(now.Sub(ps.began).Seconds()*10) / 10
	ps.list = append(ps.list, Phase{ps.name, s})
	ps.say("%s: done in %.1f s", ps.name, s)
	ps.name = ""
}

// seconds is how long the named phase took, 0 when it did not run.
func (ps *phases) seconds(name string) float64 {
	for _, p := range ps.list {
		if p.Name == name {
			return p.S
		}
	}
	return 0
}

// growthPct is the growth from a to b in percent, one decimal; 0 when a
// is unknown.
func growthPct(a, b float64) float64 {
	if a <= 0 {
		return 0
	}
	return math.Round((b-a)/a*1000) / 10
}

// transactions counts the distinct transactions among events: each event
// but a duplicate names a new one.
func transactions(events []Event) int {
	n := 0
	for _, e := range events {
		if e.Kind != KindDuplicate {
			n++
		}
	}
	return n
}

// rebalanced reports whether the matcher instances' held partitions
// (route, post) cover every partition of both stages, spread evenly: each
// instance holds between ⌊partitions/instances⌋ and ⌈partitions/instances⌉
// of each stage, as the group's balancer deals them out.
func rebalanced(partitions int, held ...[2]int) bool {
	n := len(held)
	if n == 0 {
		return false
	}
	least, most := partitions/n, (partitions+n-1)/n
	var sum [2]int
	for _, h := range held {
		for s := range h {
			if h[s] < least || h[s] > most {
				return false
			}
			sum[s] += h[s]
		}
	}
	return sum[0] == partitions && sum[1] == partitions
}

// rebalanceQuiet is how long the instances' partitions must stay where
// they are for a rebalance to count as done.
const rebalanceQuiet = 3 * time.Second

// steady tells when a condition has held for quiet without a break, and
// since when.
type steady struct {
	quiet time.Duration
	since time.Time // zero while the condition does not hold
}

func (s *steady) check(now time.Time, ok bool) bool {
	if !ok {
		s.since = time.Time{}
		return false
	}
	if s.since.IsZero() {
		s.since = now
	}
	return now.Sub(s.since) >= s.quiet
}

// dirMiB is the size of the files under dir in MiB (one decimal), and
// whether dir holds any.
func dirMiB(dir string) (float64, bool) {
	var size int64
	var files int
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			size += info.Size()
			files++
		}
		return nil
	})
	return math.Round(float64(size)/(1<<20)*10) / 10, files > 0
}

// matcherStores is where a matcher with data directory dataDir keeps its
// stores: what "stores deleted" deletes.
func matcherStores(dataDir string) string { return filepath.Join(dataDir, "matcher") }

// RunState grows history and measures what it costs: it publishes the
// loans (straight to the loans topic: setup, not the API's path), then the
// events in two halves through the bank-transactions topic, waiting until
// each half is posted and reading the matcher's memory after each; then it
// restarts the matcher with its data directory (after o.RestartSignal),
// restarts it again with its stores deleted, and starts a second instance
// beside it, timing each until ready; probes show the matcher posting
// after each step. Last it checks the journal and ClickHouse against the
// generator, so a movement posted twice or lost across the restarts makes
// the run incorrect.
func RunState(ctx context.Context, o StateOptions) (*StateReport, error) {
	began := time.Now()
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Hour
	}
	if o.RestartSignal == "" {
		o.RestartSignal = SignalKill
	}
	if o.RestartSignal != SignalKill && o.RestartSignal != SignalTerm {
		return nil, fmt.Errorf("bench: restart signal %q: want %s or %s", o.RestartSignal, SignalKill, SignalTerm)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	run := RunID(began)
	o.say("state run %s: %d loans, %d events, %d partitions, restart after %s", run, o.Loans, o.Events, o.Partitions, o.RestartSignal)
	ps := &phases{say: o.say}
	ps.begin("generate", time.Now())
	w, err := Generate(GenConfig{Seed: o.Seed, Run: run, Loans: o.Loans, Events: o.Events})
	if err != nil {
		return nil, err
	}
	rep := &StateReport{Run: run, Loans: o.Loans, Events: o.Events, Seed: o.Seed, Partitions: o.Partitions,
		RestartSignal: o.RestartSignal, PeakRSSMiB: map[string]float64{}, ProbeMs: map[string]float64{}}
	data := filepath.Join(o.WorkDir, "data-"+run) // the matcher instances' data directories
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(data)
	kc := bus.DefaultConfig()
	kc.Brokers, kc.Partitions, kc.ClientID = o.Brokers, o.Partitions, "recon-bench-"+run
	if err := kc.Validate(); err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kc.Opts(kgo.MaxBufferedRecords(100_000), kgo.ProducerBatchMaxBytes(1<<20))...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	if err := bus.EnsureTopics(ctx, cl, kc); err != nil {
		return nil, err
	}
	err = growAndRestart(ctx, o, w, cl, kc, data, ps, rep)
	ps.end(time.Now())
	if err != nil {
		return nil, err
	}
	rep.Phases = ps.list
	if s := ps.seconds("first half") + ps.seconds("second half"); s > 0 {
		rep.EventsPerSec = math.Round(float64(o.Events) / s)
	}
	rep.Correct = len(rep.Problems) == 0
	rep.DurationS = math.Round(time.Since(began).Seconds()*10) / 10
	rep.PeakRSSMiB["bench"], _ = PeakRSSMiB(os.Getpid())
	return rep, nil
}

// growAndRestart is RunState's pipeline, from starting the components to
// the final checks.
func growAndRestart(ctx context.Context, o StateOptions, w *Workload, cl *kgo.Client, kc bus.Config, data string, ps *phases, rep *StateReport) error {
	p := newProducer(cl, o.Partitions, schemas.TopicBankTransactions, w)
	st, err := newStack(ctx, o.Options, w, cl, p)
	if err != nil {
		return err
	}
	defer st.close()
	st.matcher.DataDir, st.matcher.CPUProfile = filepath.Join(data, "matcher-1"), ""
	ps.begin("start components", time.Now())
	children, err := st.startComponents(ctx, o.Options)
	defer func() {
		for _, c := range children {
			rep.PeakRSSMiB[c.name] = c.stop()
		}
	}()
	if err != nil {
		return err
	}
	matcher, sink, alerts := children[0], children[1], children[2]

	ps.begin("loans", time.Now())
	if err := publishLoans(ctx, o.Options, w, cl, matcher, matcher.loans.Load(), children); err != nil {
		return err
	}
	rep.MatcherLoans = matcher.loans.Load()

	probes := []recon.BankTransaction{probe(w, 0), probe(w, 1), probe(w, 2), probe(w, 3)}
	j := newJournal(w, p, probes...)
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	chDone, err := st.follow(fctx, kc, j)
	if err != nil {
		return err
	}
	if _, err := sendProbe(ctx, cl, p, j, probes[0], "pipeline probe", children); err != nil {
		return err
	}
	h := len(w.Events) / 2
	for _, half := range []struct {
		name     string
		from, to int
		rss      *float64
	}{{"first half", 0, h, &rep.MatcherRSSFirstHalfMiB}, {"second half", h, len(w.Events), &rep.MatcherRSSSecondHalfMiB}} {
		ps.begin(half.name, time.Now())
		if _, err := p.produce(ctx, w, half.from, half.to, 0); err != nil {
			return err
		}
		want := transactions(w.Events[:half.to])
		progress := func() string { return fmt.Sprintf("%d of %d transactions posted", j.posted(), want) }
		if err := waitProgress(ctx, o.Options, o.Timeout, half.name, func() bool { return j.posted() >= want }, progress, children...); err != nil {
			return err
		}
		*half.rss, _ = matcher.rss()
		o.say("%s posted: matcher RSS %.1f MiB", half.name, *half.rss)
	}
	rep.RSSGrowthPct = growthPct(rep.MatcherRSSFirstHalfMiB, rep.MatcherRSSSecondHalfMiB)
	rep.SinkRSSAfterMiB, _ = sink.rss()
	rep.AlertsRSSAfterMiB, _ = alerts.rss()
	ps.begin("settle", time.Now())
	if err := waitFor(ctx, 2*time.Minute, "journal settles", func() bool { return j.settled(w) }, children...); err != nil {
		o.say("%s (checked again at the end)", strings.TrimPrefix(err.Error(), "bench: "))
	}
	j.mu.Lock()
	rep.JournalEntries = len(j.entries)
	j.mu.Unlock()

	// (a) restart with the data directory kept
	ps.begin("restart", time.Now())
	if o.RestartSignal == SignalKill {
		rep.PeakRSSMiB[matcher.name] = matcher.kill()
	} else {
		rep.PeakRSSMiB[matcher.name] = matcher.stop()
	}
	rep.MatcherRSSMiB = rep.PeakRSSMiB[matcher.name]
	rep.StoreMiB, rep.StoresPresent = dirMiB(matcherStores(st.matcher.DataDir))
	if matcher, err = restartMatcher(ctx, o.Options, st.matcher, "matcher-restart", children); matcher == nil {
		children = children[1:] // the stopped one is measured
		return err
	}
	children[0] = matcher
	if err != nil {
		return err
	}
	rep.RestartReadyMs = ms(matcher.readyIn())
	o.say("restart: ready in %.0f ms (stores present: %v, %.1f MiB)", rep.RestartReadyMs, rep.StoresPresent, rep.StoreMiB)
	d, err := sendProbe(ctx, cl, p, j, probes[1], "probe after the restart", children)
	if err != nil {
		return err
	}
	rep.ProbeMs["restart"] = ms(d)

	// (b) restart with the stores deleted: state from the changelogs
	ps.begin("restart from changelogs", time.Now())
	rep.PeakRSSMiB[matcher.name] = matcher.stop()
	if err := os.RemoveAll(matcherStores(st.matcher.DataDir)); err != nil {
		return err
	}
	if matcher, err = restartMatcher(ctx, o.Options, st.matcher, "matcher-changelog", children); matcher == nil {
		children = children[1:] // the stopped one is measured
		return err
	}
	children[0] = matcher
	if err != nil {
		return err
	}
	rep.RestartFromChangelogMs = ms(matcher.readyIn())
	o.say("restart from changelogs: ready in %.0f ms", rep.RestartFromChangelogMs)
	d, err = sendProbe(ctx, cl, p, j, probes[2], "probe after the restart from changelogs", children)
	if err != nil {
		return err
	}
	rep.ProbeMs["restart_from_changelog"] = ms(d)

	// (c) a second instance joins
	ps.begin("rebalance", time.Now())
	spec2 := st.matcher
	spec2.Instance, spec2.DataDir = st.matcher.Instance+"-2", filepath.Join(data, "matcher-2")
	second, err := startChild(o.Exe, o.WorkDir, ComponentMatcher, "matcher-2", spec2)
	if err != nil {
		return err
	}
	children = append(children, second)
	both := func() bool {
		r1, p1 := matcher.heldParts()
		r2, p2 := second.heldParts()
		return second.isReady() && matcher.isReady() && rebalanced(int(o.Partitions), [2]int{r1, p1}, [2]int{r2, p2})
	}
	progress := func() string {
		r1, p1 := matcher.heldParts()
		r2, p2 := second.heldParts()
		return fmt.Sprintf("first holds %d+%d, second %d+%d (route+post), second ready %v", r1, p1, r2, p2, second.isReady())
	}
	// Held partitions are not yet serving: an instance that keeps
	// partitions aborts its first transaction after the rebalance and
	// restores them again (matcher/service: a transaction aborted by a
	// rebalance restarts the stage). So once both hold their share, a
	// probe goes through (on its account's partition, and its entry's),
	// and the rebalance is done when both have then held their share for
	// rebalanceQuiet without a break.
	if err := waitProgress(ctx, o.Options, 15*time.Minute, "rebalance", both, progress, children...); err != nil {
		return err
	}
	o.say("rebalance: partitions held after %.0f ms: %s; probing", ms(time.Since(second.started)), progress())
	d, err = sendProbe(ctx, cl, p, j, probes[3], "probe after the rebalance", children)
	if err != nil {
		return err
	}
	rep.ProbeMs["rebalance"] = ms(d)
	steadily := &steady{quiet: rebalanceQuiet}
	done := func() bool { return steadily.check(time.Now(), both()) }
	if err := waitProgress(ctx, o.Options, 15*time.Minute, "rebalance settles", done, progress, children...); err != nil {
		return err
	}
	rep.RebalanceReadyMs = ms(steadily.since.Sub(second.started))
	o.say("rebalance: both instances serve after %.0f ms: %s", rep.RebalanceReadyMs, progress())

	ps.begin("check", time.Now())
	rep.Problems = append(rep.Problems, st.finish(ctx, w, j, stop, chDone, children)...)
	for _, c := range children {
		rep.PeakRSSMiB[c.name] = c.stop()
	}
	children = nil
	rep.SinkRSSMiB, rep.AlertsRSSMiB = rep.PeakRSSMiB[ComponentSink], rep.PeakRSSMiB[ComponentAlerts]
	return nil
}

// restartMatcher starts the matcher of spec as a process named name and
// waits until it is ready.
func restartMatcher(ctx context.Context, o Options, spec ChildSpec, name string, others []*child) (*child, error) {
	m, err := startChild(o.Exe, o.WorkDir, ComponentMatcher, name, spec)
	if err != nil {
		return nil, err
	}
	alive := append([]*child{m}, others[1:]...)
	progress := func() string { return fmt.Sprintf("not ready yet, %d loans loaded (see %s)", m.loans.Load(), m.log) }
	return m, waitProgress(ctx, o, 15*time.Minute, name, m.isReady, progress, alive...)
}
