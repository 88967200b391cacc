package proofs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/schemas"
)

// Config is the proofs component's configuration.
type Config struct {
	Kafka bus.Config
	// Timeout is how long a statement may wait for its transactions to be
	// booked before it is reported incomplete (default 10 minutes).
	Timeout time.Duration
	// GiveUp is how long an incomplete statement stays pending for a
	// final status (default 7 days).
	GiveUp time.Duration
	Limits Limits
	Log    *slog.Logger
	Now    func() time.Time
}

// Validate checks the configuration once, at the edge.
func (c Config) Validate() error {
	if c.Timeout < 0 || c.Timeout > 7*24*time.Hour {
		return fmt.Errorf("proofs: timeout %s out of range 0..168h", c.Timeout)
	}
	if c.GiveUp < 0 || c.GiveUp > 366*24*time.Hour {
		return fmt.Errorf("proofs: give-up %s out of range 0..8784h", c.GiveUp)
	}
	return c.Kafka.Validate()
}

func (c Config) withDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.GiveUp == 0 {
		c.GiveUp = 7 * 24 * time.Hour
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Limits = c.Limits.withDefaults()
	return c
}

// Service reads statements, bank transactions and the journal, and
// publishes proofs to the reconciliation topic. Run one instance: it reads
// every partition and is not a consumer group.
type Service struct {
	cfg   Config
	t     *Tracker
	found *prometheus.CounterVec
	wait  prometheus.Gauge
}

// New builds the service; reg may be nil.
func New(cfg Config, reg prometheus.Registerer) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Service{cfg: cfg, t: NewTracker(cfg.Limits),
		found: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "recon_proofs_total", Help: "Statement proofs published, by type and status."}, []string{"type", "status"}),
		wait:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "recon_proofs_pending", Help: "Statements waiting to be proved."}),
	}
	if reg != nil {
		reg.MustRegister(s.found, s.wait)
	}
	return s, nil
}

// inputs are the topics the proofs read, in the order they are replayed
// on start: a statement replayed last finds its transactions and entries.
var inputs = []string{schemas.TopicBankTransactions, schemas.TopicLedgerEntries, schemas.TopicStatements}

// Run restores from the topics (its own output, then the inputs from their
// start) and proves statements until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	kc := s.cfg.Kafka
	began := time.Now()
	parts := bus.Partitions(kc.Partitions)
	if _, err := bus.Replay(ctx, kc, schemas.TopicReconciliation, parts, func(r *kgo.Record) error {
		var b recon.Break
		if json.Unmarshal(r.Value, &b) == nil && b.ID != "" {
			s.t.Emitted(b)
		}
		return nil
	}); err != nil {
		return err
	}
	start := map[string]map[int32]kgo.Offset{}
	for _, topic := range inputs {
		next, err := bus.Replay(ctx, kc, topic, parts, func(r *kgo.Record) error { s.apply(r); return nil })
		if err != nil {
			return err
		}
		start[topic] = map[int32]kgo.Offset{}
		for p, o := range next {
			start[topic][p] = kgo.NewOffset().At(o)
		}
	}
	s.cfg.Log.Info("proofs restored", "pending", s.t.Pending(), "seconds", int(time.Since(began).Seconds()))
	producer, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		return err
	}
	defer producer.Close()
	cl, err := kgo.NewClient(kc.Opts(kgo.ConsumePartitions(start))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		if err := s.publish(ctx, producer, s.t.Evaluate(s.cfg.Now(), s.cfg.Timeout, s.cfg.GiveUp)); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// not marked emitted: the next pass publishes them again
			s.cfg.Log.Warn("proofs: publish failed, retrying on the next pass", "err", err)
		}
		s.wait.Set(float64(s.t.Pending()))
		pollCtx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pollCtx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				s.cfg.Log.Warn("proofs: fetch failed", "topic", topic, "partition", p, "err", err)
			}
		})
		fs.EachRecord(s.apply)
	}
}

func (s *Service) apply(r *kgo.Record) {
	var err error
	switch r.Topic {
	case schemas.TopicBankTransactions:
		if !bytes.Contains(r.Value, []byte(`"camt.053`)) {
			return // only camt.053 transactions are proved; most records are not
		}
		var t recon.BankTransaction
		if err = json.Unmarshal(r.Value, &t); err == nil {
			s.t.Transaction(t)
		}
	case schemas.TopicLedgerEntries:
		if !bytes.Contains(r.Value, []byte(`"bank:`)) {
			return // no posting on a bank account
		}
		var e recon.Entry
		if err = json.Unmarshal(r.Value, &e); err == nil {
			s.t.Entry(e)
		}
	case schemas.TopicStatements:
		var st recon.Statement
		if err = json.Unmarshal(r.Value, &st); err == nil {
			s.t.Statement(st, r.Timestamp)
		}
	}
	if err != nil {
		s.cfg.Log.Warn("proofs: record skipped", "at", bus.Where(r), "err", err)
	}
}

// publish produces breaks, keyed by account, and remembers them once
// durable. A failure ends Run: a restart replays and publishes again.
func (s *Service) publish(ctx context.Context, producer *kgo.Client, bs []recon.Break) error {
	if len(bs) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, len(bs))
	for i, b := range bs {
		v, err := json.Marshal(b)
		if err != nil {
			panic(fmt.Sprintf("proofs: break does not marshal: %v", err)) // a bug
		}
		recs[i] = bus.Event{Topic: schemas.TopicReconciliation, Key: b.AccountIBAN, Type: schemas.TypeBreak,
			ID: b.ID + "@" + b.Status, Source: "recon/proofs", Time: b.At, Value: v, Partition: -1}.Record(s.cfg.Kafka.Partitions)
	}
	if err := producer.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("proofs: publish %d breaks: %w", len(bs), err)
	}
	for _, b := range bs {
		s.t.Emitted(b)
		s.found.WithLabelValues(b.Type, b.Status).Inc()
		if b.Status != recon.BreakOK {
			s.cfg.Log.Warn("statement proof", "type", b.Type, "status", b.Status, "statement", b.StatementID, "difference", b.Difference, "reason", b.Reason)
		}
	}
	return nil
}
