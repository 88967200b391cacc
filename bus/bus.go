// Package bus is recon's one way onto Kafka: client options that every
// component shares, the embedded Kafka-protocol broker used by `recon run`,
// idempotent topic creation, the key partitioner, and the CloudEvents
// headers. Components import it; the pure stages (matcher, ledger, the
// vocabulary) never do.
package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/schemas"
)

// Config says where Kafka is and how recon's topics are laid out.
type Config struct {
	Brokers []string
	// Partitions of every topic; the matcher relies on the routed topic and
	// the journal having the same count.
	Partitions int32
	// ReplicationFactor of created topics (1 on a single broker).
	ReplicationFactor int16
	// ClientID names this process in broker logs.
	ClientID string
}

// DefaultConfig is a single local broker with three partitions.
func DefaultConfig() Config {
	return Config{Brokers: []string{"127.0.0.1:9092"}, Partitions: 3, ReplicationFactor: 1, ClientID: "recon"}
}

// Validate checks the configuration once, at the edge.
func (c Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("kafka: no brokers configured (set --brokers or RECON_KAFKA_BROKERS)")
	case c.Partitions < 1 || c.Partitions > 1024:
		return fmt.Errorf("kafka: partitions %d out of range 1..1024", c.Partitions)
	case c.ReplicationFactor < 1 || c.ReplicationFactor > 16:
		return fmt.Errorf("kafka: replication factor %d out of range 1..16", c.ReplicationFactor)
	}
	return nil
}

// Opts are the client options every recon client starts from: recon
// chooses partitions itself (Java-compatible murmur2 of the key, see
// Partition), produces with acks=all and idempotence, and reads committed.
func (c Config) Opts(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ProducerLinger(2 * time.Millisecond),
		kgo.RecordRetries(10),
		kgo.RetryTimeout(30 * time.Second),
	}
	return append(opts, extra...)
}

// EnsureTopics creates recon's topics if they are missing and checks that
// existing ones have the partition count the layout relies on. Safe to call
// from every process at every start.
func EnsureTopics(ctx context.Context, cl *kgo.Client, c Config) error {
	adm := kadm.NewClient(cl)
	for _, t := range schemas.Topics {
		cfg := map[string]*string{}
		if t.Compacted {
			cfg["cleanup.policy"] = kadm.StringPtr("compact")
		}
		if t.RetainForever {
			cfg["retention.ms"] = kadm.StringPtr("-1")
		}
		resp, err := adm.CreateTopic(ctx, c.Partitions, c.ReplicationFactor, cfg, t.Name)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %s: %w", t.Name, err)
		}
		if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %s: %w", t.Name, resp.Err)
		}
	}
	names := make([]string, len(schemas.Topics))
	for i, t := range schemas.Topics {
		names[i] = t.Name
	}
	// A new topic takes a moment to appear in metadata: look again, briefly.
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		if err = checkTopics(ctx, adm, names, c.Partitions); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
	return err
}

func checkTopics(ctx context.Context, adm *kadm.Client, names []string, partitions int32) error {
	details, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return fmt.Errorf("kafka: describe topics: %w", err)
	}
	for _, name := range names {
		d, ok := details[name]
		if !ok || d.Err != nil {
			return fmt.Errorf("kafka: topic %s not available: %v", name, d.Err)
		}
		if n := int32(len(d.Partitions)); n != partitions {
			return fmt.Errorf("kafka: topic %s has %d partitions, recon is configured for %d; set --partitions %d", name, n, partitions, n)
		}
	}
	return nil
}

// Event is one record to publish, with its CloudEvents attributes.
type Event struct {
	Topic  string
	Key    string
	Type   string // ce_type
	ID     string // ce_id, from the source: a redelivery carries the same id
	Source string // ce_source
	Time   time.Time
	Value  []byte
	// Partition, when >= 0, overrides the key's partition (the matcher
	// writes the journal partition that matches its input partition).
	Partition int32
}

// Record builds the Kafka record for e, partitioned by its key among n
// partitions.
func (e Event) Record(n int32) *kgo.Record {
	p := e.Partition
	if p < 0 {
		p = Partition([]byte(e.Key), n)
	}
	return &kgo.Record{
		Topic:     e.Topic,
		Key:       []byte(e.Key),
		Value:     e.Value,
		Partition: p,
		Headers: []kgo.RecordHeader{
			{Key: schemas.HeaderSpecVersion, Value: []byte(schemas.SpecVersion)},
			{Key: schemas.HeaderID, Value: []byte(e.ID)},
			{Key: schemas.HeaderType, Value: []byte(e.Type)},
			{Key: schemas.HeaderSource, Value: []byte(e.Source)},
			{Key: schemas.HeaderTime, Value: []byte(e.Time.UTC().Format(time.RFC3339Nano))},
			{Key: schemas.HeaderContentType, Value: []byte(schemas.ContentTypeJSON)},
		},
	}
}

// Header returns the value of header key on r, or "".
func Header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Where names a record's coordinates for error messages.
func Where(r *kgo.Record) string {
	return r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "@" + strconv.FormatInt(r.Offset, 10)
}

// Partitions lists the partitions of a topic of n partitions, 0..n-1: what
// a replay of the whole topic reads.
func Partitions(n int32) []int32 {
	parts := make([]int32, n)
	for i := range parts {
		parts[i] = int32(i)
	}
	return parts
}

// Partition maps a key to a partition exactly as Kafka's Java client does
// (murmur2, sign bit masked), so third-party producers using the default
// partitioner put the same key in the same partition.
func Partition(key []byte, n int32) int32 {
	return int32(murmur2(key)&0x7fffffff) % n
}

// murmur2 is Kafka's variant of MurmurHash2 (seed 0x9747b28c).
func murmur2(data []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	length := len(data)
	h := seed ^ uint32(length)
	for i := 0; i+4 <= length; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := length &^ 3
	switch length & 3 {
	case 3:
		h ^= uint32(data[tail+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[tail+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[tail])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
