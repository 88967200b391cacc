package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/bus/bustest"
	"github.com/reconhq/recon/schemas"
)

// A restore that cannot reach the last stable offset (a transaction that
// stays open on the dedup changelog: a producer that never ends it, or an
// end marker the broker lost) is not a silent "joining" forever: NotReady
// names the topic, partition and offsets, and the fix.
func TestNotReadyNamesAStalledRestore(t *testing.T) {
	kc, _ := bustest.Cluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	zombie, err := kgo.NewClient(kc.Opts(kgo.TransactionalID("zombie"), kgo.TransactionTimeout(5*time.Minute))...)
	if err != nil {
		t.Fatal(err)
	}
	defer zombie.Close()
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	rec := &kgo.Record{Topic: schemas.TopicDedupChangelog, Partition: 1, Key: []byte("k"), Value: []byte(`{}`)}
	if err := zombie.ProduceSync(ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}

	s, err := New(Config{Kafka: kc, Instance: "stalled", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.stall = 300 * time.Millisecond
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	defer func() { stop(); <-done }()

	var stalled *bus.ErrReplayStalled
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for err = s.NotReady(); !errors.As(err, &stalled); err = s.NotReady() {
		select {
		case <-ctx.Done():
			t.Fatalf("NotReady never named the stall: %v", err)
		case <-tick.C:
		}
	}
	if stalled.Topic != schemas.TopicDedupChangelog || stalled.Partition != 1 || stalled.Reached != 0 || stalled.Want != 1 {
		t.Fatalf("stalled on %s/%d at %d of %d, want %s/1 at 0 of 1", stalled.Topic, stalled.Partition, stalled.Reached, stalled.Want, schemas.TopicDedupChangelog)
	}
	for _, want := range []string{"route stage", schemas.TopicDedupChangelog + "/1", "reached offset 0 of 1", "rebuild its data dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("NotReady %q does not say %q", err, want)
		}
	}

	// once the transaction ends, the stage restores and the stall is gone
	if err := zombie.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Ready():
	case <-ctx.Done():
		t.Fatalf("not ready after the transaction ended: %v", s.NotReady())
	}
	if err := s.NotReady(); err != nil {
		t.Fatalf("ready, yet NotReady says %v", err)
	}
}
