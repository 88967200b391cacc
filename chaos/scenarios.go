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
	{"16", "ingest killed mid-file", killedMidFile},
	{"17", "record too large in a file", recordTooLargeInFile},
	{"18", "matcher SIGKILL, its local store lost", storeLost},
	{"19", "matcher SIGKILL, its local store stale or cut", storeStale},
	{"15", "tampered hash chain", tamper},
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

// rowOf is a scenario's row; noFault says why the fault could not be shown
// to have happened, "" when it was.
func rowOf(r Report, evidence, noFault string, rec time.Duration, events int) Row {
	row := Row{Evidence: evidence, Recovery: rec, Detail: r.Violations, Events: events}
	summary := fmt.Sprintf("; %d ids: %d posted, %d suspense, %d dead letters; CH %d rows (%d raw)", r.Identities, r.Posted, r.Suspense, r.DeadLetters, r.CHRows, r.CHRawRows)
	row.Evidence += summary
	switch {
	case len(r.Violations) > 0:
		row.Result = "FAIL: safety violated"
	case noFault != "":
		row.Result = "NO-FAULT: " + noFault
	default:
		row.Result = "PASS"
	}
	return row
}

func failRow(err error) Row { return Row{Result: "FAIL: " + err.Error()} }

// unless is why when the fault was not shown, "" when it was.
func unless(shown bool, why string) string {
	if shown {
		return ""
	}
	return why
}

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
		len(w.Sightings), pub.Round(time.Millisecond), total.Round(time.Millisecond), float64(len(w.Sightings))/total.Seconds()), "", 0, len(w.Sightings))
}

// mineOf matches the runs' records on the matcher's output topics.
func mineOf(ws ...*Workload) func(*kgo.Record) bool {
	ids := map[string]bool{}
	var accts []string
	for _, w := range ws {
		for id := range w.IDs() {
			ids[id] = true
		}
		accts = append(accts, w.Acct)
	}
	return func(r *kgo.Record) bool {
		if ids[string(r.Key)] {
			return true
		}
		for _, a := range accts {
			if strings.Contains(string(r.Value), a) {
				return true
			}
		}
		return false
	}
}

// aborted counts the runs' records on the matcher's output topics that
// were written by a transaction then aborted.
func (e *Env) aborted(ws ...*Workload) int {
	c, n, mine := e.Checker(), 0, mineOf(ws...)
	for _, topic := range outputs {
		k, err := c.AbortedRecords(e.ctx, topic, mine)
		if err != nil {
			e.Logf("aborted records of %s: %v", topic, err)
		}
		n += k
	}
	return n
}

// matcherKilled SIGKILLs the matcher, restarts it at once, and does it
// again 1-3 s later, once the new one has restored and commits: each kill
// is timed on a transaction the broker sees open, after a random 0-500 ms,
// so that the kills land on transactions in flight and not on restores. It goes on
// (bounded: kills and time) until the run's aborted records show it.
func matcherKilled(e *Env) Row {
	limit := e.Tier.Settle // the kill phase's bound
	maxKills := 4 * e.Tier.Kills
	w := e.NewRun(e.Tier.Txns)
	start := time.Now()
	deadline := start.Add(limit)
	f := e.startFeed(w, e.Tier.Txns/4, time.Duration(e.Tier.Kills)*3*time.Second, 3*time.Minute, deadline)
	wt, err := e.newWatch()
	if err != nil {
		_, _ = f.end()
		return failRow(err)
	}
	defer wt.close()
	rng := rand.New(rand.NewPCG(e.Seed, 11))
	kills, onOpen, ab := 0, 0, 0
	var slowest time.Duration
	why := ""
	for {
		// the schedule: 1-3 s after each start, and then only once the
		// matcher restored and commits
		time.Sleep(time.Duration(1000+rng.IntN(2000)) * time.Millisecond)
		took, notReady, err := ready(e.Matcher, 0, min(2*time.Minute, time.Until(deadline)+10*time.Second))
		if err != nil {
			_, _ = f.end()
			return failRow(err)
		}
		if notReady != "" {
			why = fmt.Sprintf("machine too slow: after restart %d, %s", kills, notReady)
			break
		}
		slowest = max(slowest, took)
		if kills >= e.Tier.Kills && onOpen > 0 { // the new matcher's producer fenced the old one: its open transactions are aborted
			if ab = e.aborted(f.published()...); ab > 0 {
				break
			}
		}
		if kills >= maxKills || time.Now().After(deadline) {
			why = fmt.Sprintf("%d kills in %s (%d timed on a transaction the broker showed open), yet no aborted record of the run", kills, time.Since(start).Round(time.Second), onOpen)
			break
		}
		time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
		if wt.inFlight(e.ctx, "m1", 10*time.Second) {
			onOpen++
		}
		if err := e.restartMatcher(); err != nil {
			_, _ = f.end()
			return failRow(err)
		}
		kills++
	}
	faultEnd := time.Now()
	ws, err := f.end()
	if err != nil {
		return failRow(err)
	}
	r, rec := e.verifyAll(ws, faultEnd)
	if ab == 0 { // a last look: the last kill's abort lands once its successor starts
		if ab = e.aborted(ws...); ab > 0 {
			why = ""
		}
	}
	ev := fmt.Sprintf("%d SIGKILLs in %s, %d timed on a transaction open on the broker (the restarted matcher ready and committing at most %s past its 1-3 s pause), while %d sightings of %d runs streamed in; %d aborted records of the runs on the matcher's topics",
		kills, faultEnd.Sub(start).Round(time.Second), onOpen, slowest.Round(100*time.Millisecond), sightings(ws), len(ws), ab)
	return rowOf(r, ev, why, rec, sightings(ws))
}

// zombie SIGSTOPs m1 while the broker shows one of its transactions open,
// past the session timeout, so that m2 takes its partitions; once resumed,
// m1 must learn it was fenced (a transaction aborted, or a fencing error
// in its stages). A stop that shows neither is tried again (bounded).
func zombie(e *Env) Row {
	w := e.NewRun(e.Tier.Txns / 2)
	second, err := e.StartMatcher("m2")
	if err != nil {
		return failRow(err)
	}
	defer second.Stop()
	start := time.Now()
	f := e.startFeed(w, e.Tier.Txns/8, 30*time.Second, 3*time.Minute, start.Add(e.Tier.Settle))
	wt, err := e.newWatch()
	if err != nil {
		_, _ = f.end()
		return failRow(err)
	}
	defer wt.close()
	var ev []string
	why := ""
	faultEnd := time.Now()
	for attempt := 1; attempt <= 3; attempt++ {
		// m1 restored, committing, with a transaction open when stopped
		_, notReady, err := ready(e.Matcher, committed(e.Matcher), 2*time.Minute)
		if err != nil {
			_, _ = f.end()
			return failRow(err)
		}
		if notReady != "" {
			why = fmt.Sprintf("before stop %d: %s", attempt, notReady)
			break
		}
		open := wt.inFlight(e.ctx, "m1", 30*time.Second)
		abortedBefore := e.Matcher.Metric("recon_matcher_transactions_aborted_total")
		e.Matcher.Signal(syscall.SIGSTOP)
		stopped := time.Now()
		// past the 10 s session timeout: the group gives its partitions to m2
		time.Sleep(10*time.Second + 2*e.Tier.Outage)
		members, err := e.groupInstances("recon-matcher-route", "recon-matcher-post")
		expelled := err == nil && !strings.Contains(strings.Join(members, " "), "-m1")
		contAt := e.Matcher.LogSize()
		e.Matcher.Signal(syscall.SIGCONT)
		faultEnd = time.Now()
		// once resumed, m1 learns it was expelled or fenced (its next
		// heartbeat, poll or commit)
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
		ev = append(ev, fmt.Sprintf("stop %d: m1 stopped %s (session timeout 10 s) with a transaction open: %v; group members while stopped %v (err %v); after SIGCONT it aborted %.0f transactions and logged %q",
			attempt, faultEnd.Sub(stopped).Round(time.Second), open, members, err, abortedDelta, trunc(first, 140)))
		if expelled && (abortedDelta > 0 || first != "") {
			why = ""
			break
		}
		switch {
		case !expelled:
			why = fmt.Sprintf("m1 still a group member after %d stops past the session timeout", attempt)
		default:
			why = fmt.Sprintf("m1 expelled but not shown fenced after %d stops (no abort, no fencing error in 30 s)", attempt)
		}
	}
	ws, err := f.end()
	if err != nil {
		return failRow(err)
	}
	r, rec := e.verifyAll(ws, faultEnd)
	return rowOf(r, strings.Join(ev, "; "), why, rec, sightings(ws))
}

// brokerFaults SIGKILLs the broker while the broker shows a matcher
// transaction open, restarts it, and once the matcher commits again,
// SIGSTOPs it for twice the outage; input streams in all along.
func brokerFaults(e *Env) Row {
	w := e.NewRun(e.Tier.Txns / 2)
	f := e.startFeed(w, e.Tier.Txns/8, 30*time.Second, e.Tier.Settle, time.Now().Add(e.Tier.Settle))
	wt, err := e.newWatch()
	if err != nil {
		_, _ = f.end()
		return failRow(err)
	}
	defer wt.close()
	fail := func(err error) Row { _, _ = f.end(); return failRow(err) }
	_, notReady, err := ready(e.Matcher, committed(e.Matcher), 2*time.Minute)
	if err != nil {
		return fail(err)
	}
	open := notReady == "" && wt.inFlight(e.ctx, "m1", 30*time.Second)
	old, err := e.Svc.SignalKafka(syscall.SIGKILL)
	if err != nil {
		return fail(err)
	}
	killed := time.Now()
	if err := e.Svc.StartKafka(); err != nil {
		return fail(err)
	}
	pid, _ := e.Svc.KafkaPID()
	restarted := time.Now()
	// the pause lands on a pipeline that works again
	resumed, stalled, err := ready(e.Matcher, committed(e.Matcher), 2*time.Minute)
	if err != nil {
		return fail(err)
	}
	if _, err := e.Svc.SignalKafka(syscall.SIGSTOP); err != nil {
		return fail(err)
	}
	time.Sleep(2 * e.Tier.Outage)
	_, _ = e.Svc.SignalKafka(syscall.SIGCONT)
	faultEnd := time.Now()
	ws, err := f.end()
	if err != nil {
		return failRow(err)
	}
	if err := e.exited(); err != nil { // fail now rather than wait for a settlement that cannot come
		return failRow(err)
	}
	r, rec := e.verifyAll(ws, faultEnd)
	restarts := e.Matcher.Metric("recon_matcher_stage_restarts_total")
	ev := fmt.Sprintf("broker pid %d SIGKILLed with a matcher transaction open: %v, restarted as %d (ready %s later); matcher committing again %s after; SIGSTOP %s; matcher stage restarts %.0f",
		old, open, pid, restarted.Sub(killed).Round(100*time.Millisecond), resumed.Round(100*time.Millisecond), 2*e.Tier.Outage, restarts)
	why := ""
	switch {
	case pid == old:
		why = "the broker's pid did not change across the kill"
	case notReady != "":
		why = "before the kill: " + notReady
	case !open:
		why = "no matcher transaction seen open on the broker within 30 s before the kill"
	case stalled != "":
		why = "after the broker's restart: " + stalled
	}
	return rowOf(r, ev, why, rec, sightings(ws))
}

// clickhouseDown keeps ClickHouse stopped while a workload is published and
// settles in the ledger, and until the sink has failed an insert (bounded).
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
	for deadline := time.Now().Add(e.Tier.Settle); errs <= 0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		errs = e.Sink.Metric("recon_sink_insert_errors_total")
	}
	if err := e.Svc.StartClickHouse(); err != nil {
		return failRow(err)
	}
	faultEnd := time.Now()
	r, rec := e.verify(w, "", 0, faultEnd)
	if settleErr != nil {
		r.Violations = append(r.Violations, "ledger while ClickHouse was down: "+settleErr.Error())
	}
	ev := fmt.Sprintf("ClickHouse stopped for the whole publish; ledger settled meanwhile: %v; sink insert errors %.0f", settleErr == nil, errs)
	return rowOf(r, ev, unless(errs > 0, fmt.Sprintf("the sink failed no insert while ClickHouse was down (%s past the ledger's settlement)", e.Tier.Outage+e.Tier.Settle)), rec, len(w.Sightings))
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
