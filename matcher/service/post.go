package service

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/matcher"
	"github.com/reconhq/recon/schemas"
)

// post is stage two: routed records keyed by loan → allocation, reversals
// and suspense → sealed journal entries on the partition of the same number
// (so each journal partition has exactly one writer and one hash chain),
// decisions, and suspense items released to loans. When the loans table
// changes, suspense items of owned partitions are re-matched.
func (s *Service) post(ctx context.Context) error {
	var mu sync.Mutex
	posters := map[int32]*matcher.Poster{}
	var unrestored atomic.Bool // as in route: the session is torn down
	assigned := func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
		parts := m[schemas.TopicRouted]
		fresh := map[int32]*matcher.Poster{}
		for _, p := range parts {
			fresh[p] = matcher.NewPoster(s.loans)
			fresh[p].SetOwnAccounts(s.cfg.OwnAccounts)
			fresh[p].SetLoanReference(s.cfg.LoanReference)
			fresh[p].Allocation = s.cfg.Allocation
		}
		if !s.restore(ctx, cl, stagePost, schemas.TopicLedgerEntries, parts, func(r *kgo.Record) error {
			var e recon.Entry
			if err := bus.Unmarshal(r.Value, &e); err != nil {
				return fmt.Errorf("journal %s: %w", bus.Where(r), err)
			}
			fresh[r.Partition].Restore(e) // reads no loan: runs while the loans load
			return nil
		}) {
			unrestored.Store(true)
			return
		}
		mu.Lock()
		for p, po := range fresh {
			posters[p] = po
		}
		s.postHeld.Store(int32(len(posters)))
		mu.Unlock()
		s.restored(stagePost)
	}
	revoked := func(_ context.Context, m map[string][]int32) {
		mu.Lock()
		for _, p := range m[schemas.TopicRouted] {
			delete(posters, p)
		}
		s.postHeld.Store(int32(len(posters)))
		mu.Unlock()
	}
	sess, err := s.session("recon-matcher-post", schemas.TopicRouted, assigned, revoked)
	if err != nil {
		return err
	}
	defer sess.Close()
	var seenVersion int64 = -1
	for {
		pollCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := sess.PollRecords(pollCtx, s.cfg.MaxPollRecords)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if unrestored.Load() {
			return errNotRestored
		}
		if err := fs.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("post: poll: %w", err)
		}
		if !s.waitLoans(ctx) { // after the poll: it joins the group and restores meanwhile
			return nil
		}
		s.mu.RLock()
		version := s.version
		s.mu.RUnlock()
		recs := fs.Records()
		if len(recs) == 0 && version == seenVersion {
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("post: begin: %w", err)
		}
		b := &batch{n: s.cfg.Kafka.Partitions}
		decideStart := time.Now()
		now := s.cfg.Now().UTC()
		mu.Lock()
		s.mu.RLock()
		var missing error
		for _, r := range recs {
			po := posters[r.Partition]
			if po == nil {
				missing = fmt.Errorf("post: no state for partition %d", r.Partition)
				break
			}
			var rt matcher.Routed
			if err := bus.Unmarshal(r.Value, &rt); err != nil {
				e, dl := deadLetter(r, "post", err, now)
				b.add(e, dl)
				continue
			}
			s.emit(b, r.Partition, po.Post(now, rt), now)
		}
		if missing == nil {
			parts := make([]int32, 0, len(posters))
			for p := range posters {
				parts = append(parts, p)
			}
			sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
			for _, p := range parts {
				s.emit(b, p, posters[p].Rematch(now, version != seenVersion), now)
			}
		}
		s.mu.RUnlock()
		mu.Unlock()
		if missing != nil {
			_, _ = sess.End(ctx, kgo.TryAbort)
			return missing
		}
		s.m.phase.WithLabelValues("post", "decide").Observe(time.Since(decideStart).Seconds())
		if err := s.commit(ctx, sess, b, "post"); err != nil {
			return err // posters are rebuilt from the journal on reassignment
		}
		seenVersion = version
		s.m.records.WithLabelValues("post").Add(float64(len(recs)))
	}
}

func (s *Service) emit(b *batch, p int32, res matcher.Result, now time.Time) {
	for _, e := range res.Entries {
		b.add(bus.Event{Topic: schemas.TopicLedgerEntries, Key: journalKey(e), Type: schemas.TypeEntry, ID: e.ID, Source: "recon/matcher", Time: now, Partition: p}, e)
	}
	for _, rt := range res.Routed {
		b.add(bus.Event{Topic: schemas.TopicRouted, Key: rt.Key, Type: schemas.TypeRouted, ID: "r-" + rt.Kind + "-" + rt.Transaction.ID + "-" + rt.Key, Source: "recon/matcher", Time: now, Partition: -1}, rt)
	}
	if d := res.Decision; d != nil {
		b.add(bus.Event{Topic: schemas.TopicMatches, Key: d.TransactionID, Type: schemas.TypeDecision, ID: "d-" + d.TransactionID + "-" + string(d.Outcome), Source: "recon/matcher", Time: now, Partition: -1}, d)
		s.m.decisions.WithLabelValues(string(d.Outcome)).Inc()
	}
}

func journalKey(e recon.Entry) string {
	if e.LoanID != "" {
		return e.LoanID
	}
	return schemas.SuspenseKey
}
