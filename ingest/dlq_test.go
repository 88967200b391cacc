package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/bus"
	"github.com/reconhq/recon/schemas"
)

const dlqFile = `<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>DLQ-1</MsgId><CreDtTm>2026-11-26T20:00:00</CreDtTm></GrpHdr>
<Stmt><Id>S1</Id><Acct><Id><IBAN>FR4630001007940000000000106</IBAN></Id></Acct>
<Ntry><Amt Ccy="EUR">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts><BookgDt><Dt>2026-11-26</Dt></BookgDt><AcctSvcrRef>DLQ-REF-1</AcctSvcrRef></Ntry>
</Stmt></BkToCstmrStmt></Document>`

// readTopic returns every committed record of topic.
func readTopic(t *testing.T, kc bus.Config, topic string) []*kgo.Record {
	t.Helper()
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := bus.Replay(ctx, kc, topic, []int32{0, 1, 2}, func(r *kgo.Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRedriveDeadLetters: dead letters of every source are listed, redriven
// through the path they came from, marked, and a second redrive skips them.
func TestRedriveDeadLetters(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	ctx := context.Background()

	txn := `{"id":"prod-1","account_iban":"` + lenderIBAN + `","direction":"credit","amount":"12.50","currency":"EUR","bank_reference":"DLQ-TX-1"}`
	webhook := `{"id":"evt_9","type":"transaction.created","data":{"id":"tx_9","direction":"credit","amount":"7.00","currency":"EUR","status":"booked","bank_reference":"DLQ-WH-9"}}`
	routed, _ := json.Marshal(recon.BankTransaction{Type: recon.TypeTransaction, ID: "bt_matcher_refused", AccountIBAN: lenderIBAN})
	for _, dl := range []struct{ source, where, raw string }{
		{"transactions", "/v1/bank/transactions", "[" + txn + "]"},
		{"loans", "/v1/loans", `{"loan_id":"DLQ-L1","virtual_iban":"FR2311111111110000000000001","currency":"EUR","principal":"100.00"}`},
		{"file", "statement.xml", dlqFile},
		{"webhook", "delivery event \"evt_9\"", webhook},
		{"transactions", "/v1/bank/transactions", `[{"id":"x","amount":12.5}]`}, // still bad: stays
	} {
		if err := in.DeadLetter(ctx, dl.source, dl.where, "refused by an older version", []byte(dl.raw)); err != nil {
			t.Fatal(err)
		}
	}
	// the matcher's dead letter: the record it could not decide
	mdl, _ := json.Marshal(recon.DeadLetter{ID: "recon.bank-transactions.v1/0@7", Source: "matcher/route", Where: "recon.bank-transactions.v1/0@7",
		Reason: "transaction bt_matcher_refused: direction \"\" is not credit or debit", Raw: routed, At: testNow})
	if err := in.publish(ctx, []bus.Event{{Topic: schemas.TopicDeadLetters, Key: "recon.bank-transactions.v1/0@7", Type: schemas.TypeDeadLetter,
		ID: "dl-x", Source: "recon/matcher", Time: testNow, Value: mdl, Partition: -1}}); err != nil {
		t.Fatal(err)
	}
	// the same refused bytes again: one letter, seen twice
	if err := in.DeadLetter(ctx, "loans", "/v1/loans", "refused again", []byte(`{"loan_id":"DLQ-L1","virtual_iban":"FR2311111111110000000000001","currency":"EUR","principal":"100.00"}`)); err != nil {
		t.Fatal(err)
	}

	letters, err := ReadDeadLetters(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	if len(letters) != 6 {
		t.Fatalf("%d letters, want 6: %+v", len(letters), letters)
	}
	before := len(readTopic(t, kc, schemas.TopicBankTransactions))

	// a dry run publishes nothing and marks nothing
	for _, l := range letters {
		_, _ = in.Redrive(ctx, l, true)
	}
	if n := len(readTopic(t, kc, schemas.TopicBankTransactions)); n != before {
		t.Fatalf("dry run published %d records", n-before)
	}

	results := map[string]error{}
	for _, l := range letters {
		_, err := in.Redrive(ctx, l, false)
		results[l.Source+" "+l.Where+" "+string(l.Raw[:min(10, len(l.Raw))])] = err
		if l.Source == "loans" && l.Seen != 2 {
			t.Errorf("loans letter seen %d times, want 2", l.Seen)
		}
	}
	failed := 0
	for k, err := range results {
		if err != nil {
			failed++
			var ie *InputError
			if !strings.Contains(k, "transactions") || !errors.As(err, &ie) {
				t.Errorf("%s: %v", k, err)
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d redrives failed, want only the still-bad body: %v", failed, results)
	}

	// what came back: the API transaction, the file's entry, the webhook's
	// transaction and the matcher's record, on the bank transactions topic
	byKey := map[string]recon.BankTransaction{}
	for _, r := range readTopic(t, kc, schemas.TopicBankTransactions)[before:] {
		var bt recon.BankTransaction
		if err := json.Unmarshal(r.Value, &bt); err != nil {
			t.Fatal(err)
		}
		byKey[string(r.Key)] = bt
		byKey[bt.ID] = bt
	}
	for _, ref := range []string{"DLQ-TX-1", "DLQ-REF-1", "DLQ-WH-9"} {
		found := false
		for _, bt := range byKey {
			found = found || bt.BankReference == ref
		}
		if !found {
			t.Errorf("no redriven transaction with bank reference %s in %v", ref, byKey)
		}
	}
	if _, ok := byKey["bt_matcher_refused"]; !ok {
		t.Errorf("the matcher's dead letter did not go back to %s", schemas.TopicBankTransactions)
	}
	loans := readTopic(t, kc, schemas.TopicLoans)
	if len(loans) != 1 || string(loans[0].Key) != "DLQ-L1" {
		t.Errorf("loans topic: %d records, want DLQ-L1 once", len(loans))
	}

	// marked: five redriven, the bad one still open
	letters, err = ReadDeadLetters(ctx, kc)
	if err != nil {
		t.Fatal(err)
	}
	open := 0
	for _, l := range letters {
		if l.Redriven == nil {
			open++
			if !strings.Contains(string(l.Raw), `"amount":12.5`) {
				t.Errorf("letter %s (%s) not marked redriven", l.ID, l.Source)
			}
		} else if l.Result == "" {
			t.Errorf("letter %s: marker without result", l.ID)
		}
	}
	if len(letters) != 6 || open != 1 {
		t.Errorf("%d letters, %d open; want 6 and 1", len(letters), open)
	}
}

func TestRedriveRefusesWhatHasNoPath(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	for _, l := range []Letter{
		{DeadLetter: recon.DeadLetter{ID: "a", Source: "carrier-pigeon", Raw: []byte("{}")}},
		{DeadLetter: recon.DeadLetter{ID: "b", Source: "matcher/route", Raw: []byte("not json")}},
		{DeadLetter: recon.DeadLetter{ID: "c", Source: "webhook", Raw: []byte(`{"id":"e","type":"transaction.created","resource_id":"tx_1"}`)}},
	} {
		if _, err := in.Redrive(context.Background(), l, false); !errors.Is(err, ErrNotRedrivable) {
			t.Errorf("%s (%s): %v, want ErrNotRedrivable", l.ID, l.Source, err)
		}
	}
}
