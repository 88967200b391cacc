package bus

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Replay reads partitions of topic from their start up to their last stable
// offset (read committed) and calls fn for every data record in offset
// order per partition. It is how state is restored from a changelog or the
// journal. It returns the next offset of each partition.
func Replay(ctx context.Context, c Config, topic string, partitions []int32, fn func(*kgo.Record) error) (map[int32]int64, error) {
	next := map[int32]int64{}
	if len(partitions) == 0 {
		return next, nil
	}
	admCl, err := kgo.NewClient(c.Opts()...)
	if err != nil {
		return nil, err
	}
	ends, err := kadm.NewClient(admCl).ListCommittedOffsets(ctx, topic)
	admCl.Close()
	if err != nil {
		return nil, fmt.Errorf("replay %s: list offsets: %w", topic, err)
	}
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	for _, p := range partitions {
		o, ok := ends.Lookup(topic, p)
		if !ok || o.Err != nil {
			return nil, fmt.Errorf("replay %s/%d: end offset unknown: %v", topic, p, o.Err)
		}
		next[p] = 0
		if o.Offset > 0 {
			want[p] = o.Offset
			offsets[p] = kgo.NewOffset().AtStart()
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
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("replay %s/%d: %w", t, p, err) })
		if ferr != nil {
			return nil, ferr
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
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
	}
	return next, nil
}
