package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/matcher"
	"github.com/reconhq/recon/schemas"
)

// kafkaOnly returns the brokers, skipping (or failing under
// RECON_REQUIRE_SERVICES=1) when Kafka is not configured.
func kafkaOnly(t *testing.T) string {
	t.Helper()
	brokers := os.Getenv("RECON_KAFKA_BROKERS")
	if brokers == "" {
		if os.Getenv("RECON_REQUIRE_SERVICES") == "1" {
			t.Fatal("RECON_REQUIRE_SERVICES=1 but RECON_KAFKA_BROKERS is unset: run deploy/local/services.sh up")
		}
		t.Skip("integration test: set RECON_KAFKA_BROKERS (make test-integration does)")
	}
	return brokers
}

// workload is what the test sends and, independently of recon, what one
// clean delivery of it must leave behind.
type workload struct {
	acct      string
	loans     []recon.Loan
	owed      map[string]decimal.Decimal // loan -> what it owes
	credited  map[string]decimal.Decimal // loan -> distinct credits minus returned ones
	distinct  []recon.BankTransaction    // one per identity
	sightings []sighting                 // every delivery, in publishing order
	unknown   map[string]decimal.Decimal // identity -> amount, to a virtual IBAN of no loan
	bankNet   decimal.Decimal            // distinct credits minus distinct debits
}

// sighting is one delivery of a transaction: through the producer API, or
// as an entry of a camt.053 file.
type sighting struct {
	t    recon.BankTransaction
	file bool
}

func identityOf(t recon.BankTransaction) string { return recon.IdentityKey(t) }

// buildWorkload makes nLoans loans and nTxns distinct transactions: credits
// to virtual IBANs (some loans end overpaid), credits to unknown virtual
// IBANs, returns of earlier credits (end-to-end id, on loans that cannot be
// overpaid), a sixth of them delivered twice by another source (another
// producer id, or a camt.053 entry with the same bank reference), all in a
// seeded random order.
func buildWorkload(rng *rand.Rand, run string, nLoans, nTxns int) *workload {
	w := &workload{acct: iban("FR", pad(run, 9)+"00000000000000"), owed: map[string]decimal.Decimal{},
		credited: map[string]decimal.Decimal{}, unknown: map[string]decimal.Decimal{}}
	vIBAN := func(kind, i int) string { return iban("FR", fmt.Sprintf("%s%d%013d", pad(run, 9), kind, i)) }
	cents := func(lo, hi int) decimal.Decimal { return decimal.New(int64(lo*100+rng.IntN((hi-lo)*100)), -2) }
	returnable := map[string]bool{}
	for i := range nLoans {
		l := recon.Loan{LoanID: fmt.Sprintf("K%s-%d", run, i), VirtualIBAN: vIBAN(1, i), Currency: "EUR"}
		switch {
		case i%5 == 0: // cannot be overpaid: its credits may be returned
			l.Principal = decimal.RequireFromString("10000000.00")
			returnable[l.LoanID] = true
		case i%5 == 1: // a schedule: fees, then interest, then principal
			l.Principal = cents(500, 3000)
			half := l.Principal.Div(decimal.NewFromInt(2)).Round(2)
			l.Schedule = []recon.Instalment{
				{DueDate: "2026-10-05", Principal: half, Interest: cents(10, 50), Fees: decimal.RequireFromString("5.00")},
				{DueDate: "2026-11-05", Principal: l.Principal.Sub(half), Interest: cents(10, 50), Fees: decimal.RequireFromString("5.00")},
			}
		default:
			l.Principal = cents(500, 3000)
		}
		owed := l.Principal
		if len(l.Schedule) > 0 {
			owed = decimal.Zero
			for _, in := range l.Schedule {
				owed = owed.Add(in.Principal).Add(in.Interest).Add(in.Fees)
			}
		}
		w.loans = append(w.loans, l)
		w.owed[l.LoanID] = owed
	}
	type credit struct {
		t    recon.BankTransaction
		loan string
	}
	var returnableCredits []credit
	for i := range nTxns {
		t := recon.BankTransaction{ID: fmt.Sprintf("p-%s-%d", run, i), AccountIBAN: w.acct, Direction: recon.Credit,
			Currency: "EUR", BookingDate: "2026-11-27", BankReference: fmt.Sprintf("BR-%s-%d", run, i)}
		switch r := rng.IntN(100); {
		case r < 4: // a payment to a virtual IBAN of no loan: suspense
			t.VirtualIBAN, t.Amount = vIBAN(9, i), cents(10, 900)
			w.unknown[identityOf(t)] = t.Amount
			w.bankNet = w.bankNet.Add(t.Amount)
		case r < 6 && len(returnableCredits) > 0: // a return of an earlier credit
			k := rng.IntN(len(returnableCredits))
			orig := returnableCredits[k]
			returnableCredits = append(returnableCredits[:k], returnableCredits[k+1:]...)
			t.Direction, t.Amount, t.VirtualIBAN = recon.Debit, orig.t.Amount, orig.t.VirtualIBAN
			t.EndToEndID, t.ReturnReason = orig.t.EndToEndID, "AC04"
			w.credited[orig.loan] = w.credited[orig.loan].Sub(t.Amount)
			w.bankNet = w.bankNet.Sub(t.Amount)
		default:
			l := w.loans[rng.IntN(len(w.loans))]
			t.VirtualIBAN, t.Amount = l.VirtualIBAN, cents(10, 900)
			w.credited[l.LoanID] = w.credited[l.LoanID].Add(t.Amount)
			w.bankNet = w.bankNet.Add(t.Amount)
			if returnable[l.LoanID] {
				t.EndToEndID = fmt.Sprintf("E2E-%s-%d", run, i)
				returnableCredits = append(returnableCredits, credit{t, l.LoanID})
			}
		}
		w.distinct = append(w.distinct, t)
		w.sightings = append(w.sightings, sighting{t: t, file: t.Direction == recon.Credit && rng.IntN(10) == 0})
		if rng.IntN(6) == 0 { // the same money from another source
			again := t
			again.ID = "again-" + t.ID
			w.sightings = append(w.sightings, sighting{t: again, file: t.Direction == recon.Credit && rng.IntN(2) == 0})
		}
	}
	rng.Shuffle(len(w.sightings), func(i, j int) { w.sightings[i], w.sightings[j] = w.sightings[j], w.sightings[i] })
	return w
}

// expected is one loan as a clean delivery leaves it: credited money pays
// what is owed, the rest is overpaid.
func (w *workload) expected(loan string) (paid, outstanding, overpaid decimal.Decimal) {
	net, owed := w.credited[loan], w.owed[loan]
	paid = decimal.Min(net, owed)
	return paid, owed.Sub(paid), net.Sub(paid)
}

// matcherProc is one incarnation of `recon match`.
type matcherProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	base string
}

// healthy waits until the matcher answers /healthz with 200 (its loans
// table caught up, its stages started) or exits.
func (p *matcherProc) healthy(limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return false
		default:
		}
		if resp, err := http.Get(p.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func loopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// TestIntegrationMatcherKilled runs `recon ingest` and `recon match` as
// separate processes on real Kafka, publishes a workload while SIGKILLing
// the matcher 1-3 s (seeded) after each incarnation is healthy and
// restarting it at once with the same --instance, then checks against Kafka itself (read committed) and an
// independent model of the workload that nothing was lost and nothing
// doubled: one terminal decision per identity, one routed record per
// identity, no journal entry twice, every entry balanced, the bank account
// moved by exactly the distinct transactions, every loan and the suspense
// queue as one clean delivery leaves them, and `recon ledger verify` passes.
func TestIntegrationMatcherKilled(t *testing.T) {
	brokers := kafkaOnly(t)
	nTxns, nLoans := 20000, 400
	if testing.Short() {
		nTxns, nLoans = 3000, 100
	}
	if v, err := strconv.Atoi(os.Getenv("RECON_KILL_TXNS")); err == nil && v > 0 {
		nTxns = v
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("RECON_KILL_SEED"), 10, 64); err == nil {
		seed = v
	}
	run := fmt.Sprintf("%09d", seed%1_000_000_000)
	t.Logf("seed %d (RECON_KILL_SEED to replay), run %s, %d transactions, %d loans", seed, run, nTxns, nLoans)
	rng := rand.New(rand.NewPCG(seed, 7))
	w := buildWorkload(rng, run, nLoans, nTxns)
	bin := reconBinary(t)
	logDir := t.TempDir()

	in := startRecon(t, "ingest", "--brokers", brokers, "--instance", "ki-"+run, "--data-dir", t.TempDir())
	loansJSON, _ := json.Marshal(w.loans)
	in.post("/v1/loans", string(loansJSON))

	// the matcher, killed and restarted
	var mu sync.Mutex
	var cur *matcherProc
	incarnations := 0
	startMatcher := func() *matcherProc {
		mu.Lock()
		defer mu.Unlock()
		incarnations++
		logf, err := os.Create(filepath.Join(logDir, fmt.Sprintf("match-%03d.log", incarnations)))
		if err != nil {
			t.Error(err)
			return nil
		}
		addr, err := loopbackAddr()
		if err != nil {
			logf.Close()
			t.Error(err)
			return nil
		}
		cmd := exec.Command(bin, "match", "--brokers", brokers, "--instance", "e2e", "--http", addr)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			t.Error(err)
			return nil
		}
		p := &matcherProc{cmd: cmd, done: make(chan struct{}), base: "http://" + addr}
		go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
		cur = p
		return p
	}
	t.Cleanup(func() {
		mu.Lock()
		p := cur
		mu.Unlock()
		if p != nil {
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
	})
	started := time.Now()
	p := startMatcher()
	if p == nil {
		t.FailNow()
	}

	// the killer: SIGKILL every 1-3 s (seeded) and restart at once with the
	// same --instance, until everything is published and at least 10 kills
	published := make(chan struct{})
	killsDone := make(chan int, 1)
	go func() {
		kills := 0
		krng := rand.New(rand.NewPCG(seed, 11))
		publishing := true
		next := func() <-chan time.Time { // 1-3 s after the incarnation is healthy
			mu.Lock()
			q := cur
			mu.Unlock()
			q.healthy(60 * time.Second)
			return time.After(time.Duration(1000+krng.IntN(2000)) * time.Millisecond)
		}
		timer := next()
		for kills < 60 && (publishing || kills < 10) {
			select {
			case <-published:
				publishing = false
				published = nil
			case <-timer:
				mu.Lock()
				q := cur
				mu.Unlock()
				_ = q.cmd.Process.Signal(syscall.SIGKILL)
				<-q.done
				kills++
				if startMatcher() == nil {
					killsDone <- kills
					return
				}
				timer = next()
			}
		}
		killsDone <- kills
	}()

	// publish every sighting: API batches and camt.053 files, in order
	pubStart := time.Now()
	var batch []recon.BankTransaction
	var file []camtEntry
	files := 0
	flush := func() {
		if len(batch) > 0 {
			body, _ := json.Marshal(batch)
			in.post("/v1/bank/transactions", string(body))
			batch = batch[:0]
		}
		if len(file) > 0 {
			files++
			doc := camt053(fmt.Sprintf("%s-f%d", run, files), w.acct, file)
			resp, err := http.Post(in.base+"/v1/bank/files?name=kill.xml", "application/xml", strings.NewReader(doc))
			if err != nil || resp.StatusCode != http.StatusAccepted {
				t.Fatalf("POST file %d: %v %v", files, err, resp)
			}
			resp.Body.Close()
			file = file[:0]
		}
	}
	for _, s := range w.sightings {
		if s.file {
			file = append(file, camtEntry{ref: s.t.BankReference, amount: s.t.Amount.StringFixed(2), vIBAN: s.t.VirtualIBAN, e2e: s.t.EndToEndID})
		} else {
			batch = append(batch, s.t)
		}
		if len(batch) >= 250 || len(file) >= 50 {
			flush()
		}
	}
	flush()
	pubTime := time.Since(pubStart)
	close(published)
	t.Logf("published %d sightings of %d transactions (%d camt.053 files) in %s", len(w.sightings), len(w.distinct), files, pubTime.Round(time.Millisecond))

	kc := bus.DefaultConfig()
	kc.Brokers = strings.Split(brokers, ",")
	ids := map[string]bool{}
	for _, d := range w.distinct {
		ids[identityOf(d)] = true
	}
	ctx := context.Background()

	kills := <-killsDone
	killPhase := time.Since(started)
	decidedDuringKills := len(readDecisions(t, kc, ids))
	t.Logf("kill phase: %d SIGKILLs in %s, %d incarnations; %d decisions committed meanwhile (%.0f/s)",
		kills, killPhase.Round(time.Millisecond), incarnations, decidedDuringKills, float64(decidedDuringKills)/killPhase.Seconds())

	// then let the last incarnation finish
	eventually(t, 10*time.Minute, "loans and suspense as one clean delivery leaves them", func() (bool, string) {
		if bad := checkLoans(in, w, 3); len(bad) > 0 {
			return false, strings.Join(bad, "; ")
		}
		return true, ""
	})
	eventually(t, 2*time.Minute, "every sighting decided", func() (bool, string) {
		d := readDecisions(t, kc, ids)
		return len(d) >= len(w.sightings), fmt.Sprintf("%d of %d sightings decided", len(d), len(w.sightings))
	})
	total := time.Since(started)
	t.Logf("all %d sightings decided %s after the first matcher started (%.0f sightings/s overall)",
		len(w.sightings), total.Round(time.Millisecond), float64(len(w.sightings))/total.Seconds())

	// independent checks on Kafka, read committed
	sightings := map[string]int{}
	replayAll(t, kc, schemas.TopicBankTransactions, func(r *kgo.Record) {
		var bt struct {
			ID string `json:"id"`
		}
		// keyed by account (recon.PartitionKey): the identity is the value's id
		if json.Unmarshal(r.Value, &bt) == nil && ids[bt.ID] {
			sightings[bt.ID]++
		}
	})
	decisions := readDecisions(t, kc, ids)
	terminal, dups, postingKey := map[string]int{}, map[string]int{}, 0
	for _, d := range decisions {
		if d.Outcome == recon.Duplicate {
			dups[d.TransactionID]++
			if d.Rule == "posting-key" {
				postingKey++
			}
		} else {
			terminal[d.TransactionID]++
		}
	}
	routed := map[string]int{}
	replayAll(t, kc, schemas.TopicRouted, func(r *kgo.Record) {
		var rt matcher.Routed
		if json.Unmarshal(r.Value, &rt) == nil && rt.Kind == matcher.KindMatch && ids[rt.Transaction.ID] {
			routed[rt.Transaction.ID]++
		}
	})
	bad := 0
	report := func(format string, args ...any) {
		if bad++; bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	for id := range ids {
		if terminal[id] != 1 || dups[id] != sightings[id]-1 || routed[id] != 1 {
			report("identity %s: %d sightings, %d terminal decisions, %d duplicates, routed %d times; want 1, %d, 1",
				id, sightings[id], terminal[id], dups[id], routed[id], sightings[id]-1)
		}
	}
	entries := map[string]int{}
	bankPostings := decimal.Zero
	committedJournal := 0
	replayAll(t, kc, schemas.TopicLedgerEntries, func(r *kgo.Record) {
		var e recon.Entry
		if err := json.Unmarshal(r.Value, &e); err != nil {
			report("journal %s: %v", bus.Where(r), err)
			return
		}
		if !ids[e.TransactionID] {
			return
		}
		committedJournal++
		entries[e.ID]++
		if err := e.Balanced(); err != nil {
			report("journal %s: %v", bus.Where(r), err)
		}
		for _, p := range e.Postings {
			if p.Account == "bank:"+w.acct {
				if p.Side == recon.DebitSide {
					bankPostings = bankPostings.Add(p.Amount)
				} else {
					bankPostings = bankPostings.Sub(p.Amount)
				}
			}
		}
	})
	for id, n := range entries {
		if n != 1 {
			report("journal entry %s written %d times", id, n)
		}
	}
	if !bankPostings.Equal(w.bankNet) {
		t.Errorf("postings on bank:%s sum to %s, the distinct transactions to %s", w.acct, bankPostings, w.bankNet)
	}
	if bad := checkLoans(in, w, 20); len(bad) > 0 {
		t.Errorf("API disagrees with the model: %s", strings.Join(bad, "; "))
	}
	var bal struct {
		Balances []struct {
			Currency string
			Balance  decimal.Decimal
		}
	}
	in.get("/v1/accounts/bank:"+w.acct+"/balance", &bal)
	if len(bal.Balances) != 1 || !bal.Balances[0].Balance.Equal(w.bankNet) {
		t.Errorf("GET balance of bank:%s = %+v, want %s EUR", w.acct, bal, w.bankNet)
	}
	if out, code := runRecon(t, "ledger", "verify", "--brokers", brokers); code != 0 {
		t.Errorf("recon ledger verify: exit %d\n%s", code, out)
	}

	// evidence that the faults hit transactions in flight: records of this
	// run that a transaction wrote and then aborted (visible read uncommitted)
	aborted := 0
	for _, topic := range []string{schemas.TopicMatches, schemas.TopicRouted, schemas.TopicLedgerEntries} {
		aborted += abortedRecords(t, ctx, kc, topic, w.acct, ids)
	}
	restarted := 0
	logs, _ := filepath.Glob(filepath.Join(logDir, "match-*.log"))
	for _, l := range logs {
		if b, err := os.ReadFile(l); err == nil && strings.Contains(string(b), "recon serving") {
			restarted++
		}
	}
	t.Logf("faults: %d SIGKILLs, %d incarnations served (logs in %s), %d aborted records of this run on the matcher's output topics, %d duplicates caught only by the posting key",
		kills, restarted, logDir, aborted, postingKey)
	t.Logf("outcome: %d identities, %d sightings, %d journal entries, %d in suspense, bank net %s",
		len(ids), len(w.sightings), committedJournal, len(w.unknown), w.bankNet)
	if kills == 0 {
		t.Error("the matcher was never killed")
	}
}

// checkLoans compares every loan and the suspense queue with the model and
// returns up to limit differences.
func checkLoans(in *proc, w *workload, limit int) []string {
	var bad []string
	for _, l := range w.loans {
		var got struct{ Paid, Outstanding, Overpaid decimal.Decimal }
		if code := in.get("/v1/loans/"+l.LoanID, &got); code != http.StatusOK {
			bad = append(bad, fmt.Sprintf("%s: HTTP %d", l.LoanID, code))
		} else if paid, out, over := w.expected(l.LoanID); !got.Paid.Equal(paid) || !got.Outstanding.Equal(out) || !got.Overpaid.Equal(over) {
			bad = append(bad, fmt.Sprintf("%s: paid/outstanding/overpaid %s/%s/%s, want %s/%s/%s", l.LoanID, got.Paid, got.Outstanding, got.Overpaid, paid, out, over))
		}
		if len(bad) >= limit {
			return bad
		}
	}
	var susp struct {
		Items []struct {
			ID       string
			Amount   decimal.Decimal
			Evidence struct {
				AccountIBAN string `json:"account_iban"`
			}
		}
	}
	in.get("/v1/suspense?limit=10000&account="+url.QueryEscape(w.acct), &susp)
	got := map[string]decimal.Decimal{}
	for _, it := range susp.Items {
		if it.Evidence.AccountIBAN == w.acct {
			got[it.ID] = it.Amount
		}
	}
	if len(got) != len(w.unknown) {
		bad = append(bad, fmt.Sprintf("%d suspense items, want %d", len(got), len(w.unknown)))
	}
	for id, a := range w.unknown {
		if g, ok := got[id]; !ok || !g.Equal(a) {
			bad = append(bad, fmt.Sprintf("suspense item %s: %s, want %s", id, g, a))
			if len(bad) >= limit {
				break
			}
		}
	}
	return bad
}

func allPartitions(kc bus.Config, t *testing.T, topic string) []int32 {
	t.Helper()
	cl, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(context.Background(), topic)
	if err != nil || td[topic].Err != nil {
		t.Fatalf("describe %s: %v %v", topic, err, td[topic].Err)
	}
	return td[topic].Partitions.Numbers()
}

// replayAll reads every committed record of topic.
func replayAll(t *testing.T, kc bus.Config, topic string, fn func(*kgo.Record)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := bus.Replay(ctx, kc, topic, allPartitions(kc, t, topic), func(r *kgo.Record) error { fn(r); return nil }); err != nil {
		t.Fatalf("read %s: %v", topic, err)
	}
}

func readDecisions(t *testing.T, kc bus.Config, ids map[string]bool) []recon.Decision {
	var out []recon.Decision
	replayAll(t, kc, schemas.TopicMatches, func(r *kgo.Record) {
		if !ids[string(r.Key)] {
			return
		}
		var d recon.Decision
		if err := json.Unmarshal(r.Value, &d); err == nil {
			out = append(out, d)
		}
	})
	return out
}

// abortedRecords counts this run's records of topic that are visible read
// uncommitted but not read committed: written by a transaction that was
// then aborted (here: by a kill, and fenced by the next incarnation).
func abortedRecords(t *testing.T, ctx context.Context, kc bus.Config, topic, acct string, ids map[string]bool) int {
	t.Helper()
	mine := func(r *kgo.Record) bool {
		return ids[string(r.Key)] || strings.Contains(string(r.Value), acct) || strings.Contains(string(r.Value), `"K`+acct[4:13])
	}
	type at struct {
		p int32
		o int64
	}
	committed := map[at]bool{}
	replayAll(t, kc, topic, func(r *kgo.Record) {
		if mine(r) {
			committed[at{r.Partition, r.Offset}] = true
		}
	})
	parts := allPartitions(kc, t, topic)
	cl, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	cl.Close()
	if err != nil {
		t.Fatal(err)
	}
	offsets := map[int32]kgo.Offset{}
	want := map[int32]int64{}
	for _, p := range parts {
		if o, ok := ends.Lookup(topic, p); ok && o.Offset > 0 {
			offsets[p] = kgo.NewOffset().AtStart()
			want[p] = o.Offset
		}
	}
	if len(want) == 0 {
		return 0
	}
	rc, err := kgo.NewClient(kc.Opts(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()),
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	n := 0
	for len(want) > 0 {
		fs := rc.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %s uncommitted: %v (left %v)", topic, ctx.Err(), want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() && mine(r) && !committed[at{r.Partition, r.Offset}] {
				n++
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		})
	}
	return n
}
