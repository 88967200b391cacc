package alerts

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/bus/bustest"
	"github.com/reconhq/recon/schemas"
)

// hooks is a webhook receiver with one path per endpoint; "/late" fails
// while late is down.
type hooks struct {
	lateDown atomic.Bool
	status   int // what "/ops" answers, 200 when zero
	mu       sync.Mutex
	got      map[string]map[string]int // path -> webhook id -> deliveries accepted
	arrived  chan struct{}
}

func newHooks(t *testing.T) (*hooks, *httptest.Server) {
	h := &hooks{got: map[string]map[string]int{}, arrived: make(chan struct{}, 1000)}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv
}

func (h *hooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/late" && h.lateDown.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	case r.URL.Path == "/ops" && h.status != 0:
		w.WriteHeader(h.status)
		return
	}
	h.mu.Lock()
	if h.got[r.URL.Path] == nil {
		h.got[r.URL.Path] = map[string]int{}
	}
	h.got[r.URL.Path][r.Header.Get(HeaderWebhookID)]++
	h.mu.Unlock()
	h.arrived <- struct{}{}
}

func (h *hooks) count(path, id string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.got[path][id]
}

// waitHook waits until cond holds, checked after each webhook received.
func (h *hooks) wait(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-h.arrived:
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s; received %v", what, h.got)
		}
	}
}

// instance is one alerts component (engine, dispatcher, feed) on kc.
type instance struct {
	svc  *Service
	stop func()
}

func startInstance(t *testing.T, kc bus.Config, cfg Config, fc FeedConfig) *instance {
	t.Helper()
	svc, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fc.Kafka = kc
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = svc.Run(ctx) }()
	go func() {
		defer wg.Done()
		if err := svc.Feed(ctx, fc); err != nil {
			t.Errorf("feed: %v", err)
		}
	}()
	in := &instance{svc: svc}
	var once sync.Once
	in.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(in.stop)
	return in
}

// produceEntry writes a balanced journal entry moving amount out of
// bank:X (a credit: its balance, debits minus credits, goes down).
func produceEntry(ctx context.Context, t *testing.T, cl *kgo.Client, kc bus.Config, id, amount string) {
	t.Helper()
	side, other := recon.CreditSide, recon.DebitSide
	if strings.HasPrefix(amount, "-") {
		amount = amount[1:]
		side, other = other, side
	}
	e := recon.Entry{ID: id, Kind: "test", TransactionID: id, BookedAt: t0, Postings: []recon.Posting{
		{Account: "bank:X", Side: side, Amount: dec(amount), Currency: "EUR"},
		{Account: "transit:test", Side: other, Amount: dec(amount), Currency: "EUR"}}}
	v, _ := json.Marshal(e)
	r := bus.Event{Topic: schemas.TopicLedgerEntries, Key: schemas.SuspenseKey, Type: schemas.TypeEntry, ID: id, Source: "test", Time: t0, Value: v, Partition: -1}.Record(kc.Partitions)
	if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// waitState reads the state topic (read committed) until key holds a
// value accepted by ok.
func waitState(ctx context.Context, t *testing.T, kc bus.Config, key string, ok func([]byte) bool) {
	t.Helper()
	cl, err := kgo.NewClient(kc.Opts(kgo.ConsumeTopics(schemas.TopicAlertsState), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out waiting for state key %s", key)
		}
		done := false
		fs.EachRecord(func(r *kgo.Record) { done = done || string(r.Key) == key && ok(r.Value) })
		if done {
			return
		}
	}
}

func deliveryIs(state string, minAttempts int) func([]byte) bool {
	return func(v []byte) bool {
		var dl Delivery
		return json.Unmarshal(v, &dl) == nil && dl.State == state && len(dl.Attempts) >= minAttempts
	}
}

// readTopic reads a topic from its start until stop says so.
func readTopic(ctx context.Context, t *testing.T, kc bus.Config, topic string, fn func(*kgo.Record) (stop bool)) {
	t.Helper()
	cl, err := kgo.NewClient(kc.Opts(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for stop := false; !stop; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out reading %s", topic)
		}
		fs.EachRecord(func(r *kgo.Record) { stop = stop || fn(r) })
	}
}

func hookConfig(srv *httptest.Server) Config {
	return Config{
		AllowLoopback: true,
		Delivery:      DeliveryConfig{InitialBackoff: Duration(10 * time.Millisecond), MaxBackoff: Duration(50 * time.Millisecond), MaxAttempts: 1000, MaxElapsed: Duration(time.Hour)},
		Endpoints: []Endpoint{
			{Name: "ops", URL: srv.URL + "/ops", Secret: secretA, Rules: []string{"low"}},
			{Name: "late", URL: srv.URL + "/late", Secret: secretA, Rules: []string{"low"}},
		},
		Rules: []Rule{{Name: "low", Kind: BalanceBelow, Account: "bank:X", Currency: "EUR", Threshold: "0"}},
	}
}

// TestFeedRestartFromStateTopic: an alerts instance is stopped after it
// delivered an alert to one endpoint while the other was failing; a new
// instance, with nothing on disk, restores engine and deliveries from the
// state topic: it does not fire the alert again, does not re-send it where
// it was delivered, delivers it where it was pending, and numbers the next
// edge on.
func TestFeedRestartFromStateTopic(t *testing.T) {
	kc, cl := bustest.Cluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h, srv := newHooks(t)
	h.lateDown.Store(true)
	cfg := hookConfig(srv)
	fc := FeedConfig{Instance: "alerts-a"}
	fired, resolved := alertID("low", "bank:X", 1), alertID("low", "bank:X", 2)

	first := startInstance(t, kc, cfg, fc)
	produceEntry(ctx, t, cl, kc, "e1", "10") // bank:X at -10: fires
	h.wait(ctx, t, "the alert at ops", func() bool { return h.count("/ops", fired) == 1 })
	waitState(ctx, t, kc, "alerts-a/"+deliveryStateKey(fired, "ops"), deliveryIs(DeliveryDelivered, 1))
	waitState(ctx, t, kc, "alerts-a/"+deliveryStateKey(fired, "late"), deliveryIs(DeliveryPending, 2))
	first.stop()

	h.lateDown.Store(false)
	second := startInstance(t, kc, cfg, fc)
	produceEntry(ctx, t, cl, kc, "e2", "5")    // -15: still firing, no new edge
	produceEntry(ctx, t, cl, kc, "e3", "-100") // 85: resolves
	h.wait(ctx, t, "the pending delivery at late and the resolution at ops", func() bool {
		return h.count("/late", fired) == 1 && h.count("/ops", resolved) == 1
	})
	if n := h.count("/ops", fired); n != 1 {
		t.Errorf("ops received the alert delivered before the restart %d times, want 1", n)
	}
	onTopic := map[string]int{}
	readTopic(ctx, t, kc, schemas.TopicAlerts, func(r *kgo.Record) bool {
		onTopic[string(r.Key)]++
		return string(r.Key) == resolved
	})
	if len(onTopic) != 2 || onTopic[fired] != 1 || onTopic[resolved] != 1 {
		t.Errorf("alerts topic %v, want %s and %s once each", onTopic, fired, resolved)
	}
	if dl := state(second.svc.disp, fired); len(second.svc.disp.Deliveries(fired)) != 2 || dl.AlertID != "" {
		t.Errorf("deliveries after restart %+v", second.svc.disp.Deliveries(fired))
	}
	if a, ok := second.svc.Alert(fired); !ok || a.State != StateFiring {
		t.Errorf("recent alerts after restart: %v %+v", ok, a)
	}

}

// TestFeedDeadLetterKafka: a delivery given up (the endpoint answered 410
// Gone) is on the dead-letters topic as a recon.DeadLetter naming the
// endpoint, the alert and the reason.
func TestFeedDeadLetterKafka(t *testing.T) {
	kc, cl := bustest.Cluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h, srv := newHooks(t)
	h.status = http.StatusGone
	cfg := hookConfig(srv)
	cfg.Endpoints = cfg.Endpoints[:1]
	startInstance(t, kc, cfg, FeedConfig{Instance: "alerts-b"})
	produceEntry(ctx, t, cl, kc, "e1", "10")
	id := alertID("low", "bank:X", 1)
	var dl recon.DeadLetter
	readTopic(ctx, t, kc, schemas.TopicDeadLetters, func(r *kgo.Record) bool {
		if err := json.Unmarshal(r.Value, &dl); err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != dl.ID || bus.Header(r, schemas.HeaderType) != schemas.TypeDeadLetter {
			t.Errorf("dead letter under key %s, type %s: %+v", r.Key, bus.Header(r, schemas.HeaderType), dl)
		}
		return true
	})
	if dl.Source != DeadLetterSource || dl.Where != "endpoint ops, alert "+id || !strings.Contains(dl.Reason, "410 Gone") || len(dl.Raw) == 0 {
		t.Errorf("dead letter %+v", dl)
	}
}

// TestFeedMemoryBoundedByLiveKeys: the heap held while the feed follows N
// and then 2N journal entries over the same live keys (memLoans loans, one
// bank account, suspense items parked and released) does not grow with the
// entries. Both runs read the same broker (kfake holds all 2N records in
// this process in both), the first only one of its two partitions.
func TestFeedMemoryBoundedByLiveKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("produces 60,000 records")
	}
	const n = 30000
	kc, cl := bustest.Cluster(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	for p := int32(0); p < 2; p++ {
		var recs []*kgo.Record
		for i := 0; i < n; i++ {
			e := memEntry(p, i)
			v, _ := json.Marshal(e)
			recs = append(recs, bus.Event{Topic: schemas.TopicLedgerEntries, Key: e.LoanID, Type: schemas.TypeEntry, ID: e.ID, Source: "test", Time: t0, Value: v, Partition: p}.Record(2))
			if len(recs) == 5000 {
				if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
				recs = recs[:0]
			}
		}
	}
	cfg := Config{Rules: []Rule{{Name: "low", Kind: BalanceBelow, Account: "bank:X", Currency: "EUR", Threshold: "0"},
		{Name: "susp", Kind: SuspenseAmount, Currency: "EUR", Threshold: "1000000"}}}
	heap := func(parts ...int32) uint64 {
		start := map[int32]int64{}
		for _, p := range parts {
			start[p] = 0
		}
		measured := make(chan uint64, 1)
		fc := FeedConfig{Start: map[string]map[int32]int64{schemas.TopicLedgerEntries: start}, OnBatch: func(offsets map[string]map[int32]int64) {
			for _, p := range parts {
				if offsets[schemas.TopicLedgerEntries][p] < n {
					return
				}
			}
			runtime.GC()
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			select {
			case measured <- ms.HeapAlloc:
			default:
			}
		}}
		in := startInstance(t, kc, cfg, fc)
		defer in.stop()
		select {
		case h := <-measured:
			return h
		case <-ctx.Done():
			t.Fatalf("feed did not read partitions %v", parts)
		}
		return 0
	}
	h1 := heap(0)
	h2 := heap(0, 1)
	growth := float64(h2)/float64(h1) - 1
	t.Logf("heap after %d entries %.1f MiB, after %d %.1f MiB: %+.1f%%", n, float64(h1)/(1<<20), 2*n, float64(h2)/(1<<20), 100*growth)
	if growth > 0.20 {
		t.Errorf("heap grew %.0f%% from %d to %d entries over the same live keys, want < 20%%", 100*growth, n, 2*n)
	}
}

// memLoans are the loans memEntry pays: every one of them in the first N
// entries of either partition.
const memLoans = 10000

// memEntry is entry i of partition p: a repayment of one of memLoans
// loans, or every tenth a suspense item parked, released by the next one.
func memEntry(p int32, i int) recon.Entry {
	id := fmt.Sprintf("p%d-e%d", p, i)
	post := func(debit, credit string) []recon.Posting {
		return []recon.Posting{{Account: debit, Side: recon.DebitSide, Amount: dec("10"), Currency: "EUR"},
			{Account: credit, Side: recon.CreditSide, Amount: dec("10"), Currency: "EUR"}}
	}
	item := fmt.Sprintf("p%d-t%d", p, i/10)
	switch i % 10 {
	case 0:
		return recon.Entry{ID: id, Kind: "suspense", LoanID: "", TransactionID: item, BookedAt: t0, Postings: post("bank:X", "suspense")}
	case 1:
		return recon.Entry{ID: id, Kind: "suspense-release", TransactionID: item, BookedAt: t0, Postings: post("suspense", "transit:rematch")}
	}
	loan := fmt.Sprintf("L%d", (i-2*(i/10+1))%memLoans)
	return recon.Entry{ID: id, Kind: "repayment", LoanID: loan, TransactionID: id, BookedAt: t0.Add(time.Duration(i) * time.Second),
		Postings: post("bank:X", "loan:"+loan+":principal")}
}

// TestFeedMigratesStateFile: with nothing on the state topic, the state
// file of an earlier version is restored, written to the topic whole in
// the first transaction, and Done is called; an instance started after
// that restores it from the topic: the alert firing before does not fire
// again.
func TestFeedMigratesStateFile(t *testing.T) {
	kc, cl := bustest.Cluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := Config{Rules: []Rule{{Name: "low", Kind: BalanceBelow, Account: "bank:X", Currency: "EUR", Threshold: "0"}}}
	old, _ := New(cfg, Options{})
	if as, _ := old.Observe(t0, BalanceChanged{Account: "bank:X", Currency: "EUR", Balance: dec("-10")}); len(as) != 1 {
		t.Fatalf("fired %+v", as)
	}
	produceEntry(ctx, t, cl, kc, "e1", "10") // what the file's offsets say was read
	done := make(chan struct{})
	mig := &Migration{Service: old.State(), Offsets: map[string]map[int32]int64{schemas.TopicLedgerEntries: {0: 1}}, Done: func() { close(done) }}
	first := startInstance(t, kc, cfg, FeedConfig{Instance: "alerts-m", Migrate: mig})
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("migration not done")
	}
	first.stop()
	waitState(ctx, t, kc, "alerts-m/"+keyEdge+"low/bank:X", func(v []byte) bool { return strings.Contains(string(v), `"firing":true`) })
	waitState(ctx, t, kc, "alerts-m/"+keyOffset+schemas.TopicLedgerEntries+"/0", func(v []byte) bool { return string(v) == "1" })

	second := startInstance(t, kc, cfg, FeedConfig{Instance: "alerts-m"}) // no file: the topic has it
	produceEntry(ctx, t, cl, kc, "e2", "-100")                            // resolves: edge 2, not a new edge 1
	resolved := alertID("low", "bank:X", 2)
	readTopic(ctx, t, kc, schemas.TopicAlerts, func(r *kgo.Record) bool {
		if id := string(r.Key); id != resolved {
			t.Errorf("alert %s on the topic, want only %s", id, resolved)
		}
		return true
	})
	second.stop()
}
