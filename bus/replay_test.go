package bus_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/bus/bustest"
	"github.com/reconhq/recon/schemas"
)

// A replay reads every committed record up to the last stable offset.
func TestReplayReadsCommitted(t *testing.T) {
	kc, cl := bustest.Cluster(t, 2)
	ctx := context.Background()
	for i := range 5 {
		r := &kgo.Record{Topic: schemas.TopicStatements, Partition: int32(i % 2), Value: []byte("v")}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	next, err := bus.ReplayWithin(ctx, kc, schemas.TopicStatements, []int32{0, 1}, time.Second, func(*kgo.Record) error { n++; return nil })
	if err != nil || n != 5 || next[0] != 3 || next[1] != 2 {
		t.Fatalf("replay: %d records, next %v, err %v; want 5, {0:3 1:2}", n, next, err)
	}
	// the tail after a checkpoint: partition 0 from 1, partition 1 (at its end) reads nothing
	var got []int64
	next, err = bus.ReplayFrom(ctx, kc, schemas.TopicStatements, map[int32]int64{0: 1, 1: 2}, time.Second, func(r *kgo.Record) error {
		got = append(got, int64(r.Partition)*100+r.Offset)
		return nil
	})
	if err != nil || len(got) != 2 || got[0] != 1 || got[1] != 2 || next[0] != 3 || next[1] != 2 {
		t.Fatalf("replay from {0:1 1:2}: read %v (partition*100+offset), next %v, err %v; want [1 2], {0:3 1:2}", got, next, err)
	}
}

// A replay whose reads stop short of the last stable offset (here the
// broker answers every fetch with nothing, as one that lost a transaction
// marker leaves a read-committed reader) gives up after the stall time
// with an error naming topic, partition and offsets.
func TestReplayStalls(t *testing.T) {
	c, kc, cl := bustest.Fake(t, 1)
	ctx := context.Background()
	for range 3 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: schemas.TopicStatements, Partition: 0, Value: []byte("v")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	c.ControlKey(int16(kmsg.Fetch), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := kr.(*kmsg.FetchRequest).ResponseKind().(*kmsg.FetchResponse)
		time.Sleep(20 * time.Millisecond) // an empty answer, not a busy loop
		return resp, nil, true
	})
	start := time.Now()
	_, err := bus.ReplayWithin(ctx, kc, schemas.TopicStatements, []int32{0}, 300*time.Millisecond, func(*kgo.Record) error { return nil })
	var st *bus.ErrReplayStalled
	if !errors.As(err, &st) {
		t.Fatalf("replay: %v, want *ErrReplayStalled", err)
	}
	if st.Topic != schemas.TopicStatements || st.Partition != 0 || st.Reached != 0 || st.Want != 3 || st.Pending != 1 {
		t.Errorf("stalled at %+v, want %s/0 reached 0 of 3", st, schemas.TopicStatements)
	}
	if !strings.Contains(err.Error(), "reached offset 0 of 3") || time.Since(start) > 10*time.Second {
		t.Errorf("error %q after %s", err, time.Since(start))
	}
}
