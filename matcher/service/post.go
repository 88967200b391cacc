package service

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/matcher"
	"github.com/reconhq/recon/schemas"
	"github.com/reconhq/recon/store"
)

// post is stage two: routed records keyed by loan → allocation, reversals
// and suspense → sealed journal entries on the partition of the same number
// (so each journal partition has exactly one writer and one hash chain),
// decisions, and suspense items released to loans. When the loans table
// changes, suspense items of owned partitions are re-matched.
func (s *Service) post(ctx context.Context) error {
	pollCtx, wake := context.WithCancel(ctx)
	defer wake()
	posters := newStates[*matcher.Poster](wake, &s.postHeld)
	assigned, revoked := posters.callbacks(s, stageState[*matcher.Poster]{
		stage: stagePost, input: schemas.TopicRouted, changelog: schemas.TopicLedgerEntries,
		fresh: func() *matcher.Poster {
			po := matcher.NewPoster(s.loans)
			po.SetOwnAccounts(s.cfg.OwnAccounts)
			po.SetLoanReference(s.cfg.LoanReference)
			po.Allocation = s.cfg.Allocation
			return po
		},
		open: func(po *matcher.Poster, part *store.Part) error { return po.Open(part) },
		restore: func(po *matcher.Poster, r *kgo.Record) error {
			var e recon.Entry
			if err := bus.Unmarshal(r.Value, &e); err != nil {
				return fmt.Errorf("journal %s: %w", bus.Where(r), err)
			}
			switch head := po.Head; {
			case e.Sequence <= head.Sequence: // in the local state already
				return nil
			case head.Sequence > 0 && (e.Sequence != head.Sequence+1 || e.PrevHash != head.Hash):
				return fmt.Errorf("journal %s: entry %d (previous hash %.12s) after the local state's %d (hash %.12s): %w",
					bus.Where(r), e.Sequence, e.PrevHash, head.Sequence, head.Hash, errDiverged)
			}
			po.Restore(e) // reads no loan: runs while the loans load
			return po.Err()
		},
	})
	sess, err := s.session("recon-matcher-post", schemas.TopicRouted, assigned, revoked)
	if err != nil {
		return err
	}
	defer sess.Close()
	var seenVersion int64 = -1
	for {
		pollCtx, cancel := context.WithTimeout(pollCtx, 500*time.Millisecond)
		fs := sess.PollRecords(pollCtx, s.cfg.MaxPollRecords)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if posters.unrestored.Load() {
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
		posters.mu.Lock()
		s.mu.RLock()
		var missing error
		for _, r := range recs {
			po := posters.byPart[r.Partition]
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
			for _, p := range posters.partitions() {
				s.emit(b, p, posters.byPart[p].Rematch(now, version != seenVersion), now)
			}
		}
		s.mu.RUnlock()
		if missing == nil {
			missing = posters.storeErr(func(po *matcher.Poster) error { return po.Err() })
		}
		held, mark := maps.Clone(posters.parts), posters.mark
		posters.mu.Unlock()
		if missing != nil {
			_, _ = sess.End(ctx, kgo.TryAbort)
			return missing
		}
		s.m.phase.WithLabelValues("post", "decide").Observe(time.Since(decideStart).Seconds())
		if err := s.commit(ctx, sess, b, "post"); err != nil {
			return err // posters are restored from their stores and the journal on reassignment
		}
		// the transaction is committed: the local state may now say so
		if err := commitParts(held, mark, b.recs); err != nil {
			return err
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
