package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/analytics"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/ledger"
	"github.com/reconhq/recon/schemas"
)

// Relay topics of the baseline; the bench owns them.
var RelayTopics = [3]string{"recon-bench.relay-in", "recon-bench.relay-mid", "recon-bench.relay-out"}

// Options of one bench run.
type Options struct {
	Brokers    []string
	ClickHouse string
	Loans      int
	Events     int
	Rate       int // events per second; 0 is as fast as the client can
	Seed       uint64
	Partitions int32
	// Exe is the recon binary that runs the components ("recon bench
	// component NAME").
	Exe string
	// WorkDir receives the components' logs and the CPU profile.
	WorkDir        string
	MatcherProfile string // CPU profile of the matcher, "" for none
	MaxPollRecords int    // matcher and relay, 0 for the matcher's default
	Timeout        time.Duration
	NoBaseline     bool
	Progress       io.Writer
}

// Report is the bench's result, printed as one JSON line.
type Report struct {
	Run                    string             `json:"run"`
	Loans                  int                `json:"loans"`
	Events                 int                `json:"events"`
	Rate                   int                `json:"rate"`
	Seed                   uint64             `json:"seed"`
	Partitions             int32              `json:"partitions"`
	EventsPerSec           float64            `json:"events_per_sec"`
	BaselineEventsPerSec   float64            `json:"baseline_events_per_sec"`
	Ratio                  float64            `json:"ratio"`
	P50Ms                  float64            `json:"p50_ms"`
	P99Ms                  float64            `json:"p99_ms"`
	BaselineP99Ms          float64            `json:"baseline_p99_ms"`
	ClickHouseVisibleP50Ms float64            `json:"clickhouse_visible_p50_ms"`
	ClickHouseVisibleP99Ms float64            `json:"clickhouse_visible_p99_ms"`
	AlertP99Ms             float64            `json:"alert_p99_ms"`
	Alerts                 int                `json:"alerts"`
	PeakRSSMiB             map[string]float64 `json:"peak_rss_mib"`
	MatcherLoans           int64              `json:"matcher_loans"`
	MatcherMiBPerMLoans    float64            `json:"matcher_mib_per_million_loans"`
	MatcherReadyMs         float64            `json:"matcher_ready_ms"`
	Kinds                  map[string]int     `json:"kinds"`
	Correct                bool               `json:"correct"`
	Problems               []string           `json:"problems,omitempty"`
	DurationS              float64            `json:"duration_s"`
}

func (o *Options) say(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "bench: "+format+"\n", args...)
	}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }

// RunID returns a fresh run id: upper-case base 36 of the clock.
func RunID(now time.Time) string {
	return "B" + strings.ToUpper(strconv.FormatInt(now.UnixMilli()%(36*36*36*36*36*36*36), 36))
}

// Run drives the workload through the baseline relay, then through the
// pipeline, and reports.
func Run(ctx context.Context, o Options) (*Report, error) {
	began := time.Now()
	if o.Timeout == 0 {
		o.Timeout = 15 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	run := RunID(began)
	w, err := Generate(GenConfig{Seed: o.Seed, Run: run, Loans: o.Loans, Events: o.Events})
	if err != nil {
		return nil, err
	}
	rep := &Report{Run: run, Loans: o.Loans, Events: o.Events, Rate: o.Rate, Seed: o.Seed, Partitions: o.Partitions,
		PeakRSSMiB: map[string]float64{}, Kinds: w.Expect.Kinds}
	if err := os.MkdirAll(o.WorkDir, 0o755); err != nil {
		return nil, err
	}
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
	if err := ensureRelayTopics(ctx, cl, o.Partitions); err != nil {
		return nil, err
	}
	o.say("run %s: %d loans, %d events (%v), rate %d/s, %d partitions", run, o.Loans, o.Events, w.Expect.Kinds, o.Rate, o.Partitions)

	if !o.NoBaseline {
		if err := baseline(ctx, o, w, cl, rep); err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
	}
	if err := pipeline(ctx, o, w, cl, kc, rep); err != nil {
		return nil, err
	}
	if rep.BaselineEventsPerSec > 0 {
		rep.Ratio = math.Round(rep.EventsPerSec/rep.BaselineEventsPerSec*1000) / 1000
	}
	rep.Correct = len(rep.Problems) == 0
	rep.DurationS = math.Round(time.Since(began).Seconds()*10) / 10
	self, _ := PeakRSSMiB(os.Getpid())
	rep.PeakRSSMiB["bench"] = self
	return rep, nil
}

func ensureRelayTopics(ctx context.Context, cl *kgo.Client, partitions int32) error {
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx, RelayTopics[:]...)
	if err != nil {
		return err
	}
	for _, t := range RelayTopics {
		if d, ok := details[t]; ok && d.Err == nil && int32(len(d.Partitions)) != partitions {
			if _, err := adm.DeleteTopics(ctx, t); err != nil {
				return fmt.Errorf("delete %s (wrong partition count): %w", t, err)
			}
			time.Sleep(2 * time.Second) // deletion is asynchronous on the broker
		}
		for attempt := 0; ; attempt++ {
			resp, err := adm.CreateTopic(ctx, partitions, 1, nil, t)
			if err == nil {
				err = resp.Err
			}
			if err == nil || errors.Is(err, kerr.TopicAlreadyExists) && attempt > 0 || errors.Is(err, kerr.TopicAlreadyExists) && details[t].Err == nil && int32(len(details[t].Partitions)) == partitions {
				break
			}
			if attempt > 20 {
				return fmt.Errorf("create %s: %w", t, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	return nil
}

// endOffsets are the current end offsets of topics.
func endOffsets(ctx context.Context, cl *kgo.Client, topics ...string) (map[string]map[int32]int64, error) {
	var out map[string]map[int32]int64
	var err error
	for attempt := 0; attempt < 50; attempt++ { // a new topic takes a moment to appear
		if out, err = listEnds(ctx, cl, topics...); err == nil {
			return out, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return nil, err
}

func listEnds(ctx context.Context, cl *kgo.Client, topics ...string) (map[string]map[int32]int64, error) {
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]int64{}
	var ferr error
	for _, t := range topics {
		if len(ends[t]) == 0 {
			return nil, fmt.Errorf("end offsets of %s: topic not found", t)
		}
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			ferr = fmt.Errorf("end offset of %s/%d: %w", o.Topic, o.Partition, o.Err)
		}
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, ferr
}

// follow consumes topics read-committed from start until ctx ends.
func follow(ctx context.Context, kc bus.Config, start map[string]map[int32]int64, fn func(*kgo.Record, time.Time)) error {
	parts := map[string]map[int32]kgo.Offset{}
	for t, ps := range start {
		parts[t] = map[int32]kgo.Offset{}
		for p, o := range ps {
			parts[t][p] = kgo.NewOffset().At(o)
		}
	}
	cl, err := kgo.NewClient(kc.Opts(kgo.ConsumePartitions(parts), kgo.FetchMaxWait(50*time.Millisecond))...)
	if err != nil {
		return err
	}
	go func() {
		defer cl.Close()
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) { fn(r, now) })
		}
	}()
	return nil
}

// producer publishes the workload's transactions to topic at the rate
// asked, stamping each id's first produce time.
type producer struct {
	cl    *kgo.Client
	n     int32
	topic string
	first map[string]int // id -> index of its first event
	sent  []atomic.Int64 // unix nanos of first produce, by event index
	errs  atomic.Int64
	last  atomic.Value // error
}

func newProducer(cl *kgo.Client, n int32, topic string, w *Workload) *producer {
	p := &producer{cl: cl, n: n, topic: topic, first: make(map[string]int, len(w.Events)), sent: make([]atomic.Int64, len(w.Events))}
	for i, e := range w.Events {
		if _, ok := p.first[e.Txn.ID]; !ok {
			p.first[e.Txn.ID] = i
		}
	}
	return p
}

func (p *producer) record(t recon.BankTransaction, now time.Time) *kgo.Record {
	v, err := json.Marshal(t)
	if err != nil {
		panic("bench: marshal: " + err.Error())
	}
	key := t.ID // the bare relay forwards keys: its latency is measured by transaction id
	if p.topic == schemas.TopicBankTransactions {
		key = recon.PartitionKey(t) // recon's own key: all sightings of a movement meet in one partition
	}
	return bus.Event{Topic: p.topic, Key: key, Type: schemas.TypeBankTransaction, ID: t.ID + "@" + t.Source, Source: "recon-bench/" + t.Source, Time: now, Value: v, Partition: -1}.Record(p.n)
}

func (p *producer) cb(_ *kgo.Record, err error) {
	if err != nil {
		p.errs.Add(1)
		p.last.Store(err)
	}
}

// produce sends events [from, to) of w; it returns when all are
// acknowledged.
func (p *producer) produce(ctx context.Context, w *Workload, from, to, rate int) (time.Time, error) {
	t0 := time.Now()
	for i := from; i < to; i++ {
		e := w.Events[i]
		if rate > 0 {
			if d := time.Until(t0.Add(time.Duration(i-from) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d)
			}
		}
		now := time.Now()
		if p.first[e.Txn.ID] == i {
			p.sent[i].Store(now.UnixNano())
		}
		p.cl.Produce(ctx, p.record(e.Txn, now), p.cb)
	}
	if err := p.cl.Flush(ctx); err != nil {
		return t0, err
	}
	if n := p.errs.Load(); n > 0 {
		return t0, fmt.Errorf("%d records not produced: %v", n, p.last.Load())
	}
	return t0, nil
}

// sentAt is the first produce time of id, zero when unknown.
func (p *producer) sentAt(id string) time.Time {
	i, ok := p.first[id]
	if !ok {
		return time.Time{}
	}
	ns := p.sent[i].Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// probe is a one-cent bank charge used to see that a path is live; n
// tells a run's probes apart.
func probe(w *Workload, n int) recon.BankTransaction {
	ref := "ASR" + w.Cfg.Run + "probe"
	if n > 0 {
		ref += strconv.Itoa(n)
	}
	t := recon.BankTransaction{Type: recon.TypeTransaction, Source: "webhook", AccountIBAN: w.Account, Direction: recon.Debit,
		Amount: decimal.RequireFromString("0.01"), Currency: "EUR", Status: recon.Booked, BookingDate: "2026-03-05",
		IsCharge: true, BankTxCode: "PMNT/CCRD/CHRG", BankReference: ref}
	t.ID = recon.IdentityKey(t)
	return t
}

func waitFor(ctx context.Context, limit time.Duration, what string, cond func() bool, alive ...*child) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		for _, c := range alive {
			if err := c.alive(); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s: not done after %s", what, limit)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("bench: %s: %w", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

func baseline(ctx context.Context, o Options, w *Workload, cl *kgo.Client, rep *Report) error {
	kc := bus.DefaultConfig()
	kc.Brokers, kc.Partitions = o.Brokers, o.Partitions
	start, err := endOffsets(ctx, cl, RelayTopics[2])
	if err != nil {
		return err
	}
	relay, err := startChild(o.Exe, o.WorkDir, ComponentRelay, ComponentRelay, ChildSpec{Brokers: o.Brokers, Partitions: o.Partitions, Run: w.Cfg.Run,
		RelayTopics: RelayTopics, SinceMillis: time.Now().Add(-time.Second).UnixMilli(), MaxPollRecords: o.MaxPollRecords})
	if err != nil {
		return err
	}
	defer func() { rep.PeakRSSMiB["relay"] = relay.stop() }()
	if err := relay.waitReady(ctx, 60*time.Second); err != nil {
		return err
	}
	p := newProducer(cl, o.Partitions, RelayTopics[0], w)
	pr := probe(w, 0)
	var mu sync.Mutex
	var lat Latencies
	var count int
	var last time.Time
	var probed bool
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	err = follow(fctx, kc, start, func(r *kgo.Record, now time.Time) {
		mu.Lock()
		defer mu.Unlock()
		if string(r.Key) == pr.ID {
			probed = true
			return
		}
		count++
		last = now
		if at := p.sentAt(string(r.Key)); !at.IsZero() {
			lat.Add(now.Sub(at))
			p.sent[p.first[string(r.Key)]].Store(0) // the first copy only
		}
	})
	if err != nil {
		return err
	}
	if err := cl.ProduceSync(ctx, p.record(pr, time.Now())).FirstErr(); err != nil {
		return err
	}
	if err := waitFor(ctx, 60*time.Second, "baseline probe", func() bool { mu.Lock(); defer mu.Unlock(); return probed }, relay); err != nil {
		return err
	}
	o.say("baseline: relaying %d events over two transactional hops", len(w.Events))
	t0, err := p.produce(ctx, w, 0, len(w.Events), o.Rate)
	if err != nil {
		return err
	}
	if err := waitFor(ctx, o.Timeout, "baseline relay", func() bool { mu.Lock(); defer mu.Unlock(); return count >= len(w.Events) }, relay); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	rep.BaselineEventsPerSec = math.Round(float64(len(w.Events)) / last.Sub(t0).Seconds())
	rep.BaselineP99Ms = lat.Percentile(99)
	o.say("baseline: %.0f events/s, p99 %.1f ms", rep.BaselineEventsPerSec, rep.BaselineP99Ms)
	return nil
}

// journal is what the bench reads back from the journal.
type journal struct {
	mu       sync.Mutex
	ids      map[string]bool      // the run's transaction ids and probes (set before following)
	probes   map[string]bool      // the probes' ids
	first    map[string]time.Time // transaction id -> when its first entry was seen
	entries  map[string]bool
	balances map[string]int64 // account -> debits minus credits, cents, of this run's entries
	postings int
	open     map[string]bool // transaction ids parked in suspense
	problems []string
	lat      Latencies
	last     time.Time
	pending  map[int32][]visible // first entries not yet seen in ClickHouse, in offset order
	chLat    Latencies
	p        *producer // when each transaction was first sent
}

type visible struct {
	offset int64
	sent   time.Time // zero for a probe: waited for, not timed
}

type jEntry struct {
	ID            string          `json:"id"`
	Kind          string          `json:"kind"`
	TransactionID string          `json:"transaction_id"`
	Postings      []recon.Posting `json:"postings"`
}

// newJournal reads back the journal of w's transactions and of probes,
// whose sending p records.
func newJournal(w *Workload, p *producer, probes ...recon.BankTransaction) *journal {
	j := &journal{ids: make(map[string]bool, len(w.Events)+len(probes)), probes: map[string]bool{}, first: map[string]time.Time{},
		entries: map[string]bool{}, balances: map[string]int64{}, open: map[string]bool{}, pending: map[int32][]visible{}, p: p}
	for _, e := range w.Events {
		j.ids[e.Txn.ID] = true
	}
	for _, pr := range probes {
		j.ids[pr.ID], j.probes[pr.ID] = true, true
	}
	return j
}

func (j *journal) add(r *kgo.Record, now time.Time) {
	if !strings.HasPrefix(string(r.Key), "L") && string(r.Key) != schemas.SuspenseKey {
		return
	}
	var e jEntry
	if err := json.Unmarshal(r.Value, &e); err != nil || !j.ids[e.TransactionID] {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.entries[e.ID] {
		j.problems = append(j.problems, "entry "+e.ID+" posted twice")
		return
	}
	j.entries[e.ID] = true
	for _, ps := range e.Postings {
		c := ps.Amount.Shift(2).IntPart()
		if ps.Side == recon.CreditSide {
			c = -c
		}
		j.balances[ps.Account] += c
		j.postings++
	}
	switch e.Kind {
	case "suspense":
		j.open[e.TransactionID] = true
	case "suspense-release", "reversal":
		delete(j.open, e.TransactionID)
	}
	if _, seen := j.first[e.TransactionID]; seen {
		return
	}
	j.first[e.TransactionID] = now
	if j.probes[e.TransactionID] {
		j.pending[r.Partition] = append(j.pending[r.Partition], visible{offset: r.Offset})
		return
	}
	if at := j.p.sentAt(e.TransactionID); !at.IsZero() {
		j.lat.Add(now.Sub(at))
		j.last = now
		j.pending[r.Partition] = append(j.pending[r.Partition], visible{r.Offset, at})
	}
}

// posted is how many of the run's transactions (probes apart) have an entry.
func (j *journal) posted() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.first) - j.probesPosted()
}

// probesPosted is how many probes have an entry (j.mu held).
func (j *journal) probesPosted() int {
	n := 0
	for id := range j.probes {
		if _, ok := j.first[id]; ok {
			n++
		}
	}
	return n
}

// seen reports whether transaction id has an entry.
func (j *journal) seen(id string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	_, ok := j.first[id]
	return ok
}

// settled reports whether the run's suspense and bank balance are what w
// expects once all of it is posted.
func (j *journal) settled(w *Workload) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return len(j.open) == w.Expect.Suspense && j.balances[ledger.Bank(w.Account)] == w.Expect.Bank-int64(j.probesPosted())
}

// stack is the pipeline of one run around its components: the
// ClickHouse database the sink writes, the endpoint the alerts are sent
// to, and the components' specs.
type stack struct {
	start map[string]map[int32]int64 // the topics' ends when the run began
	db    string
	conn  driver.Conn
	recv  *receiver
	srv   *http.Server
	// the components' specs
	matcher, sink, alerts ChildSpec
}

// newStack prepares the run's pipeline: a ClickHouse database of this run
// whose sink starts where the run starts, and a large_credit rule on the
// run's account delivered to a local endpoint.
func newStack(ctx context.Context, o Options, w *Workload, cl *kgo.Client, p *producer) (*stack, error) {
	run := w.Cfg.Run
	start, err := endOffsets(ctx, cl, analytics.Topics...)
	if err != nil {
		return nil, err
	}
	st := &stack{start: start, db: "recon_bench_" + strings.ToLower(run)}
	if st.conn, err = analytics.Open(o.ClickHouse); err != nil {
		return nil, err
	}
	if err := analytics.Migrate(ctx, st.conn, st.db); err != nil {
		st.conn.Close()
		return nil, fmt.Errorf("clickhouse %s: %w", o.ClickHouse, err)
	}
	if err := seedSinkOffsets(ctx, st.conn, st.db, start); err != nil {
		st.conn.Close()
		return nil, err
	}
	st.recv = &receiver{got: map[string]bool{}, sent: p.sentAt}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		st.conn.Close()
		return nil, err
	}
	st.srv = &http.Server{Handler: st.recv, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = st.srv.Serve(ln) }()
	alertsFile := filepath.Join(o.WorkDir, "alerts-"+run+".yaml")
	rules := fmt.Sprintf(`allow_loopback: true
delivery: {initial_backoff: 100ms, timeout: 5s}
endpoints:
  - {name: bench, url: "http://%s/hook", secret: "whsec_YmVuY2hiZW5jaGJlbmNoYmVuY2hiZW5jaGJlbmNoMTI=", rules: [large]}
rules:
  - {name: large, kind: large_credit, threshold: "%s", currency: EUR, account: %s}
`, ln.Addr(), LargeCreditThreshold, w.Account)
	if err := os.WriteFile(alertsFile, []byte(rules), 0o600); err != nil {
		st.close()
		return nil, err
	}
	spec := ChildSpec{Brokers: o.Brokers, Partitions: o.Partitions, Run: run}
	st.matcher, st.sink, st.alerts = spec, spec, spec
	st.matcher.Instance, st.matcher.MaxPollRecords, st.matcher.CPUProfile = "recon-bench", o.MaxPollRecords, o.MatcherProfile
	st.matcher.DataDir = filepath.Join(o.WorkDir, "matcher-data") // its local state stores, as a deployment keeps them
	st.sink.ClickHouse, st.sink.Database, st.sink.Group = o.ClickHouse, st.db, "recon-bench-sink-"+run
	st.alerts.AlertsConfig = alertsFile
	st.alerts.Start = map[string]map[int32]int64{schemas.TopicLedgerEntries: start[schemas.TopicLedgerEntries], schemas.TopicBankTransactions: start[schemas.TopicBankTransactions]}
	return st, nil
}

func (st *stack) close() {
	st.srv.Close()
	st.conn.Close()
}

// startComponents starts the matcher, the sink and the alerts, in that
// order, and waits until each is ready.
func (st *stack) startComponents(ctx context.Context, o Options) ([]*child, error) {
	var children []*child
	for _, cs := range []struct {
		name string
		spec ChildSpec
	}{{ComponentMatcher, st.matcher}, {ComponentSink, st.sink}, {ComponentAlerts, st.alerts}} {
		c, err := startChild(o.Exe, o.WorkDir, cs.name, cs.name, cs.spec)
		if err != nil {
			return children, err
		}
		children = append(children, c)
	}
	for _, c := range children {
		if err := c.waitReady(ctx, 5*time.Minute); err != nil {
			return children, err
		}
	}
	return children, nil
}

// follow reads the run's journal into j from the run's start, and the
// ClickHouse offsets behind it, until ctx ends; the channel closes once
// the ClickHouse poll has stopped.
func (st *stack) follow(ctx context.Context, kc bus.Config, j *journal) (<-chan struct{}, error) {
	if err := follow(ctx, kc, map[string]map[int32]int64{schemas.TopicLedgerEntries: st.start[schemas.TopicLedgerEntries]}, j.add); err != nil {
		return nil, err
	}
	chDone := make(chan struct{})
	go func() { defer close(chDone); pollClickHouse(ctx, st.conn, st.db, j) }()
	return chDone, nil
}

// publishLoans publishes w's loans straight to the loans topic (setup, not
// the API's path) and waits until the matcher's table holds them; before
// is how many it held.
func publishLoans(ctx context.Context, o Options, w *Workload, cl *kgo.Client, matcher *child, before int64, alive []*child) error {
	for i := 0; i < o.Loans; i++ {
		l := w.Loan(i)
		v, _ := json.Marshal(l)
		cl.Produce(ctx, bus.Event{Topic: schemas.TopicLoans, Key: l.LoanID, Type: schemas.TypeLoan, ID: l.LoanID, Source: "recon-bench", Time: time.Now(), Value: v, Partition: -1}.Record(o.Partitions), nil)
		if (i+1)%250_000 == 0 {
			o.say("loans: %d of %d published", i+1, o.Loans)
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	loaded := func() bool { return matcher.loans.Load() >= before+int64(o.Loans) }
	progress := func() string {
		return fmt.Sprintf("matcher holds %d of %d loans", matcher.loans.Load()-before, o.Loans)
	}
	return waitProgress(ctx, o, 5*time.Minute+time.Duration(o.Loans)*time.Millisecond, "matcher loading loans", loaded, progress, alive...)
}

// waitProgress is waitFor that says progress every progressEvery.
func waitProgress(ctx context.Context, o Options, limit time.Duration, what string, cond func() bool, progress func() string, alive ...*child) error {
	began, next := time.Now(), time.Now().Add(progressEvery)
	return waitFor(ctx, limit, what, func() bool {
		if cond() {
			return true
		}
		if time.Now().After(next) {
			next = next.Add(progressEvery)
			o.say("%s: %s (%.0f s)", what, progress(), time.Since(began).Seconds())
		}
		return false
	}, alive...)
}

const progressEvery = 10 * time.Second

// sendProbe publishes pr and waits until the journal shows it; it returns
// how long that took.
func sendProbe(ctx context.Context, cl *kgo.Client, p *producer, j *journal, pr recon.BankTransaction, what string, alive []*child) (time.Duration, error) {
	sent := time.Now()
	if err := cl.ProduceSync(ctx, p.record(pr, sent)).FirstErr(); err != nil {
		return 0, err
	}
	err := waitFor(ctx, 2*time.Minute, what, func() bool { return j.seen(pr.ID) }, alive...)
	return time.Since(sent), err
}

// finish lets waiting returns settle, ClickHouse catch up and alerts
// arrive (two minutes at most), stops following, and checks the journal
// and ClickHouse against the generator's expectations.
func (st *stack) finish(ctx context.Context, w *Workload, j *journal, stopFollowing func(), chDone <-chan struct{}, alive []*child) []string {
	var problems []string
	settle := time.Now().Add(2 * time.Minute)
	chCaught := func() bool {
		j.mu.Lock()
		defer j.mu.Unlock()
		for _, q := range j.pending {
			if len(q) > 0 {
				return false
			}
		}
		return true
	}
	_ = waitFor(ctx, time.Until(settle), "journal settles", func() bool { return j.settled(w) }, alive...)
	if err := waitFor(ctx, time.Until(settle), "ClickHouse catches up", chCaught, alive...); err != nil {
		problems = append(problems, err.Error())
	}
	if err := waitFor(ctx, time.Until(settle), "alerts arrive", func() bool { return st.recv.count() >= len(w.Expect.LargeCredits) }, alive...); err != nil {
		problems = append(problems, fmt.Sprintf("%d of %d large-credit alerts received", st.recv.count(), len(w.Expect.LargeCredits)))
	}
	stopFollowing()
	<-chDone
	j.mu.Lock()
	problems = append(problems, j.problems...)
	j.mu.Unlock()
	problems = append(problems, checkJournal(w, j)...)
	return append(problems, checkClickHouse(ctx, st.conn, st.db, ledger.Bank(w.Account), j)...)
}

func pipeline(ctx context.Context, o Options, w *Workload, cl *kgo.Client, kc bus.Config, rep *Report) error {
	p := newProducer(cl, o.Partitions, schemas.TopicBankTransactions, w)
	st, err := newStack(ctx, o, w, cl, p)
	if err != nil {
		return err
	}
	defer st.close()
	spawned := time.Now()
	children, err := st.startComponents(ctx, o)
	defer func() {
		for _, c := range children {
			rep.PeakRSSMiB[c.name] = c.stop()
		}
	}()
	if err != nil {
		return err
	}
	matcher := children[0]
	rep.MatcherReadyMs = ms(time.Since(spawned))
	before := matcher.loans.Load()
	o.say("components ready in %.0f ms (matcher holds %d loans); publishing %d loans", rep.MatcherReadyMs, before, o.Loans)
	if err := publishLoans(ctx, o, w, cl, matcher, before, children); err != nil {
		return err
	}
	rep.MatcherLoans = matcher.loans.Load()

	pr := probe(w, 0)
	j := newJournal(w, p, pr)
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	chDone, err := st.follow(fctx, kc, j)
	if err != nil {
		return err
	}
	if _, err := sendProbe(ctx, cl, p, j, pr, "pipeline probe", children); err != nil {
		return err
	}
	o.say("pipeline: publishing %d bank transactions", len(w.Events))
	t0, err := p.produce(ctx, w, 0, len(w.Events), o.Rate)
	if err != nil {
		return err
	}
	want := w.Expect.Transactions
	if err := waitFor(ctx, o.Timeout, "pipeline", func() bool { return j.posted() >= want }, children...); err != nil {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d of %d transactions posted: %v", j.posted(), want, err))
	}
	j.mu.Lock()
	rep.EventsPerSec = math.Round(float64(len(w.Events)) / j.last.Sub(t0).Seconds())
	rep.P50Ms, rep.P99Ms = j.lat.Percentile(50), j.lat.Percentile(99)
	j.mu.Unlock()
	o.say("pipeline: %.0f events/s, produce → posted p50 %.1f ms p99 %.1f ms", rep.EventsPerSec, rep.P50Ms, rep.P99Ms)

	rep.Problems = append(rep.Problems, st.finish(ctx, w, j, stop, chDone, children)...)
	j.mu.Lock()
	rep.ClickHouseVisibleP50Ms, rep.ClickHouseVisibleP99Ms = j.chLat.Percentile(50), j.chLat.Percentile(99)
	j.mu.Unlock()
	st.recv.mu.Lock()
	rep.AlertP99Ms, rep.Alerts = st.recv.lat.Percentile(99), st.recv.lat.Len()
	st.recv.mu.Unlock()
	for _, c := range children {
		rep.PeakRSSMiB[c.name] = c.stop()
	}
	children = nil
	if rep.MatcherLoans > 0 {
		rep.MatcherMiBPerMLoans = math.Round(rep.PeakRSSMiB[ComponentMatcher]/float64(rep.MatcherLoans)*1e6*10) / 10
	}
	return nil
}

// seedSinkOffsets records the run's start offsets as already written, so
// the sink of the run's database starts where the run starts.
func seedSinkOffsets(ctx context.Context, conn driver.Conn, db string, start map[string]map[int32]int64) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+db+".sink_offsets (kafka_topic, kafka_partition, kafka_offset)")
	if err != nil {
		return err
	}
	for t, ps := range start {
		for p, o := range ps {
			if o > 0 {
				if err := b.Append(t, p, o-1); err != nil {
					return err
				}
			}
		}
	}
	return b.Send()
}

// pollClickHouse marks first entries visible once ClickHouse holds their
// journal offset.
func pollClickHouse(ctx context.Context, conn driver.Conn, db string, j *journal) {
	q := "SELECT kafka_partition, max(kafka_offset) FROM " + db + ".ledger_postings GROUP BY kafka_partition"
	for ctx.Err() == nil {
		rows, err := conn.Query(ctx, q)
		if err == nil {
			now := time.Now()
			for rows.Next() {
				var p int32
				var off int64
				if rows.Scan(&p, &off) != nil {
					break
				}
				j.mu.Lock()
				queue := j.pending[p]
				for len(queue) > 0 && queue[0].offset <= off {
					if !queue[0].sent.IsZero() {
						j.chLat.Add(now.Sub(queue[0].sent))
					}
					queue = queue[1:]
				}
				j.pending[p] = queue
				j.mu.Unlock()
			}
			rows.Close()
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkJournal compares the journal with the generator's expectations.
func checkJournal(w *Workload, j *journal) []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	ex := w.Expect
	if n := len(j.first) - j.probesPosted(); n != ex.Transactions {
		out = append(out, fmt.Sprintf("journal: %d transactions posted, want %d", n, ex.Transactions))
	}
	if got, want := j.balances[ledger.Bank(w.Account)], ex.Bank-int64(j.probesPosted()); got != want { // a cent each
		out = append(out, fmt.Sprintf("journal: bank balance %d cents, want %d", got, want))
	}
	if got := len(j.open); got != ex.Suspense {
		out = append(out, fmt.Sprintf("journal: %d open suspense items, want %d", got, ex.Suspense))
	}
	if got := -j.balances["suspense"]; got != ex.SuspenseSum {
		out = append(out, fmt.Sprintf("journal: suspense holds %d cents, want %d", got, ex.SuspenseSum))
	}
	bad := 0
	for i := 0; i < w.Cfg.Loans; i++ {
		id := LoanID(w.Cfg.Run, i)
		paid := -(j.balances["loan:"+id+":fees"] + j.balances["loan:"+id+":interest"] + j.balances["loan:"+id+":principal"])
		credit := -j.balances["loan:"+id+":credit"]
		if paid != ex.Paid[i] || credit != ex.Credit[i] {
			if bad++; bad <= 3 {
				out = append(out, fmt.Sprintf("journal: loan %s paid %d credit %d cents, want %d and %d", id, paid, credit, ex.Paid[i], ex.Credit[i]))
			}
		}
	}
	if bad > 3 {
		out = append(out, fmt.Sprintf("journal: %d loans differ in all", bad))
	}
	return out
}

// checkClickHouse compares every account's balance over this run's
// postings in ClickHouse with the journal's: the postings of the
// transactions that touched the run's bank account (every one does).
func checkClickHouse(ctx context.Context, conn driver.Conn, db, bank string, j *journal) []string {
	rows, err := conn.Query(ctx, "SELECT account, toString(sum(if(side = 'debit', amount, -amount))), count() FROM "+db+".ledger_postings FINAL WHERE transaction_id IN (SELECT transaction_id FROM "+db+".ledger_postings WHERE account = ?) GROUP BY account", bank)
	if err != nil {
		return []string{"clickhouse: " + err.Error()}
	}
	defer rows.Close()
	got := map[string]int64{}
	var n uint64
	for rows.Next() {
		var account, sum string
		var c uint64
		if err := rows.Scan(&account, &sum, &c); err != nil {
			return []string{"clickhouse: " + err.Error()}
		}
		d, err := decimal.NewFromString(sum)
		if err != nil {
			return []string{"clickhouse: " + err.Error()}
		}
		got[account] = d.Shift(2).IntPart()
		n += c
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []string
	if int(n) != j.postings {
		out = append(out, fmt.Sprintf("clickhouse: %d postings, the journal has %d", n, j.postings))
	}
	diff := 0
	for a, b := range j.balances {
		if got[a] != b {
			if diff++; diff <= 3 {
				out = append(out, fmt.Sprintf("clickhouse: %s is %d cents, the journal says %d", a, got[a], b))
			}
		}
	}
	return out
}

// receiver is the alert webhook endpoint.
type receiver struct {
	mu   sync.Mutex
	got  map[string]bool
	lat  Latencies
	sent func(string) time.Time
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Data struct {
			Subject string `json:"subject"`
			State   string `json:"state"`
		} `json:"data"`
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	now := time.Now()
	if json.Unmarshal(body, &msg) == nil && msg.Data.State == "firing" {
		rc.mu.Lock()
		if !rc.got[msg.Data.Subject] && rc.sent != nil {
			if at := rc.sent(msg.Data.Subject); !at.IsZero() {
				rc.got[msg.Data.Subject] = true
				rc.lat.Add(now.Sub(at))
			}
		}
		rc.mu.Unlock()
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}
