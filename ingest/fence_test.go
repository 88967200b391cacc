package ingest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon/schemas"
)

// A run killed mid-file leaves a transaction open under one of its file
// producers' ids (not necessarily the first: files rotate through them).
// FenceFiles at the next start aborts it at once, so read-committed
// readers (LoadFiles, the matcher) do not wait for its timeout.
func TestFenceFilesAbortsWhatAKilledRunLeftOpen(t *testing.T) {
	_, kc := kafkaFor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	killed, err := kgo.NewClient(kc.Opts(kgo.TransactionalID(kc.ClientID+"-ingest-files-2"), kgo.TransactionTimeout(5*time.Minute))...)
	if err != nil {
		t.Fatal(err)
	}
	defer killed.Close()
	if err := killed.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := killed.ProduceSync(ctx, &kgo.Record{Topic: schemas.TopicBankTransactions, Partition: 0, Value: []byte(`{}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(killed)
	held := func() bool { // the open transaction holds read-committed readers back
		stable, err1 := adm.ListCommittedOffsets(ctx, schemas.TopicBankTransactions)
		ends, err2 := adm.ListEndOffsets(ctx, schemas.TopicBankTransactions)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		lso, _ := stable.Lookup(schemas.TopicBankTransactions, 0)
		hwm, _ := ends.Lookup(schemas.TopicBankTransactions, 0)
		return lso.Offset < hwm.Offset
	}
	if !held() {
		t.Fatal("the open transaction does not hold the last stable offset back")
	}
	in := newIngest(t, kc, WebhookConfig{})
	defer in.Close()
	if err := in.FenceFiles(ctx); err != nil {
		t.Fatal(err)
	}
	if held() {
		t.Fatal("after FenceFiles the killed run's transaction still holds read-committed readers back")
	}
}
