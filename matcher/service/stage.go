package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/store"
)

// states is what both stages keep per assigned input partition (a Router,
// a Poster): restored when partitions are assigned, dropped when they are
// revoked. A failed restore marks the session for teardown (a new session
// joins and restores again) and wakes the poll, instead of waiting for
// input to fail a transaction.
//
// A stage whose state lives in the local store (stageState.open set) keeps
// it per partition in a store.Part: restoring opens it and replays only the
// changelog after the offset its Mark names (all of it for a store that is
// missing, wiped, stale beyond the changelog, or of another topic); after
// every committed transaction the loop writes the Part with the new Mark.
type states[S any] struct {
	mu         sync.Mutex
	byPart     map[int32]S
	parts      map[int32]*store.Part // the local state of each, for a stage with a store
	mark       store.Mark            // the changelog the local states fold
	unrestored atomic.Bool
	held       *atomic.Int32 // partitions whose state is held (for readiness)
	wake       context.CancelFunc
}

// stageState describes a stage's state to the session: its input topic,
// how a fresh state is made, and how a changelog record restores it.
type stageState[S any] struct {
	stage     int    // stageRoute, stagePost
	input     string // the topic the stage consumes
	changelog string // the topic its state is rebuilt from
	fresh     func() S
	// open gives a fresh state its partition's local store (nil: the
	// state is in memory only, rebuilt from the whole changelog); an
	// error is a store the state cannot read: it is wiped and rebuilt.
	open    func(S, *store.Part) error
	restore func(S, *kgo.Record) error
}

// errDiverged is a changelog tail that does not continue the local state:
// the partition's store is wiped and rebuilt from the whole changelog.
var errDiverged = errors.New("the changelog does not continue the local state")

// newStates begins a session's states: it holds no partition yet, whatever
// the session before it held (a session torn down is not always revoked).
func newStates[S any](wake context.CancelFunc, held *atomic.Int32) *states[S] {
	held.Store(0)
	return &states[S]{byPart: map[int32]S{}, parts: map[int32]*store.Part{}, wake: wake, held: held}
}

// checkpointEvery bounds what a restore keeps pending before it writes the
// store: a long changelog restores in bounded memory.
const checkpointEvery = 20_000

// callbacks are the session's OnPartitionsAssigned and -Revoked.
func (st *states[S]) callbacks(s *Service, d stageState[S]) (assigned func(context.Context, *kgo.Client, map[string][]int32), revoked func(context.Context, map[string][]int32)) {
	assigned = func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
		parts := m[d.input]
		fresh := make(map[int32]S, len(parts))
		local := map[int32]*store.Part{}
		for _, p := range parts {
			fresh[p] = d.fresh()
		}
		from := make(map[int32]int64, len(parts))
		for _, p := range parts {
			from[p] = 0
		}
		var mark store.Mark
		if d.open != nil && len(parts) > 0 {
			var err error
			if mark, from, local, err = s.openParts(ctx, kadm.NewClient(cl), stageNames[d.stage], d.changelog, parts); err != nil {
				s.cfg.Log.Error(stageNames[d.stage]+" stage could not open its local state", "partitions", parts, "err", err)
				st.unrestored.Store(true)
				st.wake()
				return
			}
			for p, part := range local {
				if err := d.open(fresh[p], part); err != nil {
					s.cfg.Log.Warn("local state unreadable; rebuilt from the changelog", "state", stageNames[d.stage], "partition", p, "err", err)
					if err := part.Wipe(); err != nil {
						s.cfg.Log.Error(stageNames[d.stage]+" stage could not wipe its local state", "partition", p, "err", err)
						st.unrestored.Store(true)
						st.wake()
						return
					}
					fresh[p], from[p] = d.fresh(), 0
					if err := d.open(fresh[p], part); err != nil {
						s.cfg.Log.Error(stageNames[d.stage]+" stage cannot open an empty local state", "partition", p, "err", err)
						st.unrestored.Store(true)
						st.wake()
						return
					}
				}
			}
		}
		applied := map[int32]int{}
		apply := func(r *kgo.Record) error {
			if err := d.restore(fresh[r.Partition], r); err != nil {
				return err
			}
			if part := local[r.Partition]; part != nil {
				if applied[r.Partition]++; applied[r.Partition]%checkpointEvery == 0 {
					return checkpoint(part, mark, r.Offset+1)
				}
			}
			return nil
		}
		next, err := s.restore(ctx, cl, d.stage, d.changelog, from, apply)
		ok := err == nil
		for p, part := range local {
			if ok && checkpoint(part, mark, next[p]) != nil {
				ok = false
			}
		}
		if errors.Is(err, errDiverged) {
			for _, part := range local { // rebuilt at the next assignment
				_ = part.Wipe()
			}
		}
		if !ok {
			st.unrestored.Store(true)
			st.wake()
			return
		}
		st.mu.Lock()
		if d.open != nil && len(parts) > 0 {
			st.mark = mark
		}
		for p, x := range fresh {
			st.byPart[p] = x
			if part := local[p]; part != nil {
				st.parts[p] = part
			}
		}
		st.held.Store(int32(len(st.byPart)))
		st.mu.Unlock()
		s.restored(d.stage)
	}
	revoked = func(_ context.Context, m map[string][]int32) {
		st.mu.Lock()
		for _, p := range m[d.input] {
			delete(st.byPart, p)
			delete(st.parts, p)
		}
		st.held.Store(int32(len(st.byPart)))
		st.mu.Unlock()
	}
	return assigned, revoked
}

// checkpoint writes what a Part has pending, marked with the changelog
// offset it reflects.
func checkpoint(part *store.Part, mark store.Mark, next int64) error {
	mark.Next = next
	return part.Commit(mark)
}

// openParts opens the local state (named name: a stage, the loans table)
// of the partitions it was given and
// says where each one's changelog replay starts: after the store's Mark,
// when the Mark names this changelog (same topic and topic id: not a topic
// deleted and created again since) and an offset Kafka has; from the start
// otherwise, with the state wiped (logged with the reason). It returns the
// Mark every commit of these partitions carries.
func (s *Service) openParts(ctx context.Context, adm *kadm.Client, name, changelog string, parts []int32) (store.Mark, map[int32]int64, map[int32]*store.Part, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	topics, err := adm.ListTopics(ctx, changelog)
	if err == nil {
		err = topics.Error()
	}
	if err != nil {
		return store.Mark{}, nil, nil, fmt.Errorf("describe %s: %w", changelog, err)
	}
	stable, err := adm.ListCommittedOffsets(ctx, changelog)
	if err == nil {
		err = stable.Error()
	}
	if err != nil {
		return store.Mark{}, nil, nil, fmt.Errorf("stable offsets of %s: %w", changelog, err)
	}
	mark := store.Mark{Topic: changelog, TopicID: topics[changelog].ID.String()}
	from, local := map[int32]int64{}, map[int32]*store.Part{}
	for _, p := range parts {
		part := s.db.Part(fmt.Sprintf("%s/p%03d/", name, p))
		had, err := part.Mark()
		lso, _ := stable.Lookup(changelog, p)
		why := ""
		switch {
		case err != nil:
			why = err.Error()
		case had == store.Mark{}:
		case had.Topic != mark.Topic || had.TopicID != mark.TopicID:
			why = fmt.Sprintf("it is of topic %s (id %s), not this %s (id %s)", had.Topic, had.TopicID, mark.Topic, mark.TopicID)
		case had.Next > lso.Offset:
			why = fmt.Sprintf("it reflects offset %d, beyond what Kafka has committed (%d)", had.Next, lso.Offset)
		default:
			from[p], local[p] = had.Next, part
			continue
		}
		if why != "" {
			s.cfg.Log.Warn("local state not trusted; rebuilt from the changelog", "state", name, "partition", p, "changelog", changelog, "why", why)
		}
		if err := part.Wipe(); err != nil {
			return store.Mark{}, nil, nil, errors.Join(err, errors.New("cannot wipe the local state: remove "+s.db.Dir()))
		}
		from[p], local[p] = 0, part
	}
	return mark, from, local, nil
}

// commitParts writes, after a committed transaction, the local state each
// held partition decided (a partition revoked meanwhile is left stale: its
// next restore replays the tail), marked with the changelog offset after its last
// record in the transaction.
func commitParts(held map[int32]*store.Part, mark store.Mark, recs []*kgo.Record) error {
	next := map[int32]int64{}
	for _, r := range recs {
		if r.Topic == mark.Topic {
			next[r.Partition] = max(next[r.Partition], r.Offset+1)
		}
	}
	for p, part := range held {
		n, ok := next[p]
		if !ok {
			if len(part.Pending()) > 0 {
				return fmt.Errorf("partition %d: state changed without a changelog record", p) // a bug
			}
			continue
		}
		if err := checkpoint(part, mark, n); err != nil {
			return err
		}
	}
	return nil
}

// storeErr is the first read failure of a held partition's local store
// (or of its state, stateErr) in the transaction being decided: its state is wiped (it is rebuilt from
// the changelog when the session restores it again) and the transaction
// must abort (st.mu held).
func (st *states[S]) storeErr(stateErr func(S) error) error {
	for p, part := range st.parts {
		err := part.Err()
		if err == nil && stateErr != nil {
			err = stateErr(st.byPart[p])
		}
		if err != nil {
			if werr := part.Wipe(); werr != nil {
				err = errors.Join(err, werr)
			}
			return fmt.Errorf("partition %d: local state unreadable, wiped to be rebuilt: %w", p, err)
		}
	}
	return nil
}

// partitions lists the held partitions in order (st.mu held).
func (st *states[S]) partitions() []int32 {
	parts := make([]int32, 0, len(st.byPart))
	for p := range st.byPart {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	return parts
}
