package collect

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/bus/bustest"
	"github.com/reconhq/recon/schemas"
)

// The loop restores items from the topic, settles one by its booking,
// rejects one by a pain.002, marks the third overdue, and publishes each
// change on the expected-payments topic.
func TestLoop(t *testing.T) {
	kc, cl := bustest.Cluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC) // past C3's window (2026-12-01 + 5 days)

	items := []recon.Expected{item("C1", "M1", "P1", recon.Collection), item("C2", "M1", "P1", recon.Collection), item("C3", "M1", "P1", recon.Collection)}
	if err := Publish(ctx, cl, kc, items, "test", now); err != nil {
		t.Fatal(err)
	}
	tx := booked("t1", "C1", recon.Credit, "100.00")
	rj := recon.StatusReport{Type: recon.TypeStatus, MessageID: "S1", OriginalEndToEndID: "C2", Status: "RJCT", Reason: "AM04", Level: "transaction"}
	var recs []*kgo.Record
	for _, ev := range []struct {
		typ string
		key string
		v   any
	}{{schemas.TypeBankTransaction, tx.ID, tx}, {schemas.TypeStatusReport, "C2", rj}} {
		b, _ := json.Marshal(ev.v)
		recs = append(recs, bus.Event{Topic: schemas.TopicBankTransactions, Key: ev.key, Type: ev.typ, ID: ev.key, Source: "test", Time: now, Value: b, Partition: -1}.Record(3))
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	loop := NewLoop(LoopConfig{Kafka: kc, Now: func() time.Time { return now }, PollTimeout: 50 * time.Millisecond})
	done := make(chan error, 1)
	lctx, stop := context.WithCancel(ctx)
	go func() { done <- loop.Run(lctx) }()

	// Read the topic until the three changes are there.
	want := map[string]recon.ExpectedStatus{"C1": recon.ExpectedSettled, "C2": recon.ExpectedRejected, "C3": recon.ExpectedOverdue}
	got := map[string]recon.ExpectedStatus{}
	reader, err := kgo.NewClient(kc.Opts(kgo.ConsumeTopics(schemas.TopicExpected), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	for len(got) < 3 || got["C1"] != want["C1"] || got["C2"] != want["C2"] || got["C3"] != want["C3"] {
		fs := reader.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out; statuses %v", got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var e recon.Expected
			if err := json.Unmarshal(r.Value, &e); err != nil {
				t.Fatal(err)
			}
			got[e.ID] = e.Status
		})
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A restart restores the states from the topic and changes nothing.
	again := NewTracker()
	if _, err := Known(ctx, kc, again); err != nil {
		t.Fatal(err)
	}
	for id, st := range want {
		if it, _ := again.Get(id); it.Status != st {
			t.Errorf("restored %s: %s, want %s", id, it.Status, st)
		}
	}
}

// A commit the broker refuses (Kafka unavailable, a broker restarting)
// does not end the loop: it starts over from the topics and commits.
func TestLoopSurvivesAFailedCommit(t *testing.T) {
	c, kc, cl := bustest.Fake(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC)
	if err := Publish(ctx, cl, kc, []recon.Expected{item("C1", "M1", "P1", recon.Collection)}, "test", now); err != nil {
		t.Fatal(err)
	}
	tx := booked("t1", "C1", recon.Credit, "100.00")
	b, _ := json.Marshal(tx)
	if err := cl.ProduceSync(ctx, bus.Event{Topic: schemas.TopicBankTransactions, Key: tx.ID, Type: schemas.TypeBankTransaction, ID: tx.ID, Source: "test", Time: now, Value: b, Partition: -1}.Record(1)).FirstErr(); err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int32
	c.ControlKey(int16(kmsg.OffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		refused.Add(1) // once: kfake drops a control function once it handled a request
		req := kreq.(*kmsg.OffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.GroupAuthorizationFailed.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	loop := NewLoop(LoopConfig{Kafka: kc, Now: func() time.Time { return now }, PollTimeout: 50 * time.Millisecond,
		Log: slog.New(slog.DiscardHandler)})
	done := make(chan error, 1)
	lctx, stop := context.WithCancel(ctx)
	go func() { done <- loop.Run(lctx) }()
	adm := kadm.NewClient(cl)
	for {
		select {
		case err := <-done:
			t.Fatalf("the loop ended after a refused commit: %v", err)
		case <-ctx.Done():
			t.Fatalf("no commit; %d refused", refused.Load())
		case <-time.After(50 * time.Millisecond):
		}
		offsets, err := adm.FetchOffsets(ctx, "recon-expected")
		if o, ok := offsets.Lookup(schemas.TopicBankTransactions, 0); err == nil && ok && o.At > 0 && refused.Load() > 0 {
			break
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	again := NewTracker()
	if _, err := Known(ctx, kc, again); err != nil {
		t.Fatal(err)
	}
	if it, _ := again.Get("C1"); it.Status != recon.ExpectedSettled {
		t.Fatalf("C1 %s, want settled", it.Status)
	}
}
