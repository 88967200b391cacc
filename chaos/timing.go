package chaos

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/schemas"
)

// A fault is proven only when it met work in flight, and on a loaded
// machine work is not in flight by chance: a restarted matcher may spend
// seconds restoring. So the scenarios time their faults on the state they
// read from outside (a watch: /healthz, /metrics and the broker's view of
// the matcher's transactions) and keep a steady stream of input (a feed)
// for as long as the fault schedule lasts, whatever its length.

// feed publishes workloads one after another until stopped, each paced
// over spread: a first workload, then fresh ones of more transactions each.
// It stops between workloads, so each can be verified.
type feed struct {
	stop chan struct{}
	done chan error
	mu   sync.Mutex
	runs []*Workload // started; whole once the feed ended
}

// startFeed starts publishing first; after until, it publishes no new
// workload (the bound of a fault schedule that never ends).
func (e *Env) startFeed(first *Workload, more int, spread, limit time.Duration, until time.Time) *feed {
	f := &feed{stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		w := first
		for {
			f.mu.Lock()
			f.runs = append(f.runs, w)
			f.mu.Unlock()
			if err := PublishPaced(e.ingestBase, w, limit, spread); err != nil {
				f.done <- err
				return
			}
			select {
			case <-f.stop:
				f.done <- nil
				return
			default:
			}
			if time.Now().After(until) {
				f.done <- nil
				return
			}
			w = e.NewRun(more)
		}
	}()
	return f
}

// published is what the feed has started to publish.
func (f *feed) published() []*Workload {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Workload(nil), f.runs...)
}

// end lets the workload in progress finish and returns every workload the
// feed published.
func (f *feed) end() ([]*Workload, error) {
	close(f.stop)
	err := <-f.done
	return f.published(), err
}

// sightings counts the inputs of ws.
func sightings(ws []*Workload) int {
	n := 0
	for _, w := range ws {
		n += len(w.Sightings)
	}
	return n
}

// verifyAll is verify over several workloads, as one report; recovery runs
// until the last of them checked.
func (e *Env) verifyAll(ws []*Workload, faultEnd time.Time) (Report, time.Duration) {
	var all Report
	for _, w := range ws {
		r, _ := e.verify(w, "", 0, faultEnd)
		all = all.merge(r)
	}
	return all, time.Since(faultEnd)
}

func (r Report) merge(o Report) Report {
	r.Violations = append(r.Violations, o.Violations...)
	r.Identities += o.Identities
	r.Posted += o.Posted
	r.Suspense += o.Suspense
	r.DeadLetters += o.DeadLetters
	r.Entries += o.Entries
	r.CHRows += o.CHRows
	r.CHRawRows += o.CHRawRows
	return r
}

// watch reads a matcher's state from outside.
type watch struct {
	cl  *kgo.Client
	adm *kadm.Client
}

func (e *Env) newWatch() (*watch, error) {
	cl, err := e.rawProducer()
	if err != nil {
		return nil, err
	}
	return &watch{cl: cl, adm: kadm.NewClient(cl)}, nil
}

func (w *watch) close() { w.cl.Close() }

// committed counts the records a matcher process has consumed in the
// transactions it committed since it started (-1 when its /metrics is
// unreachable).
func committed(p *Proc) float64 { return p.Metric("recon_matcher_records_total") }

// ready waits until p answers /healthz 200 and has committed transactions
// past since (a committed count), within limit: the matcher restored and
// work flows. It says how long that took, or why not.
// A process that ended by itself is an error (the caller fails the run).
func ready(p *Proc, since float64, limit time.Duration) (time.Duration, string, error) {
	start := time.Now()
	deadline := start.Add(limit)
	healthy := false
	for ; time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if p.ExitedByItself() {
			return 0, "", fmt.Errorf("%s exited by itself (log %s):\n%s", p.Name, p.Log, p.Tail(10))
		}
		if !healthy {
			resp, err := httpClient.Get(p.Base + "/healthz")
			if err != nil {
				continue
			}
			resp.Body.Close()
			if healthy = resp.StatusCode == http.StatusOK; !healthy {
				continue
			}
		}
		if committed(p) > since {
			return time.Since(start), "", nil
		}
	}
	if !healthy {
		return 0, fmt.Sprintf("%s not ready (/healthz) within %s", p.Name, limit), nil
	}
	return 0, fmt.Sprintf("%s ready but committed no transaction within %s", p.Name, limit), nil
}

// outputs are the matcher topics whose records the scenarios count.
var outputs = []string{schemas.TopicMatches, schemas.TopicRouted, schemas.TopicLedgerEntries}

// inFlight polls the broker until one of the instance's stages has a
// transaction open (Ongoing: records on the matcher's output topics, no
// end asked for yet), within limit. A fault sent at once lands on it
// unless the stage asked to commit in between.
func (w *watch) inFlight(ctx context.Context, instance string, limit time.Duration) bool {
	ids := []string{"recon-matcher-route-" + instance, "recon-matcher-post-" + instance}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for ctx.Err() == nil {
		described, err := w.adm.DescribeTransactions(ctx, ids...)
		if err == nil {
			for _, d := range described {
				if d.Err != nil || d.State != "Ongoing" {
					continue
				}
				for _, t := range outputs {
					if len(d.Topics[t]) > 0 {
						return true
					}
				}
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}
