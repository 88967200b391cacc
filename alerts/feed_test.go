package alerts

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/bus/bustest"
	"github.com/reconhq/recon/schemas"
)

func rec(t *testing.T, topic, key string, v any) *kgo.Record {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	recOffset++
	return &kgo.Record{Topic: topic, Key: []byte(key), Value: b, Offset: recOffset}
}

// recOffset numbers the records rec makes, as a partition would.
var recOffset int64

func posting(account string, side recon.Side, amount string) recon.Posting {
	return recon.Posting{Account: account, Side: side, Amount: dec(amount), Currency: "EUR"}
}

// TestFeed: the events the alerts feed derives from the topics.
func TestFeed(t *testing.T) {
	at := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	f := newFeed()
	f.record(rec(t, schemas.TopicLoans, "L1", recon.Loan{LoanID: "L1", Currency: "EUR", Principal: dec("200"), Schedule: []recon.Instalment{
		{DueDate: "2026-12-01", Principal: dec("100"), Interest: dec("5"), Fees: dec("1")},
		{DueDate: "2026-11-01", Principal: dec("100"), Interest: dec("6"), Fees: dec("1")},
	}}), false)
	// a repayment of 110: fees 1+1, interest 6+2, principal 100+0
	f.record(rec(t, schemas.TopicLedgerEntries, "L1", recon.Entry{ID: "e1", Kind: "repayment", LoanID: "L1", TransactionID: "t1", BookedAt: at, Postings: []recon.Posting{
		posting("bank:DE1", recon.DebitSide, "110"), posting("loan:L1:fees", recon.CreditSide, "2"),
		posting("loan:L1:interest", recon.CreditSide, "8"), posting("loan:L1:principal", recon.CreditSide, "100")}}), false)
	// two suspense items, one released
	for i, id := range []string{"t2", "t3"} {
		f.record(rec(t, schemas.TopicLedgerEntries, "suspense", recon.Entry{ID: "s" + id, Kind: "suspense", TransactionID: id, BookedAt: at.Add(time.Duration(i) * time.Hour), Postings: []recon.Posting{
			posting("bank:DE1", recon.DebitSide, "50"), posting("suspense", recon.CreditSide, "50")}}), false)
	}
	f.record(rec(t, schemas.TopicLedgerEntries, "suspense", recon.Entry{ID: "rt2", Kind: "suspense-release", TransactionID: "t2", BookedAt: at, Postings: []recon.Posting{
		posting("suspense", recon.DebitSide, "50"), posting("transit:rematch", recon.CreditSide, "50")}}), false)
	// a direct debit seen twice, its return, a proof break
	dd := recon.BankTransaction{Type: recon.TypeTransaction, ID: "d1", MandateID: "M1", Direction: recon.Credit, Amount: dec("10"), Currency: "EUR", Status: recon.Booked}
	f.record(rec(t, schemas.TopicBankTransactions, "d1", dd), false)
	f.record(rec(t, schemas.TopicBankTransactions, "d1", dd), false)
	ret := dd
	ret.ID, ret.Direction, ret.ReturnReason = "d2", recon.Debit, "AM04"
	f.record(rec(t, schemas.TopicBankTransactions, "d2", ret), false)
	f.record(rec(t, schemas.TopicReconciliation, "DE1", recon.Break{Type: recon.BreakProof, ID: "S/proof", AccountIBAN: "DE1", Date: "2026-11-01", Status: recon.BreakBroken, Expected: dec("1")}), false)
	f.record(rec(t, schemas.TopicReconciliation, "DE1", recon.Break{Type: recon.BreakProof, ID: "S0/proof", AccountIBAN: "DE1", Date: "2026-10-31", Status: recon.BreakOK}), false)

	var inst []InstalmentStatus
	var susp []SuspenseState
	var dds []DirectDebitSeen
	var stmts []StatementReceived
	for _, ev := range f.flush() {
		switch ev := ev.(type) {
		case InstalmentStatus:
			inst = append(inst, ev)
		case SuspenseState:
			susp = append(susp, ev)
		case DirectDebitSeen:
			dds = append(dds, ev)
		case StatementReceived:
			stmts = append(stmts, ev)
		}
	}
	if len(inst) != 2 || inst[0].DueDate != "2026-11-01" || !inst[0].Outstanding.Equal(dec("0")) || !inst[1].Outstanding.Equal(dec("103")) {
		t.Errorf("instalments %+v, want 2026-11-01 paid, 2026-12-01 owing 103 (interest 3, principal 100)", inst)
	}
	if len(susp) != 1 || !susp[0].Total.Equal(dec("50")) || susp[0].Count != 1 || !susp[0].Oldest.Equal(at.Add(time.Hour)) {
		t.Errorf("suspense %+v, want 50 EUR in 1 item since 10:00", susp)
	}
	if len(dds) != 2 || dds[0].Return || !dds[1].Return {
		t.Errorf("direct debits %+v, want one collection and one return", dds)
	}
	if len(stmts) != 1 || stmts[0].Check != "mismatch" || stmts[0].Date != "2026-11-01" {
		t.Errorf("statements %+v, want one mismatch for the broken proof", stmts)
	}
	if evs := f.flush(); len(evs) != 0 {
		t.Errorf("second flush: %+v", evs)
	}
}

func overdue(id string, status recon.ExpectedStatus) recon.Expected {
	return recon.Expected{Type: "expected", ID: id, Kind: recon.Collection, LoanID: "L1", DueDate: "2026-12-01",
		Amount: dec("100.00"), Currency: "EUR", RequestedDate: "2026-12-01", WindowDays: 5, Status: status}
}

// TestFeedExpected: expected-payment records become ExpectedChanged events
// whatever their status (the rule picks); replays, tombstones, garbage and
// records without an id give none.
func TestFeedExpected(t *testing.T) {
	f := newFeed()
	f.record(rec(t, schemas.TopicExpected, "E1", overdue("E1", recon.ExpectedOpen)), false)
	f.record(rec(t, schemas.TopicExpected, "E1", overdue("E1", recon.ExpectedOverdue)), false)
	f.record(rec(t, schemas.TopicExpected, "E0", overdue("E0", recon.ExpectedOverdue)), true) // before the saved offset
	f.record(&kgo.Record{Topic: schemas.TopicExpected, Key: []byte("E2")}, false)             // a tombstone
	f.record(&kgo.Record{Topic: schemas.TopicExpected, Key: []byte("E3"), Value: []byte("{")}, false)
	f.record(rec(t, schemas.TopicExpected, "", overdue("", recon.ExpectedOverdue)), false)
	evs := f.flush()
	if len(evs) != 2 {
		t.Fatalf("events %+v, want 2", evs)
	}
	for i, want := range []recon.ExpectedStatus{recon.ExpectedOpen, recon.ExpectedOverdue} {
		ev, ok := evs[i].(ExpectedChanged)
		if !ok || ev.Expected.ID != "E1" || ev.Expected.Status != want || !ev.Expected.Amount.Equal(dec("100")) {
			t.Errorf("event %d: %+v, want E1 %s", i, evs[i], want)
		}
	}
}

// TestFeedExpectedKafka: Service.Feed reads the expected-payments topic and
// publishes one alert per overdue item, however often the record comes.
// One partition keeps the order: once E2's alert is on the alerts topic,
// anything E1 would have raised is there before it.
func TestFeedExpectedKafka(t *testing.T) {
	kc, cl := bustest.Cluster(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	now := time.Date(2026, 12, 9, 10, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for _, x := range []recon.Expected{overdue("E1", recon.ExpectedOpen), overdue("E1", recon.ExpectedOverdue),
		overdue("E1", recon.ExpectedOverdue), overdue("E1", recon.ExpectedSettled), overdue("E2", recon.ExpectedOverdue)} {
		v, _ := json.Marshal(x)
		recs = append(recs, bus.Event{Topic: schemas.TopicExpected, Key: x.ID, Type: schemas.TypeExpected,
			ID: x.ID + "@" + string(x.Status), Source: "test", Time: now, Value: v, Partition: -1}.Record(1))
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	svc, err := New(Config{Rules: []Rule{{Name: "late", Kind: ExpectedOverdue}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Feed(fctx, FeedConfig{Kafka: kc}) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("feed: %v", err)
		}
	}()

	reader, err := kgo.NewClient(kc.Opts(kgo.ConsumeTopics(schemas.TopicAlerts), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	count := map[string]int{}
	for count["E2"] == 0 {
		fs := reader.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("timed out; alerts by item %v", count)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var a recon.Alert
			if err := json.Unmarshal(r.Value, &a); err != nil {
				t.Fatal(err)
			}
			if a.Kind != string(ExpectedOverdue) || a.Expected == nil || a.Expected.ID != a.Subject || string(r.Key) != a.ID {
				t.Errorf("alert %+v under key %s", a, r.Key)
			}
			count[a.Subject]++
		})
	}
	if count["E1"] != 1 || len(count) != 2 {
		t.Errorf("alerts by item %v, want E1 and E2 once each", count)
	}
}
