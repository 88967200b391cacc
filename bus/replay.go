package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultReplayStall is how long Replay waits without reading anything
// before it gives up with an *ErrReplayStalled.
const DefaultReplayStall = 2 * time.Minute

// ErrReplayStalled is a replay that read nothing for Stall while a
// partition was short of the offset it waits for: the last stable offset
// the partition had when the replay began. A read-committed reader cannot
// get past an open transaction, so this happens when a transaction stays
// open (its producer died: the broker aborts it once the producer's
// transaction timeout passes, or when a producer with the same
// transactional id starts again) or when the broker lost a transaction's
// end marker (a crash of a broker that did not sync it), in which case
// waiting never helps.
type ErrReplayStalled struct {
	Topic     string
	Partition int32
	Reached   int64 // the next offset Replay would read
	Want      int64 // the offset it waits for (the last stable offset at the start)
	Pending   int   // partitions short of their offset, this one included
	Stall     time.Duration
}

func (e *ErrReplayStalled) Error() string {
	more := ""
	if e.Pending > 1 {
		more = fmt.Sprintf(" (and %d more partitions)", e.Pending-1)
	}
	return fmt.Sprintf("replay of %s/%d stalled: reached offset %d of %d%s, nothing read for %s; "+
		"a read-committed reader cannot pass an open transaction: if a producer died mid-transaction, restart it or wait for its transaction timeout, then start again; "+
		"if it persists the broker lost a transaction marker (a crashed embedded broker): rebuild its data dir",
		e.Topic, e.Partition, e.Reached, e.Want, more, e.Stall)
}

// Replay reads partitions of topic from their start up to their last stable
// offset (read committed) and calls fn for every data record in offset
// order per partition. It is how state is restored from a changelog or the
// journal. It returns the next offset of each partition. It never waits
// forever: after DefaultReplayStall without a record it returns an
// *ErrReplayStalled (see ReplayWithin).
func Replay(ctx context.Context, c Config, topic string, partitions []int32, fn func(*kgo.Record) error) (map[int32]int64, error) {
	return ReplayWithin(ctx, c, topic, partitions, DefaultReplayStall, fn)
}

// ReplayWithin is Replay giving up after stall without reading a record
// (stall <= 0: DefaultReplayStall). The deadline is on progress, not on the
// whole replay, so a long history restores however long it takes.
func ReplayWithin(ctx context.Context, c Config, topic string, partitions []int32, stall time.Duration, fn func(*kgo.Record) error) (map[int32]int64, error) {
	from := make(map[int32]int64, len(partitions))
	for _, p := range partitions {
		from[p] = 0
	}
	return ReplayFrom(ctx, c, topic, from, stall, fn)
}

// ReplayFrom is ReplayWithin reading each partition from an offset: the
// tail of a changelog after a checkpoint. A partition whose offset is at
// or past its last stable offset reads nothing and keeps its offset.
func ReplayFrom(ctx context.Context, c Config, topic string, from map[int32]int64, stall time.Duration, fn func(*kgo.Record) error) (map[int32]int64, error) {
	if stall <= 0 {
		stall = DefaultReplayStall
	}
	next := map[int32]int64{}
	if len(from) == 0 {
		return next, nil
	}
	partitions := make([]int32, 0, len(from))
	for p := range from {
		partitions = append(partitions, p)
	}
	want, err := stableOffsets(ctx, c, topic, partitions, stall)
	if err != nil {
		return nil, err
	}
	offsets := map[int32]kgo.Offset{}
	for p, o := range from {
		next[p] = o
		if want[p] > o {
			offsets[p] = kgo.NewOffset().At(o)
		} else {
			delete(want, p)
		}
	}
	if len(want) == 0 {
		return next, nil
	}
	cl, err := kgo.NewClient(c.Opts(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(32<<20),
	)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	for len(want) > 0 {
		pctx, cancel := context.WithTimeout(ctx, stall)
		fs := cl.PollFetches(pctx)
		stalled := pctx.Err() != nil && ctx.Err() == nil
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("replay %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		read := 0
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			read++
			next[r.Partition] = r.Offset + 1
			if !r.Attrs.IsControl() {
				if err := fn(r); err != nil {
					return nil, err
				}
			}
			if end, ok := want[r.Partition]; ok && r.Offset+1 >= end {
				delete(want, r.Partition)
			}
		}
		if stalled && read == 0 && len(want) > 0 {
			return nil, stalledAt(topic, want, next, stall)
		}
	}
	return next, nil
}

// stableOffsets lists the last stable offset of each partition.
func stableOffsets(ctx context.Context, c Config, topic string, partitions []int32, timeout time.Duration) (map[int32]int64, error) {
	admCl, err := kgo.NewClient(c.Opts()...)
	if err != nil {
		return nil, err
	}
	defer admCl.Close()
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ends, err := kadm.NewClient(admCl).ListCommittedOffsets(lctx, topic)
	if err != nil {
		return nil, fmt.Errorf("replay %s: list offsets: %w", topic, err)
	}
	want := map[int32]int64{}
	for _, p := range partitions {
		o, ok := ends.Lookup(topic, p)
		if !ok || o.Err != nil {
			return nil, fmt.Errorf("replay %s/%d: end offset unknown: %v", topic, p, o.Err)
		}
		want[p] = o.Offset
	}
	return want, nil
}

// stalledAt names the lowest partition still short of its offset.
func stalledAt(topic string, want, next map[int32]int64, stall time.Duration) *ErrReplayStalled {
	e := &ErrReplayStalled{Topic: topic, Partition: -1, Pending: len(want), Stall: stall}
	for p, w := range want {
		if e.Partition < 0 || p < e.Partition {
			e.Partition, e.Want, e.Reached = p, w, next[p]
		}
	}
	return e
}
