// Package analytics is recon's ClickHouse sink: it writes the records of
// recon's Kafka topics into the tables of database recon, each record exactly
// once, and owns that schema (Migrate) and the views data teams query.
//
// Exactly once without Kafka offsets: every row stores its record's
// (topic, partition, offset) and, for a ledger entry, the posting index. A
// batch is written as one INSERT per table (one block, so atomic on an
// unpartitioned MergeTree), then its last offset per partition goes to
// sink_offsets. ClickHouse is the only truth of progress: on partition
// assignment, and after any failed write, the sink reads sink_offsets and the
// rows already stored above it, resumes after sink_offsets, and skips those
// rows. A crash between the inserts and sink_offsets therefore neither loses
// nor repeats a row. Reads go through FINAL (ReplacingMergeTree), a second
// line of defence, and aggregates are plain views over FINAL.
package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/schemas"
)

// Topics the sink reads.
var Topics = []string{
	schemas.TopicBankTransactions,
	schemas.TopicMatches,
	schemas.TopicLedgerEntries,
	schemas.TopicStatements,
	schemas.TopicAlerts,
	schemas.TopicDeadLetters,
	schemas.TopicReconciliation,
}

// Sink moves records from Kafka to ClickHouse. Run it once.
type Sink struct {
	cfg    Config
	opts   []kgo.Opt
	conn   driver.Conn
	m      *metrics
	log    *slog.Logger
	client *kgo.Client

	mu sync.Mutex
	// committed is the last offset per partition recorded in sink_offsets.
	committed map[partition]int64
	// stored holds rows ClickHouse already has above committed, found by
	// reload; they are skipped when their records are read again.
	stored map[rowKey]struct{}
	// watermark is the last stable offset per partition seen in fetches.
	watermark map[partition]int64

	// Test hooks: afterInsert runs after each table's INSERT (an error stops
	// Run as a crash would); onCommit after sink_offsets is written.
	afterInsert func(table string, rows int) error
	onCommit    func(committed map[partition]int64)
}

type partition struct {
	topic string
	id    int32
}

type rowKey struct {
	table string
	partition
	offset int64
	index  uint16
}

// New makes a sink. kafkaOpts are added to the sink's own Kafka options
// (seed brokers, group, read_committed isolation, no offset commits). reg
// may be nil.
func New(cfg Config, kafkaOpts []kgo.Opt, reg prometheus.Registerer) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	conn, err := Open(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("analytics: open ClickHouse %s: %w", cfg.Addr, err)
	}
	return &Sink{
		cfg:       cfg,
		opts:      kafkaOpts,
		conn:      conn,
		m:         newMetrics(reg),
		log:       slog.Default().With("component", "analytics"),
		committed: map[partition]int64{},
		stored:    map[rowKey]struct{}{},
		watermark: map[partition]int64{},
	}, nil
}

// Run migrates the schema (unless Config.NoMigrate), then consumes until ctx
// is done, returning nil. While ClickHouse is down it retries with backoff and
// stops fetching, holding at most one batch.
func (s *Sink) Run(ctx context.Context) error {
	defer s.conn.Close()
	if !s.cfg.NoMigrate {
		if err := s.retry(ctx, "migrate", func() error { return Migrate(ctx, s.conn, s.cfg.Database) }); err != nil {
			return nil // ctx done
		}
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(s.cfg.Brokers...),
		kgo.ConsumerGroup(s.cfg.Group),
		kgo.ConsumeTopics(Topics...),
		kgo.DisableAutoCommit(),
		// Rebalances wait until the polled batch is durable, so a partition
		// moves to another instance only between batches.
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.AdjustFetchOffsetsFn(s.assigned),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.revoked),
		kgo.FetchMaxBytes(32 << 20),
	}, s.opts...)
	client, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("analytics: kafka client: %w", err)
	}
	s.client = client
	defer func() {
		client.AllowRebalance()
		client.Close()
	}()
	for {
		recs := s.poll(ctx)
		if len(recs) > 0 {
			if err := s.flush(ctx, recs); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
		client.AllowRebalance()
		if ctx.Err() != nil {
			return nil
		}
	}
}

// poll gathers up to BatchRows records, waiting at most FlushInterval.
func (s *Sink) poll(ctx context.Context) []*kgo.Record {
	deadline := time.Now().Add(s.cfg.FlushInterval)
	var recs []*kgo.Record
	for len(recs) < s.cfg.BatchRows && ctx.Err() == nil && time.Now().Before(deadline) {
		pctx, cancel := context.WithDeadline(ctx, deadline)
		fetches := s.client.PollRecords(pctx, s.cfg.BatchRows-len(recs))
		cancel()
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, kgo.ErrClientClosed) {
				s.log.Warn("fetch failed", "topic", topic, "partition", p, "err", err)
			}
		})
		s.mu.Lock()
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if p.Err == nil {
				s.watermark[partition{p.Topic, p.Partition}] = p.LastStableOffset
			}
		})
		s.mu.Unlock()
		fetches.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
	}
	return recs
}

// flush makes recs durable in ClickHouse, retrying until it is done or ctx
// ends.
func (s *Sink) flush(ctx context.Context, recs []*kgo.Record) error {
	rows := Build(recs)
	last := map[partition]int64{}
	for _, r := range recs {
		p := partition{r.Topic, r.Partition}
		if o, ok := last[p]; !ok || r.Offset > o {
			last[p] = r.Offset
		}
	}
	for _, d := range rows.DeadLetters {
		if d.Origin == "sink" {
			s.log.Error("poison record stored in dead_letters", "topic", d.Topic, "partition", d.Partition, "offset", d.Offset, "reason", d.Reason)
		}
	}
	done := map[string]bool{} // tables whose INSERT of this batch succeeded
	reload := false
	err := s.retry(ctx, "write batch", func() error {
		if reload {
			// A failed INSERT may have landed all the same: ask ClickHouse
			// which rows it has before writing again.
			if err := s.reload(ctx, keys(last)); err != nil {
				return err
			}
			reload = false
		}
		err := s.write(ctx, &rows, last, done)
		var crash *hookError
		if err != nil && !errors.As(err, &crash) {
			reload = true
		}
		return err
	})
	if err != nil {
		return err
	}
	for k, n := range rows.Skipped {
		s.m.skipped.WithLabelValues(k.Topic, k.Type).Add(float64(n))
	}
	for topic, n := range rows.Poison {
		s.m.poison.WithLabelValues(topic).Add(float64(n))
	}
	return nil
}

type hookError struct{ err error }

func (e *hookError) Error() string { return "analytics: test hook: " + e.err.Error() }
func (e *hookError) Unwrap() error { return e.err }

// write inserts the rows ClickHouse does not have yet, one INSERT per table
// in offset order, then records progress in sink_offsets.
func (s *Sink) write(ctx context.Context, rows *Rows, last map[partition]int64, done map[string]bool) error {
	s.mu.Lock()
	stored, committed := s.stored, s.committed
	var pending Rows
	if len(stored) == 0 {
		pending = *rows
	} else {
		pending = rows.without(func(table string, src Source) bool {
			p := partition{src.Topic, src.Partition}
			if c, ok := committed[p]; ok && src.Offset <= c {
				return true
			}
			_, ok := stored[rowKey{table, p, src.Offset, src.Index}]
			return ok
		})
	}
	s.mu.Unlock()
	for _, t := range tables {
		if done[t.name] {
			continue
		}
		n := rowCount(t, &pending)
		if dup := rowCount(t, rows) - n; dup > 0 {
			s.m.duplicates.WithLabelValues(t.name).Add(float64(dup))
		}
		if n > 0 {
			if err := s.insert(ctx, t, columnsOf(t, &pending)); err != nil {
				s.m.insertErrors.Inc()
				return err
			}
			s.m.rows.WithLabelValues(t.name).Add(float64(n))
		}
		done[t.name] = true
		if s.afterInsert != nil {
			if err := s.afterInsert(t.name, n); err != nil {
				return &hookError{err}
			}
		}
	}
	if err := s.commit(ctx, last); err != nil {
		s.m.insertErrors.Inc()
		return err
	}
	return nil
}

func (s *Sink) insert(ctx context.Context, t table, columns []any) error {
	q := "INSERT INTO " + s.cfg.Database + "." + t.name + " (" + strings.Join(t.columns, ", ") + ")"
	batch, err := s.conn.PrepareBatch(ctx, q)
	if err != nil {
		return fmt.Errorf("analytics: prepare insert into %s: %w", t.name, err)
	}
	for i, c := range columns {
		if err := batch.Column(i).Append(c); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("analytics: insert into %s column %s: %w", t.name, t.columns[i], err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("analytics: insert into %s: %w", t.name, err)
	}
	return nil
}

// commit records the last offset per partition of a durable batch.
func (s *Sink) commit(ctx context.Context, last map[partition]int64) error {
	topics, parts, offsets := make([]string, 0, len(last)), make([]int32, 0, len(last)), make([]int64, 0, len(last))
	for p, o := range last {
		topics, parts, offsets = append(topics, p.topic), append(parts, p.id), append(offsets, o)
	}
	batch, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.cfg.Database+".sink_offsets (kafka_topic, kafka_partition, kafka_offset)")
	if err != nil {
		return fmt.Errorf("analytics: prepare sink_offsets: %w", err)
	}
	for i, c := range []any{topics, parts, offsets} {
		if err := batch.Column(i).Append(c); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("analytics: sink_offsets: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("analytics: insert into sink_offsets: %w", err)
	}
	s.mu.Lock()
	for p, o := range last {
		s.committed[p] = o
		if hw, ok := s.watermark[p]; ok {
			lag := hw - o - 1
			if lag < 0 {
				lag = 0
			}
			s.m.lag.WithLabelValues(p.topic, strconv.Itoa(int(p.id))).Set(float64(lag))
		}
	}
	for k := range s.stored {
		if c, ok := s.committed[k.partition]; ok && k.offset <= c {
			delete(s.stored, k)
		}
	}
	snapshot := make(map[partition]int64, len(s.committed))
	for p, o := range s.committed {
		snapshot[p] = o
	}
	s.mu.Unlock()
	s.m.batches.Inc()
	if s.onCommit != nil {
		s.onCommit(snapshot)
	}
	return nil
}

// reload reads, for parts, the last committed offset and the rows stored
// above it. ClickHouse is the only truth of the sink's progress.
func (s *Sink) reload(ctx context.Context, parts []partition) error {
	if len(parts) == 0 {
		return nil
	}
	db := s.cfg.Database
	committed := map[partition]int64{}
	rows, err := s.conn.Query(ctx, "SELECT kafka_topic, kafka_partition, max(kafka_offset) FROM "+db+".sink_offsets GROUP BY kafka_topic, kafka_partition")
	if err != nil {
		return fmt.Errorf("analytics: read sink_offsets: %w", err)
	}
	for rows.Next() {
		var p partition
		var o int64
		if err := rows.Scan(&p.topic, &p.id, &o); err != nil {
			rows.Close()
			return fmt.Errorf("analytics: read sink_offsets: %w", err)
		}
		committed[p] = o
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("analytics: read sink_offsets: %w", err)
	}
	var conds []string
	var args []any
	for _, p := range parts {
		c, ok := committed[p]
		if !ok {
			c = -1
		}
		conds = append(conds, "(kafka_topic = ? AND kafka_partition = ? AND kafka_offset > ?)")
		args = append(args, p.topic, p.id, c)
	}
	where := strings.Join(conds, " OR ")
	stored := map[rowKey]struct{}{}
	for _, t := range tables {
		q := "SELECT kafka_topic, kafka_partition, kafka_offset, toUInt16(" + t.index + ") FROM " + db + "." + t.name + " WHERE " + where
		rows, err := s.conn.Query(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("analytics: read stored rows of %s: %w", t.name, err)
		}
		for rows.Next() {
			k := rowKey{table: t.name}
			if err := rows.Scan(&k.topic, &k.id, &k.offset, &k.index); err != nil {
				rows.Close()
				return fmt.Errorf("analytics: read stored rows of %s: %w", t.name, err)
			}
			stored[k] = struct{}{}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("analytics: read stored rows of %s: %w", t.name, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range parts {
		delete(s.committed, p)
		if c, ok := committed[p]; ok {
			s.committed[p] = c
		}
	}
	for k := range s.stored {
		if containsPartition(parts, k.partition) {
			delete(s.stored, k)
		}
	}
	for k := range stored {
		s.stored[k] = struct{}{}
	}
	return nil
}

// assigned sets the fetch offsets of newly assigned partitions from
// ClickHouse, ignoring whatever the group has in Kafka.
func (s *Sink) assigned(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var parts []partition
	for topic, ps := range offsets {
		for p := range ps {
			parts = append(parts, partition{topic, p})
		}
	}
	if err := s.retry(ctx, "read progress", func() error { return s.reload(ctx, parts) }); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]map[int32]kgo.Offset, len(offsets))
	for _, p := range parts {
		if out[p.topic] == nil {
			out[p.topic] = map[int32]kgo.Offset{}
		}
		if c, ok := s.committed[p]; ok {
			out[p.topic][p.id] = kgo.NewOffset().At(c + 1).WithEpoch(-1)
			s.log.Info("partition assigned", "topic", p.topic, "partition", p.id, "resume_at", c+1)
		} else {
			out[p.topic][p.id] = kgo.NewOffset().AtStart()
			s.log.Info("partition assigned", "topic", p.topic, "partition", p.id, "resume_at", "start")
		}
	}
	return out, nil
}

// revoked forgets the progress of partitions this instance no longer owns;
// the next owner reads it from ClickHouse.
func (s *Sink) revoked(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, ps := range lost {
		for _, id := range ps {
			p := partition{topic, id}
			delete(s.committed, p)
			delete(s.watermark, p)
			s.m.lag.DeleteLabelValues(topic, strconv.Itoa(int(id)))
		}
	}
	for k := range s.stored {
		if _, ok := s.committed[k.partition]; !ok {
			delete(s.stored, k)
		}
	}
}

// retry runs f until it succeeds, backing off from 100 ms to MaxBackoff. It
// gives up only when ctx ends or f fails with a test hook's error.
func (s *Sink) retry(ctx context.Context, what string, f func() error) error {
	backoff := 100 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		var crash *hookError
		if errors.As(err, &crash) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn(what+" failed; retrying", "err", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

func keys(m map[partition]int64) []partition {
	out := make([]partition, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	return out
}

func containsPartition(ps []partition, p partition) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// without returns the rows for which drop is false.
func (r *Rows) without(drop func(table string, src Source) bool) Rows {
	return Rows{
		BankTransactions: keep(r.BankTransactions, tableBankTransactions.name, drop),
		Matches:          keep(r.Matches, tableMatches.name, drop),
		LedgerPostings:   keep(r.LedgerPostings, tableLedgerPostings.name, drop),
		Statements:       keep(r.Statements, tableStatements.name, drop),
		Alerts:           keep(r.Alerts, tableAlerts.name, drop),
		DeadLetters:      keep(r.DeadLetters, tableDeadLetters.name, drop),
		Breaks:           keep(r.Breaks, tableBreaks.name, drop),
		Skipped:          r.Skipped,
		Poison:           r.Poison,
	}
}

func keep[T interface{ source() Source }](rows []T, table string, drop func(string, Source) bool) []T {
	out := make([]T, 0, len(rows))
	for _, r := range rows {
		if !drop(table, r.source()) {
			out = append(out, r)
		}
	}
	return out
}
