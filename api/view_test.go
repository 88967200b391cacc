package api

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/ledger"
	"github.com/reconhq/recon/schemas"
)

// A disbursement debits principal receivable; paid counts repayments only.
// Review items (identity conflicts) show in the suspense list with no money.
func TestLoanPaidAfterDisbursementAndConflictItem(t *testing.T) {
	v := NewView(slog.New(slog.DiscardHandler))
	offset := map[string]int64{}
	rec := func(topic string, val any) *kgo.Record {
		b, _ := json.Marshal(val)
		offset[topic]++
		return &kgo.Record{Topic: topic, Value: b, Offset: offset[topic] - 1}
	}
	amt := decimal.RequireFromString
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	v.apply(rec(schemas.TopicLoans, recon.Loan{LoanID: "L1", VirtualIBAN: "FR76X", Currency: "EUR", Principal: amt("1000.00"), DisbursementEndToEndID: "D1"}))
	var head ledger.Head
	for _, e := range []recon.Entry{
		{ID: "e_d", Kind: recon.EntryDisbursement, LoanID: "L1", TransactionID: "t0", BookedAt: at, Postings: []recon.Posting{
			{Account: "loan:L1:principal", Side: recon.DebitSide, Amount: amt("1000.00"), Currency: "EUR"},
			{Account: "bank:FR76BANK", Side: recon.CreditSide, Amount: amt("1000.00"), Currency: "EUR"}}},
		{ID: "e_p", Kind: recon.EntryRepayment, LoanID: "L1", TransactionID: "t1", BookedAt: at, Postings: []recon.Posting{
			{Account: "bank:FR76BANK", Side: recon.DebitSide, Amount: amt("300.00"), Currency: "EUR"},
			{Account: "loan:L1:principal", Side: recon.CreditSide, Amount: amt("300.00"), Currency: "EUR"}}},
		{ID: "e_cf_review", Kind: recon.EntryReview, TransactionID: "t1", BookedAt: at, Note: "same identity seen before",
			Item: &recon.BankTransaction{ID: "t1", Amount: amt("300.01"), Currency: "EUR", Direction: recon.Credit},
			Postings: []recon.Posting{
				{Account: ledger.Memo, Side: recon.DebitSide, Amount: amt("300.01"), Currency: "EUR"},
				{Account: ledger.Memo, Side: recon.CreditSide, Amount: amt("300.01"), Currency: "EUR"}}},
	} {
		head = ledger.Seal(head, &e)
		v.apply(rec(schemas.TopicLedgerEntries, e))
	}
	s, ok := v.Loan("L1")
	if !ok || !s.Paid.Equal(amt("300")) || !s.Outstanding.Equal(amt("700")) || s.Status != "repaying" {
		t.Fatalf("loan %+v", s)
	}
	items := v.Suspense(at)
	if len(items) != 1 || items[0].Kind != recon.ItemConflict || !items[0].Amount.IsZero() || !items[0].Evidence.Amount.Equal(amt("300.01")) {
		t.Fatalf("suspense %+v", items)
	}
	if _, ok := v.ItemPartition(items[0].ID); !ok {
		t.Fatal("review item has no partition")
	}
	if err := v.ChainError(); err != nil {
		t.Fatal(err)
	}
}
