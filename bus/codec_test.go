package bus

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
)

func sampleRecords() []any {
	amt := decimal.RequireFromString
	t := recon.BankTransaction{ID: "bt_1", AccountIBAN: "FR7630001007941234567890185", Direction: recon.Credit, Amount: amt("12.50"), Currency: "EUR",
		BookingDate: "2026-11-02", VirtualIBAN: "FR76VIBA", EndToEndID: "E2E-1", Status: recon.Booked, RemittanceInfo: "loan L-1 é"}
	e := recon.Entry{ID: "e_bt_1_repayment_L-1", Kind: "repayment", LoanID: "L-1", TransactionID: "bt_1", BookedAt: time.Date(2026, 11, 2, 9, 0, 0, 123, time.UTC),
		Postings: []recon.Posting{{Account: "bank:FR76", Side: recon.DebitSide, Amount: amt("12.50"), Currency: "EUR"}, {Account: "loan:L-1:principal", Side: recon.CreditSide, Amount: amt("12.50"), Currency: "EUR"}},
		Item:     &t}
	return []any{t, e, recon.Loan{LoanID: "L-1", Principal: amt("100"), Schedule: []recon.Instalment{{DueDate: "2026-12-01", Principal: amt("1")}}}}
}

// Marshal writes encoding/json's bytes; Unmarshal reads encoding/json's
// values and refuses what it refuses, with its error.
func TestCodecIsEncodingJSON(t *testing.T) {
	odd := []any{"<a>&'\"\u2028\u2029\x00\x1f é \xff", map[string]any{"b": 1.5, "a": []byte{0, 1, 255}, "c": nil, "d": 1e21, "e": 0.000001}}
	for _, v := range append(sampleRecords(), odd...) {
		want, _ := json.Marshal(v)
		got, err := Marshal(v)
		if err != nil || string(got) != string(want) {
			t.Fatalf("Marshal %T:\n got %s %v\nwant %s", v, got, err, want)
		}
	}
	for _, b := range []string{
		`{"id":"a","amount":"1.00","booking_date":"2026-01-01"}`, `{"id":"a` + "\xff" + `"}`, `{"ID":"a","id":"b"}`,
		`{"amount":null}`, `{"amount":12.5}`, `{"id":"\ud800x"}`, `{"id":1}`, `{"id":"a"}x`, `{"id":"a",}`, `{"remainder":"true"}`,
	} {
		var want, got recon.BankTransaction
		wantErr, err := json.Unmarshal([]byte(b), &want), Unmarshal([]byte(b), &got)
		if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() || err == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %+v %v, encoding/json %+v %v", b, got, err, want, wantErr)
		}
	}
}

func FuzzCodecIsEncodingJSON(f *testing.F) {
	for _, v := range sampleRecords() {
		b, _ := json.Marshal(v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, mk := range []func() any{func() any { return new(recon.BankTransaction) }, func() any { return new(recon.Entry) }} {
			want, got := mk(), mk()
			wantErr, err := json.Unmarshal(b, want), Unmarshal(b, got)
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("%q: error %v, encoding/json %v", b, err, wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: %+v, encoding/json %+v", b, got, want)
			}
			if err == nil {
				a, _ := json.Marshal(want)
				c, _ := Marshal(want)
				if string(a) != string(c) {
					t.Fatalf("Marshal:\n got %s\nwant %s", c, a)
				}
			}
		}
	})
}
