package bus

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Embedded starts the in-process Kafka-protocol broker that `recon run`
// uses when no broker is configured. Its log is persisted under dir, so a
// restart keeps every topic; it listens on 127.0.0.1:port so outside
// producers (kcat, any client) can publish to it. Close it with Close.
func Embedded(dir string, port int, partitions int32) (*kfake.Cluster, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded kafka: data dir: %w", err)
	}
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DataDir(dir),
		kfake.DefaultNumPartitions(int(partitions)),
		kfake.ClusterID("recon-embedded"),
		kfake.SyncWrites(),
	)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka on 127.0.0.1:%d: %w", port, err)
	}
	return c, nil
}

// RepairAfterCrash ends, with an abort marker, every transaction left
// without one in topics of the embedded broker, and says how many it
// ended. Call it after an unclean stop (kill -9, a crash) and before any
// other client uses the broker.
//
// Why: kfake, reloading a data dir whose last run was killed, treats a
// transaction that was open at the kill as aborted (it lists it in the
// partition's aborted transactions and moves the last stable offset past
// it) but writes no abort marker. A read-committed client (franz-go as the
// Java client) drops a producer's batches from an aborted transaction's
// first offset until that producer's next control record: with none, a
// replay never sees a record at the end of the partition and waits forever
// for the last stable offset (bus.ErrReplayStalled), and a later committed
// transaction of the same producer id would be dropped with it. Writing
// the missing marker at the end of the log, before the producer writes
// again, closes the aborted range where a client expects it.
func RepairAfterCrash(ctx context.Context, c Config, topics []string) (int, error) {
	cl, err := kgo.NewClient(c.Opts(kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0, fmt.Errorf("repair: list end offsets: %w", err)
	}
	type tp struct {
		topic     string
		partition int32
	}
	type open struct{ epoch int16 }
	pending := map[tp]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > 0 {
			pending[tp{o.Topic, o.Partition}] = o.Offset
		}
	})
	opens := map[tp]map[int64]open{} // partition -> producer id -> its transaction without marker
	// to the end of every partition, or until the broker has had nothing
	// more for a while (a compacted partition may end before its end offset)
	for len(pending) > 0 {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		fs := cl.PollFetches(pctx)
		idle := pctx.Err() != nil && fs.NumRecords() == 0
		cancel()
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("repair: %w", err)
		}
		if idle {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := tp{r.Topic, r.Partition}
			switch {
			case r.Attrs.IsControl():
				delete(opens[k], r.ProducerID)
			case r.Attrs.IsTransactional():
				if opens[k] == nil {
					opens[k] = map[int64]open{}
				}
				opens[k][r.ProducerID] = open{r.ProducerEpoch}
			}
			if end, ok := pending[k]; ok && r.Offset+1 >= end {
				delete(pending, k)
			}
		})
	}
	markers := map[int64]*kmsg.WriteTxnMarkersRequestMarker{}
	n := 0
	for k, pids := range opens {
		for pid, o := range pids {
			m := markers[pid]
			if m == nil {
				m = &kmsg.WriteTxnMarkersRequestMarker{ProducerID: pid, ProducerEpoch: o.epoch, Committed: false}
				markers[pid] = m
			}
			m.Topics = append(m.Topics, kmsg.WriteTxnMarkersRequestMarkerTopic{Topic: k.topic, Partitions: []int32{k.partition}})
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	for _, m := range markers {
		req.Markers = append(req.Markers, *m)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("repair: write abort markers: %w", err)
	}
	for _, m := range resp.Markers {
		for _, t := range m.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return 0, fmt.Errorf("repair: abort marker of producer %d on %s/%d: %w", m.ProducerID, t.Topic, p.Partition, err)
				}
			}
		}
	}
	return n, nil
}
