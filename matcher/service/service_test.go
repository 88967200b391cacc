package service_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/bus/bustest"
	"github.com/reconhq/recon/ingest"
	"github.com/reconhq/recon/matcher"
	"github.com/reconhq/recon/matcher/service"
	"github.com/reconhq/recon/schemas"
)

const acct = "FR7630001007941234567890185"

// noLeaks checks, after every cleanup of t has run, that no goroutine
// started by the test outlives it.
func noLeaks(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, before) })
}

// env is one in-process Kafka-protocol broker with recon's topics.
type env struct {
	t  *testing.T
	kc bus.Config
	cl *kgo.Client
	in *ingest.Ingest
	// dataDir holds the matcher's local state ("": in memory); log, when
	// set, receives the matcher's log.
	dataDir string
	log     io.Writer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	kc, cl := bustest.Cluster(t, 3)
	return &env{t: t, kc: kc, cl: cl, in: ingest.New(cl, kc, ingest.NewMetrics(nil))}
}

// start runs a matcher Service as instance; the returned stop cancels it
// and waits until Run has returned (as a crash would, the transaction in
// flight, if any, is left to be fenced by the next incarnation).
func (e *env) start(instance string, maxPoll int) (stop func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := e.log
	if w == nil {
		w = io.Discard
	}
	svc, err := service.New(service.Config{Kafka: e.kc, Instance: instance, MaxPollRecords: maxPoll, DataDir: e.dataDir,
		Log: slog.New(slog.NewTextHandler(w, nil))}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				e.t.Errorf("matcher %s: Run: %v", instance, err)
			}
		case <-time.After(60 * time.Second):
			e.t.Fatalf("matcher %s: Run did not return within 60s of cancel", instance)
		}
	}
	e.t.Cleanup(stop)
	return stop
}

func (e *env) loans(loans ...recon.Loan) {
	e.t.Helper()
	if err := e.in.Loans(context.Background(), loans); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) publish(txns []recon.BankTransaction) {
	e.t.Helper()
	for start := 0; start < len(txns); start += 500 {
		if _, err := e.in.Transactions(context.Background(), "api", txns[start:min(start+500, len(txns))]); err != nil {
			e.t.Fatal(err)
		}
	}
}

// read returns every committed record of topic.
func (e *env) read(topic string) []*kgo.Record {
	e.t.Helper()
	parts := make([]int32, e.kc.Partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := bus.Replay(ctx, e.kc, topic, parts, func(r *kgo.Record) error { out = append(out, r); return nil }); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// outcome is everything the matcher committed, summarised.
type outcome struct {
	sightings int                              // bank transaction records
	decisions map[string]map[recon.Outcome]int // per identity
	entries   map[string]int                   // entry id -> records
	routed    map[string]int                   // identity -> routed match records
	balance   map[string]decimal.Decimal       // account -> credits minus debits
	unbalance []string
}

func (e *env) outcome() outcome {
	o := outcome{decisions: map[string]map[recon.Outcome]int{}, entries: map[string]int{}, routed: map[string]int{}, balance: map[string]decimal.Decimal{}}
	o.sightings = len(e.read(schemas.TopicBankTransactions))
	for _, r := range e.read(schemas.TopicMatches) {
		var d recon.Decision
		if err := json.Unmarshal(r.Value, &d); err != nil {
			e.t.Fatal(err)
		}
		if o.decisions[d.TransactionID] == nil {
			o.decisions[d.TransactionID] = map[recon.Outcome]int{}
		}
		o.decisions[d.TransactionID][d.Outcome]++
	}
	for _, r := range e.read(schemas.TopicRouted) {
		var rt matcher.Routed
		if err := json.Unmarshal(r.Value, &rt); err != nil {
			e.t.Fatal(err)
		}
		if rt.Kind == matcher.KindMatch {
			o.routed[rt.Transaction.ID]++
		}
	}
	for _, r := range e.read(schemas.TopicLedgerEntries) {
		var en recon.Entry
		if err := json.Unmarshal(r.Value, &en); err != nil {
			e.t.Fatal(err)
		}
		o.entries[en.ID]++
		if err := en.Balanced(); err != nil {
			o.unbalance = append(o.unbalance, err.Error())
		}
		for _, p := range en.Postings {
			a := p.Amount
			if p.Side == recon.DebitSide {
				a = a.Neg()
			}
			o.balance[p.Account] = o.balance[p.Account].Add(a)
		}
	}
	return o
}

func (o outcome) decided() int {
	n := 0
	for _, byOutcome := range o.decisions {
		for _, c := range byOutcome {
			n += c
		}
	}
	return n
}

// paid is what a loan's receivables were credited.
func (o outcome) paid(loan string) decimal.Decimal {
	sum := decimal.Zero
	for _, part := range []string{"fees", "interest", "principal"} {
		sum = sum.Add(o.balance["loan:"+loan+":"+part])
	}
	return sum
}

// waitDecided waits until every sighting published so far has its decision.
func (e *env) waitDecided(limit time.Duration) outcome {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		o := e.outcome()
		if o.sightings > 0 && o.decided() >= o.sightings {
			return o
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d of %d sightings decided after %s", o.decided(), o.sightings, limit)
		}
		<-tick.C
	}
}

// checkExactlyOnce: one decision per sighting, exactly one of them not a
// duplicate per identity, no journal entry twice, every entry balanced.
func checkExactlyOnce(t *testing.T, o outcome, identities map[string]int) {
	t.Helper()
	if o.decided() != o.sightings {
		t.Errorf("%d decisions for %d sightings", o.decided(), o.sightings)
	}
	for id, n := range identities {
		d := o.decisions[id]
		terminal := 0
		for oc, c := range d {
			if oc != recon.Duplicate {
				terminal += c
			}
		}
		if terminal != 1 || d[recon.Duplicate] != n-1 {
			t.Errorf("identity %s seen %d times: decisions %v, want one terminal and %d duplicates", id, n, d, n-1)
		}
		if o.routed[id] != 1 { // deduplicated by the route stage, not only by the posting key
			t.Errorf("identity %s routed %d times, want once", id, o.routed[id])
		}
	}
	for id, n := range o.entries {
		if n != 1 {
			t.Errorf("journal entry %s written %d times", id, n)
		}
	}
	for _, u := range o.unbalance {
		t.Error(u)
	}
}

func loan(id, viban, principal string) recon.Loan {
	return recon.Loan{LoanID: id, VirtualIBAN: viban, Currency: "EUR", Principal: decimal.RequireFromString(principal)}
}

func credit(producerID, ref, viban, amount string) recon.BankTransaction {
	return recon.BankTransaction{ID: producerID, AccountIBAN: acct, VirtualIBAN: viban, Direction: recon.Credit,
		Amount: decimal.RequireFromString(amount), Currency: "EUR", BookingDate: "2026-11-27", BankReference: ref}
}

func vIBAN(i int) string { return recon.IBANFor("FR", fmt.Sprintf("%023d", 1_000_000+i)) }

func identity(t recon.BankTransaction) string {
	t.Direction = recon.Credit
	return recon.IdentityKey(t)
}

func TestServiceMatchesWorkload(t *testing.T) {
	noLeaks(t)
	e := newEnv(t)
	e.loans(loan("L-1", vIBAN(1), "1000.00"), loan("L-2", vIBAN(2), "1000.00"))
	stop := e.start("m-1", 0)
	defer stop()
	txns := []recon.BankTransaction{
		credit("p1", "B1", vIBAN(1), "300.00"),
		credit("p2", "B2", vIBAN(1), "800.00"), // overpays L-1 by 100
		credit("p3", "B3", vIBAN(2), "500.00"),
		credit("p4", "B4", vIBAN(99), "700.00"), // no such loan: suspense
		credit("p1-webhook", "B1", vIBAN(1), "300.00"),
		credit("p3-camt", "B3", vIBAN(2), "500.00"),
	}
	e.publish(txns)
	o := e.waitDecided(60 * time.Second)
	ids := map[string]int{}
	for _, tx := range txns {
		ids[identity(tx)]++
	}
	checkExactlyOnce(t, o, ids)
	for _, c := range []struct {
		account string
		want    string
	}{
		{"bank:" + acct, "-2300"},     // debited by the four distinct credits
		{"loan:L-1:credit", "100"},    // the overpayment
		{"suspense", "700"},           // the unknown virtual IBAN
		{"loan:L-2:principal", "500"}, // duplicates not counted
	} {
		if got := o.balance[c.account]; !got.Equal(decimal.RequireFromString(c.want)) {
			t.Errorf("%s: credits minus debits %s, want %s", c.account, got, c.want)
		}
	}
	if got := o.paid("L-1"); !got.Equal(decimal.RequireFromString("1000")) {
		t.Errorf("L-1 paid %s, want 1000", got)
	}
	if n := o.decisions[identity(txns[3])][recon.Suspense]; n != 1 {
		t.Errorf("unknown virtual IBAN: %d suspense decisions, want 1", n)
	}
	stop()
}

// TestServiceRestartResumesWithoutDoublePosting stops the matcher while it
// is working through a workload (its transaction in flight is left open,
// as after a crash), starts a new Service with the same instance on the
// same cluster, delivers everything a second time, and checks that every
// identity was decided once and every loan credited once.
func TestServiceRestartResumesWithoutDoublePosting(t *testing.T) {
	noLeaks(t)
	e := newEnv(t)
	const nLoans, nTxns = 20, 1500
	var loans []recon.Loan
	for i := range nLoans {
		loans = append(loans, loan(fmt.Sprintf("L-%d", i), vIBAN(i), "100000.00"))
	}
	e.loans(loans...)
	var txns []recon.BankTransaction
	want := map[string]decimal.Decimal{}
	for i := range nTxns {
		l := i % nLoans
		amt := fmt.Sprintf("%d.%02d", 1+i%97, i%100)
		txns = append(txns, credit(fmt.Sprintf("p-%d", i), fmt.Sprintf("REF-%d", i), vIBAN(l), amt))
		want[loans[l].LoanID] = want[loans[l].LoanID].Add(decimal.RequireFromString(amt))
	}
	stop := e.start("m-restart", 25) // small transactions: many of them
	e.publish(txns)
	// stop once part of the work is committed
	deadline := time.Now().Add(60 * time.Second)
	for {
		o := e.outcome()
		if d := o.decided(); d > 0 && d < o.sightings {
			t.Logf("stopping the first incarnation after %d of %d decisions", d, o.sightings)
			break
		} else if d >= o.sightings {
			t.Logf("the first incarnation finished before it could be stopped: the restart only sees redeliveries")
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no decision within 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()

	stop = e.start("m-restart", 25)
	defer stop()
	redelivered := make([]recon.BankTransaction, len(txns))
	for i, tx := range txns {
		tx.ID = "again-" + tx.ID // another source, same bank reference
		redelivered[len(txns)-1-i] = tx
	}
	e.publish(redelivered)
	o := e.waitDecided(120 * time.Second)
	ids := map[string]int{}
	for _, tx := range txns {
		ids[identity(tx)] += 2
	}
	checkExactlyOnce(t, o, ids)
	for id, w := range want {
		if got := o.paid(id); !got.Equal(w) {
			t.Errorf("loan %s paid %s, want %s", id, got, w)
		}
	}
	total := decimal.Zero
	for _, w := range want {
		total = total.Add(w)
	}
	if got := o.balance["bank:"+acct].Neg(); !got.Equal(total) {
		t.Errorf("bank account debited %s, want %s (each transaction once)", got, total)
	}
	if n := len(o.entries); n != nTxns {
		t.Errorf("%d journal entries, want %d", n, nTxns)
	}
	if bad := strings.Join(o.unbalance, "; "); bad != "" {
		t.Error(bad)
	}
	stop()
}
