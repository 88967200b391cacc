package matcher

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/reconhq/recon"
)

// samePut fails unless PutJSON(b) leaves the table Put(recon.DecodeLoan(b))
// leaves, and says the same.
func samePut(t *testing.T, records ...[]byte) {
	t.Helper()
	fast, slow := NewLoans(), NewLoans()
	for _, b := range records {
		err := fast.PutJSON(b)
		loan, want := recon.DecodeLoan(b)
		if want == nil {
			want = slow.Put(loan)
		}
		if (err == nil) != (want == nil) || err != nil && err.Error() != want.Error() {
			t.Fatalf("%q: PutJSON says %v, Put(DecodeLoan) %v", b, err, want)
		}
	}
	if !bytes.Equal(fast.arena, slow.arena) || fast.n != slow.n {
		t.Fatalf("tables differ after %q", records)
	}
}

func TestPutJSONIsPutOfDecodeLoan(t *testing.T) {
	canonical, _ := json.Marshal(recon.Loan{LoanID: "L-1", VirtualIBAN: "fr76 3000 1007 9412 3456 7890 185", Currency: "EUR", Principal: dec("1200.00"),
		MandateID: "M-1", DisbursementEndToEndID: "D-1", Borrower: &recon.Borrower{Name: "Zoé"},
		Schedule: []recon.Instalment{
			{DueDate: "2026-03-01", Principal: dec("400.00"), Interest: dec("3.10"), Fees: dec("0")},
			{DueDate: "2026-01-01", Principal: dec("400.00"), Interest: dec("5.00"), Fees: dec("1.5")},
			{DueDate: "2026-02-01", Principal: dec("400"), Interest: dec("4.05"), Fees: dec("0.00")},
		}})
	for i, recs := range [][]string{
		{string(canonical)},
		{`{"loan_id":"L","currency":"EUR","principal":"1"}`, `{"loan_id":"L","currency":"EUR","principal":"2"}`}, // replaced
		{`{"loan_id":"L","currency":"JPY","principal":"1.5"}`},                                                   // finer than the yen
		{`{"loan_id":"L","currency":"KWD","principal":"1.125"}`},
		{`{"loan_id":"L","currency":"EUR","principal":"-1"}`},
		{`{"loan_id":"L","currency":"EUR","principal":"9007199254740993"}`}, // over maxMinor
		{`{"loan_id":"L","currency":"EUR","principal":"1e3"}`},              // decimal reads it; the plain reader does not
		{`{"loan_id":"L","currency":"EUR","schedule":[{"due_date":"2026-01-01","principal":"90071992547409.93"}]}`},
		{`{"loan_id":"L","currency":"EURO"}`},
		{`{"loan_id":"","currency":"EUR"}`},
		{`{"currency":"EUR"}`},
		{`{"loan_id":"L","currency":"EUR","schedule":[]}`},
		{`{"loan_id":"L\u00e9","currency":"EUR"}`},
		{`{"loan_id":"L","currency":"EUR","principal":12}`},
		{`not json`},
	} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			var b [][]byte
			for _, r := range recs {
				b = append(b, []byte(r))
			}
			samePut(t, b...)
		})
	}
}

func FuzzPutJSON(f *testing.F) {
	f.Add([]byte(`{"loan_id":"L","virtual_iban":"FR76 1","currency":"EUR","principal":"10.00","schedule":[{"due_date":"2026-02-01","principal":"5","interest":"0.10","fees":"0"},{"due_date":"2026-01-01","principal":"5.00"}]}`))
	f.Add([]byte(`{"loan_id":"L","currency":"JPY","principal":"100","mandate_id":"M","disbursement_end_to_end_id":"D"}`))
	f.Fuzz(func(t *testing.T, b []byte) { samePut(t, b) })
}

func BenchmarkPutJSON(b *testing.B) {
	var recs [][]byte
	for i := range 1000 {
		id := fmt.Sprintf("L-%d", i)
		rec, _ := json.Marshal(recon.Loan{LoanID: id, VirtualIBAN: fmt.Sprintf("DE%02dVIBA%014d", i%100, i), Currency: "EUR",
			Principal: dec("12000.00"), MandateID: "MNDT-" + id, Schedule: schedule12(i)})
		recs = append(recs, rec)
	}
	b.Run("Put(DecodeLoan)", func(b *testing.B) {
		l := NewLoans()
		for i := range b.N {
			loan, err := recon.DecodeLoan(recs[i%len(recs)])
			if err != nil {
				b.Fatal(err)
			}
			if err := l.Put(loan); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PutJSON", func(b *testing.B) {
		l := NewLoans()
		for i := range b.N {
			if err := l.PutJSON(recs[i%len(recs)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
