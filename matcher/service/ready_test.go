package service

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	dto "github.com/prometheus/client_model/go"

	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/bus/bustest"
	"github.com/reconhq/recon/schemas"
)

// Ready means the stages hold their partitions' state, not only that the
// loans table caught up: a readiness probe passing before the post stage
// restored its journal would route traffic to an instance that cannot yet
// answer for suspense.
func TestReadyWaitsForStagesToRestore(t *testing.T) {
	kc, _ := bustest.Cluster(t, 3)
	s, err := New(Config{Kafka: kc, Instance: "ready", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.NotReady(); err == nil {
		t.Fatal("ready before Run")
	}
	runUntilReady(t, s)
	if err := s.NotReady(); err != nil {
		t.Fatalf("Ready closed but NotReady says %v", err)
	}
	if held := s.postHeld.Load(); held != kc.Partitions {
		t.Fatalf("ready while the post stage holds %d of %d partitions' state", held, kc.Partitions)
	}
}

// A loan record the table cannot take is counted and skipped: the loans
// after it load and the matcher starts.
func TestBadLoanRecordDoesNotStopTheStart(t *testing.T) {
	kc, cl := bustest.Cluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range []*kgo.Record{
		{Topic: schemas.TopicLoans, Key: []byte("BAD"), Value: []byte(`{"loan_id":"BAD",`)},
		{Topic: schemas.TopicLoans, Key: []byte("NEG"), Value: []byte(`{"loan_id":"NEG","currency":"EUR","principal":"-1"}`)},
		{Topic: schemas.TopicLoans, Key: []byte("GOOD"), Value: []byte(`{"loan_id":"GOOD","virtual_iban":"FR7630001007941234567890185","currency":"EUR","principal":"100.00"}`)},
	} {
		r.Partition = bus.Partition(r.Key, kc.Partitions)
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(Config{Kafka: kc, Instance: "bad-loan", Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	runUntilReady(t, s)
	if _, ok := s.Loan("GOOD"); !ok {
		t.Fatal("the good loan after the bad ones is not in the table")
	}
	var refused dto.Metric
	if err := s.m.loansRefused.Write(&refused); err != nil {
		t.Fatal(err)
	}
	if n := refused.GetCounter().GetValue(); n != 2 {
		t.Fatalf("%v loan records refused, want 2", n)
	}
}

// runUntilReady runs s until the test ends and waits for it to be ready.
func runUntilReady(t *testing.T, s *Service) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-s.Ready():
	case <-time.After(60 * time.Second):
		t.Fatalf("not ready within 60 s: %v", s.NotReady())
	}
}
