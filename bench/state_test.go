package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
	"github.com/reconhq/recon/schemas"
)

// The issue's JSON line names these fields; a renamed or omitted one
// breaks whoever reads the line.
func TestStateReportLineHasTheIssuesFields(t *testing.T) {
	b, err := json.Marshal(&StateReport{})
	if err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	if err := json.Unmarshal(b, &line); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"loans", "journal_entries", "restart_ready_ms", "restart_from_changelog_ms", "rebalance_ready_ms",
		"matcher_rss_mib", "alerts_rss_mib", "sink_rss_mib", "rss_growth_pct", "correct"} {
		if _, ok := line[k]; !ok {
			t.Errorf("the JSON line has no %q even when zero: %s", k, b)
		}
	}
}

func TestPhases(t *testing.T) {
	var said []string
	ps := &phases{say: func(f string, a ...any) { said = append(said, fmt.Sprintf(f, a...)) }}
	t0 := time.Unix(1000, 0)
	ps.end(t0) // nothing begun: nothing recorded
	ps.begin("loans", t0)
	ps.begin("first half", t0.Add(1500*time.Millisecond))
	ps.end(t0.Add(4 * time.Second))
	ps.end(t0.Add(9 * time.Second)) // already ended
	want := []Phase{{"loans", 1.5}, {"first half", 2.5}}
	if fmt.Sprint(ps.list) != fmt.Sprint(want) {
		t.Fatalf("phases %v, want %v", ps.list, want)
	}
	if ps.seconds("first half") != 2.5 || ps.seconds("rebalance") != 0 {
		t.Errorf("seconds: first half %v, rebalance %v", ps.seconds("first half"), ps.seconds("rebalance"))
	}
	if len(said) != 4 {
		t.Errorf("progress lines %q: want a begin and an end per phase", said)
	}
}

func TestGrowthPct(t *testing.T) {
	for _, c := range []struct{ a, b, want float64 }{{400, 440, 10}, {400, 400, 0}, {400, 380, -5}, {300, 301, 0.3}, {0, 500, 0}} {
		if got := growthPct(c.a, c.b); got != c.want {
			t.Errorf("growthPct(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestRebalanced(t *testing.T) {
	for _, c := range []struct {
		parts int
		held  [][2]int
		want  bool
	}{
		{3, [][2]int{{3, 3}}, true},
		{3, [][2]int{{3, 3}, {0, 0}}, false},         // the second joined with nothing yet
		{3, [][2]int{{2, 2}, {0, 0}}, false},         // revoked, not yet given
		{3, [][2]int{{2, 1}, {1, 1}}, false},         // a post partition in flight
		{3, [][2]int{{2, 1}, {1, 2}}, true},          // moved
		{3, [][2]int{{2, 2}, {1, 0}}, false},         // the second holds no post partition
		{1, [][2]int{{1, 1}, {0, 0}}, true},          // one partition: one instance idles
		{3, [][2]int{{3, 3}, {1, 0}}, false},         // more than there are: a stale count
		{2, [][2]int{{1, 1}, {1, 1}, {0, 0}}, true},  // three instances, two partitions
		{2, [][2]int{{2, 2}, {0, 0}, {0, 0}}, false}, // ... but not all on one
		{4, [][2]int{{2, 2}, {2, 1}, {0, 1}}, false}, // four on three: 2, 1, 1
		{4, [][2]int{{2, 1}, {1, 2}, {1, 1}}, true},
		{3, nil, false},
	} {
		if got := rebalanced(c.parts, c.held...); got != c.want {
			t.Errorf("rebalanced(%d, %v) = %v, want %v", c.parts, c.held, got, c.want)
		}
	}
}

func TestHalvesCoverEveryTransaction(t *testing.T) {
	w, err := Generate(GenConfig{Seed: 3, Run: "H", Loans: 200, Events: 5001})
	if err != nil {
		t.Fatal(err)
	}
	h := len(w.Events) / 2
	first, all := transactions(w.Events[:h]), transactions(w.Events)
	if all != w.Expect.Transactions || first <= 0 || first >= all {
		t.Fatalf("first half %d, all %d; the generator expects %d transactions", first, all, w.Expect.Transactions)
	}
	// every event of the first half that repeats or returns one refers to
	// the first half: the first half can be posted on its own
	seen := map[string]bool{}
	for _, e := range w.Events[:h] {
		if e.Kind == KindDuplicate && !seen[e.Txn.ID] {
			t.Fatalf("a duplicate of %s before its original", e.Txn.ID)
		}
		seen[e.Txn.ID] = true
	}
}

func TestParseHeld(t *testing.T) {
	for _, c := range []struct {
		line        string
		route, post int
		ok          bool
	}{{"held 2 1", 2, 1, true}, {"held 0 0", 0, 0, true}, {"held 2", 0, 0, false}, {"held x 1", 0, 0, false}, {"held -1 1", 0, 0, false}, {"loans 5", 0, 0, false}} {
		r, p, ok := parseHeld(c.line)
		if r != c.route || p != c.post || ok != c.ok {
			t.Errorf("parseHeld(%q) = %d, %d, %v; want %d, %d, %v", c.line, r, p, ok, c.route, c.post, c.ok)
		}
	}
}

func TestDirMiB(t *testing.T) {
	dir := t.TempDir()
	if mib, present := dirMiB(filepath.Join(dir, "matcher")); present || mib != 0 {
		t.Fatalf("missing dir: %v, %v", mib, present)
	}
	store := matcherStores(dir)
	if err := os.MkdirAll(filepath.Join(store, "route"), 0o755); err != nil {
		t.Fatal(err)
	}
	if mib, present := dirMiB(store); present || mib != 0 {
		t.Fatalf("empty dirs: %v, %v", mib, present)
	}
	if err := os.WriteFile(filepath.Join(store, "route", "000001.sst"), make([]byte, 3<<20/2), 0o600); err != nil {
		t.Fatal(err)
	}
	if mib, present := dirMiB(store); !present || mib != 1.5 {
		t.Fatalf("a 1.5 MiB store: %v, %v", mib, present)
	}
}

// A probe is posted like any transaction but counted apart: the run's
// transactions exclude it, the bank balance expects a cent per probe
// posted (not per probe planned), and ClickHouse is waited for it too.
func TestJournalCountsProbesApart(t *testing.T) {
	w, err := Generate(GenConfig{Seed: 9, Run: "P", Loans: 10, Events: 20})
	if err != nil {
		t.Fatal(err)
	}
	p := newProducer(nil, 3, "t", w)
	probes := []recon.BankTransaction{probe(w, 0), probe(w, 1)}
	if probes[0].ID == probes[1].ID {
		t.Fatal("two probes of a run share an id")
	}
	j := newJournal(w, p, probes...)
	entry := func(id, txn string, offset int64) *kgo.Record {
		e := jEntry{ID: id, Kind: "bank-charge", TransactionID: txn, Postings: []recon.Posting{
			{Account: "expense:bank-fees", Side: recon.DebitSide, Amount: decimal.RequireFromString("0.01"), Currency: "EUR"},
			{Account: ledger.Bank(w.Account), Side: recon.CreditSide, Amount: decimal.RequireFromString("0.01"), Currency: "EUR"}}}
		v, _ := json.Marshal(e)
		return &kgo.Record{Key: []byte(schemas.SuspenseKey), Value: v, Partition: 1, Offset: offset}
	}
	p.sent[0].Store(time.Now().UnixNano()) // event 0 was produced
	j.add(entry("e-probe", probes[0].ID, 7), time.Now())
	j.add(entry("e-txn", w.Events[0].Txn.ID, 8), time.Now())
	j.add(entry("e-probe", probes[0].ID, 9), time.Now()) // the same entry again
	j.add(entry("e-other", "not-this-run", 10), time.Now())
	if got := j.posted(); got != 1 {
		t.Errorf("posted %d, want 1 (the probe apart)", got)
	}
	if got := j.probesPosted(); got != 1 {
		t.Errorf("probes posted %d, want 1", got)
	}
	if len(j.problems) != 1 {
		t.Errorf("problems %q: want the entry posted twice", j.problems)
	}
	if q := j.pending[1]; len(q) != 2 || q[0].offset != 7 || !q[0].sent.IsZero() {
		t.Errorf("pending %+v: want the probe (untimed) and the transaction", q)
	}
}

func TestSteady(t *testing.T) {
	t0 := time.Unix(0, 0)
	s := &steady{quiet: 3 * time.Second}
	at := func(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }
	for _, c := range []struct {
		at       float64
		ok, want bool
	}{{0, false, false}, {1, true, false}, {2, true, false}, {2.5, false, false}, {3, true, false}, {5.9, true, false}, {6, true, true}} {
		if got := s.check(at(c.at), c.ok); got != c.want {
			t.Fatalf("at %v s (%v): %v, want %v", c.at, c.ok, got, c.want)
		}
	}
	if !s.since.Equal(at(3)) {
		t.Errorf("since %v, want 3 s: the last unbroken stretch", s.since.Sub(t0))
	}
}
