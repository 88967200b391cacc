package matcher

import (
	"strings"
	"testing"

	"github.com/reconhq/recon"
)

const borrowerVIBAN = "DE00VIBA0000000500"

// borrowerLoans: borrower B-1 with three loans of one 100.00 instalment
// each (fees 1, interest 9, principal 90), due a month apart, loaded in an
// order other than their due order.
func borrowerLoans(t *testing.T) *Loans {
	l := testLoans()
	if err := l.PutBorrower(recon.Borrower{ID: "B-1", VirtualIBAN: "de00 viba 0000 0005 00"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, due string }{{"BL-3", "2026-12-05"}, {"BL-1", "2026-10-05"}, {"BL-2", "2026-11-05"}} {
		err := l.Put(recon.Loan{LoanID: c.id, BorrowerID: "B-1", Currency: "EUR", Principal: dec("90.00"),
			Schedule: []recon.Instalment{{DueDate: recon.Date(c.due), Fees: dec("1.00"), Interest: dec("9.00"), Principal: dec("90.00")}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	return l
}

func paidOf(h *harness, loan string) string {
	paid := dec("0")
	for _, part := range []string{"fees", "interest", "principal"} {
		paid = paid.Sub(h.balance("loan:"+loan+":"+part, "EUR"))
	}
	return paid.StringFixed(2)
}

// One and a half instalments paid to the borrower's virtual IBAN: the
// oldest loan is paid, the next one half, the last untouched; every entry
// says which policy and which instalments.
func TestBorrowerOldestDueFirst(t *testing.T) {
	h := newHarness(t, borrowerLoans(t))
	d, res := h.run(credit("150.00", borrowerVIBAN, "E2E-B1"))
	if d.Outcome != recon.Posted || d.Rule != "virtual_iban" {
		t.Fatalf("%q %q %s", d.Outcome, d.Rule, d.Reason)
	}
	for loan, want := range map[string]string{"BL-1": "100.00", "BL-2": "50.00", "BL-3": "0.00"} {
		if got := paidOf(h, loan); got != want {
			t.Errorf("%s paid %s, want %s", loan, got, want)
		}
	}
	if len(res.Entries) != 2 || !strings.Contains(res.Entries[0].Note, "oldest-due-first; instalments due 2026-10-05") ||
		res.Entries[0].BorrowerID != "B-1" {
		t.Fatalf("entries %+v", res.Entries)
	}
	// the rest of the debt and 20.00 more: the surplus is borrower credit
	h.run(credit("170.00", borrowerVIBAN, "E2E-B2"))
	h.wantBalances(map[string]string{"borrower:B-1:credit": "-20.00"})
	for _, loan := range []string{"BL-1", "BL-2", "BL-3"} {
		if got := paidOf(h, loan); got != "100.00" {
			t.Errorf("%s paid %s, want 100.00", loan, got)
		}
	}
	// the first payment comes back (AC04): both shares reversed, and the
	// borrower's credit goes to what reopened, oldest first
	d, res = h.run(returned(credit("150.00", borrowerVIBAN, "E2E-B1"), "150.00"))
	if d.Outcome != recon.Posted {
		t.Fatalf("return: %q %s", d.Outcome, d.Reason)
	}
	if got := kinds(res.Entries); got != "reversal,reversal,credit-applied" {
		t.Fatalf("return entries %s", got)
	}
	h.wantBalances(map[string]string{"borrower:B-1:credit": "0", "bank:" + lender: "170.00"})
	for loan, want := range map[string]string{"BL-1": "20.00", "BL-2": "50.00", "BL-3": "100.00"} {
		if got := paidOf(h, loan); got != want {
			t.Errorf("after the return %s paid %s, want %s", loan, got, want)
		}
	}
}

// A reference that names one of the borrower's loans sends the money there.
func TestBorrowerReferenceNamesLoan(t *testing.T) {
	h := newHarness(t, borrowerLoans(t))
	tx := credit("30.00", borrowerVIBAN, "E2E-B3")
	tx.RemittanceInfo = "pret BL-3 decembre"
	d, _ := h.run(tx)
	if d.LoanID != "BL-3" || paidOf(h, "BL-3") != "30.00" || paidOf(h, "BL-1") != "0.00" {
		t.Fatalf("loan %q, BL-3 paid %s", d.LoanID, paidOf(h, "BL-3"))
	}
	// a reference naming another borrower's loan does not take the money
	tx = credit("30.00", borrowerVIBAN, "E2E-B4")
	tx.RemittanceInfo = "L-1"
	if d, _ := h.run(tx); d.LoanID != "" || paidOf(h, "BL-1") != "30.00" {
		t.Fatalf("loan %q, BL-1 paid %s", d.LoanID, paidOf(h, "BL-1"))
	}
}

// Pro-rata splits by what each loan owes.
func TestBorrowerProRata(t *testing.T) {
	h := newHarness(t, borrowerLoans(t))
	h.poster.Allocation = AllocProRata
	h.run(credit("150.00", borrowerVIBAN, "E2E-B5"))
	for _, loan := range []string{"BL-1", "BL-2", "BL-3"} {
		if got := paidOf(h, loan); got != "50.00" {
			t.Errorf("%s paid %s, want 50.00", loan, got)
		}
	}
	h.run(credit("0.01", borrowerVIBAN, "E2E-B6")) // a cent that cannot split: the loan due first
	if got := paidOf(h, "BL-1"); got != "50.01" {
		t.Errorf("BL-1 paid %s, want 50.01", got)
	}
}

// A virtual IBAN claimed by a borrower and a loan routes to neither.
func TestBorrowerVIBANContested(t *testing.T) {
	l := borrowerLoans(t)
	if err := l.Put(recon.Loan{LoanID: "X-1", VirtualIBAN: borrowerVIBAN, Currency: "EUR", Principal: dec("10")}); err != nil {
		t.Fatal(err)
	}
	rt := NewRouter(l).cascade(credit("10.00", borrowerVIBAN, ""))
	if rt.Key != suspenseKey || !strings.Contains(rt.Reason, "borrower/B-1") || !strings.Contains(rt.Reason, "X-1") {
		t.Fatalf("routed %q: %s", rt.Key, rt.Reason)
	}
}
