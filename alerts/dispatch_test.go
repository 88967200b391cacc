package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/reconhq/recon"
	"github.com/shopspring/decimal"
)

// pipeNet is an in-memory network for synctest: dials become net.Pipe
// pairs served by an http.Server inside the bubble, so fake time can pass
// while requests are in flight.
type pipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once

	mu    sync.Mutex
	down  bool
	dials []string
}

func (p *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}
func (p *pipeNet) Close() error   { p.once.Do(func() { close(p.done) }); return nil }
func (p *pipeNet) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 80} }

func (p *pipeNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	p.mu.Lock()
	p.dials = append(p.dials, addr)
	down := p.down
	p.mu.Unlock()
	if down {
		return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
	}
	c1, c2 := net.Pipe()
	select {
	case p.conns <- c2:
		return c1, nil
	case <-p.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *pipeNet) setDown(v bool) { p.mu.Lock(); p.down = v; p.mu.Unlock() }

// receiver records verified requests per webhook-id; reply decides the
// answer to the n-th request (1-based) of an id.
type receiver struct {
	t     *testing.T
	reply func(n int, w http.ResponseWriter, r *http.Request)

	mu     sync.Mutex
	byID   map[string]int
	bodies map[string]string
	times  map[string][]time.Time
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := Verify([]string{secretA}, r.Header, body, time.Now(), 0); err != nil {
		rc.t.Errorf("receiver: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	id := r.Header.Get(HeaderWebhookID)
	rc.mu.Lock()
	rc.byID[id]++
	n := rc.byID[id]
	if prev, ok := rc.bodies[id]; ok && prev != string(body) {
		rc.t.Errorf("receiver: body of %s changed between attempts", id)
	}
	rc.bodies[id] = string(body)
	rc.times[id] = append(rc.times[id], time.Now())
	rc.mu.Unlock()
	if rc.reply != nil {
		rc.reply(n, w, r)
	}
}

func (rc *receiver) count(id string) int { rc.mu.Lock(); defer rc.mu.Unlock(); return rc.byID[id] }

type harness struct {
	d    *Dispatcher
	net  *pipeNet
	rc   *receiver
	dead chan Delivery
	stop func()
}

// newHarness starts a dispatcher and a receiver inside the current bubble.
func newHarness(t *testing.T, delivery DeliveryConfig, reply func(int, http.ResponseWriter, *http.Request)) *harness {
	cfg := Config{
		BaseURL:   "https://recon.example.com",
		Delivery:  delivery,
		Endpoints: []Endpoint{{Name: "ops", URL: "http://receiver.test/hook", Secret: secretA}},
		Rules:     []Rule{{Name: "low", Kind: BalanceBelow, Account: "bank:X", Currency: "EUR", Threshold: "100", Endpoint: "ops"}},
	}
	h := &harness{net: &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})},
		rc:   &receiver{t: t, reply: reply, byID: map[string]int{}, bodies: map[string]string{}, times: map[string][]time.Time{}},
		dead: make(chan Delivery, 100)}
	d, err := NewDispatcher(cfg, DispatcherOptions{
		Jitter:       func(max time.Duration) time.Duration { return max }, // deterministic: the ceiling
		OnDeadLetter: func(dl Delivery) { h.dead <- dl },
	})
	if err != nil {
		t.Fatal(err)
	}
	d.dialFn = h.net.dial
	d.client = newClient(h.net.dial)
	h.d = d
	srv := &http.Server{Handler: h.rc}
	go srv.Serve(h.net)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { d.Run(ctx); close(ran) }()
	h.stop = func() {
		cancel()
		<-ran
		srv.Close()
		d.client.Transport.(*http.Transport).CloseIdleConnections()
	}
	return h
}

func testAlert(seq int) recon.Alert {
	return recon.Alert{ID: alertID("low", "bank:X", uint64(seq)), Rule: "low", Kind: "balance_below", State: StateFiring,
		Subject: "bank:X", Value: decimal.RequireFromString("12.50"), Threshold: decimal.NewFromInt(100), Currency: "EUR",
		At: time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC), Message: "firing: low"}
}

// waitFor lets fake time pass until cond holds, failing after limit.
func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(limit); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(time.Second)
	}
}

func state(d *Dispatcher, id string) Delivery {
	ds := d.Deliveries(id)
	if len(ds) != 1 {
		return Delivery{}
	}
	return ds[0]
}

func finished(d *Dispatcher, id string) func() bool {
	return func() bool { s := state(d, id).State; return s == DeliveryDelivered || s == DeliveryDead }
}

func TestDeliver500ThenSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, DeliveryConfig{}, func(n int, w http.ResponseWriter, r *http.Request) {
			if n < 3 {
				w.WriteHeader(http.StatusInternalServerError)
			}
		})
		defer h.stop()
		a := testAlert(1)
		start := time.Now()
		if err := h.d.Enqueue(a); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Hour, finished(h.d, a.ID))
		dl := state(h.d, a.ID)
		if dl.State != DeliveryDelivered || len(dl.Attempts) != 3 {
			t.Fatalf("delivery %+v", dl)
		}
		if dl.Attempts[0].Status != 500 || dl.Attempts[2].Status != 200 || dl.Attempts[0].Error != "status 500" {
			t.Errorf("attempts %+v", dl.Attempts)
		}
		// backoff ceilings 5s then 10s (jitter returns the ceiling)
		want := []time.Duration{0, 5 * time.Second, 15 * time.Second}
		for i, at := range dl.Attempts {
			if got := at.At.Sub(start); got != want[i] {
				t.Errorf("attempt %d at +%s, want +%s", i, got, want[i])
			}
		}
		var body struct {
			Type string `json:"type"`
			Data struct {
				Alert     string            `json:"alert"`
				Value     string            `json:"value"`
				Threshold string            `json:"threshold"`
				Links     map[string]string `json:"links"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(h.rc.bodies[a.ID]), &body); err != nil {
			t.Fatal(err)
		}
		if body.Type != "alert.firing" || body.Data.Alert != a.ID || body.Data.Value != "12.5" ||
			body.Data.Links["alert"] != "https://recon.example.com/v1/alerts/"+a.ID {
			t.Errorf("body %s", h.rc.bodies[a.ID])
		}
	})
}

func TestDeliverRetryAfter(t *testing.T) {
	for _, form := range []string{"seconds", "date"} {
		t.Run(form, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, DeliveryConfig{}, func(n int, w http.ResponseWriter, r *http.Request) {
					if n == 1 {
						v := "120"
						if form == "date" {
							v = time.Now().Add(120 * time.Second).UTC().Format(http.TimeFormat)
						}
						w.Header().Set("Retry-After", v)
						w.WriteHeader(http.StatusTooManyRequests)
					}
				})
				defer h.stop()
				a := testAlert(1)
				h.d.Enqueue(a)
				waitFor(t, time.Hour, finished(h.d, a.ID))
				dl := state(h.d, a.ID)
				if dl.State != DeliveryDelivered || len(dl.Attempts) != 2 || dl.Attempts[0].Status != 429 {
					t.Fatalf("delivery %+v", dl)
				}
				if gap := dl.Attempts[1].At.Sub(dl.Attempts[0].At); gap < 120*time.Second {
					t.Errorf("retried after %s, Retry-After said 120s", gap)
				}
			})
		})
	}
}

func TestDeliverGoneDisables(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, DeliveryConfig{}, func(n int, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusGone)
		})
		defer h.stop()
		a, b := testAlert(1), testAlert(2)
		h.d.Enqueue(a)
		waitFor(t, time.Minute, finished(h.d, a.ID))
		if dl := state(h.d, a.ID); dl.State != DeliveryDead || !strings.Contains(dl.Reason, "410") || len(dl.Attempts) != 1 {
			t.Fatalf("delivery %+v", dl)
		}
		if _, ok := h.d.Disabled()["ops"]; !ok {
			t.Fatal("endpoint not disabled")
		}
		h.d.Enqueue(b)
		waitFor(t, time.Minute, finished(h.d, b.ID))
		if dl := state(h.d, b.ID); dl.State != DeliveryDead || !strings.Contains(dl.Reason, "disabled") || len(dl.Attempts) != 0 {
			t.Errorf("second alert: %+v", dl)
		}
		if n := h.rc.count(b.ID); n != 0 {
			t.Errorf("disabled endpoint got %d requests", n)
		}
		if len(h.dead) != 2 {
			t.Errorf("%d dead letters, want 2", len(h.dead))
		}
	})
}

func TestDeliverHangTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		h := newHarness(t, DeliveryConfig{MaxAttempts: 2}, func(n int, w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		defer h.stop()
		defer close(release)
		a := testAlert(1)
		h.d.Enqueue(a)
		waitFor(t, time.Hour, finished(h.d, a.ID))
		dl := state(h.d, a.ID)
		if dl.State != DeliveryDead || len(dl.Attempts) != 2 || !strings.Contains(dl.Reason, "gave up after 2 attempts") {
			t.Fatalf("delivery %+v", dl)
		}
		for _, at := range dl.Attempts {
			if at.DurationMS != 10000 || !strings.Contains(at.Error, "deadline exceeded") {
				t.Errorf("attempt %+v, want a 10 s timeout", at)
			}
		}
	})
}

func TestDeliverRedirectNotFollowed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, DeliveryConfig{MaxAttempts: 1}, func(n int, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "http://169.254.169.254/latest/meta-data/")
			w.WriteHeader(http.StatusFound)
		})
		defer h.stop()
		a := testAlert(1)
		h.d.Enqueue(a)
		waitFor(t, time.Hour, finished(h.d, a.ID))
		dl := state(h.d, a.ID)
		if dl.State != DeliveryDead || !strings.Contains(dl.Reason, "169.254.169.254") || dl.Attempts[0].Status != 302 {
			t.Fatalf("delivery %+v", dl)
		}
		for _, addr := range h.net.dials {
			if addr != "receiver.test:80" {
				t.Errorf("dialled %s", addr)
			}
		}
	})
}

// TestDeliverReceiverDownThenUp: the receiver is unreachable for 10
// minutes; alerts enqueued twice (a replay) arrive once each by id.
func TestDeliverReceiverDownThenUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, DeliveryConfig{}, nil)
		defer h.stop()
		h.net.setDown(true)
		var ids []string
		for i := 1; i <= 5; i++ {
			a := testAlert(i)
			ids = append(ids, a.ID)
			if err := h.d.Enqueue(a); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10 * time.Minute)
		for i := 1; i <= 5; i++ { // replayed from the alerts topic after a restart
			h.d.Enqueue(testAlert(i))
		}
		h.net.setDown(false)
		waitFor(t, 3*time.Hour, func() bool {
			for _, id := range ids {
				if state(h.d, id).State != DeliveryDelivered {
					return false
				}
			}
			return true
		})
		for _, id := range ids {
			if n := h.rc.count(id); n != 1 {
				t.Errorf("%s received %d times, want 1", id, n)
			}
			if dl := state(h.d, id); len(dl.Attempts) < 2 {
				t.Errorf("%s: %d attempts, want failures while down", id, len(dl.Attempts))
			}
		}
	})
}

func TestDeliverGivesUpAfterSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, DeliveryConfig{}, func(n int, w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
		})
		defer h.stop()
		a := testAlert(1)
		start := time.Now()
		h.d.Enqueue(a)
		waitFor(t, 30*time.Hour, finished(h.d, a.ID))
		dl := state(h.d, a.ID)
		last := dl.Attempts[len(dl.Attempts)-1].At
		if dl.State != DeliveryDead || !strings.Contains(dl.Reason, "status 503") || last.Sub(start) != 24*time.Hour {
			t.Fatalf("delivery: state %s reason %q, %d attempts, last at +%s", dl.State, dl.Reason, len(dl.Attempts), last.Sub(start))
		}
		if d := <-h.dead; d.AlertID != a.ID {
			t.Errorf("dead letter %+v", d)
		}
	})
}

func TestDispatcherSnapshotRestore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, DeliveryConfig{}, nil)
		h.net.setDown(true)
		a := testAlert(1)
		h.d.Enqueue(a)
		time.Sleep(time.Minute)
		snap := h.d.Snapshot()
		h.stop()

		h2 := newHarness(t, DeliveryConfig{}, nil)
		defer h2.stop()
		if err := h2.d.Restore(snap); err != nil {
			t.Fatal(err)
		}
		h2.d.signal()
		h2.d.Enqueue(a) // replay: deduplicated against the restored delivery
		waitFor(t, time.Hour, finished(h2.d, a.ID))
		if dl := state(h2.d, a.ID); dl.State != DeliveryDelivered || len(dl.Attempts) < 2 {
			t.Errorf("delivery %+v", dl)
		}
		if n := h2.rc.count(a.ID); n != 1 {
			t.Errorf("received %d times", n)
		}
	})
}

func TestEnqueueQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, DeliveryConfig{QueueSize: 2}, nil)
		defer h.stop()
		h.net.setDown(true)
		h.d.Enqueue(testAlert(1))
		h.d.Enqueue(testAlert(2))
		if err := h.d.Enqueue(testAlert(3)); !errors.Is(err, ErrQueueFull) {
			t.Errorf("Enqueue = %v, want ErrQueueFull", err)
		}
	})
}
