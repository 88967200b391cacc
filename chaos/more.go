package chaos

import (
	"fmt"
	"syscall"
	"time"

	"github.com/reconhq/recon/schemas"
)

func rebalanceStorm(e *Env) Row {
	w := e.NewRun(e.Tier.Txns)
	e.Matcher.Signal(syscall.SIGKILL) // a backlog, so the storm hits work in flight
	// half the run waits as a backlog, the other half streams in while the
	// membership changes, so partitions move with work in flight
	backlog, stream := w.Split()
	if err := Publish(e.ingestBase, backlog, 3*time.Minute); err != nil {
		return failRow(err)
	}
	m1, err := e.StartMatcher("m1")
	e.Matcher = m1
	if err != nil {
		return failRow(err)
	}
	cycles := max(1, int(e.Tier.Outage/(5*time.Second)))
	published := make(chan error, 1)
	go func() {
		published <- PublishPaced(e.ingestBase, stream, 3*time.Minute, time.Duration(cycles)*15*time.Second)
	}()
	aborted := 0.0
	changes := 0
	for range cycles {
		time.Sleep(time.Second) // the storm's schedule
		var extra []*Proc
		for _, name := range []string{"m2", "m3"} { // 1 -> 3
			p, err := Start(e.Bin, e.LogDir, "match-"+name, nil, "match", "--brokers", e.Svc.Brokers(), "--instance", name, "--data-dir", e.matcherData())
			if err != nil {
				return failRow(err)
			}
			extra = append(extra, p)
			changes++
		}
		for _, p := range extra {
			_ = p.Healthy(time.Minute)
		}
		time.Sleep(2 * time.Second)
		aborted += max(0, extra[1].Metric("recon_matcher_transactions_aborted_total"))
		extra[1].Stop() // 3 -> 2
		changes++
		time.Sleep(2 * time.Second)
		aborted += max(0, extra[0].Metric("recon_matcher_transactions_aborted_total"))
		extra[0].Stop() // 2 -> 1
		changes++
	}
	faultEnd := time.Now()
	if err := <-published; err != nil {
		return failRow(err)
	}
	r, rec := e.verify(w, "", 0, faultEnd)
	aborted += max(0, e.Matcher.Metric("recon_matcher_transactions_aborted_total"))
	ab := e.aborted(w)
	writers, err := e.Checker().Writers(e.ctx, schemas.TopicLedgerEntries, mineOf(w))
	if err != nil {
		e.Logf("writers of %s: %v", schemas.TopicLedgerEntries, err)
	}
	// the fault is shown when the run's work moved between instances: its
	// journal entries were committed by more than one transactional
	// producer (or a revocation aborted a transaction in flight)
	return rowOf(r, fmt.Sprintf("%d membership changes (1-3-2-1 x%d); the run's journal entries committed by %d matcher producers; %.0f transactions aborted by revocation (metric); %d aborted records of the run",
		changes, cycles, writers, aborted, ab), unless(changes >= 4 && (writers > 1 || aborted > 0 || ab > 0), "the run's work did not move between instances"), rec, len(w.Sightings))
}

// networkCut restarts the matcher behind a proxy and cuts its link to the
// broker while the broker shows one of its transactions open; input
// streams in all along.
func networkCut(e *Env) Row {
	w := e.NewRun(e.Tier.Txns / 2)
	e.Matcher.Stop()
	px := e.Svc.KafkaProxy
	m, err := Start(e.Bin, e.LogDir, "match-m1-proxied", nil, "match", "--brokers", px.Addr, "--instance", "m1", "--data-dir", e.matcherData())
	e.Matcher = m
	if err != nil {
		return failRow(err)
	}
	if err := m.Healthy(2 * time.Minute); err != nil {
		return failRow(err)
	}
	f := e.startFeed(w, e.Tier.Txns/8, 30*time.Second, 3*time.Minute, time.Now().Add(e.Tier.Settle))
	wt, err := e.newWatch() // straight to the broker, not through the proxy
	if err != nil {
		_, _ = f.end()
		return failRow(err)
	}
	defer wt.close()
	_, notReady, err := ready(m, 0, 2*time.Minute)
	if err != nil {
		_, _ = f.end()
		return failRow(err)
	}
	open := notReady == "" && wt.inFlight(e.ctx, "m1", 30*time.Second)
	px.CutLink()
	time.Sleep(2 * e.Tier.Outage)
	held := px.Held.Load()
	px.Heal()
	faultEnd := time.Now()
	ws, err := f.end()
	if err != nil {
		return failRow(err)
	}
	r, rec := e.verifyAll(ws, faultEnd)
	restarts := m.Metric("recon_matcher_stage_restarts_total")
	aborted := m.Metric("recon_matcher_transactions_aborted_total")
	e.Matcher.Stop() // back to a direct matcher for the next scenarios
	e.Matcher = nil
	why := ""
	switch {
	case notReady != "":
		why = "before the cut: " + notReady
	case !open:
		why = "no matcher transaction seen open on the broker within 30 s before the cut"
	case held == 0 && px.Cut.Load() == 0:
		why = "the cut held no byte and tore no connection"
	}
	return rowOf(r, fmt.Sprintf("link matcher<->broker cut %s (proxy the broker advertises) with a matcher transaction open: %v; %d bytes held, %d connections torn at heal; matcher stage restarts %.0f, aborted transactions %.0f",
		2*e.Tier.Outage, open, held, px.Cut.Load(), restarts, aborted), why, rec, sightings(ws))
}

func clickhouseSlowLost(e *Env) Row {
	px := e.Svc.CHProxy
	w := e.NewRun(e.Tier.Txns / 4)
	errs0 := e.Sink.Metric("recon_sink_insert_errors_total")
	px.Slow(300 * time.Millisecond)
	if err := Publish(e.ingestBase, w, time.Minute); err != nil {
		px.Heal()
		return failRow(err)
	}
	time.Sleep(e.Tier.Outage)
	px.Heal()
	px.LoseAnswers()
	w2 := e.NewRun(e.Tier.Txns / 4)
	if err := Publish(e.ingestBase, w2, time.Minute); err != nil {
		px.Heal()
		return failRow(err)
	}
	// the sink may lag behind the ledger: wait (bounded) until an answer
	// was lost, not for a fixed time
	deadline := time.Now().Add(e.Tier.Settle)
	for px.Lost.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(e.Tier.Outage)
	px.Heal()
	faultEnd := time.Now()
	r, rec := e.verify(w, "", 0, faultEnd)
	r2, _ := e.verify(w2, "", 0, faultEnd)
	r = r.merge(r2)
	errs := e.Sink.Metric("recon_sink_insert_errors_total") - errs0
	return rowOf(r, fmt.Sprintf("ClickHouse answers +300ms for %s, then %d answers lost (request delivered, connection closed) for %s; sink insert errors +%.0f",
		e.Tier.Outage, px.Lost.Load(), e.Tier.Outage, errs), unless(px.Lost.Load() > 0, fmt.Sprintf("the sink sent ClickHouse no insert within %s of losing answers", e.Tier.Settle)), rec, len(w.Sightings)+len(w2.Sightings))
}
