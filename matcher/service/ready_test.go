package service

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/bus"
)

// Ready means the stages hold their partitions' state, not only that the
// loans table caught up: a readiness probe passing before the post stage
// restored its journal would route traffic to an instance that cannot yet
// answer for suspense.
func TestReadyWaitsForStagesToRestore(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	kc := bus.DefaultConfig()
	kc.Brokers = c.ListenAddrs()
	cl, err := kgo.NewClient(kc.Opts()...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := bus.EnsureTopics(ctx, cl, kc); err != nil {
		t.Fatal(err)
	}
	s := New(Config{Kafka: kc, Instance: "ready", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	if err := s.NotReady(); err == nil {
		t.Fatal("ready before Run")
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case <-s.Ready():
	case <-ctx.Done():
		t.Fatalf("not ready within 60 s: %v", s.NotReady())
	}
	if err := s.NotReady(); err != nil {
		t.Fatalf("Ready closed but NotReady says %v", err)
	}
	s.postMu.Lock()
	held := len(s.posters)
	s.postMu.Unlock()
	if held != int(kc.Partitions) {
		t.Fatalf("ready while the post stage holds %d of %d partitions' state", held, kc.Partitions)
	}
}
