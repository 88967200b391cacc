package collect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/schemas"
)

// Loans reads the loans topic whole: the latest version of every loan.
func Loans(ctx context.Context, c bus.Config) ([]recon.Loan, error) {
	byID := map[string]recon.Loan{}
	_, err := bus.Replay(ctx, c, schemas.TopicLoans, bus.Partitions(c.Partitions), func(r *kgo.Record) error {
		if r.Value == nil {
			delete(byID, string(r.Key))
			return nil
		}
		l, err := recon.DecodeLoan(r.Value)
		if err != nil {
			return fmt.Errorf("collect: loan record %s: %w", bus.Where(r), err)
		}
		byID[l.LoanID] = l
		return nil
	})
	out := make([]recon.Loan, 0, len(byID))
	for _, l := range byID {
		out = append(out, l)
	}
	return out, err
}

// Known reads the expected-payments topic whole into a Tracker (the latest
// state of every item) and returns the next offset of each partition.
func Known(ctx context.Context, c bus.Config, t *Tracker) (map[int32]int64, error) {
	return bus.Replay(ctx, c, schemas.TopicExpected, bus.Partitions(c.Partitions), func(r *kgo.Record) error {
		e, err := decodeExpected(r)
		if err == nil {
			t.Observe(e)
		}
		return err
	})
}

// Items lists what a Tracker follows.
func (t *Tracker) Items() []recon.Expected {
	out := make([]recon.Expected, 0, len(t.items))
	for _, it := range t.items {
		out = append(out, *it)
	}
	return out
}

func decodeExpected(r *kgo.Record) (recon.Expected, error) {
	var e recon.Expected
	if err := bus.Unmarshal(r.Value, &e); err != nil {
		return e, fmt.Errorf("collect: expected record %s: %w", bus.Where(r), err)
	}
	return e, nil
}

// Events are the records that publish items (new ones, or a new status),
// keyed by end-to-end id; the event id carries the status, so a
// redelivery of the same state is the same event.
func Events(items []recon.Expected, source string, now time.Time) []bus.Event {
	evs := make([]bus.Event, 0, len(items))
	for _, it := range items {
		v, err := bus.Marshal(it)
		if err != nil {
			panic("collect: marshal expected item: " + err.Error())
		}
		evs = append(evs, bus.Event{Topic: schemas.TopicExpected, Key: it.ID, Type: schemas.TypeExpected,
			ID: it.ID + "@" + string(it.Status) + "/" + it.SettledBy, Source: source, Time: now, Value: v, Partition: -1})
	}
	return evs
}

// Publish produces items and waits until Kafka has them all.
func Publish(ctx context.Context, cl *kgo.Client, c bus.Config, items []recon.Expected, source string, now time.Time) error {
	var recs []*kgo.Record
	for _, ev := range Events(items, source, now) {
		recs = append(recs, ev.Record(c.Partitions))
	}
	if len(recs) == 0 {
		return nil
	}
	return cl.ProduceSync(ctx, recs...).FirstErr()
}

// LoopConfig configures the tracker's Kafka loop.
type LoopConfig struct {
	Kafka bus.Config
	// Group is the consumer group reading bank transactions; default
	// "recon-expected".
	Group string
	Log   *slog.Logger
	Now   func() time.Time
	// PollTimeout bounds each wait for records; default 1s.
	PollTimeout time.Duration
}

// Loop feeds a Tracker from Kafka and publishes every status change on
// the expected-payments topic: it restores the items from that topic, then
// reads new items from it and bank transactions, status reports and
// returns through a consumer group, and once per pass marks overdue items.
// Delivery is at least once: changes are produced before the offsets are
// committed, and a replay produces the same states (the tracker is
// deterministic and status only moves up), which compaction folds.
type Loop struct {
	cfg LoopConfig
	t   *Tracker
}

// NewLoop returns a loop over a new Tracker.
func NewLoop(cfg LoopConfig) *Loop {
	if cfg.Group == "" {
		cfg.Group = "recon-expected"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = time.Second
	}
	return &Loop{cfg: cfg, t: NewTracker()}
}

// Run runs until ctx ends. A pass that cannot read, publish or commit
// (Kafka unreachable, a broker restarting) starts over after a backoff
// from the topics, with a fresh tracker: its changes were not committed,
// so they are published again, never lost, and the process stays up.
func (l *Loop) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		err := l.run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		l.cfg.Log.Warn("expected payments tracker restarts", "err", err, "after", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
		l.t = NewTracker()
	}
}

func (l *Loop) run(ctx context.Context) error {
	kc := l.cfg.Kafka
	next, err := Known(ctx, kc, l.t)
	if err != nil {
		return err
	}
	offsets := map[int32]kgo.Offset{}
	for p, o := range next {
		offsets[p] = kgo.NewOffset().At(o)
	}
	items, err := kgo.NewClient(kc.Opts(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{schemas.TopicExpected: offsets}))...)
	if err != nil {
		return err
	}
	defer items.Close()
	bank, err := kgo.NewClient(kc.Opts(kgo.ConsumerGroup(l.cfg.Group), kgo.ConsumeTopics(schemas.TopicBankTransactions),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		return err
	}
	defer bank.Close()
	l.cfg.Log.Info("expected payments tracker started", "items", l.t.Len())
	for ctx.Err() == nil {
		var changed []recon.Expected
		for _, r := range l.poll(ctx, items) {
			e, err := decodeExpected(r)
			if err != nil {
				l.cfg.Log.Error("expected item refused", "err", err)
				continue
			}
			changed = append(changed, l.t.Observe(e)...)
		}
		for _, r := range l.poll(ctx, bank) {
			rec, err := decodeBank(r)
			if err != nil {
				l.cfg.Log.Error("bank record refused", "err", err)
				continue
			}
			if rec != nil {
				changed = append(changed, l.t.Observe(rec)...)
			}
		}
		changed = append(changed, l.t.Overdue(Today(l.cfg.Now()))...)
		for _, c := range changed {
			l.cfg.Log.Info("expected payment", "id", c.ID, "kind", c.Kind, "loan", c.LoanID, "status", c.Status, "reason", c.Reason)
		}
		if err := Publish(ctx, bank, kc, changed, "recon/collect/tracker", l.cfg.Now()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("collect: publish status changes: %w", err)
		}
		if err := bank.CommitUncommittedOffsets(ctx); err != nil && ctx.Err() == nil {
			return fmt.Errorf("collect: commit offsets: %w", err)
		}
	}
	return nil
}

// Tracker is the loop's tracker, for tests and read models; not safe to
// use while Run runs.
func (l *Loop) Tracker() *Tracker { return l.t }

func (l *Loop) poll(ctx context.Context, cl *kgo.Client) []*kgo.Record {
	pctx, cancel := context.WithTimeout(ctx, l.cfg.PollTimeout)
	defer cancel()
	fs := cl.PollRecords(pctx, 10_000)
	fs.EachError(func(t string, p int32, err error) {
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			l.cfg.Log.Warn("fetch", "topic", t, "partition", p, "err", err)
		}
	})
	return fs.Records()
}

// decodeBank reads a bank-transactions record by its event type; nil for
// types the tracker does not follow.
func decodeBank(r *kgo.Record) (any, error) {
	var err error
	switch bus.Header(r, schemas.HeaderType) {
	case schemas.TypeBankTransaction:
		var t recon.BankTransaction
		if err = bus.Unmarshal(r.Value, &t); err == nil {
			return t, nil
		}
	case schemas.TypeStatusReport:
		var s recon.StatusReport
		if err = bus.Unmarshal(r.Value, &s); err == nil {
			return s, nil
		}
	case schemas.TypeReturn:
		var x recon.Return
		if err = bus.Unmarshal(r.Value, &x); err == nil {
			return x, nil
		}
	default:
		return nil, nil
	}
	return nil, fmt.Errorf("%s: %w", bus.Where(r), err)
}
