// Package alerts raises and delivers recon's alerts: it evaluates rules from
// a YAML file over the events of the pipeline (balances, bank transactions,
// suspense, direct debits, statements, instalments, expected payments),
// turns the moments a condition starts or stops holding into recon.Alert
// edges, and delivers them as signed Standard Webhooks with retries and a
// dead letter.
//
// Layout: config.go (the file, validation), engine.go and rules.go (the
// pure, edge-triggered engine), dispatch.go (the delivery loop), sign.go
// (Standard Webhooks signatures, Verify for receivers), ssrf.go (the dial
// guard), metrics.go, http.go (the /v1/alerts API), state.go (the state
// as keys of a compacted topic), feed.go (the loop over Kafka). Service
// ties them together; it reads no environment and needs no Kafka: the
// caller feeds it events and persists Changes, as Feed does on
// schemas.TopicAlertsState in the transaction of the alerts they go with.
//
// Rule kinds and their fields:
//
//	balance_below/above  account, currency, threshold, hysteresis
//	large_credit         currency, threshold, [account]
//	suspense_amount      currency, threshold, hysteresis
//	suspense_age         age, [currency]
//	return_rate          threshold (percent), window, [min_count=10], hysteresis
//	statement_missing    account, at "HH:MM", [timezone=UTC], [days=1]
//	statement_break      [account], [threshold = tolerance, default 0]
//	instalment_overdue   [days=0], [subject = loan id], [threshold], [timezone]
//	expected_overdue     [currency], [threshold = min amount, needs currency], [subject = loan id]
//
// A balance_below alert fires when the balance drops below threshold and
// resolves when it is back at threshold+hysteresis or more (mirrored for
// balance_above, suspense_amount, return_rate). large_credit and
// expected_overdue are events, not conditions: they fire once per
// transaction or expected payment (a collection or disbursement the
// tracker published overdue on recon.expected.v1; the alert carries the
// record in Expected) and never resolve.
package alerts

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/reconhq/recon"
)

// maxRecent is how many alerts Service keeps for GET /v1/alerts.
const maxRecent = 1000

// Options are Service's injected dependencies; all are optional.
type Options struct {
	Registry     *prometheus.Registry // metrics are registered here, never globally
	Now          func() time.Time     // dispatcher clock, default time.Now
	Jitter       func(max time.Duration) time.Duration
	OnDeadLetter func(Delivery)
}

// Service is the alerts component: engine, dispatcher, recent alerts.
type Service struct {
	disp *Dispatcher
	m    *Metrics

	mu     sync.Mutex
	engine *Engine
	c      *compiled
	recent []recon.Alert // oldest first
	byID   map[string]int
	// recentSeq numbers the alerts remembered; recentDirty holds the
	// recent/<slot> records not yet returned by Changes
	recentSeq   uint64
	recentDirty map[int][]byte
	hash        [32]byte // of the file last loaded by ReloadIfChanged
}

// New builds a Service from a config (see LoadConfig).
func New(cfg Config, opt Options) (*Service, error) {
	c, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	m := NewMetrics(opt.Registry)
	s := &Service{m: m, engine: newEngine(c), c: c, byID: map[string]int{}, recentDirty: map[int][]byte{}}
	s.disp = newDispatcher(c, DispatcherOptions{Now: opt.Now, Jitter: opt.Jitter, OnDeadLetter: opt.OnDeadLetter, Metrics: m})
	return s, nil
}

// Observe feeds one event to the engine and enqueues the resulting alerts
// for delivery. The alerts are returned (for the caller to produce to the
// alerts topic) even when enqueuing fails with ErrQueueFull; the caller
// then retries with Enqueue.
func (s *Service) Observe(now time.Time, ev Event) ([]recon.Alert, error) {
	s.mu.Lock()
	alerts := s.engine.Observe(now, ev)
	s.mu.Unlock()
	return alerts, s.raised(alerts)
}

// Tick evaluates the time-based rules at now; see Observe.
func (s *Service) Tick(now time.Time) ([]recon.Alert, error) {
	s.mu.Lock()
	alerts := s.engine.Tick(now)
	s.mu.Unlock()
	return alerts, s.raised(alerts)
}

func (s *Service) raised(alerts []recon.Alert) error {
	for _, a := range alerts {
		s.m.fired.WithLabelValues(a.Rule, a.State).Inc()
	}
	return s.Enqueue(alerts...)
}

// Enqueue records alerts (e.g. read back from the alerts topic) and
// schedules their delivery; an alert id already delivered or pending for
// an endpoint is not sent again.
func (s *Service) Enqueue(alerts ...recon.Alert) error {
	for _, a := range alerts {
		if err := s.disp.Enqueue(a); err != nil {
			return err
		}
		s.remember(a)
	}
	return nil
}

func (s *Service) remember(a recon.Alert) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[a.ID]; ok {
		return
	}
	seq := s.recentSeq
	s.recentDirty[int(seq%maxRecent)] = mustJSON(recentRecord{Seq: seq, Alert: a})
	s.add(a, seq)
}

// rememberSeq is remember of an alert restored with its number: it
// changes nothing to persist.
func (s *Service) rememberSeq(a recon.Alert, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byID[a.ID]; !ok {
		s.add(a, seq)
	}
}

// add appends a to the recent alerts; the caller holds the lock.
func (s *Service) add(a recon.Alert, seq uint64) {
	s.recentSeq = max(s.recentSeq, seq+1)
	s.recent = append(s.recent, a)
	if len(s.recent) > maxRecent {
		s.recent = s.recent[len(s.recent)-maxRecent:]
	}
	clear(s.byID)
	for i, r := range s.recent {
		s.byID[r.ID] = i
	}
}

// Recent returns the last alerts raised or enqueued, newest first.
func (s *Service) Recent() []recon.Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]recon.Alert, len(s.recent))
	for i, a := range s.recent {
		out[len(out)-1-i] = a
	}
	return out
}

// Alert returns a recent alert by id.
func (s *Service) Alert(id string) (recon.Alert, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, ok := s.byID[id]
	if !ok {
		return recon.Alert{}, false
	}
	return s.recent[i], true
}

// Redeliver starts a new delivery schedule for an alert.
func (s *Service) Redeliver(id string) error { return s.disp.Redeliver(id) }

// Dispatcher gives access to the deliveries (Snapshot, Deliveries, Enable).
func (s *Service) Dispatcher() *Dispatcher { return s.disp }

// Run delivers webhooks until ctx is done.
func (s *Service) Run(ctx context.Context) error { return s.disp.Run(ctx) }

// Reload applies a new config without restart: the engine keeps the state
// of rules whose name is unchanged, the dispatcher keeps its deliveries.
// An invalid config is refused and the running one stays.
func (s *Service) Reload(cfg Config) error {
	c, err := compile(cfg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	e := newEngine(c)
	e.adopt(s.engine)
	s.engine, s.c = e, c
	s.mu.Unlock()
	s.disp.reload(c)
	return nil
}

// ReloadIfChanged reads path and reloads when its content changed since
// the last call (the first call always loads). It reports whether it did.
func (s *Service) ReloadIfChanged(path string) (bool, error) {
	b, err := readLimited(path)
	if err != nil {
		return false, err
	}
	h := sha256.Sum256(b)
	s.mu.Lock()
	same := h == s.hash
	s.mu.Unlock()
	if same {
		return false, nil
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if err := s.Reload(cfg); err != nil {
		return false, err
	}
	s.mu.Lock()
	s.hash = h
	s.mu.Unlock()
	return true, nil
}

// Watch calls ReloadIfChanged on every tick until ctx is done; errors (a
// broken file keeps the running config) go to onErr.
func (s *Service) Watch(ctx context.Context, path string, tick <-chan time.Time, onErr func(error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
			if _, err := s.ReloadIfChanged(path); err != nil && onErr != nil {
				onErr(err)
			}
		}
	}
}

type serviceState struct {
	Engine     json.RawMessage `json:"engine"`
	Deliveries json.RawMessage `json:"deliveries"`
	Recent     []recon.Alert   `json:"recent"`
}

// State returns engine state, deliveries and recent alerts as one JSON
// document for the caller to persist; Restore takes it back.
func (s *Service) State() []byte {
	s.mu.Lock()
	st := serviceState{Engine: s.engine.State(), Recent: s.recent}
	s.mu.Unlock()
	st.Deliveries = s.disp.Snapshot()
	b, err := json.Marshal(st)
	if err != nil {
		panic(fmt.Sprintf("alerts: state does not marshal: %v", err)) // a bug
	}
	return b
}

// Restore loads a State; call it before Run. Nothing firing re-fires.
func (s *Service) Restore(b []byte) error {
	var st serviceState
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("alerts: restore: %w", err)
	}
	s.mu.Lock()
	err := s.engine.Restore(st.Engine)
	s.recent = nil
	clear(s.byID)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	for _, a := range st.Recent {
		s.remember(a)
	}
	return s.disp.Restore(st.Deliveries)
}
