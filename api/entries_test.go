package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shopspring/decimal"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/schemas"
)

func TestLoanEntries(t *testing.T) {
	v := NewView(slog.New(slog.DiscardHandler))
	rec := func(topic string, val any) *kgo.Record {
		b, _ := json.Marshal(val)
		return &kgo.Record{Topic: topic, Value: b}
	}
	amt := func(s string) decimal.Decimal { return decimal.RequireFromString(s) }
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	v.apply(rec(schemas.TopicLoans, recon.Loan{LoanID: "L1", VirtualIBAN: "FR76X", Currency: "EUR", Principal: amt("1000.00")}))
	pay := recon.Entry{ID: "e_1_payment_L1", Kind: "payment", LoanID: "L1", TransactionID: "t1", BookedAt: at, Postings: []recon.Posting{
		{Account: "bank:FR76BANK", Side: recon.DebitSide, Amount: amt("300.00"), Currency: "EUR"},
		{Account: "loan:L1:interest", Side: recon.CreditSide, Amount: amt("50.00"), Currency: "EUR"},
		{Account: "loan:L1:principal", Side: recon.CreditSide, Amount: amt("250.00"), Currency: "EUR"},
	}}
	other := recon.Entry{ID: "e_2_payment_L2", Kind: "payment", LoanID: "L2", TransactionID: "t2", BookedAt: at, Postings: []recon.Posting{
		{Account: "bank:FR76BANK", Side: recon.DebitSide, Amount: amt("10.00"), Currency: "EUR"},
		{Account: "loan:L2:principal", Side: recon.CreditSide, Amount: amt("10.00"), Currency: "EUR"},
	}}
	rev := recon.Entry{ID: "e_3_return_L1", Kind: "return", TransactionID: "t3", Reverses: "t1", BookedAt: at.Add(time.Hour), Postings: []recon.Posting{
		{Account: "loan:L1:principal", Side: recon.DebitSide, Amount: amt("250.00"), Currency: "EUR"},
		{Account: "bank:FR76BANK", Side: recon.CreditSide, Amount: amt("250.00"), Currency: "EUR"},
	}}
	for _, e := range []recon.Entry{pay, other, pay, rev} { // pay twice: a redelivery is kept once
		v.apply(rec(schemas.TopicLedgerEntries, e))
	}
	mux := http.NewServeMux()
	(&API{View: v, Now: func() time.Time { return at }}).Register(mux)

	for _, tc := range []struct {
		path  string
		code  int
		ids   []string
		total int
	}{
		{path: "/v1/loans/L1/entries", code: 200, ids: []string{pay.ID, rev.ID}, total: 2},
		{path: "/v1/loans/L1/entries?limit=1", code: 200, ids: []string{rev.ID}, total: 2},
		{path: "/v1/loans/L1/entries?limit=0", code: 400},
		{path: "/v1/loans/L1/entries?limit=99999", code: 400},
		{path: "/v1/loans/NOPE/entries", code: 404},
	} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", tc.path, nil))
		if w.Code != tc.code {
			t.Fatalf("%s: %d %s", tc.path, w.Code, w.Body)
		}
		if tc.code != 200 {
			continue
		}
		var got struct {
			Entries []LoanEntry
			Total   int
		}
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.Total != tc.total || len(got.Entries) != len(tc.ids) {
			t.Fatalf("%s: total %d, %d entries; want %d, %v", tc.path, got.Total, len(got.Entries), tc.total, tc.ids)
		}
		for i, id := range tc.ids {
			if got.Entries[i].ID != id {
				t.Errorf("%s: entry %d = %s, want %s", tc.path, i, got.Entries[i].ID, id)
			}
		}
	}
	es, _ := v.LoanEntries("L1", 10)
	if p := es[0].Allocated["principal"]; !p.Equal(amt("250")) {
		t.Errorf("payment allocated principal %s", p)
	}
	if p := es[1].Allocated["principal"]; !p.Equal(amt("-250")) {
		t.Errorf("return allocated principal %s", p)
	}
	if _, ok := es[0].Allocated["credit"]; ok {
		t.Error("no credit posting, no credit allocation")
	}
}
