// Package service runs the matcher on Kafka: it keeps the loans table from
// the compacted loans topic and drives the matcher's two stages, each as one
// loop of poll → decide → produce → commit inside a Kafka transaction
// (franz-go's GroupTransactSession), restoring their state from the dedup
// changelog and the journal when partitions are assigned.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/matcher"
	"github.com/reconhq/recon/schemas"
	"github.com/reconhq/recon/store"
)

// Config of the matcher service.
type Config struct {
	Kafka bus.Config
	// Instance names this process in the consumer groups and transactional
	// ids: stable across restarts, unique among running instances, so a
	// restart fences its previous incarnation at once.
	Instance string
	// MaxPollRecords bounds one transaction.
	MaxPollRecords int
	Log            *slog.Logger
	// OwnAccounts are the lender's own IBANs (upper case, no spaces):
	// transfers between them book to transit:own-accounts.
	OwnAccounts map[string]bool
	// Allocation is the policy for a payment to a borrower's virtual IBAN
	// that names none of their loans: matcher.AllocOldestDue (default) or
	// matcher.AllocProRata.
	Allocation string
	// LoanReference is the lender's loan reference format (anchored): a
	// remittance-text token names a loan only when it matches
	// (matcher.Router.LoanReference). Nil: any known loan id.
	LoanReference *regexp.Regexp
	// Now is the clock; the stages themselves never read one.
	Now func() time.Time
	// DataDir is where the stages keep their state on disk (a store per
	// instance, under matcher/<instance>); "" keeps it in memory, rebuilt
	// from the changelogs at every start.
	DataDir string
}

// Service is the running matcher.
type Service struct {
	cfg     Config
	mu      sync.RWMutex // guards loans and version
	loans   *matcher.Loans
	version int64
	ready   chan struct{}
	loaded  chan struct{} // closed once the loans table caught up
	m       metrics

	// readiness: loaded closed, and each stage (route, post) restored the
	// state of a first assignment (possibly empty)
	joined    [2]atomic.Bool
	readyOnce sync.Once
	// stuck is, per stage, why its last restore could not complete
	// (nil once one did): NotReady names it instead of "joining".
	stuck [2]atomic.Pointer[error]
	// stall bounds a restore's wait for progress (0: bus.DefaultReplayStall
	// for the replay, 2 × txnTimeout for settling); tests shorten it.
	stall time.Duration

	// partitions whose state each stage holds
	routeHeld, postHeld atomic.Int32
	// db is the stages' local state, open while Run runs
	db *store.DB
}

// New returns a matcher service; Run starts it. A configuration it cannot
// run with is an error naming the setting.
func New(cfg Config, reg prometheus.Registerer) (*Service, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.MaxPollRecords <= 0 {
		cfg.MaxPollRecords = 10000
	}
	if cfg.Instance == "" {
		cfg.Instance = "recon-0"
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Allocation == "" {
		cfg.Allocation = matcher.AllocOldestDue
	}
	return &Service{cfg: cfg, loans: matcher.NewLoans(), ready: make(chan struct{}), loaded: make(chan struct{}), m: newMetrics(reg)}, nil
}

// maxPollRecordsLimit bounds one transaction of a stage.
const maxPollRecordsLimit = 100_000

func (c Config) validate() error {
	switch {
	case len(c.Kafka.Brokers) == 0:
		return errors.New("matcher: no Kafka brokers")
	case c.Kafka.Partitions <= 0:
		return fmt.Errorf("matcher: %d partitions: want at least 1", c.Kafka.Partitions)
	case c.MaxPollRecords < 0 || c.MaxPollRecords > maxPollRecordsLimit:
		return fmt.Errorf("matcher: MaxPollRecords %d: want 1 to %d (0: the default)", c.MaxPollRecords, maxPollRecordsLimit)
	case c.Allocation != "" && c.Allocation != matcher.AllocOldestDue && c.Allocation != matcher.AllocProRata:
		return fmt.Errorf("matcher: allocation %q: want %s or %s", c.Allocation, matcher.AllocOldestDue, matcher.AllocProRata)
	}
	return nil
}

// Ready is closed once the loans table has caught up and both stages have
// joined their consumer groups and restored the state of the partitions
// they were given (an instance given none counts as joined).
func (s *Service) Ready() <-chan struct{} { return s.ready }

// NotReady says what the matcher still waits for, or nil once Ready is
// closed.
func (s *Service) NotReady() error {
	switch {
	case !closed(s.loaded):
		return errors.New("matcher: loading loans")
	case !s.joined[stageRoute].Load():
		if err := s.stuck[stageRoute].Load(); err != nil {
			return fmt.Errorf("matcher: route stage cannot restore its deduplication state (it retries): %w", *err)
		}
		return errors.New("matcher: route stage joining its group, restoring deduplication state")
	case !s.joined[stagePost].Load():
		if err := s.stuck[stagePost].Load(); err != nil {
			return fmt.Errorf("matcher: post stage cannot restore its posting state from the journal (it retries): %w", *err)
		}
		return errors.New("matcher: post stage joining its group, restoring posting state from the journal")
	}
	return nil
}

const (
	stageRoute = iota
	stagePost
)

// errNotRestored ends a stage's session whose restore failed: the stage
// restarts, joins again and restores again.
var errNotRestored = errors.New("state of the assigned partitions not restored (logged above): joining again")

var stageNames = [2]string{stageRoute: "route", stagePost: "post"}

// restored records that a stage holds the state of its first assignment.
func (s *Service) restored(stage int) {
	s.joined[stage].Store(true)
	s.stuck[stage].Store(nil)
	s.markReady()
}

func (s *Service) markReady() {
	if s.NotReady() == nil {
		s.readyOnce.Do(func() { close(s.ready) })
	}
}

// Run keeps the loans table and both stages running until ctx ends. A stage
// whose transaction fails is torn down and restarted (GroupTransactSession
// errors are not retryable), restoring its state from Kafka.
func (s *Service) Run(ctx context.Context) error {
	dir := ""
	if s.cfg.DataDir != "" {
		dir = filepath.Join(s.cfg.DataDir, "matcher", s.cfg.Instance)
	}
	db, err := openStore(ctx, dir, s.cfg.Log)
	if err != nil {
		return fmt.Errorf("matcher: local state: %w", err)
	}
	defer db.Close()
	s.db = db
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	// The stages join their groups and restore their partitions while the
	// loans load (restoring reads no loan); they decide nothing before the
	// loans table has caught up (waitLoans).
	errs := make(chan error, 3)
	go func() { errs <- s.forever(ctx, "route", s.route) }()
	go func() { errs <- s.forever(ctx, "post", s.post) }()
	loansCl, tb, err := s.catchUpLoans(ctx)
	if err == nil {
		defer loansCl.Close()
		close(s.loaded)
		s.markReady()
		go func() { errs <- s.tailLoans(ctx, loansCl, tb) }()
		err = <-errs
	}
	// Run returns only once every loop has stopped: a Service restarted in
	// the same process must not meet its previous sessions in the group.
	// Two remain: the stages, or (after the catch-up) the two of the three
	// loops that did not end first.
	stop()
	for range 2 {
		if e := <-errs; err == nil {
			err = e
		}
	}
	return err
}

// openStore opens the local state, waiting (bounded) while a predecessor
// that was killed still holds it.
func openStore(ctx context.Context, dir string, log *slog.Logger) (*store.DB, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		db, err := store.Open(dir, log)
		if !errors.Is(err, store.ErrInUse) || time.Now().After(deadline) {
			return db, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// waitLoans holds a stage's first decisions until the loans table has
// caught up (a payment to a loan not yet loaded would go to suspense);
// false when ctx ended first.
func (s *Service) waitLoans(ctx context.Context) bool {
	select {
	case <-s.loaded:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Service) forever(ctx context.Context, stage string, run func(context.Context) error) error {
	backoff := 100 * time.Millisecond
	for {
		err := run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		s.m.restarts.WithLabelValues(stage).Inc()
		s.cfg.Log.Warn("matcher stage restarts", "stage", stage, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// Held is how many partitions each stage holds the restored state of: a
// rebalance has moved its partitions once every instance's counts add up.
func (s *Service) Held() (route, post int) {
	return int(s.routeHeld.Load()), int(s.postHeld.Load())
}

// Loan returns a loan from the table.
func (s *Service) Loan(id string) (recon.Loan, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.loans.Get(id)
}

// produce collects a transaction's records.
type batch struct {
	n    int32
	recs []*kgo.Record
}

func (b *batch) add(e bus.Event, v any) {
	val, err := bus.Marshal(v)
	if err != nil {
		panic("matcher: marshal " + e.Type + ": " + err.Error()) // our own types always marshal
	}
	e.Value = val
	b.recs = append(b.recs, e.Record(b.n))
}

// fetchPartitionBytes bounds what one fetch reads of one partition.
const fetchPartitionBytes = 32 << 20

// txnTimeout is the stages' Kafka transaction timeout: a transaction left
// open by a crashed incarnation that nobody fences is aborted after it.
const txnTimeout = 30 * time.Second

// restore rebuilds a stage's state for the partitions it was given from
// their changelog (the dedup changelog, or the journal): it waits until the
// previous owner's transactions have settled, replays the partitions into
// apply, and logs what it read and how long it took. An error (logged) when
// it could not: the stage then ends its session (errNotRestored) and
// restarts; a wait that made no progress (*bus.ErrReplayStalled) is kept
// for NotReady until a restore succeeds.
func (s *Service) restore(ctx context.Context, cl *kgo.Client, stage int, topic string, from map[int32]int64, apply func(*kgo.Record) error) (map[int32]int64, error) {
	start, records := time.Now(), 0
	settleFor := 2 * txnTimeout
	if s.stall > 0 {
		settleFor = s.stall
	}
	parts := make([]int32, 0, len(from))
	for p := range from {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	err := settle(ctx, cl, topic, parts, settleFor)
	var next map[int32]int64
	if err == nil {
		next, err = bus.ReplayFrom(ctx, s.cfg.Kafka, topic, from, s.stall, func(r *kgo.Record) error {
			records++
			return apply(r)
		})
	}
	name := stageNames[stage]
	if err != nil {
		var stalled *bus.ErrReplayStalled
		if errors.As(err, &stalled) {
			// waiting again will not help by itself: say what it waits for, in /healthz too
			s.stuck[stage].Store(&err)
			s.cfg.Log.Error(name+" stage cannot restore its state: the last stable offset does not advance", "topic", stalled.Topic,
				"partition", stalled.Partition, "reached", stalled.Reached, "want", stalled.Want, "partitions_pending", stalled.Pending, "err", err)
			return nil, err
		}
		s.cfg.Log.Error(name+" stage could not restore its state", "from", topic, "partitions", parts, "err", err)
		return nil, err
	}
	level := slog.LevelInfo
	if len(parts) == 0 {
		level = slog.LevelDebug // a step of a rebalance
	}
	s.cfg.Log.Log(ctx, level, name+" stage restored", "partitions", parts, "from", topic, "records", records, "took", time.Since(start).Round(time.Millisecond))
	return next, nil
}

// settle makes the replay of a stage's state on assignment complete. The
// state of partitions just assigned is rebuilt from a topic this stage
// writes transactionally (the dedup changelog, the journal), read up to its
// last stable offset. A transaction of a previous owner of those partitions
// (this instance's crashed incarnation, or another instance losing them in
// a rebalance) may still be open or committing: its records are not yet
// below the last stable offset, while the offsets it commits will be. So
// before replaying, settle loads the transactional producer (which fences
// this instance's previous incarnation, aborting its open transaction or
// waiting until its commit is complete) and then waits until no transaction
// is open on the partitions, so the replay sees every committed record.
// Loading the producer here also spares the consumer's stable offset fetch
// a wait of the whole transaction timeout for the crashed incarnation's
// pending offsets.
func settle(ctx context.Context, cl *kgo.Client, topic string, parts []int32, limit time.Duration) error {
	if len(parts) == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if _, _, err := cl.ProducerID(wctx); err != nil {
		return fmt.Errorf("settle %s: load the transactional producer: %w", topic, err)
	}
	adm := kadm.NewClient(cl)
	for {
		open, err := openTransactions(wctx, adm, topic, parts)
		if err == nil && len(open) == 0 {
			return nil
		}
		select {
		case <-wctx.Done():
			if ctx.Err() == nil && err == nil {
				return stalledOn(topic, open, limit)
			}
			if err == nil {
				err = fmt.Errorf("a transaction is still open on %d partitions", len(open))
			}
			return fmt.Errorf("settle %s: %w", topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// openRange is a partition whose last stable offset is below its high
// watermark: a transaction is open (or its end marker lost) at LSO.
type openRange struct {
	partition int32
	lso, hwm  int64
}

// stalledOn says a settle waited limit for open transactions that did not
// end, naming the lowest such partition: the same error, and fix, as a
// replay that cannot reach the last stable offset.
func stalledOn(topic string, open []openRange, limit time.Duration) *bus.ErrReplayStalled {
	e := &bus.ErrReplayStalled{Topic: topic, Partition: -1, Pending: len(open), Stall: limit}
	for _, o := range open {
		if e.Partition < 0 || o.partition < e.Partition {
			e.Partition, e.Reached, e.Want = o.partition, o.lso, o.hwm
		}
	}
	return e
}

// openTransactions lists the partitions whose last stable offset is below
// their high watermark.
func openTransactions(ctx context.Context, adm *kadm.Client, topic string, parts []int32) ([]openRange, error) {
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	var open []openRange
	for _, p := range parts {
		lso, ok1 := stable.Lookup(topic, p)
		hwm, ok2 := ends.Lookup(topic, p)
		if !ok1 || !ok2 || lso.Err != nil || hwm.Err != nil {
			return nil, fmt.Errorf("offsets of %s/%d unknown", topic, p)
		}
		if lso.Offset < hwm.Offset {
			open = append(open, openRange{p, lso.Offset, hwm.Offset})
		}
	}
	return open, nil
}

func (s *Service) session(group, topic string, assigned func(context.Context, *kgo.Client, map[string][]int32), revoked func(context.Context, map[string][]int32)) (*kgo.GroupTransactSession, error) {
	opts := s.cfg.Kafka.Opts(
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.TransactionalID(group+"-"+s.cfg.Instance),
		// bank transactions are keyed by account: one busy partition must
		// still fill a transaction (the default 1 MiB per partition and
		// fetch made one account's transactions ~1,400 records)
		kgo.FetchMaxPartitionBytes(fetchPartitionBytes),
		kgo.TransactionTimeout(txnTimeout),
		kgo.InstanceID(group+"-"+s.cfg.Instance),
		kgo.SessionTimeout(10*time.Second),
		kgo.OnPartitionsAssigned(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) { assigned(ctx, cl, m) }),
		kgo.OnPartitionsRevoked(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) { revoked(ctx, m) }),
		kgo.OnPartitionsLost(func(ctx context.Context, _ *kgo.Client, m map[string][]int32) { revoked(ctx, m) }),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	return kgo.NewGroupTransactSession(opts...)
}

// commit ends the transaction; on any failure the caller tears down.
func (s *Service) commit(ctx context.Context, sess *kgo.GroupTransactSession, b *batch, stage string) error {
	start := time.Now()
	if len(b.recs) > 0 {
		if err := sess.ProduceSync(ctx, b.recs...).FirstErr(); err != nil {
			_, _ = sess.End(ctx, kgo.TryAbort)
			s.m.aborts.WithLabelValues(stage).Inc()
			return fmt.Errorf("%s: produce: %w", stage, err)
		}
	}
	produced := time.Now()
	s.m.phase.WithLabelValues(stage, "produce").Observe(produced.Sub(start).Seconds())
	committed, err := sess.End(ctx, kgo.TryCommit)
	s.m.phase.WithLabelValues(stage, "commit").Observe(time.Since(produced).Seconds())
	if err != nil {
		s.m.aborts.WithLabelValues(stage).Inc()
		return fmt.Errorf("%s: end transaction: %w", stage, err)
	}
	if !committed {
		s.m.aborts.WithLabelValues(stage).Inc()
		return fmt.Errorf("%s: transaction aborted (rebalance)", stage)
	}
	return nil
}

func deadLetter(r *kgo.Record, stage string, err error, now time.Time) (bus.Event, recon.DeadLetter) {
	dl := recon.DeadLetter{ID: bus.Where(r), Source: "matcher/" + stage, Where: bus.Where(r), Reason: err.Error(), Raw: r.Value, At: now}
	return bus.Event{Topic: schemas.TopicDeadLetters, Key: dl.ID, Type: schemas.TypeDeadLetter, ID: "dl-" + dl.ID, Source: "recon/matcher", Time: now, Partition: -1}, dl
}
