package ingest

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/reconhq/recon"
	"github.com/reconhq/recon/schemas"
)

// Every IBAN recon accepts from a producer or a person passes the
// registry's length for its country and the MOD 97-10 check: a typo is a
// 400 naming the field, not money routed nowhere.
func TestIBANsAtTheEdge(t *testing.T) {
	good := recon.IBANFor("FR", "30001007941234567890185")
	bad := "FR7630001007941234567890186" // the shape of an IBAN, its last digit mistyped
	loan := func(f func(*recon.Loan)) error {
		l := recon.Loan{LoanID: "L-1", VirtualIBAN: good, Currency: "EUR", Principal: decimal.RequireFromString("100.00")}
		f(&l)
		return ValidateLoan(l)
	}
	borrower := func(f func(*recon.Borrower)) error {
		b := recon.Borrower{ID: "B-1", VirtualIBAN: good}
		f(&b)
		return ValidateBorrower(b)
	}
	txn := func(f func(*recon.BankTransaction)) error {
		t := recon.BankTransaction{ID: "bt_1", AccountIBAN: good, Direction: recon.Credit, Currency: "EUR", Amount: decimal.RequireFromString("1"), Status: recon.Booked}
		f(&t)
		return ValidateTransaction(t)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string // "" when valid
	}{
		{"loan", loan(func(*recon.Loan) {}), ""},
		{"loan, IBAN with spaces and lower case", loan(func(l *recon.Loan) { l.VirtualIBAN = strings.ToLower(good[:4] + " " + good[4:]) }), ""},
		{"loan, virtual_iban", loan(func(l *recon.Loan) { l.VirtualIBAN = bad }), "virtual_iban"},
		{"loan, virtual_iban too long", loan(func(l *recon.Loan) { l.VirtualIBAN = good + "0" }), "has 28 characters"},
		{"loan of a borrower, no virtual_iban", loan(func(l *recon.Loan) { l.VirtualIBAN, l.BorrowerID = "", "B-1" }), ""},
		{"loan, borrower.iban", loan(func(l *recon.Loan) { l.Borrower = &recon.Borrower{IBAN: bad} }), "borrower.iban"},
		{"loan, borrower.iban valid", loan(func(l *recon.Loan) { l.Borrower = &recon.Borrower{Name: "A", IBAN: "DE89370400440532013000"} }), ""},
		{"borrower", borrower(func(*recon.Borrower) {}), ""},
		{"borrower, virtual_iban", borrower(func(b *recon.Borrower) { b.VirtualIBAN = bad }), "virtual_iban"},
		{"borrower, no virtual_iban", borrower(func(b *recon.Borrower) { b.VirtualIBAN = "" }), "virtual_iban"},
		{"borrower, iban", borrower(func(b *recon.Borrower) { b.IBAN = "XX89370400440532013000" }), `iban "XX89370400440532013000" is not an IBAN: country "XX"`},
		{"transaction", txn(func(*recon.BankTransaction) {}), ""},
		{"transaction, account_iban", txn(func(t *recon.BankTransaction) { t.AccountIBAN = bad }), "account_iban"},
		{"transaction, virtual_iban", txn(func(t *recon.BankTransaction) { t.VirtualIBAN = bad }), "virtual_iban"},
		{"transaction, counterparty_iban", txn(func(t *recon.BankTransaction) { t.CounterpartyIBAN = bad }), "counterparty_iban"},
		{"transaction, counterparty_iban valid", txn(func(t *recon.BankTransaction) { t.CounterpartyIBAN = "GB29NWBK60161331926819" }), ""},
	} {
		switch {
		case tc.want == "" && tc.err != nil:
			t.Errorf("%s: %v, want accepted", tc.name, tc.err)
		case tc.want != "" && (tc.err == nil || !strings.Contains(tc.err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error naming %q", tc.name, tc.err, tc.want)
		}
	}
}

// An RF creditor reference whose check digits fail is kept in the
// remittance text and never taken as a creditor reference, on API and
// webhook input as in files; a valid one, and a reference that is not RF,
// stay creditor references.
func TestDemoteRF(t *testing.T) {
	for _, tc := range []struct {
		ref, remittance         string
		wantRef, wantRemittance string
	}{
		{"RF18539007547034", "June", "RF18539007547034", "June"},
		{"RF18 5390 0754 7034", "", "RF18 5390 0754 7034", ""},
		{"RF19539007547034", "June", "", "June RF19539007547034"},
		{"rf19539007547034", "", "", "rf19539007547034"},
		{"RF", "", "", "RF"},
		{"INV-2024-0042", "", "INV-2024-0042", ""},
		{"", "June", "", "June"},
	} {
		txn := recon.BankTransaction{CreditorReference: tc.ref, RemittanceInfo: tc.remittance}
		demoteRF(&txn)
		if txn.CreditorReference != tc.wantRef || txn.RemittanceInfo != tc.wantRemittance {
			t.Errorf("demoteRF(%q, %q) = %q, %q; want %q, %q", tc.ref, tc.remittance, txn.CreditorReference, txn.RemittanceInfo, tc.wantRef, tc.wantRemittance)
		}
	}
}

func TestWebhookRFChecked(t *testing.T) {
	_, kc := kafkaFor(t)
	in := newIngest(t, kc, WebhookConfig{})
	body := []byte(`{"id":"evt_rf","type":"transaction.created","data":{"id":"tx_rf","direction":"credit","amount":"10.00","currency":"EUR",
		"status":"booked","bank_reference":"RF-1","creditor_reference":"RF19539007547034","remittance_info":"LOAN-42"}}`)
	a := deliver(t, in, signed(t, testSecret, "msg_rf", testNow, body), body)
	if a.code != http.StatusAccepted {
		t.Fatalf("code %d, want 202: %s", a.code, a.raw)
	}
	var txn recon.BankTransaction
	if err := json.Unmarshal(consume(t, kc, schemas.TopicBankTransactions, 1)[0].Value, &txn); err != nil {
		t.Fatal(err)
	}
	if txn.CreditorReference != "" || txn.RemittanceInfo != "LOAN-42 RF19539007547034" {
		t.Errorf("creditor reference %q, remittance %q; want none and the reference in the text", txn.CreditorReference, txn.RemittanceInfo)
	}
}
