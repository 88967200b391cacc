package bus_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/bus"
)

// TestPartitionMatchesThirdPartyProducer checks the promise bus.Partition
// makes: a producer recon does not control, using the Java-compatible
// murmur2 partitioner (here segmentio/kafka-go's Murmur2Balancer), puts
// every key in the partition recon computes for it.
func TestPartitionMatchesThirdPartyProducer(t *testing.T) {
	const (
		topic      = "interop"
		partitions = 6
	)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	keys := []string{
		"", "a", "ab", "abc", "abcd", "abcde", // every murmur2 tail length
		"L-123", "loan:L-123:principal", "suspense",
		"bt_0123456789abcdef01234567", "DE89370400440532013000",
		"prêt-éàü", "\x00\xff\x80\x7f", // bytes above 0x7f exercise sign handling
	}
	for i := range 40 {
		keys = append(keys, "key-"+strconv.Itoa(i*7919))
	}
	msgs := make([]kafka.Message, len(keys))
	for i, k := range keys {
		msgs[i] = kafka.Message{Key: []byte(k), Value: []byte(strconv.Itoa(i))}
	}
	w := &kafka.Writer{
		Addr:         kafka.TCP(c.ListenAddrs()...),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("kafka-go writer: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("kafka-go writer close: %v", err)
	}

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(c.ListenAddrs()...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]int32{}
	for len(got) < len(keys) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records before the deadline: %v", len(got), len(keys), err)
		}
		if err := fs.Err0(); err != nil {
			t.Fatalf("poll: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, dup := got[string(r.Key)]; dup {
				t.Errorf("key %q consumed twice", r.Key)
			}
			got[string(r.Key)] = r.Partition
		})
	}
	spread := map[int32]int{}
	for _, k := range keys {
		p, ok := got[k]
		if !ok {
			t.Errorf("key %q never consumed", k)
			continue
		}
		spread[p]++
		if want := bus.Partition([]byte(k), partitions); p != want {
			t.Errorf("key %q: kafka-go wrote partition %d, bus.Partition says %d", k, p, want)
		}
	}
	if len(spread) < 2 {
		t.Errorf("all %d keys landed in partitions %v: the check proves little", len(keys), spread)
	}
}

// TestPartitionMatchesFranzGo compares bus.Partition with franz-go's
// Kafka-compatible key partitioner over random keys and partition counts.
func TestPartitionMatchesFranzGo(t *testing.T) {
	kp := kgo.StickyKeyPartitioner(nil).ForTopic("any")
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		key := make([]byte, rng.IntN(64))
		for j := range key {
			key[j] = byte(rng.UintN(256))
		}
		n := int32(1 + rng.IntN(1024))
		want := int32(kp.Partition(&kgo.Record{Key: key}, int(n)))
		if got := bus.Partition(key, n); got != want {
			t.Fatalf("case %d: key %x over %d partitions: bus.Partition %d, franz-go %d", i, key, n, got, want)
		}
	}
}

// ExamplePartition: the partition depends only on the key and the count,
// the same in every process and in Java's default partitioner.
func ExamplePartition() {
	for _, key := range []string{"L-123", "L-124", "L-125"} {
		fmt.Println(key, bus.Partition([]byte(key), 6))
	}
	// Output:
	// L-123 0
	// L-124 1
	// L-125 4
}

// ExamplePartitions: every partition of a topic, for a replay of all of it.
func ExamplePartitions() {
	fmt.Println(bus.Partitions(3), len(bus.Partitions(0)))
	// Output: [0 1 2] 0
}
