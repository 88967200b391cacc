package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/matcher"
	"github.com/reconhq/recon/schemas"
	"github.com/reconhq/recon/store"
)

// The loans table (borrowers, then loans) is read from its compacted
// topics and mirrored in the local store: each loan in the table's packed
// form, each borrower as its record, under "table/<topic>/pNNN/", marked
// with the topic offset they reflect. A restart loads the store (no JSON to
// parse) and reads only the topics' tail.
var tableTopics = []string{schemas.TopicBorrowers, schemas.TopicLoans}

// table is the loans table's local mirror: a Part per partition of each
// table topic, and the Mark of each topic.
type table struct {
	parts map[string]map[int32]*store.Part
	marks map[string]store.Mark
}

// catchUpLoans fills the loans table before matching starts, so a restart
// does not park known loans' payments in suspense: from the local store,
// then the topics from the store's marks to their end. It returns the
// client that tails the topics from there.
func (s *Service) catchUpLoans(ctx context.Context) (*kgo.Client, *table, error) {
	parts := bus.Partitions(s.cfg.Kafka.Partitions)
	start, stored, records := time.Now(), 0, 0
	tb, from, err := s.loadTable(ctx, parts)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range from {
		for _, o := range n {
			stored += int(o) // records before the marks: what the store held
		}
	}
	consume := map[string]map[int32]kgo.Offset{}
	for _, topic := range tableTopics {
		applied := map[int32]int{}
		next, err := bus.ReplayFrom(ctx, s.cfg.Kafka, topic, from[topic], 0, func(r *kgo.Record) error {
			records++
			s.loanRecord(r)
			part := tb.parts[topic][r.Partition]
			s.mirror(part, r)
			if applied[r.Partition]++; applied[r.Partition]%checkpointEvery == 0 {
				return checkpoint(part, tb.marks[topic], r.Offset+1)
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("matcher: load %s: %w", topic, err)
		}
		consume[topic] = map[int32]kgo.Offset{}
		for p, o := range next {
			consume[topic][p] = kgo.NewOffset().At(o)
			if err := checkpoint(tb.parts[topic][p], tb.marks[topic], o); err != nil {
				return nil, nil, fmt.Errorf("matcher: loans table: %w", err)
			}
		}
	}
	s.cfg.Log.Info("loans table caught up", "loans", s.loans.Len(), "from_store_offsets", stored, "records", records, "took", time.Since(start).Round(time.Millisecond))
	cl, err := kgo.NewClient(s.cfg.Kafka.Opts(kgo.ConsumePartitions(consume))...)
	return cl, tb, err
}

// loadTable opens the table's local mirror and loads it into the loans
// table; it returns where each topic partition's replay starts. A mirror
// that does not load whole is wiped, with the table, and everything is
// read from the topics.
func (s *Service) loadTable(ctx context.Context, parts []int32) (*table, map[string]map[int32]int64, error) {
	cl, err := kgo.NewClient(s.cfg.Kafka.Opts()...)
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	tb := &table{parts: map[string]map[int32]*store.Part{}, marks: map[string]store.Mark{}}
	from := map[string]map[int32]int64{}
	for _, topic := range tableTopics {
		mark, f, local, err := s.openParts(ctx, adm, "table/"+topic, topic, parts)
		if err != nil {
			return nil, nil, fmt.Errorf("matcher: loans table: %w", err)
		}
		tb.parts[topic], tb.marks[topic], from[topic] = local, mark, f
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var bad error
	for _, topic := range tableTopics {
		for p, part := range tb.parts[topic] {
			part.Scan("", func(key string, v []byte) bool {
				bad = s.loadStored(topic, key, v)
				return bad == nil
			})
			if bad = errors.Join(bad, part.Err()); bad != nil {
				bad = fmt.Errorf("%s partition %d: %w", topic, p, bad)
				break
			}
		}
	}
	if bad == nil {
		s.version++
		s.m.loans.Set(float64(s.loans.Len()))
		return tb, from, nil
	}
	s.cfg.Log.Warn("loans table: local mirror unreadable; wiped, the table is read from its topics", "err", bad)
	*s.loans = *matcher.NewLoans() // in place: the stages hold the table
	for _, topic := range tableTopics {
		for p, part := range tb.parts[topic] {
			if err := part.Wipe(); err != nil {
				return nil, nil, fmt.Errorf("matcher: loans table: %w", err)
			}
			from[topic][p] = 0
		}
	}
	return tb, from, nil
}

// loadStored puts one loan or borrower of the local mirror into the table
// (s.mu held).
func (s *Service) loadStored(topic, key string, v []byte) error {
	if topic == schemas.TopicLoans {
		return s.loans.PutPacked(v)
	}
	var b recon.Borrower
	if err := bus.Unmarshal(v, &b); err != nil {
		return fmt.Errorf("borrower %q: %w", key, err)
	}
	return s.loans.PutBorrower(b)
}

// mirror records in a table Part what one topic record left in the table.
func (s *Service) mirror(part *store.Part, r *kgo.Record) {
	key := string(r.Key)
	if r.Topic == schemas.TopicBorrowers {
		if r.Value == nil {
			part.Delete(key)
		} else {
			part.Set(key, r.Value)
		}
		return
	}
	s.mu.RLock()
	rec, ok := s.loans.Packed(key)
	s.mu.RUnlock()
	if ok {
		part.Set(key, rec)
	} else {
		part.Delete(key)
	}
}

func (s *Service) tailLoans(ctx context.Context, cl *kgo.Client, tb *table) error {
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fs.EachError(func(t string, p int32, err error) { s.cfg.Log.Warn("loans topic fetch", "partition", p, "err", err) })
		type at struct {
			topic string
			p     int32
		}
		next := map[at]int64{}
		fs.EachRecord(func(r *kgo.Record) {
			s.loanRecord(r)
			s.mirror(tb.parts[r.Topic][r.Partition], r)
			next[at{r.Topic, r.Partition}] = r.Offset + 1
		})
		for a, n := range next {
			if err := checkpoint(tb.parts[a.topic][a.p], tb.marks[a.topic], n); err != nil {
				// the mirror is behind, not wrong: the next start reads more
				s.cfg.Log.Warn("loans table: local mirror not written", "err", err)
			}
		}
	}
}

// loanRecord applies one record of the loans topic. A record the table
// cannot take is logged with its coordinates and counted, and the loans
// after it still load: one bad loan must not keep every payment from
// matching. The record itself stays on the (compacted) topic until a
// corrected loan with the same key replaces it.
func (s *Service) loanRecord(r *kgo.Record) {
	if err := s.applyLoan(r); err != nil {
		s.m.loansRefused.Inc()
		s.cfg.Log.Error("loan record refused; publish a corrected loan with the same id", "where", bus.Where(r), "err", err)
	}
}

func (s *Service) applyLoan(r *kgo.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version++
	if r.Topic == schemas.TopicBorrowers {
		if r.Value == nil {
			s.loans.DeleteBorrower(string(r.Key))
			return nil
		}
		var b recon.Borrower
		if err := bus.Unmarshal(r.Value, &b); err != nil {
			return fmt.Errorf("%s: %w", bus.Where(r), err)
		}
		return s.loans.PutBorrower(b)
	}
	if r.Value == nil {
		s.loans.Delete(string(r.Key))
		return nil
	}
	if err := s.loans.PutJSON(r.Value); err != nil {
		return fmt.Errorf("%s: %w", bus.Where(r), err)
	}
	s.m.loans.Set(float64(s.loans.Len()))
	return nil
}
