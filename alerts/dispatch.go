package alerts

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/reconhq/recon"
)

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryDead      = "dead"
)

// Limits of the dispatcher.
const (
	maxInFlight         = 16
	maxInFlightEndpoint = 4
	maxResponseBytes    = 64 << 10
)

// Sentinels a caller decides on.
var (
	// ErrQueueFull: the bounded queue of pending deliveries is full; the
	// caller should not commit the alert and retry later.
	ErrQueueFull = errors.New("alerts: delivery queue full")
	// ErrNotFound: no delivery or alert with that id.
	ErrNotFound = errors.New("alerts: not found")

	errEndpointRemoved = errors.New("endpoint removed from config")
)

// Delivery is one alert on its way to one endpoint, with every attempt.
type Delivery struct {
	AlertID  string          `json:"alert_id"`
	Endpoint string          `json:"endpoint"`
	State    string          `json:"state"`
	Reason   string          `json:"reason,omitempty"`
	Created  time.Time       `json:"created"`
	NextAt   time.Time       `json:"next_at,omitzero"`
	Attempts []Attempt       `json:"attempts"`
	Body     json.RawMessage `json:"body,omitempty"`

	index int // in the heap, -1 when not in it
}

// Attempt is one HTTP POST of a delivery.
type Attempt struct {
	At         time.Time `json:"at"`
	Status     int       `json:"status,omitempty"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

// DispatcherOptions are the dispatcher's injected dependencies.
type DispatcherOptions struct {
	// Now is the clock (default time.Now). Timers use the time package, so
	// tests run the dispatcher inside a testing/synctest bubble.
	Now func() time.Time
	// Jitter returns a duration in [0, max] (default uniform random): the
	// "full jitter" of the backoff.
	Jitter func(max time.Duration) time.Duration
	// OnDeadLetter is called (outside the dispatcher's lock) for each
	// delivery given up, e.g. to produce it to the dead-letters topic.
	OnDeadLetter func(Delivery)
	// Metrics, from NewMetrics; nil means unregistered metrics.
	Metrics *Metrics
}

// Dispatcher delivers alerts as Standard Webhooks with retries. Its Run
// loop owns all I/O and time; Enqueue, Redeliver and the views are safe to
// call from other goroutines.
type Dispatcher struct {
	opt    DispatcherOptions
	wake   chan struct{}
	dialFn func(ctx context.Context, network, addr string) (net.Conn, error) // tests only

	mu         sync.Mutex
	c          *compiled
	client     *http.Client
	loopback   bool
	deliveries map[string]*Delivery // by key(alert id, endpoint)
	byAlert    map[string][]string  // alert id -> keys
	done       []string             // finished keys, oldest first, for eviction
	queue      dueHeap
	pending    int
	inFlight   map[string]int    // by endpoint
	gone       map[string]string // endpoint -> why it is disabled
	// what to persist: deliveries (by key) and disabled endpoints changed
	// since the last changes, and the dead letters raised meanwhile
	changed     map[string]bool
	changedGone map[string]bool
	dead        []recon.DeadLetter
}

func deliveryKey(alertID, endpoint string) string { return alertID + " " + endpoint }

// NewDispatcher builds a dispatcher for a validated config.
func NewDispatcher(cfg Config, opt DispatcherOptions) (*Dispatcher, error) {
	c, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	return newDispatcher(c, opt), nil
}

func newDispatcher(c *compiled, opt DispatcherOptions) *Dispatcher {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Jitter == nil {
		opt.Jitter = func(max time.Duration) time.Duration { return rand.N(max + 1) }
	}
	if opt.Metrics == nil {
		opt.Metrics = NewMetrics(nil)
	}
	d := &Dispatcher{opt: opt, wake: make(chan struct{}, 1), deliveries: map[string]*Delivery{}, byAlert: map[string][]string{},
		inFlight: map[string]int{}, gone: map[string]string{}, changed: map[string]bool{}, changedGone: map[string]bool{}}
	d.setConfig(c)
	return d
}

// setConfig swaps the configuration; the caller holds the lock (or owns d)
// and passes the returned dead letters to notifyDead after unlocking.
func (d *Dispatcher) setConfig(c *compiled) []Delivery {
	if d.client == nil || d.loopback != c.cfg.AllowLoopback {
		dial := safeDialer(c.cfg.AllowLoopback)
		if d.dialFn != nil {
			dial = d.dialFn
		}
		d.client = newClient(dial)
		d.loopback = c.cfg.AllowLoopback
	}
	var dead []Delivery
	if d.c != nil {
		for name, old := range d.c.endpoints {
			if ep, ok := c.endpoints[name]; !ok || ep.URL != old.URL {
				d.enable(name) // a new URL gets a new chance
			}
		}
		for _, dl := range d.deliveries {
			if _, ok := c.endpoints[dl.Endpoint]; !ok && dl.State == DeliveryPending {
				dead = append(dead, d.kill(dl, "endpoint removed from config"))
			}
		}
	}
	d.c = c
	return dead
}

// reload swaps the configuration; pending deliveries keep their schedule.
func (d *Dispatcher) reload(c *compiled) {
	d.mu.Lock()
	dead := d.setConfig(c)
	d.mu.Unlock()
	d.notifyDead(dead)
	d.signal()
}

func (d *Dispatcher) notifyDead(dead []Delivery) {
	if d.opt.OnDeadLetter == nil {
		return
	}
	for _, dl := range dead {
		d.opt.OnDeadLetter(dl)
	}
}

func (d *Dispatcher) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Enqueue schedules alert for every endpoint its rule routes to. An alert
// already known for an endpoint (a replay) is not delivered again. It
// returns ErrQueueFull, enqueuing nothing, when the queue has no room.
func (d *Dispatcher) Enqueue(a recon.Alert) error {
	d.mu.Lock()
	var dead []Delivery
	defer func() { d.mu.Unlock(); d.notifyDead(dead); d.signal() }()
	var todo []string
	for _, name := range d.c.routes[a.Rule] {
		if _, ok := d.deliveries[deliveryKey(a.ID, name)]; ok {
			d.opt.Metrics.deliveries.WithLabelValues(name, "duplicate").Inc()
			continue
		}
		todo = append(todo, name)
	}
	if d.pending+len(todo) > d.c.delivery.QueueSize {
		return fmt.Errorf("%w: %d pending, limit %d, alert %s", ErrQueueFull, d.pending, d.c.delivery.QueueSize, a.ID)
	}
	body := webhookBody(a, d.c.cfg.BaseURL)
	now := d.opt.Now()
	for _, name := range todo {
		dl := &Delivery{AlertID: a.ID, Endpoint: name, State: DeliveryPending, Created: now, NextAt: now, Body: body, index: -1}
		d.add(dl)
		d.pending++
		if why, ok := d.gone[name]; ok {
			dead = append(dead, d.kill(dl, "endpoint disabled: "+why))
			continue
		}
		heap.Push(&d.queue, dl)
	}
	return nil
}

// webhookBody is the JSON payload; it depends only on the alert, so every
// attempt sends the same bytes.
func webhookBody(a recon.Alert, base string) json.RawMessage {
	type links struct {
		Alert string `json:"alert"`
	}
	type data struct {
		recon.Alert
		AlertID string `json:"alert"`
		Links   links  `json:"links"`
	}
	msg := struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
		Data      data      `json:"data"`
	}{Type: "alert." + a.State, Timestamp: a.At.UTC(),
		Data: data{Alert: a, AlertID: a.ID, Links: links{Alert: base + "/v1/alerts/" + a.ID}}}
	b, err := json.Marshal(msg)
	if err != nil {
		panic(fmt.Sprintf("alerts: webhook body does not marshal: %v", err)) // a bug
	}
	return b
}

// kill gives a delivery up and queues its dead letter for the
// dead-letters topic; the caller holds the lock.
func (d *Dispatcher) kill(dl *Delivery, reason string) Delivery {
	if dl.index >= 0 {
		heap.Remove(&d.queue, dl.index)
	}
	dl.State, dl.Reason, dl.NextAt = DeliveryDead, reason, time.Time{}
	d.changed[deliveryKey(dl.AlertID, dl.Endpoint)] = true
	d.finishLocked(dl)
	d.opt.Metrics.deliveries.WithLabelValues(dl.Endpoint, "dead_letter").Inc()
	d.dead = append(d.dead, deadLetter(dl, d.opt.Now()))
	return d.copyOf(dl)
}

// deadLetter is what the dead-letters topic keeps of a delivery given up:
// the webhook body as raw bytes, the endpoint and alert id, and why. Its id
// counts the attempts, so a delivery redelivered and given up again is a
// second dead letter, and a rewrite of the same one (a transaction retried
// after a crash) is the same.
func deadLetter(dl *Delivery, now time.Time) recon.DeadLetter {
	return recon.DeadLetter{
		ID:     fmt.Sprintf("alerts/%s/%s/%d", dl.AlertID, dl.Endpoint, len(dl.Attempts)),
		Source: DeadLetterSource,
		Where:  fmt.Sprintf("endpoint %s, alert %s", dl.Endpoint, dl.AlertID),
		Reason: dl.Reason,
		Raw:    dl.Body,
		At:     now.UTC(),
	}
}

// DeadLetterSource is the Source of the dead letters of deliveries given up.
const DeadLetterSource = "alerts"

func (d *Dispatcher) add(dl *Delivery) {
	key := deliveryKey(dl.AlertID, dl.Endpoint)
	d.deliveries[key] = dl
	d.byAlert[dl.AlertID] = append(d.byAlert[dl.AlertID], key)
	d.changed[key] = true
}

func (d *Dispatcher) forget(key string) {
	dl := d.deliveries[key]
	d.changed[key] = true
	delete(d.deliveries, key)
	keys := slices.DeleteFunc(d.byAlert[dl.AlertID], func(k string) bool { return k == key })
	if len(keys) == 0 {
		delete(d.byAlert, dl.AlertID)
	} else {
		d.byAlert[dl.AlertID] = keys
	}
}

func (d *Dispatcher) finishLocked(dl *Delivery) {
	d.pending--
	key := deliveryKey(dl.AlertID, dl.Endpoint)
	d.done = append(d.done, key)
	for len(d.done) > d.c.delivery.History {
		if old := d.deliveries[d.done[0]]; old != nil && old.State != DeliveryPending {
			d.forget(d.done[0])
		}
		d.done = d.done[1:]
	}
}

func (d *Dispatcher) copyOf(dl *Delivery) Delivery {
	c := *dl
	c.Attempts = slices.Clone(dl.Attempts)
	return c
}

// Run delivers until ctx is done, then waits for attempts in flight.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		batch, next := d.due()
		for _, dl := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d.attempt(ctx, dl)
			}()
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(d.opt.Now()), 0)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// due takes the deliveries whose time has come, within the in-flight
// limits, and returns the time of the next one still waiting.
func (d *Dispatcher) due() ([]*Delivery, time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.opt.Now()
	var batch, skipped []*Delivery
	total := 0
	for _, n := range d.inFlight {
		total += n
	}
	for d.queue.Len() > 0 && total < maxInFlight {
		dl := d.queue[0]
		if dl.NextAt.After(now) {
			break
		}
		heap.Pop(&d.queue)
		if d.inFlight[dl.Endpoint] >= maxInFlightEndpoint {
			skipped = append(skipped, dl)
			if len(skipped) >= maxInFlight { // a bounded look past busy endpoints
				break
			}
			continue
		}
		d.inFlight[dl.Endpoint]++
		total++
		batch = append(batch, dl)
	}
	for _, dl := range skipped {
		heap.Push(&d.queue, dl)
	}
	var next time.Time
	if d.queue.Len() > 0 && len(skipped) == 0 && total < maxInFlight {
		next = d.queue[0].NextAt
	}
	return batch, next
}

// result is what one attempt learned.
type result struct {
	status     int
	err        error
	retryAfter time.Duration
	location   string
}

// attempt POSTs one delivery and records the outcome.
func (d *Dispatcher) attempt(ctx context.Context, dl *Delivery) {
	d.mu.Lock()
	ep := d.c.endpoints[dl.Endpoint]
	client, timeout := d.client, time.Duration(d.c.delivery.Timeout)
	body := dl.Body
	d.mu.Unlock()
	start := d.opt.Now()
	var res result
	if ep == nil {
		res.err = errEndpointRemoved
	} else {
		res = post(ctx, client, ep, dl.AlertID, body, start, timeout)
	}
	if ctx.Err() != nil { // shutting down: not an attempt, it stays pending
		d.mu.Lock()
		d.inFlight[dl.Endpoint]--
		heap.Push(&d.queue, dl)
		d.mu.Unlock()
		return
	}
	end := d.opt.Now()
	d.opt.Metrics.duration.WithLabelValues(dl.Endpoint).Observe(end.Sub(start).Seconds())
	d.mu.Lock()
	dead := d.record(dl, res, start, end)
	d.mu.Unlock()
	d.notifyDead(dead)
	d.signal()
}

func post(ctx context.Context, client *http.Client, ep *endpoint, id string, body []byte, now time.Time, timeout time.Duration) result {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	if err != nil {
		return result{err: err}
	}
	ts := now.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "recon-alerts/1")
	req.Header.Set(HeaderWebhookID, id)
	req.Header.Set(HeaderWebhookTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderWebhookSignature, signKeys(ep.secrets, id, ts, body))
	resp, err := client.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	res := result{status: resp.StatusCode, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now)}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		res.location = resp.Header.Get("Location")
	}
	return res
}

// parseRetryAfter reads seconds or an HTTP date; 0 when absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 || s > int64(maxDeliveryElapsed/time.Second) {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// record applies an attempt's result; the caller holds the lock.
func (d *Dispatcher) record(dl *Delivery, res result, start, end time.Time) []Delivery {
	d.inFlight[dl.Endpoint]--
	at := Attempt{At: start, Status: res.status, DurationMS: end.Sub(start).Milliseconds()}
	switch {
	case res.err != nil:
		at.Error = res.err.Error()
	case res.location != "":
		at.Error = fmt.Sprintf("redirect %d to %q not followed", res.status, res.location)
	case res.status < 200 || res.status > 299:
		at.Error = fmt.Sprintf("status %d", res.status)
	}
	dl.Attempts = append(dl.Attempts, at)
	d.changed[deliveryKey(dl.AlertID, dl.Endpoint)] = true
	if dl.State != DeliveryPending { // redelivered or killed meanwhile
		return nil
	}
	if at.Error == "" {
		dl.State, dl.NextAt = DeliveryDelivered, time.Time{}
		d.finishLocked(dl)
		d.opt.Metrics.deliveries.WithLabelValues(dl.Endpoint, "delivered").Inc()
		return nil
	}
	if errors.Is(res.err, errEndpointRemoved) {
		return []Delivery{d.kill(dl, "endpoint removed from config")}
	}
	if res.status == http.StatusGone {
		why := fmt.Sprintf("answered 410 Gone at %s", start.UTC().Format(time.RFC3339))
		d.gone[dl.Endpoint] = why
		d.changedGone[dl.Endpoint] = true
		d.opt.Metrics.deliveries.WithLabelValues(dl.Endpoint, "gone").Inc()
		dead := []Delivery{d.kill(dl, "endpoint "+why+"; disabled")}
		for _, other := range d.deliveries {
			if other.Endpoint == dl.Endpoint && other.State == DeliveryPending && other.index >= 0 {
				dead = append(dead, d.kill(other, "endpoint disabled: "+why))
			}
		}
		return dead
	}
	cfg := d.c.delivery
	deadline := dl.Created.Add(time.Duration(cfg.MaxElapsed))
	if len(dl.Attempts) >= cfg.MaxAttempts || !end.Before(deadline) {
		return []Delivery{d.kill(dl, fmt.Sprintf("gave up after %d attempts over %s: %s",
			len(dl.Attempts), end.Sub(dl.Created).Truncate(time.Second), at.Error))}
	}
	n := min(len(dl.Attempts)-1, 30)
	ceil := min(time.Duration(cfg.InitialBackoff)<<n, time.Duration(cfg.MaxBackoff))
	wait := max(d.opt.Jitter(ceil), res.retryAfter)
	dl.NextAt = end.Add(wait)
	if dl.NextAt.After(deadline) {
		dl.NextAt = deadline // one last try when the schedule ends
	}
	heap.Push(&d.queue, dl)
	d.opt.Metrics.deliveries.WithLabelValues(dl.Endpoint, "retry").Inc()
	return nil
}

// Redeliver starts a new schedule for every delivery of an alert (its
// attempts so far are kept). It returns ErrNotFound for an unknown alert.
func (d *Dispatcher) Redeliver(alertID string) error {
	d.mu.Lock()
	var dead []Delivery
	defer func() { d.mu.Unlock(); d.notifyDead(dead); d.signal() }()
	found := false
	now := d.opt.Now()
	for _, key := range d.byAlert[alertID] {
		dl := d.deliveries[key]
		found = true
		if dl.State == DeliveryPending {
			continue
		}
		d.done = slices.DeleteFunc(d.done, func(k string) bool { return k == deliveryKey(dl.AlertID, dl.Endpoint) })
		dl.State, dl.Reason, dl.Created, dl.NextAt = DeliveryPending, "", now, now
		d.changed[deliveryKey(dl.AlertID, dl.Endpoint)] = true
		d.pending++
		if why, ok := d.gone[dl.Endpoint]; ok {
			dead = append(dead, d.kill(dl, "endpoint disabled: "+why))
			continue
		}
		if _, ok := d.c.endpoints[dl.Endpoint]; !ok {
			dead = append(dead, d.kill(dl, "endpoint removed from config"))
			continue
		}
		heap.Push(&d.queue, dl)
	}
	if !found {
		return fmt.Errorf("%w: alert %s has no deliveries", ErrNotFound, alertID)
	}
	return nil
}

// Enable re-enables an endpoint disabled by a 410.
func (d *Dispatcher) Enable(endpoint string) {
	d.mu.Lock()
	d.enable(endpoint)
	d.mu.Unlock()
}

// enable forgets that an endpoint is disabled; the caller holds the lock.
func (d *Dispatcher) enable(endpoint string) {
	if _, ok := d.gone[endpoint]; ok {
		delete(d.gone, endpoint)
		d.changedGone[endpoint] = true
	}
}

// Disabled returns the endpoints disabled by a 410, with the reason.
func (d *Dispatcher) Disabled() map[string]string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]string, len(d.gone))
	for k, v := range d.gone {
		out[k] = v
	}
	return out
}

// Deliveries returns the deliveries of one alert (all when alertID is
// empty), without bodies, ordered by alert id and endpoint.
func (d *Dispatcher) Deliveries(alertID string) []Delivery {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Delivery
	view := func(dl *Delivery) {
		c := d.copyOf(dl)
		c.Body = nil
		out = append(out, c)
	}
	if alertID == "" {
		for _, dl := range d.deliveries {
			view(dl)
		}
	} else {
		for _, key := range d.byAlert[alertID] {
			view(d.deliveries[key])
		}
	}
	slices.SortFunc(out, func(a, b Delivery) int {
		return compareStrings(deliveryKey(a.AlertID, a.Endpoint), deliveryKey(b.AlertID, b.Endpoint))
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

type snapshot struct {
	Version    int               `json:"version"`
	Deliveries []Delivery        `json:"deliveries"`
	Done       []string          `json:"done"`
	Gone       map[string]string `json:"gone,omitempty"`
}

// Snapshot returns the deliveries (with bodies) and disabled endpoints as
// JSON, for the caller to persist.
func (d *Dispatcher) Snapshot() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := snapshot{Version: 1, Done: d.done, Gone: d.gone}
	for _, dl := range d.deliveries {
		s.Deliveries = append(s.Deliveries, *dl)
	}
	slices.SortFunc(s.Deliveries, func(a, b Delivery) int {
		return compareStrings(deliveryKey(a.AlertID, a.Endpoint), deliveryKey(b.AlertID, b.Endpoint))
	})
	b, err := json.Marshal(s)
	if err != nil {
		panic(fmt.Sprintf("alerts: dispatcher snapshot does not marshal: %v", err)) // a bug
	}
	return b
}

// Restore replaces the dispatcher's state with a Snapshot. Call it before
// Run. Pending deliveries resume their schedule.
func (d *Dispatcher) Restore(b []byte) error {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("alerts: restore deliveries: %w", err)
	}
	if s.Version != 1 {
		return fmt.Errorf("alerts: restore deliveries: version %d, want 1", s.Version)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deliveries, d.byAlert, d.queue, d.pending = map[string]*Delivery{}, map[string][]string{}, nil, 0
	d.done, d.gone = s.Done, s.Gone
	if d.gone == nil {
		d.gone = map[string]string{}
	}
	for i := range s.Deliveries {
		dl := &s.Deliveries[i]
		dl.index = -1
		d.add(dl) // marked changed: a restored snapshot is written out whole
		if dl.State == DeliveryPending {
			d.pending++
			heap.Push(&d.queue, dl)
		}
	}
	for name := range d.gone {
		d.changedGone[name] = true
	}
	return nil
}

// dueHeap orders pending deliveries by NextAt, then key, so the order is
// deterministic.
type dueHeap []*Delivery

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	if !h[i].NextAt.Equal(h[j].NextAt) {
		return h[i].NextAt.Before(h[j].NextAt)
	}
	return deliveryKey(h[i].AlertID, h[i].Endpoint) < deliveryKey(h[j].AlertID, h[j].Endpoint)
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *dueHeap) Push(x any)   { dl := x.(*Delivery); dl.index = len(*h); *h = append(*h, dl) }
func (h *dueHeap) Pop() any {
	old := *h
	dl := old[len(old)-1]
	old[len(old)-1] = nil
	dl.index = -1
	*h = old[:len(old)-1]
	return dl
}
