package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/schemas"
)

// Scenario is one fault of docs/RELIABILITY.md.
type Scenario struct {
	Num  string
	Name string
	Run  func(e *Env) Row
}

// Scenarios in the order they run (the tampered chain last: it breaks the
// journal for good).
var Scenarios = []Scenario{
	{"1", "baseline", baseline},
	{"2", "matcher SIGKILL every 1-3 s", matcherKilled},
	{"3", "rebalance storm 1-3-2-1", rebalanceStorm},
	{"4", "zombie matcher SIGSTOP/SIGCONT", zombie},
	{"5", "broker SIGKILL+restart, SIGSTOP", brokerFaults},
	{"6", "network cut matcher-broker", networkCut},
	{"7", "ClickHouse down, then up", clickhouseDown},
	{"7b", "ClickHouse slow, answers lost", clickhouseSlowLost},
	{"8", "alert receiver down / misbehaving", alertReceiver},
	{"9", "SSRF alert targets", ssrf},
	{"10", "forged/altered/replayed/oversized webhooks", webhooks},
	{"11", "ingest crash between Kafka ack and answer", ingestCrash},
	{"12", "XML hazards", xmlHazards},
	{"13", "duplicate and overlapping statements", statements},
	{"14", "poison events", poison},
	{"15", "tampered hash chain", tamper},
}

func notDone(why string) func(*Env) Row {
	return func(*Env) Row { return Row{Result: "NOT DONE: " + why} }
}

// verify waits (bounded) until the API agrees with the model, then until
// the full check passes; recovery is measured from faultEnd.
func (e *Env) verify(w *Workload, marker string, wantDead int, faultEnd time.Time) (Report, time.Duration) {
	c := e.Checker()
	_, _ = c.Settled(w, e.Tier.Settle)
	var r Report
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r = c.Check(e.ctx, w, marker, wantDead)
		if len(r.Violations) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	return r, time.Since(faultEnd)
}

func rowOf(r Report, evidence string, faultProven bool, rec time.Duration, events int) Row {
	row := Row{Evidence: evidence, Recovery: rec, Detail: r.Violations, Events: events}
	summary := fmt.Sprintf("; %d ids: %d posted, %d suspense, %d dead letters; CH %d rows (%d raw)", r.Identities, r.Posted, r.Suspense, r.DeadLetters, r.CHRows, r.CHRawRows)
	row.Evidence += summary
	switch {
	case len(r.Violations) > 0:
		row.Result = "FAIL: safety violated"
	case !faultProven:
		row.Result = "NO-FAULT: the fault could not be shown to have happened"
	default:
		row.Result = "PASS"
	}
	return row
}

func failRow(err error) Row { return Row{Result: "FAIL: " + err.Error()} }

func baseline(e *Env) Row {
	w := e.NewRun(e.Tier.Txns)
	start := time.Now()
	if err := Publish(e.ingestBase, w, time.Minute); err != nil {
		return failRow(err)
	}
	pub := time.Since(start)
	r, _ := e.verify(w, "", 0, start)
	total := time.Since(start)
	return rowOf(r, fmt.Sprintf("%d sightings published in %s, all checked after %s (%.0f/s end to end)",
		len(w.Sightings), pub.Round(time.Millisecond), total.Round(time.Millisecond), float64(len(w.Sightings))/total.Seconds()), true, 0, len(w.Sightings))
}

// mineOf matches a run's records on the matcher's output topics.
func mineOf(w *Workload) func(*kgo.Record) bool {
	ids := w.IDs()
	return func(r *kgo.Record) bool {
		return ids[string(r.Key)] || strings.Contains(string(r.Value), w.Acct)
	}
}

func (e *Env) aborted(w *Workload) int {
	c, n := e.Checker(), 0
	for _, topic := range []string{schemas.TopicMatches, schemas.TopicRouted, schemas.TopicLedgerEntries} {
		k, err := c.AbortedRecords(e.ctx, topic, mineOf(w))
		if err != nil {
			e.Logf("aborted records of %s: %v", topic, err)
		}
		n += k
	}
	return n
}

func matcherKilled(e *Env) Row {
	w := e.NewRun(e.Tier.Txns)
	// a steady stream over the kill phase, so that kills land on
	// transactions in flight
	published := make(chan error, 1)
	go func() {
		published <- PublishPaced(e.ingestBase, w, 3*time.Minute, time.Duration(e.Tier.Kills)*3*time.Second)
	}()
	rng := rand.New(rand.NewPCG(e.Seed, 11))
	kills, done := 0, false
	for !done || kills < e.Tier.Kills {
		// 1-3 s after each start (the fault schedule itself), healthy or not
		select {
		case err := <-published:
			if err != nil {
				return failRow(err)
			}
			done = true
			continue
		case <-time.After(time.Duration(1000+rng.IntN(2000)) * time.Millisecond):
		}
		if e.Matcher.Exited() {
			return failRow(fmt.Errorf("matcher exited by itself:\n%s", e.Matcher.Tail(10)))
		}
		if err := e.restartMatcher(); err != nil {
			return failRow(err)
		}
		kills++
	}
	faultEnd := time.Now()
	r, rec := e.verify(w, "", 0, faultEnd)
	ab := e.aborted(w)
	return rowOf(r, fmt.Sprintf("%d SIGKILLs while %d sightings streamed in; %d aborted records of the run on the matcher's topics", kills, len(w.Sightings), ab), kills > 0 && ab > 0, rec, len(w.Sightings))
}

func zombie(e *Env) Row {
	w := e.NewRun(e.Tier.Txns / 2)
	second, err := e.StartMatcher("m2")
	if err != nil {
		return failRow(err)
	}
	defer second.Stop()
	published := make(chan error, 1)
	go func() { published <- Publish(e.ingestBase, w, 3*time.Minute) }()
	time.Sleep(time.Second) // let both take work before the stop (fault timing, not a wait for a result)
	abortedBefore := e.Matcher.Metric("recon_matcher_transactions_aborted_total")
	e.Matcher.Signal(syscall.SIGSTOP)
	stopped := time.Now()
	// past the 10 s session timeout: the group gives its partitions to m2
	time.Sleep(10*time.Second + 2*e.Tier.Outage)
	members, err := e.groupInstances("recon-matcher-route", "recon-matcher-post")
	expelled := err == nil && !strings.Contains(strings.Join(members, " "), "-m1")
	contAt := e.Matcher.LogSize()
	e.Matcher.Signal(syscall.SIGCONT)
	faultEnd := time.Now()
	if err := <-published; err != nil {
		return failRow(err)
	}
	r, rec := e.verify(w, "", 0, faultEnd)
	// the evidence: once resumed, m1 learns it was expelled or fenced (its
	// next heartbeat, poll or commit), which can come after the check above
	fencing := []string{"FENCED", "fenced", "UNKNOWN_MEMBER_ID", "ILLEGAL_GENERATION", "INVALID_PRODUCER_EPOCH"}
	var first string
	var abortedDelta float64
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		first = e.Matcher.LogFirstSince(contAt, "matcher stage restarts", fencing...) // the stages, not the tracker beside them
		abortedDelta = e.Matcher.Metric("recon_matcher_transactions_aborted_total") - abortedBefore
		if first != "" || abortedDelta > 0 || time.Now().After(deadline) {
			break
		}
	}
	ev := fmt.Sprintf("m1 stopped %s (session timeout 10 s); group members while stopped %v (err %v); after SIGCONT it aborted %.0f transactions and logged %q",
		faultEnd.Sub(stopped).Round(time.Second), members, err, abortedDelta, trunc(first, 140))
	return rowOf(r, ev, expelled && (abortedDelta > 0 || first != ""), rec, len(w.Sightings))
}

func brokerFaults(e *Env) Row {
	w := e.NewRun(e.Tier.Txns / 2)
	published := make(chan error, 1)
	go func() { published <- Publish(e.ingestBase, w, e.Tier.Settle) }()
	time.Sleep(time.Second)
	old, err := e.Svc.SignalKafka(syscall.SIGKILL)
	if err != nil {
		return failRow(err)
	}
	killed := time.Now()
	if err := e.Svc.StartKafka(); err != nil {
		return failRow(err)
	}
	pid, _ := e.Svc.KafkaPID()
	restarted := time.Now()
	time.Sleep(2 * time.Second)
	if _, err := e.Svc.SignalKafka(syscall.SIGSTOP); err != nil {
		return failRow(err)
	}
	time.Sleep(2 * e.Tier.Outage)
	_, _ = e.Svc.SignalKafka(syscall.SIGCONT)
	faultEnd := time.Now()
	if err := <-published; err != nil {
		return failRow(err)
	}
	if err := e.exited(); err != nil { // fail now rather than wait for a settlement that cannot come
		return failRow(err)
	}
	r, rec := e.verify(w, "", 0, faultEnd)
	restarts := e.Matcher.Metric("recon_matcher_stage_restarts_total")
	ev := fmt.Sprintf("broker pid %d SIGKILLed, restarted as %d (ready %s later); SIGSTOP %s; matcher stage restarts %.0f",
		old, pid, restarted.Sub(killed).Round(100*time.Millisecond), 2*e.Tier.Outage, restarts)
	return rowOf(r, ev, pid != old, rec, len(w.Sightings))
}

func clickhouseDown(e *Env) Row {
	if err := e.Svc.StopClickHouse(); err != nil {
		return failRow(err)
	}
	w := e.NewRun(e.Tier.Txns / 2)
	if err := Publish(e.ingestBase, w, time.Minute); err != nil {
		_ = e.Svc.StartClickHouse()
		return failRow(err)
	}
	// the ledger is unaffected while ClickHouse is down
	c := e.Checker()
	_, settleErr := c.Settled(w, e.Tier.Settle)
	time.Sleep(e.Tier.Outage)
	errs := e.Sink.Metric("recon_sink_insert_errors_total")
	if err := e.Svc.StartClickHouse(); err != nil {
		return failRow(err)
	}
	faultEnd := time.Now()
	r, rec := e.verify(w, "", 0, faultEnd)
	if settleErr != nil {
		r.Violations = append(r.Violations, "ledger while ClickHouse was down: "+settleErr.Error())
	}
	ev := fmt.Sprintf("ClickHouse stopped for the whole publish; ledger settled meanwhile: %v; sink insert errors %.0f", settleErr == nil, errs)
	return rowOf(r, ev, errs > 0, rec, len(w.Sightings))
}

// groupInstances lists the static instance ids of the groups' members.
func (e *Env) groupInstances(groups ...string) ([]string, error) {
	cl, err := e.rawProducer()
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := syncCtx(e)
	defer cancel()
	described, err := kadm.NewClient(cl).DescribeGroups(ctx, groups...)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, g := range described.Sorted() {
		if g.Err != nil {
			return nil, g.Err
		}
		for _, m := range g.Members {
			if m.InstanceID != nil {
				out = append(out, *m.InstanceID)
			}
		}
	}
	return out, nil
}

// rawProducer is a plain (non-transactional) client on the chaos broker.
func (e *Env) rawProducer() (*kgo.Client, error) {
	c := e.Checker()
	return kgo.NewClient(c.kc().Opts()...)
}

// syncCtx is a bounded context for one produce.
func syncCtx(e *Env) (context.Context, context.CancelFunc) {
	return context.WithTimeout(e.ctx, 30*time.Second)
}
