// Command ping waits until a Kafka broker answers a metadata request and says what it is;
// with -smoke it also proves that topic creation, produce, transactions (commit and abort),
// read-committed consumption and consumer-group commits work on it.
//
// deploy/local/kafka.sh runs it to wait for the local broker:
//
//	cd deploy && go run ./local/kafka/ping -brokers 127.0.0.1:19092 -timeout 60s
//	cd deploy && go run ./local/kafka/ping -smoke
//
// It prints one line per fact and exits 1 with the last error when the broker does not
// become ready in time or a smoke step fails.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	brokers := flag.String("brokers", envOr("RECON_KAFKA_BROKERS", "127.0.0.1:19092"), "comma-separated seed brokers")
	timeout := flag.Duration("timeout", 60*time.Second, "how long to wait for the broker to answer")
	smoke := flag.Bool("smoke", false, "after the broker answers, produce and consume records (plain and transactional)")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	seeds := strings.Split(*brokers, ",")
	if err := run(ctx, seeds, *smoke); err != nil {
		fmt.Fprintf(os.Stderr, "ping: %s: %v\n", *brokers, err)
		os.Exit(1)
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, seeds []string, smoke bool) error {
	start := time.Now()
	info, err := waitReady(ctx, seeds)
	if err != nil {
		return err
	}
	fmt.Printf("ready after %s: cluster %s, brokers %v, controller %d, protocol of Kafka %s, features %s\n",
		time.Since(start).Round(time.Millisecond), info.cluster, info.brokers, info.controller, info.version, info.features)
	if !smoke {
		return nil
	}
	return smokeTest(ctx, seeds)
}

type brokerInfo struct {
	cluster    string
	brokers    []int32
	controller int32
	version    string
	features   string
}

// waitReady retries a metadata request and an ApiVersions request every 250 ms until both
// succeed or ctx ends. A broker counts as ready when it lists itself and a controller.
func waitReady(ctx context.Context, seeds []string) (brokerInfo, error) {
	var last error
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := probe(ctx, seeds)
		if err == nil {
			return info, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return brokerInfo{}, fmt.Errorf("not ready: %w (last error: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func probe(ctx context.Context, seeds []string) (brokerInfo, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
	if err != nil {
		return brokerInfo{}, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()

	md, err := adm.BrokerMetadata(pctx)
	if err != nil {
		return brokerInfo{}, fmt.Errorf("metadata: %w", err)
	}
	if len(md.Brokers) == 0 || md.Controller < 0 {
		return brokerInfo{}, fmt.Errorf("metadata: %d brokers, controller %d", len(md.Brokers), md.Controller)
	}
	info := brokerInfo{cluster: md.Cluster, brokers: md.Brokers.NodeIDs(), controller: md.Controller}
	vs, err := adm.ApiVersions(pctx)
	if err != nil {
		return brokerInfo{}, fmt.Errorf("api versions: %w", err)
	}
	for _, v := range vs.Sorted() {
		if v.Err != nil {
			return brokerInfo{}, fmt.Errorf("api versions of broker %d: %w", v.NodeID, v.Err)
		}
		info.version = v.VersionGuess()
		var fs []string
		for _, f := range v.Raw().FinalizedFeatures {
			fs = append(fs, fmt.Sprintf("%s=%d", f.Name, f.MaxVersionLevel))
		}
		sort.Strings(fs)
		info.features = strings.Join(fs, ",")
	}
	return info, nil
}

// Record counts of the smoke test; all records go to partition 0 so that the committed
// batch after the aborted one proves a read-committed consumer skips the aborted records.
const (
	plainRecords     = 10
	committedRecords = 5
	abortedRecords   = 3
	lateRecords      = 2
)

func smokeTest(ctx context.Context, seeds []string) error {
	start := time.Now()
	suffix := fmt.Sprint(time.Now().UnixNano())
	topic := "recon-ping-" + suffix

	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := adm.DeleteTopic(dctx, topic); err != nil {
			fmt.Fprintf(os.Stderr, "ping: delete topic %s: %v\n", topic, err)
		}
	}()
	fmt.Printf("smoke: created topic %s (3 partitions)\n", topic)

	// Plain idempotent produce.
	pl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer pl.Close()
	for i := range plainRecords {
		if err := pl.ProduceSync(ctx, rec(topic, "plain", i)).FirstErr(); err != nil {
			return fmt.Errorf("plain produce %d to %s: %w", i, topic, err)
		}
	}
	fmt.Printf("smoke: produced %d plain records\n", plainRecords)

	// Transactional produce: commit, abort, commit.
	tx, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.TransactionalID("recon-ping-"+suffix),
		kgo.TransactionTimeout(30*time.Second))
	if err != nil {
		return err
	}
	defer tx.Close()
	for _, step := range []struct {
		kind   string
		n      int
		commit kgo.TransactionEndTry
	}{
		{"committed", committedRecords, kgo.TryCommit},
		{"aborted", abortedRecords, kgo.TryAbort},
		{"late", lateRecords, kgo.TryCommit},
	} {
		if err := tx.BeginTransaction(); err != nil {
			return fmt.Errorf("begin %s transaction: %w", step.kind, err)
		}
		for i := range step.n {
			if err := tx.ProduceSync(ctx, rec(topic, step.kind, i)).FirstErr(); err != nil {
				return fmt.Errorf("transactional produce %s %d: %w", step.kind, i, err)
			}
		}
		if err := tx.EndTransaction(ctx, step.commit); err != nil {
			return fmt.Errorf("end %s transaction: %w", step.kind, err)
		}
	}
	fmt.Printf("smoke: transactions: %d records committed, %d aborted, %d committed\n",
		committedRecords, abortedRecords, lateRecords)

	// Read-committed consumer group from the start.
	group := "recon-ping-" + suffix
	cons, err := kgo.NewClient(kgo.SeedBrokers(seeds...),
		kgo.ConsumeTopics(topic),
		kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit())
	if err != nil {
		return err
	}
	defer cons.Close()
	want := plainRecords + committedRecords + lateRecords
	seen := map[string]int{}
	got := 0
	for got < want {
		fs := cons.PollRecords(ctx, 100)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("consume: got %d of %d records %v: %w", got, want, seen, err)
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = fmt.Errorf("fetch %s/%d: %w", t, p, err) })
		if ferr != nil {
			return ferr
		}
		for _, r := range fs.Records() {
			kind, _, _ := strings.Cut(string(r.Key), "-")
			if kind == "aborted" {
				return fmt.Errorf("read-committed consumer saw aborted record %s at %s/%d@%d", r.Key, r.Topic, r.Partition, r.Offset)
			}
			seen[kind]++
			got++
		}
		if err := cons.CommitUncommittedOffsets(ctx); err != nil {
			return fmt.Errorf("commit offsets of group %s: %w", group, err)
		}
	}
	if seen["plain"] != plainRecords || seen["committed"] != committedRecords || seen["late"] != lateRecords {
		return fmt.Errorf("consumed %v, want plain=%d committed=%d late=%d", seen, plainRecords, committedRecords, lateRecords)
	}
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("fetch offsets of group %s: %w", group, err)
	}
	committed, ok := offs.Lookup(topic, 0)
	if !ok || committed.Err != nil {
		return fmt.Errorf("group %s has no committed offset for %s/0: %v", group, topic, committed.Err)
	}
	fmt.Printf("smoke: consumed %v read-committed (aborted records skipped), group %s committed offset %d on %s/0\n",
		seen, group, committed.At, topic)
	cons.Close()
	if _, err := adm.DeleteGroup(ctx, group); err != nil {
		return fmt.Errorf("delete group %s: %w", group, err)
	}
	fmt.Printf("smoke: ok in %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

func rec(topic, kind string, i int) *kgo.Record {
	return &kgo.Record{
		Topic:     topic,
		Partition: 0,
		Key:       fmt.Appendf(nil, "%s-%d", kind, i),
		Value:     fmt.Appendf(nil, "recon ping %s record %d", kind, i),
	}
}
