package recon

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/shopspring/decimal"
)

func fullLoan() Loan {
	d := decimal.RequireFromString
	return Loan{LoanID: "L-1", VirtualIBAN: "FR7630001007941234567890185", Currency: "EUR", Principal: d("12000.00"),
		Schedule: []Instalment{
			{DueDate: "2026-01-05", Principal: d("1000.00"), Interest: d("50.10"), Fees: d("0")},
			{DueDate: "2026-02-05", Principal: d("1000.00"), Interest: d("45.90"), Fees: d("1.5")},
		},
		MandateID: "MNDT-1", MandateSignedOn: "2025-12-01", DisbursementEndToEndID: "DISB-1",
		Borrower: &Borrower{Name: "Société Générale de Pâtes", IBAN: "FR7612345678901234567890123"}}
}

// sameAsEncodingJSON fails unless DecodeLoan gives what json.Unmarshal
// gives for b: the same loan, or an error both times.
func sameAsEncodingJSON(t *testing.T, b []byte) {
	t.Helper()
	var want Loan
	wantErr := json.Unmarshal(b, &want)
	got, err := DecodeLoan(b)
	if (err == nil) != (wantErr == nil) || err != nil && err.Error() != wantErr.Error() {
		t.Fatalf("%q: error %v, encoding/json says %v", b, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %#v\nwant %#v", b, got, want)
	}
}

func TestDecodeLoanIsEncodingJSON(t *testing.T) {
	canonical, err := json.Marshal(fullLoan())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{
		string(canonical),
		`{"loan_id":"L","virtual_iban":"V","currency":"EUR","principal":"1"}`,
		` { "loan_id" : "L" , "schedule" : [ ] , "borrower" : { } } `,
		`{}`,
		// left to encoding/json: each must still come out the same
		`{"loan_id":"L\u00e9"}`,               // escape
		`{"Loan_ID":"L"}`,                     // keys match case-insensitively
		`{"loan_id":"L","loan_id":"M"}`,       // the last wins
		`{"loan_id":"L","extra":{"a":[1,2]}}`, // unknown keys are ignored
		`{"loan_id":null,"schedule":null}`,    // null leaves the zero value
		`{"principal":12.50}`,                 // an amount as a number
		`{"principal":"12.5.0"}`,              // not an amount
		`{"principal":"1e3"}`,                 // an exponent
		`{"loan_id":"L` + "\xff" + `"}`,       // invalid UTF-8 is replaced
		`{"loan_id":"L"} x`,                   // trailing bytes
		`{"loan_id":"L",}`,                    // trailing comma
		`{"loan_id":1}`,                       // wrong type
		`{"schedule":[{"due_date":"2026-01-01","principal":"1"},]}`,
		`{"schedule":[{"due_date":"2026-01-01","x":"1"}]}`,
		`{"borrower":{"name":"A","name":"B"}}`,
		`[]`, `null`, ``, `{`, `{"loan_id":"L"`,
	} {
		sameAsEncodingJSON(t, []byte(b))
	}
}

func FuzzDecodeLoan(f *testing.F) {
	canonical, _ := json.Marshal(fullLoan())
	f.Add(canonical)
	f.Add([]byte(`{"loan_id":"L","schedule":[],"borrower":{}}`))
	f.Add([]byte(`{"principal":12.50,"loan_id":"L\u00e9"}`))
	f.Add([]byte(`{"principal":"-0012.3400"}`))
	f.Fuzz(func(t *testing.T, b []byte) { sameAsEncodingJSON(t, b) })
}

func BenchmarkDecodeLoan(b *testing.B) {
	rec, _ := json.Marshal(fullLoan())
	b.Run("encoding/json", func(b *testing.B) {
		for range b.N {
			var l Loan
			if err := json.Unmarshal(rec, &l); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("DecodeLoan", func(b *testing.B) {
		for range b.N {
			if _, err := DecodeLoan(rec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
