package chaos

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/schemas"
)

const alertSecret = "whsec_YWxlcnQtYWxlcnQtYWxlcnQtYWxlcnQtYWxlcnQ="

// receiver is the alert webhook receiver: it checks signatures, misbehaves
// on each delivery's first attempt (500, 429, a redirect, a hang past the
// sender's timeout) and accepts the later ones; /gone answers 410.
type receiver struct {
	mu        sync.Mutex
	attempts  map[string]int // webhook-id -> attempts on /ops
	accepted  map[string]int // alert id -> 2xx answers on /ops
	idOf      map[string]string
	behaviour map[string]int // first-attempt behaviour -> count
	badSig    int
	redirHits int
	ssrfHits  int
	goneHits  int
	hang      time.Duration
	srv       []*http.Server
}

func newReceiver(hang time.Duration) *receiver {
	return &receiver{attempts: map[string]int{}, accepted: map[string]int{}, idOf: map[string]string{}, behaviour: map[string]int{}, hang: hang}
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	switch r.URL.Path {
	case "/elsewhere":
		rc.redirHits++
		return
	case "/ssrf":
		rc.ssrfHits++
		return
	case "/gone":
		rc.goneHits++
		w.WriteHeader(http.StatusGone)
		return
	}
	id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(alertSecret, "whsec_"))
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%s.%s", id, ts, body)
	want := "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	ok := false
	for _, s := range strings.Fields(r.Header.Get("webhook-signature")) {
		ok = ok || hmac.Equal([]byte(s), []byte(want))
	}
	if !ok {
		rc.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var msg struct {
		Data struct {
			Alert string `json:"alert"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &msg)
	rc.idOf[id] = msg.Data.Alert
	rc.attempts[id]++
	if rc.attempts[id] == 1 {
		kinds := []string{"500", "429", "redirect", "hang"}
		k := kinds[len(rc.idOf)%len(kinds)]
		rc.behaviour[k]++
		switch k {
		case "500":
			w.WriteHeader(http.StatusInternalServerError)
		case "429":
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		case "redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		case "hang": // past the sender's timeout, then a 200 nobody reads
			rc.mu.Unlock()
			time.Sleep(rc.hang)
			rc.mu.Lock()
		}
		return
	}
	rc.accepted[msg.Data.Alert]++
}

// listen serves on addr (retrying a moment if the port is briefly taken).
func (rc *receiver) listen(addr string) error {
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	s := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	rc.srv = append(rc.srv, s)
	go func() { _ = s.Serve(ln) }()
	return nil
}

func (rc *receiver) close() {
	for _, s := range rc.srv {
		_ = s.Close()
	}
}

// alertsOf reads the run's firing alerts of rule from recon.alerts.v1.
func (e *Env) alertsOf(rule string) map[string]bool {
	ids := map[string]bool{}
	_ = e.Checker().Replay(e.ctx, schemas.TopicAlerts, func(r *kgo.Record) {
		var a struct{ ID, Rule, State string }
		if json.Unmarshal(r.Value, &a) == nil && a.Rule == rule && a.State == "firing" {
			ids[a.ID] = true
		}
	})
	return ids
}

func (e *Env) startAlerts(name, config string) (*Proc, error) {
	dir, _ := os.MkdirTemp(e.LogDir, name)
	path := filepath.Join(dir, "alerts.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		return nil, err
	}
	// an instance name of its own: the alerts state (recon.alerts-state.v1)
	// follows the name, and a scenario starts from none, as with a fresh
	// data dir before the state moved to Kafka
	return e.start(name, "alerts", "--instance", "chaos-"+filepath.Base(dir), "--data-dir", dir, "--alerts-config", path)
}

func largeCredits(w *Workload, threshold decimal.Decimal) int {
	n := 0
	for _, t := range w.Distinct {
		if t.Amount.GreaterThanOrEqual(threshold) {
			n++
		}
	}
	return n
}

func alertReceiver(e *Env) Row {
	w := e.NewRun(e.Tier.Txns / 10)
	port, err := freePort()
	if err != nil {
		return failRow(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	rule := "big-" + w.Run
	threshold := decimal.RequireFromString("850.00")
	cfg := fmt.Sprintf(`allow_loopback: true
delivery: {timeout: 1s, initial_backoff: 200ms, max_backoff: 2s, max_elapsed: 30m, max_attempts: 1000}
endpoints:
  - {name: ops, url: "http://%[1]s/ops", secret: %[2]s, rules: [%[3]s]}
  - {name: gone, url: "http://%[1]s/gone", secret: %[2]s, rules: [%[3]s]}
rules:
  - {name: %[3]s, kind: large_credit, threshold: "%[4]s", currency: EUR, account: %[5]s}
`, addr, alertSecret, rule, threshold, w.Acct)
	al, err := e.startAlerts("alerts", cfg)
	if err != nil {
		return failRow(err)
	}
	defer al.Stop()
	// the receiver is down while the alerts fire
	if err := Publish(e.ingestBase, w, time.Minute); err != nil {
		return failRow(err)
	}
	want := largeCredits(w, threshold)
	var fired map[string]bool
	deadline := time.Now().Add(e.Tier.Settle)
	for time.Now().Before(deadline) {
		if fired = e.alertsOf(rule); len(fired) >= want {
			break
		}
		time.Sleep(time.Second)
	}
	time.Sleep(e.Tier.Outage) // the outage itself
	// a loaded alerts service may not have tried yet: the outage lasts
	// (bounded) until a delivery was refused
	refused := al.Metric("recon_alert_deliveries_total")
	for until := time.Now().Add(e.Tier.Settle); refused <= 0 && len(fired) > 0 && time.Now().Before(until); time.Sleep(200 * time.Millisecond) {
		refused = al.Metric("recon_alert_deliveries_total")
	}
	rc := newReceiver(2 * time.Second)
	defer rc.close()
	if err := rc.listen(addr); err != nil {
		return failRow(err)
	}
	faultEnd := time.Now()
	var bad []string
	if len(fired) != want {
		bad = append(bad, fmt.Sprintf("%d alerts of rule %s in %s, the model wants %d", len(fired), rule, schemas.TopicAlerts, want))
	}
	// each alert delivered to ops (by id), dead-lettered with a reason on gone
	type view struct {
		Deliveries []struct{ Endpoint, State, Reason string }
	}
	var missing []string
	var rec time.Duration
	for time.Now().Before(deadline.Add(2 * time.Minute)) {
		missing = missing[:0]
		rc.mu.Lock()
		for id := range fired {
			if rc.accepted[id] == 0 {
				missing = append(missing, id)
			}
		}
		rc.mu.Unlock()
		if len(missing) == 0 {
			rec = time.Since(faultEnd)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(missing) > 0 {
		bad = append(bad, fmt.Sprintf("%d alerts never accepted by the receiver, e.g. %s", len(missing), missing[0]))
	}
	dead := 0
	for id := range fired {
		var v view
		resp, err := httpClient.Get(al.Base + "/v1/alerts/" + id)
		if err != nil {
			bad = append(bad, err.Error())
			break
		}
		_ = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		for _, d := range v.Deliveries {
			switch {
			case d.Endpoint == "ops" && d.State != "delivered":
				bad = append(bad, fmt.Sprintf("alert %s to ops: %s %s", id, d.State, d.Reason))
			case d.Endpoint == "gone" && d.State == "dead" && d.Reason != "":
				dead++
			case d.Endpoint == "gone" && d.State != "pending":
				bad = append(bad, fmt.Sprintf("alert %s to gone: %s without a reason", id, d.State))
			}
		}
	}
	rc.mu.Lock()
	dupByID := 0
	for _, n := range rc.accepted {
		if n > 1 {
			dupByID++
		}
	}
	if rc.badSig > 0 {
		bad = append(bad, fmt.Sprintf("%d deliveries with a bad signature", rc.badSig))
	}
	if rc.redirHits > 0 {
		bad = append(bad, fmt.Sprintf("a redirect was followed %d times", rc.redirHits))
	}
	ev := fmt.Sprintf("receiver down %s+ while %d alerts fired (%.0f delivery attempts meanwhile, all refused); first answers %v; %d alerts re-sent after an answer lost (same id, deduplicated); gone: %d hits, %d dead-lettered with a reason",
		e.Tier.Outage, len(fired), refused, rc.behaviour, dupByID, rc.goneHits, dead)
	why := ""
	switch {
	case refused <= 0:
		why = fmt.Sprintf("no delivery attempted while the receiver was down (%s+)", e.Tier.Outage)
	case len(rc.behaviour) < 4:
		why = fmt.Sprintf("only %d of the 4 first-answer misbehaviours met a delivery", len(rc.behaviour))
	case rc.goneHits == 0:
		why = "no delivery reached the gone endpoint"
	}
	rc.mu.Unlock()
	return Row{Evidence: ev, Result: resultOf(bad, why), Detail: bad, Recovery: rec, Events: len(w.Sightings)}
}

func ssrf(e *Env) Row {
	var bad, ev []string
	// literal addresses are refused when the config is read
	literal := []string{"http://127.0.0.1:9/x", "http://[::1]:9/x", "http://169.254.169.254/latest/meta-data/",
		"http://2130706433:9/x", "http://0x7f000001:9/x", "http://0177.0.0.1:9/x", "http://10.0.0.1/x", "http://[::ffff:127.0.0.1]:9/x"}
	for _, u := range literal {
		dir, _ := os.MkdirTemp(e.LogDir, "ssrf")
		path := filepath.Join(dir, "alerts.yaml")
		_ = os.WriteFile(path, []byte(fmt.Sprintf("endpoints:\n  - {name: x, url: %q, secret: %s, rules: [r]}\nrules:\n  - {name: r, kind: large_credit, threshold: \"1\", currency: EUR}\n", u, alertSecret)), 0o600)
		cmd := exec.Command(e.Bin, "alerts", "--brokers", e.Svc.Brokers(), "--data-dir", dir, "--alerts-config", path, "--http", "127.0.0.1:0", "--instance", "chaos-ssrf")
		done := make(chan struct{})
		var out []byte
		go func() { out, _ = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-done
		}
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() == 0 || !strings.Contains(string(out), "forbidden address") {
			bad = append(bad, fmt.Sprintf("%s: accepted (exit %v): %s", u, cmd.ProcessState, trunc(string(out), 200)))
		} else {
			if pu, err := url.Parse(u); err == nil {
				ev = append(ev, pu.Hostname())
			}
		}
	}
	// a name that resolves to loopback is refused at dial time
	w := e.NewRun(100)
	rc := newReceiver(0)
	defer rc.close()
	port, err := freePort()
	if err != nil {
		return failRow(err)
	}
	if err := rc.listen("127.0.0.1:" + strconv.Itoa(port)); err != nil {
		return failRow(err)
	}
	_ = rc.listen("[::1]:" + strconv.Itoa(port))
	rule := "ssrf-" + w.Run
	threshold := decimal.RequireFromString("850.00")
	cfg := fmt.Sprintf(`delivery: {timeout: 1s, initial_backoff: 200ms, max_backoff: 1s, max_elapsed: 5s, max_attempts: 3}
endpoints:
  - {name: dns, url: "http://localhost:%d/ssrf", secret: %s, rules: [%s]}
rules:
  - {name: %s, kind: large_credit, threshold: "%s", currency: EUR, account: %s}
`, port, alertSecret, rule, rule, threshold, w.Acct)
	al, err := e.startAlerts("alerts-ssrf", cfg)
	if err != nil {
		return failRow(err)
	}
	defer al.Stop()
	if err := Publish(e.ingestBase, w, time.Minute); err != nil {
		return failRow(err)
	}
	want := largeCredits(w, threshold)
	forbidden := 0
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && forbidden < want {
		forbidden = 0
		for id := range e.alertsOf(rule) {
			resp, err := httpClient.Get(al.Base + "/v1/alerts/" + id)
			if err != nil {
				continue
			}
			var v struct {
				Deliveries []struct {
					Attempts []struct{ Error string }
				}
			}
			_ = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			for _, d := range v.Deliveries {
				if len(d.Attempts) > 0 && strings.Contains(d.Attempts[0].Error, "forbidden address") {
					forbidden++
				}
			}
		}
		time.Sleep(time.Second)
	}
	rc.mu.Lock()
	hits := rc.ssrfHits
	rc.mu.Unlock()
	if hits > 0 {
		bad = append(bad, fmt.Sprintf("the loopback receiver was reached %d times through localhost", hits))
	}
	if forbidden < want {
		bad = append(bad, fmt.Sprintf("%d of %d deliveries to localhost refused as a forbidden address", forbidden, want))
	}
	return Row{Evidence: fmt.Sprintf("refused at config: %s; via DNS localhost: %d deliveries refused at dial, receiver hits %d", strings.Join(ev, " "), forbidden, hits),
		Result: resultOf(bad, unless(want > 0, "the workload has no credit over the alert threshold")), Detail: bad, Events: len(w.Sightings) + len(literal)}
}
