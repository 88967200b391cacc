package service

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// states is what both stages keep per assigned input partition (a Router,
// a Poster): built fresh and restored from the stage's changelog when
// partitions are assigned, dropped when they are revoked. A failed restore
// marks the session for teardown (a new session joins and restores again)
// and wakes the poll, instead of waiting for input to fail a transaction.
type states[S any] struct {
	mu         sync.Mutex
	byPart     map[int32]S
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
	restore   func(S, *kgo.Record) error
}

// newStates begins a session's states: it holds no partition yet, whatever
// the session before it held (a session torn down is not always revoked).
func newStates[S any](wake context.CancelFunc, held *atomic.Int32) *states[S] {
	held.Store(0)
	return &states[S]{byPart: map[int32]S{}, wake: wake, held: held}
}

// callbacks are the session's OnPartitionsAssigned and -Revoked.
func (st *states[S]) callbacks(s *Service, d stageState[S]) (assigned func(context.Context, *kgo.Client, map[string][]int32), revoked func(context.Context, map[string][]int32)) {
	assigned = func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
		parts := m[d.input]
		fresh := make(map[int32]S, len(parts))
		for _, p := range parts {
			fresh[p] = d.fresh()
		}
		if !s.restore(ctx, cl, d.stage, d.changelog, parts, func(r *kgo.Record) error { return d.restore(fresh[r.Partition], r) }) {
			st.unrestored.Store(true)
			st.wake()
			return
		}
		st.mu.Lock()
		for p, x := range fresh {
			st.byPart[p] = x
		}
		st.held.Store(int32(len(st.byPart)))
		st.mu.Unlock()
		s.restored(d.stage)
	}
	revoked = func(_ context.Context, m map[string][]int32) {
		st.mu.Lock()
		for _, p := range m[d.input] {
			delete(st.byPart, p)
		}
		st.held.Store(int32(len(st.byPart)))
		st.mu.Unlock()
	}
	return assigned, revoked
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
